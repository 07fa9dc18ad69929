/**
 * Test mode (docs/concepts.md "Faults and test mode"): a shop or a device, for a stored
 * time. What it raises is an alarm marked `test` that reaches only the audit trail and the
 * installer. Its expiry is a row in `deadlines` (kind `test-expiry`), so it is re-armed after a
 * restart. These functions run inside the caller's transaction: the running gateway's writer, or
 * the CLI's own transaction when no gateway runs.
 */
import type { Db } from '../store/db.js';
import { iso } from '../clock.js';
import { lfError } from '../errors.js';
import { auditRow } from '../store/audit.js';

export type TestScope = 'shop' | 'device';
export const TEST_SCOPES: readonly TestScope[] = ['shop', 'device'];

export interface TestModeRow {
  id: number;
  scope: TestScope;
  targetId: string;
  startedAt: string;
  startedBy: string;
  untilMs: number;
}

const COLUMNS = 'id, scope, target_id AS targetId, started_at AS startedAt, started_by AS startedBy, until_ms AS untilMs';


/** End a test mode (`stopped`, `expired`, `replaced`): the row, its expiry deadline, an audit row. */
function endTestMode(db: Db, row: TestModeRow, how: 'stopped' | 'expired' | 'replaced', actor: string, nowMs: number): void {
  db.prepare('UPDATE test_modes SET ended_at = ?, ended_how = ? WHERE id = ? AND ended_at IS NULL').run(iso(nowMs), how, row.id);
  db.prepare('UPDATE deadlines SET done_at = ? WHERE test_mode_id = ? AND done_at IS NULL').run(nowMs, row.id);
  auditRow(db, iso(nowMs), actor, `test-${how}`, { testModeId: row.id, scope: row.scope, targetId: row.targetId, until: iso(row.untilMs) });
}

/** Put a shop or a device in test mode until `nowMs + durationMs` (a running one for it is replaced). */
export function startTestMode(db: Db, scope: TestScope, targetId: string, durationMs: number, actor: string, nowMs: number): TestModeRow {
  for (const old of db.prepare(`SELECT ${COLUMNS} FROM test_modes WHERE scope = ? AND target_id = ? AND ended_at IS NULL`).all(scope, targetId) as TestModeRow[]) {
    endTestMode(db, old, 'replaced', actor, nowMs);
  }
  const untilMs = nowMs + durationMs;
  const id = Number(
    db.prepare('INSERT INTO test_modes (scope, target_id, started_at, started_by, until_ms) VALUES (?, ?, ?, ?, ?)').run(scope, targetId, iso(nowMs), actor, untilMs).lastInsertRowid,
  );
  db.prepare("INSERT INTO deadlines (alarm_id, kind, due_at, test_mode_id) VALUES (NULL, 'test-expiry', ?, ?)").run(untilMs, id);
  auditRow(db, iso(nowMs), actor, 'test-start', { testModeId: id, scope, targetId, until: iso(untilMs) });
  return { id, scope, targetId, startedAt: iso(nowMs), startedBy: actor, untilMs };
}

/** End the test mode of a shop or a device; false when it was in none. */
export function stopTestMode(db: Db, scope: TestScope, targetId: string, actor: string, nowMs: number): boolean {
  const rows = db.prepare(`SELECT ${COLUMNS} FROM test_modes WHERE scope = ? AND target_id = ? AND ended_at IS NULL`).all(scope, targetId) as TestModeRow[];
  for (const row of rows) endTestMode(db, row, 'stopped', actor, nowMs);
  return rows.length > 0;
}

/** The test-expiry deadline of `testModeId` fell due: end it (if still running). Returns the row ended. */
export function expireTestMode(db: Db, testModeId: number, nowMs: number): TestModeRow | undefined {
  const row = db.prepare(`SELECT ${COLUMNS} FROM test_modes WHERE id = ? AND ended_at IS NULL`).get(testModeId) as TestModeRow | undefined;
  if (row) endTestMode(db, row, 'expired', 'gateway', nowMs);
  return row;
}

/** The test mode a panic from `deviceId` of `shopId` falls under at `nowMs` (the shop's or the device's). */
export function activeTestMode(db: Db, shopId: string, deviceId: string | undefined, nowMs: number): TestModeRow | undefined {
  return db
    .prepare(
      `SELECT ${COLUMNS} FROM test_modes WHERE ended_at IS NULL AND until_ms > ? AND ((scope = 'shop' AND target_id = ?) OR (scope = 'device' AND target_id = ?)) ORDER BY id DESC LIMIT 1`,
    )
    .get(nowMs, shopId, deviceId ?? null) as TestModeRow | undefined;
}

export interface TestStatus extends TestModeRow {
  until: string;
  alarms: { alarmId: string; shopId: string; kind: string; raisedAt: string; disposition: string | null }[];
}

/** What is in test mode at `nowMs`, until when, and the test alarms raised in each. */
export function testStatus(db: Db, nowMs: number): TestStatus[] {
  const rows = db.prepare(`SELECT ${COLUMNS} FROM test_modes WHERE ended_at IS NULL AND until_ms > ? ORDER BY id`).all(nowMs) as TestModeRow[];
  const alarms = db.prepare('SELECT id AS alarmId, shop_id AS shopId, kind, raised_at AS raisedAt, disposition FROM alarms WHERE test_mode_id = ? ORDER BY raised_at, id');
  return rows.map((r) => ({ ...r, until: iso(r.untilMs), alarms: alarms.all(r.id) as TestStatus['alarms'] }));
}

/** The audit action of a device that passed a walk test (`lianfang test walk`). */
export const WALK_PASS_ACTION = 'walk-test-passed';

export interface WalkPass {
  deviceId: string;
  shopId: string;
  /** The event that proved the device's (last untested) function. */
  eventId: number;
  eventType: string;
  /** When that event was received (events.received_at). */
  eventAt: string;
  /** The test alarm a keypad's 9# raised, if that was the proof. */
  alarmId?: string;
}

/**
 * Record a walk-test pass as an audit row (no table of its own: the audit trail is the record).
 * The event must be a stored event of that device of that shop; returns the row's time.
 */
export function recordWalkPass(db: Db, pass: WalkPass, actor: string, nowMs: number): string {
  const ev = db.prepare('SELECT e.device_id AS deviceId, d.shop_id AS shopId FROM events e JOIN devices d ON d.id = e.device_id WHERE e.id = ?').get(pass.eventId) as
    | { deviceId: string; shopId: string }
    | undefined;
  if (!ev || ev.deviceId !== pass.deviceId || ev.shopId !== pass.shopId) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', 'walk pass', `event ${pass.eventId} is not an event of device ${pass.deviceId} of shop ${pass.shopId}`);
  }
  const at = iso(nowMs);
  const detail: Record<string, unknown> = { deviceId: pass.deviceId, shopId: pass.shopId, eventId: pass.eventId, eventType: pass.eventType, eventAt: pass.eventAt };
  if (pass.alarmId) detail.alarmId = pass.alarmId;
  auditRow(db, at, actor, WALK_PASS_ACTION, detail);
  return at;
}

/**
 * When each device last passed a walk test (the newest `walk-test-passed` audit row), by device id.
 * Reads the audit trail without an index on the action: `device list` is an installer's command,
 * not an alarm path.
 */
export function lastWalkTests(db: Db): Map<string, string> {
  const rows = db
    .prepare(`SELECT json_extract(detail, '$.deviceId') AS deviceId, MAX(at) AS at FROM audit WHERE action = ? GROUP BY json_extract(detail, '$.deviceId')`)
    .all(WALK_PASS_ACTION) as { deviceId: string | null; at: string }[];
  return new Map(rows.filter((r) => typeof r.deviceId === 'string').map((r) => [r.deviceId!, r.at]));
}
