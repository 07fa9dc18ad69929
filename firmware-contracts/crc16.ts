/**
 * CRC-16/MODBUS (polynomial 0x8005 reflected as 0xA001, initial value 0xFFFF, no final XOR), the
 * checksum of both wired contracts: Modbus RTU frames and the serial keypad protocol. On the wire it
 * is sent low byte first. Check value: crc16("123456789") = 0x4B37.
 */
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

export function crc16(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ buf[i]!) & 0xff]!;
  return crc;
}

/** `body` followed by its CRC, low byte first. */
export function withCrc(body: Uint8Array): Buffer {
  const out = Buffer.alloc(body.length + 2);
  out.set(body, 0);
  out.writeUInt16LE(crc16(body), body.length);
  return out;
}

/** True when the last two bytes of `frame` are the CRC of the rest, low byte first. */
export function crcOk(frame: Uint8Array, start = 0, end = frame.length): boolean {
  if (end - start < 3) return false;
  const got = frame[end - 2]! | (frame[end - 1]! << 8);
  return crc16(frame, start, end - 2) === got;
}
