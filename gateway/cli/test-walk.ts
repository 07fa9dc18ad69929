/**
 * `lianfang test walk --shop S01`: the installer's walk test (issue 8, "Test mode and walk tests").
 * It puts the shop in test mode (through the running gateway, or on the database when none runs,
 * as `test start` does), lists each device with what to do, shows each pass as its event arrives,
 * records each passed device as an audit row (`walk-test-passed`), ends the test mode it started,
 * and prints a report.
 *
 * How events are seen: the walk polls the database read-only (WAL lets a reader run beside the
 * gateway's writer) every `pollMs` for the shop's events stored after the walk began. The admin
 * channel is one request, one answer; a stream of events over it would be a new protocol, would
 * lose what arrived while the gateway restarted, and would not work at all when the walk started
 * with no gateway running. The database is where every accepted event is, in commit order, so
 * what the walk reads is exactly what the gateway accepted, whichever gateway process wrote it.
 *
 * A device passes on the event that proves its function:
 * - a keypad on a 9# entry: a test alarm (test = 1, kind panic, not duress) whose origin event is
 *   that keypad's;
 * - a panic button, or a module's panic input, on a panic event (of that input);
 * - a door contact, or a module's door input, on a door event with open = true (of that input).
 * A module passes when each of its panic and door inputs has passed.
 */
import { tr } from '../i18n.js';
import { withDatabase, type Db } from '../store/db.js';
import { openDatabaseForReport } from '../reports/false-alarms.js';
import { adminRequest } from '../admin/channel.js';
import { activeTestMode, recordWalkPass, startTestMode, stopTestMode, type TestModeRow, type TestScope, type WalkPass } from '../alarm/test-mode.js';
import { getShop, listDevices, type Device } from '../registry/registry.js';
import { loadRegisterMap } from '../../firmware-contracts/modbus/register-map.js';
import { lfError } from '../errors.js';

/** Exit codes of `test walk` besides 0 (every device passed) and the CLI's 1 and 2 (errors). */
export const WALK_EXIT = { notAllPassed: 3, interrupted: 130 } as const;

export type WalkCheck = '9#' | 'panic' | 'door';

const TODO: Record<WalkCheck, { en: string; zh: string }> = {
  '9#': { en: 'press 9#', zh: '按 9#' },
  panic: { en: 'press the panic button', zh: '按下紧急按钮' },
  door: { en: 'open the door', zh: '打开门' },
};

export interface WalkStep {
  check: WalkCheck;
  /** A Modbus module's input name (from its register map); null for a whole device. */
  input: string | null;
  todo: { en: string; zh: string };
  passed: boolean;
  at: string | null;
  eventId: number | null;
  eventType: string | null;
  alarmId?: string;
}

export type WalkStatus = 'passed' | 'not-passed' | 'nothing-to-test';

export interface WalkDevice {
  deviceId: string;
  type: Device['type'];
  transport: Device['transport'];
  status: WalkStatus;
  passedAt: string | null;
  eventId: number | null;
  eventType: string | null;
  /** The audit row was written (false: the write failed, see stderr). */
  recorded: boolean;
  /** Why a device has nothing to test (a module without panic or door inputs, an unreadable map). */
  note?: string;
  steps: WalkStep[];
}

export interface WalkReport {
  shopId: string;
  startedAt: string;
  endedAt: string;
  ended: 'all-passed' | 'time-limit' | 'interrupted';
  allPassed: boolean;
  passed: number;
  total: number;
  gatewayRunning: boolean;
  testMode: { id: number; until: string; startedByWalk: boolean; endedByWalk: boolean };
  devices: WalkDevice[];
}

const step = (check: WalkCheck, input: string | null = null): WalkStep => ({ check, input, todo: TODO[check], passed: false, at: null, eventId: null, eventType: null });

/** What to do for each of the shop's devices (revoked ones left out). */
export function walkPlan(devices: Device[]): WalkDevice[] {
  return devices
    .filter((d) => !d.revokedAt)
    .map((d) => {
      const w: WalkDevice = { deviceId: d.id, type: d.type, transport: d.transport, status: 'not-passed', passedAt: null, eventId: null, eventType: null, recorded: false, steps: [] };
      if (d.type === 'keypad') w.steps = [step('9#')];
      else if (d.type === 'panic') w.steps = [step('panic')];
      else if (d.transport === 'mqtt') w.steps = [step('panic'), step('door')];
      else {
        try {
          const map = loadRegisterMap(d.model ?? 'generic-8io');
          for (const i of map.discreteInputs) if (i.role === 'panic' || i.role === 'door') w.steps.push(step(i.role, i.name));
          if (w.steps.length === 0) w.note = 'its register map has no panic or door input';
        } catch (err) {
          w.note = `its register map cannot be read: ${(err as Error).message}`;
        }
      }
      if (w.steps.length === 0) w.status = 'nothing-to-test';
      return w;
    });
}

export interface SeenEvent {
  id: number;
  deviceId: string;
  type: string;
  payload: string;
  at: string;
  /** The test alarm this event raised as a plain 9# (kind panic, not duress), if any. */
  testAlarmId: string | null;
}

/**
 * The shop's events stored after event `afterId`, oldest first, with the test alarm each keypad
 * event raised (alarms has no index on origin_event_id: only keypad events look, a few a walk).
 */
export function eventsAfter(db: Db, shopId: string, afterId: number): SeenEvent[] {
  return db
    .prepare(
      `SELECT e.id, e.device_id AS deviceId, e.type, e.payload, e.received_at AS at,
              CASE WHEN e.type = 'keypad' THEN
                (SELECT a.id FROM alarms a WHERE a.origin_event_id = e.id AND a.test = 1 AND a.kind = 'panic' AND a.duress = 0 LIMIT 1)
              END AS testAlarmId
         FROM events e JOIN devices d ON d.id = e.device_id
        WHERE e.id > ? AND d.shop_id = ? ORDER BY e.id LIMIT 1000`,
    )
    .all(afterId, shopId) as SeenEvent[];
}

/** The step of `w` that `ev` proves, if it proves one not yet passed. */
function provedStep(w: WalkDevice, ev: SeenEvent): WalkStep | undefined {
  let payload: { open?: unknown; input?: unknown } = {};
  try {
    payload = JSON.parse(ev.payload) as typeof payload;
  } catch {
    /* a stored payload is JSON; a bad one proves nothing */
  }
  const input = typeof payload.input === 'string' ? payload.input : null;
  return w.steps.find((s) => {
    if (s.passed) return false;
    if (s.check === '9#') return ev.testAlarmId !== null;
    if (s.input !== null && s.input !== input) return false;
    return s.check === 'panic' ? ev.type === 'panic' : ev.type === 'door' && payload.open === true;
  });
}

/**
 * Apply one event to the walk: the step it proves is marked passed. Returns the device and step,
 * or nothing when the event proves nothing new (another device's, a heartbeat, a door closing, a
 * second press).
 */
export function applyEvent(devices: WalkDevice[], ev: SeenEvent): { device: WalkDevice; step: WalkStep } | undefined {
  const w = devices.find((d) => d.deviceId === ev.deviceId);
  if (!w || w.status !== 'not-passed') return undefined;
  const s = provedStep(w, ev);
  if (!s) return undefined;
  Object.assign(s, { passed: true, at: ev.at, eventId: ev.id, eventType: ev.type }, ev.testAlarmId && s.check === '9#' ? { alarmId: ev.testAlarmId } : {});
  if (w.steps.every((x) => x.passed)) Object.assign(w, { status: 'passed', passedAt: ev.at, eventId: ev.id, eventType: ev.type });
  return { device: w, step: s };
}

/** `test start`'s path: the running gateway's admin channel, or the database when none runs. */
export async function startTestVia(data: string, scope: TestScope, targetId: string, durationMs: number, actor: string): Promise<{ row: TestModeRow; viaGateway: boolean }> {
  const via = (await adminRequest(data, { op: 'test-start', scope, targetId, durationMs, actor })) as TestModeRow | null;
  if (via) return { row: via, viaGateway: true };
  return { row: withDatabase(data, (db) => db.transaction(() => startTestMode(db, scope, targetId, durationMs, actor, Date.now())).immediate()), viaGateway: false };
}

/** `test stop`'s path: the running gateway's admin channel, or the database when none runs. */
export async function stopTestVia(data: string, scope: TestScope, targetId: string, actor: string): Promise<{ stopped: boolean; viaGateway: boolean }> {
  const via = (await adminRequest(data, { op: 'test-stop', scope, targetId, actor })) as { stopped: boolean } | null;
  if (via) return { stopped: via.stopped, viaGateway: true };
  return { stopped: withDatabase(data, (db) => db.transaction(() => stopTestMode(db, scope, targetId, actor, Date.now())).immediate()), viaGateway: false };
}

/** The audit row of a pass: through the running gateway (in order with its writes), else on the database. */
async function recordPass(data: string, pass: WalkPass, actor: string): Promise<void> {
  const via = await adminRequest(data, { op: 'walk-pass', pass, actor });
  if (via === null) withDatabase(data, (db) => db.transaction(() => recordWalkPass(db, pass, actor, Date.now())).immediate());
}

export interface WalkOptions {
  data: string;
  shopId: string;
  limitMs: number;
  actor: string;
  /** Where the plan and the progress lines go (stdout, or stderr under --json). */
  progress: (line: string) => void;
  /** Where failures to record go (stderr). */
  warn: (line: string) => void;
  pollMs?: number;
  /** Resolves when the walk is to end early (Ctrl-C). */
  interrupt: Promise<void>;
}

const describe = (s: WalkStep) => (s.input ? `input ${s.input}: ` : '') + `${s.todo.en} / ${s.todo.zh}`;

/** Run the walk to its end (every device passed, the time limit, or the interrupt); the report. */
export async function runWalk(o: WalkOptions): Promise<WalkReport> {
  const devices = withDatabase(o.data, (db) => {
    if (!getShop(db, o.shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', o.shopId);
    return walkPlan(listDevices(db, o.shopId));
  });
  if (devices.length === 0) throw lfError('LF_ERR_INVALID_ARGUMENT', '--shop', `shop ${o.shopId} has no devices to test`);
  const ro = openDatabaseForReport(o.data);
  let interrupted = false;
  void o.interrupt.then(() => (interrupted = true));
  try {
    const startedAt = new Date().toISOString();
    // A shop already in test mode stays in it, as it was: the walk ends no later than it does.
    const before = activeTestMode(ro, o.shopId, undefined, Date.now());
    const started = before ? null : await startTestVia(o.data, 'shop', o.shopId, o.limitMs, o.actor);
    const testMode = before ?? started!.row;
    const gatewayRunning = started ? started.viaGateway : (await adminRequest(o.data, { op: 'health' })) !== null;
    // Only events stored from here on count: one stored before the walk proves nothing today.
    let cursor = (ro.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM events').get() as { n: number }).n;
    const deadline = Math.min(Date.now() + o.limitMs, testMode.untilMs);
    const testable = devices.filter((d) => d.status === 'not-passed');
    o.progress(`walk test of shop ${o.shopId}: ${testable.length} device(s) to test, until ${new Date(deadline).toISOString()}; Ctrl-C ends it early`);
    o.progress(`巡检测试 商户 ${o.shopId}：${testable.length} 台设备待测，截止 ${new Date(deadline).toISOString()}；按 Ctrl-C 提前结束`);
    o.progress(before ? `(the shop was already in test mode until ${new Date(before.untilMs).toISOString()}: it stays so after the walk)` : '(the shop is in test mode: its alarms reach no neighbour and no console)');
    for (const d of devices) o.progress(`  ${d.deviceId}  ${d.type} (${d.transport}): ${d.steps.length ? d.steps.map(describe).join('; ') : `nothing to test: ${d.note}`}`);

    let ended: WalkReport['ended'] = 'time-limit';
    const passedCount = () => devices.filter((d) => d.status === 'passed').length;
    const poll = async () => {
      const seen = eventsAfter(ro, o.shopId, cursor);
      for (const ev of seen) {
        cursor = ev.id;
        const hit = applyEvent(devices, ev);
        if (!hit) continue;
        const { device: d, step: s } = hit;
        const what = `${s.input ? `input ${s.input}: ` : ''}${ev.type}${s.alarmId ? ` ${s.check}, test alarm ${s.alarmId}` : ''} (event ${ev.id})`;
        if (d.status !== 'passed') {
          const left = d.steps.filter((x) => !x.passed).map(describe);
          o.progress(`${ev.at}  ok 已测    ${d.deviceId}  ${what}; still to do: ${left.join('; ')}`);
          continue;
        }
        try {
          await recordPass(o.data, { deviceId: d.deviceId, shopId: o.shopId, eventId: ev.id, eventType: ev.type, eventAt: ev.at, ...(s.alarmId ? { alarmId: s.alarmId } : {}) }, o.actor);
          d.recorded = true;
        } catch (err) {
          const why = (err as Error).message;
          o.warn(tr(`the pass of ${d.deviceId} was not recorded: ${why}`, `${d.deviceId} 的通过结果未能记录：${why}`));
        }
        o.progress(`${ev.at}  PASS 通过  ${d.deviceId}  ${what}  [${passedCount()}/${testable.length}]`);
      }
    };
    try {
      for (;;) {
        await poll();
        if (testable.every((d) => d.status === 'passed')) {
          ended = 'all-passed';
          break;
        }
        if (interrupted || Date.now() >= deadline) {
          ended = interrupted ? 'interrupted' : 'time-limit';
          break;
        }
        await Promise.race([new Promise((r) => setTimeout(r, Math.min(o.pollMs ?? 200, Math.max(1, deadline - Date.now())))), o.interrupt]);
      }
    } finally {
      // The test mode the walk started ends with it, whatever ended the walk.
      if (started) await stopTestVia(o.data, 'shop', o.shopId, o.actor);
    }
    const passed = passedCount();
    return {
      shopId: o.shopId,
      startedAt,
      endedAt: new Date().toISOString(),
      ended,
      allPassed: passed === testable.length,
      passed,
      total: testable.length,
      gatewayRunning,
      testMode: { id: testMode.id, until: new Date(testMode.untilMs).toISOString(), startedByWalk: started !== null, endedByWalk: started !== null },
      devices,
    };
  } finally {
    ro.close();
  }
}

/** The exit code of a walk: 0 when every device passed. */
export function walkExitCode(r: WalkReport): number {
  if (r.allPassed) return 0;
  return r.ended === 'interrupted' ? WALK_EXIT.interrupted : WALK_EXIT.notAllPassed;
}

/** The report as table rows (the CLI prints them with printTable). */
export function reportRows(r: WalkReport): Record<string, unknown>[] {
  return r.devices.map((d) => ({
    deviceId: d.deviceId,
    type: d.type,
    result: d.status === 'passed' ? 'PASSED 通过' : d.status === 'not-passed' ? 'NOT PASSED 未通过' : 'NOTHING TO TEST 无可测',
    at: d.passedAt ?? '',
    by: d.status === 'passed' ? `${d.eventType} (event ${d.eventId})` : d.steps.filter((s) => !s.passed).map(describe).join('; ') || (d.note ?? ''),
  }));
}
