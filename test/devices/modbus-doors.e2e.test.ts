/**
 * A Modbus module's door contact on its real wire (issue 9 "Door contacts"): the gateway in-process
 * on a ManualClock, master of the module simulator over Modbus TCP on loopback (the generic-8io
 * map's live door input, read on the full poll). The shop is armed; the door opens at the module;
 * the bridge's read becomes a door event that starts the entry delay; when the delay runs out
 * undisarmed, the console gets an intrusion alarm. Disarmed, the same door held open is a door-held
 * fault, cleared when it closes at the module.
 *
 * The bridge polls by the gateway's clock, so the test moves the clock in small steps and yields
 * between them for the TCP round trips (`pump`); every interval is the manual clock's.
 */
import t from 'tap';
import { tempDataDir, query, startGateway } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, provisionRow } from '../helpers/wired.js';
import { ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';
import { ManualClock } from '../../gateway/clock.js';

const DOOR = 1;
const STEP_MS = 50;
const ENTRY_DELAY_MS = 30_000;
const HELD_OPEN_MS = 60_000;

const data = tempDataDir(t);
await provisionRow(data, 12);
const tcp = new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] });
await tcp.start();
t.teardown(() => tcp.close());
const deviceId = addWiredDevice(data, { shopId: 'W06', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId;
const module = tcp.modules.get(1)!;
// Reads that include the door input: the bridge's full polls (its fast polls read the panic input only).
let fullReads = 0;
const readInputs = module.readInputs.bind(module);
module.readInputs = (start, count) => {
  if (start <= DOOR && start + count > DOOR) fullReads++;
  return readInputs(start, count);
};

const clock = new ManualClock();
const gw = await startGateway(
  t,
  data,
  {
    escalation: { ringIntervalMs: 3600_000, ackDeadlineMs: 3600_000 },
    doors: { entryDelayMs: ENTRY_DELAY_MS, heldOpenMs: HELD_OPEN_MS },
    // A round trip on a loaded machine must not look like a timeout of the manual clock's.
    modbus: { requestTimeoutMs: 5_000, doorPollMs: 500 },
    supervision: { faultAfterMs: 3600_000 },
  },
  { clock },
);
const officer = await new SimConsole(STATION, OFFICER).connect(`mqtt://127.0.0.1:${gw.ports().mqtt}`);
t.teardown(() => officer.close());

/** Move the clock in steps until `done` holds (or `maxMs` of the clock passed), yielding for the wire. */
async function pump(done: () => boolean, maxMs: number, what: string): Promise<void> {
  const until = clock.now() + maxMs;
  while (!done()) {
    if (clock.now() >= until) throw new Error(`not within ${maxMs} ms of the clock: ${what}`);
    clock.advance(Math.min(STEP_MS, until - clock.now()));
    await gw.writer.run(() => undefined);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const doorEvents = () => query<{ n: number }>(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'door'", deviceId)[0]!.n;
const entryDue = () => query<{ dueAt: number | null }>(data, "SELECT min(due_at) AS dueAt FROM deadlines WHERE kind = 'entry-delay' AND shop_id = 'W06' AND done_at IS NULL")[0]!.dueAt;

t.test('an armed shop: the module door opens, the entry delay runs out, the console gets an intrusion', async (t) => {
  // The first full read learns the door closed (a live input reports changes only).
  await pump(() => fullReads >= 1, 5_000, 'a first full read');
  await gw.writer.run((fx) => gw.engine.setArmed(fx, 'W06', true, 'cli:test'));

  module.setInput(DOOR, true);
  await pump(() => entryDue() !== null, 5_000, 'the entry delay started by the door event');
  t.equal(doorEvents(), 1, 'one door event, from the module over Modbus TCP');
  t.match(query(data, "SELECT via, payload FROM events WHERE device_id = ? AND type = 'door'", deviceId), [{ via: 'modbus', payload: /"open":true/ }]);
  const due = entryDue()!;
  await pump(() => clock.now() >= due - STEP_MS, ENTRY_DELAY_MS, 'just before the delay ends');
  t.same(query(data, "SELECT count(*) AS n FROM alarms WHERE shop_id = 'W06'"), [{ n: 0 }], 'nothing before the delay ends');
  await pump(() => query(data, "SELECT count(*) AS n FROM alarms WHERE shop_id = 'W06'")[0]!.n === 1, 2 * STEP_MS, 'the intrusion');
  const alarm = await officer.waitFor((a) => a.shopId === 'W06');
  t.match(alarm, { kind: 'intrusion', state: 'raised', priority: 2 }, 'the console gets an intrusion alarm');
  module.setInput(DOOR, false);
  await pump(() => doorEvents() === 2, 5_000, 'the door closed');
});

t.test('disarmed: the module door held open is a door-held fault, cleared when it closes', async (t) => {
  await gw.writer.run((fx) => gw.engine.setArmed(fx, 'W06', false, 'cli:test'));
  module.setInput(DOOR, true);
  await pump(() => doorEvents() === 3, 5_000, 'the door opened');
  t.notOk(gw.supervisor.isFaulted(deviceId, 'door-held'), 'not at once');
  await pump(() => gw.supervisor.isFaulted(deviceId, 'door-held'), HELD_OPEN_MS + 2 * STEP_MS, 'door-held');
  t.pass('held open: a door-held fault');
  t.equal(entryDue(), null, 'no entry delay while disarmed');
  module.setInput(DOOR, false);
  await pump(() => !gw.supervisor.isFaulted(deviceId, 'door-held'), 5_000, 'cleared when it closes');
  t.pass('cleared when the door closed at the module');
});
