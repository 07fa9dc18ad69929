/**
 * Serial keypads on the real wire: one end of a pty pair (or a real port) carrying an RS-485 line
 * on which this simulator serves several bus addresses, each with its own key, boot, seq and event
 * queue, speaking firmware-contracts/serial/SPEC.md like the firmware does. Frames for addresses it
 * does not serve, and keypad→gateway frames (other keypads' answers), are ignored.
 *
 * A pty moves bytes instantly, so answers are timed as the wire would deliver them: the wire time
 * of the received frame, then the turnaround, then each answer frame is written when its last byte
 * would have arrived (its wire time after the previous one). The receiver decodes a frame when its
 * last byte is in, so writing it any earlier would make the line look faster than it is.
 * (wire-timing's `sendPaced` writes first and waits after, which suits the gateway, whose next
 * request must wait for the line, not a frame whose arrival is being measured.)
 */
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { SerialPort } from 'serialport';
import {
  DISPLAY_LINE_BYTES,
  encodeFrame,
  FrameDecoder,
  isEventFrame,
  isFromKeypad,
  MAX_ADDRESS,
  MAX_EVENTS_PER_ANSWER,
  MIN_ADDRESS,
  parseFrame,
  type AckFrame,
  type CommandFrame,
  type DecodeFailure,
  type EventFrame,
  type KeypadFrame,
  type LedColour,
  type RawFrame,
} from '../firmware-contracts/serial/codec.js';
import { decodeDisplayLine } from '../firmware-contracts/serial/display.js';
import { waitMs, wireTimeMs } from '../firmware-contracts/wire-timing.js';

export interface SimKeypadConfig {
  address: number;
  /** The keypad's 32-byte MAC key, as issued by `device add --transport serial`. */
  key: Buffer;
  /** Power-up count to start from (default 1); `reboot()` increments it. */
  boot?: number;
  /** The gateway's last accepted counter already in flash (default none): a keypad served before. */
  lastAccepted?: { boot: number; seq: number };
  /** This keypad's heartbeat interval, overriding the simulator's `heartbeatMs` (0: none). */
  heartbeatMs?: number;
}

export interface SerialKeypadSimOptions {
  path: string;
  /** Default 9600. */
  baud?: number;
  keypads: SimKeypadConfig[];
  /** Time between the last byte of a request and the first byte of the answer (default 2 ms). */
  turnaroundMs?: number;
  /**
   * A keypad with nothing queued for this long answers a poll with a HEARTBEAT (authenticated)
   * instead of NOTHING, as firmware does, so the gateway's supervision (`supervision.faultAfterMs`,
   * 20 s by default) sees it alive; once a day that answer is a passing SELFTEST. Default 10 s; 0:
   * never (a keypad that answers only NOTHING and sends no self-test of its own).
   */
  heartbeatMs?: number;
}

export interface KeypadSimState {
  buzzer: { on: boolean; seconds: number };
  led: { colour: LedColour; blink: boolean };
  /** The display as text, trailing padding removed. */
  display: [string, string];
  /** The display lines as received: 16 bytes of GBK each. */
  displayRaw: [Buffer, Buffer];
  /** Every command executed, oldest first (repeats of the same command are not executed again). */
  commands: CommandFrame[];
}

export interface SerialKeypadSimStats {
  /** POLL frames for served addresses seen on the line, answered or not. */
  polls: number;
  /** Frames written: events, NOTHING, CMD_ACK. */
  framesSent: number;
  /** Anything dropped: line noise, bad CRC/length, truncated frames, and frames failing parseFrame. */
  badFrames: number;
  /** Of badFrames: authenticated frames with a wrong MAC (forged, or a wrong key). */
  badMacs: number;
  /** Authenticated gateway frames with a (boot, seq) lower than the last accepted one. */
  replays: number;
}

/** Events of the simulator; 'change' follows every frame handled and every API call. */
export type SerialKeypadSimEvents = {
  poll: [address: number];
  sent: [address: number, frame: KeypadFrame];
  ack: [address: number, frame: AckFrame, cleared: number];
  command: [address: number, frame: CommandFrame];
  /** A frame dropped: `address` is undefined when it never got as far as having one. */
  rejected: [address: number | undefined, reason: DecodeFailure | 'mac' | 'payload' | 'type' | 'replay'];
  change: [];
  closed: [];
  error: [err: Error];
};

interface Counter {
  boot: number;
  seq: number;
}

const compareCounters = (a: Counter, b: Counter) => a.boot - b.boot || a.seq - b.seq;

interface SimKeypad {
  address: number;
  key: Buffer;
  boot: number;
  /** seq of the latest event; events are numbered 1, 2, 3… without gaps within one boot. */
  seq: number;
  /** Unacknowledged events, oldest first. */
  queue: EventFrame[];
  silent: boolean;
  /** Heartbeat interval (0: none), and when the keypad last queued an event (performance.now()). */
  heartbeatMs: number;
  lastEventAt: number;
  /** When its last daily self-test was queued (a keypad with heartbeats sends one a day). */
  lastSelfTestAt: number;
  /** The gateway's last accepted counter; kept across reboots, as firmware keeps it in flash. */
  lastAccepted: Counter;
  state: KeypadSimState;
  buzzerTimer?: NodeJS.Timeout;
}

const blankLine = () => Buffer.alloc(DISPLAY_LINE_BYTES, 0x20);

function freshState(commands: CommandFrame[] = []): KeypadSimState {
  return {
    buzzer: { on: false, seconds: 0 },
    led: { colour: 'off', blink: false },
    display: ['', ''],
    displayRaw: [blankLine(), blankLine()],
    commands,
  };
}

/** The fields of one event type, without those the keypad fills in (address, counters, flag). */
type EventFields<T extends EventFrame['type']> = Omit<Extract<EventFrame, { type: T }>, 'addr' | 'boot' | 'seq' | 'more'>;

const SELF_TEST_EVERY_MS = 24 * 3600_000;

export class SerialKeypadSim extends EventEmitter<SerialKeypadSimEvents> {
  readonly baud: number;
  readonly turnaroundMs: number;
  readonly stats: SerialKeypadSimStats = { polls: 0, framesSent: 0, badFrames: 0, badMacs: 0, replays: 0 };
  private readonly keypads = new Map<number, SimKeypad>();
  private readonly decoder = new FrameDecoder();
  private port?: SerialPort;
  private closed = false;
  /** Frames are handled one at a time, in arrival order: one half-duplex line, one talker. */
  private work: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SerialKeypadSimOptions) {
    super();
    this.baud = opts.baud ?? 9600;
    this.turnaroundMs = opts.turnaroundMs ?? 2;
    for (const k of opts.keypads) {
      if (!Number.isInteger(k.address) || k.address < MIN_ADDRESS || k.address > MAX_ADDRESS) {
        throw new RangeError(`bus address must be ${MIN_ADDRESS}..${MAX_ADDRESS}, got ${k.address}`);
      }
      if (this.keypads.has(k.address)) throw new RangeError(`bus address ${k.address} given twice`);
      this.keypads.set(k.address, {
        address: k.address,
        key: k.key,
        boot: k.boot ?? 1,
        seq: 0,
        queue: [],
        silent: false,
        heartbeatMs: k.heartbeatMs ?? opts.heartbeatMs ?? 10_000,
        lastEventAt: performance.now(),
        lastSelfTestAt: performance.now(),
        lastAccepted: { ...(k.lastAccepted ?? { boot: 0, seq: 0 }) },
        state: freshState(),
      });
    }
  }

  /** Open the port; the keypads answer from then on. */
  async start(): Promise<void> {
    const port = new SerialPort({ path: this.opts.path, baudRate: this.baud, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('error', (err) => this.emit('error', err));
    this.port = port;
  }

  /** Close the port and stop every buzzer timer; an answer being timed is not sent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const kp of this.keypads.values()) clearTimeout(kp.buzzerTimer);
    const port = this.port;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    this.emit('closed');
  }

  /** Queue one KEYS event holding `keys` in the order pressed (e.g. "9#"). */
  press(address: number, keys: string): EventFrame {
    return this.queueEvent(address, { type: 'KEYS', keys });
  }

  panic(address: number): EventFrame {
    return this.queueEvent(address, { type: 'PANIC' });
  }

  door(address: number, open: boolean): EventFrame {
    return this.queueEvent(address, { type: 'DOOR', open });
  }

  tamper(address: number, active = true): EventFrame {
    return this.queueEvent(address, { type: 'TAMPER', active });
  }

  battery(address: number, millivolts: number, low = false): EventFrame {
    return this.queueEvent(address, { type: 'BATTERY', millivolts, low });
  }

  heartbeat(address: number): EventFrame {
    return this.queueEvent(address, { type: 'HEARTBEAT' });
  }

  /** `result` 0 is a pass; anything else is the firmware's failure code. */
  selfTest(address: number, result = 0): EventFrame {
    return this.queueEvent(address, { type: 'SELFTEST', result });
  }

  /** What the gateway made the keypad at `address` do (a snapshot). */
  state(address: number): KeypadSimState {
    const s = this.keypad(address).state;
    return {
      buzzer: { ...s.buzzer },
      led: { ...s.led },
      display: [...s.display],
      displayRaw: [Buffer.from(s.displayRaw[0]), Buffer.from(s.displayRaw[1])],
      commands: [...s.commands],
    };
  }

  /** Events of `address` not yet acknowledged. */
  pending(address: number): number {
    return this.keypad(address).queue.length;
  }

  /** The keypad's (boot, seq of its latest event). */
  counter(address: number): Counter {
    const kp = this.keypad(address);
    return { boot: kp.boot, seq: kp.seq };
  }

  /** The gateway's last accepted (boot, seq), as the keypad keeps it. */
  gatewayCounter(address: number): Counter {
    return { ...this.keypad(address).lastAccepted };
  }

  /** Change the keypad's heartbeat interval (0: it answers polls with NOTHING only). */
  setHeartbeat(address: number, everyMs: number): void {
    const kp = this.keypad(address);
    kp.heartbeatMs = everyMs;
    kp.lastEventAt = performance.now();
  }

  /** A silent keypad ignores everything on the line (as if unplugged); polls are still counted. */
  setSilent(address: number, silent: boolean): void {
    this.keypad(address).silent = silent;
    this.emit('change');
  }

  /**
   * A power cut: boot + 1, seq from 1 again. The event queue, display, LED and buzzer are RAM and
   * lost (an unacknowledged event is gone, as on the firmware); the gateway's last accepted counter
   * is kept, so commands captured before the reboot are still replays.
   */
  reboot(address: number): void {
    const kp = this.keypad(address);
    clearTimeout(kp.buzzerTimer);
    kp.boot++;
    kp.seq = 0;
    kp.queue = [];
    kp.state = freshState(kp.state.commands);
    this.emit('change');
  }

  /** Write bytes to the line as they are (noise, forged frames), without pacing. */
  sendRaw(buf: Buffer): void {
    this.port?.write(buf);
  }

  /**
   * Resolve once `predicate` holds, checked now and after every change; reject after `timeoutMs`
   * (a guard for tests that would otherwise hang, not a timing assertion).
   */
  waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.off('change', check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('change', check);
        reject(new Error(`serial keypad simulator: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('change', check);
    });
  }

  private keypad(address: number): SimKeypad {
    const kp = this.keypads.get(address);
    if (!kp) throw new RangeError(`the simulator does not serve bus address ${address}`);
    return kp;
  }

  private queueEvent<T extends EventFrame['type']>(address: number, fields: EventFields<T> & { type: T }): EventFrame {
    const kp = this.keypad(address);
    const frame = { ...fields, addr: address, boot: kp.boot, seq: kp.seq + 1 } as EventFrame;
    encodeFrame(frame, kp.key); // throws for what the contract cannot carry, before it is queued
    kp.seq++;
    kp.queue.push(frame);
    kp.lastEventAt = performance.now();
    this.emit('change');
    return frame;
  }

  private onData(chunk: Buffer): void {
    const receivedAt = performance.now();
    for (const result of this.decoder.push(chunk)) {
      if (!result.ok) {
        this.stats.badFrames++;
        this.emit('rejected', undefined, result.reason);
        this.emit('change');
        continue;
      }
      this.work = this.work
        .then(() => this.handle(result.frame, receivedAt))
        .catch((err: Error) => void this.emit('error', err))
        .finally(() => this.emit('change'));
    }
  }

  private async handle(raw: RawFrame, receivedAt: number): Promise<void> {
    const kp = this.keypads.get(raw.addr);
    if (!kp || isFromKeypad(raw.type)) return;
    const parsed = parseFrame(raw, kp.key);
    if (!parsed.ok) {
      this.stats.badFrames++;
      if (parsed.reason === 'mac') this.stats.badMacs++;
      this.emit('rejected', kp.address, parsed.reason);
      return;
    }
    const frame = parsed.frame;
    if (frame.type === 'POLL') {
      this.stats.polls++;
      this.emit('poll', kp.address);
    }
    if (kp.silent) return;
    switch (frame.type) {
      case 'POLL':
        return this.answer(kp, this.pollAnswer(kp), raw, receivedAt);
      case 'ACK':
        return this.onAck(kp, frame);
      case 'BUZZER':
      case 'LED':
      case 'DISPLAY':
        return this.onCommand(kp, frame, raw, receivedAt);
    }
  }

  /** Up to MAX_EVENTS_PER_ANSWER queued events, oldest first, or NOTHING. */
  private pollAnswer(kp: SimKeypad): KeypadFrame[] {
    const now = performance.now();
    if (kp.queue.length === 0 && kp.heartbeatMs > 0 && now - kp.lastEventAt >= kp.heartbeatMs) {
      // As firmware does: a passing SELFTEST once a day (the gateway's selftest-missed is 25 h), else a HEARTBEAT.
      if (now - kp.lastSelfTestAt >= SELF_TEST_EVERY_MS) {
        kp.lastSelfTestAt = now;
        this.selfTest(kp.address, 0);
      } else this.heartbeat(kp.address);
    }
    if (kp.queue.length === 0) return [{ type: 'NOTHING', addr: kp.address }];
    const events = kp.queue.slice(0, MAX_EVENTS_PER_ANSWER);
    return events.map((e, i) => ({ ...e, more: i < events.length - 1 }));
  }

  /** False (and counted) when `frame`'s counter is below the last accepted one. */
  private fresh(kp: SimKeypad, frame: Counter): boolean {
    if (compareCounters(frame, kp.lastAccepted) >= 0) return true;
    this.stats.replays++;
    this.emit('rejected', kp.address, 'replay');
    return false;
  }

  private onAck(kp: SimKeypad, frame: AckFrame): void {
    // An ACK changes nothing when repeated, so an equal counter is as good as a higher one.
    if (!this.fresh(kp, frame)) return;
    kp.lastAccepted = { boot: frame.boot, seq: frame.seq };
    if (frame.ackBoot !== kp.boot) return;
    const before = kp.queue.length;
    kp.queue = kp.queue.filter((e) => e.seq > frame.ackSeq);
    this.emit('ack', kp.address, frame, before - kp.queue.length);
  }

  /**
   * A new command is executed and answered with CMD_ACK; the same command again (its CMD_ACK was
   * lost) is answered again but not executed twice; an older one is a replay and ignored.
   */
  private async onCommand(kp: SimKeypad, frame: CommandFrame, raw: RawFrame, receivedAt: number): Promise<void> {
    if (!this.fresh(kp, frame)) return;
    if (compareCounters(frame, kp.lastAccepted) > 0) {
      kp.lastAccepted = { boot: frame.boot, seq: frame.seq };
      this.execute(kp, frame);
    }
    const ack: KeypadFrame = { type: 'CMD_ACK', addr: kp.address, boot: kp.boot, seq: kp.seq, cmdBoot: frame.boot, cmdSeq: frame.seq };
    await this.answer(kp, [ack], raw, receivedAt);
  }

  private execute(kp: SimKeypad, frame: CommandFrame): void {
    const s = kp.state;
    switch (frame.type) {
      case 'BUZZER':
        clearTimeout(kp.buzzerTimer);
        s.buzzer = { on: frame.on, seconds: frame.seconds };
        if (frame.on && frame.seconds > 0) {
          kp.buzzerTimer = setTimeout(() => {
            kp.state.buzzer = { on: false, seconds: 0 };
            this.emit('change');
          }, frame.seconds * 1000).unref();
        }
        break;
      case 'LED':
        s.led = { colour: frame.colour, blink: frame.blink };
        break;
      case 'DISPLAY':
        s.displayRaw = frame.lines;
        s.display = [decodeDisplayLine(frame.lines[0]), decodeDisplayLine(frame.lines[1])];
        break;
    }
    s.commands.push(frame);
    this.emit('command', kp.address, frame);
  }

  /**
   * Send `frames` back to back as an answer to `request`: after its wire time and the turnaround,
   * each frame written when its last byte would arrive.
   */
  private async answer(kp: SimKeypad, frames: KeypadFrame[], request: RawFrame, receivedAt: number): Promise<void> {
    let due = receivedAt + wireTimeMs(request.raw.length, this.baud) + this.turnaroundMs;
    for (const frame of frames) {
      const bytes = encodeFrame(frame, kp.key);
      due += wireTimeMs(bytes.length, this.baud);
      await waitMs(due - performance.now());
      if (this.closed || !this.port) return;
      this.port.write(bytes);
      this.stats.framesSent++;
      this.emit('sent', kp.address, frame);
    }
  }
}

/** A command as one line of text, e.g. "DISPLAY 报警 23号 / 李记茶行", "BUZZER on 60s". */
export function describeCommand(frame: CommandFrame): string {
  switch (frame.type) {
    case 'BUZZER':
      return frame.on ? `BUZZER on ${frame.seconds > 0 ? `${frame.seconds}s` : 'until off'}` : 'BUZZER off';
    case 'LED':
      return `LED ${frame.colour}${frame.blink ? ' blinking' : ''}`;
    case 'DISPLAY':
      return `DISPLAY ${decodeDisplayLine(frame.lines[0])} / ${decodeDisplayLine(frame.lines[1])}`;
  }
}

function eventDetail(frame: EventFrame): string {
  switch (frame.type) {
    case 'KEYS':
      return ` ${frame.keys}`;
    case 'DOOR':
      return frame.open ? ' open' : ' closed';
    case 'TAMPER':
      return frame.active ? ' active' : ' cleared';
    case 'BATTERY':
      return ` ${frame.millivolts} mV${frame.low ? ' low' : ''}`;
    case 'SELFTEST':
      return ` result ${frame.result}`;
    default:
      return '';
  }
}

/** An event as one line of text, e.g. "KEYS 9# (boot 1, seq 4)". */
export function describeEvent(frame: EventFrame): string {
  return `${frame.type}${eventDetail(frame)} (boot ${frame.boot}, seq ${frame.seq})`;
}

export const STDIN_USAGE =
  '<addr> <keys> (e.g. "3 9#") | <addr> panic | heartbeat | reboot | door open|closed | tamper on|off | ' +
  'battery <mV> [low] | selftest [result] | silent on|off';

/**
 * Apply one line typed by a person to the simulator; returns what went wrong, or undefined.
 * Called by runSerialKeypadSim for each line of its input.
 */
export function applyInputLine(sim: SerialKeypadSim, line: string): string | undefined {
  const [addrText, verb, arg, extra] = line.trim().split(/\s+/);
  const addr = Number(addrText);
  if (!verb || !Number.isInteger(addr)) return `usage: ${STDIN_USAGE}`;
  const onOff = arg === 'on' || arg === 'off';
  try {
    if (/^[0-9*#]+$/.test(verb)) sim.press(addr, verb);
    else if (verb === 'panic') sim.panic(addr);
    else if (verb === 'heartbeat') sim.heartbeat(addr);
    else if (verb === 'reboot') sim.reboot(addr);
    else if (verb === 'door' && (arg === 'open' || arg === 'closed')) sim.door(addr, arg === 'open');
    else if (verb === 'tamper' && onOff) sim.tamper(addr, arg === 'on');
    else if (verb === 'battery' && arg !== undefined) sim.battery(addr, Number(arg), extra === 'low');
    else if (verb === 'selftest') sim.selfTest(addr, Number(arg ?? 0));
    else if (verb === 'silent' && onOff) sim.setSilent(addr, arg === 'on');
    else return `usage: ${STDIN_USAGE}`;
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/**
 * Run the simulator for `lianfang simulate keypad`: every command received, event sent and ACK is
 * written to `log` as one line of text; each line of `input` is applied with applyInputLine. The
 * caller closes the returned simulator.
 */
export async function runSerialKeypadSim(
  opts: SerialKeypadSimOptions,
  log: (line: string) => void,
  input: NodeJS.ReadableStream = process.stdin,
): Promise<SerialKeypadSim> {
  const sim = new SerialKeypadSim(opts);
  sim.on('command', (addr, frame) => log(`addr ${addr} ${describeCommand(frame)}`));
  sim.on('sent', (addr, frame) => {
    if (isEventFrame(frame)) log(`addr ${addr} sent ${describeEvent(frame)}`);
  });
  sim.on('ack', (addr, frame, cleared) => log(`addr ${addr} ACK up to seq ${frame.ackSeq}: ${cleared} event(s) cleared`));
  sim.on('rejected', (addr, reason) => {
    if (addr !== undefined) log(`addr ${addr} frame rejected: ${reason}`);
  });
  sim.on('error', (err) => log(`line error: ${err.message}`));
  await sim.start();
  const addresses = opts.keypads.map((k) => k.address).join(', ');
  log(`serial keypads ${addresses} on ${opts.path} at ${sim.baud} baud; type ${STDIN_USAGE}`);
  const lines = createInterface({ input }).on('line', (line) => {
    if (line.trim() === '') return;
    const problem = applyInputLine(sim, line);
    if (problem) log(problem);
  });
  sim.once('closed', () => lines.close());
  return sim;
}
