/**
 * The disk floor (gateway/health/disk-watch.ts) on the manual clock, with the free space given by
 * the test: below the floor raises disk-low (said again at each check with its first detail, so a
 * raise the store could not take is stored later), it clears only above the floor plus its margin,
 * the first good check clears a fault left by the last run, and stop() ends the checks. One check
 * reads the real filesystem (statfs) of a temp dir.
 */
import t from 'tap';
import { tmpdir } from 'node:os';
import { ManualClock } from '../../../gateway/clock.js';
import { createLogger } from '../../../gateway/logger.js';
import { DiskWatch, freeBytesAt } from '../../../gateway/health/disk-watch.js';
import { RecordingGatewaySink } from '../../helpers/gateway-faults.js';

const MiB = 1024 * 1024;

function setup(free: { bytes: number }) {
  const clock = new ManualClock();
  const sink = new RecordingGatewaySink();
  const watch = new DiskWatch({
    path: '/data',
    floorBytes: 100 * MiB,
    clearMarginBytes: 10 * MiB,
    checkIntervalMs: 60_000,
    clock,
    log: createLogger('silent'),
    sink,
    freeBytes: () => free.bytes,
  });
  return { clock, sink, watch };
}

t.test('below the floor raises once with the free bytes, the floor and the path; clears above floor + margin', async (t) => {
  const free = { bytes: 500 * MiB };
  const { clock, sink, watch } = setup(free);
  watch.start();
  t.same(sink.ops(), ['clear disk-low disk:/data'], 'the first good check clears a fault the last run may have left');
  free.bytes = 99 * MiB;
  clock.advance(59_999);
  t.equal(sink.calls.length, 1, 'nothing before the interval');
  clock.advance(1);
  t.same(sink.calls[1], { op: 'raise', kind: 'disk-low', subject: 'disk:/data', detail: { path: '/data', freeBytes: 99 * MiB, floorBytes: 100 * MiB } });
  const first = sink.calls[1]!;
  free.bytes = 50 * MiB;
  clock.advance(60_000);
  t.same(sink.calls[2], first, 'still low: said again with the detail it was raised with (no change for a stored fault; stored now if it could not be)');
  free.bytes = 105 * MiB;
  clock.advance(60_000);
  t.equal(sink.calls.length, 3, 'above the floor but within its margin: still open (no flapping), nothing said');
  free.bytes = 99 * MiB;
  clock.advance(60_000);
  t.same(sink.calls[3], first, 'back under: the same fault, the same detail');
  free.bytes = 110 * MiB;
  clock.advance(60_000);
  t.same(sink.ops().slice(4), ['clear disk-low disk:/data'], 'at floor + margin: cleared');
  clock.advance(60_000);
  t.equal(sink.calls.length, 5, 'and not cleared again');
  free.bytes = 1 * MiB;
  clock.advance(60_000);
  t.same(sink.calls.slice(5), [{ op: 'raise', kind: 'disk-low', subject: 'disk:/data', detail: { path: '/data', freeBytes: 1 * MiB, floorBytes: 100 * MiB } }], 'a new episode raises with its own detail');
  watch.stop();
  free.bytes = 500 * MiB;
  clock.advance(600_000);
  t.equal(sink.calls.length, 6, 'no checks after stop');
});

t.test('a start already below the floor raises at once; between floor and margin at start says nothing', async (t) => {
  const low = setup({ bytes: 10 * MiB });
  low.watch.start();
  t.same(low.sink.ops(), ['raise disk-low disk:/data']);
  const hover = setup({ bytes: 105 * MiB });
  hover.watch.start();
  t.same(hover.sink.ops(), [], 'neither low nor clearly above: a fault left open stays until the disk is clearly fine');
});

t.test('a failing statfs is logged, raises nothing, and the next good read works', async (t) => {
  const free = { bytes: NaN };
  const clock = new ManualClock();
  const sink = new RecordingGatewaySink();
  let fail = true;
  const watch = new DiskWatch({ path: '/gone', floorBytes: 10, clearMarginBytes: 0, checkIntervalMs: 1000, clock, log: createLogger('silent'), sink, freeBytes: () => {
    if (fail) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return free.bytes;
  } });
  watch.start();
  t.same(sink.calls, []);
  fail = false;
  free.bytes = 5;
  clock.advance(1000);
  t.same(sink.ops(), ['raise disk-low disk:/gone']);
  watch.stop();
});

t.test('freeBytesAt reads the real filesystem', async (t) => {
  const free = freeBytesAt(tmpdir());
  t.ok(Number.isSafeInteger(free) && free > 0, `free bytes of ${tmpdir()}: ${free}`);
});

t.test('a sink that throws is logged; the checks go on (a timer\'s exception would end the process)', async (t) => {
  const clock = new ManualClock();
  let calls = 0;
  const sink = { raiseGateway: () => { calls++; throw new Error('store gone'); }, clearGateway: () => {} };
  const watch = new DiskWatch({ path: '/data', floorBytes: 10, clearMarginBytes: 0, checkIntervalMs: 1000, clock, log: createLogger('silent'), sink, freeBytes: () => 5 });
  t.doesNotThrow(() => watch.start());
  t.doesNotThrow(() => clock.advance(1000));
  t.equal(calls, 2, 'the next check ran');
  watch.stop();
});
