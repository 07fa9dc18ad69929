/**
 * `lianfang test walk` (gateway/cli/test-walk.ts) as a child process against the gateway as a
 * child process: a serial keypad on a real pty line, a Modbus TCP I/O module with panic and door
 * inputs, an MQTT keypad in the neighbour shop and the officer's console. The walk's output shows
 * each device pass as its event arrives; it ends by itself with exit 0 and a report; the passes are
 * audit rows and `device list` shows them; nothing of the walk reaches a neighbour or the console;
 * the first 9# after it is a real alarm. A walk whose keypad never acts (its 9# came before the walk)
 * ends at its time limit with exit 3 and that keypad not passed; Ctrl-C ends a walk with exit 130,
 * the report and the end of its test mode.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CLI, GatewayProcess, cli, oneShopStreet, query, sleep, tempDataDir, until } from '../../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, provisionRow } from '../../helpers/wired.js';
import { openPtyPair } from '../../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../../simulators/serial-keypad.js';
import { ModbusTcpSlaveSim } from '../../../simulators/modbus-module.js';
import { SimConsole, SimKeypad } from '../../../simulators/mqtt-devices.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { addDevice } from '../../../gateway/registry/registry.js';

// Among the suite's longest files (30-75 s here): a slower machine must not reach tap's 120 s.
t.setTimeout(300_000);

/** The generic-8io inputs: a latched panic button at 0, a door contact at 1. */
const PANIC = 0;
const DOOR = 1;
/** Long enough for a message that was sent to have arrived many times over. */
const QUIET_MS = 3_000;

const GATEWAY_ENV = {
  LF_SERIAL_POLL_PAUSE_MS: '5',
  LF_MODBUS_PANIC_POLL_MS: '50',
  LF_MODBUS_DOOR_POLL_MS: '200',
  LF_ESCALATION_RING_INTERVAL_MS: '3600000',
};

/** `lianfang test walk …` as a child process whose output lines are read as they come. */
class Walk {
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(t: { teardown(fn: () => unknown): void }, args: string[]) {
    this.child = spawn(process.execPath, [CLI, 'test', 'walk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.out.push(l));
    createInterface({ input: this.child.stderr! }).on('line', (l) => this.err.push(l));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
    t.teardown(() => this.child.kill('SIGKILL'));
  }

  /** The first line of stdout (or stderr) matching `re`, waited for. */
  line(re: RegExp, from: 'out' | 'err' = 'out'): Promise<string> {
    const lines = from === 'out' ? this.out : this.err;
    return until(`a walk line ${re}`, async () => lines.find((l) => re.test(l)), (l) => l !== undefined, 60_000) as Promise<string>;
  }

  interrupt(): void {
    this.child.kill('SIGINT');
  }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const walkAudit = (data: string) =>
  query<{ at: string; actor: string; detail: string }>(data, "SELECT at, actor, detail FROM audit WHERE action = 'walk-test-passed' ORDER BY id").map((r) => ({ at: r.at, actor: r.actor, ...JSON.parse(r.detail) }));
const lastTested = async (data: string, shopId: string) => {
  const r = await cli(['device', 'list', '--shop', shopId, '--data', data, '--json']);
  return new Map((JSON.parse(r.stdout) as { deviceId: string; lastTested: string | null }[]).map((d) => [d.deviceId, d.lastTested]));
};

const io = (tcp: ModbusTcpSlaveSim) => tcp.modules.get(1)!;

/**
 * Open the module's door and close it again, each seen as a stored door event (the bridge learns
 * the door's resting state at its first full read, so the opening is repeated until one is seen).
 * Returns the id of the closing event.
 */
async function doorCycle(data: string, tcp: ModbusTcpSlaveSim, deviceId: string): Promise<number> {
  const doors = () => query<{ id: number; payload: string }>(data, "SELECT id, payload FROM events WHERE device_id = ? AND type = 'door' ORDER BY id", deviceId);
  await until(
    'a door-open event',
    async () => {
      io(tcp).setInput(DOOR, false);
      await sleep(500);
      io(tcp).setInput(DOOR, true);
      await sleep(500);
      return doors();
    },
    (e) => e.some((x) => JSON.parse(x.payload).open === true),
    60_000,
  );
  io(tcp).setInput(DOOR, false);
  const all = await until('a door-closed event', async () => doors(), (e) => JSON.parse(e[e.length - 1]!.payload).open === false);
  return all[all.length - 1]!.id;
}

/** An MQTT keypad registered in `shopId` (before the gateway starts, which reads it then). */
function mqttKeypad(t: { teardown(fn: () => unknown): void }, data: string, shopId: string): SimKeypad {
  const db = openDatabase(data);
  try {
    const issued = addDevice(db, loadOrCreateGatewayKey(data), { shopId, type: 'keypad', transport: 'mqtt' });
    const kp = new SimKeypad(issued.device.id, shopId, { username: issued.username!, password: issued.password! }, 1);
    t.teardown(() => kp.close());
    return kp;
  } finally {
    db.close();
  }
}

t.test('a walk: each pass shows as it comes, the walk ends by itself with exit 0, nothing reaches a neighbour or the console', async (t) => {
  const data = tempDataDir(t);
  const shops = await provisionRow(data, 2);
  const [neighbour, origin] = [shops[0]!.shopId, shops[1]!.shopId];
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const keypad = addWiredDevice(data, { shopId: origin, type: 'keypad', transport: 'serial', port: line.a, busAddress: 1 });
  const tcp = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] }).start();
  t.teardown(() => tcp.close());
  const module = addWiredDevice(data, { shopId: origin, type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId;

  const next = mqttKeypad(t, data, neighbour);
  const gw = await GatewayProcess.start(t, data, GATEWAY_ENV);
  await next.connect(gw.mqttUrl);
  const sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: 1, key: keypad.key! }] });
  await sim.start();
  t.teardown(() => sim.close());
  const officer = await new SimConsole(STATION, OFFICER).connect(gw.mqttUrl);
  t.teardown(() => officer.close());

  // Before the walk: the door opens and closes again. That opening proves nothing for the walk.
  const early = await doorCycle(data, tcp, module);

  const walk = new Walk(t, ['--shop', origin, '--seconds', '300', '--data', data]);
  await walk.line(new RegExp(`${esc(keypad.deviceId)}.*press 9# / 按 9#`));
  await walk.line(new RegExp(`${esc(module)}.*input panic: press the panic button / 按下紧急按钮; input door: open the door / 打开门`));
  await sleep(QUIET_MS);
  t.notOk(walk.out.some((l) => /PASS|ok 已测/.test(l)), 'the door opened before the walk counts for nothing');

  sim.press(1, '9#');
  const kpLine = await walk.line(new RegExp(`PASS 通过  ${esc(keypad.deviceId)}`));
  t.match(kpLine, /9#, test alarm \S+ \(event \d+\)\s+\[1\/2\]/, 'the keypad passes on its 9# as it comes');
  t.notOk(walk.out.some((l) => /^report/.test(l)), 'while the walk goes on');
  await io(tcp).pulse(PANIC, 100);
  t.match(await walk.line(new RegExp(`ok 已测    ${esc(module)}`)), /input panic: panic .*still to do: input door: open the door/, 'the panic input shows, the door still to do');
  io(tcp).setInput(DOOR, true);
  t.match(await walk.line(new RegExp(`PASS 通过  ${esc(module)}`)), /input door: door .*\[2\/2\]/, 'the module passes when its door opens');
  const code = await walk.exited;
  t.equal(code, 0, `exit 0 when every device passed: ${walk.err.join(' | ')}`);
  const report = walk.out.join('\n');
  t.match(report, /2 of 2 device\(s\) passed \(all-passed\)/);
  for (const id of [keypad.deviceId, module]) t.match(report, new RegExp(`${esc(id)}\\s+\\S+\\s+PASSED 通过`), `the report names ${id} as passed`);
  t.match(report, /test mode ended/);

  const audit = walkAudit(data);
  t.equal(audit.length, 2, 'one audit row per device passed');
  const [kpRow, modRow] = [audit.find((a) => a.deviceId === keypad.deviceId), audit.find((a) => a.deviceId === module)];
  t.match(kpRow, { shopId: origin, eventType: 'keypad', actor: /^cli/ });
  t.ok(query(data, 'SELECT 1 FROM alarms WHERE id = ? AND test = 1 AND origin_event_id = ?', kpRow.alarmId, kpRow.eventId).length === 1, "the keypad's row names its test alarm and 9# event");
  t.match(modRow, { shopId: origin, eventType: 'door' });
  t.ok(modRow.eventId > early, 'the door event of the pass came after the walk began');
  t.same(query(data, 'SELECT ended_how AS how FROM test_modes'), [{ how: 'stopped' }], 'the walk ended the test mode it started');

  await sleep(QUIET_MS);
  t.same(officer.updates.filter((a) => a.shopId === origin), [], 'the console heard nothing of the walk');
  t.same(next.received, [], 'the neighbour keypad heard nothing of the walk');

  const tested = await lastTested(data, origin);
  t.equal(tested.get(keypad.deviceId), kpRow.at, 'device list shows when the keypad was last tested: its pass');
  t.equal(tested.get(module), modRow.at, 'and the module');
  t.equal((await lastTested(data, neighbour)).get(next.deviceId), null, 'and nothing for a device never tested');
  const table = await cli(['device', 'list', '--shop', origin, '--data', data]);
  t.match(table.stdout, /LAST TESTED/);
  t.ok(table.stdout.includes(tested.get(module)!), 'the table shows it too');

  sim.press(1, '9#');
  const real = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised', 30_000);
  t.equal(real.test, false, 'the first 9# after the walk is a real alarm');
  await next.waitFor((a) => a.alarmId === real.alarmId && a.state === 'raised', 30_000);
  t.pass('and it reaches the neighbour');
});

t.test('a keypad that does not act in the walk (its 9# came before) ends the walk at the time limit, exit 3; --json', async (t) => {
  const data = tempDataDir(t);
  const shops = await provisionRow(data, 1);
  const shopId = shops[0]!.shopId;
  const tcp = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] }).start();
  t.teardown(() => tcp.close());
  const module = addWiredDevice(data, { shopId, type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId;
  const kp = mqttKeypad(t, data, shopId);
  const gw = await GatewayProcess.start(t, data, GATEWAY_ENV);
  await kp.connect(gw.mqttUrl);
  // Already in test mode before the walk; the keypad's 9# then is a test alarm from before the walk.
  const started = await cli(['test', 'start', '--shop', shopId, '--minutes', '30', '--data', data]);
  t.equal(started.code, 0, `test start: ${started.stderr}`);
  await kp.press('9#');
  await until('the test alarm before the walk', async () => query(data, 'SELECT id FROM alarms WHERE test = 1'), (r) => r.length === 1);
  await doorCycle(data, tcp, module);

  const walk = new Walk(t, ['--shop', shopId, '--seconds', '20', '--data', data, '--json']);
  await walk.line(/already in test mode/, 'err');
  await io(tcp).pulse(PANIC, 100);
  await walk.line(new RegExp(`ok 已测    ${esc(module)}`), 'err');
  io(tcp).setInput(DOOR, true);
  await walk.line(new RegExp(`PASS 通过  ${esc(module)}`), 'err');
  const code = await walk.exited;
  t.equal(code, 3, 'exit 3: the time limit came before every device passed');
  const report = JSON.parse(walk.out.join('\n'));
  t.match(report, { shopId, ended: 'time-limit', allPassed: false, passed: 1, total: 2, gatewayRunning: true, testMode: { startedByWalk: false, endedByWalk: false } });
  const doorEvent = query<{ id: number }>(data, "SELECT id FROM events WHERE device_id = ? AND type = 'door' ORDER BY id DESC LIMIT 1", module)[0]!;
  t.match(report.devices.find((d: { deviceId: string }) => d.deviceId === module), { status: 'passed', eventType: 'door', eventId: doorEvent.id, recorded: true, steps: [{ check: 'panic', passed: true }, { check: 'door', passed: true }] });
  t.match(report.devices.find((d: { deviceId: string }) => d.deviceId === kp.deviceId), { status: 'not-passed', passedAt: null, recorded: false, steps: [{ check: '9#', passed: false }] }, 'the 9# from before the walk did not count');
  t.same(walkAudit(data).map((a) => a.deviceId), [module], 'only the module has a pass recorded');
  const tested = await lastTested(data, shopId);
  t.ok(tested.get(module), 'device list: the module was tested');
  t.equal(tested.get(kp.deviceId), null, 'device list: the keypad was not');
  const status = JSON.parse((await cli(['test', 'status', '--data', data, '--json'])).stdout);
  t.match(status, [{ scope: 'shop', targetId: shopId }], 'the shop stays in the test mode it was in before the walk');
});


t.test('a walk started with no gateway running goes on when the gateway starts: its test mode is read, the 9# passes', async (t) => {
  const data = tempDataDir(t);
  const shopId = (await provisionRow(data, 1))[0]!.shopId;
  const kp = mqttKeypad(t, data, shopId);
  const walk = new Walk(t, ['--shop', shopId, '--seconds', '300', '--data', data, '--json']);
  await walk.line(new RegExp(`${esc(kp.deviceId)}  keypad \\(mqtt\\): press 9#`), 'err');
  const gw = await GatewayProcess.start(t, data, GATEWAY_ENV);
  await kp.connect(gw.mqttUrl);
  await kp.press('9#');
  t.equal(await walk.exited, 0, walk.err.join(' | '));
  const report = JSON.parse(walk.out.join('\n'));
  t.match(report, { ended: 'all-passed', gatewayRunning: false, testMode: { startedByWalk: true, endedByWalk: true }, devices: [{ deviceId: kp.deviceId, status: 'passed', recorded: true }] });
  t.same(query(data, 'SELECT test FROM alarms'), [{ test: 1 }], 'the 9# was a test alarm: the gateway read the test mode the walk wrote');
  t.same(walkAudit(data).map((a) => a.deviceId), [kp.deviceId], 'the pass recorded through the gateway that came');
  t.same(query(data, 'SELECT ended_how AS how FROM test_modes'), [{ how: 'stopped' }]);
});

t.test('Ctrl-C (twice) ends a walk with exit 130, its report, and the end of the test mode it started (no gateway)', async (t) => {
  const data = await oneShopStreet(t);
  const added = await cli(['device', 'add', '--shop', 'S01', '--type', 'panic', '--data', data, '--json']);
  t.equal(added.code, 0, added.stderr);
  const { deviceId } = JSON.parse(added.stdout);
  const walk = new Walk(t, ['--shop', 'S01', '--minutes', '30', '--data', data]);
  await walk.line(new RegExp(`${esc(deviceId)}  panic \\(mqtt\\): press the panic button / 按下紧急按钮`));
  t.same(query(data, 'SELECT ended_at FROM test_modes'), [{ ended_at: null }], 'the walk put the shop in test mode');
  walk.interrupt();
  walk.interrupt(); // an impatient second Ctrl-C does not kill it before its test mode is ended
  t.equal(await walk.exited, 130, 'exit 130 when interrupted');
  t.match(walk.out.join('\n'), new RegExp(`0 of 1 device\\(s\\) passed \\(interrupted\\)[\\s\\S]*${esc(deviceId)}\\s+panic\\s+NOT PASSED 未通过`));
  t.same(query(data, 'SELECT ended_how AS how FROM test_modes'), [{ how: 'stopped' }], 'its test mode ended');
});

t.test('bad arguments are refused with a coded error; the help has an example and the exit codes', async (t) => {
  const data = await oneShopStreet(t);
  for (const [args, re] of [
    [['--shop', 'S99'], /LF_ERR_NOT_FOUND/],
    [['--shop', 'S01'], /LF_ERR_INVALID_ARGUMENT.*no devices/],
    [['--shop', 'S01', '--seconds', '0'], /--seconds/],
    [['--shop', 'S01', '--minutes', '2', '--seconds', '5'], /LF_ERR_INVALID_ARGUMENT/],
  ] as const) {
    const r = await cli(['test', 'walk', ...args, '--data', data]);
    t.not(r.code, 0, args.join(' '));
    t.match(r.stderr, re);
  }
  t.same(query(data, 'SELECT count(*) AS n FROM test_modes'), [{ n: 0 }], 'no test mode started');
  const help = await cli(['test', 'walk', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--data/);
  t.match(help.stdout, /Example:[\s\S]*Exit status: 0 every device passed, 3 the time limit came first, 130 interrupted/, 'an example and the exit codes');
});
