/**
 * The gateway side of the bridges (gateway/wired-adapter.ts): the stored boot counters (the serial
 * command counter and the boot of the events made for Modbus modules) against a ManualClock set
 * back and forward, a registry device as the bridge's record, and a module's door levels as its
 * stored door events left them.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../gateway/clock.js';
import { openDatabase } from '../../gateway/store/db.js';
import { encryptSecret } from '../../gateway/secrets.js';
import type { Device } from '../../gateway/registry/registry.js';
import type { Bus } from '../../gateway/registry/buses.js';
import { busPort, MODBUS_MODULE_BOOT, nextStoredBoot, SERIAL_COMMAND_BOOT, wiredDevice } from '../../gateway/wired-adapter.js';
import { tempDataDir } from '../helpers/gateway.js';

const HOUR = 3_600_000;

t.test('a stored boot counter only increases, whatever the clock does after its first boot', async (t) => {
  const db = openDatabase(tempDataDir(t));
  t.teardown(() => db.close());
  const clock = new ManualClock();
  const seconds = clock.now() / 1000;
  const first = nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now());
  t.equal(first, seconds, 'the first: seconds since the epoch (above the marks of versions that took the clock)');
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now()), first + 1, 'a restart within the same second');
  clock.advance(-HOUR);
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now()), first + 2, 'the clock set back an hour: still above every one given');
  clock.advance(5 * HOUR);
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now()), first + 3, 'the clock ahead: the stored one + 1, not taken from the clock');
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now(), first + 100), first + 101, "above the module's stored mark");
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now(), 1_700_000_000_000), first + 102, 'a mark in milliseconds (an older version) is left behind');
  t.equal(nextStoredBoot(db, SERIAL_COMMAND_BOOT, clock.now()), clock.now() / 1000, 'each counter is its own');
});

t.test('a counter first used on an upgraded gateway starts above the marks the clock gave before', async (t) => {
  const db = openDatabase(tempDataDir(t));
  t.teardown(() => db.close());
  const clock = new ManualClock();
  const markAhead = clock.now() / 1000 + 3600;
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now(), markAhead), markAhead + 1, 'a mark an hour ahead of this clock');
  t.equal(nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now(), 12), markAhead + 2, 'and the counter goes on from there for every module');
});

t.test('a registry device becomes the bridge record: MAC key decrypted, mark read live, port defaults filled', async (t) => {
  const db = openDatabase(tempDataDir(t));
  t.teardown(() => db.close());
  const gatewayKey = randomBytes(32);
  const macKey = randomBytes(16);
  const device: Device = {
    id: 'S01.keypad.a1',
    shopId: 'S01',
    type: 'keypad',
    transport: 'serial',
    secretHash: null,
    bus: 'ttyUSB0',
    busAddress: 3,
    model: null,
    macKeyEnc: encryptSecret(gatewayKey, macKey),
    lastBoot: 5,
    lastSeq: 9,
    revokedAt: null,
    createdAt: '2026-12-01T00:00:00.000Z',
  };
  const rec = wiredDevice(device, gatewayKey, db);
  t.same(rec.macKey, macKey, 'the MAC key, decrypted');
  t.equal(rec.address, 3);
  t.same(rec.mark(), { boot: 5, seq: 9 });
  device.lastSeq = 10;
  t.same(rec.mark(), { boot: 5, seq: 10 }, 'the mark as the ingest moved it');

  const foreign = wiredDevice(device, randomBytes(32), db);
  t.equal(foreign.macKey, null, 'a key sealed under another gateway key does not decrypt');
  t.match(foreign.macKeyMissing, /does not decrypt under this gateway key/);
  const keyless = wiredDevice({ ...device, macKeyEnc: null }, gatewayKey, db);
  t.equal(keyless.macKey, null);
  t.match(keyless.macKeyMissing, /without a MAC key/);

  const bus = (b: Partial<Bus>): Bus => ({ id: 'b', kind: 'serial', path: null, baud: null, parity: null, host: null, port: null, createdAt: '', ...b });
  t.same(busPort(bus({ path: '/dev/ttyUSB0' })), { kind: 'serial', path: '/dev/ttyUSB0', baud: 9600, parity: 'none' });
  t.same(busPort(bus({ kind: 'modbus-rtu', path: '/dev/ttyUSB1', parity: 'even' })), { kind: 'modbus-rtu', path: '/dev/ttyUSB1', baud: 19200, parity: 'even' });
  t.same(busPort(bus({ kind: 'modbus-tcp', host: '10.0.0.7', port: 502 })), { kind: 'modbus-tcp', host: '10.0.0.7', port: 502 });
});

t.test("a module's door levels: each input's latest stored door event, read when the bridge asks", async (t) => {
  const db = openDatabase(tempDataDir(t));
  t.teardown(() => db.close());
  const insert = db.prepare("INSERT INTO events (device_id, boot, seq, type, payload, via, received_at) VALUES (?, 1, ?, ?, ?, 'modbus', '2026-12-01T00:00:00.000Z')");
  let seq = 0;
  const store = (deviceId: string, type: string, payload: string) => insert.run(deviceId, ++seq, type, payload);
  const MODULE = 'S01.io-module.1';
  const module: Device = {
    id: MODULE,
    shopId: 'S01',
    type: 'io-module',
    transport: 'modbus-tcp',
    secretHash: null,
    bus: 'tcp1',
    busAddress: 1,
    model: 'door-latch-8io',
    macKeyEnc: null,
    lastBoot: null,
    lastSeq: null,
    revokedAt: null,
    createdAt: '2026-12-01T00:00:00.000Z',
  };
  const rec = wiredDevice(module, randomBytes(32), db);
  t.same(rec.doorLevels!(), {}, 'no stored door event: no level');

  store(MODULE, 'door', JSON.stringify({ seq: 1, type: 'door', open: true, input: 'door' }));
  store(MODULE, 'door', JSON.stringify({ seq: 2, type: 'door', open: true, input: 'back' }));
  store(MODULE, 'door', JSON.stringify({ seq: 3, type: 'door', open: false, input: 'door' }));
  store(MODULE, 'panic', JSON.stringify({ seq: 4, type: 'panic', input: 'door' }));
  store(MODULE, 'door', '{"seq": 5, "type": "door", "open": "yes", "input": "back"}');
  store(MODULE, 'door', 'null');
  store(MODULE, 'door', JSON.stringify({ seq: 7, type: 'door', open: false }));
  store('S02.io-module.1', 'door', JSON.stringify({ seq: 1, type: 'door', open: true, input: 'door' }));
  t.same(rec.doorLevels!(), { door: false, back: true }, "each input's latest: other types, other devices, bad payloads and input-less events left out");

  store(MODULE, 'door', JSON.stringify({ seq: 8, type: 'door', open: true, input: 'door' }));
  t.same(rec.doorLevels!(), { door: true, back: true }, 'read from the database when asked, not when the record was made');
});
