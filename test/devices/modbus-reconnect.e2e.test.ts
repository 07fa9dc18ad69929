/**
 * Modbus modules that go away and come back, end to end: the gateway as a child process, master of
 * a Modbus TCP module simulator on loopback and of a Modbus RTU line on a pty pair.
 *
 * A TCP module goes away in two ways: switched off (no power: its connections go silent and a SYN
 * to it gets no answer, so a connect waits until it times out) or not serving (its stack is up,
 * nothing listens: connections are refused). An RTU line goes away as a pulled cable (the pty pair
 * ends). Each stays away until its fault shows and then for 1, 2, 3 or 4 more failed attempts to
 * reopen its bus (its backoff steps), then comes back: it is polled again within one backoff step
 * plus a margin, its fault clears, and a panic on it raises an alarm.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, eventually, faultWatcher, provisionRow } from '../helpers/wired.js';
import { ModbusRtuSlaveSim, ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { openPtyPair, type PtyPair } from '../../simulators/wire/pty-pair.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';

const PANIC = 0;
const BACKOFF_MAX_MS = 800;
/** One backoff step (at most 800 ms) plus a generous margin for a loaded machine. */
const BACK_WITHIN_MS = BACKOFF_MAX_MS + 3_200;
/** How long the failed reopen attempts of one outage may take: far more than 4 steps of 800 ms. */
const STEPS_WITHIN_MS = 15_000;

const data = tempDataDir(t);
await provisionRow(data, 3);

const tcp = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] }).start();
t.teardown(() => tcp.close());
const tcpDevice = addWiredDevice(data, { shopId: 'W01', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId;

// The pty pair's links live in one directory, so a pair opened again appears at the same path: a cable plugged back in.
const ptyDir = mkdtempSync(join(tmpdir(), 'lf-pty-'));
t.teardown(() => rmSync(ptyDir, { recursive: true, force: true }));
let line: PtyPair = await openPtyPair({ dir: ptyDir });
t.teardown(() => line.close());
let rtu = await new ModbusRtuSlaveSim({ path: line.b, modules: [{ unitId: 2 }] }).start();
t.teardown(() => rtu.close());
const rtuModules = rtu.modules;
const rtuDevice = addWiredDevice(data, { shopId: 'W02', type: 'io-module', transport: 'modbus-rtu', port: line.a, busAddress: 2 }).deviceId;

const gw = await GatewayProcess.start(t, data, {
  LF_MODBUS_REQUEST_TIMEOUT_MS: '150',
  LF_MODBUS_PANIC_POLL_MS: '50',
  LF_MODBUS_DOOR_POLL_MS: '300',
  LF_MODBUS_REOPEN_BACKOFF_MS: '100',
  LF_MODBUS_REOPEN_BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
  LF_MODBUS_CONNECT_TIMEOUT_MS: '400',
  LF_SUPERVISION_FAULT_AFTER_MS: '1000',
  LF_SUPERVISION_CHECK_INTERVAL_MS: '100',
});
const officer = await new SimConsole(STATION, OFFICER).connect(gw.mqttUrl);
t.teardown(() => officer.close());
const watch = await faultWatcher(gw.mqttUrl);
t.teardown(() => watch.client.endAsync(true));

const openFailures = async () => Number((await gw.health()).counters?.['modbus.open.failed'] ?? 0);
const faults = (deviceId: string, state: string) => watch.faults.filter((f) => f.deviceId === deviceId && f.state === state).length;

await eventually(() => tcp.stats.requests > 0 && rtu.stats.answered > 0, 'both modules are polled');

interface Outage {
  deviceId: string;
  shopId: string;
  goAway(): Promise<void>;
  /** Brings it back; resolves once it can answer. */
  comeBack(): Promise<void>;
  /** Requests it has answered (or been sent) since it came back. */
  polled(): number;
  pulsePanic(): Promise<void>;
}

async function awayAndBack(t: Test, o: Outage, steps: number): Promise<void> {
  const raised = faults(o.deviceId, 'raised');
  const cleared = faults(o.deviceId, 'cleared');
  await o.goAway();
  await eventually(() => faults(o.deviceId, 'raised') > raised, 'its fault shows');
  try {
    const failedBefore = await openFailures();
    // A connect to a switched-off module that never ends would stop the count here.
    await eventually(async () => (await openFailures()) >= failedBefore + steps, `${steps} more failed attempts to reopen the bus`, STEPS_WITHIN_MS);
  } finally {
    // Back in any case, so that one failure does not fail the cases after it.
    await o.comeBack();
  }
  const backAt = Date.now();
  await eventually(() => o.polled() > 0, 'polled again', 60_000);
  const after = Date.now() - backAt;
  t.ok(after < BACK_WITHIN_MS, `polled again ${after} ms after it came back (one backoff step is at most ${BACKOFF_MAX_MS} ms)`);
  await eventually(() => faults(o.deviceId, 'cleared') > cleared, 'its fault clears');

  const known = new Set(officer.alarms.keys());
  await o.pulsePanic();
  const alarm = await officer.waitFor((a) => a.shopId === o.shopId && a.state === 'raised' && !known.has(a.alarmId), 30_000);
  t.equal(alarm.kind, 'panic', 'a panic on it raises an alarm');
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
}

function tcpOutage(how: 'switched off' | 'not serving'): Outage {
  let base = 0;
  return {
    deviceId: tcpDevice,
    shopId: 'W01',
    goAway: () => (how === 'switched off' ? tcp.powerOff() : tcp.close()),
    async comeBack() {
      // Switched on, it boots: refused for a moment (its stack is up, its server not yet), then served.
      if (how === 'switched off') await tcp.powerOn(300);
      else await tcp.start();
      base = tcp.stats.requests;
    },
    polled: () => tcp.stats.requests - base,
    pulsePanic: () => tcp.modules.get(1)!.pulse(PANIC, 50),
  };
}

const rtuOutage: Outage = {
  deviceId: rtuDevice,
  shopId: 'W02',
  async goAway() {
    await rtu.close();
    await line.close();
  },
  async comeBack() {
    line = await openPtyPair({ dir: ptyDir });
    rtu = await new ModbusRtuSlaveSim({ path: line.b, modules: rtuModules }).start();
  },
  polled: () => rtu.stats.requests,
  pulsePanic: () => rtuModules.get(2)!.pulse(PANIC, 50),
};

for (const steps of [1, 2, 3, 4]) {
  t.test(`a TCP module switched off until its fault shows and ${steps} more backoff step(s), then on`, (t) => awayAndBack(t, tcpOutage('switched off'), steps));
}
for (const steps of [1, 3]) {
  t.test(`a TCP module not serving (connections refused) until its fault shows and ${steps} more step(s), then back`, (t) => awayAndBack(t, tcpOutage('not serving'), steps));
}
for (const steps of [1, 4]) {
  t.test(`an RTU line unplugged until its fault shows and ${steps} more step(s), then plugged back in`, (t) => awayAndBack(t, rtuOutage, steps));
}

t.test('the gateway kept running throughout', async (t) => {
  t.equal(gw.exitCode, null);
  t.equal(gw.signal, null);
});
