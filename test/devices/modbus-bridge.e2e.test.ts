/**
 * The Modbus bridge end to end: the gateway as a child process, master of a Modbus RTU line on a pty
 * (the module simulator, doing its own framing, on the other end) and of a Modbus TCP module.
 */
import t from 'tap';
import { GatewayProcess, cli, nearestShops, query, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, eventually, faultWatcher, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { IoModule, ModbusRtuSlaveSim, ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';

const PANIC = 0;
const DOOR = 1;
const TAMPER = 2;
const GENERIC = 3;
const SOUNDER = 0;

const data = tempDataDir(t);
await provisionRow(data, 13);
const line = await openPtyPair();
t.teardown(() => line.close());

// The origin W06 and its neighbours W05, W07 on the RTU line; W00 (not among W06's ten nearest)
// too; W08's module at unit 9 is registered but missing from the line (silent).
const rtuUnits: Record<number, string> = { 1: 'W06', 2: 'W05', 3: 'W07', 4: 'W00' };
const devices = new Map<string, string>();
for (const [unit, shopId] of Object.entries(rtuUnits)) {
  devices.set(shopId, addWiredDevice(data, { shopId, type: 'io-module', transport: 'modbus-rtu', port: line.a, busAddress: Number(unit) }).deviceId);
}
const silentDevice = addWiredDevice(data, { shopId: 'W08', type: 'io-module', transport: 'modbus-rtu', port: line.a, busAddress: 9 }).deviceId;

const rtu = new ModbusRtuSlaveSim({ path: line.b, modules: Object.keys(rtuUnits).map((u) => ({ unitId: Number(u) })) });
await rtu.start();
t.teardown(() => rtu.close());
// Unit 2 on TCP is W12's door-latch-8io module (W12 is not among W06's ten nearest either).
const tcp = new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }, { unitId: 2, map: 'door-latch-8io' }] });
await tcp.start();
t.teardown(() => tcp.close());
devices.set('W04', addWiredDevice(data, { shopId: 'W04', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId);
devices.set('W12', addWiredDevice(data, { shopId: 'W12', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 2, model: 'door-latch-8io' }).deviceId);

const unit = (n: number) => rtu.modules.get(n)!;
const tcpModule = tcp.modules.get(1)!;

const gw = await GatewayProcess.start(t, data, {
  LF_MODBUS_REQUEST_TIMEOUT_MS: '150',
  LF_MODBUS_PANIC_POLL_MS: '50',
  LF_MODBUS_DOOR_POLL_MS: '300',
  LF_MODBUS_REOPEN_BACKOFF_MS: '50',
  LF_MODBUS_REOPEN_BACKOFF_MAX_MS: '500',
  LF_MODBUS_SOUNDER_MAX_MS: '6000',
  LF_SUPERVISION_FAULT_AFTER_MS: '3000',
  LF_SUPERVISION_CHECK_INTERVAL_MS: '100',
});
const officer = await new SimConsole(STATION, OFFICER).connect(gw.mqttUrl);
t.teardown(() => officer.close());
const watch = await faultWatcher(gw.mqttUrl);
t.teardown(() => watch.client.endAsync(true));

const counter = async (name: string) => Number((await gw.health()).counters?.[name] ?? 0);
const sounderOn = (m: IoModule) => m.coils.get(SOUNDER) === true;

t.test('a 50 ms panic pulse between polls raises an alarm; the neighbours\' sounders ring until it is closed', async (t) => {
  t.ok(nearestShops(data, 'W06').includes('W05') && nearestShops(data, 'W06').includes('W04'), 'W04, W05, W07 are among W06\'s ten nearest');
  t.notOk(nearestShops(data, 'W06').includes('W00'), 'W00 is not');
  await unit(1).pulse(PANIC, 50);
  t.notOk(unit(1).input(PANIC), 'the button is released again');
  const alarm = await officer.waitFor((a) => a.shopId === 'W06', 30_000);
  t.equal(alarm.kind, 'panic');
  await eventually(() => unit(1).latchMask === 0, 'the latch cleared after the commit');
  t.equal(query(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'panic' AND via = 'modbus'", devices.get('W06'))[0]!.n, 1, 'one panic event stored');

  await eventually(() => sounderOn(unit(2)) && sounderOn(unit(3)) && sounderOn(tcpModule), 'neighbour sounders on (RTU and TCP)');
  t.notOk(sounderOn(unit(4)), 'W00, not a neighbour, stays quiet');
  t.notOk(sounderOn(unit(1)), 'the origin\'s own sounder is not switched');
  await eventually(
    () => query(data, "SELECT count(*) AS n FROM outbox WHERE alarm_id = ? AND recipient_id IN ('W04', 'W05', 'W07') AND delivered_by LIKE 'device:%'", alarm.alarmId)[0]!.n === 3,
    'the three shops\' deliveries confirmed by their modules',
  );

  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'acknowledged');
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
  await eventually(() => !sounderOn(unit(2)) && !sounderOn(unit(3)) && !sounderOn(tcpModule), 'sounders off');
  // Each module logs once both its coils (sounder, strobe) are written.
  const offForAlarm = () => gw.logs.filter((l) => l.msg === 'sounder off' && l.alarmId === alarm.alarmId).length;
  await eventually(() => offForAlarm() === 3, 'three modules switched off for the ended alarm');
  t.notOk(gw.logs.some((l) => l.msg.startsWith('sounder on for its longest allowed time')), 'switched off because the alarm ended (not by the time limit)');
  t.ok(unit(2).coilHistory.some((c) => c.address === SOUNDER && c.on && c.by === 'rtu'), 'the coil was written over the wire');
});

t.test('a sounder never rings longer than the configured maximum', async (t) => {
  await unit(1).pulse(PANIC, 50);
  const alarm = await officer.waitFor((a) => a.shopId === 'W06' && a.state === 'raised' && !officer.updates.some((u) => u.alarmId === a.alarmId && u.state === 'closed'), 30_000);
  await eventually(() => sounderOn(unit(2)), 'sounder on');
  const onAt = Date.now();
  await eventually(() => !sounderOn(unit(2)), 'sounder off by itself', 60_000);
  t.ok(Date.now() - onAt >= 4000, 'it rang for about the maximum (6 s configured), not less than most of it');
  t.equal(query(data, 'SELECT state FROM alarms WHERE id = ?', alarm.alarmId)[0]!.state, 'raised', 'while the alarm is still open');
  t.ok(gw.logs.some((l) => l.msg.startsWith('sounder on for its longest allowed time')), 'and the gateway says why');
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
});

t.test('door contacts report changes; the latch-clear names only the inputs whose events were committed', async (t) => {
  unit(2).setInput(DOOR, true);
  await eventually(() => query(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'door'", devices.get('W05'))[0]!.n === 1, 'door open stored');
  unit(2).setInput(DOOR, false);
  await eventually(() => query(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'door'", devices.get('W05'))[0]!.n === 2, 'door closed stored');
  const doors = query<{ payload: string }>(data, "SELECT payload FROM events WHERE device_id = ? AND type = 'door' ORDER BY id", devices.get('W05'));
  t.same(doors.map((d) => JSON.parse(d.payload).open), [true, false]);

  // A tamper (an event) and a generic input (no meaning yet, no event) latch together: only the
  // tamper's latch is cleared.
  unit(3).setInput(GENERIC, true);
  await unit(3).pulse(TAMPER, 30);
  await eventually(() => query(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'tamper'", devices.get('W07'))[0]!.n === 1, 'tamper stored');
  await eventually(() => (unit(3).latchMask & (1 << TAMPER)) === 0, 'tamper latch cleared');
  t.equal(unit(3).latchMask & (1 << GENERIC), 1 << GENERIC, 'the other latch stays set');
  unit(3).setInput(GENERIC, false);
});

t.test('a door opened and closed between two reads: door-latch-8io reports both edges, generic-8io misses them', async (t) => {
  const doors = (shopId: string) =>
    query<{ payload: string }>(data, "SELECT payload FROM events WHERE device_id = ? AND type = 'door' ORDER BY id", devices.get(shopId)).map((d) => JSON.parse(d.payload).open as boolean);
  const generic = doors('W05').length;
  const latching = tcp.modules.get(2)!;
  // Opened and closed in one go: no read can fall between the two edges.
  for (const m of [latching, unit(2)]) {
    m.setInput(DOOR, true);
    m.setInput(DOOR, false);
  }
  await eventually(() => doors('W12').length === 2, 'the opening and the closing stored');
  t.same(doors('W12'), [true, false], 'in order');
  await eventually(() => latching.latchMask === 0, 'its latch cleared after the commit');
  // The generic door opened and left open: the first full read after the pulse reports it, and
  // only it: the pulse before it is missed (its door is a live input).
  unit(2).setInput(DOOR, true);
  await eventually(() => doors('W05').length > generic, 'the generic door\'s opening stored');
  t.same(doors('W05').slice(generic), [true], 'generic-8io: the pulse is missed, only the later opening is seen');
  unit(2).setInput(DOOR, false);
  await eventually(() => doors('W05').length === generic + 2, 'and its closing');
});

t.test('a module that never answers costs a timeout and becomes a fault; the others are still polled; it clears when it answers', async (t) => {
  await eventually(() => watch.faults.some((f) => f.deviceId === silentDevice && f.state === 'raised'), 'fault for the silent module');
  t.ok((await counter('modbus.timeouts')) >= 1, 'its requests timed out');
  t.notOk(watch.faults.some((f) => f.deviceId === devices.get('W05') && f.state === 'raised'), 'the modules that answer are not faulted');
  const before = rtu.stats.answered;
  await eventually(() => rtu.stats.answered > before + 5, 'the other modules are still polled');
  // The module is plugged in: it answers, and the fault clears itself.
  rtu.modules.set(9, new IoModule());
  await eventually(() => watch.faults.some((f) => f.deviceId === silentDevice && f.state === 'cleared'), 'fault cleared');
});

t.test('an exception answer and garbage are logged and counted; polling goes on', async (t) => {
  const exceptions = await counter('modbus.exceptions');
  unit(3).fault = 'exception';
  await eventually(async () => (await counter('modbus.exceptions')) > exceptions, 'exception counted');
  unit(3).fault = 'garbage';
  const timeouts = await counter('modbus.timeouts');
  await eventually(async () => (await counter('modbus.timeouts')) > timeouts, 'garbage costs a timeout');
  unit(3).fault = 'none';
  const doors = () => query<{ n: number }>(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'door'", devices.get('W05'))[0]!.n;
  const before = doors();
  unit(2).setInput(DOOR, true);
  await eventually(() => doors() === before + 1, 'the other module still reports');
  t.equal(gw.exitCode, null, 'the gateway kept running');
});

t.test('a Modbus TCP module that goes away is a fault; the gateway reconnects when it is back', async (t) => {
  const deviceId = devices.get('W04')!;
  const port = tcp.port;
  await tcp.close();
  await eventually(() => watch.faults.some((f) => f.deviceId === deviceId && f.state === 'raised'), 'fault for the TCP module');
  const again = new ModbusTcpSlaveSim({ port, modules: [{ unitId: 1 }] });
  await again.start();
  t.teardown(() => again.close());
  await eventually(() => watch.faults.some((f) => f.deviceId === deviceId && f.state === 'cleared'), 'fault cleared after reconnecting');
  t.equal(gw.exitCode, null);
});

// The per-address answer timeout is generous: the simulator runs in this test process, and a
// loaded machine may delay its answer well past the wire time (a missed unit fails the test).
t.test('bus scan lists the unit ids that answer, through the running gateway', async (t) => {
  const busId = query<{ bus: string }>(data, 'SELECT bus FROM devices WHERE id = ?', devices.get('W06'))[0]!.bus;
  const scan = await cli(['bus', 'scan', busId, '--from', '1', '--to', '10', '--timeout-ms', '300', '--json', '--data', data]);
  t.equal(scan.code, 0, scan.stderr);
  const hits = JSON.parse(scan.stdout) as { address: number; deviceId: string }[];
  t.same(hits.map((h) => h.address), [1, 2, 3, 4, 9], 'the units on the line');
  t.equal(hits[0]!.deviceId, devices.get('W06'));
});

t.test('after the gateway stops, bus scan opens the port itself', async (t) => {
  await gw.kill('SIGTERM');
  const busId = query<{ bus: string }>(data, 'SELECT bus FROM devices WHERE id = ?', devices.get('W06'))[0]!.bus;
  const scan = await cli(['bus', 'scan', busId, '--from', '1', '--to', '5', '--timeout-ms', '300', '--json', '--data', data]);
  t.equal(scan.code, 0, scan.stderr);
  t.same((JSON.parse(scan.stdout) as { address: number }[]).map((h) => h.address), [1, 2, 3, 4]);
});
