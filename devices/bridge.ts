/**
 * What the wired bridges (serial keypads, Modbus I/O modules) get from the gateway, and what they
 * give back. Bridges are in-process: Aedes' own publish() skips authorizePublish, so they call the
 * one ingest directly (DESIGN.md "One ingest") and tell the device "got it" (serial ACK, Modbus
 * latch-clear) only once that has resolved, i.e. after the commit.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../gateway/logger.js';
import type { Clock } from '../gateway/clock.js';
import type { Counters, Latencies } from '../gateway/metrics.js';
import type { Device, RegistryCache } from '../gateway/registry/registry.js';
import type { Bus } from '../gateway/registry/buses.js';
import type { DeviceIngest } from '../gateway/ingest/device-ingest.js';
import type { Supervisor } from '../gateway/supervision.js';
import type { ShopAlert } from '../firmware-contracts/mqtt/payloads.js';

export interface BridgeContext {
  log: Logger;
  clock: Clock;
  counters: Counters;
  /** Latency histograms shown by /health (e.g. last byte of a frame → event committed). */
  latencies: Latencies;
  config: Readonly<Config>;
  registry: RegistryCache;
  gatewayKey: Buffer;
  supervisor: Supervisor;
  /** The one ingest (gateway/ingest/device-ingest.ts): resolves once the event is committed. */
  ingest: DeviceIngest;
  /**
   * A new `boot` for the gateway's serial command counter, taken once by each serial bus at its
   * start: stored, and above every one given before, so a clock set back or a restart within the
   * same second never makes a keypad take the gateway's frames for replays.
   */
  nextCommandBoot(): number;
  /** A shop's wired device has the alert (the keypad confirmed the display, the sounder is on). */
  delivered(shopId: string, alarmId: string, rev: number, deviceId: string): void;
}

/** What a bus scan found at one address. */
export interface ScanHit {
  address: number;
  /** The registered device at this address, if any. */
  deviceId: string | null;
  detail: string;
}

export interface ScanOptions {
  from: number;
  to: number;
  /** Per-address answer timeout. */
  timeoutMs: number;
}

/** One open bus: a serial line or a Modbus endpoint, driven by one loop (one request at a time). */
export interface BusDriver {
  readonly bus: Bus;
  /** The devices registered on this bus now (after a reload): start polling new ones, drop old ones. */
  setDevices(devices: Device[]): void;
  /** An alert for a shop: show it, sound it, or end it on that shop's devices on this bus. */
  alert(shopId: string, alert: ShopAlert): void;
  servesShop(shopId: string): boolean;
  /** The addresses that answer, polled between regular polls. */
  scan(opts: ScanOptions): Promise<ScanHit[]>;
  close(): Promise<void>;
}

/**
 * Bring a bus's devices, by address, in step with the registry: a known device takes its fresh
 * record, a new one is made by `create` (null when it cannot be polled; `create` says why), one that
 * is gone (or replaced at its address) is dropped. Supervision watches exactly the devices polled.
 */
export function syncByAddress<T extends { device: Device }>(
  held: Map<number, T>,
  devices: Device[],
  supervisor: Supervisor,
  create: (device: Device) => T | null,
  drop: (gone: T) => void = () => {},
): void {
  const wanted = new Map(devices.map((d) => [d.busAddress!, d]));
  for (const [addr, t] of held) {
    if (wanted.get(addr)?.id === t.device.id) continue;
    drop(t);
    supervisor.unwatch(t.device.id);
    held.delete(addr);
  }
  for (const [addr, device] of wanted) {
    const known = held.get(addr);
    if (known) {
      known.device = device;
      continue;
    }
    const t = create(device);
    if (!t) continue;
    held.set(addr, t);
    supervisor.watch(device.id);
  }
}

/** What a device should do with an alert it is given (see AlertBook). */
export type AlertAction = 'show' | 'clear' | 'confirm' | 'skip';

/**
 * What one wired device (a keypad's display, a module's sounder) has been told about alarms. A
 * device shows one alert at a time, the latest raised; receivers de-duplicate by (alarmId, rev) and
 * ignore a lower rev (DESIGN "At least once on the wire"). A re-sent alert whose delivery failed is
 * tried again; one already delivered or under way is skipped.
 */
export class AlertBook {
  private readonly known = new Map<string, { rev: number; state: 'pending' | 'confirmed' | 'failed' }>();
  /** The alarm the device shows (or sounds for) now. */
  showing: string | null = null;

  decide(alert: { alarmId: string; rev: number; state: 'raised' | 'ended' }): AlertAction {
    const k = this.known.get(alert.alarmId);
    if (k && (k.rev > alert.rev || (k.rev === alert.rev && k.state !== 'failed'))) return 'skip';
    this.known.delete(alert.alarmId);
    this.known.set(alert.alarmId, { rev: alert.rev, state: 'pending' });
    // Remember the last alarms only: an alarm's messages arrive within its lifetime.
    if (this.known.size > 64) this.known.delete(this.known.keys().next().value!);
    if (alert.state === 'raised') {
      this.showing = alert.alarmId;
      return 'show';
    }
    if (this.showing === null || this.showing === alert.alarmId) {
      this.showing = null;
      return 'clear';
    }
    // An alarm that is over but no longer shown: nothing to change on the device.
    return 'confirm';
  }

  /** The device confirmed (or finally failed to take) the alert's rev. */
  settle(alarmId: string, rev: number, ok: boolean): void {
    const k = this.known.get(alarmId);
    if (k && k.rev === rev) k.state = ok ? 'confirmed' : 'failed';
  }
}

/** Wait `ms` unless `signal` aborts first (a bus loop's pauses end at once on close). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff: `base` doubled per failure, at most `max`. */
export function backoffMs(failures: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.min(20, Math.max(0, failures - 1)));
}

/** The error of a wait that ran out (matched like modbus-serial's own timeouts). */
export function timeoutError(what: string, ms: number): Error {
  return Object.assign(new Error(`${what} timed out after ${ms} ms`), { errno: 'ETIMEDOUT', code: 'ETIMEDOUT' });
}

/**
 * `p`, bounded: rejected with a timeout after `ms`, or at once when `signal` aborts. `release` then
 * frees what `p` holds (a socket still trying to connect); a late settlement of `p` is ignored. A
 * bus loop awaits nothing that is not bounded: a wait that never ends leaves its devices unserved.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, opts: { signal?: AbortSignal; release?: () => void } = {}): Promise<T> {
  const { signal, release } = opts;
  return new Promise<T>((resolve, reject) => {
    const give = (err: Error) => {
      cleanup();
      try {
        release?.();
      } catch {
        // Releasing is best effort: the wait is over either way.
      }
      reject(err);
    };
    const timer = setTimeout(() => give(timeoutError(what, ms)), ms);
    const onAbort = () => give(new Error(`${what}: aborted`));
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}
