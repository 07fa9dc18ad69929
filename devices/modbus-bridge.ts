/**
 * The Modbus bridge: one loop per bus (an RTU line or a TCP endpoint) over modbus-serial, one
 * request at a time, a timeout on every request (modbus-serial waits for ever by default).
 *
 * Each I/O module's panic inputs are read every `panicPollMs`, all its inputs every `doorPollMs`.
 * A latched input that reads 1 becomes an event; once the ingest has committed it, the bridge writes
 * the latch-clear register with exactly the bits of the committed inputs, so an input that latched
 * between the read and the clear stays latched for the next read (firmware-contracts/modbus/SPEC.md).
 * A door contact with a change latch (door-latch-8io) is read with the module's inputState on the
 * full read: its latch says an edge happened, the level says which, so a door opened and closed
 * between two reads is reported as an opening and a closing (`doorReadings`). A door's level last
 * committed starts from its latest stored door event, so one that moved while the gateway was down
 * is reported at the first full read (`startingLevels`).
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
import { isChangeLatch, loadRegisterMap, latchClearMask, type RegisterMap, type DiscreteInputDef } from '../firmware-contracts/modbus/register-map.js';
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
  /**
   * The unlatched inputs (generic-8io's door contact), by address: the level last committed (for a
   * door; for others the level last read), unknown until the first read (a door: from its latest
   * stored event, if it has one; startingLevels).
   */
  live: Map<number, boolean>;
  /** Door contacts with a change latch, by address (read on full reads only, with inputState). */
  doors: Map<number, DoorLatch>;
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

/** What the bridge knows of a door contact with a change latch. */
export interface DoorLatch {
  /** The level last committed (open = true): at the start, its latest stored event's; undefined (none) until the first full read. */
  reported: boolean | undefined;
  /** Its events were committed but the latch-clear that followed failed: the latch may still be theirs. */
  clearUnconfirmed: boolean;
}

/** What one input's read asks for: its events, committed in order, then (if `clear`) its latch cleared. */
interface InputReport {
  input: DiscreteInputDef;
  events: UnnumberedEvent[];
  clear: boolean;
  /** A door with a change latch: its committed level moves with each event, its clear is tracked. */
  door?: DoorLatch;
  /** A live door: the level its event committed becomes the one known. */
  live?: true;
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
        const { live, doors } = startingLevels(map, device);
        return {
          device,
          unitId: device.address,
          map,
          fastCount: panicAddrs.length ? Math.max(...panicAddrs) + 1 : 0,
          fullCount: Math.max(...map.discreteInputs.map((i) => i.address)) + 1,
          nextFastAt: now,
          nextFullAt: now,
          live,
          doors,
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
    // The level of the change-latched doors, read after their latches: an edge between the two
    // reads shows as a level that changed with no latch yet, and is reported (doorReadings).
    let levels = 0;
    if (full && m.doors.size > 0) {
      const state = await this.request(m, 'read inputState', (c) => c.readHoldingRegisters(m.map.holdingRegisters.inputState!.address, 1));
      // Nothing is reported from half a poll: every latch stays set and is read again.
      if (!state) return;
      levels = state.data[0] ?? 0;
    }
    const bits = read.data;
    const latched: DiscreteInputDef[] = [];
    const reports: InputReport[] = [];
    for (const input of m.map.discreteInputs) {
      if (input.address >= count) continue;
      const v = !!bits[input.address];
      if (isChangeLatch(input)) {
        const door = full ? m.doors.get(input.address) : undefined;
        if (door) {
          const level = ((levels >> input.address) & 1) === 1;
          const r = doorReadings(door, v, level);
          // Nothing to report: the level is the one known (or, at the first read, becomes it).
          if (r.opens.length === 0) door.reported = level;
          if (!v) door.clearUnconfirmed = false;
          if (r.opens.length || r.clear) reports.push({ input, events: r.opens.map((open) => ({ type: 'door', open })), clear: r.clear, door });
        }
        continue;
      }
      if (input.latched) {
        if (!v) continue;
        latched.push(input);
        const event = latchedEvent(input);
        if (event) reports.push({ input, events: [event], clear: true });
        continue;
      }
      const before = m.live.get(input.address);
      // A door's level is known once its event is committed: one that failed is sent again.
      if (before === undefined || input.role !== 'door') m.live.set(input.address, v);
      else if (before !== v) reports.push({ input, events: [{ type: 'door', open: v }], clear: false, live: true });
    }
    if (reports.length === 0) return;
    const committed: number[] = [];
    await Promise.all(
      reports.map(async (r) => {
        // One input's events in order: a door's closing is not sent before its opening is stored.
        for (const event of r.events) {
          if (!(await this.commit(m, r.input, event))) return;
          if (event.type !== 'door') continue;
          if (r.door) r.door.reported = event.open;
          if (r.live) m.live.set(r.input.address, event.open);
        }
        if (r.clear) committed.push(r.input.address);
      }),
    );
    if (committed.length === 0) return;
    const mask = latchClearMask(committed);
    const cleared = await this.request(m, 'latch-clear', (c) => c.writeRegister(m.map.holdingRegisters.latchClear.address, mask));
    for (const r of reports) if (r.door && committed.includes(r.input.address)) r.door.clearUnconfirmed = !cleared;
    // Not cleared: the latch reads 1 again and the event is ingested again; the engine joins it
    // to the alarm it raised, so nothing is doubled (a door's is recognised by doorReadings).
    if (!cleared) this.ctx.counters.inc('modbus.latch-clear.failed');
    // A latched input other than the committed ones waits for the next poll (due at once).
    if (latched.some((i) => !committed.includes(i.address))) m.nextFastAt = 0;
  }

  /** Hand one event to the ingest; true once it is committed. A failure is logged, and the input's latch stays set. */
  private async commit(m: Module, input: DiscreteInputDef, event: UnnumberedEvent): Promise<boolean> {
    const numbered = { ...event, boot: m.boot, seq: ++m.seq, input: input.name } as unknown as DeviceEvent;
    try {
      await this.ctx.ingest(m.device.id, numbered, 'modbus');
      this.stats.events++;
      return true;
    } catch (err) {
      this.log.error({ err, deviceId: m.device.id, input: input.name }, 'event not stored: its latch stays set and it is read again');
      return false;
    }
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

/**
 * Where a module's door levels start when the bridge starts polling it (SPEC.md "The first read
 * after a start"): the level last committed is the one its latest stored door event says
 * (WiredDevice.doorLevels), so a door that opened or closed while the gateway was down differs
 * from it at the first full read and is reported. A door with no stored event starts unknown, as
 * each model's first read then decides (a live door's level is only noted; a change latch is
 * taken against a closed door).
 */
function startingLevels(map: RegisterMap, device: WiredDevice): { live: Map<number, boolean>; doors: Map<number, DoorLatch> } {
  const doorInputs = map.discreteInputs.filter((i) => i.role === 'door');
  const stored = doorInputs.length > 0 ? (device.doorLevels?.() ?? {}) : {};
  const live = new Map<number, boolean>();
  const doors = new Map<number, DoorLatch>();
  for (const input of doorInputs) {
    const level = Object.hasOwn(stored, input.name) ? stored[input.name] : undefined;
    if (isChangeLatch(input)) doors.set(input.address, { reported: level, clearUnconfirmed: false });
    else if (!input.latched && level !== undefined) live.set(input.address, level);
  }
  return { live, doors };
}

/**
 * What a full read of a door contact with a change latch means (SPEC.md "Change latches"): the door
 * levels to report, in order, and whether its latch is to be cleared once they are committed.
 * `latch` is what FC02 read, `level` the inputState bit read after it. The latch says the door
 * moved since the last clear; the level, against the level last committed, says how:
 * - a different level: it moved once (or an odd number of times): one event;
 * - the same level with the latch set: it opened and closed (or closed and opened): two events;
 * - the same level, the latch set, and the last clear of it unconfirmed (it failed): the latch is
 *   taken as the events already committed, cleared again, and nothing is reported twice;
 * - a different level with no latch: the edge came after the FC02 read (or between an earlier
 *   read and its clear), so it is reported and the latch it set is cleared with it.
 * A door with no stored event starts with its level unknown (startingLevels): a latch set at its
 * first read is taken against a closed door (a door opened and closed while the bridge was not
 * polling is reported, not dropped); with no latch the level is only noted.
 */
export function doorReadings(door: Readonly<DoorLatch>, latch: boolean, level: boolean): { opens: boolean[]; clear: boolean } {
  if (!latch) {
    if (door.reported === undefined || door.reported === level) return { opens: [], clear: false };
    return { opens: [level], clear: true };
  }
  const before = door.reported ?? false;
  if (level !== before) return { opens: [level], clear: true };
  if (door.clearUnconfirmed) return { opens: [], clear: true };
  return { opens: [!level, level], clear: true };
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
