/**
 * A serial keypad whose boot goes back (factory reset, a replaced unit given the old key), end to
 * end over a real pty line with the gateway as a child process: its events are refused (no alarm,
 * nothing stored) but acknowledged, so it does not resend them at every poll; the console gets a
 * counter-reset fault at once; after `lianfang device reset-counter ID` (the CLI as a child
 * process, through the running gateway) its 9# raises an alarm again. Without a gateway the CLI
 * resets the database itself.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { GatewayProcess, cli, query, sleep, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, eventually, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { KeypadFrame } from '../../firmware-contracts/serial/codec.js';

const ADDR = 4;

t.test('a keypad whose boot went back is refused with a fault until reset-counter; then its 9# raises', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 4);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const { deviceId, key } = addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'serial', port: line.a, busAddress: ADDR });
  const gw = await GatewayProcess.start(t, data, { LF_SERIAL_POLL_PAUSE_MS: '5', LF_SUPERVISION_FAULT_AFTER_MS: '600000' });
  const officer = await new SimConsole(STATION, OFFICER, `${OFFICER.username}:console`).connect(gw.mqttUrl);
  t.teardown(() => officer.close());
  const watch = await mqtt.connectAsync(gw.mqttUrl, { clientId: `${OFFICER.username}:faults`, ...OFFICER, reconnectPeriod: 0 });
  t.teardown(() => watch.endAsync(true));
  const faults: Record<string, any>[] = [];
  watch.on('message', (_t, payload) => faults.push(JSON.parse(payload.toString('utf8')) as Record<string, any>));
  await watch.subscribeAsync(topics.stationFaults(STATION), { qos: 1 });
  const resets = () => faults.filter((f) => f.deviceId === deviceId && f.fault === 'counter-reset');
  const alarms = () => query<{ id: string }>(data, "SELECT id FROM alarms WHERE shop_id = 'W01' ORDER BY raised_at").map((a) => a.id);
  const close = async (alarmId: string) => {
    await officer.act({ alarmId, action: 'ack' });
    await officer.act({ alarmId, action: 'close', disposition: 'test' });
    await officer.waitFor((a) => a.alarmId === alarmId && a.state === 'closed', 30_000);
  };

  // The keypad as installed: boot 7.
  const before = new SerialKeypadSim({ path: line.b, keypads: [{ address: ADDR, key: key!, boot: 7 }] });
  await before.start();
  before.press(ADDR, '9#');
  const first = await officer.waitFor((a) => a.shopId === 'W01', 30_000);
  await before.waitFor(() => before.pending(ADDR) === 0, 30_000);
  await close(first.alarmId);
  await before.close();

  // Factory-reset (or replaced by a unit given the same key): boot 2.
  const after = new SerialKeypadSim({ path: line.b, keypads: [{ address: ADDR, key: key!, boot: 2 }] });
  await after.start();
  t.teardown(() => after.close());
  let keysSent = 0;
  after.on('sent', (_a: number, f: KeypadFrame) => f.type === 'KEYS' && keysSent++);
  after.press(ADDR, '9#');
  await eventually(() => resets().some((f) => f.state === 'raised'), 'a counter-reset fault on the console');
  const raised = resets()[0]!;
  t.same(raised.detail, { previousBoot: 7, previousSeq: 1, boot: 2, seq: 1, events: 'refused' }, 'it says the old and the new boot, and that the events are refused');
  t.equal(raised.shopId, 'W01');
  await after.waitFor(() => after.pending(ADDR) === 0, 30_000);
  t.pass('the refused event was acknowledged: the keypad does not resend it at every poll');
  const sentThen = keysSent;
  await sleep(500);
  t.equal(keysSent, sentThen, 'nothing more on the wire from it');
  t.same(alarms(), [first.alarmId], 'no alarm from the refused 9#');
  t.equal(query(data, 'SELECT count(*) AS n FROM events WHERE device_id = ? AND boot = 2', deviceId)[0]!.n, 0, 'nothing of it stored');
  // A second press in the refused sequence: refused too, the fault already open is not raised again.
  after.press(ADDR, '9#');
  await after.waitFor(() => after.pending(ADDR) === 0, 30_000);
  t.same(alarms(), [first.alarmId], 'still no alarm');
  t.equal(resets().length, 1, 'one fault');
  const health = await gw.health();
  t.ok(health.faults.some((f: Record<string, any>) => f.deviceId === deviceId && f.fault === 'counter-reset'), '/health lists it');
  t.equal(health.counters['events.refused.counter-reset'], 2, 'both refusals counted');

  // The installer resets the counter through the running gateway.
  const reset = await cli(['device', 'reset-counter', deviceId, '--data', data]);
  t.equal(reset.code, 0, reset.stderr);
  t.match(reset.stdout, `device ${deviceId}: counter reset (it was boot 7, seq 1)`, 'it says what it forgot');
  t.match(reset.stdout, 'counter-reset fault cleared');
  t.match(reset.stderr, 'the running gateway has taken the change');
  await eventually(() => resets().some((f) => f.state === 'cleared'), 'the fault cleared on the console');
  t.equal(query(data, "SELECT count(*) AS n FROM faults WHERE device_id = ? AND kind = 'counter-reset' AND cleared_at IS NULL", deviceId)[0]!.n, 0, 'and in the store');
  const audit = query<{ actor: string; detail: string }>(data, "SELECT actor, detail FROM audit WHERE action = 'reset-counter'");
  t.equal(audit.length, 1, 'an audit row');
  t.match(audit[0]!.actor, /^cli/);
  t.same(JSON.parse(audit[0]!.detail), { deviceId, previousBoot: 7, previousSeq: 1, faultsCleared: 1 });

  after.press(ADDR, '9#');
  const again = await officer.waitFor((a) => a.shopId === 'W01' && a.alarmId !== first.alarmId, 30_000);
  t.equal(again.kind, 'panic', 'after reset-counter its 9# raises an alarm');
  await after.waitFor(() => after.pending(ADDR) === 0, 30_000);
  t.same(query(data, 'SELECT boot, seq FROM events WHERE device_id = ? AND boot = 2', deviceId), [{ boot: 2, seq: 3 }], 'its new sequence is taken');
  await close(again.alarmId);

  // Without a running gateway the CLI writes the database itself.
  await gw.kill('SIGTERM');
  const offline = await cli(['device', 'reset-counter', deviceId, '--data', data, '--json']);
  t.equal(offline.code, 0, offline.stderr);
  t.same(JSON.parse(offline.stdout), { deviceId, previous: { boot: 2, seq: 3 }, faultsCleared: 0, gatewayRunning: false });
  t.match(offline.stderr, 'no gateway is running');
  t.same(query(data, 'SELECT last_boot AS boot, last_seq AS seq FROM devices WHERE id = ?', deviceId), [{ boot: null, seq: null }]);
  t.equal(query(data, "SELECT count(*) AS n FROM audit WHERE action = 'reset-counter'")[0]!.n, 2);
  const unknown = await cli(['device', 'reset-counter', 'NOPE', '--data', data]);
  t.not(unknown.code, 0);
  t.match(unknown.stderr, 'LF_ERR_NOT_FOUND');
});
