/**
 * The embedded Aedes broker: its listeners (TCP, WebSocket) behind the packet-size guard, and the
 * policy of broker/policy.ts adapted to Aedes' hooks (this is the one file that does so).
 * What a message means is not decided here: accepted messages go to a `BrokerBackend` (the
 * gateway), whose promise decides when the PUBACK goes out.
 */
import { Aedes, type Client, type AuthenticateError, type PublishPacket, type Subscription } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../gateway/logger.js';
import type { Counters } from '../gateway/metrics.js';
import { PacketSizeGuard } from './packet-size-guard.js';
import { DeliveryTap } from './delivery-tap.js';
import { SessionLimits, restoredSubscriptions, type SessionLimitsOptions } from './session-limits.js';
import { ConnectionAdmission, type AdmissionOptions } from './connection-admission.js';
import type { LoginThrottle } from '../gateway/security/login-throttle.js';
import {
  canPublish,
  canSetWill,
  canSubscribe,
  checkClientId,
  deliveryRecipient,
  hasForbiddenIdChars,
  type Principal,
  type Recipient,
} from './policy.js';
import type { ParsedTopic } from '../firmware-contracts/mqtt/topics.js';

/** What the gateway does with what the policy let through. */
export interface BrokerBackend {
  /** Resolve the principal for a login, or null for bad credentials. Asynchronous (scrypt for people). */
  authenticate(username: string, password: Buffer): Promise<Principal | null>;
  /** Is this a registered device id? (A person may not use one as client id.) */
  isDeviceId(id: string): boolean;
  /**
   * A publish the ACL allows, on `topic`. Resolve when the device may be told "got it" (after the
   * commit); reject only for what must close the connection without a PUBACK.
   */
  onPublish(principal: Principal, topic: ParsedTopic, payload: Buffer, conn: ConnectionState): Promise<void>;
  /** A recipient's client PUBACKed a message the gateway sent it. */
  onDelivered(recipient: Recipient, principal: Principal, topic: string, payload: Buffer): void;
  /** A recipient's client subscribed to its alerts/alarms/commands topic: re-send what it has not answered. */
  onSubscribed(recipient: Recipient): void;
}

/** Per-connection state a backend may keep (e.g. the last seq of a device that sends no boot). */
export interface ConnectionState {
  lastSeqWithoutBoot?: number;
}

export interface BrokerOptions {
  log: Logger;
  counters: Counters;
  backend: BrokerBackend;
  host: string;
  port: number;
  wsPort: number;
  maxPacketBytes: number;
  connectTimeoutMs: number;
  /** A client that takes no bytes, or acknowledges no QoS 1 message, for this long is cut off (packet-size-guard.ts). */
  stallTimeoutMs: number;
  /** Bytes buffered toward one client at most; one more cuts it off. */
  maxBufferedBytes: number;
  /** What sockets are kept at accept (broker/connection-admission.ts). */
  admission: Omit<AdmissionOptions, 'log' | 'counters'>;
  /** What one client's session may hold (broker/session-limits.ts). */
  sessions: Omit<SessionLimitsOptions, 'log' | 'counters'>;
  /** Every login goes through it (gateway/security/login-throttle.ts), keyed by the peer's address. */
  loginThrottle: LoginThrottle;
}

const PRINCIPAL = Symbol('lianfang.principal');
const CONN_STATE = Symbol('lianfang.conn');

type LfClient = Client & { [PRINCIPAL]?: Principal; [CONN_STATE]?: ConnectionState };

function authError(message: string, returnCode: 2 | 3 | 4 | 5): AuthenticateError {
  const err = new Error(message) as AuthenticateError;
  err.returnCode = returnCode;
  return err;
}

export class Broker {
  aedes!: Aedes;
  private tcp: Server | null = null;
  private http: HttpServer | null = null;
  private wss: WebSocketServer | null = null;
  private readonly sockets = new Set<Duplex>();
  /** Recipients with a live subscription, and by how many clients. */
  private readonly live = new Map<string, number>();
  ports = { mqtt: 0, ws: 0 };
  private readonly sessions: SessionLimits;
  private readonly admission: ConnectionAdmission;

  constructor(private readonly opts: BrokerOptions) {
    const { log, counters } = opts;
    this.sessions = new SessionLimits({ log, counters, ...opts.sessions });
    this.admission = new ConnectionAdmission({ log, counters, ...opts.admission });
  }

  async start(): Promise<void> {
    const { log, counters, backend } = this.opts;
    this.aedes = await Aedes.createBroker({
      connectTimeout: this.opts.connectTimeoutMs,
      maxClientsIdLength: 64,
      // A device's PUBACK waits for the group commit; keep a burst of them in flight.
      concurrency: 1000,
      // Bounded sessions; QoS 2 is downgraded in authorizePublish, so none awaits a PUBREL (the
      // aedes per-connection cap stays as a second line).
      persistence: this.sessions.persistence as never,
      maxInflightInbound: 16,
      authenticate: (client, username, password, cb) => {
        const c = client as LfClient;
        // Malformed logins go through the throttle too: they are failures of their address, counted
        // and logged in summary like bad passwords, so a flood of them cannot fill the log either.
        const badClientId = hasForbiddenIdChars(client.id);
        const malformed = badClientId || !username || !password || hasForbiddenIdChars(username);
        this.opts.loginThrottle
          .attempt({
            // Recorded by the guard at accept: aedes' client.conn is the guard, not the socket.
            address: (client.conn as unknown as PacketSizeGuard).remoteAddress,
            account: username ? username.slice(0, 64) : '(none)',
            code: badClientId ? 'LF_ERR_BAD_CLIENT_ID' : 'LF_ERR_BAD_CREDENTIALS',
            check: () => (malformed ? null : backend.authenticate(username, password!)),
            // A registered device's token is an HMAC, microseconds: it never queues behind scrypt.
            costly: malformed ? false : !backend.isDeviceId(username),
            abandoned: () => (client as unknown as { closed: boolean }).closed,
          })
          .then(
            (outcome) => {
              if (outcome.status === 'busy') return cb(authError('too many login attempts; try again later', 3), false);
              // aedes drops the answer to a client that has closed; this only ends the attempt.
              if (outcome.status === 'abandoned') return cb(authError('connection closed', 5), false);
              if (outcome.status === 'failed') {
                return cb(badClientId ? authError('client id refused', 2) : authError('bad username or password', 4), false);
              }
              const principal = outcome.value;
              const badId = checkClientId(principal, client.id, (id) => backend.isDeviceId(id));
              if (badId) {
                counters.inc('refused.LF_ERR_BAD_CLIENT_ID');
                log.warn({ clientId: client.id, username, code: 'LF_ERR_BAD_CLIENT_ID', reason: badId }, 'connection refused');
                return cb(authError(badId, 5), false);
              }
              const will = (client as unknown as { _will?: { topic: string } })._will;
              if (will && !canSetWill(principal, will.topic)) {
                counters.inc('refused.LF_ERR_FORBIDDEN_TOPIC');
                log.warn({ clientId: client.id, code: 'LF_ERR_FORBIDDEN_TOPIC', topic: will.topic }, 'connection refused: will topic not allowed');
                return cb(authError('will topic not allowed', 5), false);
              }
              c[PRINCIPAL] = principal;
              c[CONN_STATE] = {};
              cb(null, true);
            },
            (err) => {
              log.error({ err, clientId: client.id }, 'authentication failed');
              cb(authError('authentication failed', 5), false);
            },
          );
      },
      authorizePublish: (client, packet, cb) => {
        const c = client as LfClient | null;
        const principal = c?.[PRINCIPAL];
        if (!c || !principal) return cb(new Error('not authenticated'));
        this.sessions.downgradePublish(packet);
        const d = canPublish(principal, packet.topic);
        if (!d.ok) {
          counters.inc('refused.LF_ERR_FORBIDDEN_TOPIC');
          log.warn({ clientId: c.id, topic: packet.topic, code: 'LF_ERR_FORBIDDEN_TOPIC', reason: d.reason }, 'publish refused; closing');
          return cb(new Error(d.reason));
        }
        // Only a device's status is retained (and its LWT); nothing else may sit in the retained store.
        if (packet.retain && d.topic.kind !== 'device-status') packet.retain = false;
        backend.onPublish(principal, d.topic, packet.payload as Buffer, c[CONN_STATE]!).then(
          () => cb(null),
          (err: Error) => cb(err),
        );
      },
      authorizeSubscribe: (client, sub: Subscription, cb) => {
        const c = client as LfClient;
        const principal = c[PRINCIPAL];
        const d = principal ? canSubscribe(principal, sub.topic) : ({ ok: false, reason: 'not authenticated' } as const);
        if (!d.ok) {
          counters.inc('refused.LF_ERR_FORBIDDEN_TOPIC');
          log.warn({ clientId: c.id, topic: sub.topic, code: 'LF_ERR_FORBIDDEN_TOPIC', reason: d.reason }, 'subscription refused');
          // A negative SUBACK (0x80), not a disconnect.
          return cb(null, null);
        }
        cb(null, this.sessions.grantSubscription(sub));
      },
    });

    this.aedes.on('subscribe', (subs, client) => {
      const principal = (client as LfClient)[PRINCIPAL];
      if (!principal) return;
      for (const s of subs) {
        if ((s.qos as number) === 128) continue;
        const r = deliveryRecipient(principal, s.topic);
        if (!r) continue;
        const key = `${r.kind}:${r.id}`;
        const seen = ((client as LfClient & { _lfLive?: Set<string> })._lfLive ??= new Set());
        if (!seen.has(key)) {
          seen.add(key);
          this.live.set(key, (this.live.get(key) ?? 0) + 1);
        }
        // After the SUBACK and the subscription are in place.
        setImmediate(() => backend.onSubscribed(r));
      }
    });
    const forget = (client: Client) => {
      const seen = (client as LfClient & { _lfLive?: Set<string> })._lfLive;
      if (!seen) return;
      for (const key of seen) {
        const n = (this.live.get(key) ?? 1) - 1;
        if (n <= 0) this.live.delete(key);
        else this.live.set(key, n);
      }
      seen.clear();
    };
    this.aedes.on('clientDisconnect', forget);
    this.aedes.on('client', (client) => {
      this.admission.loggedIn(client.conn);
      this.sessions.seen(client);
    });
    this.aedes.on('clientDisconnect', (client) => this.sessions.seen(client));
    // A persistent session's subscriptions come back without a SUBSCRIBE (aedes restores them, and
    // emits no 'subscribe'): they count as one, so the recipient is live and the outbox re-sends
    // what it has not answered, including what the bounded session queue dropped.
    this.aedes.on('clientReady', (client) => {
      const subs = restoredSubscriptions(client);
      if (subs.length) this.aedes.emit('subscribe', subs, client);
    });
    this.sessions.start();
    this.admission.start();
    this.aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'));
    this.aedes.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'connection error'));

    await this.listenTcp();
    await this.listenWs();
  }

  private guard(inner: Duplex, remoteAddress?: string): PacketSizeGuard {
    const { counters, log, maxPacketBytes, backend } = this.opts;
    const clientOf = () => (g as unknown as { client?: LfClient }).client;
    const tap = new DeliveryTap(
      ({ topic, payload }) => {
        const principal = clientOf()?.[PRINCIPAL];
        if (!principal) return;
        const r = deliveryRecipient(principal, topic);
        if (r) backend.onDelivered(r, principal, topic, payload);
      },
      () => (clientOf() as unknown as { version?: number } | undefined)?.version ?? undefined,
    );
    const g: PacketSizeGuard = new PacketSizeGuard(inner, {
      remoteAddress,
      maxPacketBytes,
      onPuback: (id) => tap.puback(id),
      onOutbound: (chunk) => tap.outbound(chunk),
      stallTimeoutMs: this.opts.stallTimeoutMs,
      maxBufferedBytes: this.opts.maxBufferedBytes,
      unackedSince: () => tap.oldestUnackedAt(),
      onStall: ({ reason, bufferedBytes, stalledMs }) => {
        counters.inc('mqtt.stalled-cut');
        const c = clientOf();
        // What it had not acknowledged is still undelivered in the outbox: re-sent when it subscribes again.
        log.warn(
          { clientId: c?.id, reason, bufferedBytes, stalledMs, stallTimeoutMs: this.opts.stallTimeoutMs },
          'client cut off: it stopped reading',
        );
      },
      onReject: (reason, bytes) => {
        counters.inc(reason === 'too-large' ? 'refused.LF_ERR_PACKET_TOO_LARGE' : 'refused.malformed-header');
        log.warn({ code: 'LF_ERR_PACKET_TOO_LARGE', reason, announcedBytes: bytes, max: maxPacketBytes }, 'socket closed before buffering the packet');
      },
    });
    this.sockets.add(g);
    g.on('close', () => this.sockets.delete(g));
    return g;
  }

  private listenTcp(): Promise<void> {
    this.tcp = createServer((socket: Socket) => {
      // A refused socket is destroyed before anything else is spent on it.
      if (!this.admission.admit(socket)) return;
      socket.setNoDelay(true);
      const g = this.guard(socket);
      this.admission.bind(g, socket);
      this.sessions.adapt(this.aedes.handle(g as unknown as Socket));
    });
    return new Promise((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen(this.opts.port, this.opts.host, () => {
        this.ports.mqtt = (this.tcp!.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private listenWs(): Promise<void> {
    // A socket that sends no upgrade request is closed as an MQTT socket without CONNECT is.
    const idleMs = this.opts.connectTimeoutMs;
    const checkMs = Math.max(100, Math.min(idleMs, 30_000) / 2);
    this.http = createHttpServer({ headersTimeout: idleMs, requestTimeout: idleMs, connectionsCheckingInterval: checkMs }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n');
    });
    // headersTimeout only runs once a request has begun: a socket silent from the start is closed
    // by the inactivity timeout (ws clears it on the upgraded socket).
    this.http.setTimeout(idleMs);
    // Admission counts from the TCP accept, before the HTTP upgrade.
    this.http.on('connection', (socket: Socket) => void this.admission.admit(socket));
    this.wss = new WebSocketServer({ server: this.http, maxPayload: this.opts.maxPacketBytes });
    this.wss.on('connection', (ws, req: IncomingMessage) => this.attachWebSocket(ws, req));
    return new Promise((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(this.opts.wsPort, this.opts.host, () => {
        this.ports.ws = (this.http!.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /**
   * An MQTT-over-WebSocket client upgraded elsewhere: the WebSocket listener's, or the console's
   * `/mqtt` on the HTTP port (which lets in only a request with a live session). It logs in like
   * any client; admission counts it from its TCP accept on the HTTP port.
   */
  attachWebSocket(ws: WebSocket, req: IncomingMessage, opts: { admit?: boolean } = {}): void {
    // The console's sockets were not accepted by a broker listener: admission counts them here.
    if (opts.admit && !this.admission.admit(req.socket as Socket)) return ws.terminate();
    const stream = createWebSocketStream(ws);
    stream.on('error', () => stream.destroy());
    const g = this.guard(stream, req.socket.remoteAddress);
    this.admission.bind(g, req.socket as Socket);
    this.sessions.adapt(this.aedes.handle(g as unknown as Socket, req as never));
  }

  /** Publish from the gateway itself, QoS 1 (bypasses authorizePublish by design). */
  publish(topic: string, payload: string): void {
    this.aedes.publish(
      { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false } as PublishPacket,
      (err) => {
        if (err) this.opts.log.error({ err, topic }, 'publish failed');
      },
    );
  }

  /** Does a recipient have a live subscription right now? */
  isLive(kind: Recipient['kind'], id: string): boolean {
    return this.live.has(`${kind}:${id}`);
  }

  connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** What the listeners and the session store hold right now (for /health). */
  limits(): { connections: ReturnType<ConnectionAdmission['stats']>; sessions: ReturnType<SessionLimits['stats']> } {
    return { connections: this.admission.stats(), sessions: this.sessions.stats() };
  }

  /** The clients connected now that have logged in, with who they are. */
  private loggedIn(): [LfClient, Principal][] {
    const clients = Object.values((this.aedes as unknown as { clients: Record<string, LfClient> }).clients);
    return clients.flatMap((c) => (c[PRINCIPAL] ? [[c, c[PRINCIPAL]] as [LfClient, Principal]] : []));
  }

  /** Who is logged in right now (`device list`'s online column). */
  principals(): Principal[] {
    return this.loggedIn().map(([, p]) => p);
  }

  /** Disconnect every client whose login `match`es (a revoked or re-keyed device, a revoked user). */
  disconnect(match: (p: Principal) => boolean): number {
    let n = 0;
    for (const [client, p] of this.loggedIn()) {
      if (!match(p)) continue;
      client.close();
      n++;
    }
    return n;
  }

  async stop(): Promise<void> {
    this.sessions.stop();
    this.admission.stop();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.wss ? this.wss.close(() => r()) : r()));
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    await new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r()));
    await new Promise<void>((r) => (this.aedes ? this.aedes.close(() => r()) : r()));
  }
}
