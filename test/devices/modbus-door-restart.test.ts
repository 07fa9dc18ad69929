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
import { ModbusBusDriver } from '../../devices/modbus-bridge.js';
import { DOOR_LATCH_8IO, GENERIC_8IO } from '../../firmware-contracts/modbus/register-map.js';
import { IoModule, ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { eventually } from '../helpers/wired.js';
import { DOOR, DOOR_BIT, DOOR_POLL_MS, GENERIC, LATCHING, doorModuleShops } from '../helpers/door-modules.js';

async function rig(t: Test) {
  const shops = await doorModuleShops(t);
  const { ids, clock } = shops;
  const latching = new IoModule({ map: DOOR_LATCH_8IO });
  const generic = new IoModule({ map: GENERIC_8IO });
  const sim = await new ModbusTcpSlaveSim({ modules: new Map<number, IoModule>([[LATCHING, latching], [GENERIC, generic]]) }).start();
  t.teardown(() => sim.close());

  /** A module's stored door levels, in order. */
  const doors = (id: string) => shops.doors(id).map((d) => d.open);
  /** Move both doors (while the gateway is down, or between two reads). */
  const setDoors = (open: boolean) => {
    latching.setInput(DOOR, open);
    generic.setInput(DOOR, open);
  };

  /**
   * One run of the bridge: a driver on fresh records, its first full read (at once) and the one
   * after it, then stopped. The loop is one request at a time and a poll awaits its commits, so
   * once the second read is answered the first one's events are stored, and once the driver is
   * closed the second one's are too: what is stored then is exactly what the two reads reported.
   * `during` runs between the two reads (a door moved while the bridge runs).
   */
  const run = async (during: () => void = () => {}) => {
    const f = shops.fakes();
    const driver = new ModbusBusDriver({ kind: 'modbus-tcp', host: '127.0.0.1', port: sim.port }, f.ctx, shops.records());
    t.teardown(() => driver.close());
    const seen = (id: string) => f.seen.filter((s) => s === id).length;
    // The latching module answers twice per full read (FC02, then FC03 inputState), the generic one once.
    await eventually(() => seen(ids.latching) >= 2 && seen(ids.generic) >= 1, 'the first full read');
    during();
    clock.advance(DOOR_POLL_MS);
    await eventually(() => seen(ids.latching) >= 4 && seen(ids.generic) >= 2, 'the second full read');
    await driver.close();
  };
  return { ids, latching, generic, doors, setDoors, run };
}

t.test('stored open, closed while the gateway was down: one closing at the first read, both models', async (t) => {
  const r = await rig(t);
  await r.run(() => r.setDoors(true));
  t.same(r.doors(r.ids.latching), [true], 'first run: the opening stored (door-latch-8io)');
  t.same(r.doors(r.ids.generic), [true], 'first run: the opening stored (generic-8io)');

  r.setDoors(false);
  await r.run();
  t.same(r.doors(r.ids.latching), [true, false], 'door-latch-8io: one closing, not an opening and a closing');
  t.same(r.doors(r.ids.generic), [true, false], 'generic-8io: the closing, no longer taken as the baseline');
  t.equal(r.latching.latchMask & DOOR_BIT, 0, "the closing's latch cleared once it was committed");
});

t.test('stored closed, opened while the gateway was down: one opening at the first read, both models', async (t) => {
  const r = await rig(t);
  r.setDoors(true);
  await r.run(() => r.setDoors(false));
  t.same(r.doors(r.ids.latching), [true, false], 'first run: the opening and the closing stored (door-latch-8io)');
  t.same(r.doors(r.ids.generic), [false], 'first run: generic-8io took the open door as its baseline, then stored the closing');

  r.setDoors(true);
  await r.run();
  t.same(r.doors(r.ids.latching), [true, false, true], 'door-latch-8io: one opening');
  t.same(r.doors(r.ids.generic), [false, true], 'generic-8io: the opening, no longer missed');
  t.equal(r.latching.latchMask & DOOR_BIT, 0, 'cleared');
});

t.test('the stored level equal to the live one: nothing at the first read; the next change still reported', async (t) => {
  const r = await rig(t);
  await r.run(() => r.setDoors(true));
  t.same(r.doors(r.ids.latching), [true]);
  t.same(r.doors(r.ids.generic), [true]);

  // Down and up again, the doors still open: nothing; then they close while it runs.
  await r.run(() => r.setDoors(false));
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
  r.setDoors(true);
  await r.run(() => r.setDoors(false));
  t.same(r.doors(r.ids.latching), [true, false], 'door-latch-8io: the latch taken against a closed door (an opening), then the closing');
  t.same(r.doors(r.ids.generic), [false], 'generic-8io: the open door only noted at the first read, then the closing');
});

t.test('no stored door event, no latch at the start: the level only noted, both models as before', async (t) => {
  const r = await rig(t);
  r.setDoors(true);
  r.latching.writeHolding(DOOR_LATCH_8IO.holdingRegisters.latchClear.address, DOOR_BIT);
  t.equal(r.latching.latchMask & DOOR_BIT, 0, 'door-latch-8io: open, its latch cleared');
  await r.run(() => r.setDoors(false));
  t.same(r.doors(r.ids.latching), [false], 'door-latch-8io: nothing at the first read, then the closing');
  t.same(r.doors(r.ids.generic), [false], 'generic-8io: nothing at the first read, then the closing');
});
