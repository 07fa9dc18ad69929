/**
 * What the wired bridges (serial keypads, Modbus I/O modules) get from the gateway, and what they
 * give back. Bridges are in-process: Aedes' own publish() skips authorizePublish, so they call the
 * one ingest directly (docs/concepts.md "One ingest") and tell the device "got it" (serial ACK, Modbus
 * latch-clear) only once that has resolved, i.e. after the commit.
 *
 * The bridges know ports and the devices on them, not the gateway: every type here is the bridge's
 * own (structural), and gateway/wired-adapter.ts maps the registry, the secrets, the supervisor and
 * the store onto them. Every time and timer of a bridge comes from the injected `BridgeClock`
 * (performance.now() only measures latencies).
 */
import type { Config } from '../config/schema.js';
import type { DeviceCommand, DeviceEvent, ShopAlert } from '../firmware-contracts/mqtt/payloads.js';

/** The minimal logger a bridge writes to (pino's Logger is one). */
export interface BridgeLog {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
  child(bindings: Record<string, unknown>): BridgeLog;
}

/** Milliseconds since the epoch, and timers by the same time (gateway/clock.ts's Clock is one; tests pass a ManualClock). */
export interface BridgeClock {
  now(): number;
  /** Call `fn` once, `ms` from now by this clock. */
  setTimer(ms: number, fn: () => void): { cancel(): void };
}

export interface BridgeCounters {
  inc(name: string, n?: number): void;
}

export interface BridgeLatencies {
  recordMs(name: string, ms: number): void;
}

/** What the gateway's supervision hears from a bridge: which devices are polled, and each answer. */
export interface LinkWatch {
  /** The bridge now polls `deviceId`: its silence counts from now. */
  watch(deviceId: string): void;
  /** No longer polled (revoked, moved): it can no longer fall silent. */
  unwatch(deviceId: string): void;
  /** The device answered. */
  seen(deviceId: string): void;
  /** An exchange with the device had a line error (bad CRC, truncated frame, noise, a frame that does not verify). */
  lineError?(deviceId: string): void;
}

/**
 * What the gateway hears about a bus's port: a port that cannot be opened (a serial path missing or
 * held by another program, a Modbus TCP endpoint refusing) is a fault of the gateway itself, not
 * only a log line; the bridge goes on retrying with backoff and says when the port opens.
 */
export interface PortWatch {
  /** An attempt to open the port failed; `failures` is the count of failed attempts in a row. */
  openFailed(failures: number, err: Error): void;
  /** The port opened (at the first attempt, or again after failures). */
  opened(): void;
}

/** Where a bus is: a serial line (keypads, Modbus RTU) or a Modbus TCP endpoint, defaults filled in. */
export type BusPort = { kind: 'serial' | 'modbus-rtu'; path: string; baud: number; parity: 'none' | 'even' | 'odd' } | { kind: 'modbus-tcp'; host: string; port: number };

/** A wired device as its bus sees it. */
export interface WiredDevice {
  id: string;
  shopId: string;
  type: string;
  /** Its address on the bus: a keypad's address, a module's unit id. */
  address: number;
  /** An I/O module's Modbus register map (e.g. generic-8io); null: the default. */
  model: string | null;
  /** A serial keypad's MAC key, already decrypted; null when there is none to use, `macKeyMissing` says why. */
  macKey: Buffer | null;
  macKeyMissing?: string;
  /** The device's stored counter mark as it stands now (the ingest moves it): the last (boot, seq) taken. */
  mark(): { boot: number | null; seq: number | null };
  /**
   * An I/O module's door levels (open = true) by input name, as its latest stored door event of
   * each input says: where the Modbus bridge's level last committed starts, so a door that moved
   * while the gateway was down is reported at the first full read. Called once, when the bridge
   * starts polling the module (a database read: never on the poll path). An input missing (or no
   * function): no stored event, the model's own first read applies.
   */
  doorLevels?(): Readonly<Record<string, boolean>>;
}

/** The one ingest's answer: `committedAt` is performance.now() at the commit. */
export interface IngestResult {
  outcome: { status: string; reason?: string };
  committedAt: number;
}

/** The one ingest (gateway/ingest/device-ingest.ts): resolves once the event is committed. */
export type BridgeIngest = (deviceId: string, event: DeviceEvent, via: 'serial' | 'modbus') => Promise<IngestResult>;

export interface BridgeContext {
  log: BridgeLog;
  clock: BridgeClock;
  counters: BridgeCounters;
  /** Latency histograms shown by /health (e.g. last byte of a frame → event committed). */
  latencies: BridgeLatencies;
  config: Readonly<Pick<Config, 'serial' | 'modbus'>>;
  link: LinkWatch;
  /** This bus's port (given per bus by devices/wired.ts; absent where nobody watches, e.g. a scan of a free bus). */
  port?: PortWatch;
  ingest: BridgeIngest;
  /**
   * A new `boot` for the gateway's serial command counter, taken once by each serial bus at its
   * start: stored, and above every one given before, so a clock set back or a restart within the
   * same second never makes a keypad take the gateway's frames for replays.
   */
  nextCommandBoot(): number;
  /**
   * A new `boot` for the events the bridge makes for a Modbus module (which has no counter of its
   * own), taken when the module is first polled: stored, above every one given before and above
   * the module's `mark` (its stored boot), so a wall clock set back never turns its panics into repeats.
   */
  nextModuleBoot(mark: number | null): number;
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
  readonly port: BusPort;
  /** The devices registered on this bus now (after a reload): start polling new ones, drop old ones. */
  setDevices(devices: WiredDevice[]): void;
  /** An alert for a shop: show it, sound it, or end it on that shop's devices on this bus. */
  alert(shopId: string, alert: ShopAlert): void;
  /**
   * A keypad's own commands, in order (its answer to an entry: the LED after 9#, a text after a
   * PIN), once the event that decided them is committed; a bus without keypads has none to take.
   */
  keypadCommand?(deviceId: string, commands: readonly DeviceCommand[]): void;
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
export function syncByAddress<T extends { device: WiredDevice }>(
  held: Map<number, T>,
  devices: WiredDevice[],
  link: LinkWatch,
  create: (device: WiredDevice) => T | null,
  drop: (gone: T) => void = () => {},
  /** Whether what is held still serves the fresh record; when not (a serial keypad re-keyed), it is made anew. */
  same: (held: T, fresh: WiredDevice) => boolean = (h, fresh) => h.device.id === fresh.id,
): void {
  const wanted = new Map(devices.map((d) => [d.address, d]));
  for (const [addr, t] of held) {
    const fresh = wanted.get(addr);
    if (fresh && same(t, fresh)) continue;
    drop(t);
    link.unwatch(t.device.id);
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
    link.watch(device.id);
  }
}

/** What a device should do with an alert it is given (see AlertBook). */
export type AlertAction = 'show' | 'clear' | 'confirm' | 'skip';

/**
 * What one wired device (a keypad's display, a module's sounder) has been told about alarms. A
 * device shows one alert at a time, the latest raised; receivers de-duplicate by (alarmId, rev) and
 * ignore a lower rev (docs/concepts.md "At least once on the wire"). A re-sent alert whose delivery failed is
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

/** Wait `ms` by `clock` unless `signal` aborts first (a bus loop's pauses end at once on close). */
export function pause(clock: BridgeClock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = clock.setTimer(ms, done);
    function done() {
      t.cancel();
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * The clock's time, never going back: what polls and retries are scheduled by, so a wall clock
 * stepped back (NTP at boot on a gateway without a real-time clock) cannot push every module's next
 * poll hours away. A step back is taken as no time passing; a step forward makes what waits due.
 */
export function steadyTime(clock: BridgeClock): () => number {
  let last = -Infinity;
  let behind = 0;
  return () => {
    const t = clock.now() + behind;
    if (t < last) behind += last - t;
    last = Math.max(last, t);
    return last;
  };
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
 * `p`, bounded: rejected with a timeout after `ms` by `clock`, or at once when `signal` aborts.
 * `release` then frees what `p` holds (a socket still trying to connect); a late settlement of `p`
 * is ignored. A bus loop awaits nothing that is not bounded: a wait that never ends leaves its
 * devices unserved.
 */
export function withTimeout<T>(clock: BridgeClock, p: Promise<T>, ms: number, what: string, opts: { signal?: AbortSignal; release?: () => void } = {}): Promise<T> {
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
    const timer = clock.setTimer(ms, () => give(timeoutError(what, ms)));
    const onAbort = () => give(new Error(`${what}: aborted`));
    const cleanup = () => {
      timer.cancel();
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
