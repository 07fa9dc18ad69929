/**
 * The migration runner (gateway/store/migrations.ts) and the released fixture databases in
 * test/fixtures/db/: every v*.sqlite is upgraded to LATEST_VERSION and its data read back through
 * the registry, the alarm repository and the outbox.
 */
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, MIGRATIONS, LATEST_VERSION } from '../../../gateway/store/migrations.js';
import { openDatabaseFile, openDatabase, getMeta, DB_FILE } from '../../../gateway/store/db.js';
import { listStations, listShops, listDevices, listUsers, getShop, getDevice } from '../../../gateway/registry/registry.js';
import { RegistryCache } from '../../../gateway/registry/registry-cache.js';
import { AlarmRepo } from '../../../gateway/alarm/alarm-repo.js';
import { FaultStore } from '../../../gateway/faults/fault-store.js';
import { Outbox } from '../../../gateway/delivery/outbox.js';
import { decryptSecret, verifyKeyedHash, verifyPassword } from '../../../gateway/secrets.js';
import { listBuses } from '../../../gateway/registry/buses.js';
import { LianfangError } from '../../../gateway/errors.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'db');

interface Teardown {
  teardown(fn: () => unknown): void;
}

function tempDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'lf-mig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function memoryDb(t: Teardown): Database.Database {
  const db = new Database(':memory:');
  t.teardown(() => db.close());
  return db;
}

const userVersion = (db: Database.Database) => db.pragma('user_version', { simple: true }) as number;

/** The schema as SQLite holds it: every table, index and their SQL. */
const schemaOf = (db: Database.Database) =>
  db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all();

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

t.test('the migration list is well formed', async (t) => {
  t.ok(MIGRATIONS.length >= 1);
  MIGRATIONS.forEach((m, i) => t.equal(m.version, i + 1, `migration ${i + 1} has version ${i + 1}`));
  t.equal(LATEST_VERSION, MIGRATIONS.length);
});

t.test('a fresh database reaches LATEST_VERSION; a second run is a no-op', async (t) => {
  const db = memoryDb(t);
  t.equal(userVersion(db), 0);
  t.same(migrate(db), MIGRATIONS.map((m) => m.version), 'every migration applied, in order');
  t.equal(userVersion(db), LATEST_VERSION);
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
  for (const name of ['meta', 'stations', 'shops', 'devices', 'users', 'events', 'alarms', 'alarm_recipients', 'alarm_replies', 'audit', 'outbox', 'deadlines']) {
    t.ok(tables.includes(name), `table ${name}`);
  }
  const before = schemaOf(db);
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('probe', 'kept');
  t.same(migrate(db), [], 'nothing applied the second time');
  t.equal(userVersion(db), LATEST_VERSION);
  t.same(schemaOf(db), before, 'schema unchanged');
  t.equal(getMeta(db, 'probe'), 'kept', 'data unchanged');
});

t.test('a database newer than this gateway is refused with LF_ERR_DB_TOO_NEW, untouched', async (t) => {
  const db = memoryDb(t);
  db.exec('CREATE TABLE future (x)');
  db.pragma(`user_version = ${LATEST_VERSION + 1}`);
  const err = thrown(() => migrate(db));
  t.ok(err instanceof LianfangError, 'a LianfangError');
  t.equal((err as LianfangError).code, 'LF_ERR_DB_TOO_NEW');
  t.match((err as LianfangError).message, String(LATEST_VERSION + 1));
  t.equal(userVersion(db), LATEST_VERSION + 1, 'version unchanged');
  t.same(schemaOf(db).map((r) => (r as { name: string }).name), ['future'], 'nothing created');
});

t.test('a failing migration leaves the database unchanged (LF_ERR_MIGRATION)', async (t) => {
  const db = memoryDb(t);
  // The last table migration 1 creates already exists: the migration fails near its end, after
  // it created every other table, so a missing rollback would show.
  db.exec('CREATE TABLE deadlines (id INTEGER PRIMARY KEY)');
  db.prepare('INSERT INTO deadlines (id) VALUES (42)').run();
  const before = schemaOf(db);
  const err = thrown(() => migrate(db));
  t.ok(err instanceof LianfangError, 'a LianfangError');
  t.equal((err as LianfangError).code, 'LF_ERR_MIGRATION');
  t.match((err as LianfangError).message, /1 \(initial schema\)/, 'names the migration');
  t.match((err as LianfangError).message, /deadlines already exists/, "carries SQLite's reason");
  t.equal(userVersion(db), 0, 'user_version still 0');
  t.same(schemaOf(db), before, 'no table of the failed migration is left behind');
  t.same(db.prepare('SELECT id FROM deadlines').all(), [{ id: 42 }], 'existing data intact');
  t.notOk(db.inTransaction, 'no transaction left open');
  // Once the obstacle is gone the migration runs.
  db.exec('DROP TABLE deadlines');
  t.same(migrate(db), MIGRATIONS.map((m) => m.version));
  t.equal(userVersion(db), LATEST_VERSION);
});

t.test('openDatabase: WAL, synchronous FULL, foreign keys, migrated', async (t) => {
  const dir = tempDir(t);
  const db = openDatabase(join(dir, 'nested', 'data'));
  t.teardown(() => db.close());
  t.ok(existsSync(join(dir, 'nested', 'data', DB_FILE)));
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(db.pragma('synchronous', { simple: true }), 2, 'synchronous = FULL');
  t.equal(db.pragma('foreign_keys', { simple: true }), 1);
  t.equal(userVersion(db), LATEST_VERSION);
});

// ------------------------------------------------------------------ released fixture databases

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const fixtureFiles = existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((f) => /^v\d+\.sqlite$/.test(f)).sort() : [];

/** The gateway key the fixtures were built with (see test/fixtures/db/make-fixture-v1.mjs and -v2.mjs). */
const FIXTURE_GATEWAY_KEY = Buffer.from('6c69616e66616e672d666978747572652d6b65792d30303030303030303031ff', 'hex');

/** What each released fixture holds, read back after the upgrade. */
const EXPECTED: Record<string, (t: Test, db: Database.Database) => Promise<void>> = {
  'v1.sqlite': async (t, db) => {
    t.same(listStations(db).map((s) => [s.id, s.name, s.timeZone]), [['PS-CP', '长平路派出所', 'Asia/Shanghai']]);
    const shops = listShops(db);
    t.same(shops.map((s) => [s.id, s.name]), [
      ['CP-001', '李记茶行'],
      ['CP-002', '陈氏五金'],
      ['CP-003', '潮汕牛肉丸'],
    ], 'three shops, Chinese names intact');
    const s1 = getShop(db, 'CP-001')!;
    t.match(s1, { address: '汕头市长平路1号', lat: 23.3586, lon: 116.6832, stationId: 'PS-CP', doorPlate: '1号', ownerName: '李伟', cameraIds: ['CAM-17', 'CAM-18'], neighbours: [] });
    t.equal(getShop(db, 'CP-003')!.ownerName, null);

    const devices = listDevices(db);
    t.same(devices.map((d) => [d.id, d.shopId, d.type, d.transport, d.lastBoot, d.lastSeq, d.revokedAt]), [
      ['CP-001.keypad.a1b2c3', 'CP-001', 'keypad', 'mqtt', 1700000000, 17, null],
    ]);
    const dev = getDevice(db, 'CP-001.keypad.a1b2c3')!;
    t.ok(dev.secretHash && verifyKeyedHash(FIXTURE_GATEWAY_KEY, 'fixture-device-secret', dev.secretHash), 'the device can still log in');
    t.notOk(verifyKeyedHash(FIXTURE_GATEWAY_KEY, 'wrong', dev.secretHash!), '... and only with its secret');

    const users = listUsers(db);
    t.same(users.map((u) => [u.name, u.role, u.stationId, u.revokedAt]), [['officer-zhang', 'officer', 'PS-CP', null]]);
    t.ok(await verifyPassword('fixture-officer-pw', users[0].passwordHash), "the officer's password still checks");

    const cache = new RegistryCache(db);
    cache.reload();
    t.equal(cache.shops.size, 3);
    t.same(cache.devicesByShop.get('CP-001')?.map((d) => d.id), ['CP-001.keypad.a1b2c3']);
    t.same(cache.consolesFor(cache.shops.get('CP-002')!), ['PS-CP']);

    const repo = new AlarmRepo(db);
    const alarmId = '019ab0f4-4e20-7a3c-9d41-5f2b8c7e1a06';
    t.match(repo.get(alarmId), { shopId: 'CP-001', stationId: 'PS-CP', state: 'acknowledged', rev: 3, takenBy: 'officer-zhang', overdue: false, duress: false, ring: 1 });
    t.equal(repo.joinableForShop('CP-001')?.id, alarmId, 'still open: a new 9# would join it');
    t.same(repo.recipients(alarmId).map((r) => r.shopId), ['CP-002', 'CP-003']);
    t.same(repo.replyCounts(alarmId), { coming: 1, seen: 0, cannot: 0 });
    t.equal(repo.latestAlertFor('CP-003'), alarmId);
    t.equal(repo.nextDeadline(), Date.parse('2026-11-23T01:01:00.000Z'), 'the pending ring deadline survives');
    const audit = db.prepare('SELECT action, from_state AS fromState, to_state AS toState, rev FROM audit WHERE alarm_id = ? ORDER BY id').all(alarmId);
    t.same(audit, [
      { action: 'raised', fromState: null, toState: 'raised', rev: 1 },
      { action: 'reply', fromState: 'raised', toState: 'raised', rev: 2 },
      { action: 'ack', fromState: 'raised', toState: 'acknowledged', rev: 3 },
    ]);
    const outbox = new Outbox(db, { publish: () => {} });
    t.same(outbox.pending('shop', 'CP-002'), [], 'the delivered alert stays delivered');
    const pendingShop = outbox.pending('shop', 'CP-003');
    t.equal(pendingShop.length, 1, 'the undelivered alert is still pending');
    t.match(JSON.parse(pendingShop[0].payload), { alarmId, originName: '李记茶行', state: 'raised' });
    t.same(pendingShop[0].body, JSON.parse(pendingShop[0].payload), 'a stored row comes back with the object it was built from');
    t.same(outbox.pending('station', 'PS-CP').map((m) => m.rev), [3], 'only the newest console message pending (rev 2 superseded)');
    t.equal(outbox.countPending(), 2);
    t.equal(getMeta(db, 'gateway_id'), 'gw-fixture');
  },
  'v2.sqlite': async (t, db) => {
    t.same(listBuses(db).map((b) => [b.id, b.kind, b.path, b.baud, b.parity, b.host, b.port]), [
      ['tcp-10.0.0.7-502', 'modbus-tcp', null, null, null, '10.0.0.7', 502],
      ['ttyUSB0', 'serial', '/dev/ttyUSB0', 9600, 'none', null, null],
    ]);
    const keypad = getDevice(db, 'CP-002.keypad.s00003')!;
    t.match(keypad, { transport: 'serial', bus: 'ttyUSB0', busAddress: 3, lastBoot: 41, lastSeq: 9, model: null });
    t.equal(decryptSecret(FIXTURE_GATEWAY_KEY, keypad.macKeyEnc!).toString('hex'), '6d61632d6b65792d6f662d7468652d666978747572652d6b65797061642d3033', 'the MAC key still decrypts');
    t.match(getDevice(db, 'CP-003.io-module.m00001'), { transport: 'modbus-tcp', bus: 'tcp-10.0.0.7-502', busAddress: 1, model: 'generic-8io' });
    t.same(db.prepare('SELECT device_id, raised_at FROM faults WHERE cleared_at IS NULL').all(), [
      { device_id: 'CP-003.io-module.m00001', raised_at: '2026-11-23T02:30:00.000Z' },
    ], 'the open fault is still open (moved into faults by migration 7)');
    t.same(
      db.prepare('SELECT kind, device_id AS deviceId, shop_id AS shopId, station_id AS stationId, rev, cleared_at AS clearedAt, ticket, recovered, closed_as AS closedAs, fixed_by AS fixedBy FROM faults ORDER BY raised_at').all(),
      [
        { kind: 'silent', deviceId: 'CP-003.io-module.m00001', shopId: 'CP-003', stationId: 'PS-CP', rev: 2, clearedAt: '2026-11-23T02:12:00.000Z', ticket: 'fixed', recovered: 1, closedAs: 'recovered', fixedBy: 'device:CP-003.io-module.m00001' },
        { kind: 'silent', deviceId: 'CP-003.io-module.m00001', shopId: 'CP-003', stationId: 'PS-CP', rev: 1, clearedAt: null, ticket: 'open', recovered: 0, closedAs: null, fixedBy: null },
      ],
      'the cleared one kept as history, its ticket closed as recovered; the open one an open ticket',
    );
    t.equal(getDevice(db, 'CP-001.keypad.a1b2c3')!.transport, 'mqtt', "v1's data is still there");
    const cache = new RegistryCache(db);
    cache.reload();
    t.equal(cache.buses.size, 2);
  },
  'v3.sqlite': async (t, db) => {
    const f = db.prepare("SELECT id, rev, detail, ticket FROM faults WHERE kind = 'counter-reset'").get() as { id: string; rev: number; detail: string; ticket: string };
    t.same(JSON.parse(f.detail), { previousBoot: 41, previousSeq: 9, boot: 1, seq: 1, events: 'refused' }, "the counter-reset's detail moved with it");
    t.match(f, { rev: 1, ticket: 'open' });
  },
  'v4.sqlite': async (t, db) => {
    t.same(db.prepare('SELECT shop_id AS shopId, length(pin_hash) AS n, wrong_in_a_row AS wrong FROM shop_pins').all(), [{ shopId: 'CP-002', n: 32, wrong: 2 }], "the shop's PIN hashes survive");
    t.same(db.prepare('SELECT count(*) AS n FROM test_modes').get(), { n: 0 }, 'no shop is in test mode after the upgrade');
    t.same(db.prepare('SELECT count(*) AS n FROM alarms WHERE test_mode_id IS NOT NULL').get(), { n: 0 });
    t.equal(new AlarmRepo(db).nextDeadline(), Date.parse('2026-11-23T01:01:00.000Z'), "v1's pending ring deadline survives");
  },
  'v5.sqlite': async (t, db) => {
    // Migration 6 rebuilt the outbox: every row, id and flag kept; the device columns empty.
    t.same(
      db.prepare('SELECT id, recipient_kind AS kind, recipient_id AS recipientId, rev, delivered_at IS NOT NULL AS delivered, superseded, command, seq FROM outbox ORDER BY id').all(),
      [
        { id: 1, kind: 'shop', recipientId: 'CP-002', rev: 1, delivered: 1, superseded: 0, command: null, seq: null },
        { id: 2, kind: 'shop', recipientId: 'CP-003', rev: 1, delivered: 0, superseded: 0, command: null, seq: null },
        { id: 3, kind: 'station', recipientId: 'PS-CP', rev: 1, delivered: 1, superseded: 0, command: null, seq: null },
        { id: 4, kind: 'station', recipientId: 'PS-CP', rev: 2, delivered: 0, superseded: 1, command: null, seq: null },
        { id: 5, kind: 'station', recipientId: 'PS-CP', rev: 3, delivered: 0, superseded: 0, command: null, seq: null },
      ],
      'the outbox rows survive the rebuild',
    );
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    t.same(indexes, ['outbox_alarm', 'outbox_pending'], "the outbox's indexes are back (device rows need none of their own: migration 6 says why)");
    // A device row: no alarm, its command and seq; pending for that device like any recipient's.
    db.prepare("INSERT INTO outbox (alarm_id, rev, recipient_kind, recipient_id, command, seq, topic, payload, created_at) VALUES (NULL, NULL, 'device', 'X', 'display', 1, 't', '{}', 'now')").run();
    t.same(new Outbox(db, { publish: () => {} }).pending('device', 'X').map((m) => [m.command, m.seq]), [['display', 1]], 'a device row is pending for its device');
    t.match(
      (db.prepare("EXPLAIN QUERY PLAN UPDATE outbox SET delivered_at = 'now' WHERE recipient_kind = 'device' AND recipient_id = 'X' AND seq = 1 AND delivered_at IS NULL AND superseded = 0").all() as { detail: string }[]).map((r) => r.detail).join(' '),
      /USING INDEX outbox_pending/,
      "a device's PUBACK finds its row through the pending index",
    );
    db.prepare("DELETE FROM outbox WHERE recipient_kind = 'device'").run();
    const pending = new Outbox(db, { publish: () => {} }).pending('station', 'PS-CP');
    t.same(pending.map((m) => [m.id, m.rev]), [[5, 3]], 'still pending after the rebuild');
    t.same(db.prepare('SELECT count(*) AS n FROM device_command_seq').get(), { n: 0 });
    t.same(db.prepare('SELECT scope, target_id AS targetId, ended_how AS how FROM test_modes').all(), [{ scope: 'shop', targetId: 'CP-002', how: 'expired' }], "v5's test mode survives");
    t.same(db.prepare('SELECT disposition, test, test_mode_id AS tm FROM alarms WHERE test = 1').all(), [{ disposition: 'test', test: 1, tm: 1 }], 'and its test alarm');
  },
  'v6.sqlite': async (t, db) => {
    // Migration 7: device_faults moved into faults, each with a new UUIDv7 id from its raise time.
    t.same((db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'device_faults'").get() as { n: number }).n, 0, 'device_faults is gone');
    const rows = db.prepare('SELECT id, kind, device_id AS deviceId, subject, rev, detail, raised_at AS raisedAt, cleared_at AS clearedAt, cleared_how AS how, ticket, recovered, closed_as AS closedAs FROM faults ORDER BY raised_at').all() as {
      id: string; kind: string; deviceId: string; subject: null; rev: number; detail: string | null; raisedAt: string; clearedAt: string | null; how: string | null; ticket: string; recovered: number; closedAs: string | null;
    }[];
    t.same(rows.map((r) => [r.kind, r.deviceId, r.rev, r.ticket, r.how, r.recovered]), [
      ['silent', 'CP-003.io-module.m00001', 2, 'fixed', 'recovered', 1],
      ['silent', 'CP-003.io-module.m00001', 1, 'open', null, 0],
      ['counter-reset', 'CP-002.keypad.s00003', 1, 'open', null, 0],
      ['selftest-failed', 'CP-002.keypad.s00003', 2, 'fixed', 'recovered', 1],
      ['offline', 'CP-001.keypad.a1b2c3', 1, 'open', null, 0],
    ], 'every device fault, open and cleared, kept');
    for (const r of rows) {
      t.match(r.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `${r.kind} has a UUIDv7 id`);
      const ms = parseInt(r.id.slice(0, 8) + r.id.slice(9, 13), 16);
      t.equal(ms, Date.parse(r.raisedAt), '... made from its raise time');
    }
    t.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'ids are unique');
    t.same(JSON.parse(rows[3]!.detail!), { result: 4 }, 'a detail moved with its fault');
    // The fault store reads them: the open ones for /health, a prefix finds one.
    const faults = FaultStore.offline(db);
    t.same(faults.openFaults().map((f) => f.kind), ['silent', 'counter-reset', 'offline']);
    t.equal(faults.resolve(rows[4]!.id.slice(0, 13)).kind, 'offline');
    t.same(faults.list({ open: true, station: 'PS-CP' }).length, 3);
    t.same(db.prepare("SELECT count(*) AS n FROM outbox WHERE recipient_kind = 'device' AND delivered_at IS NOT NULL").get(), { n: 1 }, "v6's device command row survives");
    t.same(db.prepare('SELECT device_id AS d, seq FROM device_command_seq').all(), [{ d: 'CP-001.keypad.a1b2c3', seq: 1 }]);
  },
  'v7.sqlite': async (t, db) => {
    // Migration 8: shops start disarmed with no schedule (no row); deadlines gain their shop.
    t.same(db.prepare('SELECT count(*) AS n FROM shop_arming').get(), { n: 0 }, 'no shop is armed by the upgrade');
    t.same(db.prepare('SELECT count(*) AS n FROM deadlines WHERE shop_id IS NOT NULL').get(), { n: 0 }, 'old deadlines belong to no shop');
    // v7's tickets and its gateway fault survive, readable by the fault store.
    t.same(
      db.prepare("SELECT ticket, assigned_to AS assignedTo, rev FROM faults WHERE kind = 'offline'").get(),
      { ticket: 'assigned', assignedTo: '王师傅', rev: 2 },
      'an assigned ticket keeps its technician',
    );
    const faults = FaultStore.offline(db);
    const open = faults.openFaults();
    t.ok(open.some((f) => f.kind === 'port-failed'), 'a fault without a device is still open');
    t.same(db.prepare("SELECT rev, delivered_by AS by FROM outbox WHERE recipient_kind = 'fault'").all(), [{ rev: 2, by: 'user:officer1' }], "a fault's delivered outbox row survives");
  },  'v8.sqlite': async (t, db) => {
    // Migration 9: no shop is retired by the upgrade and no neighbour rule exists.
    t.same(db.prepare('SELECT count(*) AS n FROM shops WHERE retired_at IS NOT NULL').get(), { n: 0 }, 'no shop is retired by the upgrade');
    t.same(db.prepare('SELECT count(*) AS n FROM neighbour_rules').get(), { n: 0 }, 'no neighbour rules yet');
    // v8's arming survives.
    t.same(db.prepare("SELECT armed, arm_at AS armAt, disarm_at AS disarmAt FROM shop_arming WHERE shop_id = 'CP-001'").get(), { armed: 1, armAt: '23:00', disarmAt: '06:00' }, 'an armed shop keeps its schedule');
  },
  'v9.sqlite': async (t, db) => {
    // Migration 10: no console session and no shift exist after the upgrade.
    t.same(db.prepare('SELECT count(*) AS n FROM console_sessions').get(), { n: 0 }, 'no console session yet');
    t.same(db.prepare('SELECT count(*) AS n FROM shifts').get(), { n: 0 }, 'nobody signed on yet');
    // v9's neighbour rule survives.
    t.same(db.prepare('SELECT shop_id AS shopId, other_id AS otherId, rule FROM neighbour_rules').all(), [{ shopId: 'CP-001', otherId: 'CP-002', rule: 'always' }], 'a neighbour rule survives');
  },
};

t.test('a fixture exists for every released schema version', async (t) => {
  t.ok(fixtureFiles.includes('v1.sqlite'), 'v1.sqlite');
  // Every version a later migration upgrades from has its fixture.
  for (let v = 1; v < LATEST_VERSION; v++) t.ok(fixtureFiles.includes(`v${v}.sqlite`), `v${v}.sqlite`);
  for (const f of fixtureFiles) {
    const db = new Database(join(FIXTURES, f), { readonly: true });
    try {
      t.equal(userVersion(db), Number(/\d+/.exec(f)![0]), `${f} is at the version its name says`);
    } finally {
      db.close();
    }
  }
});

for (const file of fixtureFiles) {
  t.test(`fixture ${file} upgrades to LATEST_VERSION with its data readable`, async (t) => {
    const original = join(FIXTURES, file);
    const hashBefore = sha256(original);
    const dir = tempDir(t);
    const copy = join(dir, file);
    copyFileSync(original, copy);
    const db = openDatabaseFile(copy);
    t.teardown(() => db.close());
    t.equal(userVersion(db), LATEST_VERSION);
    t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
    t.same(db.pragma('foreign_key_check'), [], 'no dangling references');
    // Every registry row is readable (JSON columns parse, types map).
    for (const [table, list] of [
      ['stations', listStations],
      ['shops', listShops],
      ['devices', listDevices],
      ['users', listUsers],
    ] as const) {
      const n = (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      t.equal(list(db).length, n, `${table}: ${n} rows read back`);
    }
    const check = EXPECTED[file];
    if (check) await check(t, db);
    else t.comment(`no specific expectations for ${file}; add them to EXPECTED`);
    // A reopened database stays at the latest version and migrates nothing.
    t.same(migrate(db), []);
    t.equal(sha256(original), hashBefore, 'the fixture itself was not touched');
  });
}
