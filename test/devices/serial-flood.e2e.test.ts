/**
 * A serial keypad flooding heartbeats over a real pty line, the gateway as a child process: every
 * event is acknowledged on the wire (the keypad's queue empties, it does not resend them), most are
 * dropped and counted as refused.LF_ERR_FLOOD, the events after a dropped one are not taken for a
 * gap (no warning per poll), and its 9# in the middle of the flood raises the alarm.
 */
import t from 'tap';
import { GatewayProcess, query, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';

const ADDR = 2;

t.test('a serial keypad flooding heartbeats is acknowledged, mostly dropped, and its 9# still raises', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 3);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const { deviceId, key } = addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'serial', port: line.a, busAddress: ADDR });
  const gw = await GatewayProcess.start(t, data, {
    LF_SERIAL_POLL_PAUSE_MS: '5',
    LF_SUPERVISION_FAULT_AFTER_MS: '600000',
    LF_INGEST_FLOOD_EVENTS_PER_MINUTE: '1',
    LF_INGEST_FLOOD_BURST: '5',
  });
  const officer = await new SimConsole(STATION, OFFICER, `${OFFICER.username}:console`).connect(gw.mqttUrl);
  t.teardown(() => officer.close());
  const sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: ADDR, key: key! }] });
  await sim.start();
  t.teardown(() => sim.close());

  for (let i = 0; i < 30; i++) sim.heartbeat(ADDR);
  sim.press(ADDR, '9#');
  for (let i = 0; i < 30; i++) sim.heartbeat(ADDR);
  const alarm = await officer.waitFor((a) => a.shopId === 'W01', 30_000);
  t.equal(alarm.kind, 'panic', 'the 9# in the middle of the flood raised the alarm');
  await sim.waitFor(() => sim.pending(ADDR) === 0, 30_000);
  t.pass('every event acknowledged on the wire');
  const stored = query<{ n: number }>(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'heartbeat'", deviceId)[0]!.n;
  t.ok(stored >= 5 && stored <= 7, `the burst stored, the rest dropped (stored ${stored} of 60)`);
  t.equal((await gw.health()).counters['refused.LF_ERR_FLOOD'], 60 - stored, 'every dropped one counted');
  t.equal(gw.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('skipped sequence numbers')).length, 0, 'a dropped event is not taken for a gap');
  t.equal(gw.logs.filter((l) => l.code === 'LF_ERR_FLOOD').length, 1, 'one log line for the flood so far');
});
