/**
 * Flood guard of the one ingest (issue 8): a device that sends routine events (door, heartbeat,
 * tamper, battery, fault, …) faster than `ingest.floodEventsPerMinute` (after a burst of
 * `ingest.floodBurst`) has the excess acknowledged and dropped before it reaches the writer, so a
 * broken contact or a firmware loop costs no transaction and never slows another device. Keypad
 * and panic events are never dropped: `*2468#` sent one key per event is a legitimate burst, and
 * a 9# flood joins the open alarm.
 *
 * One token bucket per device, in memory, timed by the injected clock. A flood episode starts
 * with the first dropped event (one `flood` fault raised, one log line) and ends when the device's
 * bucket is full again, i.e. its rate has been back under the limit for burst/rate: then the fault
 * clears with how many were dropped, and one summary line. The fault (stored with its ticket by the
 * fault store, through Supervisor.floodNotice) that clears tells the officer the device is back to
 * normal without having to guess from silence; one left open when the gateway stopped clears at
 * its start (a restart starts every bucket full).
 */
import type { Clock, Timer } from '../clock.js';
import { iso } from '../clock.js';
import type { Counters } from '../metrics.js';
import type { Logger } from '../logger.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';

export interface FloodOptions {
  clock: Clock;
  counters: Counters;
  log: Logger;
  eventsPerMinute: number;
  burst: number;
  /** A device's flood episode started (`raised`) or ended (`cleared`); `dropped` so far. */
  notice(deviceId: string, state: 'raised' | 'cleared', fields: { at: string; raisedAt: string; dropped: number }): void;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Open episode: when it started and how many were dropped in it. */
  episode?: { raisedAt: number; dropped: number; timer: Timer | null };
}

/** Events that are never dropped for a flood. */
export function floodExempt(event: DeviceEvent): boolean {
  return event.type === 'keypad' || event.type === 'panic';
}

export class FloodGuard {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(private readonly opts: FloodOptions) {
    this.perMs = opts.eventsPerMinute / 60_000;
  }

  private refill(b: Bucket, now: number): void {
    b.tokens = Math.min(this.opts.burst, b.tokens + Math.max(0, now - b.at) * this.perMs);
    b.at = now;
  }

  /** True when `event` may go on to the writer; false: acknowledge and drop it (counted here). */
  admit(deviceId: string, event: DeviceEvent): boolean {
    if (floodExempt(event)) return true;
    const now = this.opts.clock.now();
    let b = this.buckets.get(deviceId);
    if (!b) this.buckets.set(deviceId, (b = { tokens: this.opts.burst, at: now }));
    this.refill(b, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.opts.counters.inc('refused.LF_ERR_FLOOD');
    if (b.episode) {
      b.episode.dropped++;
      return false;
    }
    b.episode = { raisedAt: now, dropped: 1, timer: null };
    this.opts.counters.inc('ingest.flood.episodes');
    this.opts.log.warn(
      { code: 'LF_ERR_FLOOD', deviceId, eventsPerMinute: this.opts.eventsPerMinute, burst: this.opts.burst },
      'device floods routine events: the excess is acknowledged and dropped (keypad and panic events still pass); one summary when it ends',
    );
    this.opts.notice(deviceId, 'raised', { at: iso(now), raisedAt: iso(now), dropped: 1 });
    this.armEnd(deviceId, b);
    return false;
  }

  /** Check again when the bucket would be full if nothing more came. */
  private armEnd(deviceId: string, b: Bucket): void {
    const ms = Math.max(1, Math.ceil((this.opts.burst - b.tokens) / this.perMs));
    b.episode!.timer = this.opts.clock.setTimer(ms, () => {
      const now = this.opts.clock.now();
      this.refill(b, now);
      const ep = b.episode!;
      if (b.tokens < this.opts.burst - 1e-9) return this.armEnd(deviceId, b);
      b.episode = undefined;
      this.opts.log.info({ code: 'LF_ERR_FLOOD', deviceId, dropped: ep.dropped, floodMs: now - ep.raisedAt }, 'device flood ended: rate back under the limit');
      this.opts.notice(deviceId, 'cleared', { at: iso(now), raisedAt: iso(ep.raisedAt), dropped: ep.dropped });
    });
  }

  /** Devices in a flood episode now (for /health). */
  flooding(): { deviceId: string; raisedAt: string; dropped: number }[] {
    return [...this.buckets].filter(([, b]) => b.episode).map(([deviceId, b]) => ({ deviceId, raisedAt: iso(b.episode!.raisedAt), dropped: b.episode!.dropped }));
  }

  stop(): void {
    for (const b of this.buckets.values()) b.episode?.timer?.cancel();
  }
}
