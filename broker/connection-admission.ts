/**
 * Which sockets the MQTT listeners keep, decided at the TCP accept, before a socket costs more
 * than its descriptor. Idle sockets from a few processes used to take the gateway to its
 * descriptor limit, and then a registered device found no room. Bounded here:
 *
 * - all sockets (TCP and WebSocket, logged in or not): `maxConnections`, kept below the process's
 *   descriptor limit (read from /proc where there is one);
 * - sockets that have not logged in yet ("pending", from the accept until aedes accepts the
 *   CONNECT): `maxPendingPerAddress` per remote address and `maxPending` in total. A device logs
 *   in within milliseconds, an idle socket does not, so the place of a socket pending longer
 *   than `evictableAfterMs` can be taken: at the per-address cap a newcomer replaces that
 *   address's oldest pending socket if it is that old (a device behind the NAT of a process
 *   holding idle sockets still gets in; a reconnect storm behind one NAT is refused and retried
 *   rather than resetting handshakes under way); when the total is full, a newcomer from an
 *   address holding fewer pending sockets than the busiest address replaces that address's
 *   oldest pending socket, however many idle sockets others hold (and a newcomer from the
 *   busiest address itself replaces its own address's oldest, if that one is idle).
 *
 * A refused socket is destroyed at once. Refusals are counted (Counters `refused.connection.*`)
 * and logged as one summary line per interval, never one per socket.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Logger } from '../gateway/logger.js';
import type { Counters } from '../gateway/metrics.js';

export interface AdmissionOptions {
  log: Logger;
  counters: Counters;
  maxConnections: number;
  maxPending: number;
  maxPendingPerAddress: number;
  /** A socket pending this long is taken for idle: a newcomer from its address may take its place. */
  evictableAfterMs: number;
  /** One summary line of refusals per this interval (when there were any). */
  logIntervalMs: number;
  now?: () => number;
  /** The process's open-file limit; default read from /proc/self/limits (null = unknown). */
  fdLimit?: number | null;
}

/** Descriptors kept free for everything that is not an MQTT socket (database, buses, HTTP, admin). */
export const FD_RESERVE = 256;

export type RefusalReason = 'per-address' | 'pending-total' | 'total';

interface Ticket {
  address: string;
  sinceMs: number;
  socket: Socket;
  pending: boolean;
  open: boolean;
}

/** The soft "Max open files" of this process, or null where /proc does not say. */
export function processFdLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** `::ffff:127.0.0.2` and `127.0.0.2` are one address. */
function addressOf(socket: Socket): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class ConnectionAdmission {
  /** Pending tickets by address, oldest first (a Set keeps insertion order). */
  private readonly pendingByAddress = new Map<string, Set<Ticket>>();
  private readonly tickets = new WeakMap<object, Ticket>();
  private pending = 0;
  private open = 0;
  readonly maxConnections: number;
  private timer: NodeJS.Timeout | null = null;
  private tally = { refused: { 'per-address': 0, 'pending-total': 0, total: 0 } as Record<RefusalReason, number>, evicted: 0 };
  private readonly refusedBy = new Map<string, number>();

  constructor(private readonly opts: AdmissionOptions) {
    const limit = opts.fdLimit === undefined ? processFdLimit() : opts.fdLimit;
    const budget = limit === null ? Infinity : Math.max(1, limit - FD_RESERVE);
    this.maxConnections = Math.min(opts.maxConnections, budget);
    if (this.maxConnections < opts.maxConnections) {
      opts.log.warn(
        { configured: opts.maxConnections, fdLimit: limit, used: this.maxConnections },
        'mqtt.maxConnections lowered below the process descriptor limit (raise `ulimit -n` to allow more)',
      );
    }
  }

  start(): void {
    this.timer = setInterval(() => this.summarize(), this.opts.logIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.summarize();
  }

  /**
   * A listener accepted `socket` (TCP, or the HTTP socket a WebSocket will upgrade on). Returns
   * false after destroying it when it is refused; otherwise it is tracked until it closes.
   */
  admit(socket: Socket): boolean {
    const address = addressOf(socket);
    const reason = this.decide(address);
    if (reason) {
      this.refuse(socket, address, reason);
      return false;
    }
    const ticket: Ticket = { address, socket, pending: true, open: true, sinceMs: this.now() };
    this.open++;
    this.pending++;
    let set = this.pendingByAddress.get(address);
    if (!set) this.pendingByAddress.set(address, (set = new Set()));
    set.add(ticket);
    this.tickets.set(socket, ticket);
    socket.once('close', () => this.closed(ticket));
    return true;
  }

  /** The stream aedes handles for `socket` (the packet-size guard around it) is the same connection. */
  bind(stream: object, socket: Socket): void {
    const ticket = this.tickets.get(socket);
    if (ticket) this.tickets.set(stream, ticket);
  }

  /** Aedes accepted the CONNECT of the client on `stream`: it no longer counts as pending. */
  loggedIn(stream: object): void {
    const ticket = this.tickets.get(stream);
    if (ticket) this.unpend(ticket);
  }

  stats(): { open: number; pending: number; maxConnections: number } {
    return { open: this.open, pending: this.pending, maxConnections: this.maxConnections };
  }

  /** Why `address` may not have another socket, or null (after making room if the total is full). */
  private decide(address: string): RefusalReason | null {
    if (this.open >= this.maxConnections) return 'total';
    const own = this.pendingByAddress.get(address);
    const mine = own?.size ?? 0;
    const ownOldest = own?.values().next().value as Ticket | undefined;
    const ownIdle = ownOldest && this.now() - ownOldest.sinceMs >= this.opts.evictableAfterMs ? ownOldest : null;
    if (mine >= this.opts.maxPendingPerAddress) {
      if (!ownIdle) return 'per-address';
      this.evict(ownIdle);
      return null;
    }
    if (this.pending < this.opts.maxPending) return null;
    // Full: make room at the busiest address, unless the newcomer's own address is (one of) it;
    // then at its own address, if its oldest there is idle.
    let busiest: Set<Ticket> | null = null;
    for (const set of this.pendingByAddress.values()) if (!busiest || set.size > busiest.size) busiest = set;
    if (busiest && busiest.size > mine + 1) {
      this.evict(busiest.values().next().value as Ticket);
      return null;
    }
    if (!ownIdle) return 'pending-total';
    this.evict(ownIdle);
    return null;
  }

  /** Close a pending socket to make room for a newcomer (counted as `refused.connection.evicted`). */
  private evict(ticket: Ticket): void {
    this.unpend(ticket);
    this.release(ticket);
    ticket.socket.destroy();
    this.opts.counters.inc('refused.connection.evicted');
    this.tally.evicted++;
    this.count(ticket.address);
  }

  private now(): number {
    return this.opts.now?.() ?? performance.now();
  }

  private refuse(socket: Socket, address: string, reason: RefusalReason): void {
    socket.destroy();
    this.opts.counters.inc(`refused.connection.${reason}`);
    this.tally.refused[reason]++;
    this.count(address);
  }

  private count(address: string): void {
    // Bounded: an attacker with many addresses must not grow this map without limit.
    if (this.refusedBy.size < 1000 || this.refusedBy.has(address)) this.refusedBy.set(address, (this.refusedBy.get(address) ?? 0) + 1);
  }

  private unpend(ticket: Ticket): void {
    if (!ticket.pending) return;
    ticket.pending = false;
    this.pending--;
    const set = this.pendingByAddress.get(ticket.address);
    set?.delete(ticket);
    if (set?.size === 0) this.pendingByAddress.delete(ticket.address);
  }

  private release(ticket: Ticket): void {
    if (!ticket.open) return;
    ticket.open = false;
    this.open--;
  }

  private closed(ticket: Ticket): void {
    this.unpend(ticket);
    this.release(ticket);
  }

  private summarize(): void {
    const { refused, evicted } = this.tally;
    const total = refused['per-address'] + refused['pending-total'] + refused.total + evicted;
    if (total === 0) return;
    const top = [...this.refusedBy].sort((a, b) => b[1] - a[1]).slice(0, 5);
    this.opts.log.warn(
      {
        code: 'LF_ERR_TOO_MANY_CONNECTIONS',
        refused: { ...refused },
        evicted,
        topAddresses: Object.fromEntries(top),
        ...this.stats(),
        limits: { maxConnections: this.maxConnections, maxPending: this.opts.maxPending, maxPendingPerAddress: this.opts.maxPendingPerAddress },
      },
      'connections refused',
    );
    this.tally = { refused: { 'per-address': 0, 'pending-total': 0, total: 0 }, evicted: 0 };
    this.refusedBy.clear();
  }
}
