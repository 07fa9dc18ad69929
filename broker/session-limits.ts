/**
 * What one MQTT client may make the broker hold, bounded. Aedes 1.x keeps persistent sessions
 * (clean = false) forever and queues their QoS 1 messages without a limit (moscajs/aedes#599,
 * #839, #1087); its `maxInflightInbound` bounds QoS 2 packets awaiting PUBREL per *connection*
 * only, so a client that reconnects with the same persistent session piles them up. Here:
 *
 * - QoS 2 is not in the contract (README "MQTT topic contract v1": all QoS 1). A QoS 2 PUBLISH is
 *   taken as QoS 1 (`downgradePublish`, called from authorizePublish, which runs before aedes'
 *   publish handler looks at the QoS): the event takes the one ingest, is answered with a PUBACK,
 *   and nothing waits for a PUBREL. A QoS 2 SUBSCRIBE is granted QoS 1.
 * - The session store (`BoundedPersistence`, the in-memory aedes-persistence with its queues
 *   replaced) keeps at most `maxQueuedPerSession` messages per client id, the oldest dropped
 *   first, at most `maxSessions` persistent sessions (the longest idle one evicted), and forgets a
 *   session that has had no connection for `sessionExpiryMs`.
 *
 * Dropping what a session holds never loses an alarm: the outbox keeps every undelivered alert and
 * re-sends it when its recipient subscribes again (broker.ts 'subscribe' → backend.onSubscribed).
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Aedes, Client, PublishPacket, Subscription } from 'aedes';
import type { Logger } from '../gateway/logger.js';
import type { Counters } from '../gateway/metrics.js';

const require = createRequire(import.meta.url);

/** The part of aedes-persistence's in-memory store (asyncPersistence.js) that this file builds on. */
interface MemoryPersistenceBase {
  readonly broker: Aedes | undefined;
  setup(broker: Aedes): Promise<void>;
  addSubscriptions(client: { id: string }, subs: Subscription[]): Promise<void>;
  subscriptionsByClient(client: { id: string }): Promise<Subscription[]>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  subscriptionsByTopic(topic: string): Promise<(Subscription & { clientId: string })[]>;
}
type Packet = PublishPacket & { brokerId?: string; brokerCounter?: number; messageId?: number };
interface PacketCtor {
  new (p: Packet): Packet;
}
const MemoryPersistence = require('aedes-persistence/asyncPersistence.js') as new () => MemoryPersistenceBase;
const AedesPacket = require('aedes-packet') as PacketCtor;

export interface SessionLimitsOptions {
  log: Logger;
  counters: Counters;
  /** Messages one persistent session may hold (queued while offline, or sent and not yet PUBACKed). */
  maxQueuedPerSession: number;
  /** Persistent sessions kept; beyond this the one idle longest is forgotten. */
  maxSessions: number;
  /** A persistent session without a connection for this long is forgotten. */
  sessionExpiryMs: number;
  /** One summary line per this interval (when something was bounded). */
  logIntervalMs: number;
  now?: () => number;
}

export interface SessionStats {
  /** Client ids with a persistent session (subscriptions or queued messages). */
  persistentSessions: number;
  /** Messages held for persistent sessions. */
  queuedMessages: number;
  /** QoS 2 packets stored awaiting PUBREL (0 while QoS 2 is downgraded). */
  incomingHeld: number;
}

interface SessionEntry {
  /** Last connect, disconnect or session use (ms). */
  lastSeenMs: number;
}

/**
 * The in-memory session store, bounded. Every method that touches the outgoing and incoming
 * packet maps is replaced (so the base class's own maps stay empty); subscriptions, retained
 * messages and wills stay with the base class.
 */
export class BoundedPersistence extends MemoryPersistence {
  private readonly outgoing = new Map<string, Packet[]>();
  private readonly incoming = new Map<string, Map<number, Packet>>();
  /** Persistent sessions in least-recently-seen order (Map keeps insertion order; a touch re-inserts). */
  private readonly sessions = new Map<string, SessionEntry>();
  /** Subscriptions authorizeSubscribe granted: aedes stores a SUBSCRIBE's whole list, refused ones too. */
  private readonly granted = new WeakSet<object>();
  private queued = 0;
  private held = 0;
  /** What happened since the last summary line. */
  readonly tally = { dropped: 0, expired: 0, evicted: 0, notGranted: 0 };

  constructor(private readonly limits: SessionLimitsOptions) {
    super();
  }

  private now(): number {
    return this.limits.now?.() ?? Date.now();
  }

  /** authorizeSubscribe let this subscription through (the same object aedes then stores). */
  grant(sub: Subscription): void {
    this.granted.add(sub);
  }

  /** A client of this id connected or disconnected: its session's idle time starts again. */
  touch(clientId: string): void {
    const s = this.sessions.get(clientId);
    if (!s) return;
    this.sessions.delete(clientId);
    s.lastSeenMs = this.now();
    this.sessions.set(clientId, s);
  }

  private isConnected(clientId: string): boolean {
    const clients = (this.broker as unknown as { clients?: Record<string, unknown> } | undefined)?.clients;
    return !!clients && clientId in clients;
  }

  /** A client id now holds persistent state; keep the number of such sessions bounded. */
  private async track(clientId: string): Promise<void> {
    if (this.sessions.has(clientId)) return this.touch(clientId);
    this.sessions.set(clientId, { lastSeenMs: this.now() });
    if (this.sessions.size <= this.limits.maxSessions) return;
    for (const id of this.sessions.keys()) {
      if (id === clientId || this.isConnected(id)) continue;
      await this.forget(id);
      this.limits.counters.inc('sessions.evicted');
      this.tally.evicted++;
      return;
    }
  }

  /** Drop everything a session holds: its stored subscriptions, queued and incoming packets. */
  private async forget(clientId: string): Promise<void> {
    this.sessions.delete(clientId);
    await super.cleanSubscriptions({ id: clientId });
    this.queued -= this.outgoing.get(clientId)?.length ?? 0;
    this.outgoing.delete(clientId);
    this.held -= this.incoming.get(clientId)?.size ?? 0;
    this.incoming.delete(clientId);
  }

  /** Forget the sessions idle longer than the expiry. Called by `SessionLimits` on its timer. */
  async expire(): Promise<number> {
    const cutoff = this.now() - this.limits.sessionExpiryMs;
    const stale = [...this.sessions].filter(([id, s]) => s.lastSeenMs <= cutoff && !this.isConnected(id)).map(([id]) => id);
    for (const id of stale) await this.forget(id);
    this.limits.counters.inc('sessions.expired', stale.length);
    this.tally.expired += stale.length;
    return stale.length;
  }

  stats(): SessionStats {
    return { persistentSessions: this.sessions.size, queuedMessages: this.queued, incomingHeld: this.held };
  }

  // --- subscriptions: only granted ones are stored (an aedes SUBSCRIBE stores its whole list) ---

  override async addSubscriptions(client: { id: string }, subs: Subscription[]): Promise<void> {
    const ok = subs.filter((s) => this.granted.has(s));
    if (ok.length < subs.length) {
      this.limits.counters.inc('sessions.subscriptionsNotStored', subs.length - ok.length);
      this.tally.notGranted += subs.length - ok.length;
    }
    if (ok.length === 0) return;
    await super.addSubscriptions(client, ok);
    await this.track(client.id);
  }

  override async subscriptionsByClient(client: { id: string }): Promise<Subscription[]> {
    // A reconnect is about to restore this session: it must not expire between here and registration.
    this.touch(client.id);
    return super.subscriptionsByClient(client);
  }

  override async cleanSubscriptions(client: { id: string }): Promise<void> {
    // Called when a clean session starts: nothing of an earlier persistent session survives it.
    await this.forget(client.id);
  }

  // --- outgoing: bounded per session, oldest dropped first ---

  private enqueue(clientId: string, packet: Packet): void {
    let queue = this.outgoing.get(clientId);
    if (!queue) this.outgoing.set(clientId, (queue = []));
    if (queue.length >= this.limits.maxQueuedPerSession) {
      // The oldest goes: the newest revision of an alert is the one that matters, and the outbox
      // re-sends whatever is still undelivered when the client subscribes again.
      queue.shift();
      this.queued--;
      this.limits.counters.inc('sessions.queueDropped');
      this.tally.dropped++;
    }
    queue.push(new AedesPacket(packet));
    this.queued++;
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void> {
    this.enqueue(sub.clientId, packet);
    await this.track(sub.clientId);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void> {
    for (const sub of subs) this.enqueue(sub.clientId, packet);
    for (const sub of subs) await this.track(sub.clientId);
  }

  /**
   * As aedes-persistence: give a queued packet its message id (or replace it by a PUBREL). A
   * packet the cap already dropped is not an error here (aedes would close the connection): it
   * is still sent, only no longer kept for a later connection; the outbox keeps the alarm.
   */
  async outgoingUpdate(client: { id: string }, packet: Packet): Promise<void> {
    const queue = this.outgoing.get(client.id) ?? [];
    for (let i = 0; i < queue.length; i++) {
      const q = queue[i];
      if (q.brokerId === packet.brokerId) {
        if (q.brokerCounter === packet.brokerCounter) {
          q.messageId = packet.messageId;
          return;
        }
      } else if (q.messageId === packet.messageId) {
        queue[i] = packet;
        return;
      }
    }
  }

  async outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<Packet | undefined> {
    const queue = this.outgoing.get(client.id);
    if (!queue) return undefined;
    const i = queue.findIndex((q) => q.messageId === packet.messageId);
    if (i < 0) return undefined;
    const [removed] = queue.splice(i, 1);
    this.queued--;
    if (queue.length === 0) this.outgoing.delete(client.id);
    return removed;
  }

  outgoingStream(client: { id: string }): Readable {
    // A copy: the queue changes while aedes streams it.
    return Readable.from([...(this.outgoing.get(client.id) ?? [])]);
  }

  // --- incoming QoS 2 (none while QoS 2 is downgraded; counted, so a regression shows) ---

  async incomingStorePacket(client: { id: string }, packet: Packet): Promise<void> {
    let store = this.incoming.get(client.id);
    if (!store) this.incoming.set(client.id, (store = new Map()));
    if (!store.has(packet.messageId!)) this.held++;
    const p = new AedesPacket(packet);
    p.messageId = packet.messageId;
    store.set(packet.messageId!, p);
  }

  async incomingGetPacket(client: { id: string }, packet: { messageId?: number }): Promise<Packet> {
    const p = this.incoming.get(client.id)?.get(packet.messageId!);
    if (!p) throw new Error('no such packet');
    return p;
  }

  async incomingDelPacket(client: { id: string }, packet: { messageId?: number }): Promise<void> {
    const store = this.incoming.get(client.id);
    if (!store?.delete(packet.messageId!)) throw new Error('no such packet');
    this.held--;
    if (store.size === 0) this.incoming.delete(client.id);
  }

  async cleanIncoming(client: { id: string }): Promise<void> {
    this.held -= this.incoming.get(client.id)?.size ?? 0;
    this.incoming.delete(client.id);
  }
}

/** The subscriptions a persistent session brought back on CONNECT (none for a clean session). */
export function restoredSubscriptions(client: Client): Subscription[] {
  if (client.clean) return [];
  const subs = (client as unknown as { subscriptions: Record<string, { qos: number }> }).subscriptions;
  return Object.entries(subs).map(([topic, s]) => ({ topic, qos: s.qos }) as Subscription);
}

/**
 * The session bounds as the broker uses them: the store to hand to Aedes, the QoS adaptations for
 * its hooks, a timer that expires idle sessions, and one summary line per interval.
 */
export class SessionLimits {
  readonly persistence: BoundedPersistence;
  private timer: NodeJS.Timeout | null = null;
  private logTimer: NodeJS.Timeout | null = null;
  private downgraded = { publish: 0, subscribe: 0 };

  constructor(private readonly opts: SessionLimitsOptions) {
    this.persistence = new BoundedPersistence(opts);
  }

  /** Sweep often enough that a session outlives its expiry by at most a quarter of it (≤ 1 min). */
  get sweepIntervalMs(): number {
    return Math.max(100, Math.min(60_000, Math.floor(this.opts.sessionExpiryMs / 4)));
  }

  start(): void {
    this.timer = setInterval(() => {
      this.persistence.expire().catch((err: unknown) => this.opts.log.error({ err }, 'session sweep failed'));
    }, this.sweepIntervalMs);
    this.timer.unref();
    this.logTimer = setInterval(() => this.summarize(), this.opts.logIntervalMs);
    this.logTimer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.logTimer) clearInterval(this.logTimer);
    this.timer = this.logTimer = null;
  }

  /**
   * Called by authorizePublish before aedes handles the QoS: a QoS 2 PUBLISH is taken as QoS 1,
   * so it is answered with a PUBACK and nothing is stored awaiting a PUBREL.
   */
  downgradePublish(packet: { qos: number }): void {
    if (packet.qos !== 2) return;
    packet.qos = 1;
    this.opts.counters.inc('mqtt.qos2Downgraded.publish');
    this.downgraded.publish++;
  }

  /**
   * Called with the aedes client of a new connection, before it has read a byte. A SUBSCRIBE
   * asking for QoS 2 is lowered to QoS 1 before aedes handles it: aedes fills the SUBACK from the
   * requested QoS, not from what authorizeSubscribe returns, so this is where QoS 1 is granted.
   */
  adapt(client: Client): void {
    const parser = (client as unknown as { _parser?: { prependListener(e: 'packet', f: (p: { cmd: string; subscriptions?: { qos: number }[] }) => void): void } })._parser;
    parser?.prependListener('packet', (p) => {
      if (p.cmd !== 'subscribe' || !p.subscriptions) return;
      for (const s of p.subscriptions) {
        if (s.qos !== 2) continue;
        s.qos = 1;
        this.opts.counters.inc('mqtt.qos2Downgraded.subscribe');
        this.downgraded.subscribe++;
      }
    });
  }

  /** Called by authorizeSubscribe for a granted subscription (QoS 2 is granted as QoS 1). */
  grantSubscription(sub: Subscription): Subscription {
    if (sub.qos === 2) {
      // In place: aedes persists the SUBSCRIBE packet's own objects, not the one returned.
      sub.qos = 1;
      this.opts.counters.inc('mqtt.qos2Downgraded.subscribe');
      this.downgraded.subscribe++;
    }
    this.persistence.grant(sub);
    return sub;
  }

  /** A client registered (CONNECT accepted) or went away. */
  seen(client: Client): void {
    if (client.id) this.persistence.touch(client.id);
  }

  stats(): SessionStats {
    return this.persistence.stats();
  }

  /** One line per interval in which something was bounded; nothing when nothing was. */
  private summarize(): void {
    const t = this.persistence.tally;
    const d = this.downgraded;
    if (!t.dropped && !t.expired && !t.evicted && !t.notGranted && !d.publish && !d.subscribe) return;
    this.opts.log.info(
      {
        expired: t.expired,
        evicted: t.evicted,
        queueDropped: t.dropped,
        subscriptionsNotStored: t.notGranted,
        qos2Downgraded: { ...d },
        ...this.stats(),
      },
      'session limits applied',
    );
    Object.assign(t, { dropped: 0, expired: 0, evicted: 0, notGranted: 0 });
    this.downgraded = { publish: 0, subscribe: 0 };
  }
}
