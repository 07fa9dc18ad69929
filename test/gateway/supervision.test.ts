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
import { RegistryCache, addStation, addShop, addDevice } from '../../gateway/registry/registry.js';
import { Supervisor } from '../../gateway/supervision.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

const dir = mkdtempSync(join(tmpdir(), 'lf-sup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const setupDb = openDatabase(dir);
addStation(setupDb, { id: 'PS1', name: 'Station' });
addStation(setupDb, { id: 'C1', name: 'Compound', compoundOf: 'PS1' });
addShop(setupDb, { id: 'S1', name: 'Shop', address: '1 Road', lat: 23, lon: 116, stationId: 'PS1', compoundId: 'C1' });
const deviceId = addDevice(setupDb, loadOrCreateGatewayKey(dir), { shopId: 'S1', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: 1 }).device.id;
setupDb.close();

function start(clock: ManualClock) {
  const db = openDatabase(dir);
  const log = createLogger('silent');
  const writer = new GroupCommitWriter({ db, log });
  const registry = new RegistryCache(db);
  registry.reload();
  const published: { topic: string; msg: Record<string, unknown> }[] = [];
  const sup = new Supervisor({
    db,
    clock,
    log,
    counters: new Counters(),
    writer,
    registry,
    faultAfterMs: 20_000,
    checkIntervalMs: 1_000,
    publish: (topic, payload) => published.push({ topic, msg: JSON.parse(payload) as Record<string, unknown> }),
  });
  sup.start();
  const stop = () => {
    sup.stop();
    writer.close();
    db.close();
  };
  return { db, sup, published, stop };
}

const settle = () => new Promise((r) => setImmediate(r));
const openFaults = (db: ReturnType<typeof openDatabase>) => (db.prepare('SELECT count(*) AS n FROM device_faults WHERE cleared_at IS NULL').get() as { n: number }).n;

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
  t.same(g.sup.faults().map((f) => f.deviceId), [deviceId]);
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
    g.db.prepare('SELECT fault FROM device_faults WHERE cleared_at IS NULL').all(),
    [{ fault: 'counter-reset' }],
    'in the store too',
  );
  writer.close();
  g.stop();
  g = start(clock);
  t.teardown(g.stop);
  t.same(g.sup.faults(), [{ deviceId, fault: 'counter-reset', raisedAt: new Date(clock.now()).toISOString(), detail }], 'after a restart, with its detail');
});
