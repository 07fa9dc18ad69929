/**
 * A small Modbus RTU codec for the function codes our I/O modules speak (SPEC.md in this folder):
 * FC01/02/03 reads, FC05/06 single writes, FC0F/10 multiple writes, and exception responses.
 * A frame (ADU) is unit id + PDU + CRC-16/MODBUS, low byte first. Clause references are to
 * "MODBUS Application Protocol Specification V1.1b3" (§6.x) and "MODBUS over Serial Line V1.02".
 *
 * The length helpers let a receiver decode a frame as soon as its last byte is in: the length of
 * every request and response here follows from its function code and, where there is one, its
 * byte count. Real slaves wait for 3.5 characters of silence instead; a simulator on a pty, where
 * there is no silence to measure, must not.
 */
import { crcOk, withCrc } from '../crc16.js';
import { wireTimeMs, interFrameGapMs } from '../wire-timing.js';
import { GENERIC_8IO, type RegisterMap } from './register-map.js';

export const FunctionCode = {
  READ_COILS: 0x01,
  READ_DISCRETE_INPUTS: 0x02,
  READ_HOLDING_REGISTERS: 0x03,
  WRITE_SINGLE_COIL: 0x05,
  WRITE_SINGLE_REGISTER: 0x06,
  WRITE_MULTIPLE_COILS: 0x0f,
  WRITE_MULTIPLE_REGISTERS: 0x10,
} as const;
export type FunctionCode = (typeof FunctionCode)[keyof typeof FunctionCode];

/** §7: the exception codes this contract uses; a real device may send others. */
export const ExceptionCode = {
  ILLEGAL_FUNCTION: 0x01,
  ILLEGAL_DATA_ADDRESS: 0x02,
  ILLEGAL_DATA_VALUE: 0x03,
  SERVER_DEVICE_FAILURE: 0x04,
} as const;

/** Serial line §2.2: unit 0 is a broadcast; slaves execute writes and never answer. */
export const BROADCAST_UNIT_ID = 0;
/** Serial line §2.3.1: valid slave addresses. */
export const MAX_UNIT_ID = 247;
/** Serial line §2.5.1: an RTU frame is at most 256 bytes. */
export const MAX_ADU_BYTES = 256;

/** §6.1–6.3 and §6.11–6.12: quantity limits that keep every frame within 256 bytes. */
export const MAX_READ_BITS = 2000;
export const MAX_READ_REGISTERS = 125;
export const MAX_WRITE_BITS = 1968;
export const MAX_WRITE_REGISTERS = 123;

/** FC05 encodes ON as 0xFF00 and OFF as 0x0000; anything else is an illegal value (§6.5). */
const COIL_ON = 0xff00;
const COIL_OFF = 0x0000;

export interface ReadRequest {
  unitId: number;
  fc: typeof FunctionCode.READ_COILS | typeof FunctionCode.READ_DISCRETE_INPUTS | typeof FunctionCode.READ_HOLDING_REGISTERS;
  address: number;
  quantity: number;
}
export interface WriteCoilRequest {
  unitId: number;
  fc: typeof FunctionCode.WRITE_SINGLE_COIL;
  address: number;
  value: boolean;
}
export interface WriteRegisterRequest {
  unitId: number;
  fc: typeof FunctionCode.WRITE_SINGLE_REGISTER;
  address: number;
  value: number;
}
export interface WriteCoilsRequest {
  unitId: number;
  fc: typeof FunctionCode.WRITE_MULTIPLE_COILS;
  address: number;
  values: boolean[];
}
export interface WriteRegistersRequest {
  unitId: number;
  fc: typeof FunctionCode.WRITE_MULTIPLE_REGISTERS;
  address: number;
  values: number[];
}
export type ModbusRequest = ReadRequest | WriteCoilRequest | WriteRegisterRequest | WriteCoilsRequest | WriteRegistersRequest;

export interface ReadBitsResponse {
  unitId: number;
  fc: typeof FunctionCode.READ_COILS | typeof FunctionCode.READ_DISCRETE_INPUTS;
  /** Lowest address first; a decoded response holds whole bytes unless the quantity was given. */
  bits: boolean[];
}
export interface ReadRegistersResponse {
  unitId: number;
  fc: typeof FunctionCode.READ_HOLDING_REGISTERS;
  registers: number[];
}
/** FC05 and FC06 answer with an echo of the request. */
export type WriteSingleResponse = WriteCoilRequest | WriteRegisterRequest;
export interface WriteMultipleResponse {
  unitId: number;
  fc: typeof FunctionCode.WRITE_MULTIPLE_COILS | typeof FunctionCode.WRITE_MULTIPLE_REGISTERS;
  address: number;
  quantity: number;
}
export interface ExceptionResponse {
  unitId: number;
  /** The function code of the request (the frame carries it with 0x80 set). */
  fc: number;
  exception: number;
}
export type ModbusResponse = ReadBitsResponse | ReadRegistersResponse | WriteSingleResponse | WriteMultipleResponse | ExceptionResponse;

/** Bytes that are not a usable frame (too short, bad CRC, wrong length): a receiver drops them. */
export class RtuFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RtuFrameError';
  }
}

/** A well-formed request the slave refuses: it answers with an exception response carrying `code`. */
export class ModbusException extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`Modbus exception ${code}: ${message}`);
    this.name = 'ModbusException';
  }
}

export function isException(res: ModbusResponse): res is ExceptionResponse {
  return 'exception' in res;
}

/** Pack bits lowest address first: bit 0 of the first byte is the first point (§6.1). */
function packBits(bits: readonly boolean[]): Buffer {
  const out = Buffer.alloc(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => {
    if (b) out[i >> 3]! |= 1 << (i & 7);
  });
  return out;
}

function unpackBits(bytes: Uint8Array, count: number): boolean[] {
  return Array.from({ length: count }, (_, i) => ((bytes[i >> 3]! >> (i & 7)) & 1) === 1);
}

function header(unitId: number, fc: number, a: number, b: number): Buffer {
  const pdu = Buffer.alloc(6);
  pdu.writeUInt8(unitId, 0);
  pdu.writeUInt8(fc, 1);
  pdu.writeUInt16BE(a, 2);
  pdu.writeUInt16BE(b, 4);
  return pdu;
}

export function encodeRequest(req: ModbusRequest): Buffer {
  switch (req.fc) {
    case FunctionCode.READ_COILS:
    case FunctionCode.READ_DISCRETE_INPUTS:
    case FunctionCode.READ_HOLDING_REGISTERS:
      return withCrc(header(req.unitId, req.fc, req.address, req.quantity));
    case FunctionCode.WRITE_SINGLE_COIL:
      return withCrc(header(req.unitId, req.fc, req.address, req.value ? COIL_ON : COIL_OFF));
    case FunctionCode.WRITE_SINGLE_REGISTER:
      return withCrc(header(req.unitId, req.fc, req.address, req.value));
    case FunctionCode.WRITE_MULTIPLE_COILS: {
      const data = packBits(req.values);
      return withCrc(Buffer.concat([header(req.unitId, req.fc, req.address, req.values.length), Buffer.of(data.length), data]));
    }
    case FunctionCode.WRITE_MULTIPLE_REGISTERS: {
      const data = Buffer.alloc(req.values.length * 2);
      req.values.forEach((v, i) => data.writeUInt16BE(v, i * 2));
      return withCrc(Buffer.concat([header(req.unitId, req.fc, req.address, req.values.length), Buffer.of(data.length), data]));
    }
  }
}

export function encodeResponse(res: ModbusResponse): Buffer {
  if (isException(res)) return withCrc(Buffer.of(res.unitId, res.fc | 0x80, res.exception));
  switch (res.fc) {
    case FunctionCode.READ_COILS:
    case FunctionCode.READ_DISCRETE_INPUTS: {
      const data = packBits(res.bits);
      return withCrc(Buffer.concat([Buffer.of(res.unitId, res.fc, data.length), data]));
    }
    case FunctionCode.READ_HOLDING_REGISTERS: {
      const data = Buffer.alloc(res.registers.length * 2);
      res.registers.forEach((v, i) => data.writeUInt16BE(v, i * 2));
      return withCrc(Buffer.concat([Buffer.of(res.unitId, res.fc, data.length), data]));
    }
    case FunctionCode.WRITE_SINGLE_COIL:
      return withCrc(header(res.unitId, res.fc, res.address, res.value ? COIL_ON : COIL_OFF));
    case FunctionCode.WRITE_SINGLE_REGISTER:
      return withCrc(header(res.unitId, res.fc, res.address, res.value));
    case FunctionCode.WRITE_MULTIPLE_COILS:
    case FunctionCode.WRITE_MULTIPLE_REGISTERS:
      return withCrc(header(res.unitId, res.fc, res.address, res.quantity));
  }
}

/**
 * Total length of the request that starts `buf`, as soon as it can be told: `undefined` while
 * more bytes are needed to tell (FC0F/10 carry their byte count at offset 6), `null` when the
 * function code is not one of ours (the length of such a frame cannot be known from its bytes).
 */
export function expectedRequestLength(buf: Uint8Array): number | null | undefined {
  if (buf.length < 2) return undefined;
  switch (buf[1]) {
    case FunctionCode.READ_COILS:
    case FunctionCode.READ_DISCRETE_INPUTS:
    case FunctionCode.READ_HOLDING_REGISTERS:
    case FunctionCode.WRITE_SINGLE_COIL:
    case FunctionCode.WRITE_SINGLE_REGISTER:
      return 8;
    case FunctionCode.WRITE_MULTIPLE_COILS:
    case FunctionCode.WRITE_MULTIPLE_REGISTERS:
      return buf.length < 7 ? undefined : 9 + buf[6]!;
    default:
      return null;
  }
}

/** Total length of the response that starts `buf`; `undefined` and `null` as for requests. */
export function expectedResponseLength(buf: Uint8Array): number | null | undefined {
  if (buf.length < 2) return undefined;
  const fc = buf[1]!;
  if (fc & 0x80) return 5;
  switch (fc) {
    case FunctionCode.READ_COILS:
    case FunctionCode.READ_DISCRETE_INPUTS:
    case FunctionCode.READ_HOLDING_REGISTERS:
      return buf.length < 3 ? undefined : 5 + buf[2]!;
    case FunctionCode.WRITE_SINGLE_COIL:
    case FunctionCode.WRITE_SINGLE_REGISTER:
    case FunctionCode.WRITE_MULTIPLE_COILS:
    case FunctionCode.WRITE_MULTIPLE_REGISTERS:
      return 8;
    default:
      return null;
  }
}

function checkFrame(frame: Uint8Array, expected: number | null | undefined, what: string): void {
  if (frame.length < 4) throw new RtuFrameError(`${what} of ${frame.length} bytes is too short`);
  if (!crcOk(frame)) throw new RtuFrameError(`${what} has a bad CRC`);
  if (typeof expected === 'number' && expected !== frame.length) {
    throw new RtuFrameError(`${what} is ${frame.length} bytes; function 0x${frame[1]!.toString(16)} needs ${expected}`);
  }
}

function checkQuantity(quantity: number, max: number): void {
  if (quantity < 1 || quantity > max) throw new ModbusException(ExceptionCode.ILLEGAL_DATA_VALUE, `quantity ${quantity} is outside 1–${max}`);
}

/**
 * Decode a whole request frame. Throws RtuFrameError for bytes that are no frame (drop them) and
 * ModbusException for a frame the slave must refuse with an exception response (§7).
 */
export function decodeRequest(frame: Uint8Array): ModbusRequest {
  const expected = expectedRequestLength(frame);
  checkFrame(frame, expected, 'request');
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  const unitId = buf[0]!;
  const fc = buf[1]!;
  if (expected === null) throw new ModbusException(ExceptionCode.ILLEGAL_FUNCTION, `function 0x${fc.toString(16)} is not supported`);
  const address = buf.readUInt16BE(2);
  const word = buf.readUInt16BE(4);
  switch (fc) {
    case FunctionCode.READ_COILS:
    case FunctionCode.READ_DISCRETE_INPUTS:
      checkQuantity(word, MAX_READ_BITS);
      return { unitId, fc, address, quantity: word };
    case FunctionCode.READ_HOLDING_REGISTERS:
      checkQuantity(word, MAX_READ_REGISTERS);
      return { unitId, fc, address, quantity: word };
    case FunctionCode.WRITE_SINGLE_COIL:
      if (word !== COIL_ON && word !== COIL_OFF) {
        throw new ModbusException(ExceptionCode.ILLEGAL_DATA_VALUE, `coil value 0x${word.toString(16)} is neither 0xFF00 nor 0x0000`);
      }
      return { unitId, fc, address, value: word === COIL_ON };
    case FunctionCode.WRITE_SINGLE_REGISTER:
      return { unitId, fc, address, value: word };
    case FunctionCode.WRITE_MULTIPLE_COILS:
      checkQuantity(word, MAX_WRITE_BITS);
      if (buf[6] !== Math.ceil(word / 8)) throw new ModbusException(ExceptionCode.ILLEGAL_DATA_VALUE, `byte count ${buf[6]} does not match ${word} coils`);
      return { unitId, fc, address, values: unpackBits(buf.subarray(7, 7 + buf[6]!), word) };
    default: {
      checkQuantity(word, MAX_WRITE_REGISTERS);
      if (buf[6] !== word * 2) throw new ModbusException(ExceptionCode.ILLEGAL_DATA_VALUE, `byte count ${buf[6]} does not match ${word} registers`);
      const values = Array.from({ length: word }, (_, i) => buf.readUInt16BE(7 + i * 2));
      return { unitId, fc: FunctionCode.WRITE_MULTIPLE_REGISTERS, address, values };
    }
  }
}

/**
 * Decode a whole response frame. For FC01/02 pass the requested `quantity` to get exactly that
 * many bits (the frame only carries whole bytes). Throws RtuFrameError for a frame that is no
 * valid response; an exception response decodes to an ExceptionResponse.
 */
export function decodeResponse(frame: Uint8Array, quantity?: number): ModbusResponse {
  const expected = expectedResponseLength(frame);
  checkFrame(frame, expected, 'response');
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  const unitId = buf[0]!;
  const fc = buf[1]!;
  if (fc & 0x80) return { unitId, fc: fc & 0x7f, exception: buf[2]! };
  switch (fc) {
    case FunctionCode.READ_COILS:
    case FunctionCode.READ_DISCRETE_INPUTS: {
      const count = quantity ?? buf[2]! * 8;
      if (Math.ceil(count / 8) !== buf[2]) throw new RtuFrameError(`response has ${buf[2]} data bytes; ${count} bits need ${Math.ceil(count / 8)}`);
      return { unitId, fc, bits: unpackBits(buf.subarray(3, 3 + buf[2]!), count) };
    }
    case FunctionCode.READ_HOLDING_REGISTERS: {
      if (buf[2]! % 2) throw new RtuFrameError(`response byte count ${buf[2]} is odd`);
      return { unitId, fc, registers: Array.from({ length: buf[2]! / 2 }, (_, i) => buf.readUInt16BE(3 + i * 2)) };
    }
    case FunctionCode.WRITE_SINGLE_COIL:
      return { unitId, fc, address: buf.readUInt16BE(2), value: buf.readUInt16BE(4) === COIL_ON };
    case FunctionCode.WRITE_SINGLE_REGISTER:
      return { unitId, fc, address: buf.readUInt16BE(2), value: buf.readUInt16BE(4) };
    case FunctionCode.WRITE_MULTIPLE_COILS:
    case FunctionCode.WRITE_MULTIPLE_REGISTERS:
      return { unitId, fc, address: buf.readUInt16BE(2), quantity: buf.readUInt16BE(4) };
    default:
      throw new RtuFrameError(`response function 0x${fc.toString(16)} is not supported`);
  }
}

/** Bytes of a read request (FC01–FC04): unit, function, address, quantity, CRC. */
export const READ_REQUEST_BYTES = 8;

/** Bytes of the answer to a FC01/FC02 read of `count` bits: unit, function, byte count, data, CRC. */
export function readBitsResponseBytes(count: number): number {
  return 5 + Math.ceil(count / 8);
}

/** Request + response bytes of one FC02 read of all the map's discrete inputs (lowest to highest address). */
export function pollCycleBytes(map: RegisterMap): number {
  const addresses = map.discreteInputs.map((i) => i.address);
  const count = Math.max(...addresses) - Math.min(...addresses) + 1;
  return READ_REQUEST_BYTES + readBitsResponseBytes(count);
}

/**
 * The theoretical time (ms) to poll `modules` modules once on one bus at `baud`: per module, the
 * FC02 request on the wire, the module's turnaround (from the request's last bit to the response's
 * first; never shorter than the 3.5-character gap the line requires between frames), the response
 * on the wire, and the 3.5-character gap before the master may send the next request.
 */
export function wireLimitMs(modules: number, baud: number, turnaroundMs: number, map: RegisterMap = GENERIC_8IO): number {
  const total = pollCycleBytes(map);
  const gap = interFrameGapMs(baud);
  return modules * (wireTimeMs(total, baud) + Math.max(turnaroundMs, gap) + gap);
}
