/**
 * The web console's sessions (issue 11). A login gives the browser a random session id in an
 * HttpOnly, SameSite=Strict cookie; the database keeps only its keyed hash (as it keeps device
 * tokens), so neither a copy of the database nor a log line opens a console. Two values are derived
 * from the session id under the gateway key and never stored in clear:
 * - the CSRF token the page echoes in `x-csrf-token` on every state-changing request;
 * - the live-feed grant: the password the page's MQTT-over-WebSocket client logs in with, so no
 *   officer's password is kept in the browser. Its keyed hash finds the session again.
 * A session ends at logout, after `console.sessionIdleMs` without a request, after
 * `console.sessionMaxAgeMs` from its login, and when its user is revoked.
 */
import { randomBytes, createHmac, timingSafeEqual } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Clock } from '../clock.js';
import { iso } from '../clock.js';
import { keyedHash } from '../secrets.js';
import type { User } from '../registry/registry.js';

export type EndReason = 'logout' | 'idle' | 'max-age' | 'revoked';

export interface ConsoleSession {
  /** The keyed hash of the session id (the row's key; safe to log as a short prefix). */
  idHash: string;
  user: string;
  createdAt: string;
  lastSeenAt: string;
  address: string | null;
}

export interface SessionLimits {
  idleMs: number;
  maxAgeMs: number;
}

interface Row {
  idHash: string;
  user: string;
  createdAt: string;
  lastSeenAt: string;
  address: string | null;
}

/** What a session lookup reads (by the cookie's id, or by the live feed's grant). */
const LIVE_COLUMNS = 'id_hash AS idHash, user_name AS user, created_at AS createdAt, last_seen_at AS lastSeenAt, address FROM console_sessions';

/** The cookie's name. */
export const SESSION_COOKIE = 'lf_session';

/** How long a session id is, in random bytes (base64url in the cookie). */
const ID_BYTES = 32;

export class SessionStore {
  /** Touches are written at most this often per session (a page asks every minute). */
  private static readonly TOUCH_EVERY_MS = 15_000;

  constructor(
    private readonly db: Db,
    private readonly gatewayKey: Buffer,
    private readonly clock: Clock,
    private readonly limits: () => SessionLimits,
  ) {}

  private hash(secret: string): string {
    return keyedHash(this.gatewayKey, secret).toString('hex');
  }

  private derive(purpose: 'csrf' | 'grant', sessionId: string): string {
    return createHmac('sha256', this.gatewayKey).update(`lianfang-console-${purpose}\0${sessionId}`).digest('base64url');
  }

  /** A new session for `user`; returns the id to put in the cookie (never stored). */
  create(user: string, address: string | undefined, userAgent: string | undefined): { sessionId: string; session: ConsoleSession } {
    const sessionId = randomBytes(ID_BYTES).toString('base64url');
    const now = iso(this.clock.now());
    const idHash = this.hash(sessionId);
    this.db
      .prepare(
        `INSERT INTO console_sessions (id_hash, grant_hash, user_name, address, user_agent, created_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(idHash, this.hash(this.derive('grant', sessionId)), user, address ?? null, (userAgent ?? '').slice(0, 200) || null, now, now);
    return { sessionId, session: { idHash, user, createdAt: now, lastSeenAt: now, address: address ?? null } };
  }

  /**
   * The live session a cookie names, touched; null when there is none or it has expired (an
   * expired one is ended here, with its reason, and returned in `expired` for the audit trail).
   */
  lookup(sessionId: string | undefined, users: ReadonlyMap<string, User>): { session: ConsoleSession | null; expired?: { session: ConsoleSession; reason: EndReason } } {
    if (!sessionId || sessionId.length > 100) return { session: null };
    const row = this.db
      .prepare(
        `SELECT ${LIVE_COLUMNS} WHERE id_hash = ? AND ended_at IS NULL`,
      )
      .get(this.hash(sessionId)) as Row | undefined;
    return this.check(row, users);
  }

  /** The live session whose live-feed grant this is, for `user` (the MQTT login); not touched. */
  byGrant(user: string, grant: string, users: ReadonlyMap<string, User>): ConsoleSession | null {
    if (grant.length > 100) return null;
    const row = this.db
      .prepare(
        `SELECT ${LIVE_COLUMNS} WHERE grant_hash = ? AND ended_at IS NULL`,
      )
      .get(this.hash(grant)) as Row | undefined;
    if (!row || row.user !== user) return null;
    return this.check(row, users, false).session;
  }

  private check(row: Row | undefined, users: ReadonlyMap<string, User>, touch = true): { session: ConsoleSession | null; expired?: { session: ConsoleSession; reason: EndReason } } {
    if (!row) return { session: null };
    const now = this.clock.now();
    const { idleMs, maxAgeMs } = this.limits();
    const u = users.get(row.user);
    const reason: EndReason | null =
      !u || u.revokedAt
        ? 'revoked'
        : now - Date.parse(row.createdAt) >= maxAgeMs
          ? 'max-age'
          : now - Date.parse(row.lastSeenAt) >= idleMs
            ? 'idle'
            : null;
    if (reason) {
      this.end(row.idHash, reason);
      return { session: null, expired: { session: row, reason } };
    }
    if (touch && now - Date.parse(row.lastSeenAt) >= SessionStore.TOUCH_EVERY_MS) {
      row.lastSeenAt = iso(now);
      this.db.prepare('UPDATE console_sessions SET last_seen_at = ? WHERE id_hash = ?').run(row.lastSeenAt, row.idHash);
    }
    return { session: row };
  }

  /** End a session (logout, expiry, a revoked user). */
  end(idHash: string, reason: EndReason): void {
    this.db.prepare('UPDATE console_sessions SET ended_at = ?, end_reason = ? WHERE id_hash = ? AND ended_at IS NULL').run(iso(this.clock.now()), reason, idHash);
  }

  /** The CSRF token of the session a cookie holds. */
  csrfToken(sessionId: string): string {
    return this.derive('csrf', sessionId);
  }

  /** True when `presented` is the session's CSRF token (constant time). */
  checkCsrf(sessionId: string, presented: string | undefined): boolean {
    if (!presented) return false;
    const want = Buffer.from(this.csrfToken(sessionId));
    const got = Buffer.from(presented);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  /** The live-feed grant of the session a cookie holds: the MQTT password of its page. */
  grant(sessionId: string): string {
    return this.derive('grant', sessionId);
  }

  /** How many sessions are live (for /health's counts). */
  countLive(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM console_sessions WHERE ended_at IS NULL').get() as { n: number }).n;
  }
}

/** A grant is told apart from a password by its shape: 43 base64url characters behind this prefix. */
export const GRANT_PREFIX = 'lf-session:';
