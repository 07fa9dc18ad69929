/**
 * Supervision of serial keypads over a real pty line, the gateway as a child process (issue 9): a
 * keypad that answers every poll with NOTHING (unauthenticated: anyone on a tapped line can send
 * it) becomes a `silent` fault; one that sends HEARTBEATs (authenticated) does not; its self-test
 * is forwarded as a `selftest` event, a failed one is a fault until one passes; tamper is a fault
 * while active.
 */
import t from 'tap';
import { GatewayProcess, query, sleep, tempDataDir } from '../helpers/gateway.js';
import { addWiredDevice, eventually, faultWatcher, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';

t.test('NOTHING alone is silence; HEARTBEATs keep a keypad alive; self-test and tamper faults', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 3);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const mute = addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'serial', port: line.a, busAddress: 1 });
  const beating = addWiredDevice(data, { shopId: 'W02', type: 'keypad', transport: 'serial', port: line.a, busAddress: 2 });
  const sim = new SerialKeypadSim({
    path: line.b,
    keypads: [
      { address: 1, key: mute.key!, heartbeatMs: 0 },
      { address: 2, key: beating.key!, heartbeatMs: 400 },
    ],
  });
  await sim.start();
  t.teardown(() => sim.close());
  const gw = await GatewayProcess.start(t, data, { LF_SUPERVISION_FAULT_AFTER_MS: '2000', LF_SUPERVISION_CHECK_INTERVAL_MS: '100' });
  const watch = await faultWatcher(gw.mqttUrl);
  t.teardown(() => watch.client.endAsync(true));
  const has = (deviceId: string, fault: string, state: string) => watch.faults.some((f) => f.deviceId === deviceId && f.fault === fault && f.state === state);

  await eventually(() => has(mute.deviceId, 'silent', 'raised'), 'the keypad answering only NOTHING is a silent fault');
  const polls = sim.stats.polls;
  await sleep(2500);
  t.ok(sim.stats.polls > polls, 'it is still polled and answering');
  t.notOk(watch.faults.some((f) => f.deviceId === beating.deviceId), 'the heartbeating keypad is no fault');
  t.ok(query<{ n: number }>(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'heartbeat'", beating.deviceId)[0]!.n >= 2, 'its heartbeats are stored events');

  sim.setHeartbeat(1, 300);
  await eventually(() => has(mute.deviceId, 'silent', 'cleared'), 'its first HEARTBEAT clears the fault');

  sim.selfTest(2, 9);
  await eventually(() => has(beating.deviceId, 'selftest-failed', 'raised'), 'a failed SELFTEST is a fault');
  t.match(watch.faults.find((f) => f.fault === 'selftest-failed'), { deviceId: beating.deviceId, result: 9 });
  t.same(query(data, "SELECT json_extract(payload, '$.result') AS result FROM events WHERE device_id = ? AND type = 'selftest'", beating.deviceId), [{ result: 9 }], 'stored as a selftest event with its result');
  sim.selfTest(2, 0);
  await eventually(() => has(beating.deviceId, 'selftest-failed', 'cleared'), 'a passing one clears it');

  sim.tamper(1, true);
  await eventually(() => has(mute.deviceId, 'tamper', 'raised'), 'tamper is a fault');
  sim.tamper(1, false);
  await eventually(() => has(mute.deviceId, 'tamper', 'cleared'), 'cleared when the case is closed again');
  t.equal(query(data, 'SELECT count(*) AS n FROM device_faults WHERE cleared_at IS NULL')[0]!.n, 0, 'nothing left open');
});
