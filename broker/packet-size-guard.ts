/**
 * Refuses an MQTT packet larger than the configured maximum before it is buffered: Aedes has no such
 * limit, so an unauthenticated socket announcing a 200 MB packet would make it buffer all of it.
 * The guard reads each packet's fixed header (type byte + Remaining Length, MQTT 3.1.1 §2.2.3:
 * at most four bytes, seven bits each) as bytes pass, and destroys the socket as soon as a header
 * announces too large a packet. Bytes are passed to Aedes unchanged.
 *
 * On the write side it keeps one client from holding up the others (issue 7). Aedes waits for a
 * socket's 'drain' whenever a write returns false, and mqemitter does not free a message's
 * concurrency slot (shared by every client) until every subscriber's write has called back: a
 * subscriber that stops reading used to fill the slots, and nothing reached anyone until aedes'
 * 60 s drain timeout dropped it. So the guard buffers what the peer has not taken (bounded by
 * `maxBufferedBytes`) and answers every write at once, and cuts off a peer that makes no
 * progress: bytes handed to its socket not taken within `stallTimeoutMs`, or no acknowledgement
 * for that long while a QoS 1 message waits for one (a kernel's send buffer can hide a stalled
 * reader for megabytes). What it had not acknowledged stays in the outbox for its next connection.
 */
import { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';

/** Why a peer was cut off. */
export type StallReason = 'no-drain' | 'no-puback' | 'buffer-full';

export interface StallInfo {
  reason: StallReason;
  /** Bytes written by the broker and not yet taken by the peer's socket. */
  bufferedBytes: number;
  /** How long the peer made no progress (0 for buffer-full). */
  stalledMs: number;
}

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
  /**
   * A peer that has taken none of the bytes waiting for it, or not acknowledged the oldest QoS 1
   * message written to it, for this long is cut off. 0 = never.
   */
  stallTimeoutMs?: number;
  /** Bytes the guard buffers toward one peer at most; one more cuts it off. */
  maxBufferedBytes?: number;
  /** When (performance.now()) the oldest QoS 1 message written to the peer and not acknowledged was written. */
  unackedSince?: () => number | undefined;
  /** Called once when the guard cuts the peer off for a stall (before the socket is destroyed). */
  onStall?: (info: StallInfo) => void;
}

/** Without a configured cap: far above any burst the gateway writes to one client. */
const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** One write to the socket at most: each completed slice counts as progress of a slow reader. */
const WRITE_SLICE_BYTES = 64 * 1024;
/** Earliest re-check of a peer close to its deadline. */
const MIN_CHECK_MS = 20;

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
  private cut = false;
  /** Bytes handed to `inner` whose write has not completed. */
  private inFlight = 0;
  /** When the peer last took bytes, or when bytes started waiting for it. */
  private progressAt = 0;
  private watch: NodeJS.Timeout | null = null;
  private readonly stallMs: number;
  /** When the peer last acknowledged a message (its PUBACKs are progress, as bytes taken are). */
  private ackAt = 0;
  /** The real peer's address (login throttling is keyed by it); undefined only if it was never known. */
  readonly remoteAddress: string | undefined;

  constructor(
    private readonly inner: Duplex,
    private readonly opts: GuardOptions,
  ) {
    // The high-water mark is the cap: below it a write never returns false, so aedes never waits
    // for this client's 'drain' while holding a slot other clients need.
    const maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    super({ allowHalfOpen: false, writableHighWaterMark: maxBuffered });
    this.stallMs = opts.stallTimeoutMs ?? 0;
    this.remoteAddress = opts.remoteAddress ?? (inner as unknown as { remoteAddress?: string }).remoteAddress;
    this.inspector = new PacketSizeInspector(opts.maxPacketBytes, (id) => {
      this.ackAt = performance.now();
      opts.onPuback?.(id);
    });
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

  /** Only a write that reaches the cap returns false; the peer is then cut off. */
  override write(chunk: unknown, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    const ok = super.write(chunk, encoding as BufferEncoding, cb);
    if (!ok && !this.destroyed) {
      const bufferedBytes = this.writableLength;
      // Not from inside aedes' write: it still expects the stream it is writing to.
      process.nextTick(() => this.stalled({ reason: 'buffer-full', bufferedBytes, stalledMs: 0 }));
    }
    return ok;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed) return cb();
    this.opts.onOutbound?.(chunk);
    this.send(chunk, cb);
  }

  /** Chunks aedes wrote while the socket was busy go out as one write (one syscall, one TCP segment). */
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void {
    if (this.inner.destroyed) return cb();
    const all = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.opts.onOutbound?.(all);
    this.send(all, cb);
  }

  /** Hand `buf` to the socket in slices; each slice taken is progress. */
  private send(buf: Buffer, cb: (err?: Error | null) => void): void {
    this.inFlight = buf.length;
    this.progressAt = performance.now();
    this.arm();
    const step = (from: number) => {
      const to = Math.min(buf.length, from + WRITE_SLICE_BYTES);
      this.inner.write(from === 0 && to === buf.length ? buf : buf.subarray(from, to), (err) => {
        this.progressAt = performance.now();
        this.inFlight = buf.length - to;
        if (err || to === buf.length || this.inner.destroyed) {
          this.inFlight = 0;
          return cb(err ?? null);
        }
        step(to);
      });
    };
    step(0);
  }

  /** One timer per guard, only while something is owed by the peer. */
  private arm(delayMs = this.stallMs): void {
    if (this.stallMs <= 0 || this.watch || this.destroyed) return;
    this.watch = setTimeout(() => this.check(), Math.max(MIN_CHECK_MS, delayMs));
    this.watch.unref();
  }

  private check(): void {
    this.watch = null;
    if (this.destroyed) return;
    const now = performance.now();
    const drainMs = this.inFlight > 0 ? now - this.progressAt : 0;
    // Time without an acknowledgement while one is owed: a slow peer working through a burst keeps
    // acknowledging, even if the oldest message still waiting was written long ago.
    const since = this.opts.unackedSince?.();
    const ackMs = since !== undefined ? now - Math.max(since, this.ackAt) : 0;
    if (drainMs >= this.stallMs) return this.stalled({ reason: 'no-drain', bufferedBytes: this.writableLength, stalledMs: Math.round(drainMs) });
    if (ackMs >= this.stallMs) return this.stalled({ reason: 'no-puback', bufferedBytes: this.writableLength, stalledMs: Math.round(ackMs) });
    if (this.inFlight > 0 || since !== undefined) this.arm(this.stallMs - Math.max(drainMs, ackMs));
  }

  /**
   * Cut the peer off. A TCP peer gets a reset: a plain close would leave the kernel trying to
   * deliver its full send buffer to a peer that does not read.
   */
  private stalled(info: StallInfo): void {
    if (this.cut || this.destroyed) return;
    this.cut = true;
    this.opts.onStall?.(info);
    const socket = this.inner as Duplex & { resetAndDestroy?: () => void };
    if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed) socket.resetAndDestroy();
    this.destroy();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.watch) clearTimeout(this.watch);
    this.watch = null;
    if (!this.inner.destroyed) this.inner.destroy();
    cb(err);
  }
}
