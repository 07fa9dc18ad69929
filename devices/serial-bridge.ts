/**
 * The serial bridge: the gateway as master of an RS-485 keypad line (firmware-contracts/serial/SPEC.md).
 * One loop per line polls each keypad address in turn; a keypad answers with its queued events or
 * NOTHING. Each event is handed to the one ingest the moment its last byte is in (the frame is
 * length-prefixed, no inter-byte timer), and the cumulative ACK goes out only after the commit.
 * Commands (display, buzzer, LED) are sent in the keypad's turn and count as delivered when the
 * keypad confirms them (CMD_ACK).
 *
 * Bad CRC, bad MAC, truncated frames, glued frames and noise: the bad ones are dropped and counted,
 * the good ones around them still decoded (the decoder resynchronises on SYNC). A frame with a wrong
 * MAC is never an event: a CRC stops line noise, not a forged frame from a tapped line.
 */
import { SerialPort } from 'serialport';
import type { DeviceCommand, DeviceEvent, ShopAlert } from '../firmware-contracts/mqtt/payloads.js';
import {
  encodeFrame,
  FrameDecoder,
  isEventFrame,
  isFromKeypad,
  longestAnswerBytes,
  MsgType,
  parseFrame,
  type CommandFrame,
  type EventFrame,
  type KeypadFrame,
  type RawFrame,
} from '../firmware-contracts/serial/codec.js';
import { alertDisplay, renderDisplay } from '../firmware-contracts/serial/display.js';
import { sendPaced, wireTimeMs } from '../firmware-contracts/wire-timing.js';
import { AlertBook, backoffMs, pause, syncByAddress, type BridgeClock, type BridgeContext, type BridgeCounters, type BridgeLog, type BusDriver, type BusPort, type ScanHit, type ScanOptions, type WiredDevice } from './bridge.js';

/** A serial line: a keypad bus, or a Modbus RTU one. */
export type SerialPortSpec = Extract<BusPort, { path: string }>;

/**
 * A line's characters are 11 bits (firmware-contracts/serial/SPEC.md, as Modbus RTU): start, 8 data,
 * even or odd parity, stop; without parity a second stop bit takes its place.
 */
export const stopBitsFor = (parity: SerialPortSpec['parity']): 1 | 2 => (parity !== 'none' ? 1 : 2);

interface Exchange {
  addr: number;
  /** `at`: performance.now() when the frame's last byte was read (a latency measurement only). */
  onFrame(raw: RawFrame, at: number): boolean;
  /** Bytes that were not a frame arrived during the exchange. */
  onBad(): void;
  finish(): void;
}

/**
 * A serial port, its decoder and the master's request/answer exchange: shared by the bridge's loop
 * and by `lianfang bus scan` on a port no gateway holds.
 */
export class SerialLine {
  private serial: SerialPort | null = null;
  private readonly decoder = new FrameDecoder();
  private current: Exchange | null = null;
  /** Called for each well-framed keypad frame that no exchange was waiting for. */
  onStray: (raw: RawFrame) => void = () => {};
  onClose: () => void = () => {};

  constructor(
    readonly port: SerialPortSpec,
    private readonly log: BridgeLog,
    private readonly counters: BridgeCounters,
    private readonly clock: BridgeClock,
  ) {}

  get isOpen(): boolean {
    return this.serial?.isOpen ?? false;
  }

  async open(): Promise<void> {
    const { path, baud, parity } = this.port;
    const serial = new SerialPort({ path, baudRate: baud, parity, stopBits: stopBitsFor(parity), autoOpen: false });
    await new Promise<void>((resolve, reject) => serial.open((err) => (err ? reject(err) : resolve())));
    this.serial = serial;
    serial.on('data', (chunk: Buffer) => this.onData(chunk));
    serial.on('error', (err) => this.log.warn({ err: err.message }, 'serial port error'));
    serial.on('close', () => {
      if (this.serial !== serial) return;
      this.serial = null;
      this.current?.finish();
      this.onClose();
    });
  }

  async close(): Promise<void> {
    const serial = this.serial;
    this.serial = null;
    this.current?.finish();
    if (serial?.isOpen) await new Promise<void>((resolve) => serial.close(() => resolve()));
  }

  /** Wire time of `bytes` on this line. */
  wireMs(bytes: number): number {
    return wireTimeMs(bytes, this.port.baud);
  }

  /** Send a frame that expects no answer; resolves when its last bit is on the wire (paced in real time: the wire's own). */
  async send(frame: Buffer): Promise<void> {
    const serial = this.serial;
    if (serial) await sendPaced((b) => serial.write(b), frame, this.port.baud);
  }

  /**
   * Send `frame` to `addr` and hand each frame that address answers to `onFrame` until it returns
   * true (the answer is complete) or `timeoutMs` passes. Resolves true when the answer completed.
   */
  exchange(addr: number, frame: Buffer, timeoutMs: number, onFrame: (raw: RawFrame, at: number) => boolean, onBad: () => void = () => {}): Promise<boolean> {
    if (!this.serial) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let done = false;
      const end = (complete: boolean) => {
        if (done) return;
        done = true;
        timer.cancel();
        if (this.current === ex) this.current = null;
        resolve(complete);
      };
      const ex: Exchange = {
        addr,
        onFrame: (raw, at) => {
          const complete = onFrame(raw, at);
          if (complete) end(true);
          return true;
        },
        onBad,
        finish: () => end(false),
      };
      const timer = this.clock.setTimer(timeoutMs, () => end(false));
      this.current = ex;
      this.serial!.write(frame);
    });
  }

  private onData(chunk: Buffer): void {
    // For the last-byte-to-commit latency only (the writer's commit time is performance.now() too).
    const at = performance.now();
    for (const r of this.decoder.push(chunk)) {
      if (!r.ok) {
        this.counters.inc(`serial.frames.dropped.${r.reason}`);
        this.current?.onBad();
        this.log.debug({ reason: r.reason, bytes: r.bytes }, 'dropped bytes that were not a frame');
        continue;
      }
      // On a two-wire line the master may hear its own frames: only keypad frames matter.
      if (!isFromKeypad(r.frame.type)) continue;
      if (this.current && this.current.addr === r.frame.addr) this.current.onFrame(r.frame, at);
      else this.onStray(r.frame);
    }
  }
}

interface PendingCommand {
  frame: CommandFrame extends infer C ? (C extends unknown ? Omit<C, 'addr' | 'boot' | 'seq'> : never) : never;
  /** The alert this command shows or ends: its confirmation is the shop's delivery. */
  alert?: { shopId: string; alarmId: string; rev: number };
  attempts: number;
}

/** The frame that carries a command on a keypad (which has no sounder). */
function frameFor(c: DeviceCommand): PendingCommand['frame'] | null {
  switch (c.command) {
    case 'display':
      return { type: 'DISPLAY', lines: renderDisplay([c.text ?? '', c.line2 ?? '']).lines };
    case 'led':
      return { type: 'LED', colour: c.colour ?? 'off', blink: c.blink ?? false };
    case 'buzzer':
      return { type: 'BUZZER', on: c.on ?? false, seconds: c.seconds ?? 0 };
    default:
      return null;
  }
}

interface Keypad {
  device: WiredDevice;
  key: Buffer;
  commands: PendingCommand[];
  book: AlertBook;
  /** The last event dropped for a flood (acknowledged, not stored): the next one is not a gap. */
  floodMark?: { boot: number; seq: number };
}

export class SerialBusDriver implements BusDriver {
  private readonly line: SerialLine;
  private readonly keypads = new Map<number, Keypad>();
  private readonly abort = new AbortController();
  private scanning: { opts: ScanOptions; resolve: (h: ScanHit[]) => void; reject: (e: unknown) => void } | null = null;
  /**
   * The gateway's command counter: a new boot per start of the bus, from the store (the last one
   * + 1; seconds since the epoch the first time), so it only increases even when the clock went back.
   */
  private readonly cmdBoot: number;
  private cmdSeq = 0;
  private openFailures = 0;
  private readonly loop: Promise<void>;

  constructor(
    readonly port: SerialPortSpec,
    private readonly ctx: BridgeContext,
    devices: WiredDevice[],
  ) {
    this.cmdBoot = ctx.nextCommandBoot();
    this.line = new SerialLine(port, ctx.log, ctx.counters, ctx.clock);
    this.line.onStray = (raw) => {
      ctx.counters.inc('serial.frames.unexpected');
      ctx.log.debug({ addr: raw.addr }, 'a frame nobody asked for');
    };
    this.line.onClose = () => ctx.log.warn({ path: port.path }, 'serial port closed; reopening');
    // iconv-lite builds its GBK tables on first use (tens of ms): do it now, not in the first alarm.
    alertDisplay('1号', '店');
    this.setDevices(devices);
    this.loop = this.run();
  }

  setDevices(devices: WiredDevice[]): void {
    const create = (device: WiredDevice): Keypad | null => {
      if (!device.macKey) {
        this.ctx.log.error({ deviceId: device.id }, device.macKeyMissing ?? 'serial keypad without a MAC key: not polled');
        return null;
      }
      return { device, key: device.macKey, commands: [], book: new AlertBook() };
    };
    // A keypad given a new MAC key (`device rotate`) is held anew with it: from now on frames
    // signed with the old key fail their MAC.
    const sameKey = (k: Keypad, fresh: WiredDevice) => k.device.id === fresh.id && fresh.macKey !== null && k.key.equals(fresh.macKey);
    syncByAddress(this.keypads, devices, this.ctx.link, create, undefined, sameKey);
  }

  servesShop(shopId: string): boolean {
    for (const k of this.keypads.values()) if (k.device.shopId === shopId) return true;
    return false;
  }

  alert(shopId: string, alert: ShopAlert): void {
    const seconds = this.ctx.config.serial.buzzerSeconds;
    for (const k of this.keypads.values()) {
      if (k.device.shopId !== shopId) continue;
      const action = k.book.decide(alert);
      const tag = { shopId, alarmId: alert.alarmId, rev: alert.rev };
      if (action === 'skip') continue;
      if (action === 'confirm') {
        k.book.settle(alert.alarmId, alert.rev, true);
        this.ctx.delivered(shopId, alert.alarmId, alert.rev, k.device.id);
        continue;
      }
      // What is still queued is about what the keypad showed before: this replaces it.
      for (const c of k.commands) if (c.alert) k.book.settle(c.alert.alarmId, c.alert.rev, false);
      k.commands = [];
      const show = action === 'show';
      const display = show ? alertDisplay(alert.doorPlate, alert.originName) : renderDisplay(['', '']);
      // One command per keypad per round of polls: the buzzer first (it is what gets a neighbour's
      // attention), then the display, whose confirmation says the keypad shows (or has cleared) the alert.
      k.commands.push(
        { frame: { type: 'BUZZER', on: show, seconds: show ? seconds : 0 }, attempts: 0 },
        { frame: { type: 'DISPLAY', lines: display.lines }, alert: tag, attempts: 0 },
        { frame: { type: 'LED', colour: show ? 'red' : 'off', blink: show }, attempts: 0 },
      );
    }
  }

  keypadCommand(deviceId: string, commands: readonly DeviceCommand[]): void {
    for (const k of this.keypads.values()) {
      if (k.device.id !== deviceId) continue;
      for (const c of commands) {
        const frame = frameFor(c);
        if (!frame) continue;
        // A newer answer replaces one of the same kind not yet sent (the keypad shows one text).
        k.commands = k.commands.filter((q) => q.alert || q.frame.type !== frame.type);
        k.commands.push({ frame, attempts: 0 });
      }
    }
  }

  scan(opts: ScanOptions): Promise<ScanHit[]> {
    if (this.scanning) return Promise.reject(new Error('a scan of this bus is already running'));
    return new Promise((resolve, reject) => (this.scanning = { opts, resolve, reject }));
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  // ---------------------------------------------------------------- the loop

  private async run(): Promise<void> {
    const { signal } = this.abort;
    const { serial } = this.ctx.config;
    while (!signal.aborted) {
      if (!this.line.isOpen) {
        try {
          await this.line.open();
          if (this.openFailures > 0) this.ctx.log.info({ path: this.port.path }, 'serial port open again');
          this.openFailures = 0;
          this.ctx.port?.opened();
        } catch (err) {
          this.openFailures++;
          this.ctx.port?.openFailed(this.openFailures, err as Error);
          if (this.openFailures <= 3 || this.openFailures % 20 === 0) {
            this.ctx.log.warn({ path: this.port.path, err: (err as Error).message, failures: this.openFailures }, 'cannot open the serial port; retrying');
          }
          await pause(this.ctx.clock, backoffMs(this.openFailures, serial.reopenBackoffMs, serial.reopenBackoffMaxMs), signal);
        }
        continue;
      }
      if (this.scanning) {
        const s = this.scanning;
        this.scanning = null;
        await scanSerial(this.line, s.opts, new Map([...this.keypads].map(([a, k]) => [a, k.device.id]))).then(s.resolve, s.reject);
        continue;
      }
      for (const [addr, k] of [...this.keypads]) {
        if (signal.aborted || !this.line.isOpen) break;
        if (this.keypads.get(addr) !== k) continue;
        // A keypad being sent an alert is still polled in the same turn: its own 9# must not wait.
        if (k.commands.length > 0) await this.command(addr, k);
        if (this.line.isOpen) await this.poll(addr, k);
      }
      await pause(this.ctx.clock, serial.pollPauseMs, signal);
    }
    await this.line.close();
  }

  private replyTimeout(requestBytes: number, type: Parameters<typeof longestAnswerBytes>[0]): number {
    return this.line.wireMs(requestBytes + longestAnswerBytes(type)) + this.ctx.config.serial.replyTimeoutMs;
  }

  private nextCounter(): { boot: number; seq: number } {
    return { boot: this.cmdBoot, seq: ++this.cmdSeq };
  }

  /**
   * Poll one keypad; ingest each event as it arrives; ACK what was committed. Events are taken in
   * seq order without gaps (firmware-contracts/serial/SPEC.md): a keypad sends its oldest unacked
   * event first, so a gap means a frame of this answer was lost on the line, and what follows the
   * gap waits for the keypad's resend. (A gap in the answer's first frame with no line error means
   * the keypad itself lost events: it is taken, with a warning, or the keypad would be stuck.)
   */
  private async poll(addr: number, k: Keypad): Promise<void> {
    const frame = encodeFrame({ type: 'POLL', addr });
    const ingests: Promise<EventFrame | null>[] = [];
    let heard = false;
    let lineError = false;
    let gap = false;
    const mark = k.device.mark();
    let last = { boot: mark.boot, seq: mark.seq ?? 0 };
    const fm = k.floodMark;
    if (fm && (last.boot === null || fm.boot > last.boot || (fm.boot === last.boot && fm.seq > last.seq))) last = fm;
    await this.line.exchange(
      addr,
      frame,
      this.replyTimeout(frame.length, 'POLL'),
      (raw, at) => {
        const parsed = this.parse(raw, k);
        if (!parsed) {
          lineError = true;
          return false;
        }
        // NOTHING carries no MAC: anyone on a tapped line can answer it, so it proves nothing alive.
        if (parsed.type === 'NOTHING') return true;
        if (!isEventFrame(parsed)) {
          this.ctx.counters.inc('serial.frames.unexpected');
          return false;
        }
        const order = seqOrder(last, parsed);
        if (order === 'gap' && !gap && ingests.length === 0 && !lineError) {
          this.ctx.log.warn({ deviceId: k.device.id, after: last, got: { boot: parsed.boot, seq: parsed.seq } }, 'keypad skipped sequence numbers (events lost in the keypad)');
        } else if (order === 'gap' || gap) {
          gap = true;
          this.ctx.counters.inc('serial.events.after-gap');
          return !parsed.more;
        }
        // A lower boot is not the keypad's sequence as the gateway holds it: the ingest refuses it
        // (and raises the counter-reset fault); the mark stays until the installer resets it.
        if (order === 'next' || order === 'gap') {
          last = { boot: parsed.boot, seq: parsed.seq };
          // A new authenticated event (a HEARTBEAT at the least) is what proves the keypad alive; a
          // replayed old frame is not new.
          heard = true;
        }
        ingests.push(this.ingest(k, parsed, at));
        return !parsed.more;
      },
      () => (lineError = true),
    );
    if (heard) this.ctx.link.seen(k.device.id);
    if (lineError) this.ctx.link.lineError?.(k.device.id);
    if (ingests.length === 0) return;
    // Cumulative ACK: up to the last event committed before the first that was not.
    let acked: EventFrame | null = null;
    for (const f of await Promise.all(ingests)) {
      if (!f) break;
      acked = f;
    }
    if (!acked || !this.line.isOpen) return;
    await this.line.send(encodeFrame({ type: 'ACK', addr, ...this.nextCounter(), ackBoot: acked.boot, ackSeq: acked.seq }, k.key));
  }

  /** Send the keypad's oldest pending command and wait for its CMD_ACK. */
  private async command(addr: number, k: Keypad): Promise<void> {
    const cmd = k.commands[0]!;
    const counter = this.nextCounter();
    const frame = encodeFrame({ ...cmd.frame, addr, ...counter } as CommandFrame, k.key);
    const confirmed = await this.line.exchange(addr, frame, this.replyTimeout(frame.length, cmd.frame.type), (raw) => {
      const parsed = this.parse(raw, k);
      return parsed?.type === 'CMD_ACK' && parsed.cmdBoot === counter.boot && parsed.cmdSeq === counter.seq;
    });
    if (confirmed) {
      this.ctx.link.seen(k.device.id);
      if (k.commands[0] === cmd) k.commands.shift();
      if (cmd.alert) {
        k.book.settle(cmd.alert.alarmId, cmd.alert.rev, true);
        this.ctx.delivered(cmd.alert.shopId, cmd.alert.alarmId, cmd.alert.rev, k.device.id);
      }
      return;
    }
    this.ctx.counters.inc('serial.commands.unconfirmed');
    if (++cmd.attempts > this.ctx.config.serial.commandRetries && k.commands[0] === cmd) {
      k.commands.shift();
      // An alert's delivery stays pending in the outbox, which re-sends it later; then it is tried again.
      if (cmd.alert) k.book.settle(cmd.alert.alarmId, cmd.alert.rev, false);
      this.ctx.log.warn({ deviceId: k.device.id, command: cmd.frame.type, attempts: cmd.attempts }, 'keypad did not confirm a command; dropped');
    }
  }

  /** Check a frame from keypad `k`: a wrong MAC or layout is dropped and counted, never acted on. */
  private parse(raw: RawFrame, k: Keypad): KeypadFrame | null {
    const r = parseFrame(raw, k.key);
    if (r.ok) return r.frame;
    this.ctx.counters.inc(`serial.frames.rejected.${r.reason}`);
    this.ctx.log.warn({ deviceId: k.device.id, addr: raw.addr, reason: r.reason }, r.reason === 'mac' ? 'frame with a wrong MAC dropped (forged, or the wrong key)' : 'malformed frame dropped');
    return null;
  }

  /**
   * Resolves with the frame once committed, a known duplicate, or refused with its fault committed
   * (all three are acknowledged); null when nothing was committed (not acknowledged: resent).
   *
   * A refused event (its boot went back) is acknowledged too, though not stored: the protocol has no
   * negative answer, and a keypad whose events are never acknowledged resends them at every poll,
   * up to 4 frames (≈ 257 ms at 9600 baud) each round, for as long as it takes an installer to
   * come, slowing every other keypad's 9# on the line; its queue would fill and hold new presses
   * back to raise them hours late after the reset. The console has the counter-reset fault at once,
   * and an ACK of a replayed frame is harmless: the ACK names the replayed boot, and the real keypad
   * drops nothing of another boot.
   */
  private async ingest(k: Keypad, f: EventFrame, lastByteAt: number): Promise<EventFrame | null> {
    try {
      const { outcome, committedAt } = await this.ctx.ingest(k.device.id, toDeviceEvent(f), 'serial');
      if (outcome.status === 'refused') {
        if (outcome.reason === 'flood') k.floodMark = { boot: f.boot, seq: f.seq };
        this.ctx.log.debug({ deviceId: k.device.id, boot: f.boot, seq: f.seq, type: f.type, reason: outcome.reason }, 'event refused (counter went back, or a flood): acknowledged, not stored');
        return f;
      }
      this.ctx.latencies.recordMs('serial.lastByteToCommit', committedAt - lastByteAt);
      return f;
    } catch (err) {
      this.ctx.log.error({ err, deviceId: k.device.id, seq: f.seq }, 'event not stored: not acknowledged, the keypad repeats it');
      return null;
    }
  }
}

/**
 * Where an event stands against the last one taken: `next` in sequence (seq + 1, or seq 1 of a
 * newer boot), `old` (already stored: a repeat, acknowledged again), after a `gap`, or `back`: a
 * lower boot (a factory reset, a replaced keypad, or a replay), refused by the ingest until the
 * installer runs `lianfang device reset-counter`.
 */
export function seqOrder(last: { boot: number | null; seq: number }, f: { boot: number; seq: number }): 'next' | 'old' | 'gap' | 'back' {
  if (last.boot === null || f.boot > last.boot) return f.seq === 1 ? 'next' : 'gap';
  if (f.boot < last.boot) return 'back';
  if (f.seq <= last.seq) return 'old';
  return f.seq === last.seq + 1 ? 'next' : 'gap';
}

/** The contract's event frame as the gateway's device event (the same one MQTT devices send). */
export function toDeviceEvent(f: EventFrame): DeviceEvent {
  const base = { boot: f.boot, seq: f.seq };
  switch (f.type) {
    case 'KEYS':
      return { ...base, type: 'keypad', keys: f.keys };
    case 'PANIC':
      return { ...base, type: 'panic' };
    case 'DOOR':
      return { ...base, type: 'door', open: f.open };
    case 'TAMPER':
      return { ...base, type: 'tamper', active: f.active };
    case 'BATTERY':
      return { ...base, type: 'battery', low: f.low, millivolts: f.millivolts } as DeviceEvent;
    case 'HEARTBEAT':
      return { ...base, type: 'heartbeat' };
    case 'SELFTEST':
      return { ...base, type: 'selftest', result: f.result };
  }
}

/**
 * POLL each address in the range; one that answers with any well-framed frame is on the line.
 * Events it answers with are not acknowledged, so the keypad keeps them for its real poll.
 */
export async function scanSerial(line: SerialLine, opts: ScanOptions, known: Map<number, string>): Promise<ScanHit[]> {
  const hits: ScanHit[] = [];
  for (let addr = opts.from; addr <= opts.to && line.isOpen; addr++) {
    const frame = encodeFrame({ type: 'POLL', addr });
    let what = '';
    await line.exchange(addr, frame, line.wireMs(frame.length) + opts.timeoutMs, (raw) => {
      what = raw.type === MsgType.NOTHING ? 'nothing new' : 'has events queued';
      return true;
    });
    if (what) hits.push({ address: addr, deviceId: known.get(addr) ?? null, detail: `answers (${what})` });
  }
  return hits;
}
