/**
 * Flood guard (gateway/ingest/flood.ts) with a ManualClock: a device's routine events beyond its
 * burst and rate are dropped and counted, keypad and panic events never; one `raised` notice per
 * episode and one `cleared` notice (with the count) once the rate is back under the limit; a
 * second device is never touched; the summary is logged once, not per dropped event.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { FloodGuard } from '../../../gateway/ingest/flood.js';
import { ManualClock } from '../../../gateway/clock.js';
import { Counters } from '../../../gateway/metrics.js';
import { createLogger } from '../../../gateway/logger.js';
import type { DeviceEvent } from '../../../firmware-contracts/mqtt/payloads.js';

function setup(eventsPerMinute = 60, burst = 5) {
  const clock = new ManualClock();
  const counters = new Counters();
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  const notices: { deviceId: string; state: string; dropped: number; raisedAt: string; at: string }[] = [];
  const guard = new FloodGuard({ clock, counters, log, eventsPerMinute, burst, notice: (deviceId, state, f) => notices.push({ deviceId, state, ...f }) });
  return { clock, counters, lines, notices, guard };
}

let seq = 0;
const door = (): DeviceEvent => ({ type: 'door', open: seq % 2 === 0, boot: 1, seq: ++seq }) as DeviceEvent;
const heartbeat = (): DeviceEvent => ({ type: 'heartbeat', boot: 1, seq: ++seq }) as DeviceEvent;
const keys = (k: string): DeviceEvent => ({ type: 'keypad', keys: k, boot: 1, seq: ++seq }) as DeviceEvent;
const panic = (): DeviceEvent => ({ type: 'panic', boot: 1, seq: ++seq }) as DeviceEvent;

t.test('the burst passes, the excess is dropped and counted; the rate refills the bucket', async (t) => {
  const { clock, counters, guard } = setup(60, 5);
  const admitted = Array.from({ length: 20 }, () => guard.admit('D1', door())).filter(Boolean).length;
  t.equal(admitted, 5, 'exactly the burst passes at once');
  t.equal(counters.get('refused.LF_ERR_FLOOD'), 15, 'every dropped event counted');
  clock.advance(1_000); // 60 per minute: one token a second
  t.ok(guard.admit('D1', heartbeat()), 'one more after a second');
  t.notOk(guard.admit('D1', heartbeat()), 'but not two');
  t.equal(counters.get('refused.LF_ERR_FLOOD'), 16);
});

t.test('keypad and panic events are never dropped, even mid-flood', async (t) => {
  const { counters, guard } = setup(1, 1);
  guard.admit('D1', door());
  t.notOk(guard.admit('D1', door()), 'the device is flooding');
  for (const k of '*2468#') t.ok(guard.admit('D1', keys(k)), `key ${k} passes`);
  for (let i = 0; i < 50; i++) t.ok(guard.admit('D1', keys('9#')), '9# passes');
  for (let i = 0; i < 50; i++) t.ok(guard.admit('D1', panic()), 'panic passes');
  t.equal(counters.get('refused.LF_ERR_FLOOD'), 1, 'only the door event counted as dropped');
});

t.test('another device is never slowed', async (t) => {
  const { guard, notices } = setup(60, 3);
  for (let i = 0; i < 100; i++) guard.admit('D1', door());
  for (let i = 0; i < 3; i++) t.ok(guard.admit('D2', heartbeat()), 'D2 has its own full burst');
  t.same(notices.map((n) => n.deviceId), ['D1'], 'only the flooding device got a notice');
});

t.test('one raised notice per episode, one cleared notice with the count once the rate is normal, one log line each', async (t) => {
  const { clock, guard, notices, lines } = setup(60, 5);
  for (let i = 0; i < 105; i++) guard.admit('D1', door());
  t.same(notices, [{ deviceId: 'D1', state: 'raised', dropped: 1, raisedAt: notices[0]!.at, at: notices[0]!.at }], 'one notice for 100 dropped events');
  t.same(guard.flooding().map((f) => [f.deviceId, f.dropped]), [['D1', 100]]);
  // The device goes on at twice the rate for a while: still one episode.
  for (let s = 0; s < 20; s++) {
    clock.advance(500);
    guard.admit('D1', door());
  }
  t.equal(notices.length, 1, 'still flooding: no new notice');
  // Then quiet: the bucket refills in burst / rate = 5 s, and the episode ends.
  clock.advance(4_000);
  t.equal(notices.length, 1, 'not cleared before the bucket is full');
  clock.advance(2_000);
  t.equal(notices.length, 2);
  t.match(notices[1], { deviceId: 'D1', state: 'cleared', dropped: 110, raisedAt: notices[0]!.raisedAt });
  t.same(guard.flooding(), []);
  const floodLines = lines.filter((l) => l.includes('LF_ERR_FLOOD'));
  t.equal(floodLines.length, 2, 'one line when the flood starts, one summary when it ends');
  t.match(floodLines[1], /"dropped":110/);
  // A new flood is a new episode.
  for (let i = 0; i < 10; i++) guard.admit('D1', door());
  t.equal(notices.length, 3);
  t.equal(notices[2]!.state, 'raised');
  guard.stop();
});
