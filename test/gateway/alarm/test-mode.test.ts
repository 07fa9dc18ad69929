/**
 * Test mode in the engine in-process (gateway/alarm/test-mode.ts, docs/concepts.md "Faults
 * and test mode", "Deadlines are rows"): a real SQLite database, a ManualClock, the group-commit
 * writer, the deadline scheduler and an outbox whose publisher records. A 9# from a shop (or a
 * device) in test mode raises an alarm marked `test` with no recipient, no outbox row and no
 * deadline, closed `test` at once and never joinable; the expiry is a stored deadline that the
 * clock drives (also after a restart); the first 9# after the test raises a real alarm.
 */
import t, { type Test } from 'tap';
import { STREET_STATION } from '../../../simulators/street.js';
import { ManualClock } from '../../../gateway/clock.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { EngineHarness, streetTemplate, type Teardown } from '../../helpers/engine.js';
import { testStatus, startTestMode } from '../../../gateway/alarm/test-mode.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { setShopPins } from '../../../gateway/alarm/pins.js';

const { street: STREET, copy: streetCopy } = await streetTemplate(t, 30);
const MIDDLE = 15;
const MIN = 60_000;

class Harness extends EngineHarness {
  /** `seq` to count keypad events from: a later engine on the same database continues the sequence. */
  constructor(t: Teardown, dataDir: string, clock: ManualClock, private seq = 0) {
    super(t, dataDir, clock);
  }

  /** Two settles, as this file always had: what the clock sets off may queue a further writer item. */
  override async advance(ms: number): Promise<void> {
    await super.advance(ms);
    await this.settle();
  }

  async press(i: number, keys: string): Promise<string | undefined> {
    this.clock.advance(1000);
    const device = this.registry.devices.get(STREET.shops[i].deviceId)!;
    const out = await this.ingest(device, { seq: ++this.seq, boot: 1, type: 'keypad', keys }, 'mqtt');
    return out.status === 'stored' ? out.alarmId : undefined;
  }

  start(scope: 'shop' | 'device', targetId: string, ms: number) {
    return this.writer.run(() => this.engine.startTest(scope, targetId, ms, 'cli:installer'), 'test-mode');
  }

  count(sql: string, ...args: unknown[]): number {
    return (this.db.prepare(sql).get(...args) as { n: number }).n;
  }

  about(alarmId: string) {
    return this.published.filter((p) => p.payload.alarmId === alarmId);
  }

  auditActions(alarmId: string | null): string[] {
    const rows = alarmId === null
      ? this.db.prepare('SELECT action FROM audit WHERE alarm_id IS NULL ORDER BY id').all()
      : this.db.prepare('SELECT action FROM audit WHERE alarm_id = ? ORDER BY id').all(alarmId);
    return (rows as { action: string }[]).map((r) => r.action);
  }
}

/** A test alarm: marked test, closed `test`, no recipients, no outbox rows, no deadlines, nothing published. */
function checkTestAlarm(t: Test, h: Harness, alarmId: string | undefined): void {
  t.ok(alarmId, 'the 9# was recorded as an alarm');
  const row = h.db.prepare('SELECT test, state, disposition, closed_at AS closedAt, test_mode_id AS tm FROM alarms WHERE id = ?').get(alarmId) as Record<string, unknown>;
  t.match(row, { test: 1, state: 'closed', disposition: 'test' }, 'marked test, closed with disposition test');
  t.ok(row.closedAt && row.tm, 'closed at once, in its test mode');
  t.equal(h.count('SELECT count(*) AS n FROM alarm_recipients WHERE alarm_id = ?', alarmId), 0, 'no neighbour alerted');
  t.equal(h.count('SELECT count(*) AS n FROM outbox WHERE alarm_id = ?', alarmId), 0, 'no outbox row (no shop, no station)');
  t.equal(h.count('SELECT count(*) AS n FROM deadlines WHERE alarm_id = ?', alarmId), 0, 'no ack or ring deadline');
  t.same(h.about(alarmId!), [], 'nothing published about it');
  t.same(h.auditActions(alarmId!), ['raised', 'close'], 'the audit trail has it');
  t.equal(h.repo.joinableForShop(STREET.shops[MIDDLE].shopId), undefined, 'not joinable');
}

t.test('a 9# in test mode raises a test alarm only; after test stop, a real one reaches everyone', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const shopId = STREET.shops[MIDDLE].shopId;
  const tm = await h.start('shop', shopId, 30 * MIN);
  t.equal(tm.untilMs, h.clock.now() + 30 * MIN);
  const first = await h.press(MIDDLE, '9#');
  checkTestAlarm(t, h, first);
  const second = await h.press(MIDDLE, '9#');
  t.not(second, first, 'a second 9# in the test raises its own test alarm, it joins nothing');
  checkTestAlarm(t, h, second);
  const help = await h.press(MIDDLE, '0#');
  checkTestAlarm(t, h, help);
  t.same(testStatus(h.db, h.clock.now()).map((s) => [s.scope, s.targetId, s.alarms.map((a) => a.alarmId)]), [['shop', shopId, [first, second, help]]], 'test status lists them');
  // Another shop is not in test mode.
  const other = await h.press(MIDDLE + 1, '9#');
  t.ok(h.about(other!).some((p) => p.topic === topics.stationAlarms(STREET_STATION)), 'another shop raises a real alarm');

  t.equal(await h.writer.run(() => h.engine.stopTest('shop', shopId, 'cli:installer')), true);
  t.same(testStatus(h.db, h.clock.now()), [], 'nothing in test mode');
  t.ok(h.auditActions(null).includes('test-stopped'), 'the stop is audited');
  const real = await h.press(MIDDLE, '9#');
  const row = h.db.prepare('SELECT test, state FROM alarms WHERE id = ?').get(real) as Record<string, unknown>;
  t.match(row, { test: 0, state: 'raised' }, 'the first 9# after the test is a real alarm');
  t.ok(h.about(real!).some((p) => p.topic === topics.stationAlarms(STREET_STATION)), 'it reaches the console');
  t.equal(h.about(real!).filter((p) => p.topic.endsWith('/alerts')).length, 10, 'and the 10 nearest neighbours');
  t.ok(h.count("SELECT count(*) AS n FROM deadlines WHERE alarm_id = ? AND kind = 'ack'", real) === 1, 'with its ack deadline');
  t.equal(await h.writer.run(() => h.engine.stopTest('shop', shopId, 'cli:installer')), false, 'stopping again: it was in none');
});

t.test('test mode expires by the clock: an audit row, then a 9# is real', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const shopId = STREET.shops[MIDDLE].shopId;
  await h.start('shop', shopId, 5 * MIN);
  t.equal(h.engine.nextDeadline(), h.clock.now() + 5 * MIN, 'the expiry is a stored deadline');
  await h.advance(5 * MIN - 10_000);
  checkTestAlarm(t, h, await h.press(MIDDLE, '9#'));
  t.notOk(h.auditActions(null).includes('test-expired'), 'not yet expired');
  await h.advance(20_000);
  t.ok(h.auditActions(null).includes('test-expired'), 'expiry is an audit row');
  t.equal(h.count("SELECT count(*) AS n FROM test_modes WHERE ended_how = 'expired'"), 1);
  const real = await h.press(MIDDLE, '9#');
  t.match(h.db.prepare('SELECT test, state FROM alarms WHERE id = ?').get(real), { test: 0, state: 'raised' }, 'a real alarm after expiry');
  t.ok(h.about(real!).some((p) => p.topic.endsWith('/alerts')), 'neighbours alerted');
});

t.test('a device in test mode: its 9# is a test alarm, the shop\'s other keys are not affected', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  await h.start('device', STREET.shops[MIDDLE].deviceId, 10 * MIN);
  checkTestAlarm(t, h, await h.press(MIDDLE, '9#'));
});

t.test('test mode is re-armed after a restart; one that fell due while down expires at once', async (t) => {
  const dir = streetCopy(t);
  const clock = new ManualClock();
  const shopId = STREET.shops[MIDDLE].shopId;
  const h1 = new Harness(t, dir, clock);
  await h1.start('shop', shopId, 10 * MIN);
  h1.stop();
  // Restarted within the test: still in test mode.
  const h2 = new Harness(t, dir, clock, 100);
  checkTestAlarm(t, h2, await h2.press(MIDDLE, '9#'));
  h2.stop();
  // Down past the expiry: the stored deadline fires at start.
  clock.advance(20 * MIN);
  const h3 = new Harness(t, dir, clock, 200);
  await h3.advance(0);
  t.ok(h3.auditActions(null).includes('test-expired'), 'expired on start');
  const real = await h3.press(MIDDLE, '9#');
  t.match(h3.db.prepare('SELECT test FROM alarms WHERE id = ?').get(real), { test: 0 });
});

t.test('without a gateway the CLI writes the same rows; a new start replaces a running one', async (t) => {
  const dir = streetCopy(t);
  const clock = new ManualClock();
  const shopId = STREET.shops[MIDDLE].shopId;
  const db = openDatabase(dir);
  db.transaction(() => startTestMode(db, 'shop', shopId, 10 * MIN, 'cli', clock.now())).immediate();
  db.transaction(() => startTestMode(db, 'shop', shopId, 20 * MIN, 'cli', clock.now())).immediate();
  t.same(testStatus(db, clock.now()).map((s) => s.untilMs), [clock.now() + 20 * MIN], 'one test mode, the newer');
  t.equal((db.prepare("SELECT count(*) AS n FROM deadlines WHERE kind = 'test-expiry' AND done_at IS NULL").get() as { n: number }).n, 1, "the replaced one's deadline is done");
  db.close();
  const h = new Harness(t, dir, clock);
  checkTestAlarm(t, h, await h.press(MIDDLE, '9#'));
});

t.test('a duress PIN in test mode with no open alarm is a test alarm too (the installer trying the PINs)', async (t) => {
  const h = new Harness(t, streetCopy(t), new ManualClock());
  const shopId = STREET.shops[MIDDLE].shopId;
  setShopPins(h.db, loadOrCreateGatewayKey(h.dataDir), shopId, { pin: '2468', duressPin: '1357' }, 'cli', new Date(h.clock.now()).toISOString());
  await h.start('shop', shopId, 10 * MIN);
  const id = await h.press(MIDDLE, '*1357#');
  checkTestAlarm(t, h, id);
  t.match(h.db.prepare('SELECT duress FROM alarms WHERE id = ?').get(id), { duress: 1 }, 'marked duress');
  await h.writer.run(() => h.engine.stopTest('shop', shopId, 'cli:installer'));
  const real = await h.press(MIDDLE, '*1357#');
  t.ok(h.about(real!).some((p) => p.topic === topics.stationAlarms(STREET_STATION) && p.payload.duress === true), 'after the test a duress PIN reaches the console');
});
