/**
 * The way into embedded Node-RED (docs/node-red.md): the gateway's HTTP port forwards `/flows…`
 * (the editor, its admin API and its WebSocket) and `/flows-api…` (the flows' HTTP-in endpoints)
 * to the Node-RED process's loopback listener, adding the per-start secret that listener requires.
 *
 * Before forwarding: `nodeRed.editor: "local"` keeps /flows to clients on this machine (the peer
 * address of the connection, never a header); /flows-api needs a gateway account (HTTP Basic). The
 * editor's own login (its tokens, `adminAuth`) is Node-RED's, answered by the gateway's accounts.
 * While Node-RED is not running both answer 503 LF_ERR_NODE_RED_DOWN.
 */
import { STATUS_CODES, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { addressSet } from '../http/http-server.js';
import { statusOf } from '../http/http-status.js';
import { lfError, type LianfangError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Counters } from '../metrics.js';
import type { User } from '../registry/registry.js';
import { PROXY_HEADER } from './protocol.js';
import { ADMIN_ROOT, nodeRedRoot } from './node-red-root.js';

/** Headers of one hop, not forwarded (RFC 9110 7.6.1), and the proxy's own. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', PROXY_HEADER]);
const isLoopback = addressSet(['127.0.0.0/8', '::1'], 'loopback');
/** The editor's login, and the most of it that is read before it is forwarded. */
const TOKEN_PATH = `${ADMIN_ROOT}/auth/token`;
const TOKEN_BODY_MAX = 16_384;

export interface NodeRedProxyContext {
  /** The running child's port and the secret its listener wants; null while it is not running. */
  target: () => { port: number; secret: string } | null;
  editor: 'local' | 'network';
  /** A request to /flows-api: the gateway account it logs in with, or null. */
  authorize: (req: IncomingMessage) => Promise<User | null>;
  /** An editor login (POST /flows/auth/token) for `username` from the connection's peer address. */
  loginFrom: (username: string, address: string | undefined) => void;
  log: Logger;
  counters: Counters;
}

export class NodeRedProxy {
  constructor(private readonly ctx: NodeRedProxyContext) {}

  /** Forward one request under /flows or /flows-api (the caller checked `nodeRedRoot`). */
  async handle(req: IncomingMessage, res: ServerResponse, root: 'admin' | 'node'): Promise<void> {
    const refused = await this.refusal(req, root);
    if (refused) return this.refuse(res, refused, root);
    const target = this.ctx.target()!;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    headers[PROXY_HEADER] = target.secret;
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    let body: Buffer | null = null;
    if (req.method === 'POST' && new URL(req.url ?? '/', 'http://localhost').pathname === TOKEN_PATH) {
      try {
        body = await this.tokenRequest(req);
      } catch (err) {
        return this.refuse(res, err as LianfangError, root);
      }
    }
    if (body) headers['content-length'] = String(body.length);
    const upstream = request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers }, (up) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      this.ctx.log.warn({ err: err.message, path: req.url }, 'forwarding to Node-RED failed');
      if (!res.headersSent) this.refuse(res, lfError('LF_ERR_NODE_RED_DOWN'), root);
      else res.destroy();
    });
    if (body) upstream.end(body);
    else req.pipe(upstream);
  }

  /**
   * A token request, read whole (it is small): its username goes to the login throttle with the
   * address it came from, as every other login's does, before Node-RED asks for the password check.
   */
  private async tokenRequest(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > TOKEN_BODY_MAX) throw lfError('LF_ERR_INVALID_ARGUMENT', 'token request', `larger than ${TOKEN_BODY_MAX} bytes`);
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    const text = body.toString('utf8');
    let username: unknown;
    try {
      username = (req.headers['content-type'] ?? '').includes('json') ? (JSON.parse(text) as { username?: unknown }).username : new URLSearchParams(text).get('username');
    } catch {
      username = undefined;
    }
    if (typeof username === 'string' && username) this.ctx.loginFrom(username.slice(0, 64), req.socket.remoteAddress);
    return body;
  }

  /** The editor's WebSocket (/flows/comms): the same rules, then the bytes both ways. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const root = nodeRedRoot(new URL(req.url ?? '/', 'http://localhost').pathname);
    void this.refusal(req, root ?? 'admin').then((refused) => {
      if (refused || root !== 'admin') {
        const status = refused ? statusOf(refused.code) : 403;
        socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
        return;
      }
      const target = this.ctx.target()!;
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i]!.toLowerCase() !== PROXY_HEADER) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      lines.push(`${PROXY_HEADER}: ${target.secret}`);
      const up = connect(target.port, '127.0.0.1', () => {
        up.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length) up.write(head);
        socket.pipe(up).pipe(socket);
      });
      const end = () => {
        up.destroy();
        socket.destroy();
      };
      up.on('error', end);
      socket.on('error', end);
      up.on('close', end);
      socket.on('close', end);
    });
  }

  private async refusal(req: IncomingMessage, root: 'admin' | 'node'): Promise<LianfangError | null> {
    if (root === 'admin' && this.ctx.editor === 'local' && !isLoopback(req.socket.remoteAddress)) return lfError('LF_ERR_EDITOR_LOCAL');
    if (!this.ctx.target()) return lfError('LF_ERR_NODE_RED_DOWN');
    if (root === 'node' && !(await this.ctx.authorize(req))) return lfError('LF_ERR_BAD_CREDENTIALS');
    return null;
  }

  private refuse(res: ServerResponse, err: LianfangError, root: 'admin' | 'node'): void {
    const status = statusOf(err.code);
    this.ctx.counters.inc(`nodered.http.refused.${err.code}`);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...(status === 401 ? { 'www-authenticate': 'Basic realm="Lianfang flows", charset="UTF-8"' } : {}),
      ...(status === 503 ? { 'retry-after': '5' } : {}),
    });
    res.end(JSON.stringify({ code: err.code, message: err.message, remedy: err.remedy, zh: err.zh, root }));
  }
}
