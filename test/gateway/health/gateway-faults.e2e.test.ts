/**
 * The gateway's own faults end to end (gateway/health/, issue 9 "The gateway itself"): an
 * in-process gateway on the manual clock, its data directory on a small tmpfs mounted for the
 * test, a real MQTT console subscribed to its station's faults, real SQLite failing for real.
 * - disk-low: a filler file takes free space under a small configured floor → the console gets the
 *   fault at the next check; the file deleted → cleared, its ticket closed as recovered.
 * - db-error: the filesystem full → SQLite fails with SQLITE_FULL; the fault reaches the console at
 *   once (published without the database); a 9# sent meanwhile is not acknowledged (no PUBACK) and
 *   not stored; space freed → the keypad's resend commits and is acknowledged once, the fault is
 *   stored and cleared.
 * - port-failed: a serial bus whose pty does not exist at start, and a Modbus TCP endpoint that
 *   refuses connections → a fault once its opens have failed health.portFailedAfterAttempts times
 *   (backoff steps on the manual clock); the pty appears, the module serves → the bridge opens it
 *   at its next attempt and the fault clears.
 * Where tmpfs cannot be mounted (not root), the disk test falls back to a floor computed from the
 * current free space of a temp dir plus a filler file (LF_TEST_NO_TMPFS=1 runs it so as root); the
 * db-error test needs the full filesystem and fails saying so (never a silent skip).
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { Gateway } from '../../../gateway/controller.js';
import { loadConfig } from '../../../config/load.js';
import { createLogger } from '../../../gateway/logger.js';
import { ManualClock } from '../../../gateway/clock.js';
import { freeBytesAt } from '../../../gateway/health/disk-watch.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { addDevice, revokeDevice } from '../../../gateway/registry/registry.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { validators } from '../../../firmware-contracts/mqtt/payloads.js';
import { url } from '../../helpers/faults.js';
import { HELPER_ENV } from '../../helpers/gateway.js';
import { addWiredDevice, eventually, faultWatcher, provisionRow } from '../../helpers/wired.js';
import { openPtyPair, type PtyPair } from '../../../simulators/wire/pty-pair.js';
import { ModbusTcpSlaveSim } from '../../../simulators/modbus-module.js';
import type { ConfigInput } from '../../../config/schema.js';

const MiB = 1024 * 1024;
const DISK_CHECK_MS = 60_000;
const PROBE_MS = 10_000;

/** Cleanups run last-in first-out in one teardown: the gateway stops before its filesystem is unmounted. */
function stack(t: Test): (fn: () => unknown) => void {
  const fns: (() => unknown)[] = [];
  t.teardown(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return (fn) => fns.push(fn);
}

/**
 * A tmpfs of `bytes` mounted on a fresh directory (mode 0700, as the data directory must be); null
 * when mounting is not allowed (or LF_TEST_NO_TMPFS=1, to run the disk test's fallback as root).
 */
function mountTmpfs(later: (fn: () => unknown) => void, bytes: number): string | null {
  if (process.env.LF_TEST_NO_TMPFS === '1') return null;
  const dir = mkdtempSync(join(tmpdir(), 'lf-fs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  later(() => {
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Write a file of zeros until `leaveBytes` are free (or the filesystem is full: ENOSPC, when `leaveBytes` is 0). */
function fill(path: string, leaveBytes: number): void {
  const dir = join(path, '..');
  const chunk = Buffer.alloc(MiB);
  const fd = openSync(path, 'w');
  try {
    for (;;) {
      const room = freeBytesAt(dir) - leaveBytes;
      if (room <= 0) return;
      try {
        writeSync(fd, chunk, 0, Math.min(chunk.length, room));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The log lines of the gateway, parsed (the bridge's open attempts are seen here). */
function logLines(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, stream };
}

async function startGateway(later: (fn: () => unknown) => void, data: string, clock: ManualClock, overrides: ConfigInput, stream?: Writable): Promise<Gateway> {
  const config = loadConfig({
    env: HELPER_ENV,
    overrides: { dataDir: data, log: { level: 'info' }, mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 }, http: { host: '127.0.0.1', port: 0 }, ...overrides },
  });
  const gw = await Gateway.start({ config, clock, log: createLogger(stream ? 'info' : 'silent', stream) });
  later(() => gw.stop());
  return gw;
}

/** Every message the console got is within the faults topic's contract. */
function inContract(t: Test, faults: Record<string, unknown>[]): void {
  const outside = faults.filter((f) => !validators.consoleFault.check(f)).map((f) => validators.consoleFault.firstError(f));
  t.same(outside, [], `the ${faults.length} fault messages are within the contract`);
}

t.test('disk-low: free space under a small floor is a fault on the console; freed, it clears and its ticket closes as recovered', async (t) => {
  const later = stack(t);
  let data = mountTmpfs(later, 32 * MiB);
  let floor = 8 * MiB;
  const margin = 1 * MiB;
  let leave = 4 * MiB;
  if (!data) {
    // Fallback (not root): the temp dir's own filesystem, the floor just under its free space now.
    t.comment('tmpfs could not be mounted: the floor is computed from the free space of the temp dir');
    data = mkdtempSync(join(tmpdir(), 'lf-disk-'));
    const dir = data;
    later(() => rmSync(dir, { recursive: true, force: true }));
    floor = freeBytesAt(data) - 16 * MiB;
    leave = floor - 16 * MiB;
  }
  await provisionRow(data, 2);
  const clock = new ManualClock(Date.now());
  const gw = await startGateway(later, data, clock, { health: { diskFloorBytes: floor, diskClearMarginBytes: margin, diskCheckIntervalMs: DISK_CHECK_MS } });
  const watch = await faultWatcher(url(gw));
  later(() => watch.client.endAsync(true));
  const subject = `disk:${data}`;
  const disk = (state: string) => watch.faults.filter((f) => f.fault === 'disk-low' && f.state === state);

  const filler = join(data, 'filler');
  fill(filler, leave);
  t.ok(freeBytesAt(data) < floor, 'the filler took free space under the floor');
  clock.advance(DISK_CHECK_MS);
  await eventually(() => disk('raised').length > 0, 'the console gets the disk-low fault');
  const raised = disk('raised')[0]!;
  t.match(raised, { fault: 'disk-low', subject, state: 'raised', rev: 1, ticket: { state: 'open' }, text: { en: String, zh: String }, detail: { path: data, floorBytes: floor } });
  t.ok((raised.detail as { freeBytes: number }).freeBytes < floor, 'its detail says how much is free');
  t.notOk(watch.faults.some((f) => f.deviceId), 'a fault of the gateway, no device');

  rmSync(filler);
  clock.advance(DISK_CHECK_MS);
  await eventually(() => disk('cleared').length > 0, 'cleared once the file is deleted');
  const cleared = disk('cleared')[0]!;
  t.match(cleared, { faultId: raised.faultId, subject, rev: 2, ticket: { state: 'fixed', recovered: true, closedAs: 'recovered' } });
  t.match(gw.db.prepare("SELECT ticket, closed_as, recovered, cleared_at FROM faults WHERE kind = 'disk-low'").all(), [{ ticket: 'fixed', closed_as: 'recovered', recovered: 1, cleared_at: String }], 'stored: one fault, its ticket closed as recovered');
  t.equal(disk('raised').length, 1, 'raised once');
  inContract(t, watch.faults);
});

t.test('db-error: a full filesystem fails SQLite with SQLITE_FULL; the console hears at once, a 9# is not acknowledged until committed; freed, stored and cleared', async (t) => {
  const later = stack(t);
  // A database's own page limit is no stand-in: small rows fit in the pages it has. A full filesystem is needed.
  const data = mountTmpfs(later, 16 * MiB);
  if (!data) {
    t.fail('a small tmpfs could not be mounted (needs root): SQLITE_FULL from a full filesystem is what this test proves');
    return;
  }
  await provisionRow(data, 2);
  const db = openDatabase(data);
  const issued = addDevice(db, loadOrCreateGatewayKey(data), { shopId: 'W00', type: 'keypad', transport: 'mqtt', id: 'W00.keypad.k1' });
  db.close();
  const clock = new ManualClock(Date.now());
  const gw = await startGateway(later, data, clock, {
    // Checkpoints would let the WAL be written over from its start; without them each commit needs new space.
    store: { checkpointIntervalMs: 7 * 24 * 3600 * 1000 },
    health: { diskFloorBytes: 0, dbProbeIntervalMs: PROBE_MS },
  });
  const watch = await faultWatcher(url(gw));
  later(() => watch.client.endAsync(true));
  const dbFaults = (state: string) => watch.faults.filter((f) => f.fault === 'db-error' && f.state === state);
  const keypad = await mqtt.connectAsync(url(gw), { clientId: 'W00.keypad.k1', username: issued.username!, password: issued.password!, reconnectPeriod: 100, protocolVersion: 4 });
  later(() => keypad.endAsync(true));
  let reconnects = 0;
  keypad.on('reconnect', () => reconnects++);
  const alarms = () => (gw.db.prepare("SELECT count(*) AS n FROM alarms WHERE shop_id = 'W00'").get() as { n: number }).n;

  const filler = join(data, 'filler');
  fill(filler, 0);
  let acked = false;
  keypad.publish(topics.deviceEvents('W00.keypad.k1'), JSON.stringify({ seq: 1, boot: 1, type: 'keypad', keys: '9#' }), { qos: 1 }, (err) => {
    if (!err) acked = true;
  });
  await eventually(() => dbFaults('raised').length > 0, 'the console gets the db-error at once');
  const raised = dbFaults('raised')[0]!;
  t.match(raised, { fault: 'db-error', subject: 'db', state: 'raised', ticket: { state: 'open' }, detail: { code: 'SQLITE_FULL', operation: String } });
  t.same(Object.keys(raised.detail as object).sort(), ['code', 'operation'], 'the code and the operation, never data');
  await eventually(() => reconnects > 0, 'the gateway closes the keypad\'s connection without a PUBACK (the ingest failed), and the keypad comes back');
  t.notOk(acked, 'the 9# is not acknowledged: nothing was committed');
  t.equal(alarms(), 0, 'and no alarm is stored');
  t.equal((gw.db.prepare("SELECT count(*) AS n FROM faults WHERE kind = 'db-error'").get() as { n: number }).n, 0, 'the fault itself is not stored yet (kept in memory)');
  t.ok(gw.faults.unstoredDbError(), 'it is held in memory');

  rmSync(filler);
  // The keypad resends on its own (its connection was closed without a PUBACK); the probe, on the manual clock, would also find writes working.
  clock.advance(PROBE_MS);
  await eventually(() => acked, 'the resent 9# is committed and acknowledged');
  await eventually(() => dbFaults('cleared').length > 0, 'cleared once writes work again');
  t.match(dbFaults('cleared')[0], { faultId: raised.faultId, rev: 2, ticket: { state: 'fixed', recovered: true, closedAs: 'recovered' } });
  await eventually(() => gw.faults.unstoredDbError() === undefined, 'the fault is stored');
  t.match(gw.db.prepare("SELECT id, ticket, closed_as, cleared_at FROM faults WHERE kind = 'db-error'").all(), [{ id: raised.faultId, ticket: 'fixed', closed_as: 'recovered', cleared_at: String }], 'stored with its recovery');
  t.equal(alarms(), 1, 'the 9# raised one alarm');
  t.equal((gw.db.prepare("SELECT count(*) AS n FROM events WHERE device_id = 'W00.keypad.k1' AND type = 'keypad'").get() as { n: number }).n, 1, 'its event stored once, resends and all');
  inContract(t, watch.faults);
});

interface PortCase {
  /** Register the bus's device on a port that is not there yet. */
  register(data: string): void;
  config: ConfigInput;
  /** The bridge's log messages of a failed open (with `failures`) and of the open after failures. */
  failedMsg: string;
  openedMsg: string;
  /** The port appears (the adapter plugged in, the module's stack serving). */
  appear(later: (fn: () => unknown) => void): Promise<void>;
}

/** A bus whose port is not there at start, driven to its port-failed fault: two failed opens, no fault; the third (one backoff step later each, on the manual clock) is the fault on the console. */
async function failingPort(t: Test, c: PortCase) {
  const later = stack(t);
  const data = mkdtempSync(join(tmpdir(), 'lf-'));
  later(() => rmSync(data, { recursive: true, force: true }));
  await provisionRow(data, 2);
  c.register(data);
  const busId = (() => {
    const db = openDatabase(data);
    try {
      return (db.prepare('SELECT id FROM buses').get() as { id: string }).id;
    } finally {
      db.close();
    }
  })();
  const clock = new ManualClock(Date.now());
  const log = logLines();
  const config: ConfigInput = { ...c.config, health: { portFailedAfterAttempts: 3, diskFloorBytes: 0 } };
  const gw = await startGateway(later, data, clock, config, log.stream);
  const watch = await faultWatcher(url(gw));
  later(() => watch.client.endAsync(true));
  const port = (state: string) => watch.faults.filter((f) => f.fault === 'port-failed' && f.state === state);
  const failedAttempt = (n: number) => log.lines.some((l) => l.msg === c.failedMsg && l.failures === n);

  await eventually(() => failedAttempt(1), 'the first open fails');
  clock.advance(200);
  await eventually(() => failedAttempt(2), 'the second, one backoff step later');
  t.equal(port('raised').length, 0, 'two failed opens: no fault yet');
  clock.advance(400);
  await eventually(() => port('raised').length > 0, 'the third failed open is a port-failed fault on the console');
  t.match(port('raised')[0], { fault: 'port-failed', subject: `bus:${busId}`, state: 'raised', ticket: { state: 'open' }, detail: { busId, failures: 3, error: String } });
  t.notOk(log.lines.some((l) => l.msg === c.openedMsg), 'not open');
  return { later, data, busId, clock, log, gw, config, port, watch };
}

/** The port appears, and the next attempt, at the backoff's cap, opens it: the fault clears, its ticket closed as recovered. */
async function portFails(t: Test, c: PortCase): Promise<void> {
  const { later, busId, clock, log, gw, port, watch } = await failingPort(t, c);
  await c.appear(later);
  clock.advance(800);
  await eventually(() => log.lines.some((l) => l.msg === c.openedMsg), 'the bridge opens the port at its next attempt');
  await eventually(() => port('cleared').length > 0, 'the fault clears');
  t.match(port('cleared')[0], { faultId: port('raised')[0]!.faultId, ticket: { state: 'fixed', recovered: true, closedAs: 'recovered' } });
  t.equal(port('raised').length, 1, 'raised once');
  t.match(gw.db.prepare("SELECT subject, ticket, closed_as FROM faults WHERE kind = 'port-failed'").all(), [{ subject: `bus:${busId}`, ticket: 'fixed', closed_as: 'recovered' }], 'stored with its recovery');
  inContract(t, watch.faults);
}

const serialCase = (ptyDir: string): PortCase => ({
  register: (data) => addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'serial', port: join(ptyDir, 'a'), busAddress: 1 }),
  config: { serial: { reopenBackoffMs: 200, reopenBackoffMaxMs: 800 } },
  failedMsg: 'cannot open the serial port; retrying',
  openedMsg: 'serial port open again',
  appear: async (later) => {
    const line: PtyPair = await openPtyPair({ dir: ptyDir });
    later(() => line.close());
  },
});

t.test('port-failed: a serial bus whose pty does not exist at start; the pty appears at its path', async (t) => {
  const ptyDir = mkdtempSync(join(tmpdir(), 'lf-pty-'));
  t.teardown(() => rmSync(ptyDir, { recursive: true, force: true }));
  await portFails(t, serialCase(ptyDir));
});

t.test('port-failed left open by a run: the bus gone (its only keypad revoked) while the gateway was stopped, the next start clears it', async (t) => {
  const ptyDir = mkdtempSync(join(tmpdir(), 'lf-pty-'));
  t.teardown(() => rmSync(ptyDir, { recursive: true, force: true }));
  const { later, data, busId, gw, config, port } = await failingPort(t, serialCase(ptyDir));
  const faultId = port('raised')[0]!.faultId;
  await gw.stop();
  const db = openDatabase(data);
  revokeDevice(db, (db.prepare('SELECT id FROM devices WHERE bus = ?').get(busId) as { id: string }).id);
  db.close();
  const again = await startGateway(later, data, new ManualClock(Date.now()), config);
  const watch = await faultWatcher(url(again));
  later(() => watch.client.endAsync(true));
  await eventually(() => watch.faults.some((f) => f.faultId === faultId && f.state === 'cleared'), 'the console gets it cleared');
  t.match(again.db.prepare('SELECT ticket, closed_as FROM faults WHERE id = ?').get(faultId), { ticket: 'fixed', closed_as: 'recovered' }, 'stored, its ticket closed');
});

t.test('port-failed: a Modbus TCP endpoint that refuses connections; the module\'s stack starts serving', async (t) => {
  const tcpPort = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  await portFails(t, {
    register: (data) => addWiredDevice(data, { shopId: 'W01', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort, busAddress: 1 }),
    config: { modbus: { reopenBackoffMs: 200, reopenBackoffMaxMs: 800 } },
    failedMsg: 'cannot open the bus; retrying',
    openedMsg: 'bus reopened',
    appear: async (later) => {
      const sim = await new ModbusTcpSlaveSim({ port: tcpPort, modules: [{ unitId: 1 }] }).start();
      later(() => sim.close());
    },
  });
});
