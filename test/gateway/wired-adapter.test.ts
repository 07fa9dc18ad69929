/**
 * The gateway side of the bridges (gateway/wired-adapter.ts): a registry device as the bridge's
 * record, a registered bus as its port.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { encryptSecret } from '../../gateway/secrets.js';
import type { Device } from '../../gateway/registry/registry.js';
import type { Bus } from '../../gateway/registry/buses.js';
import { busPort, wiredDevice } from '../../gateway/wired-adapter.js';

t.test('a registry device becomes the bridge record: MAC key decrypted, mark read live, port defaults filled', async (t) => {
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
  const rec = wiredDevice(device, gatewayKey);
  t.same(rec.macKey, macKey, 'the MAC key, decrypted');
  t.equal(rec.address, 3);
  t.same(rec.mark(), { boot: 5, seq: 9 });
  device.lastSeq = 10;
  t.same(rec.mark(), { boot: 5, seq: 10 }, 'the mark as the ingest moved it');

  const foreign = wiredDevice(device, randomBytes(32));
  t.equal(foreign.macKey, null, 'a key sealed under another gateway key does not decrypt');
  t.match(foreign.macKeyMissing, /does not decrypt under this gateway key/);
  const keyless = wiredDevice({ ...device, macKeyEnc: null }, gatewayKey);
  t.equal(keyless.macKey, null);
  t.match(keyless.macKeyMissing, /without a MAC key/);

  const bus = (b: Partial<Bus>): Bus => ({ id: 'b', kind: 'serial', path: null, baud: null, parity: null, host: null, port: null, createdAt: '', ...b });
  t.same(busPort(bus({ path: '/dev/ttyUSB0' })), { kind: 'serial', path: '/dev/ttyUSB0', baud: 9600, parity: 'none' });
  t.same(busPort(bus({ kind: 'modbus-rtu', path: '/dev/ttyUSB1', parity: 'even' })), { kind: 'modbus-rtu', path: '/dev/ttyUSB1', baud: 19200, parity: 'even' });
  t.same(busPort(bus({ kind: 'modbus-tcp', host: '10.0.0.7', port: 502 })), { kind: 'modbus-tcp', host: '10.0.0.7', port: 502 });
});
