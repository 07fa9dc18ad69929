/**
 * The fault store (gateway/faults/fault-store.ts) over a real database, on the manual clock: who
 * gets which fault, revs and their outbox rows (a newer rev supersedes an undelivered older one),
 * the ticket's transitions and refusals, a revoked device's fault closing as such, ids by prefix,
 * and the db-error that cannot wait for the database: published at once while the database is
 * read-only (SQLite's query_only), kept in memory, stored with its outbox rows once it writes again.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { createLogger } from '../../../gateway/logger.js';
import { ManualClock } from '../../../gateway/clock.js';
import { GroupCommitWriter } from '../../../gateway/ingest/writer.js';
import { addStation, addShop, addDevice } from '../../../gateway/registry/registry.js';
import { RegistryCache } from '../../../gateway/registry/registry-cache.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { Outbox } from '../../../gateway/delivery/outbox.js';
import { FaultStore } from '../../../gateway/faults/fault-store.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { validators, type ConsoleFault } from '../../../firmware-contracts/mqtt/payloads.js';

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'lf-fs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir);
  addStation(db, { id: 'PS1', name: 'Station 1' });
  addStation(db, { id: 'PS2', name: 'Station 2' });
  addStation(db, { id: 'C1', name: 'Compound', compoundOf: 'PS1' });
  addShop(db, { id: 'S1', name: 'Shop 1', address: '1 Road', lat: 23, lon: 116, stationId: 'PS1', compoundId: 'C1' });
  addShop(db, { id: 'S2', name: 'Shop 2', address: '2 Road', lat: 23.001, lon: 116, stationId: 'PS2' });
  const key = loadOrCreateGatewayKey(dir);
  const keypad = addDevice(db, key, { shopId: 'S2', type: 'keypad', transport: 'serial', port: '/dev/ttyFAKE0', busAddress: 3 }).device;
  const mqttKeypad = addDevice(db, key, { shopId: 'S1', type: 'keypad', transport: 'mqtt' }).device.id;
  const clock = new ManualClock(Date.parse('2026-12-02T04:00:00.000Z'));
  const log = createLogger('silent');
  const writer = new GroupCommitWriter({ db, log });
  const registry = new RegistryCache(db);
  registry.reload();
  const sent: { topic: string; msg: ConsoleFault; direct: boolean }[] = [];
  /** What Node-RED's flows are given (the flow feed's tap). */
  const toFlows: ConsoleFault[] = [];
  const check = (msg: unknown) => {
    if (!validators.consoleFault.check(msg)) t.fail(`outside the contract: ${validators.consoleFault.firstError(msg)}`);
    return msg as ConsoleFault;
  };
  const outbox = new Outbox(db, { publish: (m) => sent.push({ topic: m.topic, msg: check(m.body), direct: false }) });
  const faults = new FaultStore({
    db,
    outbox,
    registry,
    clock,
    log,
    gatewayId: 'gw-test',
    writer,
    publish: (topic, payload) => sent.push({ topic, msg: check(JSON.parse(payload)), direct: true }),
    onMessage: (f) => toFlows.push(check(f)),
  });
  faults.start();
  t.teardown(() => {
    faults.stop();
    writer.close();
    db.close();
  });
  return { db, clock, writer, faults, sent, toFlows, registry, keypad, mqttKeypad, busId: keypad.bus! };
}

const settle = () => new Promise((r) => setImmediate(r));
const rows = (db: Db, faultId: string) =>
  db.prepare('SELECT recipient_id AS to_, rev, superseded, delivered_at IS NOT NULL AS delivered FROM outbox WHERE recipient_kind = ? AND alarm_id = ? ORDER BY id').all('fault', faultId);

t.test("a device's fault goes to its station and compound; every change is a rev with its rows; a newer rev supersedes an undelivered one", async (t) => {
  const g = setup(t);
  const f = (await g.faults.raise({ kind: 'tamper', deviceId: g.mqttKeypad }))!;
  t.match(f, { rev: 1, ticket: 'open', shopId: 'S1', stationId: 'PS1', compoundId: 'C1' });
  t.same(g.sent.map((s) => [s.topic, s.msg.rev, s.msg.state]), [
    [topics.stationFaults('PS1'), 1, 'raised'],
    [topics.stationFaults('C1'), 1, 'raised'],
  ]);
  t.same(await g.faults.raise({ kind: 'tamper', deviceId: g.mqttKeypad }), undefined, 'raised again while open: nothing new');
  t.equal(g.sent.length, 2);
  // PS1 has rev 1; C1 does not.
  await g.writer.run(() => g.db.prepare("UPDATE outbox SET delivered_at = 'x' WHERE recipient_id = 'PS1'").run());
  await g.writer.run((fx) => g.faults.ticketIn(fx, f.faultId, { action: 'assign', to: 'Wang' }, 'cli:tester'));
  t.same(rows(g.db, f.faultId), [
    { to_: 'PS1', rev: 1, superseded: 0, delivered: 1 },
    { to_: 'C1', rev: 1, superseded: 1, delivered: 0 },
    { to_: 'PS1', rev: 2, superseded: 0, delivered: 0 },
    { to_: 'C1', rev: 2, superseded: 0, delivered: 0 },
  ]);
  t.same(new Outbox(g.db, { publish: () => {} }).pending('fault', 'C1').map((m) => m.rev), [2], 'a console subscribing now gets rev 2 only');
  t.match(g.sent.at(-1)!.msg, { rev: 2, state: 'raised', ticket: { state: 'assigned', assignedTo: 'Wang', assignedBy: 'cli:tester' } });
});

t.test('tickets: fix refused while the cause holds unless forced; closed tickets refuse; a recovery closes it and may take a note; audited', async (t) => {
  const g = setup(t);
  const a = (await g.faults.raise({ kind: 'low-battery', deviceId: g.mqttKeypad }))!;
  const ticket = (id: string, c: Parameters<FaultStore['ticketIn']>[2]) => g.writer.run((fx) => g.faults.ticketIn(fx, id, c, 'cli:tester'));
  await t.rejects(ticket(a.faultId, { action: 'fix', note: 'done' }), { code: 'LF_ERR_FAULT_ACTIVE' });
  t.equal(g.faults.get(a.faultId)!.rev, 1, 'a refusal changes nothing');
  const forced = await ticket(a.faultId, { action: 'fix', note: 'swapped the unit', force: true });
  t.match(forced, { rev: 2, ticket: 'fixed', closedAs: 'fixed', recovered: false, fixedBy: 'cli:tester', fixNote: 'swapped the unit', clearedAt: null });
  await t.rejects(ticket(a.faultId, { action: 'assign', to: 'x' }), { code: 'LF_ERR_TICKET_CLOSED' });
  await t.rejects(ticket(a.faultId, { action: 'fix', note: 'again' }), { code: 'LF_ERR_TICKET_CLOSED' });
  // The cause then goes away: the fault clears; the ticket stays as the technician closed it.
  const cleared = (await g.faults.clear({ kind: 'low-battery', deviceId: g.mqttKeypad }, { how: 'recovered', by: `device:${g.mqttKeypad}` }))!;
  t.match(cleared, { rev: 3, clearedHow: 'recovered', ticket: 'fixed', fixedBy: 'cli:tester', closedAs: 'fixed' });

  const b = (await g.faults.raise({ kind: 'tamper', deviceId: g.mqttKeypad }))!;
  g.clock.advance(5_000);
  const back = (await g.faults.clear({ kind: 'tamper', deviceId: g.mqttKeypad }, { how: 'recovered', by: `device:${g.mqttKeypad}` }))!;
  t.match(back, { rev: 2, ticket: 'fixed', recovered: true, closedAs: 'recovered', fixedBy: `device:${g.mqttKeypad}`, fixedAt: '2026-12-02T04:00:05.000Z', clearedAt: '2026-12-02T04:00:05.000Z' }, 'the recovery: who and when');
  const noted = await ticket(b.faultId, { action: 'fix', note: 'closed the case properly' });
  t.match(noted, { rev: 3, fixNote: 'closed the case properly', recovered: true, closedAs: 'recovered', fixedBy: 'cli:tester' }, 'a recovered ticket takes the note');
  t.same(
    (g.db.prepare("SELECT action, rev, json_extract(detail, '$.active') AS active FROM audit WHERE action LIKE 'fault-%' ORDER BY id").all()),
    [
      { action: 'fault-fix', rev: 2, active: 1 },
      { action: 'fault-fix', rev: 3, active: 0 },
    ],
    'each ticket change by a person is audited (a refused one is not)',
  );
});

t.test("a revoked or removed device's fault closes as such, not as a recovery", async (t) => {
  const g = setup(t);
  await g.faults.raise({ kind: 'silent', deviceId: g.keypad.id });
  const f = (await g.faults.clear({ kind: 'silent', deviceId: g.keypad.id }, { how: 'revoked', by: 'gateway' }))!;
  t.match(f, { clearedHow: 'revoked', ticket: 'fixed', recovered: false, closedAs: 'revoked', fixedBy: 'gateway' });
  t.match(g.sent.at(-1)!.msg, { state: 'cleared', ticket: { state: 'fixed', recovered: false, closedAs: 'revoked' } });
});

t.test("a bus's port-failed goes to its shops' consoles (every station when it has none); the disk's to every station", async (t) => {
  const g = setup(t);
  g.faults.raiseGateway('port-failed', `bus:${g.busId}`, { where: '/dev/ttyFAKE0' });
  g.faults.raiseGateway('port-failed', 'bus:empty', { where: '/dev/ttyNONE' });
  g.faults.raiseGateway('disk-low', 'disk:/data', { freeBytes: 10 });
  await g.writer.run(() => undefined);
  const to = (subject: string) => g.sent.filter((s) => s.msg.subject === subject).map((s) => s.topic).sort();
  t.same(to(`bus:${g.busId}`), [topics.stationFaults('PS2')], "the serial keypad's shop S2 is PS2's");
  t.same(to('bus:empty'), ['PS1', 'PS2', 'C1'].map(topics.stationFaults).sort());
  t.same(to('disk:/data'), ['PS1', 'PS2', 'C1'].map(topics.stationFaults).sort());
  t.match(g.sent.find((s) => s.msg.subject === 'disk:/data')!.msg, { fault: 'disk-low', detail: { freeBytes: 10 }, text: { en: 'Gateway disk low', zh: '网关磁盘空间不足' } });
  t.notOk(g.sent.find((s) => s.msg.subject === 'disk:/data')!.msg.deviceId, 'no device');
  g.faults.clearGateway('disk-low', 'disk:/data');
  await g.writer.run(() => undefined);
  t.match(g.sent.filter((s) => s.msg.subject === 'disk:/data').at(-1)!.msg, { rev: 2, state: 'cleared', ticket: { state: 'fixed', recovered: true, fixedBy: 'gateway' } });
  t.same(g.faults.list({ open: true, station: 'PS2' }).map((f) => f.subject), [`bus:${g.busId}`, 'bus:empty'], "PS2's list: the bus faults without a station of their own are the gateway's, listed everywhere");
});

t.test('an id by a unique prefix; an ambiguous or unknown one is refused', async (t) => {
  const g = setup(t);
  const a = (await g.faults.raise({ kind: 'tamper', deviceId: g.mqttKeypad }))!;
  const b = (await g.faults.raise({ kind: 'silent', deviceId: g.mqttKeypad }))!;
  t.equal(g.faults.resolve(a.faultId).faultId, a.faultId);
  t.equal(g.faults.resolve(b.faultId.slice(0, 30).toUpperCase()).faultId, b.faultId, 'case does not matter');
  t.throws(() => g.faults.resolve(a.faultId.slice(0, 8)), { code: 'LF_ERR_AMBIGUOUS_ID' }, 'same millisecond: the first 8 match both');
  t.throws(() => g.faults.resolve('ffffffff'), { code: 'LF_ERR_NOT_FOUND' });
  t.throws(() => g.faults.resolve('x; DROP'), { code: 'LF_ERR_INVALID_ARGUMENT' });
});

t.test('db-error: published at once while the database cannot be written, kept in memory, stored with its rows when it writes again', async (t) => {
  const g = setup(t);
  g.db.pragma('query_only = 1');
  g.faults.raiseGateway('db-error', 'db', { code: 'SQLITE_READONLY', operation: 'event' });
  const direct = g.sent.filter((s) => s.direct);
  t.same(direct.map((s) => s.topic).sort(), ['PS1', 'PS2', 'C1'].map(topics.stationFaults).sort(), 'published at once to every station, not waiting for a commit');
  t.match(direct[0]!.msg, { fault: 'db-error', subject: 'db', rev: 1, state: 'raised', detail: { code: 'SQLITE_READONLY' }, ticket: { state: 'open' } });
  const faultId = direct[0]!.msg.faultId;
  await g.writer.run(() => undefined).catch(() => {});
  await settle();
  t.equal((g.db.prepare('SELECT count(*) AS n FROM faults').get() as { n: number }).n, 0, 'not stored: the database refused the write');
  t.equal(g.faults.unstoredDbError()?.faultId, faultId, 'kept in memory');
  t.match(g.faults.health(), [{ faultId, fault: 'db-error', subject: 'db' }], '/health lists it all the same');
  g.faults.raiseGateway('db-error', 'db', { code: 'SQLITE_READONLY' });
  t.equal(g.sent.filter((s) => s.direct).length, 3, 'raised again while open: nothing new');

  // The database writes again; the monitor clears the fault: published at once, then stored.
  g.db.pragma('query_only = 0');
  g.clock.advance(2_000);
  g.faults.clearGateway('db-error', 'db');
  t.same(g.sent.filter((s) => s.direct).slice(3).map((s) => [s.msg.rev, s.msg.state]), [[2, 'cleared'], [2, 'cleared'], [2, 'cleared']]);
  await g.writer.run(() => undefined);
  await settle();
  t.match(g.db.prepare('SELECT id, kind, subject, rev, raised_at AS raisedAt, cleared_at AS clearedAt, ticket, recovered FROM faults').all(), [
    { id: faultId, kind: 'db-error', subject: 'db', rev: 2, raisedAt: '2026-12-02T04:00:00.000Z', clearedAt: '2026-12-02T04:00:02.000Z', ticket: 'fixed', recovered: 1 },
  ], 'stored once the database writes again, with the times it happened');
  t.same(rows(g.db, faultId).map((r) => [(r as { to_: string }).to_, (r as { rev: number }).rev]).sort(), [['C1', 2], ['PS1', 2], ['PS2', 2]], 'with its outbox rows (a console away meanwhile gets it)');
  t.equal(g.faults.unstoredDbError(), undefined, 'no longer held in memory');
  t.same(g.toFlows.map((f) => [f.faultId, f.rev, f.state]), [[faultId, 1, 'raised'], [faultId, 2, 'cleared']], 'the flows heard of each change at once, and once (not again when it was stored)');
});

t.test('db-error with a database that writes: stored at once', async (t) => {
  const g = setup(t);
  g.faults.raiseGateway('db-error', 'db', { code: 'SQLITE_IOERR' });
  await g.writer.run(() => undefined);
  await settle();
  t.equal(g.faults.unstoredDbError(), undefined);
  t.match(g.faults.openFaults(), [{ kind: 'db-error', rev: 1 }]);
  g.faults.clearGateway('db-error', 'db');
  await g.writer.run(() => undefined);
  await settle();
  t.same(g.faults.openFaults(), [], 'its clear goes the ordinary way');
  t.same(g.toFlows.map((f) => [f.fault, f.rev, f.state]), [['db-error', 1, 'raised'], ['db-error', 2, 'cleared']], 'the flows heard of each change once');
});
