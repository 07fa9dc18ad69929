/**
 * Link supervision (gateway/supervision.ts) with a manual clock over a real database: silence
 * raises a fault once, an answer clears it, both are stored and published; open faults survive a
 * restart and silence is counted afresh.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../gateway/store/db.js';
import { createLogger } from '../../gateway/logger.js';
import { ManualClock } from '../../gateway/clock.js';
import { Counters } from '../../gateway/metrics.js';
import { GroupCommitWriter } from '../../gateway/ingest/writer.js';
import { addStation, addShop, addDevice, revokeDevice } from '../../gateway/registry/registry.js';
import { RegistryCache } from '../../gateway/registry/registry-cache.js';
import { Supervisor } from '../../gateway/supervision.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import { Outbox } from '../../gateway/delivery/outbox.js';
import { FaultStore } from '../../gateway/faults/fault-store.js';

const dir = mkdtempSync(join(tmpdir(), 'lf-sup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const setupDb = openDatabase(dir);
addStation(setupDb, { id: 'PS1', name: 'Station' });
addStation(setupDb, { id: 'C1', name: 'Compound', compoundOf: 'PS1' });
addShop(setupDb, { id: 'S1', name: 'Shop', address: '1 Road', lat: 23, lon: 116, stationId: 'PS1', compoundId: 'C1' });
const deviceId = addDevice(setupDb, loadOrCreateGatewayKey(dir), { shopId: 'S1', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: 1 }).device.id;
const mqttKeypad = addDevice(setupDb, loadOrCreateGatewayKey(dir), { shopId: 'S1', type: 'keypad', transport: 'mqtt' }).device.id;
const mqttPanic = addDevice(setupDb, loadOrCreateGatewayKey(dir), { shopId: 'S1', type: 'panic', transport: 'mqtt' }).device.id;
const revoked = addDevice(setupDb, loadOrCreateGatewayKey(dir), { shopId: 'S1', type: 'keypad', transport: 'mqtt' }).device.id;
revokeDevice(setupDb, revoked);
setupDb.close();

function start(clock: ManualClock, supervision: { mqttFaultAfterMs?: number; selfTestFaultAfterMs?: number; lineErrors?: { windowMs: number; perWindow: number } } = {}) {
  const db = openDatabase(dir);
  const log = createLogger('silent');
  const writer = new GroupCommitWriter({ db, log });
  const registry = new RegistryCache(db);
  registry.reload();
  const published: { topic: string; msg: Record<string, unknown> }[] = [];
  // The fault store's messages leave through the outbox.
  const outbox = new Outbox(db, { publish: (m) => published.push({ topic: m.topic, msg: m.body as unknown as Record<string, unknown> }) });
  const faults = new FaultStore({ db, outbox, registry, clock, log, gatewayId: 'gw-test', writer });
  faults.start();
  const sup = new Supervisor({
    db,
    clock,
    log,
    counters: new Counters(),
    writer,
    registry,
    faultAfterMs: 20_000,
    ...supervision,
    checkIntervalMs: 1_000,
    faults,
  });
  sup.start();
  const stop = () => {
    sup.stop();
    faults.stop();
    writer.close();
    db.close();
  };
  return { db, sup, faults, published, stop, registry };
}

const settle = () => new Promise((r) => setImmediate(r));
const openFaults = (db: ReturnType<typeof openDatabase>) => (db.prepare('SELECT count(*) AS n FROM faults WHERE cleared_at IS NULL').get() as { n: number }).n;

t.test('silence raises one fault; an answer clears it; the consoles of the station and the compound hear both', async (t) => {
  const clock = new ManualClock();
  const g = start(clock);
  t.teardown(g.stop);
  g.sup.watch(deviceId);
  clock.advance(19_000);
  t.notOk(g.sup.isFaulted(deviceId), 'not yet: 19 s of silence');
  g.sup.seen(deviceId);
  clock.advance(19_000);
  t.notOk(g.sup.isFaulted(deviceId), 'an answer restarts the count');
  clock.advance(2_000);
  t.ok(g.sup.isFaulted(deviceId), '20 s after the last answer: a fault');
  clock.advance(60_000);
  await settle();
  t.equal(openFaults(g.db), 1, 'stored once, not at every check');
  t.same(g.published.map((p) => [p.topic, p.msg.state]), [
    [topics.stationFaults('PS1'), 'raised'],
    [topics.stationFaults('C1'), 'raised'],
  ]);
  t.match(g.published[0]!.msg, { deviceId, shopId: 'S1', fault: 'silent' });
  g.sup.seen(deviceId);
  await settle();
  t.notOk(g.sup.isFaulted(deviceId));
  t.equal(openFaults(g.db), 0, 'cleared in the store');
  t.same(g.published.slice(2).map((p) => [p.topic, p.msg.state]), [
    [topics.stationFaults('PS1'), 'cleared'],
    [topics.stationFaults('C1'), 'cleared'],
  ]);
});

t.test('an open fault survives a restart and is cleared by the first answer; silence counts from the start', async (t) => {
  const clock = new ManualClock();
  let g = start(clock);
  g.sup.watch(deviceId);
  clock.advance(25_000);
  await settle();
  t.equal(openFaults(g.db), 1);
  g.stop();
  g = start(clock);
  t.teardown(g.stop);
  t.ok(g.sup.isFaulted(deviceId), 'still faulted after the restart');
  t.same(g.faults.health().map((f) => f.deviceId), [deviceId]);
  g.sup.watch(deviceId);
  g.sup.seen(deviceId);
  await settle();
  t.equal(openFaults(g.db), 0, 'its answer clears it');
  g.sup.unwatch(deviceId);
  clock.advance(120_000);
  t.notOk(g.sup.isFaulted(deviceId), 'a device no longer polled cannot fall silent');
});

t.test("a counter-reset fault is not a silence: an answer does not clear it; it survives a restart with its detail", async (t) => {
  const clock = new ManualClock();
  let g = start(clock);
  const writer = new GroupCommitWriter({ db: g.db, log: createLogger('silent') });
  const registry = new RegistryCache(g.db);
  registry.reload();
  const device = registry.devices.get(deviceId)!;
  const detail = { previousBoot: 7, previousSeq: 3, boot: 2, seq: 1, events: 'refused' as const };
  // Silent first, then the counter goes back: two faults of one device, each on its own.
  g.sup.watch(deviceId);
  clock.advance(25_000);
  await writer.run((fx) => g.sup.counterReset(fx, device, detail));
  await settle();
  t.equal(openFaults(g.db), 2, 'both stored');
  t.same(
    g.published.filter((p) => p.topic === topics.stationFaults('PS1')).map((p) => [p.msg.fault, p.msg.state]),
    [
      ['silent', 'raised'],
      ['counter-reset', 'raised'],
    ],
  );
  g.sup.seen(deviceId);
  await settle();
  t.notOk(g.sup.isFaulted(deviceId), 'the answer clears the silence');
  t.ok(g.sup.isFaulted(deviceId, 'counter-reset'), 'not the counter-reset');
  t.same(
    g.db.prepare('SELECT kind AS fault FROM faults WHERE cleared_at IS NULL').all(),
    [{ fault: 'counter-reset' }],
    'in the store too',
  );
  writer.close();
  g.stop();
  g = start(clock);
  t.teardown(g.stop);
  t.match(g.faults.health(), [{ faultId: String, rev: 1, deviceId, fault: 'counter-reset', raisedAt: new Date(clock.now()).toISOString(), detail, ticket: { state: 'open' } }], 'after a restart, with its detail');
});

t.test('MQTT devices: silence counted from the start, a publish clears it, the will is a fault at once; revoked ones are not supervised', async (t) => {
  const clock = new ManualClock();
  const g = start(clock, { mqttFaultAfterMs: 90_000 });
  t.teardown(g.stop);
  clock.advance(89_000);
  t.notOk(g.sup.isFaulted(mqttKeypad), 'not yet: 89 s since the start');
  g.sup.seen(mqttPanic);
  clock.advance(1_000);
  t.ok(g.sup.isFaulted(mqttKeypad), 'never heard since the start: silent after 90 s');
  t.notOk(g.sup.isFaulted(mqttPanic), 'heard 1 s ago');
  t.notOk(g.sup.isFaulted(revoked), 'a revoked device is not supervised');
  t.notOk(g.sup.isFaulted(deviceId), 'a wired device not polled by a bridge is not watched');
  g.sup.seen(mqttKeypad);
  t.notOk(g.sup.isFaulted(mqttKeypad), 'its publish clears it');
  g.sup.offline(mqttPanic);
  t.ok(g.sup.isFaulted(mqttPanic, 'offline'), 'its will: offline at once');
  clock.advance(200_000);
  t.notOk(g.sup.isFaulted(mqttPanic, 'silent'), 'an offline device is not also silent');
  g.sup.offline(revoked);
  t.notOk(g.sup.isFaulted(revoked, 'offline'), "a revoked device's will is no fault");
  g.sup.seen(mqttPanic);
  t.notOk(g.sup.isFaulted(mqttPanic, 'offline'), 'online again clears it');
  await settle();
  t.same(
    g.published.filter((p) => p.topic === topics.stationFaults('PS1')).map((p) => [p.msg.deviceId, p.msg.fault, p.msg.state]),
    [
      [mqttKeypad, 'silent', 'raised'],
      [mqttKeypad, 'silent', 'cleared'],
      [mqttPanic, 'offline', 'raised'],
      [mqttKeypad, 'silent', 'raised'],
      [mqttPanic, 'offline', 'cleared'],
    ],
  );
});

t.test('a declared self-test missed for the interval is a fault, cleared by the next; a failed one is a fault until one passes', async (t) => {
  const clock = new ManualClock();
  const g = start(clock, { selfTestFaultAfterMs: 25 * 3600_000 });
  t.teardown(g.stop);
  const keypad = g.registry.devices.get(mqttKeypad)!;
  const panic = g.registry.devices.get(mqttPanic)!;
  g.sup.watch(deviceId);
  clock.advance(24 * 3600_000);
  g.sup.event(keypad, { type: 'selftest', result: 0, seq: 1 });
  clock.advance(3600_000);
  t.notOk(g.sup.isFaulted(mqttKeypad, 'selftest-missed'), 'tested an hour ago');
  clock.advance(24 * 3600_000);
  t.ok(g.sup.isFaulted(mqttKeypad, 'selftest-missed'), '25 h without a self-test: a fault');
  t.notOk(g.sup.isFaulted(mqttPanic, 'selftest-missed'), 'a panic button declares none');
  t.notOk(g.sup.isFaulted(deviceId, 'selftest-missed'), 'the generic Modbus module declares none');
  g.sup.event(keypad, { type: 'selftest', result: 4, seq: 2 });
  t.notOk(g.sup.isFaulted(mqttKeypad, 'selftest-missed'), 'a self-test was done');
  t.ok(g.sup.isFaulted(mqttKeypad, 'selftest-failed'), 'and failed: a fault');
  g.sup.event(keypad, { type: 'selftest', result: 0, seq: 3 });
  t.notOk(g.sup.isFaulted(mqttKeypad, 'selftest-failed'), 'the next passing one clears it');
  g.sup.event(panic, { type: 'tamper', seq: 1 });
  t.ok(g.sup.isFaulted(mqttPanic, 'tamper'), 'tamper without `active` is active');
  g.sup.event(panic, { type: 'battery', level: 50, seq: 2 });
  g.sup.event(panic, { type: 'battery', low: true, seq: 3 });
  t.ok(g.sup.isFaulted(mqttPanic, 'low-battery'), 'a low battery');
  g.sup.event(panic, { type: 'tamper', active: false, seq: 4 });
  g.sup.event(panic, { type: 'battery', low: false, seq: 5 });
  t.notOk(g.sup.isFaulted(mqttPanic, 'tamper') || g.sup.isFaulted(mqttPanic, 'low-battery'), 'both clear with their cause');
  await settle();
  t.same(
    // (The polled Modbus module, never answering here, is silent: not what this test is about.)
    g.published.filter((p) => p.topic === topics.stationFaults('PS1') && p.msg.fault !== 'silent').map((p) => [p.msg.deviceId, p.msg.fault, p.msg.state]),
    [
      [mqttKeypad, 'selftest-missed', 'raised'],
      [mqttKeypad, 'selftest-missed', 'cleared'],
      [mqttKeypad, 'selftest-failed', 'raised'],
      [mqttKeypad, 'selftest-failed', 'cleared'],
      [mqttPanic, 'tamper', 'raised'],
      [mqttPanic, 'low-battery', 'raised'],
      [mqttPanic, 'tamper', 'cleared'],
      [mqttPanic, 'low-battery', 'cleared'],
    ],
  );
  t.match(g.published.find((p) => p.msg.fault === 'selftest-failed')!.msg, { result: 4 });
  t.same(g.db.prepare("SELECT kind AS fault FROM faults WHERE cleared_at IS NULL AND device_id IN (?, ?) AND kind != 'silent'").all(mqttKeypad, mqttPanic), [], 'all cleared in the store (the last test left a silence open)');
});

t.test('line errors: a fault at the count within the window, cleared after a whole window without one, also after a restart', async (t) => {
  const clock = new ManualClock();
  const lineErrors = { windowMs: 60_000, perWindow: 3 };
  let g = start(clock, { lineErrors });
  g.sup.lineError(deviceId);
  clock.advance(61_000);
  g.sup.lineError(deviceId);
  g.sup.lineError(deviceId);
  t.notOk(g.sup.isFaulted(deviceId, 'line-errors'), 'the first error fell out of the window: two in it');
  g.sup.lineError(deviceId);
  t.ok(g.sup.isFaulted(deviceId, 'line-errors'), 'three within the window: a fault');
  clock.advance(59_000);
  t.ok(g.sup.isFaulted(deviceId, 'line-errors'), 'not clean for a whole window yet');
  g.sup.lineError(deviceId);
  clock.advance(59_000);
  t.ok(g.sup.isFaulted(deviceId, 'line-errors'), 'another error restarted the clean window');
  clock.advance(1_000);
  t.notOk(g.sup.isFaulted(deviceId, 'line-errors'), 'a whole window clean: cleared');
  g.sup.lineError(deviceId);
  g.sup.lineError(deviceId);
  g.sup.lineError(deviceId);
  await settle();
  t.match(g.published.filter((p) => p.msg.fault === 'line-errors' && p.topic === topics.stationFaults('PS1')).map((p) => [p.msg.state, p.msg.errors]), [
    ['raised', 3],
    ['cleared', 3], // a cleared fault's message carries its detail (the count at the raise)
    ['raised', 3],
  ]);
  g.stop();
  g = start(clock, { lineErrors });
  t.teardown(g.stop);
  t.ok(g.sup.isFaulted(deviceId, 'line-errors'), 'open after a restart');
  clock.advance(60_000);
  t.notOk(g.sup.isFaulted(deviceId, 'line-errors'), 'a window without an error since the start clears it');
});

t.test('the last self-test is kept across a restart: a gateway restarted more often than the interval still finds a missed one', async (t) => {
  const clock = new ManualClock();
  const day = { selfTestFaultAfterMs: 25 * 3600_000 };
  let g = start(clock, day);
  g.sup.event(g.registry.devices.get(mqttKeypad)!, { type: 'selftest', result: 0, seq: 10 });
  await settle();
  clock.advance(20 * 3600_000);
  g.stop();
  g = start(clock, day);
  t.teardown(g.stop);
  clock.advance(4 * 3600_000);
  t.notOk(g.sup.isFaulted(mqttKeypad, 'selftest-missed'), '24 h after its self-test');
  clock.advance(3600_000);
  t.ok(g.sup.isFaulted(mqttKeypad, 'selftest-missed'), '25 h after it, 5 h after the restart: missed');
});

// Last: it revokes a device of the shared database.
t.test('a device revoked while faulty is no longer supervised: its open faults clear', async (t) => {
  const clock = new ManualClock();
  const g = start(clock, { mqttFaultAfterMs: 90_000 });
  t.teardown(g.stop);
  g.sup.offline(mqttPanic);
  clock.advance(90_000);
  t.ok(g.sup.isFaulted(mqttPanic, 'offline'));
  revokeDevice(g.db, mqttPanic);
  g.registry.reload();
  clock.advance(1_000);
  t.notOk(g.sup.isFaulted(mqttPanic, 'offline'), 'cleared at the next check');
  clock.advance(200_000);
  t.notOk(g.sup.isFaulted(mqttPanic, 'silent'), 'and never silent');
  await settle();
  t.same(g.db.prepare('SELECT kind AS fault FROM faults WHERE device_id = ? AND cleared_at IS NULL').all(mqttPanic), [], 'in the store too');
  t.same(
    g.db.prepare("SELECT cleared_how AS how, ticket, recovered, closed_as AS closedAs, fixed_by AS fixedBy FROM faults WHERE device_id = ? AND kind = 'offline' ORDER BY raised_at DESC LIMIT 1").get(mqttPanic),
    { how: 'revoked', ticket: 'fixed', recovered: 0, closedAs: 'revoked', fixedBy: 'gateway' },
    'its ticket closed as revoked, not as a recovery',
  );
  t.match(g.published.filter((p) => p.msg.deviceId === mqttPanic && p.msg.state === 'cleared').at(-1)?.msg, { ticket: { state: 'fixed', recovered: false, closedAs: 'revoked' } });
});
