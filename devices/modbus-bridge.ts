/**
 * The Modbus bridge: one loop per bus (an RTU line or a TCP endpoint) over modbus-serial, one
 * request at a time, a timeout on every request (modbus-serial waits for ever by default).
 *
 * Each I/O module's panic inputs are read every `panicPollMs`, all its inputs every `doorPollMs`.
 * A latched input that reads 1 becomes an event; once the ingest has committed it, the bridge writes
 * the latch-clear register with exactly the bits of the committed inputs, so an input that latched
 * between the read and the clear stays latched for the next read (firmware-contracts/modbus/SPEC.md).
 * Sounder coils of a shop's modules switch on when an alert reaches the shop and off when it ends,
 * or after `sounderMaxMs` at the latest.
 *
 * A silent module, an exception or a wrong unit id costs one timeout and is logged; the others are
 * still polled, and the silent one is retried with backoff. After a timeout the port is closed and
 * reopened with backoff (modbus-serial can leave a half-open port behind: "Cannot lock port").
 * Every wait of the loop is bounded, the opening of a bus too (modbus-serial's TCP connect has no
 * timeout), and attempts start one backoff step apart: a bus or module that comes back, however
 * long it was away, is polled again within one step.
 */
import modbusSerial from 'modbus-serial';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import type { DeviceEvent, ShopAlert } from '../firmware-contracts/mqtt/payloads.js';
import { loadRegisterMap, latchClearMask, type RegisterMap, type DiscreteInputDef } from '../firmware-contracts/modbus/register-map.js';
import { stopBitsFor } from './serial-bridge.js';
import { AlertBook, backoffMs, pause, steadyTime, syncByAddress, withTimeout, type BridgeClock, type BridgeContext, type BusDriver, type BusPort, type ScanHit, type ScanOptions, type WiredDevice } from './bridge.js';

type Client = ModbusClient;
/** The package's CommonJS export is the client class itself (its typings describe it as `default`). */
const ModbusRTU = modbusSerial as unknown as new () => Client;

/** A device event before the bridge numbers it. */
type UnnumberedEvent = DeviceEvent extends infer E ? (E extends unknown ? Omit<E, 'seq'> : never) : never;

/** Longest wait for a bus to open where the caller gives none (`lianfang bus scan` on a free port). */
export const DEFAULT_OPEN_TIMEOUT_MS = 3_000;

/**
 * Open a modbus-serial client on `bus`, every request bounded by `timeoutMs` and the opening itself
 * by `openTimeoutMs`: modbus-serial's TCP connect has no timeout, and a module that is switched off
 * answers no SYN, so the kernel would retry it for about two minutes (at 1, 3, 7, 15, 31, 63 s) and
 * the module, back on, would wait for the next retry. A client that did not open is destroyed.
 * `onError` hears port errors (a pty whose other end went away: EIO), which modbus-serial re-emits
 * on the client and which, unheard, would be thrown as an uncaught 'error' event.
 */
export async function openModbusClient(
  port: BusPort,
  clock: BridgeClock,
  timeoutMs: number,
  openTimeoutMs = DEFAULT_OPEN_TIMEOUT_MS,
  opts: { signal?: AbortSignal; onError?: (err: Error) => void } = {},
): Promise<Client> {
  const client = new ModbusRTU();
  client.on('error', (err: unknown) => opts.onError?.(err as Error));
  let opening: Promise<void>;
  if (port.kind === 'modbus-tcp') opening = client.connectTCP(port.host, { port: port.port });
  // Modbus RTU characters are 11 bits: without parity, two stop bits (Modbus over serial line §2.5.1).
  else opening = client.connectRTUBuffered(port.path, { baudRate: port.baud, parity: port.parity, dataBits: 8, stopBits: stopBitsFor(port.parity) });
  try {
    await withTimeout(clock, opening, openTimeoutMs, `opening ${port.kind === 'modbus-tcp' ? `${port.host}:${port.port}` : port.path}`, { signal: opts.signal });
  } catch (err) {
    await closeModbusClient(client, clock);
    // A serial port that opens after all would hold the line ("Cannot lock port" on the next try).
    opening.then(() => closeModbusClient(client, clock), () => {});
    throw err;
  }
  client.setTimeout(timeoutMs);
  return client;
}

/** How long a close may take before the port or socket is destroyed. */
const CLOSE_GRACE_MS = 500;

/**
 * Close `client`, bounded. A socket whose peer is gone never completes a graceful close (it would
 * keep its descriptor for minutes, one per reopen while a module is off), and one that is already
 * closed never calls back: both are destroyed. modbus-serial's destroy() is a no-op for RTU ports.
 */
export function closeModbusClient(client: Client, clock: BridgeClock): Promise<void> {
  const destroy = () => {
    try {
      client.destroy(() => {});
    } catch {
      // Nothing left to release.
    }
  };
  if (!client.isOpen) {
    destroy();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = clock.setTimer(CLOSE_GRACE_MS, () => {
      destroy();
      resolve();
    });
    const done = () => {
      timer.cancel();
      resolve();
    };
    try {
      client.close(done);
    } catch {
      destroy();
      done();
    }
  });
}

const isTimeout = (err: unknown) => (err as { errno?: string }).errno === 'ETIMEDOUT' || /timed out/i.test(String((err as Error).message));
const exceptionCode = (err: unknown) => (err as { modbusCode?: number }).modbusCode;

interface Module {
  device: WiredDevice;
  unitId: number;
  map: RegisterMap;
  /** Inputs read every panicPollMs: the latched ones with the panic role. */
  fastCount: number;
  fullCount: number;
  nextFastAt: number;
  nextFullAt: number;
  /** Last read of the unlatched inputs (door contacts), by address; unknown until the first read. */
  live: Map<number, boolean>;
  /** The boot of the events made for this module (a u32 above its stored mark), and their seq. */
  boot: number;
  seq: number;
  failures: number;
  retryAt: number;
  /** performance.now() when its inputs were last read (0: never): for the poll-interval latency only. */
  polledAt: number;
  /** Switches the sounder off at the latest `sounderMaxMs` after it went on. */
  offTimer: { cancel(): void } | null;
  book: AlertBook;
}

interface CoilWrite {
  unitId: number;
  on: boolean;
  /** Set for an alert: the shop's delivery is confirmed once the coil is written. */
  alert?: { shopId: string; alarmId: string; rev: number };
  attempts: number;
}

export class ModbusBusDriver implements BusDriver {
  private client: Client | null = null;
  private readonly modules = new Map<number, Module>();
  private readonly coilQueue: CoilWrite[] = [];
  private readonly abort = new AbortController();
  private wake: (() => void) | null = null;
  private scanning: { opts: ScanOptions; resolve: (h: ScanHit[]) => void; reject: (e: unknown) => void } | null = null;
  private openFailures = 0;
  private readonly loop: Promise<void>;
  readonly stats = { requests: 0, timeouts: 0, exceptions: 0, events: 0, reopens: 0 };
  /** The time polls and retries are scheduled by: the injected clock, never going back (bridge.ts steadyTime). */
  private readonly monotonic: () => number;

  constructor(
    readonly port: BusPort,
    private readonly ctx: BridgeContext,
    devices: WiredDevice[],
  ) {
    this.monotonic = steadyTime(ctx.clock);
    this.setDevices(devices);
    this.loop = this.run();
  }

  private get log() {
    return this.ctx.log;
  }

  setDevices(devices: WiredDevice[]): void {
    const now = this.monotonic();
    syncByAddress(
      this.modules,
      devices,
      this.ctx.link,
      (device) => {
        let map: RegisterMap;
        try {
          map = loadRegisterMap(device.model ?? 'generic-8io');
        } catch (err) {
          this.log.error({ err, deviceId: device.id, model: device.model }, 'unknown register map: module not polled');
          return null;
        }
        const panicAddrs = map.discreteInputs.filter((i) => i.role === 'panic').map((i) => i.address);
        return {
          device,
          unitId: device.address,
          map,
          fastCount: panicAddrs.length ? Math.max(...panicAddrs) + 1 : 0,
          fullCount: Math.max(...map.discreteInputs.map((i) => i.address)) + 1,
          nextFastAt: now,
          nextFullAt: now,
          live: new Map(),
          boot: this.ctx.nextModuleBoot(device.mark().boot),
          seq: 0,
          failures: 0,
          retryAt: 0,
          polledAt: 0,
          offTimer: null,
          book: new AlertBook(),
        };
      },
      (gone) => gone.offTimer?.cancel(),
    );
    this.wake?.();
  }

  servesShop(shopId: string): boolean {
    for (const m of this.modules.values()) if (m.device.shopId === shopId && m.map.coils.some((c) => c.role === 'sounder')) return true;
    return false;
  }

  alert(shopId: string, alert: ShopAlert): void {
    for (const m of this.modules.values()) {
      if (m.device.shopId !== shopId || !m.map.coils.some((c) => c.role === 'sounder')) continue;
      const action = m.book.decide(alert);
      const tag = { shopId, alarmId: alert.alarmId, rev: alert.rev };
      if (action === 'skip') continue;
      if (action === 'confirm') {
        m.book.settle(alert.alarmId, alert.rev, true);
        this.ctx.delivered(shopId, alert.alarmId, alert.rev, m.device.id);
        continue;
      }
      m.offTimer?.cancel();
      m.offTimer = null;
      const on = action === 'show';
      if (on) {
        m.offTimer = this.ctx.clock.setTimer(this.ctx.config.modbus.sounderMaxMs, () => {
          this.log.info({ deviceId: m.device.id, alarmId: alert.alarmId }, 'sounder on for its longest allowed time: switching it off');
          m.offTimer = null;
          this.queueCoils({ unitId: m.unitId, on: false, attempts: 0 });
        });
      }
      this.queueCoils({ unitId: m.unitId, on, alert: tag, attempts: 0 });
    }
  }

  /** Replace a pending write to the same module: only the latest switching matters. */
  private queueCoils(w: CoilWrite): void {
    const i = this.coilQueue.findIndex((q) => q.unitId === w.unitId);
    if (i >= 0) {
      const old = this.coilQueue.splice(i, 1)[0]!;
      if (old.alert && old.alert !== w.alert) this.modules.get(old.unitId)?.book.settle(old.alert.alarmId, old.alert.rev, false);
    }
    this.coilQueue.push(w);
    this.wake?.();
  }

  scan(opts: ScanOptions): Promise<ScanHit[]> {
    if (this.scanning) return Promise.reject(new Error('a scan of this bus is already running'));
    return new Promise((resolve, reject) => {
      this.scanning = { opts, resolve, reject };
      this.wake?.();
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.loop;
    for (const m of this.modules.values()) m.offTimer?.cancel();
  }

  // ---------------------------------------------------------------- the loop

  private async run(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      if (!this.client) {
        await this.open();
        continue;
      }
      if (this.scanning) {
        const s = this.scanning;
        this.scanning = null;
        await scanModbus(this.client, s.opts, this.ctx.config.modbus.requestTimeoutMs, this.modulesByUnit()).then(s.resolve, s.reject);
        continue;
      }
      const coil = this.coilQueue.shift();
      if (coil) {
        await this.writeCoils(coil);
        continue;
      }
      const now = this.monotonic();
      const due = this.nextDue(now);
      if (due.module) {
        await this.poll(due.module, due.full);
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = this.ctx.clock.setTimer(Math.max(1, due.at - now), done);
        const self = this;
        function done() {
          t.cancel();
          self.wake = null;
          resolve();
        }
        this.wake = done;
      });
    }
    if (this.client) await closeModbusClient(this.client, this.ctx.clock);
    this.client = null;
  }

  private modulesByUnit(): Map<number, string> {
    return new Map([...this.modules].map(([u, m]) => [u, m.device.id]));
  }

  private async open(): Promise<void> {
    const { signal } = this.abort;
    const { modbus } = this.ctx.config;
    const startedAt = this.monotonic();
    try {
      this.client = await openModbusClient(this.port, this.ctx.clock, modbus.requestTimeoutMs, modbus.connectTimeoutMs, {
        signal,
        onError: (err) => this.log.warn({ err: err.message }, 'bus port error'),
      });
      if (this.openFailures > 0) this.log.info({ after: this.openFailures }, 'bus reopened');
      this.openFailures = 0;
      this.ctx.port?.opened();
    } catch (err) {
      if (signal.aborted) return;
      this.openFailures++;
      this.ctx.port?.openFailed(this.openFailures, err as Error);
      const step = backoffMs(this.openFailures, modbus.reopenBackoffMs, modbus.reopenBackoffMaxMs);
      // Attempts start one backoff step apart: the time an attempt spent waiting for its timeout
      // is part of the step, so a module that comes back is served within one step.
      const wait = Math.max(0, step - (this.monotonic() - startedAt));
      this.ctx.counters.inc('modbus.open.failed');
      if (this.openFailures <= 3 || this.openFailures % 20 === 0) {
        this.log.warn({ err: (err as Error).message, failures: this.openFailures, retryInMs: Math.round(wait) }, 'cannot open the bus; retrying');
      }
      await pause(this.ctx.clock, wait, signal);
    }
  }

  /** After a timeout: close the port and open it again (with backoff if that fails). */
  private async reopen(): Promise<void> {
    if (!this.client) return;
    this.stats.reopens++;
    const c = this.client;
    this.client = null;
    await closeModbusClient(c, this.ctx.clock);
  }

  /** The module whose poll is most overdue (so none is starved), or when the next one falls due. */
  private nextDue(now: number): { module?: Module; full: boolean; at: number } {
    let best: { module: Module; full: boolean; due: number } | undefined;
    let at = now + 1000;
    for (const m of this.modules.values()) {
      const full = m.nextFullAt <= (m.fastCount > 0 ? m.nextFastAt : Infinity);
      const due = Math.max(m.retryAt, full ? m.nextFullAt : m.nextFastAt);
      if (due <= now && (!best || due < best.due)) best = { module: m, full: full || m.nextFullAt <= now, due };
      at = Math.min(at, due);
    }
    return best ? { module: best.module, full: best.full, at: now } : { full: false, at };
  }

  /** One request to one module; a timeout or an exception is logged and counted, never thrown. */
  private async request<T>(m: Module, what: string, fn: (c: Client) => Promise<T>): Promise<T | undefined> {
    const client = this.client!;
    client.setID(m.unitId);
    this.stats.requests++;
    try {
      // modbus-serial times every request out itself; this bound holds should its timer ever be lost.
      const out = await withTimeout(this.ctx.clock, fn(client), 2 * this.ctx.config.modbus.requestTimeoutMs + 100, what);
      this.answered(m);
      return out;
    } catch (err) {
      this.failed(m, what, err);
      // After a timeout the line may hold a late answer; a port or socket that closed must be reopened.
      if (isTimeout(err) || !client.isOpen) await this.reopen();
      return undefined;
    }
  }

  private answered(m: Module): void {
    if (m.failures > 0) this.log.info({ deviceId: m.device.id, unitId: m.unitId, after: m.failures }, 'module answers again');
    m.failures = 0;
    m.retryAt = 0;
    this.ctx.link.seen(m.device.id);
  }

  private failed(m: Module, what: string, err: unknown): void {
    const code = exceptionCode(err);
    const { modbus } = this.ctx.config;
    if (code !== undefined) {
      // It answered, with an exception: alive, but this request did nothing.
      this.stats.exceptions++;
      this.ctx.counters.inc('modbus.exceptions');
      this.ctx.link.seen(m.device.id);
      this.log.warn({ deviceId: m.device.id, unitId: m.unitId, what, exception: code }, 'module answered with an exception');
      m.retryAt = this.monotonic() + modbus.panicPollMs;
      return;
    }
    m.failures++;
    m.retryAt = this.monotonic() + backoffMs(m.failures, modbus.panicPollMs, Math.max(modbus.panicPollMs, modbus.reopenBackoffMaxMs));
    if (isTimeout(err)) {
      this.stats.timeouts++;
      this.ctx.counters.inc('modbus.timeouts');
    } else this.ctx.counters.inc('modbus.errors');
    if (m.failures <= 3 || m.failures % 20 === 0) {
      this.log.warn({ deviceId: m.device.id, unitId: m.unitId, what, err: (err as Error).message, failures: m.failures }, 'module did not answer');
    }
  }

  private async poll(m: Module, full: boolean): Promise<void> {
    const { modbus } = this.ctx.config;
    const now = this.monotonic();
    // How long since this module's panic inputs were last read: the poll cycle as the module sees it
    // (a latency measurement, so performance.now()).
    const t0 = performance.now();
    if (m.polledAt > 0) this.ctx.latencies.recordMs('modbus.panicPollInterval', t0 - m.polledAt);
    m.polledAt = t0;
    m.nextFastAt = now + modbus.panicPollMs;
    if (full) m.nextFullAt = now + modbus.doorPollMs;
    const count = full ? m.fullCount : m.fastCount;
    const read = await this.request(m, 'read inputs', (c) => c.readDiscreteInputs(0, count));
    if (!read) return;
    const bits = read.data;
    const latched: DiscreteInputDef[] = [];
    const events: { input: DiscreteInputDef; event: UnnumberedEvent }[] = [];
    for (const input of m.map.discreteInputs) {
      if (input.address >= count) continue;
      const v = !!bits[input.address];
      if (input.latched) {
        if (!v) continue;
        latched.push(input);
        const event = latchedEvent(input);
        if (event) events.push({ input, event });
        continue;
      }
      const before = m.live.get(input.address);
      m.live.set(input.address, v);
      if (before !== undefined && before !== v && input.role === 'door') events.push({ input, event: { type: 'door', open: v } });
    }
    if (events.length === 0) return;
    const committed: number[] = [];
    await Promise.all(
      events.map(async ({ input, event }) => {
        const full = { ...event, boot: m.boot, seq: ++m.seq, input: input.name } as unknown as DeviceEvent;
        try {
          await this.ctx.ingest(m.device.id, full, 'modbus');
          this.stats.events++;
          if (input.latched) committed.push(input.address);
        } catch (err) {
          this.log.error({ err, deviceId: m.device.id, input: input.name }, 'event not stored: its latch stays set and it is read again');
        }
      }),
    );
    if (committed.length === 0) return;
    const mask = latchClearMask(committed);
    const cleared = await this.request(m, 'latch-clear', (c) => c.writeRegister(m.map.holdingRegisters.latchClear.address, mask));
    // Not cleared: the latch reads 1 again and the event is ingested again; the engine joins it
    // to the alarm it raised, so nothing is doubled.
    if (!cleared) this.ctx.counters.inc('modbus.latch-clear.failed');
    // A latched input other than the committed ones waits for the next poll (due at once).
    if (latched.length > committed.length) m.nextFastAt = 0;
  }

  private async writeCoils(w: CoilWrite): Promise<void> {
    const m = this.modules.get(w.unitId);
    if (!m) return;
    const coils = m.map.coils.filter((c) => c.role === 'sounder' || c.role === 'strobe');
    for (const coil of coils) {
      const ok = await this.request(m, `switch ${coil.name}`, (c) => c.writeCoil(coil.address, w.on));
      if (!ok) {
        if (++w.attempts < 5) this.queueCoils(w);
        // Given up: the outbox re-sends the alert later, and it is tried again then.
        else if (w.alert) m.book.settle(w.alert.alarmId, w.alert.rev, false);
        return;
      }
    }
    this.log.info({ deviceId: m.device.id, on: w.on, alarmId: w.alert?.alarmId }, w.on ? 'sounder on' : 'sounder off');
    if (w.alert) {
      m.book.settle(w.alert.alarmId, w.alert.rev, true);
      this.ctx.delivered(w.alert.shopId, w.alert.alarmId, w.alert.rev, m.device.id);
    }
  }
}

/** The event a latched input stands for; generic inputs have no meaning yet and raise nothing. */
function latchedEvent(input: DiscreteInputDef): UnnumberedEvent | null {
  switch (input.role) {
    case 'panic':
      return { type: 'panic' };
    case 'tamper':
      return { type: 'tamper', active: true };
    default:
      return null;
  }
}

/**
 * Read one discrete input from each unit id in the range; those that answer (data or an exception)
 * are on the bus. Used by a running bridge between polls and by `lianfang bus scan` on a free port.
 */
export async function scanModbus(client: Client, opts: ScanOptions, restoreTimeoutMs: number, known: Map<number, string>): Promise<ScanHit[]> {
  const hits: ScanHit[] = [];
  client.setTimeout(opts.timeoutMs);
  try {
    for (let unit = opts.from; unit <= opts.to; unit++) {
      client.setID(unit);
      try {
        const r = await client.readDiscreteInputs(0, 1);
        hits.push({ address: unit, deviceId: known.get(unit) ?? null, detail: `inputs answer (input 0 = ${r.data[0] ? 1 : 0})` });
      } catch (err) {
        const code = exceptionCode(err);
        if (code !== undefined) hits.push({ address: unit, deviceId: known.get(unit) ?? null, detail: `answers with exception ${code}` });
        else if (!isTimeout(err)) throw err;
      }
    }
  } finally {
    client.setTimeout(restoreTimeoutMs);
  }
  return hits;
}
