/**
 * Refuses an MQTT packet larger than the configured maximum before it is buffered: Aedes has no such
 * limit, so an unauthenticated socket announcing a 200 MB packet would make it buffer all of it.
 * The guard reads each packet's fixed header (type byte + Remaining Length, MQTT 3.1.1 §2.2.3:
 * at most four bytes, seven bits each) as bytes pass, and destroys the socket as soon as a header
 * announces too large a packet. Bytes are passed to Aedes unchanged.
 */
import { Duplex } from 'node:stream';

export interface GuardOptions {
  maxPacketBytes: number;
  /** Called once when the socket is closed for a too-large or malformed header. */
  onReject: (reason: 'too-large' | 'malformed', announcedBytes: number) => void;
  /** Called with the packet id of every PUBACK the client sends (for delivery tracking). */
  onPuback?: (messageId: number) => void;
  /** Called with every chunk the broker writes to the client (for delivery tracking). */
  onOutbound?: (chunk: Buffer) => void;
  /**
   * The peer's address, when `inner` does not carry it (a WebSocket stream: take it from the HTTP
   * request's socket). Recorded once, so it is still known after the socket has closed.
   */
  remoteAddress?: string;
}

const PUBACK = 4;

/** Incremental fixed-header reader; returns false as soon as the stream must be cut. */
export class PacketSizeInspector {
  /** Bytes of the current packet's body still to skip. */
  private skip = 0;
  /** Header bytes seen so far of the current packet (0 = expecting the type byte). */
  private headerLen = 0;
  private remaining = 0;
  private multiplier = 1;
  private type = 0;
  /** Bytes of a PUBACK's packet id still to read, and what was read. */
  private capture = 0;
  private captured = 0;

  constructor(
    private readonly max: number,
    private readonly onPuback?: (messageId: number) => void,
  ) {}

  /** Inspect a chunk. Returns null when fine, else the reason and the announced size. */
  inspect(chunk: Uint8Array): { reason: 'too-large' | 'malformed'; bytes: number } | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.capture > 0) {
        this.captured = (this.captured << 8) | chunk[i++];
        this.skip--;
        if (--this.capture === 0) this.onPuback?.(this.captured);
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const b = chunk[i++];
      if (this.headerLen === 0) {
        this.type = b >> 4;
        this.headerLen = 1;
        this.remaining = 0;
        this.multiplier = 1;
        continue;
      }
      // Remaining Length byte.
      this.remaining += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.headerLen++;
      if (b & 0x80) {
        if (this.headerLen > 4) return { reason: 'malformed', bytes: -1 };
        continue;
      }
      const total = this.headerLen + this.remaining;
      if (total > this.max) return { reason: 'too-large', bytes: total };
      this.skip = this.remaining;
      this.headerLen = 0;
      if (this.type === PUBACK && this.onPuback && this.remaining >= 2) {
        this.capture = 2;
        this.captured = 0;
      }
    }
    return null;
  }
}

/** A duplex over `inner` (a socket or a WebSocket stream) whose readable side is inspected. */
export class PacketSizeGuard extends Duplex {
  private readonly inspector: PacketSizeInspector;
  private rejected = false;
  /** The real peer's address (login throttling is keyed by it); undefined only if it was never known. */
  readonly remoteAddress: string | undefined;

  constructor(
    private readonly inner: Duplex,
    private readonly opts: GuardOptions,
  ) {
    super({ allowHalfOpen: false });
    this.remoteAddress = opts.remoteAddress ?? (inner as unknown as { remoteAddress?: string }).remoteAddress;
    this.inspector = new PacketSizeInspector(opts.maxPacketBytes, opts.onPuback);
    inner.on('data', (chunk: Buffer) => {
      if (this.rejected) return;
      const bad = this.inspector.inspect(chunk);
      if (bad) {
        this.rejected = true;
        this.opts.onReject(bad.reason, bad.bytes);
        inner.destroy();
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed) return cb();
    this.opts.onOutbound?.(chunk);
    this.inner.write(chunk, encoding, (err) => cb(err ?? null));
  }

  /** Chunks aedes wrote while the socket was busy go out as one write (one syscall, one TCP segment). */
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed) return cb();
    const all = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.opts.onOutbound?.(all);
    this.inner.write(all, (err) => cb(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy();
    cb(err);
  }
}
