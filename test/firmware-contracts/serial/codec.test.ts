/**
 * The serial keypad codec (firmware-contracts/serial/codec.ts) against its golden vectors, whose CRCs
 * and MACs were checked by an independent implementation when they were written, and against
 * properties: every type round-trips, decoding does not depend on how the stream is cut into
 * chunks, a changed byte never passes as an authentic frame.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { crc16 } from '../../../firmware-contracts/crc16.js';
import {
  ACK_BYTES,
  CMD_ACK_BYTES,
  DISPLAY_BYTES,
  encodeFrame,
  FrameDecoder,
  frameBytes,
  isFromKeypad,
  KEYS_9H_BYTES,
  longestAnswerBytes,
  MAX_EVENT_BYTES,
  MAX_KEYS,
  MsgType,
  NOTHING_BYTES,
  parseFrame,
  POLL_BYTES,
  type DecodeResult,
  type KeypadFrame,
  type MsgTypeName,
  type RawFrame,
} from '../../../firmware-contracts/serial/codec.js';

type JsonFrame = Record<string, unknown> & { type: MsgTypeName; addr: number };
interface Vectors {
  keys: { A: string; B: string };
  frames: { name: string; key: string | null; frame: JsonFrame; hex: string }[];
  decode: { name: string; chunks: string[]; results: JsonResult[][]; flush: JsonResult[] }[];
  parse: { name: string; key: string | null; hex: string; result: { ok: false; reason: string } }[];
}
type JsonResult = { ok: true; hex: string } | { ok: false; reason: string; bytes: number };

const vectors = JSON.parse(readFileSync(new URL('../../../firmware-contracts/serial/vectors.json', import.meta.url), 'utf8')) as Vectors;
const keyA = Buffer.from(vectors.keys.A, 'hex');
const keyB = Buffer.from(vectors.keys.B, 'hex');
const hexKey = (k: string | null) => (k === null ? undefined : Buffer.from(k, 'hex'));

/** DISPLAY lines are hex in JSON. */
function fromJson(f: JsonFrame): KeypadFrame {
  if (f.type !== 'DISPLAY') return f as unknown as KeypadFrame;
  const [l1, l2] = f.lines as [string, string];
  return { ...f, lines: [Buffer.from(l1, 'hex'), Buffer.from(l2, 'hex')] } as unknown as KeypadFrame;
}

const toJson = (r: DecodeResult): JsonResult => (r.ok ? { ok: true, hex: r.frame.raw.toString('hex') } : r);

/** The one frame in `buf`, framed. */
function frameOf(buf: Buffer): RawFrame {
  const results = new FrameDecoder().push(buf);
  if (results.length !== 1 || !results[0]!.ok) throw new Error(`not one frame: ${JSON.stringify(results)}`);
  return results[0]!.frame;
}

t.test('golden frames: encoding gives the hex, decoding gives the fields', async (t) => {
  t.ok(vectors.frames.length >= Object.keys(MsgType).length);
  const covered = new Set(vectors.frames.map((v) => v.frame.type));
  t.same([...covered].sort(), Object.keys(MsgType).sort(), 'a vector for every message type');
  for (const v of vectors.frames) {
    const frame = fromJson(v.frame);
    const key = hexKey(v.key);
    const bytes = encodeFrame(frame, key);
    t.equal(bytes.toString('hex'), v.hex, `${v.name}: encode`);
    t.equal(bytes.length, frameBytes(frame.type, frame.type === 'KEYS' ? frame.keys.length : undefined), `${v.name}: frameBytes`);
    t.same(parseFrame(frameOf(Buffer.from(v.hex, 'hex')), key), { ok: true, frame }, `${v.name}: decode`);
  }
});

t.test('golden streams: results per chunk, and at flush', async (t) => {
  for (const v of vectors.decode) {
    const d = new FrameDecoder();
    const got = v.chunks.map((c) => d.push(Buffer.from(c, 'hex')).map(toJson));
    t.same(got, v.results, v.name);
    t.same(d.flush().map(toJson), v.flush, `${v.name}: flush`);
  }
});

t.test('golden parse failures', async (t) => {
  for (const v of vectors.parse) t.same(parseFrame(frameOf(Buffer.from(v.hex, 'hex')), hexKey(v.key)), v.result, v.name);
});

t.test('frame sizes', async (t) => {
  t.equal(POLL_BYTES, 7, 'POLL: SYNC 2 + ADDR + TYPE + LEN + CRC 2');
  t.equal(NOTHING_BYTES, 7);
  t.equal(KEYS_9H_BYTES, 26, 'KEYS "9#": 7 + boot 4 + seq 4 + count 1 + 2 keys + MAC 8');
  t.equal(ACK_BYTES, 31);
  t.equal(CMD_ACK_BYTES, 31);
  t.equal(DISPLAY_BYTES, 55);
  t.equal(MAX_EVENT_BYTES, 7 + 8 + 1 + MAX_KEYS + 8);
  t.equal(longestAnswerBytes('POLL'), 4 * MAX_EVENT_BYTES);
  t.equal(longestAnswerBytes('DISPLAY'), CMD_ACK_BYTES);
  t.equal(longestAnswerBytes('ACK'), 0, 'an ACK is not answered');
});

t.test('direction bit', async (t) => {
  for (const [name, code] of Object.entries(MsgType)) {
    const fromKeypad = ['NOTHING', 'CMD_ACK', 'KEYS', 'PANIC', 'DOOR', 'TAMPER', 'BATTERY', 'HEARTBEAT', 'SELFTEST'].includes(name);
    t.equal(isFromKeypad(code), fromKeypad, name);
  }
  t.ok(isFromKeypad(MsgType.KEYS | 0x40), 'MORE_FOLLOWS does not change the direction');
});

const u32 = () => randomBytes(4).readUInt32BE();
const bool = () => Math.random() < 0.5;
const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)]!;
const addr = () => 1 + Math.floor(Math.random() * 247);

/** A random valid frame of every type. */
function randomFrames(): KeypadFrame[] {
  const c = () => ({ addr: addr(), boot: u32(), seq: u32() });
  const keys = Array.from({ length: 1 + Math.floor(Math.random() * MAX_KEYS) }, () => pick('0123456789*#'.split(''))).join('');
  return [
    { type: 'POLL', addr: addr() },
    { type: 'NOTHING', addr: addr() },
    { type: 'ACK', ...c(), ackBoot: u32(), ackSeq: u32() },
    { type: 'BUZZER', ...c(), on: bool(), seconds: randomBytes(2).readUInt16BE() },
    { type: 'LED', ...c(), colour: pick(['off', 'red', 'green', 'amber'] as const), blink: bool() },
    { type: 'DISPLAY', ...c(), lines: [randomBytes(16), randomBytes(16)] },
    { type: 'CMD_ACK', ...c(), cmdBoot: u32(), cmdSeq: u32() },
    { type: 'KEYS', ...c(), keys, more: bool() },
    { type: 'PANIC', ...c(), more: bool() },
    { type: 'DOOR', ...c(), open: bool(), more: bool() },
    { type: 'TAMPER', ...c(), active: bool(), more: bool() },
    { type: 'BATTERY', ...c(), millivolts: randomBytes(2).readUInt16BE(), low: bool(), more: bool() },
    { type: 'HEARTBEAT', ...c(), more: bool() },
    { type: 'SELFTEST', ...c(), result: randomBytes(1)[0]!, more: bool() },
  ];
}

t.test('every type round-trips (random values)', async (t) => {
  let checked = 0;
  for (let i = 0; i < 50; i++) {
    for (const frame of randomFrames()) {
      const got = parseFrame(frameOf(encodeFrame(frame, keyA)), keyA);
      if (!t.same(got, { ok: true, frame }, frame.type)) break;
      checked++;
    }
  }
  t.equal(checked, 50 * Object.keys(MsgType).length);
});

t.test('a wrong key is a MAC failure; so is any changed byte under the MAC', async (t) => {
  for (const frame of randomFrames()) {
    if (frame.type === 'POLL' || frame.type === 'NOTHING') continue;
    const bytes = encodeFrame(frame, keyA);
    t.same(parseFrame(frameOf(bytes), keyB), { ok: false, reason: 'mac' }, `${frame.type} under key B`);
    // ADDR, TYPE and every payload byte (MAC included), with the CRC made right again: a tapped
    // line can fix a CRC, never a MAC. LEN is left alone, it moves the frame's end.
    const positions = [2, 3, ...Array.from({ length: bytes.length - 7 }, (_, i) => 5 + i)];
    for (const at of positions) {
      const forged = Buffer.from(bytes);
      forged[at]! ^= 1 << Math.floor(Math.random() * 8);
      forged.writeUInt16LE(crc16(forged, 2, forged.length - 2), forged.length - 2);
      const got = parseFrame(frameOf(forged), keyA);
      if (!t.notOk(got.ok, `${frame.type}: byte ${at} changed is refused`)) break;
    }
  }
});

t.test('encodeFrame refuses what the contract cannot carry', async (t) => {
  const panic = { type: 'PANIC', addr: 3, boot: 1, seq: 1 } as const;
  t.throws(() => encodeFrame({ type: 'POLL', addr: 0 }), RangeError, 'address 0');
  t.throws(() => encodeFrame({ type: 'POLL', addr: 248 }), RangeError, 'address 248');
  t.throws(() => encodeFrame(panic), TypeError, 'authenticated type without a key');
  t.throws(() => encodeFrame(panic, Buffer.alloc(16)), RangeError, 'a 16-byte key');
  t.throws(() => encodeFrame({ ...panic, seq: 2 ** 32 }, keyA), RangeError, 'seq beyond u32');
  t.throws(() => encodeFrame({ ...panic, type: 'KEYS', keys: '9A' }, keyA), RangeError, 'a letter among the keys');
  t.throws(() => encodeFrame({ ...panic, type: 'KEYS', keys: '' }, keyA), RangeError, 'no keys');
  t.throws(() => encodeFrame({ ...panic, type: 'KEYS', keys: '1'.repeat(MAX_KEYS + 1) }, keyA), RangeError, 'too many keys');
  t.throws(() => encodeFrame({ ...panic, type: 'DISPLAY', lines: [Buffer.alloc(15), Buffer.alloc(16)] }, keyA), RangeError, 'a short line');
  t.throws(() => encodeFrame({ ...panic, type: 'BATTERY', millivolts: 70000, low: false }, keyA), RangeError, 'u16 overflow');
});

t.test('LEN: 200 is framed, 201 is impossible', async (t) => {
  const body = Buffer.concat([Buffer.from([3, 0x12, 200]), randomBytes(200)]);
  const max = Buffer.concat([Buffer.from([0xa5, 0x5a]), body, Buffer.alloc(2)]);
  max.writeUInt16LE(crc16(body), max.length - 2);
  const [r] = new FrameDecoder().push(max);
  t.ok(r?.ok, 'a 207-byte frame is framed');
  t.same(parseFrame(frameOf(max), keyA), { ok: false, reason: 'mac' }, 'and then refused by what it says');

  const poll = encodeFrame({ type: 'POLL', addr: 3 });
  const results = new FrameDecoder().push(Buffer.concat([Buffer.from([0xa5, 0x5a, 3, 0x12, 201]), randomBytes(30).fill(0), poll]));
  t.same(results[0], { ok: false, reason: 'length', bytes: 2 });
  t.same(results.at(-1), { ok: true, frame: frameOf(poll) }, 'the frame after it still decodes');
});

/** Results with consecutive noise merged: how noise is cut depends on the chunks, nothing else does. */
function mergeNoise(results: DecodeResult[]): JsonResult[] {
  const out: JsonResult[] = [];
  for (const r of results.map(toJson)) {
    const last = out.at(-1);
    if (!r.ok && r.reason === 'noise' && last && !last.ok && last.reason === 'noise') last.bytes += r.bytes;
    else out.push(r);
  }
  return out;
}

function decodeInChunks(stream: Buffer, cuts: number[]): DecodeResult[] {
  const d = new FrameDecoder();
  const out: DecodeResult[] = [];
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    out.push(...d.push(stream.subarray(from, cut)));
    from = cut;
  }
  return [...out, ...d.flush()];
}

t.test('decoding does not depend on how the stream is cut into chunks', async (t) => {
  const golden = (prefix: string) => Buffer.from(vectors.frames.find((v) => v.name.startsWith(prefix))!.hex, 'hex');
  const [poll, keys, display, ack, nothing, battery] = ['POLL to address 3', 'KEYS "9#"', 'DISPLAY', 'ACK', 'NOTHING', 'BATTERY'].map(golden);
  const badCrc = Buffer.from(keys!);
  badCrc[10]! ^= 0x04;
  const stream = Buffer.concat([
    Buffer.from('0013a5ff5a', 'hex'), // noise, with a first SYNC byte in it
    poll!,
    keys!,
    badCrc,
    ack!,
    keys!.subarray(0, 12), // broken off…
    display!, // …by this one
    Buffer.from([0xa5, 0x5a, 9, 0x90, 250]), // impossible LEN
    nothing!,
    poll!,
    battery!.subarray(0, 9), // the end of the stream comes first
  ]);
  const whole = mergeNoise(decodeInChunks(stream, []));
  const good = whole.filter((r) => r.ok).map((r) => (r as { hex: string }).hex);
  t.same(good, [poll, keys, ack, display, nothing, poll].map((f) => f!.toString('hex')), 'every good frame, in order');
  t.same(
    whole.filter((r) => !r.ok).map((r) => r.ok || r.reason),
    ['noise', 'crc', 'truncated', 'length', 'noise', 'truncated'],
    'every bad stretch, once',
  );
  const total = whole.reduce((n, r) => n + (r.ok ? r.hex.length / 2 : r.bytes), 0);
  t.equal(total, stream.length, 'every byte accounted for');

  let same = 0;
  for (let cut = 1; cut < stream.length; cut++) if (t.same(mergeNoise(decodeInChunks(stream, [cut])), whole, `cut at ${cut}`)) same++;
  t.equal(same, stream.length - 1, 'two chunks, every split point');
  for (let i = 0; i < 5; i++) {
    const cuts = Array.from({ length: stream.length - 1 }, (_, k) => k + 1).filter(() => Math.random() < 0.3);
    t.same(mergeNoise(decodeInChunks(stream, cuts)), whole, `random chunks (${cuts.length + 1})`);
  }
  t.same(mergeNoise(decodeInChunks(stream, Array.from({ length: stream.length - 1 }, (_, k) => k + 1))), whole, 'byte by byte');
});

t.test('a frame is returned by the push that brings its last byte', async (t) => {
  const bytes = encodeFrame({ type: 'KEYS', addr: 3, boot: 1, seq: 1, keys: '9#' }, keyA);
  const d = new FrameDecoder();
  for (let i = 0; i < bytes.length - 1; i++) t.same(d.push(bytes.subarray(i, i + 1)), [], `byte ${i}: nothing yet`);
  t.equal(d.pendingBytes, bytes.length - 1);
  t.same(d.push(bytes.subarray(-1)).map(toJson), [{ ok: true, hex: bytes.toString('hex') }], 'last byte: the frame');
  t.equal(d.pendingBytes, 0);
});
