/**
 * Wire time on a serial line. A pty moves bytes instantly, so simulators pace what they send at the
 * configured baud rate and wait the wire time of each frame they receive before their turnaround:
 * timing measured through them is the wire's, not zero.
 */

/** Bits on the wire per character: start + 8 data + parity or a second stop + stop (Modbus RTU: 11). */
export const BITS_PER_CHAR = 11;

/** Time in ms that `bytes` characters take on the wire at `baud`. */
export function wireTimeMs(bytes: number, baud: number, bitsPerChar = BITS_PER_CHAR): number {
  return (bytes * bitsPerChar * 1000) / baud;
}

/**
 * The Modbus RTU inter-frame gap: 3.5 character times, fixed at 1.75 ms above 19200 baud
 * (Modbus over serial line V1.02 §2.5.1.1).
 */
export function interFrameGapMs(baud: number): number {
  return baud > 19200 ? 1.75 : wireTimeMs(3.5, baud);
}

/** Resolve after `ms`, precisely enough for wire pacing (sub-millisecond waits spin briefly). */
export function waitMs(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  const until = performance.now() + ms;
  return new Promise((resolve) => {
    const tick = () => {
      const left = until - performance.now();
      if (left <= 0) return resolve();
      if (left > 2) setTimeout(tick, Math.max(0, left - 1.5));
      else setImmediate(tick);
    };
    tick();
  });
}

/**
 * Write `frame` through `write`, then wait its wire time: the line is busy until the last bit (for a
 * master whose next request must wait for the line; the simulators time each frame's arrival instead).
 */
export async function sendPaced(write: (b: Buffer) => void, frame: Buffer, baud: number, bitsPerChar = BITS_PER_CHAR): Promise<void> {
  const start = performance.now();
  write(frame);
  await waitMs(wireTimeMs(frame.length, baud, bitsPerChar) - (performance.now() - start));
}
