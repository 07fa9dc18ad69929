/**
 * A door that moved while the gateway was down (firmware-contracts/modbus/SPEC.md "The first read
 * after a start"), on the real wire: Modbus TCP on loopback, the module simulator serving a
 * door-latch-8io module (unit 1) and a generic-8io one (unit 2), the Modbus bus driver on a
 * ManualClock, its events through the gateway's one ingest into SQLite. A "run" is one start of
 * the bridge: a new driver on fresh device records (gateway/wired-adapter.ts wiredDevice), which
 * read each door's latest stored door event when polling starts. Between runs the doors are moved
 * on the simulator, as they would be while the gateway is down.
 * - stored open, closed while down: one closing, for both models (before: door-latch-8io reported
 *   an opening and a closing, generic-8io nothing);
 * - stored closed, opened while down: one opening (generic-8io reported nothing before);
 * - stored level equal to the live one: nothing;
 * - no stored event: each model's own first read, as before (generic-8io notes the level;
 *   door-latch-8io takes a set latch against a closed door, and notes the level without one).
 */
import t, { type Test } from 'tap';
import { ManualClock } from '../../gateway/clock.js';
import { ModbusBusDriver } from '../../devices/modbus-bridge.js';
import { wiredDevice } from '../../gateway/wired-adapter.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { DOOR_LATCH_8IO, GENERIC_8IO } from '../../firmware-contracts/modbus/register-map.js';
import { IoModule, ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { EngineHarness } from '../helpers/engine.js';
import { fakes } from '../helpers/bridge.js';
import { query, tempDataDir } from '../helpers/gateway.js';
import { addWiredDevice, eventually, provisionRow } from '../helpers/wired.js';

const DOOR = 1;
const DOOR_BIT = 1 << DOOR;
const DOOR_POLL_MS = 1000;
const LATCHING = 1;
const GENERIC = 2;

async function rig(t: Test) {
  const data = tempDataDir(t);
  await provisionRow(data, 2);
  const ids = {
    latching: addWiredDevice(data, { shopId: 'W00', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: LATCHING, model: 'door-latch-8io' }).deviceId,
    generic: addWiredDevice(data, { shopId: 'W01', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: GENERIC }).deviceId,
  };
  const clock = new ManualClock();
  const engine = new EngineHarness(t, data, clock);
  const key = loadOrCreateGatewayKey(data);
  const latching = new IoModule({ map: DOOR_LATCH_8IO });
  const generic = new IoModule({ map: GENERIC_8IO });
  const sim = await new ModbusTcpSlaveSim({ modules: new Map<number, IoModule>([[LATCHING, latching], [GENERIC, generic]]) }).start();
  t.teardown(() => sim.close());

  const doors = (id: string) =>
    query<{ payload: string }>(data, "SELECT payload FROM events WHERE device_id = ? AND type = 'door' ORDER BY id", id).map((e) => (JSON.parse(e.payload) as { open: boolean }).open);

  /**
   * One run of the bridge: a driver on fresh records, its first full read (at once) and the one
   * after it, then stopped. The loop is one request at a time and a poll awaits its commits, so
   * once the second read is answered the first one's events are stored, and once the driver is
   * closed the second one's are too: what is stored then is exactly what the two reads reported.
   * `during` runs between the two reads (a door moved while the bridge runs).
   */
  const run = async (during: () => void = () => {}) => {
    const f = fakes(clock, { overrides: { modbus: { panicPollMs: 100, doorPollMs: DOOR_POLL_MS, requestTimeoutMs: 2000 } } });
    f.ctx.ingest = (deviceId, event, via) => engine.deviceIngest(engine.registry.devices.get(deviceId)!, event, via);
    const records = [ids.latching, ids.generic].map((id) => wiredDevice(engine.registry.devices.get(id)!, key, engine.db));
    const driver = new ModbusBusDriver({ kind: 'modbus-tcp', host: '127.0.0.1', port: sim.port }, f.ctx, records);
    t.teardown(() => driver.close());
    const seen = (id: string) => f.seen.filter((s) => s === id).length;
    // The latching module answers twice per full read (FC02, then FC03 inputState), the generic one once.
    await eventually(() => seen(ids.latching) >= 2 && seen(ids.generic) >= 1, 'the first full read');
    during();
    clock.advance(DOOR_POLL_MS);
    await eventually(() => seen(ids.latching) >= 4 && seen(ids.generic) >= 2, 'the second full read');
    await driver.close();
  };
  return { ids, latching, generic, doors, run };
}

t.test('stored open, closed while the gateway was down: one closing at the first read, both models', async (t) => {
  const r = await rig(t);
  await r.run(() => {
    r.latching.setInput(DOOR, true);
    r.generic.setInput(DOOR, true);
  });
  t.same(r.doors(r.ids.latching), [true], 'first run: the opening stored (door-latch-8io)');
  t.same(r.doors(r.ids.generic), [true], 'first run: the opening stored (generic-8io)');

  r.latching.setInput(DOOR, false);
  r.generic.setInput(DOOR, false);
  await r.run();
  t.same(r.doors(r.ids.latching), [true, false], 'door-latch-8io: one closing, not an opening and a closing');
  t.same(r.doors(r.ids.generic), [true, false], 'generic-8io: the closing, no longer taken as the baseline');
  t.equal(r.latching.latchMask & DOOR_BIT, 0, "the closing's latch cleared once it was committed");
});

t.test('stored closed, opened while the gateway was down: one opening at the first read, both models', async (t) => {
  const r = await rig(t);
  r.latching.setInput(DOOR, true);
  r.generic.setInput(DOOR, true);
  await r.run(() => {
    r.latching.setInput(DOOR, false);
    r.generic.setInput(DOOR, false);
  });
  t.same(r.doors(r.ids.latching), [true, false], 'first run: the opening and the closing stored (door-latch-8io)');
  t.same(r.doors(r.ids.generic), [false], 'first run: generic-8io took the open door as its baseline, then stored the closing');

  r.latching.setInput(DOOR, true);
  r.generic.setInput(DOOR, true);
  await r.run();
  t.same(r.doors(r.ids.latching), [true, false, true], 'door-latch-8io: one opening');
  t.same(r.doors(r.ids.generic), [false, true], 'generic-8io: the opening, no longer missed');
  t.equal(r.latching.latchMask & DOOR_BIT, 0, 'cleared');
});

t.test('the stored level equal to the live one: nothing at the first read; the next change still reported', async (t) => {
  const r = await rig(t);
  await r.run(() => {
    r.latching.setInput(DOOR, true);
    r.generic.setInput(DOOR, true);
  });
  t.same(r.doors(r.ids.latching), [true]);
  t.same(r.doors(r.ids.generic), [true]);

  // Down and up again, the doors still open: nothing; then they close while it runs.
  await r.run(() => {
    r.latching.setInput(DOOR, false);
    r.generic.setInput(DOOR, false);
  });
  t.same(r.doors(r.ids.latching), [true, false], 'door-latch-8io: stored open, still open: nothing, then the closing');
  t.same(r.doors(r.ids.generic), [true, false], 'generic-8io: the same');

  // Down and up again, the doors still closed: nothing.
  await r.run();
  t.same(r.doors(r.ids.latching), [true, false], 'door-latch-8io: stored closed, still closed: nothing');
  t.same(r.doors(r.ids.generic), [true, false], 'generic-8io: the same');
  t.equal(r.latching.latchMask, 0);
});

t.test('no stored door event, a latch set at the start: each model as before', async (t) => {
  const r = await rig(t);
  // Never reported: the doors opened (door-latch-8io's latch set) before the first run.
  r.latching.setInput(DOOR, true);
  r.generic.setInput(DOOR, true);
  await r.run(() => {
    r.latching.setInput(DOOR, false);
    r.generic.setInput(DOOR, false);
  });
  t.same(r.doors(r.ids.latching), [true, false], 'door-latch-8io: the latch taken against a closed door (an opening), then the closing');
  t.same(r.doors(r.ids.generic), [false], 'generic-8io: the open door only noted at the first read, then the closing');
});

t.test('no stored door event, no latch at the start: the level only noted, both models as before', async (t) => {
  const r = await rig(t);
  r.latching.setInput(DOOR, true);
  r.latching.writeHolding(DOOR_LATCH_8IO.holdingRegisters.latchClear.address, DOOR_BIT);
  r.generic.setInput(DOOR, true);
  t.equal(r.latching.latchMask & DOOR_BIT, 0, 'door-latch-8io: open, its latch cleared');
  await r.run(() => {
    r.latching.setInput(DOOR, false);
    r.generic.setInput(DOOR, false);
  });
  t.same(r.doors(r.ids.latching), [false], 'door-latch-8io: nothing at the first read, then the closing');
  t.same(r.doors(r.ids.generic), [false], 'generic-8io: nothing at the first read, then the closing');
});
