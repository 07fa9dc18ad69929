/**
 * The alarm engine in-process (gateway/alarm/engine.ts): a real SQLite database in a temp dir, a
 * ManualClock, the group-commit writer, the outbox with a publisher that records, the deadline
 * scheduler, and a simulated street of 30 shops. No sockets, no child processes: time is moved by
 * hand, so deadlines of 30 s and 60 s are tested without waiting for them.
 */
import t, { type Test } from 'tap';
import { STREET_STATION } from '../../../simulators/street.js';
import { ManualClock, iso } from '../../../gateway/clock.js';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { addStation } from '../../../gateway/registry/registry.js';
import { createLogger } from '../../../gateway/logger.js';
import { EngineHarness, streetTemplate } from '../../helpers/engine.js';
import { Supervisor } from '../../../gateway/supervision.js';
import { deviceIngest, nextBridgeBoot } from '../../../gateway/ingest/device-ingest.js';
import { resetCounter } from '../../../gateway/ingest/counter-reset.js';
import { rankNeighbours, distanceM } from '../../../gateway/geo.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { LianfangError } from '../../../gateway/errors.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { setShopPins, clearShopPins } from '../../../gateway/alarm/pins.js';
import type { ConsoleAction, ConsoleAlarm, ShopAlert } from '../../../firmware-contracts/mqtt/payloads.js';

// One street, provisioned once (scrypt and 60 commits), copied for every test.
const { street: STREET, copy: streetCopy } = await streetTemplate(t, 30);
const MIDDLE = 15; // DEMO-S016: shops on both sides along the street and across it

/** The engine harness with this file's presses, actions and queries. */
class Harness extends EngineHarness {
  private seq = new Map<string, number>();

  deviceOf(shopIndex: number) {
    return this.registry.devices.get(STREET.shops[shopIndex].deviceId)!;
  }

  /** A keypad of shop `shopIndex` sends `keys` (boot 1, next seq). */
  press(shopIndex: number, keys: string, seq?: number) {
    const device = this.deviceOf(shopIndex);
    const s = seq ?? (this.seq.get(device.id) ?? 0) + 1;
    this.seq.set(device.id, Math.max(s, this.seq.get(device.id) ?? 0));
    return this.ingest(device, { seq: s, boot: 1, type: 'keypad', keys }, 'mqtt');
  }

  async raise(shopIndex = MIDDLE): Promise<string> {
    const out = await this.press(shopIndex, '9#');
    if (out.status !== 'stored' || !out.alarmId) throw new Error(`no alarm raised: ${JSON.stringify(out)}`);
    return out.alarmId;
  }

  act(action: ConsoleAction, stationId = STREET_STATION, user = STREET.officer.username) {
    return this.writer.run((fx) => this.engine.consoleAction(fx, stationId, user, action), 'console-action');
  }

  reply(shopIndex: number, alarmId: string, reply: 'coming' | 'seen' | 'cannot') {
    const shopId = STREET.shops[shopIndex].shopId;
    return this.writer.run((fx) => this.engine.shopReply(fx, shopId, alarmId, reply, `device:${STREET.shops[shopIndex].deviceId}`));
  }

  alarm(id: string) {
    return this.repo.get(id)!;
  }

  audit(alarmId: string) {
    return this.db
      .prepare('SELECT actor, action, from_state AS fromState, to_state AS toState, rev, at, detail FROM audit WHERE alarm_id = ? ORDER BY id')
      .all(alarmId) as { actor: string; action: string; fromState: string | null; toState: string | null; rev: number; at: string; detail: string }[];
  }

  outboxRows(alarmId: string) {
    return this.db.prepare('SELECT recipient_kind AS kind, recipient_id AS id, rev, topic FROM outbox WHERE alarm_id = ? ORDER BY id').all(alarmId) as {
      kind: string;
      id: string;
      rev: number;
      topic: string;
    }[];
  }

  consoleMessages(alarmId: string, stationId = STREET_STATION): ConsoleAlarm[] {
    return this.published.filter((p) => p.topic === topics.stationAlarms(stationId) && p.payload.alarmId === alarmId).map((p) => p.payload as unknown as ConsoleAlarm);
  }

  shopAlerts(alarmId: string): (ShopAlert & { shopId: string })[] {
    return this.published
      .filter((p) => p.topic.endsWith('/alerts') && p.payload.alarmId === alarmId)
      .map((p) => ({ ...(p.payload as unknown as ShopAlert), shopId: p.topic.split('/')[3] }));
  }

  /** Every shop of the street ranked from shop `shopIndex`, as the engine ranks them. */
  ranked(shopIndex = MIDDLE) {
    const origin = this.registry.shops.get(STREET.shops[shopIndex].shopId)!;
    return rankNeighbours(origin, this.registry.shops.values(), (id) => this.registry.shops.get(id));
  }
}

/** Run `p`, expect a LianfangError with `code`; returns it. */
async function refused(t: Test, p: Promise<unknown>, code: string, what: string): Promise<LianfangError | undefined> {
  try {
    await p;
  } catch (err) {
    t.ok(err instanceof LianfangError, `${what}: a LianfangError`);
    t.equal((err as LianfangError).code, code, `${what}: ${code}`);
    return err as LianfangError;
  }
  t.fail(`${what}: was not refused`);
  return undefined;
}

/** Audit rows of every change carry rev 1, 2, 3, … (a 'joined' row repeats the current rev). */
function checkRevChain(t: Test, h: Harness, alarmId: string): void {
  const changes = h.audit(alarmId).filter((a) => a.action !== 'joined');
  t.same(
    changes.map((a) => a.rev),
    changes.map((_, i) => i + 1),
    'audit revs go 1, 2, 3, … with no gap and no repeat',
  );
  t.equal(h.alarm(alarmId).rev, changes.length, "the alarm's rev is the number of changes");
  const consoleRevs = h.outboxRows(alarmId).filter((r) => r.kind === 'station').map((r) => r.rev);
  t.same(consoleRevs, changes.map((_, i) => i + 1), 'one console message per rev, in order');
}

t.test('a panic from the middle shop alerts its 10 nearest and the station, once each', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const origin = STREET.shops[MIDDLE];
  const alarmId = await h.raise();

  const expected = h.ranked().slice(0, 10);
  t.equal(expected.length, 10);
  const alerts = h.shopAlerts(alarmId);
  t.same(alerts.map((a) => a.shopId).sort(), expected.map((n) => n.id).sort(), 'exactly the 10 nearest shops were alerted');
  t.equal(new Set(alerts.map((a) => a.shopId)).size, alerts.length, 'each once');
  t.notOk(alerts.some((a) => a.shopId === origin.shopId), 'not the origin itself');
  // Independently of rankNeighbours: nobody left out is nearer than somebody alerted.
  const pos = (id: string) => h.registry.shops.get(id)!;
  const o = pos(origin.shopId);
  const d = (id: string) => distanceM(o.lat!, o.lon!, pos(id).lat!, pos(id).lon!);
  const alertedIds = new Set(alerts.map((a) => a.shopId));
  const farthestAlerted = Math.max(...[...alertedIds].map(d));
  const nearestLeft = Math.min(...[...h.registry.shops.keys()].filter((id) => id !== origin.shopId && !alertedIds.has(id)).map(d));
  t.ok(farthestAlerted <= nearestLeft, `farthest alerted ${farthestAlerted.toFixed(1)} m <= nearest not alerted ${nearestLeft.toFixed(1)} m`);

  for (const a of alerts) {
    t.match(a, { alarmId, rev: 1, state: 'raised', originShopId: origin.shopId, originName: origin.name, doorPlate: `${MIDDLE + 1}号`, kind: 'panic', raisedAt: iso(clock.now()), ring: 1 });
    t.equal(a.distanceM, Math.round(d(a.shopId)), `${a.shopId}: distance in whole metres`);
  }
  const consoles = h.consoleMessages(alarmId);
  t.equal(consoles.length, 1, 'the station console once');
  t.match(consoles[0], { alarmId, rev: 1, shopId: origin.shopId, stationId: STREET_STATION, state: 'raised', kind: 'panic', overdue: false, ring: 1, shopsAlerted: 10, gatewayId: 'gw-test' });
  t.equal(h.published.length, 11, '11 messages in all: nothing else went out');
  t.equal(h.outboxRows(alarmId).length, 11, 'one outbox row per recipient');
  t.same(
    h.repo.recipients(alarmId).map((r) => r.ring),
    Array(10).fill(1),
    'ten recipients, ring 1',
  );
  t.match(h.audit(alarmId), [{ action: 'raised', actor: `device:${origin.deviceId}`, fromState: null, toState: 'raised', rev: 1 }]);
  const deadlines = h.db.prepare('SELECT kind, due_at AS dueAt FROM deadlines WHERE alarm_id = ? ORDER BY kind').all(alarmId);
  t.same(deadlines, [
    { kind: 'ack', dueAt: clock.now() + h.config.escalation.ackDeadlineMs },
    { kind: 'ring', dueAt: clock.now() + h.config.escalation.ringIntervalMs },
  ], 'the ack and ring deadlines are rows');
  t.equal(h.counters.get('alarms.raised'), 1);
  const stored = h.db.prepare('SELECT payload FROM events').all() as { payload: string }[];
  t.same(stored.map((r) => JSON.parse(r.payload).keys), ['9#'], 'the event is stored');
});

t.test('a second 9# while the alarm is open joins it: an audit row, no new fan-out', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const alarmId = await h.raise();
  const published = h.published.length;
  const outboxRows = h.outboxRows(alarmId).length;
  const again = await h.press(MIDDLE, '99#');
  t.equal(again.status === 'stored' && again.alarmId, alarmId, 'the same alarm');
  t.equal(h.published.length, published, 'nothing new published');
  t.equal(h.outboxRows(alarmId).length, outboxRows, 'no new outbox rows');
  t.equal(h.alarm(alarmId).rev, 1, 'rev unchanged');
  t.match(h.audit(alarmId).map((a) => a.action), ['raised', 'joined']);
  t.equal(h.counters.get('alarms.joined'), 1);
  t.equal((h.db.prepare('SELECT count(*) AS n FROM alarms').get() as { n: number }).n, 1, 'one alarm');

  // a panic input (not a keypad) joins too, and still after an ack
  await h.act({ alarmId, action: 'ack' });
  const p2 = h.published.length;
  const viaPanic = await h.ingest(h.deviceOf(MIDDLE), { seq: 50, boot: 1, type: 'panic' });
  t.equal(viaPanic.status === 'stored' && viaPanic.alarmId, alarmId);
  t.equal(h.published.length, p2);
  t.same(h.audit(alarmId).map((a) => a.action), ['raised', 'joined', 'ack', 'joined']);
  checkRevChain(t, h, alarmId);
});

t.test('console actions follow docs/concepts.md "Alarm kinds and states"; every change is rev+1 and an audit row', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const officer = STREET.officer.username;
  const alarmId = await h.raise();
  const alerted = h.repo.recipients(alarmId).map((r) => r.shopId);

  /** An action that must be refused, leaving the alarm as it was. */
  const refuse = async (action: ConsoleAction, code = 'LF_ERR_BAD_TRANSITION') => {
    const before = h.alarm(alarmId);
    const auditBefore = h.audit(alarmId).length;
    const published = h.published.length;
    const err = await refused(t, h.act(action), code, `${action.action} from ${before.state}`);
    if (code === 'LF_ERR_BAD_TRANSITION') t.match(err?.message, `action ${action.action} is not allowed on alarm ${alarmId} in state ${before.state}`);
    t.same(h.alarm(alarmId), before, 'alarm unchanged');
    t.equal(h.audit(alarmId).length, auditBefore, 'no audit row');
    t.equal(h.published.length, published, 'nothing published');
  };
  /** An action that must succeed: rev + 1, one audit row, one console message with the new rev. */
  const accept = async (action: ConsoleAction, want: { state: string; takenBy?: string | null }, user = officer) => {
    const before = h.alarm(alarmId);
    clock.advance(1000);
    const after = await h.act(action, STREET_STATION, user);
    t.equal(after.rev, before.rev + 1, `${action.action}: rev ${before.rev} → ${before.rev + 1}`);
    t.equal(after.state, want.state, `${action.action}: → ${want.state}`);
    if (want.takenBy !== undefined) t.equal(after.takenBy, want.takenBy);
    t.same(h.alarm(alarmId), after, 'what was returned is what was stored');
    const last = h.audit(alarmId).at(-1)!;
    t.match(last, { actor: `user:${user}`, action: action.action, fromState: before.state, toState: want.state, rev: after.rev, at: iso(clock.now()) });
    const msg = h.consoleMessages(alarmId).at(-1)!;
    t.match(msg, { rev: after.rev, state: want.state, updatedAt: iso(clock.now()) }, 'the console gets the change');
    return after;
  };

  // from raised
  await refuse({ alarmId, action: 'dispatch', patrol: 'P-1' });
  await refuse({ alarmId, action: 'close', disposition: 'real' });
  await accept({ alarmId, action: 'take' }, { state: 'raised', takenBy: officer });
  t.match(JSON.parse(h.audit(alarmId).at(-1)!.detail), { from: null, to: officer }, 'take audits who took it from whom');
  // Another officer's ack of an alarm the officer holds takes it over only by force (below, in detail).
  await accept({ alarmId, action: 'ack', force: true }, { state: 'acknowledged', takenBy: 'other-officer' }, 'other-officer');
  t.same(JSON.parse(h.audit(alarmId).at(-1)!.detail), { from: officer, to: 'other-officer', force: true }, 'a forced ack audits whom it was taken from');
  // from acknowledged
  await refuse({ alarmId, action: 'ack', force: true });
  await accept({ alarmId, action: 'take', force: true }, { state: 'acknowledged', takenBy: officer });
  t.same(JSON.parse(h.audit(alarmId).at(-1)!.detail), { from: 'other-officer', to: officer, force: true });
  const dispatched = await accept({ alarmId, action: 'dispatch', patrol: 'P-07', note: 'two officers' }, { state: 'dispatched' });
  t.equal(dispatched.patrol, 'P-07');
  // from dispatched
  await refuse({ alarmId, action: 'ack' });
  await refuse({ alarmId, action: 'dispatch', patrol: 'P-08' });
  await refuse({ alarmId, action: 'close' }, 'LF_ERR_BAD_PAYLOAD'); // a close needs its disposition
  const before = h.published.length;
  const closed = await accept({ alarmId, action: 'close', disposition: 'real', note: 'robbery prevented' }, { state: 'closed' });
  t.equal(closed.disposition, 'real');
  t.equal(closed.closedAt, iso(clock.now()));
  // close sends 'ended' to every alerted shop, with the closing rev
  const ended = h.published.slice(before).filter((p) => p.topic.endsWith('/alerts'));
  t.same(ended.map((p) => p.topic.split('/')[3]).sort(), [...alerted].sort(), "every alerted shop gets 'ended', once");
  for (const p of ended) t.match(p.payload, { alarmId, state: 'ended', rev: closed.rev });
  // from closed: nothing
  for (const action of ['ack', 'take', 'dispatch'] as const) await refuse({ alarmId, action });
  await refuse({ alarmId, action: 'close', disposition: 'false' });
  t.same(
    h.db.prepare('SELECT count(*) AS n FROM deadlines WHERE alarm_id = ? AND done_at IS NULL').get(alarmId),
    { n: 0 },
    'a closed alarm has no pending deadline',
  );
  checkRevChain(t, h, alarmId);

  // After the close, a 9# from the same shop raises a new alarm.
  const next = await h.raise();
  t.not(next, alarmId, 'a new alarm');
  t.equal(h.alarm(next).state, 'raised');
});

t.test('a false alarm closes from acknowledged without a dispatch', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const alarmId = await h.raise(0);
  await h.act({ alarmId, action: 'ack' });
  const closed = await h.act({ alarmId, action: 'close', disposition: 'false' });
  t.match(closed, { state: 'closed', disposition: 'false', patrol: null, rev: 3 });
  t.same(h.audit(alarmId).map((a) => a.action), ['raised', 'ack', 'close']);
});

t.test("another station's alarm, or an unknown id, is LF_ERR_UNKNOWN_ALARM", async (t) => {
  const dir = streetCopy(t);
  const setup = openDatabase(dir);
  addStation(setup, { id: 'PS2', name: '金砂派出所' });
  setup.close();
  const h = new Harness(t, dir, new ManualClock());
  const alarmId = await h.raise();
  const before = h.alarm(alarmId);
  for (const action of ['ack', 'take', 'dispatch', 'close'] as const) {
    await refused(t, h.act({ alarmId, action, disposition: 'real' }, 'PS2', 'officer-of-ps2'), 'LF_ERR_UNKNOWN_ALARM', `${action} by PS2`);
  }
  await refused(t, h.act({ alarmId: '019ab0f4-0000-7000-8000-000000000000', action: 'ack' }), 'LF_ERR_UNKNOWN_ALARM', 'an id that does not exist');
  t.same(h.alarm(alarmId), before, 'the alarm is untouched');
  t.same(h.audit(alarmId).map((a) => a.action), ['raised']);
});

t.test('ack deadline: overdue at ackDeadlineMs, re-sent every overdueRepeatMs until acknowledged', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const { ackDeadlineMs, overdueRepeatMs } = h.config.escalation;
  const alarmId = await h.raise();
  const overdueRows = () => h.audit(alarmId).filter((a) => a.action === 'overdue' || a.action === 'overdue-repeat');

  await h.advance(ackDeadlineMs - 1);
  t.equal(h.alarm(alarmId).overdue, false, 'not overdue 1 ms before the deadline');
  t.equal(overdueRows().length, 0);

  await h.advance(1);
  t.equal(h.alarm(alarmId).overdue, true, 'overdue at the deadline');
  t.match(overdueRows(), [{ action: 'overdue', actor: 'gateway', fromState: 'raised', toState: 'raised' }]);
  const first = h.consoleMessages(alarmId).at(-1)!;
  t.match(first, { overdue: true, state: 'raised', rev: h.alarm(alarmId).rev }, 'the console gets it with overdue:true');
  t.equal(h.counters.get('alarms.overdue'), 1);

  for (let i = 2; i <= 4; i++) {
    const consoleBefore = h.consoleMessages(alarmId).length;
    await h.advance(overdueRepeatMs - 1);
    t.equal(overdueRows().length, i - 1, `repeat ${i}: not before its time`);
    await h.advance(1);
    t.equal(overdueRows().length, i, `repeat ${i}: re-sent after overdueRepeatMs`);
    t.equal(overdueRows().at(-1)!.action, 'overdue-repeat');
    const sent = h.consoleMessages(alarmId).slice(consoleBefore);
    t.ok(sent.some((m) => m.overdue === true && m.rev === overdueRows().at(-1)!.rev), `repeat ${i}: console message with overdue:true`);
  }

  const acked = await h.act({ alarmId, action: 'ack' });
  t.equal(acked.overdue, false, 'an ack clears overdue');
  const rows = overdueRows().length;
  await h.advance(overdueRepeatMs);
  await h.advance(overdueRepeatMs);
  await h.advance(10 * overdueRepeatMs);
  t.equal(overdueRows().length, rows, 'no repeat after the ack');
  t.notOk(h.consoleMessages(alarmId).some((m) => m.rev > acked.rev && m.overdue), 'no overdue message after the ack');
  checkRevChain(t, h, alarmId);
});

t.test('an alarm acknowledged in time never becomes overdue', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const alarmId = await h.raise();
  await h.advance(h.config.escalation.ackDeadlineMs - 1);
  await h.act({ alarmId, action: 'ack' });
  await h.advance(10 * h.config.escalation.ackDeadlineMs);
  t.notOk(h.audit(alarmId).some((a) => a.action.startsWith('overdue')));
  t.equal(h.alarm(alarmId).overdue, false);
});

t.test('ring widening: too few answers → ring 2, then ring 3, never a 4th', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const { ringIntervalMs, ringSize } = h.config.escalation;
  const alarmId = await h.raise();
  const ranked = h.ranked();
  t.equal(ranked.length, 29);
  const ringOf = (ring: number) =>
    h
      .shopAlerts(alarmId)
      .filter((a) => a.state === 'raised' && a.ring === ring)
      .map((a) => a.shopId)
      .sort();

  // Two shops answer: fewer than minAnswers (3).
  const idx = (id: string) => STREET.shops.findIndex((s) => s.shopId === id);
  await h.reply(idx(ranked[0].id), alarmId, 'coming');
  await h.reply(idx(ranked[1].id), alarmId, 'seen');

  await h.advance(ringIntervalMs - 1);
  t.equal(h.alarm(alarmId).ring, 1, 'no widening before ringIntervalMs');
  t.same(ringOf(2), []);
  await h.advance(1);
  t.equal(h.alarm(alarmId).ring, 2, 'ring 2');
  t.same(ringOf(2), ranked.slice(ringSize, 2 * ringSize).map((n) => n.id).sort(), 'the next 10 nearest');
  t.match(h.audit(alarmId).filter((a) => a.action === 'ring-widened'), [{ actor: 'gateway', fromState: 'raised', toState: 'raised' }], 'one audit row');
  const r2 = h.shopAlerts(alarmId).filter((a) => a.ring === 2);
  const ringChange = h.audit(alarmId).find((a) => a.action === 'ring-widened')!;
  for (const a of r2) t.equal(a.rev, ringChange.rev, `${a.shopId}: the alert carries the widening's rev`);
  t.match(JSON.parse(ringChange.detail), { ring: 2, answers: 2 });

  await h.advance(ringIntervalMs);
  t.equal(h.alarm(alarmId).ring, 3, 'ring 3');
  t.same(ringOf(3), ranked.slice(2 * ringSize, 3 * ringSize).map((n) => n.id).sort(), 'the rest of the street (9 shops)');

  await h.advance(ringIntervalMs);
  await h.advance(10 * ringIntervalMs);
  t.equal(h.alarm(alarmId).ring, 3, 'never a 4th ring');
  t.equal(h.audit(alarmId).filter((a) => a.action === 'ring-widened').length, 2);
  const recipients = h.repo.recipients(alarmId);
  t.equal(recipients.length, 29, 'each shop alerted once');
  t.equal(new Set(recipients.map((r) => r.shopId)).size, 29);
  t.equal(h.counters.get('alarms.ring-widened'), 2);
  checkRevChain(t, h, alarmId);
});

t.test('ring widening: enough coming/seen answers keep the ring as it is', async (t) => {
  const cases: [name: string, replies: ('coming' | 'seen' | 'cannot')[], widens: boolean][] = [
    ['3 coming', ['coming', 'coming', 'coming'], false],
    ['2 coming + 1 seen', ['coming', 'coming', 'seen'], false],
    ['2 coming + 1 cannot', ['coming', 'coming', 'cannot'], true],
    ['no answer', [], true],
  ];
  for (const [name, replies, widens] of cases) {
    await t.test(name, async (t) => {
      const h = new Harness(t, streetCopy(t), new ManualClock());
      const alarmId = await h.raise();
      const ranked = h.ranked();
      const idx = (id: string) => STREET.shops.findIndex((s) => s.shopId === id);
      for (const [i, r] of replies.entries()) await h.reply(idx(ranked[i].id), alarmId, r);
      const published = h.shopAlerts(alarmId).length;
      await h.advance(h.config.escalation.ringIntervalMs);
      t.equal(h.alarm(alarmId).ring, widens ? 2 : 1, widens ? 'widened' : 'not widened');
      t.equal(h.shopAlerts(alarmId).length - published, widens ? 10 : 0, widens ? '10 more shops alerted' : 'nobody else alerted');
    });
  }
});

t.test("keypad answers count: three neighbours press 1#, the ring is not widened; one changes to 2#, it is", async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const alarmId = await h.raise();
  const idx = (id: string) => STREET.shops.findIndex((s) => s.shopId === id);
  const [a, b, c] = h.ranked().slice(0, 3).map((n) => idx(n.id));
  for (const i of [a, b, c]) await h.press(i, '1#');
  t.same(h.repo.replyCounts(alarmId), { coming: 3, seen: 0, cannot: 0 }, "each keypad's 1# is a 'coming' for the alarm on its display");
  t.match(h.consoleMessages(alarmId).at(-1), { replies: { coming: 3 } }, 'the console sees the answers');
  await h.press(c, '2#');
  t.same(h.repo.replyCounts(alarmId), { coming: 2, seen: 0, cannot: 1 }, "a shop's latest answer counts");
  await h.advance(h.config.escalation.ringIntervalMs);
  t.equal(h.alarm(alarmId).ring, 2, 'widened: only 2 coming');
  // a keypad of a shop that was not alerted has nothing to answer
  const far = idx(h.ranked().at(-1)!.id);
  await h.press(far, '1#');
  t.equal(h.counters.get('keypad.entries.reply-without-alert'), 1);
  await refused(t, h.reply(far, alarmId, 'coming'), 'LF_ERR_UNKNOWN_ALARM', 'an MQTT reply from a shop that was not alerted');
  checkRevChain(t, h, alarmId);
});

t.test('deadlines are rows: a restarted engine fires the deadline that fell due while it was down', async (t) => {
  const dir = streetCopy(t);
  const T0 = Date.parse('2026-11-23T01:00:00.000Z');
  const h1 = new Harness(t, dir, new ManualClock(T0), 'gw-before');
  const alarmId = await h1.raise();
  h1.stop(); // the gateway goes down before the ack deadline (T0 + 30 s)

  // It comes back 45 s after the alarm: the ack deadline has passed, the ring deadline (60 s) not yet.
  const clock2 = new ManualClock(T0 + 45_000);
  const h2 = new Harness(t, dir, clock2, 'gw-after');
  t.equal(h2.alarm(alarmId).overdue, false, 'not overdue yet: nothing ran while it was down');
  await h2.advance(0);
  t.equal(h2.alarm(alarmId).overdue, true, 'the overdue deadline fired at once after the restart');
  t.match(h2.consoleMessages(alarmId), [{ alarmId, overdue: true, gatewayId: 'gw-before' }], 'the new engine published it');
  const overdue = h2.audit(alarmId).find((a) => a.action === 'overdue')!;
  t.equal(overdue.at, iso(T0 + 45_000), 'stamped with the time it actually ran');
  t.match(JSON.parse(overdue.detail), { deadlineMs: T0 + 30_000 }, 'naming the deadline it was due at');
  t.equal(h2.alarm(alarmId).ring, 1);
  await h2.advance(15_000 - 1);
  t.equal(h2.alarm(alarmId).ring, 1, 'the ring deadline is still 60 s after the alarm');
  await h2.advance(1);
  t.equal(h2.alarm(alarmId).ring, 2, 'and fires then');
  checkRevChain(t, h2, alarmId);
});

t.test('an event whose commit item failed is not remembered as seen: its resend raises the alarm', async (t) => {
  // A device's event is acknowledged only after its commit. When the item fails (rolled back,
  // rejected, no PUBACK), the device resends the same (boot, seq): that resend must be processed,
  // not dropped as a duplicate, or the panic is lost.
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const device = h.deviceOf(MIDDLE);
  h.db.exec("CREATE TEMP TRIGGER fail_alarm BEFORE INSERT ON main.alarms BEGIN SELECT RAISE(ABORT, 'injected write failure'); END");
  await t.rejects(h.press(MIDDLE, '9#', 7), /injected write failure/, 'the first attempt fails and is rolled back');
  t.same(h.db.prepare('SELECT last_boot AS b, last_seq AS s FROM devices WHERE id = ?').get(device.id), { b: null, s: null }, 'nothing of it was committed');
  h.db.exec('DROP TRIGGER fail_alarm');
  const resent = await h.press(MIDDLE, '9#', 7);
  t.equal(resent.status, 'stored', 'the resend (same boot and seq) is stored, not refused as a duplicate');
  t.equal((h.db.prepare('SELECT count(*) AS n FROM alarms').get() as { n: number }).n, 1, 'and the alarm is raised');
});

t.test("a '9' … '#' entry whose '#' event failed still raises when the '#' is resent", async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  t.equal((await h.press(MIDDLE, '9', 1)).status, 'stored');
  h.db.exec("CREATE TEMP TRIGGER fail_alarm BEFORE INSERT ON main.alarms BEGIN SELECT RAISE(ABORT, 'injected write failure'); END");
  await t.rejects(h.press(MIDDLE, '#', 2), /injected write failure/);
  h.db.exec('DROP TRIGGER fail_alarm');
  // the seq mark is what the previous test is about; a new seq isolates the keypad entry
  const resent = await h.press(MIDDLE, '#', 3);
  t.equal(resent.status === 'stored' && typeof resent.alarmId, 'string', "the resent '#' completes the '9' entry: panic");
});

// ------------------------------------------------------------------ a device whose counter goes back

const U32 = 0xffff_ffff;

t.test('MQTT: a lower boot is a new sequence with a counter-reset; its resend is a duplicate', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const device = h.deviceOf(MIDDLE);
  const send = (boot: number, seq: number, keys = '9#') =>
    h.ingest(device, { boot, seq, type: 'keypad', keys }, 'mqtt');
  const mark = () => h.db.prepare('SELECT last_boot AS boot, last_seq AS seq FROM devices WHERE id = ?').get(device.id);
  const closeAll = async () => {
    for (const a of h.db.prepare("SELECT id FROM alarms WHERE state = 'raised'").all() as { id: string }[]) {
      await h.act({ alarmId: a.id, action: 'ack' });
      await h.act({ alarmId: a.id, action: 'close', disposition: 'test' });
    }
  };
  const first = await send(5, 1);
  t.ok(first.status === 'stored' && first.alarmId && !first.counterReset, 'boot 5: an alarm');
  await closeAll();

  const lower = await send(3, 1);
  t.ok(lower.status === 'stored' && lower.alarmId, 'boot 3 (lower): taken, its 9# raised an alarm');
  t.same(lower.status === 'stored' && lower.counterReset, { previousBoot: 5, previousSeq: 1, boot: 3, seq: 1, events: 'accepted' }, 'with a counter-reset: old and new boot');
  t.same(mark(), { boot: 3, seq: 1 }, 'the mark follows the new sequence');
  t.equal((await send(3, 1)).status, 'duplicate', 'a resend of the first event of the new sequence is a duplicate, not a second reset');
  const next = await send(3, 2, '1');
  t.ok(next.status === 'stored' && next.sequence === 'next' && !next.counterReset, 'the sequence goes on');
  await closeAll();

  const zero = await send(0, 1);
  t.ok(zero.status === 'stored' && zero.alarmId && zero.counterReset?.previousBoot === 3 && zero.counterReset.boot === 0, 'boot 0: a new sequence and a reset');
  await closeAll();
  const huge = await send(U32, 1);
  t.ok(huge.status === 'stored' && huge.alarmId && huge.sequence === 'newer-boot' && !huge.counterReset, 'boot u32 max: higher, a normal new sequence');
  await closeAll();
  const after = await send(7, 1);
  t.ok(after.status === 'stored' && after.alarmId, 'after an absurd boot, a normal one still raises');
  t.same(after.status === 'stored' && after.counterReset, { previousBoot: U32, previousSeq: 1, boot: 7, seq: 1, events: 'accepted' });
  t.equal(h.counters.get('events.counter-reset'), 3);
  t.equal(h.counters.get('events.duplicate'), 1);
});

t.test('serial: a lower boot is refused and the mark stays; a Modbus bridge counter that went back is a new sequence', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const device = h.deviceOf(MIDDLE);
  const send = (via: 'serial' | 'modbus', boot: number, seq: number, keys = '9#') =>
    h.ingest(device, { boot, seq, type: 'keypad', keys }, via);
  const mark = () => h.db.prepare('SELECT last_boot AS boot, last_seq AS seq FROM devices WHERE id = ?').get(device.id);
  const events = () => (h.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  t.equal((await send('serial', 7, 1, '1')).status, 'stored');
  const refused = await send('serial', 2, 1);
  t.same(refused, { status: 'refused', reason: 'counter-reset', counterReset: { previousBoot: 7, previousSeq: 1, boot: 2, seq: 1, events: 'refused' } });
  t.equal((await send('serial', 2, 2)).status, 'refused', 'and so is the rest of that sequence');
  t.same(mark(), { boot: 7, seq: 1 }, 'the mark stays');
  t.equal(device.lastBoot, 7, 'in memory too');
  t.equal(events(), 1, 'nothing refused was stored');
  t.equal((h.db.prepare('SELECT count(*) AS n FROM alarms').get() as { n: number }).n, 0, 'no alarm');
  const onward = await send('serial', 7, 2);
  t.ok(onward.status === 'stored' && onward.alarmId, "the keypad's own sequence (if that was a replay) goes on being taken");
  t.equal(h.counters.get('events.refused.counter-reset'), 2);

  const modbus = await send('modbus', 3, 1, '1');
  t.ok(modbus.status === 'stored' && !modbus.counterReset, 'a bridge counter that went back: a new sequence, no fault');
  t.same(mark(), { boot: 3, seq: 1 });
});

t.test('the ingest raises the counter-reset fault in the same commit; MQTT clears in sequence, serial only by reset-counter', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, streetCopy(t), clock);
  const sup = new Supervisor({
    db: h.db,
    clock,
    log: createLogger('silent'),
    counters: h.counters,
    writer: h.writer,
    registry: h.registry,
    faultAfterMs: 3_600_000,
    checkIntervalMs: 3_600_000,
    faults: h.faults,
  });
  sup.start();
  t.teardown(() => sup.stop());
  const ingest = deviceIngest({ db: h.db, writer: h.writer, engine: h.engine, clock, counters: h.counters, log: createLogger('silent'), faults: () => sup });
  const mqttDevice = h.deviceOf(3);
  const serialDevice = h.deviceOf(20);
  const ev = (boot: number, seq: number) => ({ boot, seq, type: 'heartbeat' as const });
  const faultsTopic = topics.stationFaults(STREET_STATION);
  // The fault store's messages leave through the harness's outbox.
  const faultMsgs = (deviceId: string) => h.published.filter((p) => p.topic === faultsTopic && p.payload.deviceId === deviceId).map((p) => p.payload);
  const openRows = (deviceId: string) =>
    h.db.prepare("SELECT detail FROM faults WHERE device_id = ? AND kind = 'counter-reset' AND cleared_at IS NULL").all(deviceId) as { detail: string }[];

  await ingest(mqttDevice, ev(5, 1), 'mqtt');
  await ingest(mqttDevice, ev(3, 1), 'mqtt');
  t.same(faultMsgs(mqttDevice.id).map((m) => [m.fault, m.state, (m.detail as { previousBoot: number }).previousBoot, (m.detail as { boot: number }).boot]), [['counter-reset', 'raised', 5, 3]]);
  t.same(openRows(mqttDevice.id).map((r) => JSON.parse(r.detail)), [{ previousBoot: 5, previousSeq: 1, boot: 3, seq: 1, events: 'accepted' }], 'stored with its detail');
  t.ok(sup.isFaulted(mqttDevice.id, 'counter-reset'));
  t.ok(h.faults.health().some((f) => f.deviceId === mqttDevice.id && f.fault === 'counter-reset'), 'listed for /health');
  await ingest(mqttDevice, ev(3, 1), 'mqtt');
  t.equal(faultMsgs(mqttDevice.id).length, 1, 'the resend is a duplicate: no second fault');
  await ingest(mqttDevice, ev(3, 2), 'mqtt');
  t.same(faultMsgs(mqttDevice.id).map((m) => m.state), ['raised', 'cleared'], 'the next event in sequence clears it');
  t.same(openRows(mqttDevice.id), []);
  const audit = h.db.prepare("SELECT actor, detail FROM audit WHERE action = 'counter-reset'").all() as { actor: string; detail: string }[];
  t.same(audit.map((a) => [a.actor, JSON.parse(a.detail).previousBoot, JSON.parse(a.detail).boot]), [[`device:${mqttDevice.id}`, 5, 3]], 'an audit row');

  await ingest(serialDevice, ev(7, 1), 'serial');
  const refused = await ingest(serialDevice, ev(2, 1), 'serial');
  t.equal(refused.outcome.status, 'refused');
  await ingest(serialDevice, ev(2, 2), 'serial');
  await ingest(serialDevice, ev(7, 2), 'serial');
  t.same(faultMsgs(serialDevice.id).map((m) => m.state), ['raised'], 'one fault for the refused sequence, not cleared by events in sequence');
  t.equal(openRows(serialDevice.id).length, 1);

  const done = await resetCounter({ db: h.db, writer: h.writer, registry: h.registry, engine: h.engine, supervisor: sup, faults: h.faults, clock, log: createLogger('silent') }, serialDevice.id, 'cli:tester');
  t.same(done, { deviceId: serialDevice.id, previous: { boot: 7, seq: 2 }, faultsCleared: 1 });
  t.same(faultMsgs(serialDevice.id).map((m) => m.state), ['raised', 'cleared'], 'reset-counter clears it');
  t.equal(serialDevice.lastBoot, null, 'the mark in memory is gone');
  const taken = await ingest(serialDevice, ev(2, 3), 'serial');
  t.equal(taken.outcome.status, 'stored', 'the next event, in any sequence, is taken');
  const resetAudit = h.db.prepare("SELECT actor, detail FROM audit WHERE action = 'reset-counter'").all() as { actor: string; detail: string }[];
  t.same(resetAudit.map((a) => [a.actor, JSON.parse(a.detail)]), [['cli:tester', { deviceId: serialDevice.id, previousBoot: 7, previousSeq: 2, faultsCleared: 1 }]]);
  await t.rejects(resetCounter({ db: h.db, writer: h.writer, registry: h.registry, engine: h.engine, supervisor: sup, faults: h.faults, clock, log: createLogger('silent') }, 'NOPE', 'cli'), { code: 'LF_ERR_NOT_FOUND' });
});

t.test('a bridge boot is a u32 above the stored mark', async (t) => {
  const now = Date.UTC(2026, 11, 1);
  t.equal(nextBridgeBoot(null, now), now / 1000, 'seconds since the epoch');
  t.equal(nextBridgeBoot(now / 1000, now), now / 1000 + 1, 'a restart within the same second does not reuse the boot');
  t.equal(nextBridgeBoot(now / 1000 + 5, now), now / 1000 + 6, 'a clock set back does not either');
  t.equal(nextBridgeBoot(now, now), now / 1000, 'a mark in milliseconds (an older version) is left behind');
  t.equal(nextBridgeBoot(U32, now), now / 1000);
  t.ok(nextBridgeBoot(null, Date.now()) <= U32);
});

// ---------------------------------------------------------------- PINs (docs/concepts.md "Keypad codes", "Alarm kinds and states")

const PIN = '24680864';
const DURESS = '13577531';

function setPins(h: Harness, shopIndex = MIDDLE): void {
  setShopPins(h.db, loadOrCreateGatewayKey(h.dataDir), STREET.shops[shopIndex].shopId, { pin: PIN, duressPin: DURESS }, 'user:installer', iso(h.clock.now()));
}

/** What a shop's alerts topic carried for an alarm, minus what differs between two alarms by nature. */
const comparable = (alerts: (ShopAlert & { shopId: string })[]) => alerts.map(({ alarmId: _a, raisedAt: _r, ...rest }) => rest);

/** Every row of every table, as text: for a PIN in clear anywhere in the database. */
function everyRow(db: Db): string {
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
  return tables.map((name) => JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all(), (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v))).join('\n');
}

t.test('cancel: *PIN# cancels the open alarm, ends it at every alerted shop, no widening, nothing more at close; a 9# raises a new one', async (t) => {
  const clock = new ManualClock(Date.parse('2026-12-01T08:00:00.000Z'));
  const h = new Harness(t, streetCopy(t), clock);
  setPins(h);
  const alarmId = await h.raise();
  const alerted = h.shopAlerts(alarmId).map((a) => a.shopId).sort();
  t.equal(alerted.length, 10);
  await h.advance(1_000);
  // Typed one key per event, as a keypad sends them.
  for (const k of `*${PIN}#`) await h.press(MIDDLE, k);
  const a = h.alarm(alarmId);
  t.equal(a.state, 'cancelled', 'the alarm is cancelled');
  t.equal(a.shopsEnded, true);
  t.equal(a.duress, false);
  const ended = h.shopAlerts(alarmId).filter((x) => x.state === 'ended');
  t.same(ended.map((x) => x.shopId).sort(), alerted, 'every alerted shop was told it ended');
  t.ok(ended.every((x) => x.rev === 2), 'at the new rev');
  t.match(h.consoleMessages(alarmId).at(-1), { alarmId, rev: 2, state: 'cancelled', duress: false }, 'the console gets the new state');
  t.match(h.audit(alarmId).at(-1), { action: 'cancel', fromState: 'raised', toState: 'cancelled', rev: 2, actor: `device:${STREET.shops[MIDDLE].deviceId}` });
  t.equal(h.counters.get('alarms.cancelled'), 1);

  const before = h.published.length;
  await h.advance(h.config.escalation.ringIntervalMs * 3);
  t.equal(h.alarm(alarmId).ring, 1, 'a cancelled alarm does not widen');
  t.equal(h.alarm(alarmId).overdue, false, 'nor becomes overdue');
  t.equal(h.published.length, before, 'nothing more was published');

  await refused(t, h.act({ action: 'ack', alarmId }), 'LF_ERR_BAD_TRANSITION', 'ack of a cancelled alarm');
  await h.act({ action: 'close', alarmId, disposition: 'false' });
  t.equal(h.alarm(alarmId).state, 'closed', 'an officer closes it');
  t.equal(h.shopAlerts(alarmId).length, 20, 'closing sends nothing more to the shops');

  const again = await h.raise();
  t.not(again, alarmId, 'a 9# after the cancel raises a new alarm');
  checkRevChain(t, h, alarmId);
  t.notOk(everyRow(h.db).includes(PIN), 'no PIN in clear in any table');
});

t.test('cancel with no open alarm, or a 9# after a cancel before the officer closes it', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  setPins(h);
  const none = await h.press(MIDDLE, `*${PIN}#`);
  t.notOk(none.status === 'stored' && none.alarmId, 'nothing to cancel');
  t.equal(h.counters.get('pins.cancel-without-alarm'), 1);
  const first = await h.raise();
  await h.press(MIDDLE, `*${PIN}#`);
  t.equal(h.alarm(first).state, 'cancelled');
  const second = await h.raise();
  t.not(second, first, 'cancelled is not joinable: a new alarm');
  t.equal(h.alarm(second).state, 'raised');
  t.equal(h.shopAlerts(second).length, 10, 'fanned out again');
});

t.test("duress: every neighbour topic carries exactly what a cancel's does, also after the officer closes; the console sees duress", async (t) => {
  const T0 = Date.parse('2026-12-01T08:00:00.000Z');
  const runs: Record<'cancel' | 'duress', { h: Harness; alarmId: string }> = {} as never;
  for (const mode of ['cancel', 'duress'] as const) {
    const h = new Harness(t, streetCopy(t), new ManualClock(T0));
    setPins(h);
    const alarmId = await h.raise();
    await h.advance(2_000);
    await h.press(MIDDLE, `*${mode === 'cancel' ? PIN : DURESS}#`);
    await h.advance(h.config.escalation.ringIntervalMs * 3);
    runs[mode] = { h, alarmId };
  }
  const c = runs.cancel;
  const d = runs.duress;
  t.same(comparable(d.h.shopAlerts(d.alarmId)), comparable(c.h.shopAlerts(c.alarmId)), 'the shops saw the same messages, field by field');
  t.equal(d.h.shopAlerts(d.alarmId).filter((x) => x.state === 'ended').length, 10);
  t.same(d.h.outboxRows(d.alarmId).filter((r) => r.kind === 'shop').map((r) => [r.id, r.rev]), c.h.outboxRows(c.alarmId).filter((r) => r.kind === 'shop').map((r) => [r.id, r.rev]), 'the same outbox rows to the shops');
  const da = d.h.alarm(d.alarmId);
  t.equal(da.state, 'raised', 'duress: the console keeps the open state, not cancelled');
  t.equal(da.duress, true);
  t.equal(da.ring, 1, 'no ring widening');
  t.match(d.h.consoleMessages(d.alarmId)[1], { rev: 2, state: 'raised', duress: true, priority: 1 }, 'duress: the highest console priority');
  t.match(c.h.consoleMessages(c.alarmId)[1], { rev: 2, state: 'cancelled', duress: false, priority: 2 });
  t.ok(d.h.consoleMessages(d.alarmId).every((m) => m.state !== 'cancelled'), 'the console never sees cancelled');
  t.ok(d.h.consoleMessages(d.alarmId).some((m) => m.overdue), 'it stays an alarm: overdue until acknowledged');

  // The officer closes each.
  await c.h.act({ action: 'close', alarmId: c.alarmId, disposition: 'false' });
  await d.h.act({ action: 'ack', alarmId: d.alarmId });
  await d.h.act({ action: 'dispatch', alarmId: d.alarmId, patrol: 'P1' });
  await d.h.act({ action: 'close', alarmId: d.alarmId, disposition: 'real' });
  t.equal(d.h.alarm(d.alarmId).state, 'closed');
  t.same(comparable(d.h.shopAlerts(d.alarmId)), comparable(c.h.shopAlerts(c.alarmId)), 'and after the close: still the same, nothing more for either');

  const again = await d.h.raise();
  t.not(again, d.alarmId, 'a 9# after a duress raises a new alarm');
  checkRevChain(t, d.h, d.alarmId);
  t.notOk(everyRow(d.h.db).includes(DURESS), 'no duress PIN in clear in any table');
});

t.test('a 9# after a duress, before the officer closes it, raises a new alarm that reaches the shops', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  setPins(h);
  const first = await h.raise();
  await h.press(MIDDLE, `*${DURESS}#`);
  const second = await h.raise();
  t.not(second, first, 'not joinable');
  t.equal(h.shopAlerts(second).filter((a) => a.state === 'raised').length, 10);
  t.equal(h.alarm(first).state, 'raised', 'the duress alarm stays open on the console');
});

t.test('duress with no open alarm: a console-only duress alarm, no neighbour alerted', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  setPins(h);
  const out = await h.press(MIDDLE, `*${DURESS}#`);
  const alarmId = out.status === 'stored' ? out.alarmId : undefined;
  t.ok(alarmId, 'an alarm');
  t.same(h.shopAlerts(alarmId!), [], 'no shop alerted');
  t.equal(h.repo.recipients(alarmId!).length, 0);
  t.match(h.consoleMessages(alarmId!), [{ rev: 1, state: 'raised', duress: true, priority: 1, kind: 'panic', shopsAlerted: 0 }]);
  const cancelShows = new Harness(t, streetCopy(t), new ManualClock());
  setPins(cancelShows);
  await cancelShows.press(MIDDLE, `*${PIN}#`);
  t.same(cancelShows.published.filter((p) => p.topic.endsWith('/alerts')), [], 'a cancel with no alarm sends no shop anything either');
  t.same(h.published.filter((p) => p.topic.endsWith('/alerts')), [], 'nor does the duress PIN');
  const panic = await h.raise();
  t.not(panic, alarmId, 'a 9# then raises a real alarm for the street');
  t.equal(h.shopAlerts(panic).length, 10);
});

t.test('five wrong PINs lock cancelling (a pin-lockout notice on the faults topic); duress still reaches the console; a restart keeps the lock', async (t) => {
  const dir = streetCopy(t);
  const T0 = Date.parse('2026-12-01T08:00:00.000Z');
  const h = new Harness(t, dir, new ManualClock(T0));
  setPins(h);
  const alarmId = await h.raise();
  for (let i = 0; i < 4; i++) await h.press(MIDDLE, '*0000#');
  t.equal(h.published.filter((p) => p.topic === topics.stationFaults(STREET_STATION)).length, 0, 'four wrong: no lock-out yet');
  await h.press(MIDDLE, '*9999#');
  const notices = h.published.filter((p) => p.topic === topics.stationFaults(STREET_STATION));
  t.match(notices, [{ payload: { fault: 'pin-lockout', shopId: STREET.shops[MIDDLE].shopId, deviceId: STREET.shops[MIDDLE].deviceId, state: 'raised', lockedUntil: iso(T0 + h.config.keypad.pinLockoutMs) } }], 'one pin-lockout notice');
  const lockout = notices[0]!.payload as { faultId: string; rev: number; subject: string; ticket: { state: string } };
  t.match(lockout, { rev: 1, subject: `shop:${STREET.shops[MIDDLE].shopId}`, ticket: { state: 'open' } }, 'a stored shop fault with its ticket');
  t.same(
    h.db.prepare('SELECT kind, subject, shop_id AS shopId, cleared_at AS clearedAt FROM faults WHERE id = ?').get(lockout.faultId),
    { kind: 'pin-lockout', subject: `shop:${STREET.shops[MIDDLE].shopId}`, shopId: STREET.shops[MIDDLE].shopId, clearedAt: null },
  );
  await h.press(MIDDLE, `*${PIN}#`);
  t.equal(h.alarm(alarmId).state, 'raised', 'the right PIN during the lock-out cancels nothing');
  t.equal(h.counters.get('pins.refused-locked'), 1);
  h.stop();

  const h2 = new Harness(t, dir, new ManualClock(T0 + 60_000));
  await h2.press(MIDDLE, `*${PIN}#`, 100);
  t.equal(h2.alarm(alarmId).state, 'raised', 'a restart does not lift the lock-out');
  const shopMsgs = h2.published.filter((p) => p.topic.endsWith('/alerts')).length;
  await h2.press(MIDDLE, `*${DURESS}#`, 101);
  const a = h2.alarm(alarmId);
  t.equal(a.duress, true, 'the duress PIN during a lock-out reaches the console');
  t.equal(a.shopsEnded, false, 'and changes nothing on the shops side');
  t.match(h2.consoleMessages(alarmId).at(-1), { duress: true, state: 'raised' });
  t.equal(h2.published.filter((p) => p.topic.endsWith('/alerts')).length, shopMsgs, 'no message to any shop');
  const joined = await h2.press(MIDDLE, '9#', 102);
  t.equal(joined.status === 'stored' && joined.alarmId, alarmId, 'on the shops side it is still the open alarm: a 9# joins it');

  t.equal(h2.published.filter((p) => p.topic === topics.stationFaults(STREET_STATION) && p.payload.state === 'cleared').length, 0, 'the lock-out fault is still open after the restart');
  await h2.advance(h2.config.keypad.pinLockoutMs);
  // The restarted gateway re-armed the lock-out's end from the stored lockedUntil.
  const cleared = h2.published.filter((p) => p.topic === topics.stationFaults(STREET_STATION) && p.payload.faultId === lockout.faultId);
  t.match(cleared, [{ payload: { state: 'cleared', rev: 2, ticket: { state: 'fixed', recovered: true, closedAs: 'recovered', fixedBy: 'gateway' } } }], 'the pin-lockout fault clears when the lock-out ends, across a restart');
  t.match(h2.db.prepare('SELECT cleared_how AS how, ticket FROM faults WHERE id = ?').get(lockout.faultId), { how: 'recovered', ticket: 'fixed' });
  await h2.press(MIDDLE, `*${PIN}#`, 103);
  t.equal(h2.alarm(alarmId).state, 'cancelled', 'after the lock-out the PIN cancels again');
  t.notOk(everyRow(h2.db).includes(PIN) || everyRow(h2.db).includes(DURESS), 'no PIN in clear in any table');
});

t.test('a right PIN resets the wrong count; --clear removes the PINs', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  setPins(h);
  for (let i = 0; i < 4; i++) await h.press(MIDDLE, '*1111#');
  await h.press(MIDDLE, `*${PIN}#`);
  for (let i = 0; i < 4; i++) await h.press(MIDDLE, '*1111#');
  t.equal(h.counters.get('pins.lockouts'), 0, 'four, a right one, four: never five in a row');
  clearShopPins(h.db, STREET.shops[MIDDLE].shopId, 'user:installer', iso(h.clock.now()));
  const alarmId = await h.raise();
  await h.press(MIDDLE, `*${PIN}#`);
  t.equal(h.alarm(alarmId).state, 'raised', 'without PINs nothing cancels');
  t.equal(h.counters.get('keypad.entries.pin-unset'), 1);
});
