/**
 * The web console on the gateway's HTTP port (issue 11): the login page, the page's assets, the
 * JSON API and the live feed (MQTT over a WebSocket at `/mqtt`). Without a session only the login
 * page and its script are served: every `/api/` route answers 401, `/app/` assets 401, and `/mqtt`
 * refuses the upgrade. A session comes from `POST /login` (fields `username`, `password`), through
 * the gateway's one login throttle; every login, failed login and logout is an audit row.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { isLianfangError, lfError } from '../errors.js';
import { UserPasswords } from '../security/user-password.js';
import { iso } from '../clock.js';
import type { LoginThrottle } from '../security/login-throttle.js';
import { SessionStore, SESSION_COOKIE, type ConsoleSession } from './sessions.js';
import { matchPath, RawReply, scopesOf, type ApiRequest, type ConsoleDeps, type Route } from './api.js';
import { ALARM_ROUTES } from './routes-alarms.js';
import { SHIFT_ROUTES } from './routes-shifts.js';
import { HEALTH_ROUTES } from './routes-health.js';
import { REPORT_ROUTES } from './routes-reports.js';
import type { Me } from './contract.js';
import { loginPage, appPage } from './pages.js';
import type { User } from '../registry/registry.js';
import { auditRow } from '../store/audit.js';
import { statusOf } from '../http/http-status.js';

/** Every route of the API, in one list (the anonymous-401 test walks it). */
export const ROUTES: readonly Route[] = [...ALARM_ROUTES, ...SHIFT_ROUTES, ...HEALTH_ROUTES, ...REPORT_ROUTES];

/**
 * Where the page's built assets are: esbuild writes them to dist/console-web/ at build time. This
 * module runs from dist/gateway/console/ (two folders up is dist/), or from its source in tests
 * (two folders up is the project, which holds dist/).
 */
const ASSETS = ((up) => (existsSync(join(up, 'console-web')) ? join(up, 'console-web') : join(up, 'dist', 'console-web')))(fileURLToPath(new URL('../../', import.meta.url))) + sep;

const ASSET_TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json' };

/** Assets that are served before login: the login page's own script and style. */
const OPEN_ASSETS = new Set(['login.js', 'login.css']);

const MAX_BODY = 64 * 1024;

/** The security headers of every console answer: no framing, no sniffing, nothing from elsewhere. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; media-src 'self' data:; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** True when a browser's request comes from this console's own page (Origin, else Referer, matches Host). */
function sameOrigin(req: IncomingMessage): boolean {
  const from = req.headers.origin ?? req.headers.referer;
  if (!from) return true; // not a browser's cross-site request (those carry Origin on POST and WebSocket)
  try {
    return new URL(from).host === req.headers.host;
  } catch {
    return false;
  }
}

export interface ConsoleHttpOptions {
  deps: ConsoleDeps;
  sessions: SessionStore;
  loginThrottle: LoginThrottle;
  /** Hand an upgraded `/mqtt` WebSocket to the broker. */
  attachMqtt: (ws: WebSocket, req: IncomingMessage) => void;
  /** Close the live feed of a session that ended (its grant no longer logs in either). */
  endLive: (sessionIdHash: string) => void;
}

export class ConsoleHttp {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 });
  private readonly passwords: UserPasswords;

  constructor(private readonly o: ConsoleHttpOptions) {
    this.passwords = new UserPasswords(() => o.deps.registry.users);
  }

  private get log() {
    return this.o.deps.log;
  }

  /** Handle a request other than /health. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    try {
      if (path === '/login' && req.method === 'POST') return await this.login(req, res);
      if (path === '/logout' && req.method === 'POST') return await this.logout(req, res);
      if (path.startsWith('/app/')) return this.asset(req, res, path.slice('/app/'.length));
      if (path === '/' || path === '/index.html') {
        const s = this.session(req);
        return this.html(res, 200, s ? appPage(req.headers['accept-language']) : loginPage(req.headers['accept-language']));
      }
      if (path.startsWith('/api/')) return await this.api(req, res, url);
      this.json(res, 404, { code: 'LF_ERR_NOT_FOUND', message: 'not found' });
    } catch (err) {
      this.refuse(res, err);
    }
  }

  /** `/mqtt`: the page's live feed, for a live session from this console's own page only. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const s = url.pathname === '/mqtt' && sameOrigin(req) ? this.session(req) : null;
    if (!s) {
      this.o.deps.counters.inc('console.refused.upgrade');
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.o.attachMqtt(ws, req));
  }

  stop(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  // ------------------------------------------------------------------ sessions

  /** The live session of the request's cookie (expired ones are ended and audited here). */
  private session(req: IncomingMessage): { session: ConsoleSession; sessionId: string; user: User } | null {
    const sessionId = cookies(req).get(SESSION_COOKIE);
    if (!sessionId) return null;
    const users = this.o.deps.registry.users;
    const { session, expired } = this.o.sessions.lookup(sessionId, users);
    if (expired) {
      this.audit(expired.session.user, 'console-session-ended', { reason: expired.reason, address: req.socket.remoteAddress ?? null });
      this.o.endLive(expired.session.idHash);
    }
    if (!session) return null;
    const user = users.get(session.user);
    return user ? { session, sessionId, user } : null;
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    if (!sameOrigin(req)) throw lfError('LF_ERR_CSRF');
    const body = await readBody(req, form);
    const username = typeof body.username === 'string' ? body.username.slice(0, 64) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 256) : '';
    const address = req.socket.remoteAddress;
    const { registry, counters } = this.o.deps;
    const outcome = await this.o.loginThrottle.attempt<User>({
      address,
      account: username || '(none)',
      check: () => this.passwords.check(username, password),
      abandoned: () => req.socket.destroyed,
    });
    if (outcome.status === 'busy') throw lfError('LF_ERR_LOGIN_THROTTLED', address ?? '?');
    if (outcome.status !== 'ok') {
      counters.inc('console.login.failed');
      if (outcome.status === 'failed') this.audit(username || '(none)', 'console-login-failed', { address: address ?? null });
      if (form) return this.html(res, 401, loginPage(req.headers['accept-language'], 'failed'));
      throw lfError('LF_ERR_BAD_CREDENTIALS');
    }
    const user = outcome.value;
    if (scopesOf(user, registry, this.o.deps.config.timeZone).length === 0) {
      // An installer (or an officer of no station) has nothing to watch here; the CLI is theirs.
      this.audit(user.name, 'console-login-refused', { address: address ?? null, role: user.role });
      throw lfError('LF_ERR_SCOPE', user.name, 'the alarm console');
    }
    const { sessionId } = await this.o.deps.writer.run(() => {
      const created = this.o.sessions.create(user.name, address, req.headers['user-agent']);
      this.auditRow(user.name, 'console-login', { address: address ?? null, session: created.session.idHash.slice(0, 12) });
      return created;
    }, 'console-login');
    counters.inc('console.login.ok');
    const maxAgeMs = this.o.deps.config.console.sessionMaxAgeMs;
    const cookie = `${SESSION_COOKIE}=${sessionId}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${this.o.deps.config.console.secureCookie ? '; Secure' : ''}`;
    if (form) {
      res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': cookie }).end();
      return;
    }
    res.setHeader('set-cookie', cookie);
    this.json(res, 200, { ok: true, user: user.name });
  }

  private async logout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = this.session(req);
    if (!s) throw lfError('LF_ERR_NOT_SIGNED_IN');
    if (!sameOrigin(req) || !this.o.sessions.checkCsrf(s.sessionId, header(req, 'x-csrf-token'))) throw lfError('LF_ERR_CSRF');
    await this.o.deps.writer.run(() => {
      this.o.sessions.end(s.session.idHash, 'logout');
      this.auditRow(s.user.name, 'console-logout', { address: req.socket.remoteAddress ?? null });
    }, 'console-logout');
    this.o.endLive(s.session.idHash);
    res.setHeader('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
    this.json(res, 200, { ok: true });
  }

  /** An audit row of the console (no alarm), through the writer. */
  private audit(user: string, action: string, detail: Record<string, unknown>): void {
    void this.o.deps.writer.run(() => this.auditRow(user, action, detail), 'console-audit').catch((err: unknown) => this.log.error({ err }, 'console audit failed'));
  }

  private auditRow(user: string, action: string, detail: Record<string, unknown>): void {
    auditRow(this.o.deps.db, iso(this.o.deps.clock.now()), `user:${user}`, action, detail);
  }

  // ------------------------------------------------------------------ API

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const s = this.session(req);
    if (!s) {
      this.o.deps.counters.inc('console.refused.LF_ERR_NOT_SIGNED_IN');
      throw lfError('LF_ERR_NOT_SIGNED_IN');
    }
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    if (method !== 'GET' && (!sameOrigin(req) || !this.o.sessions.checkCsrf(s.sessionId, header(req, 'x-csrf-token')))) {
      this.o.deps.counters.inc('console.refused.LF_ERR_CSRF');
      throw lfError('LF_ERR_CSRF');
    }
    const scopes = scopesOf(s.user, this.o.deps.registry, this.o.deps.config.timeZone);
    if (url.pathname === '/api/me' && method === 'GET') return this.json(res, 200, this.me(s.user, s.sessionId, scopes));
    let params: Record<string, string> | null = null;
    const route = ROUTES.find((r) => r.method === method && (params = matchPath(r.path, url.pathname)) !== null);
    if (!route || !params) throw lfError('LF_ERR_NOT_FOUND', 'route', url.pathname);
    const body = method === 'POST' ? await readBody(req, false) : {};
    const apiReq: ApiRequest = { method, params, query: url.searchParams, body, session: s.session, user: s.user, scopes, actor: `user:${s.user.name}` };
    const out = await route.handler(this.o.deps, apiReq);
    if (out instanceof RawReply) {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': out.contentType, ...out.headers }).end(out.body);
      return;
    }
    this.json(res, 200, out ?? { ok: true });
  }

  private me(user: User, sessionId: string, scopes: Me['scopes']): Me {
    const { config, gatewayId } = this.o.deps;
    return {
      user: user.name,
      role: user.role,
      scopes,
      csrf: this.o.sessions.csrfToken(sessionId),
      timeZone: scopes[0]?.timeZone ?? config.timeZone,
      gatewayId,
      live: { path: '/mqtt', username: user.name, password: `lf-session:${this.o.sessions.grant(sessionId)}`, clientIdPrefix: `${user.name}:console-` },
    };
  }

  // ------------------------------------------------------------------ answers

  private asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    if (!/^[a-z0-9-]+\.(js|css|map)$/.test(name)) return this.json(res, 404, { code: 'LF_ERR_NOT_FOUND', message: 'not found' });
    if (!OPEN_ASSETS.has(name) && !this.session(req)) return this.refuse(res, lfError('LF_ERR_NOT_SIGNED_IN'));
    const file = ASSETS + name;
    if (!existsSync(file)) return this.json(res, 404, { code: 'LF_ERR_NOT_FOUND', message: `${name} is not built (npm run build)` });
    const type = ASSET_TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type }).end(readFileSync(file));
  }

  private html(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  }

  private refuse(res: ServerResponse, err: unknown): void {
    if (res.headersSent) return void res.end();
    if (isLianfangError(err)) {
      this.o.deps.counters.inc(`console.refused.${err.code}`);
      return this.json(res, statusOf(err.code), { code: err.code, message: err.message, remedy: err.remedy, zh: err.zh });
    }
    this.log.error({ err }, 'console request failed');
    const e = lfError('LF_ERR_INTERNAL');
    this.json(res, 500, { code: e.code, message: e.message, remedy: e.remedy, zh: e.zh });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A request body: JSON (an object) or a login form; at most MAX_BODY bytes. Throws LF_ERR_BAD_PAYLOAD. */
async function readBody(req: IncomingMessage, form: boolean): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw lfError('LF_ERR_BAD_PAYLOAD', 'request body', `larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  if (form) return Object.fromEntries(new URLSearchParams(text));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw lfError('LF_ERR_BAD_PAYLOAD', 'request body', (err as Error).message);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw lfError('LF_ERR_BAD_PAYLOAD', 'request body', 'not a JSON object');
  return parsed as Record<string, unknown>;
}
