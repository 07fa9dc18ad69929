/**
 * Codec of the serial keypad protocol (SPEC.md beside this file): frame layouts as data, encoding,
 * a resynchronising stream decoder, and payload parsing with MAC check. Framing (`FrameDecoder`) and
 * meaning (`parseFrame`) are separate steps because the receiver must pick the key by the frame's
 * address before it can check anything beyond the CRC. Counters (boot, seq) belong to the callers:
 * this module only carries them.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { crc16, crcOk } from '../crc16.js';

export const SYNC_0 = 0xa5;
export const SYNC_1 = 0x5a;
/** SYNC (2) + ADDR + TYPE + LEN: what must be in before the frame's length is known. */
export const HEADER_BYTES = 5;
/** Header + CRC (2): a frame is `FRAME_OVERHEAD_BYTES + LEN` bytes. */
export const FRAME_OVERHEAD_BYTES = HEADER_BYTES + 2;
export const MAX_PAYLOAD_BYTES = 200;
export const MIN_ADDRESS = 1;
export const MAX_ADDRESS = 247;
/** Per-device MAC key length (32 random bytes, issued by `device add --transport serial`). */
export const KEY_BYTES = 32;
/** Truncated HMAC-SHA-256 at the end of every authenticated payload. */
export const MAC_BYTES = 8;
/** boot (u32 BE) + seq (u32 BE) at the start of every authenticated payload. */
export const COUNTER_BYTES = 8;
/** Keys in one KEYS frame, as the MQTT keypad event allows (firmware-contracts/mqtt/payloads.ts). */
export const MAX_KEYS = 32;
/** Bytes per display line: 16 columns of GBK. */
export const DISPLAY_LINE_BYTES = 16;
/** Event frames a keypad sends back to back in answer to one POLL. */
export const MAX_EVENTS_PER_ANSWER = 4;
/** TYPE bit set on every keypad→gateway frame: a frame cannot be reflected back as a command. */
export const FROM_KEYPAD = 0x80;
/** TYPE bit on an event frame of a poll answer when another frame of the same answer follows. */
export const MORE_FOLLOWS = 0x40;

/** TYPE codes without the MORE_FOLLOWS bit. Gateway→keypad below 0x80, keypad→gateway from 0x80. */
export const MsgType = {
  POLL: 0x01,
  ACK: 0x02,
  BUZZER: 0x10,
  LED: 0x11,
  DISPLAY: 0x12,
  NOTHING: 0x81,
  CMD_ACK: 0x82,
  KEYS: 0x90,
  PANIC: 0x91,
  DOOR: 0x92,
  TAMPER: 0x93,
  BATTERY: 0x94,
  HEARTBEAT: 0x95,
  SELFTEST: 0x96,
} as const;
export type MsgTypeName = keyof typeof MsgType;

export const LED_COLOURS = ['off', 'red', 'green', 'amber'] as const;
export type LedColour = (typeof LED_COLOURS)[number];

interface Addressed {
  /** Bus address: the target keypad's on gateway frames, the sender's own on keypad frames. */
  addr: number;
}
interface Counted extends Addressed {
  /** Sender's counter: the keypad's power-up count / the gateway's command counter epoch. */
  boot: number;
  seq: number;
}
interface Answering {
  /** Set on an event frame when another frame of the same poll answer follows it. */
  more?: boolean;
}

export type PollFrame = Addressed & { type: 'POLL' };
export type NothingFrame = Addressed & { type: 'NOTHING' };
export type AckFrame = Counted & { type: 'ACK'; ackBoot: number; ackSeq: number };
export type BuzzerFrame = Counted & { type: 'BUZZER'; on: boolean; seconds: number };
export type LedFrame = Counted & { type: 'LED'; colour: LedColour; blink: boolean };
/** Two lines of exactly 16 bytes of GBK each (see display.ts for rendering text into them). */
export type DisplayFrame = Counted & { type: 'DISPLAY'; lines: [Buffer, Buffer] };
export type CmdAckFrame = Counted & { type: 'CMD_ACK'; cmdBoot: number; cmdSeq: number };
export type KeysFrame = Counted & Answering & { type: 'KEYS'; keys: string };
export type PanicFrame = Counted & Answering & { type: 'PANIC' };
export type DoorFrame = Counted & Answering & { type: 'DOOR'; open: boolean };
export type TamperFrame = Counted & Answering & { type: 'TAMPER'; active: boolean };
export type BatteryFrame = Counted & Answering & { type: 'BATTERY'; millivolts: number; low: boolean };
export type HeartbeatFrame = Counted & Answering & { type: 'HEARTBEAT' };
export type SelfTestFrame = Counted & Answering & { type: 'SELFTEST'; result: number };

/** What a keypad queues and repeats until ACKed. */
export type EventFrame = KeysFrame | PanicFrame | DoorFrame | TamperFrame | BatteryFrame | HeartbeatFrame | SelfTestFrame;
/** What the gateway asks a keypad to do; each is answered with CMD_ACK. */
export type CommandFrame = BuzzerFrame | LedFrame | DisplayFrame;
export type KeypadFrame = PollFrame | NothingFrame | AckFrame | CmdAckFrame | CommandFrame | EventFrame;

export const EVENT_TYPES: ReadonlySet<MsgTypeName> = new Set(['KEYS', 'PANIC', 'DOOR', 'TAMPER', 'BATTERY', 'HEARTBEAT', 'SELFTEST']);

export function isEventFrame(f: KeypadFrame): f is EventFrame {
  return EVENT_TYPES.has(f.type);
}

/** True for a TYPE byte of the keypad→gateway direction (the MORE_FOLLOWS bit does not matter). */
export function isFromKeypad(type: number): boolean {
  return (type & FROM_KEYPAD) !== 0;
}

// ---------------------------------------------------------------------------------------------
// Payload fields as data: one codec per field kind, one layout per message type. Sizes, encoding
// and parsing all come from the same table, so they cannot disagree.

interface FieldCodec<T> {
  size(value: T): number;
  write(value: T, out: Buffer, at: number): void;
  /** The value and the offset after it, or undefined when the bytes are not a valid value. */
  read(buf: Buffer, at: number, end: number): [T, number] | undefined;
}

function uint(bytes: 1 | 2 | 4): FieldCodec<number> {
  return {
    size: () => bytes,
    write: (v, out, at) => void out.writeUIntBE(v, at, bytes),
    read: (buf, at, end) => (at + bytes <= end ? [buf.readUIntBE(at, bytes), at + bytes] : undefined),
  };
}

/** One byte, 0 or 1; anything else is a malformed payload, not "true". */
const flag: FieldCodec<boolean> = {
  size: () => 1,
  write: (v, out, at) => void out.writeUInt8(v ? 1 : 0, at),
  read: (buf, at, end) => (at < end && buf[at]! <= 1 ? [buf[at] === 1, at + 1] : undefined),
};

const colour: FieldCodec<LedColour> = {
  size: () => 1,
  write: (v, out, at) => {
    const code = LED_COLOURS.indexOf(v);
    if (code < 0) throw new RangeError(`unknown LED colour ${String(v)}`);
    out.writeUInt8(code, at);
  },
  read: (buf, at, end) => (at < end && buf[at]! < LED_COLOURS.length ? [LED_COLOURS[buf[at]!]!, at + 1] : undefined),
};

const KEYS_PATTERN = new RegExp(`^[0-9*#]{1,${MAX_KEYS}}$`);

/** A count byte, then that many ASCII keys '0'–'9', '*', '#'. */
const keys: FieldCodec<string> = {
  size: (v) => 1 + v.length,
  write: (v, out, at) => {
    if (!KEYS_PATTERN.test(v)) throw new RangeError(`keys must be 1–${MAX_KEYS} of 0-9 * #, got ${JSON.stringify(v)}`);
    out.writeUInt8(v.length, at);
    out.write(v, at + 1, 'latin1');
  },
  read: (buf, at, end) => {
    if (at >= end) return undefined;
    const next = at + 1 + buf[at]!;
    if (next > end) return undefined;
    const v = buf.toString('latin1', at + 1, next);
    return KEYS_PATTERN.test(v) ? [v, next] : undefined;
  },
};

/** Two display lines of exactly DISPLAY_LINE_BYTES each, sent as they are (already GBK). */
const lines: FieldCodec<[Buffer, Buffer]> = {
  size: () => 2 * DISPLAY_LINE_BYTES,
  write: (v, out, at) => {
    if (v.length !== 2 || v.some((l) => l.length !== DISPLAY_LINE_BYTES)) {
      throw new RangeError(`a display needs two lines of ${DISPLAY_LINE_BYTES} bytes`);
    }
    out.set(v[0], at);
    out.set(v[1], at + DISPLAY_LINE_BYTES);
  },
  read: (buf, at, end) => {
    const next = at + 2 * DISPLAY_LINE_BYTES;
    if (next > end) return undefined;
    return [[Buffer.from(buf.subarray(at, at + DISPLAY_LINE_BYTES)), Buffer.from(buf.subarray(at + DISPLAY_LINE_BYTES, next))], next];
  },
};

interface Field {
  name: string;
  codec: FieldCodec<unknown>;
}
const field = <T>(name: string, codec: FieldCodec<T>): Field => ({ name, codec: codec as FieldCodec<unknown> });

interface Layout {
  /** boot + seq first, MAC last. */
  auth: boolean;
  fields: readonly Field[];
}

const u8 = uint(1);
const u16 = uint(2);
const u32 = uint(4);
const plain: Layout = { auth: false, fields: [] };
const authed = (...fields: Field[]): Layout => ({ auth: true, fields });

/** The payload of every type (SPEC.md "Message types"). */
const LAYOUTS: Readonly<Record<MsgTypeName, Layout>> = {
  POLL: plain,
  NOTHING: plain,
  ACK: authed(field('ackBoot', u32), field('ackSeq', u32)),
  BUZZER: authed(field('on', flag), field('seconds', u16)),
  LED: authed(field('colour', colour), field('blink', flag)),
  DISPLAY: authed(field('lines', lines)),
  CMD_ACK: authed(field('cmdBoot', u32), field('cmdSeq', u32)),
  KEYS: authed(field('keys', keys)),
  PANIC: authed(),
  DOOR: authed(field('open', flag)),
  TAMPER: authed(field('active', flag)),
  BATTERY: authed(field('millivolts', u16), field('low', flag)),
  HEARTBEAT: authed(),
  SELFTEST: authed(field('result', u8)),
};

const NAME_BY_CODE = new Map<number, MsgTypeName>(Object.entries(MsgType).map(([name, code]) => [code, name as MsgTypeName]));

/**
 * Bytes on the wire of a frame of `type`; `keyCount` is the number of keys of a KEYS frame (the
 * only variable-length type).
 */
export function frameBytes(type: MsgTypeName, keyCount = 1): number {
  return FRAME_OVERHEAD_BYTES + payloadBytes(LAYOUTS[type], { keys: '0'.repeat(keyCount) });
}

/** LEN of a frame of `layout` carrying `values` (fixed-size fields ignore their value). */
function payloadBytes(layout: Layout, values: Record<string, unknown>): number {
  return (layout.auth ? COUNTER_BYTES + MAC_BYTES : 0) + layout.fields.reduce((n, f) => n + f.codec.size(values[f.name]), 0);
}

export const POLL_BYTES = frameBytes('POLL');
export const NOTHING_BYTES = frameBytes('NOTHING');
/** A KEYS frame holding "9#", the panic entry. */
export const KEYS_9H_BYTES = frameBytes('KEYS', 2);
export const ACK_BYTES = frameBytes('ACK');
export const CMD_ACK_BYTES = frameBytes('CMD_ACK');
export const DISPLAY_BYTES = frameBytes('DISPLAY');
/** The longest event frame: KEYS with MAX_KEYS keys. */
export const MAX_EVENT_BYTES = frameBytes('KEYS', MAX_KEYS);

/**
 * Bytes of the longest answer a keypad may give to a gateway frame of `type`: MAX_EVENTS_PER_ANSWER
 * of the longest event to a POLL, a CMD_ACK to a command, nothing to an ACK. The master's reply
 * timeout is the wire time of the request + the turnaround + the wire time of this + a margin.
 */
export function longestAnswerBytes(type: 'POLL' | 'ACK' | CommandFrame['type']): number {
  if (type === 'POLL') return MAX_EVENTS_PER_ANSWER * MAX_EVENT_BYTES;
  if (type === 'ACK') return 0;
  return CMD_ACK_BYTES;
}

// ---------------------------------------------------------------------------------------------
// Encoding and parsing.

function checkKey(key: Buffer | undefined, type: MsgTypeName): Buffer {
  if (!key) throw new TypeError(`a ${type} frame is authenticated: a key is required`);
  if (key.length !== KEY_BYTES) throw new RangeError(`a keypad key is ${KEY_BYTES} bytes, got ${key.length}`);
  return key;
}

/** First MAC_BYTES of HMAC-SHA-256(key, ADDR‖TYPE‖LEN‖payload-without-MAC). */
function macOf(key: Buffer, signed: Buffer): Buffer {
  return createHmac('sha256', key).update(signed).digest().subarray(0, MAC_BYTES);
}

/**
 * The bytes of `frame` on the wire. `key` is required for authenticated types. Throws RangeError
 * for a value the contract cannot carry (address outside 1..247, a counter beyond u32, bad keys…):
 * such a frame is a bug of the caller, never something to send.
 */
export function encodeFrame(frame: KeypadFrame, key?: Buffer): Buffer {
  if (!Number.isInteger(frame.addr) || frame.addr < MIN_ADDRESS || frame.addr > MAX_ADDRESS) {
    throw new RangeError(`bus address must be ${MIN_ADDRESS}..${MAX_ADDRESS}, got ${frame.addr}`);
  }
  const layout = LAYOUTS[frame.type];
  const values = frame as unknown as Record<string, unknown>;
  const len = payloadBytes(layout, values);
  const out = Buffer.alloc(FRAME_OVERHEAD_BYTES + len);
  out[0] = SYNC_0;
  out[1] = SYNC_1;
  out[2] = frame.addr;
  out[3] = MsgType[frame.type] | (isEventFrame(frame) && frame.more ? MORE_FOLLOWS : 0);
  out[4] = len;
  let at = HEADER_BYTES;
  if (layout.auth) {
    out.writeUInt32BE(values.boot as number, at);
    out.writeUInt32BE(values.seq as number, at + 4);
    at += COUNTER_BYTES;
  }
  for (const f of layout.fields) {
    f.codec.write(values[f.name], out, at);
    at += f.codec.size(values[f.name]);
  }
  if (layout.auth) {
    macOf(checkKey(key, frame.type), out.subarray(2, at)).copy(out, at);
    at += MAC_BYTES;
  }
  out.writeUInt16LE(crc16(out, 2, at), at);
  return out;
}

/** A frame whose SYNC, length and CRC are right; what it says is still unchecked (see parseFrame). */
export interface RawFrame {
  addr: number;
  /** The TYPE byte as received, MORE_FOLLOWS bit included. */
  type: number;
  payload: Buffer;
  /** The whole frame, SYNC to CRC. */
  raw: Buffer;
}

export type ParseResult = { ok: true; frame: KeypadFrame } | { ok: false; reason: 'mac' | 'payload' | 'type' };

/**
 * What a framed message says: the type must be known (and MORE_FOLLOWS only on an event), an
 * authenticated payload must carry the right MAC (compared in constant time) and every payload must
 * match its layout exactly. `key` is required when the type is authenticated; the receiver looks it
 * up by `raw.addr`. The MAC is checked before any field is read.
 */
export function parseFrame(raw: RawFrame, key?: Buffer): ParseResult {
  const more = isFromKeypad(raw.type) && (raw.type & MORE_FOLLOWS) !== 0;
  const name = NAME_BY_CODE.get(more ? raw.type & ~MORE_FOLLOWS : raw.type);
  if (!name || (more && !EVENT_TYPES.has(name))) return { ok: false, reason: 'type' };
  const layout = LAYOUTS[name];
  const { payload } = raw;
  const frame: Record<string, unknown> = { type: name, addr: raw.addr };
  let at = 0;
  let end = payload.length;
  if (layout.auth) {
    const k = checkKey(key, name);
    if (payload.length < COUNTER_BYTES + MAC_BYTES) return { ok: false, reason: 'payload' };
    end -= MAC_BYTES;
    const signed = Buffer.concat([Buffer.from([raw.addr, raw.type, payload.length]), payload.subarray(0, end)]);
    if (!timingSafeEqual(macOf(k, signed), payload.subarray(end))) return { ok: false, reason: 'mac' };
    frame.boot = payload.readUInt32BE(0);
    frame.seq = payload.readUInt32BE(4);
    at = COUNTER_BYTES;
  }
  for (const f of layout.fields) {
    const got = f.codec.read(payload, at, end);
    if (!got) return { ok: false, reason: 'payload' };
    [frame[f.name], at] = got;
  }
  if (at !== end) return { ok: false, reason: 'payload' };
  if (EVENT_TYPES.has(name)) frame.more = more;
  return { ok: true, frame: frame as unknown as KeypadFrame };
}

// ---------------------------------------------------------------------------------------------
// Framing.

export type DecodeFailure = 'crc' | 'length' | 'noise' | 'truncated';
export type DecodeResult = { ok: true; frame: RawFrame } | { ok: false; reason: DecodeFailure; bytes: number };

/** Index of the first SYNC starting in [from, last], or -1. */
function findSync(buf: Buffer, from: number, last = buf.length - 2): number {
  for (let i = from; i <= last; i++) if (buf[i] === SYNC_0 && buf[i + 1] === SYNC_1) return i;
  return -1;
}

/** Length of the complete, CRC-valid frame starting at `at`, or 0. */
function completeFrameAt(buf: Buffer, at: number): number {
  if (buf[at] !== SYNC_0 || buf[at + 1] !== SYNC_1 || at + HEADER_BYTES > buf.length) return 0;
  const len = buf[at + 4]!;
  const total = FRAME_OVERHEAD_BYTES + len;
  if (len > MAX_PAYLOAD_BYTES || at + total > buf.length) return 0;
  return crcOk(buf, at + 2, at + total) ? total : 0;
}

/**
 * Cuts a byte stream into frames (SPEC.md "Decoding and resynchronisation"). A frame is returned
 * by the `push` that brings its last byte: the length is in the header, there is no inter-byte
 * timer. Whatever is not a frame is reported once, with the number of bytes dropped, so a receiver
 * can count it; the bytes of all results of a stream add up to the stream's length.
 */
export class FrameDecoder {
  private buf = Buffer.alloc(0);

  /** Called with every chunk read from the line; returns what the chunk completed, in order. */
  push(chunk: Buffer): DecodeResult[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: DecodeResult[] = [];
    while (this.step(out));
    return out;
  }

  /**
   * Called when no more bytes will come (the port closed, or the master gave up waiting): what is
   * held is reported as 'truncated' (a frame begun) or 'noise' (a lone first SYNC byte).
   */
  flush(): DecodeResult[] {
    const held = this.buf.length;
    if (held === 0) return [];
    this.buf = Buffer.alloc(0);
    return [{ ok: false, reason: held >= 2 ? 'truncated' : 'noise', bytes: held }];
  }

  /** Bytes held while waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.buf.length;
  }

  private drop(bytes: number): void {
    this.buf = this.buf.subarray(bytes);
  }

  /** One decision on the head of the buffer; false when it must wait for more bytes. */
  private step(out: DecodeResult[]): boolean {
    const buf = this.buf;
    if (buf.length === 0) return false;
    const sync = findSync(buf, 0);
    if (sync !== 0) {
      // Noise up to the next SYNC; with none, keep a last byte that may be the first half of one.
      const bytes = sync > 0 ? sync : buf[buf.length - 1] === SYNC_0 ? buf.length - 1 : buf.length;
      if (bytes === 0) return false;
      out.push({ ok: false, reason: 'noise', bytes });
      this.drop(bytes);
      return true;
    }
    if (buf.length < HEADER_BYTES) return false;
    const len = buf[4]!;
    if (len > MAX_PAYLOAD_BYTES) {
      // Impossible header: drop the SYNC only, the bytes after it may hold the real frame.
      out.push({ ok: false, reason: 'length', bytes: 2 });
      this.drop(2);
      return true;
    }
    const total = FRAME_OVERHEAD_BYTES + len;
    if (buf.length < total) {
      // Still incomplete, but a complete good frame starting inside it proves it was broken off:
      // give it up now instead of holding the good frame until this one's length is reached.
      for (let at = findSync(buf, 1); at > 0; at = findSync(buf, at + 1)) {
        if (completeFrameAt(buf, at) > 0) {
          out.push({ ok: false, reason: 'truncated', bytes: at });
          this.drop(at);
          return true;
        }
      }
      return false;
    }
    if (crcOk(buf, 2, total)) {
      const raw = Buffer.from(buf.subarray(0, total));
      out.push({ ok: true, frame: { addr: raw[2]!, type: raw[3]!, payload: raw.subarray(HEADER_BYTES, total - 2), raw } });
      this.drop(total);
      return true;
    }
    // Bad CRC. A SYNC inside means another frame began before this one ended: drop up to it.
    const inner = findSync(buf, 1, total - 2);
    if (inner > 0) {
      out.push({ ok: false, reason: 'truncated', bytes: inner });
      this.drop(inner);
    } else {
      out.push({ ok: false, reason: 'crc', bytes: total });
      this.drop(total);
    }
    return true;
  }
}
