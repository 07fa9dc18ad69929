/**
 * Supervision of serial keypads over a real pty line, the gateway as a child process (issue 9): a
 * keypad that answers every poll with NOTHING (unauthenticated: anyone on a tapped line can send
 * it) becomes a `silent` fault; one that sends HEARTBEATs (authenticated) does not; its self-test
 * is forwarded as a `selftest` event, a failed one is a fault until one passes; tamper is a fault
 * while active; a line whose answers keep failing their CRC is `line-errors` until it is clean for a
 * window.
 */
import t from 'tap';
import { GatewayProcess, query, sleep, tempDataDir } from '../helpers/gateway.js';
import { addWiredDevice, eventually, faultWatcher, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';
import { SerialPort } from 'serialport';
import { FrameDecoder, encodeFrame, parseFrame } from '../../firmware-contracts/serial/codec.js';

/** A data directory with a row of shops and a pty line; `keypad` registers a serial keypad on it. */
async function serialLine(t: { teardown(fn: () => unknown): void }) {
  const data = tempDataDir(t);
  await provisionRow(data, 3);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const keypad = (shopId: string, busAddress: number) => addWiredDevice(data, { shopId, type: 'keypad', transport: 'serial', port: line.a, busAddress });
  return { data, line, keypad };
}

t.test('NOTHING alone is silence; HEARTBEATs keep a keypad alive; self-test and tamper faults', async (t) => {
  const { data, line, keypad } = await serialLine(t);
  const mute = keypad('W01', 1);
  const beating = keypad('W02', 2);
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
  t.equal(query(data, 'SELECT count(*) AS n FROM faults WHERE cleared_at IS NULL')[0]!.n, 0, 'nothing left open');
});

t.test('answers that keep failing their CRC are a line-errors fault, cleared once the line is clean for a window', async (t) => {
  const { data, line, keypad } = await serialLine(t);
  const kp = keypad('W01', 4);
  // A hand-driven keypad: each poll answered with its next HEARTBEAT, its CRC broken while `noisy`.
  let noisy = true;
  let seq = 0;
  const port = new SerialPort({ path: line.b, baudRate: 9600, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  t.teardown(() => new Promise<void>((res) => (port.isOpen ? port.close(() => res()) : res())));
  const decoder = new FrameDecoder();
  port.on('data', (chunk: Buffer) => {
    for (const r of decoder.push(chunk)) {
      if (!r.ok || r.frame.addr !== 4) continue;
      const p = parseFrame(r.frame, kp.key!);
      if (!p.ok || p.frame.type !== 'POLL') continue;
      if (noisy) {
        const bad = Buffer.from(encodeFrame({ type: 'HEARTBEAT', addr: 4, boot: 1, seq: seq + 1 }, kp.key!));
        bad[bad.length - 1] ^= 0xff;
        port.write(bad);
      } else port.write(encodeFrame({ type: 'HEARTBEAT', addr: 4, boot: 1, seq: ++seq }, kp.key!));
    }
  });
  const gw = await GatewayProcess.start(t, data, {
    LF_SUPERVISION_LINE_ERROR_WINDOW_MS: '1500',
    LF_SUPERVISION_LINE_ERRORS_PER_WINDOW: '3',
    LF_SUPERVISION_CHECK_INTERVAL_MS: '100',
  });
  const watch = await faultWatcher(gw.mqttUrl);
  t.teardown(() => watch.client.endAsync(true));
  await eventually(() => watch.faults.some((f) => f.deviceId === kp.deviceId && f.fault === 'line-errors' && f.state === 'raised'), 'a line-errors fault');
  t.match(watch.faults.find((f) => f.fault === 'line-errors'), { deviceId: kp.deviceId, errors: 3 });
  t.ok((await gw.health()).counters['serial.frames.dropped.crc'] >= 3, 'the bad frames were counted as CRC failures');
  noisy = false;
  await eventually(() => watch.faults.some((f) => f.deviceId === kp.deviceId && f.fault === 'line-errors' && f.state === 'cleared'), 'cleared once clean for a window');
  t.ok(seq >= 2, 'the clean heartbeats were taken');
  t.equal(query(data, "SELECT count(*) AS n FROM faults WHERE kind = 'line-errors' AND cleared_at IS NULL")[0]!.n, 0, 'cleared in the store');
});
