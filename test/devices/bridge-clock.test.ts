/**
 * The bridges run on the clock they are given, through their narrow interfaces only (no registry,
 * no database, no gateway): the serial and Modbus drivers driven on a ManualClock with fakes for
 * the log, counters, link watch and ingest. A reopen backoff, a poll interval and a sounder's time
 * limit elapse exactly when the clock is advanced, never by themselves; a wall clock stepped back
 * does not hold a module's polls back; a module's events carry the boot the context gave; each
 * bus's port watch hears its failed opens and its open, and a bus no longer held is released.
 */
import t, { type Test } from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { ManualClock } from '../../gateway/clock.js';
import { pause, steadyTime, withTimeout, type WiredDevice } from '../../devices/bridge.js';
import { ModbusBusDriver } from '../../devices/modbus-bridge.js';
import { SerialBusDriver } from '../../devices/serial-bridge.js';
import { WiredDevices, type WiredBus } from '../../devices/wired.js';
import { ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { sleep } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import { fakes, moduleRecord } from '../helpers/bridge.js';
import type { ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';

const PANIC = 0;
const SOUNDER = 0;

/** A loopback TCP port nobody listens on: a connect is refused at once. */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Give real I/O (a refused connect, a request to the simulator) time to happen, without advancing the clock. */
const settle = () => sleep(400);

/** `attempts()`, now `n`, stays so while the clock stands still and until it has advanced `stepMs`; then it is n + 1. */
async function nextAttemptAfter(t: Test, clock: ManualClock, attempts: () => number, n: number, stepMs: number): Promise<void> {
  await settle();
  t.equal(attempts(), n, `no attempt ${n + 1} while the clock stands still`);
  clock.advance(stepMs - 1);
  await settle();
  t.equal(attempts(), n, `none 1 ms before the ${stepMs} ms step`);
  clock.advance(1);
  await eventually(() => attempts() === n + 1, `attempt ${n + 1} at exactly ${stepMs} ms`);
}

t.test('pause and withTimeout run on the given clock; pause still ends at once when its signal aborts', async (t) => {
  const clock = new ManualClock();
  let paused = false;
  void pause(clock, 1000, new AbortController().signal).then(() => (paused = true));
  await settle();
  t.notOk(paused, 'a 1 s pause does not end by itself on a clock that does not move');
  clock.advance(999);
  await sleep(0);
  t.notOk(paused, 'nor at 999 ms');
  clock.advance(1);
  await sleep(0);
  t.ok(paused, 'it ends when the clock reaches 1 s');

  const abort = new AbortController();
  const aborted = pause(clock, 60_000, abort.signal);
  abort.abort();
  await aborted;
  t.pass('an aborted pause ends at once, the clock not advanced');

  const never = new Promise<never>(() => {});
  const bounded = withTimeout(clock, never, 500, 'a wait').then(
    () => 'resolved',
    (err: Error & { code?: string }) => err.code,
  );
  clock.advance(500);
  t.equal(await bounded, 'ETIMEDOUT', 'withTimeout times out when the clock passes its bound');
});

t.test('steady time does not go back when the wall clock is stepped back', async (t) => {
  let wall = 1_000_000;
  const now = steadyTime({ now: () => wall, setTimer: () => ({ cancel() {} }) });
  t.equal(now(), 1_000_000);
  wall += 50;
  t.equal(now(), 1_000_050);
  wall -= 3_600_000;
  t.equal(now(), 1_000_050, 'a step back is taken as no time passing');
  wall += 30;
  t.equal(now(), 1_000_080, 'and time goes on from there');
  wall += 10_000_000;
  t.equal(now(), 11_000_080, 'a step forward is taken as it is');
});

t.test('a Modbus bus that will not open is tried again exactly one backoff step later by the injected clock', async (t) => {
  const clock = new ManualClock();
  const f = fakes(clock, { overrides: { modbus: { reopenBackoffMs: 60_000, reopenBackoffMaxMs: 600_000 } } });
  const driver = new ModbusBusDriver({ kind: 'modbus-tcp', host: '127.0.0.1', port: await refusedPort() }, f.ctx, [moduleRecord(1)]);
  t.teardown(() => driver.close());
  const failed = () => f.counts.get('modbus.open.failed') ?? 0;
  await eventually(() => failed() === 1, 'the first opening failed');
  t.ok(f.watched.has('W01.io-module.1'), 'the module is watched by the link watch');
  await nextAttemptAfter(t, clock, failed, 1, 60_000);
  // The next step is doubled.
  await nextAttemptAfter(t, clock, failed, 2, 120_000);
  await driver.close();
  t.pass('close ends the backoff at once');
});

t.test('a serial port that is missing is reopened on the injected clock', async (t) => {
  const clock = new ManualClock();
  const f = fakes(clock, { overrides: { serial: { reopenBackoffMs: 30_000, reopenBackoffMaxMs: 600_000 } } });
  const keypad: WiredDevice = { ...moduleRecord(3), id: 'W01.keypad.3', type: 'keypad', macKey: Buffer.alloc(16, 1) };
  const driver = new SerialBusDriver({ kind: 'serial', path: '/nonexistent/lianfang-tty', baud: 9600, parity: 'none' }, f.ctx, [keypad]);
  t.teardown(() => driver.close());
  const attempts = () => f.logs.filter((l) => l.msg === 'cannot open the serial port; retrying').length;
  await eventually(() => attempts() === 1, 'the first opening failed');
  await nextAttemptAfter(t, clock, attempts, 1, 30_000);
  await driver.close();
});

t.test('each bus gets its own port watch: a failed open is reported with its count in a row, an open as opened, and a bus no longer held is released', async (t) => {
  const clock = new ManualClock();
  const f = fakes(clock, { overrides: { serial: { reopenBackoffMs: 30_000, reopenBackoffMaxMs: 600_000 } } });
  const sim = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] }).start();
  t.teardown(() => sim.close());
  const keypad: WiredDevice = { ...moduleRecord(3), id: 'W01.keypad.3', type: 'keypad', macKey: Buffer.alloc(16, 1) };
  const reports: string[] = [];
  let buses: WiredBus[] = [
    { id: 'B1', port: { kind: 'serial', path: '/nonexistent/lianfang-tty', baud: 9600, parity: 'none' }, where: '/nonexistent/lianfang-tty @ 9600 8N1', devices: [keypad] },
    { id: 'B2', port: { kind: 'modbus-tcp', host: '127.0.0.1', port: sim.port }, where: `127.0.0.1:${sim.port}`, devices: [moduleRecord(1)] },
  ];
  const wired = new WiredDevices({
    ...f.ctx,
    buses: () => buses,
    portWatch: (busId, where) => ({
      openFailed: (failures, err) => reports.push(`${busId} failed ${failures}${/No such file/.test(err.message) ? ' (no such file)' : `: ${err.message}`}`),
      opened: () => reports.push(`${busId} opened ${where}`),
    }),
    busReleased: (busId) => reports.push(`${busId} released`),
  });
  t.teardown(() => wired.close());
  await wired.reconcile();
  await eventually(() => reports.includes('B1 failed 1 (no such file)') && reports.includes(`B2 opened 127.0.0.1:${sim.port}`), 'the serial bus failed its first open, the Modbus bus opened');
  clock.advance(30_000);
  await eventually(() => reports.includes('B1 failed 2 (no such file)'), 'the second failure, one backoff step later, counted in a row');
  buses = [buses[1]!];
  await wired.reconcile();
  t.same(reports.filter((r) => r.startsWith('B1')), ['B1 failed 1 (no such file)', 'B1 failed 2 (no such file)', 'B1 released'], 'the removed bus is released after its driver closed');
  t.same(reports.filter((r) => r.startsWith('B2')), [`B2 opened 127.0.0.1:${sim.port}`], 'the bus kept is not released');
});

t.test('a Modbus module is polled on the injected clock, its events carry the context\'s boot, and its sounder stops at the time limit', async (t) => {
  const manual = new ManualClock();
  // The system clock's shape: now() is the wall clock (here steppable), timers run by elapsed time.
  let wallOffset = 0;
  const clock = { now: () => manual.now() + wallOffset, setTimer: (ms: number, fn: () => void) => manual.setTimer(ms, fn) };
  const f = fakes(clock, { overrides: { modbus: { panicPollMs: 100, doorPollMs: 1000, sounderMaxMs: 5000, requestTimeoutMs: 2000 } } });
  const sim = new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }, { unitId: 2 }] });
  await sim.start();
  t.teardown(() => sim.close());
  const origin = moduleRecord(1, 1_700_000_000);
  const neighbour: WiredDevice = { ...moduleRecord(2), shopId: 'W02' };
  const driver = new ModbusBusDriver({ kind: 'modbus-tcp', host: '127.0.0.1', port: sim.port }, f.ctx, [origin, neighbour]);
  t.teardown(() => driver.close());

  const polls = () => f.seen.filter((id) => id === origin.id).length;
  await eventually(() => polls() >= 1, 'the first poll, at once');
  await settle();
  const first = polls();
  t.equal(first, 1, 'no second poll while the clock stands still');
  manual.advance(100);
  await eventually(() => polls() === first + 1, 'the next poll one panicPollMs later by the clock');

  // The wall clock is stepped back an hour (NTP at boot): the module is still polled within two intervals.
  wallOffset = -3_600_000;
  manual.advance(100);
  await settle();
  manual.advance(100);
  await eventually(() => polls() >= first + 2, 'polled again after the step back');

  // A panic pulse: latched, read at the next poll, ingested with the boot nextModuleBoot gave.
  await sim.modules.get(1)!.pulse(PANIC, 30);
  manual.advance(100);
  await eventually(() => f.events.length === 1, 'the panic ingested');
  const { deviceId, event } = f.events[0]!;
  t.equal(deviceId, origin.id, 'ingested by device id');
  t.match(event, { type: 'panic', seq: 1 });
  t.equal(event.boot, 1_700_000_242, 'its boot: nextModuleBoot of the module\'s mark');

  // An alert reaches the neighbour: its sounder goes on, and goes off at sounderMaxMs by the clock.
  const alert: ShopAlert = { alarmId: 'A1', rev: 1, state: 'raised', kind: 'panic', originShopId: 'W01', originName: '店', address: '1 Test Road', doorPlate: '1号', raisedAt: new Date(manual.now()).toISOString() };
  driver.alert('W02', alert);
  const sounder = () => sim.modules.get(2)!.coils.get(SOUNDER) === true;
  await eventually(() => sounder(), 'the neighbour\'s sounder on');
  t.same(f.delivered, ['W02/A1/1/W01.io-module.2'], 'its delivery confirmed through the context');
  manual.advance(4999);
  await settle();
  t.ok(sounder(), 'still on 1 ms before its time limit');
  t.notOk(f.logs.some((l) => l.msg.startsWith('sounder on for its longest allowed time')), 'not switched off by the time limit yet');
  manual.advance(1);
  await eventually(() => !sounder(), 'off at sounderMaxMs by the clock');
  t.ok(f.logs.some((l) => l.msg.startsWith('sounder on for its longest allowed time')), 'switched off by the time limit');
  await driver.close();
});
