/**
 * Sees which QoS 1 messages a client has acknowledged. Aedes reports a PUBACK ('ack' event) with
 * the original packet only for persistent sessions (clean = false), and devices and consoles
 * connect with clean sessions; so the packet-size guard hands us what the broker writes to the
 * client and the packet id of every PUBACK the client sends, and we pair them
 * (docs/concepts.md "Delivered means answered").
 */
import mqttPacket from 'mqtt-packet';
import { performance } from 'node:perf_hooks';

export interface Delivered {
  topic: string;
  payload: Buffer;
}

/** In-flight QoS 1 messages of one connection, by packet id. */
export class DeliveryTap {
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  /** In write order (a re-used packet id moves to the end), so the first is the oldest. */
  private readonly inflight = new Map<number, Delivered & { writtenAt: number }>();

  constructor(
    private readonly onDelivered: (d: Delivered) => void,
    /** The protocol version, once the client's CONNECT has been read. */
    private readonly protocolVersion: () => number | undefined,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion: 4 });
    this.parser.on('packet', (p) => {
      if (p.cmd === 'publish' && p.qos > 0 && p.messageId !== undefined) {
        this.inflight.delete(p.messageId);
        this.inflight.set(p.messageId, {
          topic: p.topic,
          payload: Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload),
          writtenAt: performance.now(),
        });
        // A client that never answers must not grow this without bound.
        if (this.inflight.size > 65_535) this.inflight.delete(this.inflight.keys().next().value!);
      }
    });
    this.parser.on('error', () => {
      /* our own packets; a parse error here only loses delivery tracking, re-sending covers it */
    });
  }

  /** Bytes the broker wrote to the client. */
  outbound(chunk: Buffer): void {
    const v = this.protocolVersion();
    if (v !== undefined) (this.parser as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = v;
    this.parser.parse(chunk);
  }

  /** The client acknowledged packet `messageId`. */
  puback(messageId: number): void {
    const d = this.inflight.get(messageId);
    if (!d) return;
    this.inflight.delete(messageId);
    this.onDelivered({ topic: d.topic, payload: d.payload });
  }

  /** When (performance.now()) the oldest QoS 1 message not yet acknowledged was written; undefined if none. */
  oldestUnackedAt(): number | undefined {
    for (const d of this.inflight.values()) return d.writtenAt;
    return undefined;
  }
}
