/**
 * The Modbus RTU codec (firmware-contracts/modbus/rtu.ts) against golden frames: the examples of
 * the Modbus application protocol specification §6 (unit 17 = 0x11) and our own poll cycle, whose
 * CRCs were checked with an independent bitwise CRC-16/MODBUS. Then exceptions, the length
 * helpers a slave frames requests with, and the wire-limit arithmetic against a hand computation.
 */
import t from 'tap';
import {
  FunctionCode,
  ModbusException,
  RtuFrameError,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  expectedRequestLength,
  expectedResponseLength,
  pollCycleBytes,
  readBitsResponseBytes,
  wireLimitMs,
  type ModbusRequest,
  type ModbusResponse,
} from '../../../firmware-contracts/modbus/rtu.js';
import { GENERIC_8IO } from '../../../firmware-contracts/modbus/register-map.js';
import { withCrc } from '../../../firmware-contracts/crc16.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const hexWithCrc = (body: string) => withCrc(hex(body));
const show = (b: Buffer) => b.toString('hex').replace(/(..)(?!$)/g, '$1 ').toUpperCase();

interface Golden {
  what: string;
  frame: string;
  request?: ModbusRequest;
  response?: ModbusResponse;
  /** FC01/02 responses carry whole bytes; the request's quantity trims them. */
  quantity?: number;
}

const bits = (s: string) => [...s].map((c) => c === '1');

const GOLDEN: Golden[] = [
  { what: 'read holding register 0, unit 1', frame: '01 03 00 00 00 01 84 0A', request: { unitId: 1, fc: 3, address: 0, quantity: 1 } },
  { what: 'generic-8io poll', frame: '03 02 00 00 00 08 78 2E', request: { unitId: 3, fc: 2, address: 0, quantity: 8 } },
  { what: 'poll answer, panic latched', frame: '03 02 01 01 61 F0', response: { unitId: 3, fc: 2, bits: bits('10000000') } },
  { what: 'latch-clear of the panic input', frame: '03 06 00 01 00 01 18 28', request: { unitId: 3, fc: 6, address: 1, value: 1 } },
  { what: 'sounder on', frame: '03 05 00 00 FF 00 8D D8', request: { unitId: 3, fc: 5, address: 0, value: true } },
  { what: 'door-latch-8io: poll answer, the door\'s change latch set', frame: '03 02 01 02 21 F1', response: { unitId: 3, fc: 2, bits: bits('01000000') } },
  { what: 'door-latch-8io: read inputState', frame: '03 03 00 02 00 01 24 28', request: { unitId: 3, fc: 3, address: 2, quantity: 1 } },
  { what: 'door-latch-8io: inputState answer, the door closed', frame: '03 03 02 00 00 C1 84', response: { unitId: 3, fc: 3, registers: [0] } },
  { what: 'door-latch-8io: latch-clear of the door', frame: '03 06 00 01 00 02 58 29', request: { unitId: 3, fc: 6, address: 1, value: 2 } },
  { what: '§6.1 read coils', frame: '11 01 00 13 00 25 0E 84', request: { unitId: 17, fc: 1, address: 19, quantity: 37 } },
  {
    what: '§6.1 answer',
    frame: '11 01 05 CD 6B B2 0E 1B 45 E6',
    quantity: 37,
    // CD 6B B2 0E 1B: coils 20–27 = 1011 0011 (LSB first), …, the last byte holds 5 coils.
    response: { unitId: 17, fc: 1, bits: bits('10110011' + '11010110' + '01001101' + '01110000' + '11011') },
  },
  { what: '§6.2 read inputs', frame: '11 02 00 C4 00 16 BA A9', request: { unitId: 17, fc: 2, address: 196, quantity: 22 } },
  {
    what: '§6.2 answer',
    frame: '11 02 03 AC DB 35 20 18',
    quantity: 22,
    response: { unitId: 17, fc: 2, bits: bits('00110101' + '11011011' + '101011') },
  },
  { what: '§6.3 read registers', frame: '11 03 00 6B 00 03 76 87', request: { unitId: 17, fc: 3, address: 107, quantity: 3 } },
  { what: '§6.3 answer', frame: '11 03 06 AE 41 56 52 43 40 49 AD', response: { unitId: 17, fc: 3, registers: [0xae41, 0x5652, 0x4340] } },
  { what: '§6.5 write coil ON', frame: '11 05 00 AC FF 00 4E 8B', request: { unitId: 17, fc: 5, address: 172, value: true } },
  { what: '§6.6 write register', frame: '11 06 00 01 00 03 9A 9B', request: { unitId: 17, fc: 6, address: 1, value: 3 } },
  {
    what: '§6.11 write coils',
    frame: '11 0F 00 13 00 0A 02 CD 01 BF 0B',
    request: { unitId: 17, fc: 15, address: 19, values: bits('1011001110') },
  },
  { what: '§6.11 answer', frame: '11 0F 00 13 00 0A 26 99', response: { unitId: 17, fc: 15, address: 19, quantity: 10 } },
  {
    what: '§6.12 write registers',
    frame: '11 10 00 01 00 02 04 00 0A 01 02 C6 F0',
    request: { unitId: 17, fc: 16, address: 1, values: [0x000a, 0x0102] },
  },
  { what: '§6.12 answer', frame: '11 10 00 01 00 02 12 98', response: { unitId: 17, fc: 16, address: 1, quantity: 2 } },
  { what: 'exception 2 to a FC01', frame: '0A 81 02 B0 53', response: { unitId: 10, fc: 1, exception: 2 } },
  { what: 'exception 4 to a FC02', frame: '03 82 04 E0 A3', response: { unitId: 3, fc: 2, exception: 4 } },
];

t.test('golden frames encode and decode both ways', async (t) => {
  for (const g of GOLDEN) {
    const frame = hex(g.frame);
    if (g.request) {
      t.equal(show(encodeRequest(g.request)), show(frame), `${g.what}: encodes to ${g.frame}`);
      t.same(decodeRequest(frame), g.request, `${g.what}: decodes`);
      t.equal(expectedRequestLength(frame), frame.length, `${g.what}: its length is known from its head`);
    }
    if (g.response) {
      t.equal(show(encodeResponse(g.response)), show(frame), `${g.what}: encodes to ${g.frame}`);
      t.same(decodeResponse(frame, g.quantity), g.response, `${g.what}: decodes`);
      t.equal(expectedResponseLength(frame), frame.length, `${g.what}: its length is known from its head`);
    }
  }
});

t.test('a response answers as many bits as asked, in whole bytes', async (t) => {
  const res = decodeResponse(hex('03 02 01 01 61 F0'));
  t.same(res, { unitId: 3, fc: 2, bits: bits('10000000') }, 'without a quantity: every bit of the data bytes');
  t.throws(() => decodeResponse(hex('03 02 01 01 61 F0'), 9), RtuFrameError, '9 bits cannot fit in one data byte');
});

t.test('frames that are no frames', async (t) => {
  const good = hex('01 03 00 00 00 01 84 0A');
  const badCrc = Buffer.from(good);
  badCrc[7]! ^= 0x01;
  t.throws(() => decodeRequest(badCrc), { name: 'RtuFrameError', message: /bad CRC/ });
  t.throws(() => decodeRequest(good.subarray(0, 3)), { name: 'RtuFrameError', message: /too short/ });
  t.throws(() => decodeResponse(hex('03 02 01 01 61 F1')), { name: 'RtuFrameError', message: /bad CRC/ });
});

t.test('requests a slave refuses with an exception', async (t) => {
  const refuse = (frame: Buffer, code: number, why: string) => {
    try {
      decodeRequest(frame);
      t.fail(`${why}: decoded`);
    } catch (err) {
      t.type(err, ModbusException, why);
      t.equal((err as ModbusException).code, code, `${why}: exception ${code}`);
    }
  };
  refuse(hexWithCrc('01 04 00 00 00 01'), 1, 'FC04 is not ours');
  refuse(hexWithCrc('01 2B 0E 01 00'), 1, 'FC2B is not ours');
  refuse(encodeRequest({ unitId: 1, fc: 2, address: 0, quantity: 0 }), 3, 'reading 0 inputs');
  refuse(encodeRequest({ unitId: 1, fc: 2, address: 0, quantity: 2001 }), 3, 'reading 2001 inputs');
  refuse(encodeRequest({ unitId: 1, fc: 3, address: 0, quantity: 126 }), 3, 'reading 126 registers');
  refuse(hexWithCrc('01 05 00 00 12 34'), 3, 'a coil value that is neither FF00 nor 0000');
  refuse(hexWithCrc('01 0F 00 00 00 0A 01 FF'), 3, 'a byte count too short for 10 coils');
  refuse(hexWithCrc('01 10 00 00 00 02 02 00 01'), 3, 'a byte count too short for 2 registers');
});

t.test('exception responses', async (t) => {
  t.equal(show(encodeResponse({ unitId: 1, fc: FunctionCode.READ_HOLDING_REGISTERS, exception: 2 })), show(hexWithCrc('01 83 02')));
  t.same(decodeResponse(hexWithCrc('07 8F 04')), { unitId: 7, fc: 15, exception: 4 }, 'fc without 0x80, the code');
  t.equal(expectedResponseLength(hex('07 8F')), 5, 'an exception is 5 bytes, known from its function byte');
});

t.test('expectedRequestLength: as soon as the head tells', async (t) => {
  for (const fc of [1, 2, 3, 5, 6]) {
    t.equal(expectedRequestLength(Buffer.of(1)), undefined, 'one byte tells nothing');
    t.equal(expectedRequestLength(Buffer.of(1, fc)), 8, `FC${fc}: 8 bytes from the function code alone`);
  }
  const writeCoils = hex('11 0F 00 13 00 0A 02 CD 01 BF 0B');
  const writeRegs = hex('11 10 00 01 00 02 04 00 0A 01 02 C6 F0');
  for (const frame of [writeCoils, writeRegs]) {
    for (let n = 2; n < 7; n++) t.equal(expectedRequestLength(frame.subarray(0, n)), undefined, `FC${frame[1]}: ${n} bytes: byte count not in yet`);
    t.equal(expectedRequestLength(frame.subarray(0, 7)), frame.length, `FC${frame[1]}: 9 + byte count once offset 6 is in`);
  }
  t.equal(expectedRequestLength(Buffer.of(1, 0x04)), null, 'FC04: unknown, its length cannot be told');
  t.equal(expectedRequestLength(Buffer.of(1, 0x2b, 0x0e)), null, 'FC2B: unknown');
});

t.test('expectedResponseLength', async (t) => {
  t.equal(expectedResponseLength(Buffer.of(3, 2)), undefined, 'a read answer needs its byte count');
  t.equal(expectedResponseLength(Buffer.of(3, 2, 1)), 6);
  t.equal(expectedResponseLength(Buffer.of(3, 3, 6)), 11);
  for (const fc of [5, 6, 15, 16]) t.equal(expectedResponseLength(Buffer.of(3, fc)), 8, `FC${fc}: 8 bytes`);
  t.equal(expectedResponseLength(Buffer.of(3, 0x82)), 5, 'exception');
  t.equal(expectedResponseLength(Buffer.of(3, 0x04)), null, 'unknown function');
});

t.test('frame sizes and the wire limit of a poll cycle', async (t) => {
  t.equal(readBitsResponseBytes(8), 6, '8 inputs: one data byte');
  t.equal(readBitsResponseBytes(9), 7, '9 inputs: two data bytes');
  t.equal(pollCycleBytes(GENERIC_8IO), 14, 'generic-8io: 8-byte FC02 request + 6-byte answer');

  // By hand, 19200 baud, 11 bits a character: 14 bytes = 154 bits = 8.0208 ms on the wire;
  // 3.5 characters = 38.5 bits = 2.0052 ms; turnaround 5 ms. Per module 15.0260 ms, 32 modules 480.83 ms.
  const perModule = 154 / 19.2 + 5 + 38.5 / 19.2;
  t.ok(Math.abs(wireLimitMs(1, 19200, 5) - perModule) < 1e-9, `one module: ${perModule.toFixed(4)} ms`);
  t.ok(Math.abs(wireLimitMs(32, 19200, 5) - 480.83) < 0.01, `32 modules: ${wireLimitMs(32, 19200, 5).toFixed(2)} ms ≈ 480.83 ms`);
  // A turnaround shorter than the gap is not allowed on the line: the gap counts instead.
  t.ok(Math.abs(wireLimitMs(1, 19200, 0) - (154 + 38.5 + 38.5) / 19.2) < 1e-9, 'turnaround 0: the gap stands in for it');
  // Above 19200 baud the gap is fixed at 1.75 ms: 115200 baud, 154 bits = 1.3368 ms.
  t.ok(Math.abs(wireLimitMs(1, 115200, 5) - (154 / 115.2 + 5 + 1.75)) < 1e-9, '115200 baud: fixed 1.75 ms gap');
});
