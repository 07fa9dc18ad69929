/**
 * A door opened and closed between two full reads (issue 9; firmware-contracts/modbus/SPEC.md
 * "Latches"), on the real wire: Modbus TCP on loopback and Modbus RTU over a pty pair, the Modbus
 * bus driver on a ManualClock, its events through the gateway's one ingest into SQLite.
 * - door-latch-8io: the pulse is an opening and a closing, stored in that order, and the latch is
 *   cleared only after both are committed; a slow ingest holds the latch, a failing one leaves it
 *   set to be read again, and a latch-clear that fails is not taken for a second pulse.
 * - generic-8io: the same pulse is missed (its door is a live input), the limit SPEC.md states;
 *   a change it does see whose event failed is sent again.
 */
import t, { type Test } from 'tap';
import { ModbusBusDriver, doorReadings } from '../../devices/modbus-bridge.js';
import type { BusPort } from '../../devices/bridge.js';
import { DOOR_LATCH_8IO, GENERIC_8IO } from '../../firmware-contracts/modbus/register-map.js';
import { ExceptionCode, ModbusException } from '../../firmware-contracts/modbus/rtu.js';
import { IoModule, ModbusRtuSlaveSim, ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { sleep } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import { DOOR, DOOR_BIT, DOOR_POLL_MS, GENERIC, LATCHING, doorModuleShops } from '../helpers/door-modules.js';

/** A module whose next `failClears` latch-clear writes are refused (exception 4): the master's clear fails. */
class FlakyModule extends IoModule {
  failClears = 0;

  override writeHolding(address: number, value: number): void {
    if (this.failClears > 0) {
      this.failClears--;
      throw new ModbusException(ExceptionCode.SERVER_DEVICE_FAILURE, 'latch-clear refused (test)');
    }
    super.writeHolding(address, value);
  }
}

interface Wire {
  name: string;
  /** Serve the modules; returns the bus port the master opens. */
  serve(t: Test, modules: Map<number, IoModule>): Promise<BusPort>;
}

const wires: Wire[] = [
  {
    name: 'Modbus TCP on loopback',
    async serve(t, modules) {
      const sim = await new ModbusTcpSlaveSim({ modules }).start();
      t.teardown(() => sim.close());
      return { kind: 'modbus-tcp', host: '127.0.0.1', port: sim.port };
    },
  },
  {
    name: 'Modbus RTU on a pty pair',
    async serve(t, modules) {
      const pty = await openPtyPair();
      t.teardown(() => pty.close());
      const sim = await new ModbusRtuSlaveSim({ path: pty.a, modules }).start();
      t.teardown(() => sim.close());
      return { kind: 'modbus-rtu', path: pty.b, baud: 19200, parity: 'none' };
    },
  },
];

/**
 * Shop W00's door-latch-8io module (unit 1) and W01's generic-8io module (unit 2) on one bus, the
 * driver polling them on a ManualClock; the ingest can be made slow (a gate) or to fail.
 */
async function rig(t: Test, wire: Wire) {
  const { ids, clock, engine, fakes, records, doors } = await doorModuleShops(t);
  const latching = new FlakyModule({ map: DOOR_LATCH_8IO });
  const generic = new IoModule({ map: GENERIC_8IO });
  const port = await wire.serve(t, new Map<number, IoModule>([[LATCHING, latching], [GENERIC, generic]]));

  const f = fakes();
  const control = { gate: null as Promise<void> | null, failCalls: new Set<number>(), calls: 0 };
  f.ctx.ingest = async (deviceId, event, via) => {
    const call = ++control.calls;
    if (control.gate) await control.gate;
    if (control.failCalls.has(call)) throw new Error('the database is locked (test)');
    return engine.deviceIngest(engine.registry.devices.get(deviceId)!, event, via);
  };
  const driver = new ModbusBusDriver(port, f.ctx, records());
  t.teardown(() => driver.close());

  const seen = (id: string) => f.seen.filter((s) => s === id).length;
  /**
   * Advance the clock by one door poll and wait until both modules have answered its full read
   * (the latching one twice: FC02, then FC03 inputState), then let what follows settle.
   */
  const fullRead = async () => {
    const before = { latching: seen(ids.latching), generic: seen(ids.generic) };
    clock.advance(DOOR_POLL_MS);
    await eventually(() => seen(ids.latching) >= before.latching + 2 && seen(ids.generic) >= before.generic + 1, 'a full read of both modules');
    await sleep(300);
  };
  // The first full read, at once: the levels the bridge starts from (the doors closed).
  await eventually(() => seen(ids.latching) >= 2 && seen(ids.generic) >= 1, 'the first full read');
  await sleep(300);
  return { ids, latching, generic, control, f, doors, fullRead, clock };
}

/** Open and close the door between two reads (no read can fall between: the sim runs in this process). */
function pulseDoor(...modules: IoModule[]): void {
  for (const m of modules) {
    m.setInput(DOOR, true);
    m.setInput(DOOR, false);
  }
}

t.test('doorReadings: what a change latch and the level read after it mean', async (t) => {
  const known = (reported: boolean | undefined, clearUnconfirmed = false) => ({ reported, clearUnconfirmed });
  const cases: [string, ReturnType<typeof known>, boolean, boolean, ReturnType<typeof doorReadings>][] = [
    ['quiet', known(false), false, false, { opens: [], clear: false }],
    ['opened (and left open)', known(false), true, true, { opens: [true], clear: true }],
    ['closed', known(true), true, false, { opens: [false], clear: true }],
    ['opened and closed', known(false), true, false, { opens: [true, false], clear: true }],
    ['closed and opened again', known(true), true, true, { opens: [false, true], clear: true }],
    ['opened after the FC02 read, before the FC03: reported, the latch it set cleared', known(false), false, true, { opens: [true], clear: true }],
    ['the latch of events committed whose clear failed: cleared again, nothing twice', known(false, true), true, false, { opens: [], clear: true }],
    ['a change after a clear that failed is still a change', known(false, true), true, true, { opens: [true], clear: true }],
    ['the first read, nothing latched: the level only noted', known(undefined), false, true, { opens: [], clear: false }],
    ['the first read, latched and closed: it opened and closed unwatched', known(undefined), true, false, { opens: [true, false], clear: true }],
    ['the first read, latched and open', known(undefined), true, true, { opens: [true], clear: true }],
  ];
  for (const [what, door, latch, level, expected] of cases) t.same(doorReadings(door, latch, level), expected, what);
});

for (const wire of wires) {
  t.test(wire.name, async (t) => {
    t.test('a door opened and closed between two full reads: an opening and a closing with the latching model, nothing with the generic one', async (t) => {
      const r = await rig(t, wire);
      pulseDoor(r.latching, r.generic);
      t.equal(r.latching.latchMask & DOOR_BIT, DOOR_BIT, 'door-latch-8io: the pulse latched');
      t.equal(r.generic.latchMask & DOOR_BIT, 0, 'generic-8io: its door is live, nothing latched');
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 2, 'two door events stored');
      const stored = r.doors(r.ids.latching);
      t.same(stored.map((d) => d.open), [true, false], 'the opening, then the closing');
      t.ok(stored[0]!.seq < stored[1]!.seq, 'in that order in the module\'s sequence');
      await eventually(() => (r.latching.latchMask & DOOR_BIT) === 0, 'the latch cleared after both were committed');
      t.same(r.doors(r.ids.generic), [], 'generic-8io: the same pulse is missed (SPEC.md: a live door between two reads)');

      // Opened and left open, then closed: one event each, as a live door reports them.
      r.latching.setInput(DOOR, true);
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 3, 'the opening stored');
      r.latching.setInput(DOOR, false);
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 4, 'the closing stored');
      t.same(r.doors(r.ids.latching).map((d) => d.open), [true, false, true, false], 'one event per change');
      await r.fullRead();
      t.equal(r.doors(r.ids.latching).length, 4, 'a quiet door reports nothing more');
      t.equal(r.latching.latchMask, 0);
    });

    t.test('the latch stays set while the ingest is slow, and is cleared once both events are committed', async (t) => {
      const r = await rig(t, wire);
      let release!: () => void;
      r.control.gate = new Promise((resolve) => (release = resolve));
      pulseDoor(r.latching);
      r.clock.advance(DOOR_POLL_MS);
      await eventually(() => r.control.calls >= 1, 'the opening handed to the ingest');
      await sleep(300);
      t.equal(r.control.calls, 1, 'the closing waits for the opening\'s commit');
      t.equal(r.latching.latchMask & DOOR_BIT, DOOR_BIT, 'still latched while the commit is pending');
      t.same(r.doors(r.ids.latching), [], 'nothing stored yet');
      r.control.gate = null;
      release();
      await eventually(() => r.doors(r.ids.latching).length === 2, 'both stored');
      await eventually(() => (r.latching.latchMask & DOOR_BIT) === 0, 'cleared after the commit');
      t.same(r.doors(r.ids.latching).map((d) => d.open), [true, false]);
    });

    t.test('an ingest that fails leaves the latch set; the next full read reports what was not stored, nothing twice', async (t) => {
      const r = await rig(t, wire);
      // The opening fails: nothing is stored, the closing is not sent, the latch stays.
      r.control.failCalls = new Set([1]);
      pulseDoor(r.latching);
      await r.fullRead();
      t.equal(r.control.calls, 1, 'the opening was tried, the closing not sent without it');
      t.same(r.doors(r.ids.latching), [], 'nothing stored');
      t.equal(r.latching.latchMask & DOOR_BIT, DOOR_BIT, 'the latch stays set');
      t.ok(r.f.logs.some((l) => l.level === 'error' && l.msg.startsWith('event not stored')), 'logged');
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 2, 'read again: both stored');
      await eventually(() => (r.latching.latchMask & DOOR_BIT) === 0, 'then cleared');

      // The closing fails after the opening was stored: the next read sends the closing only.
      r.control.failCalls = new Set([r.control.calls + 2]);
      pulseDoor(r.latching);
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 3, 'the opening stored');
      t.equal(r.latching.latchMask & DOOR_BIT, DOOR_BIT, 'the closing failed: still latched');
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 4, 'the closing stored at the next read');
      await eventually(() => (r.latching.latchMask & DOOR_BIT) === 0, 'and the latch cleared');
      t.same(r.doors(r.ids.latching).map((d) => d.open), [true, false, true, false], 'each edge once: the opening not sent twice');
    });

    t.test('generic-8io: a door change whose event failed is sent again at the next full read', async (t) => {
      const r = await rig(t, wire);
      r.generic.setInput(DOOR, true);
      r.control.failCalls = new Set([1]);
      await r.fullRead();
      t.equal(r.control.calls, 1, 'the opening was tried');
      t.same(r.doors(r.ids.generic), [], 'and not stored');
      await r.fullRead();
      await eventually(() => r.doors(r.ids.generic).length === 1, 'sent again: stored');
      t.same(r.doors(r.ids.generic).map((d) => d.open), [true]);
      await r.fullRead();
      t.equal(r.doors(r.ids.generic).length, 1, 'once');
    });

    t.test('a latch-clear that fails is cleared again at the next read, its events not reported twice', async (t) => {
      const r = await rig(t, wire);
      r.latching.failClears = 1;
      pulseDoor(r.latching);
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 2, 'both stored');
      t.equal(r.latching.latchMask & DOOR_BIT, DOOR_BIT, 'the clear was refused: still latched');
      t.equal(r.f.counts.get('modbus.latch-clear.failed'), 1, 'counted');
      await r.fullRead();
      await eventually(() => (r.latching.latchMask & DOOR_BIT) === 0, 'cleared at the next read');
      t.equal(r.doors(r.ids.latching).length, 2, 'the same latch is not a second pulse');
      // The module is fine again: a new pulse is a new opening and closing.
      pulseDoor(r.latching);
      await r.fullRead();
      await eventually(() => r.doors(r.ids.latching).length === 4, 'the next pulse stored');
      t.same(r.doors(r.ids.latching).map((d) => d.open), [true, false, true, false]);
    });
  });
}
