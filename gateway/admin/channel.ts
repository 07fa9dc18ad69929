/**
 * The local admin channel: a Unix socket `<data>/admin.sock` (mode 0600, in the 0700 data
 * directory) through which the CLI tells a running gateway what changed, so it takes effect at
 * once. One JSON request per line, one JSON answer per line.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ERRORS, isLianfangError, lfError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';

export const SOCKET_FILE = 'admin.sock';
/** sun_path is 108 bytes on Linux, one of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export function adminSocketPath(dataDir: string): string {
  const path = join(resolve(dataDir), SOCKET_FILE);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) throw lfError('LF_ERR_SOCKET_PATH_TOO_LONG', path, bytes);
  return path;
}

export interface AdminRequest {
  op: string;
  [key: string]: unknown;
}

export type AdminHandler = (req: AdminRequest) => Promise<unknown> | unknown;

export class AdminServer {
  private server: Server | null = null;
  private readonly clients = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handler: AdminHandler,
    private readonly log: Logger,
  ) {}

  /** Listen; the caller holds the data-directory lock, so a leftover socket file is stale. */
  async start(): Promise<void> {
    if (existsSync(this.path)) unlinkSync(this.path);
    this.server = createServer((sock) => this.serve(sock));
    await new Promise<void>((res, rej) => {
      this.server!.once('error', rej);
      this.server!.listen(this.path, () => res());
    });
    chmodSync(this.path, 0o600);
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    sock.on('close', () => this.clients.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 64 * 1024) return sock.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.answer(sock, line);
      }
    });
  }

  private async answer(sock: Socket, line: string): Promise<void> {
    let reply: unknown;
    try {
      const req = JSON.parse(line) as AdminRequest;
      if (!req || typeof req.op !== 'string') throw new Error('a request needs an op');
      reply = { ok: true, result: (await this.handler(req)) ?? null };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'admin request failed');
      // A coded refusal keeps its code across the socket (the CLI prints it with its remedy).
      reply = { ok: false, error: (err as Error).message, ...(isLianfangError(err) ? { code: err.code } : {}) };
    }
    if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Send one request to the gateway running on `dataDir`. Resolves with its result, or `null` when
 * no gateway is listening there (the change is in the database and will be read at its start).
 */
export function adminRequest(dataDir: string, req: AdminRequest, timeoutMs = 5000): Promise<unknown | null> {
  const path = adminSocketPath(dataDir);
  return new Promise((resolveP, rejectP) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      rejectP(lfError('LF_ERR_ADMIN_REQUEST', 'no answer within ' + timeoutMs + ' ms'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string; code?: string };
        if (reply.ok) resolveP(reply.result ?? null);
        else if (reply.code && reply.code in ERRORS) rejectP(Object.assign(lfError(reply.code as ErrorCode), { message: reply.error ?? '' }));
        else rejectP(lfError('LF_ERR_ADMIN_REQUEST', reply.error ?? 'unknown error'));
      } catch (err) {
        rejectP(err);
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolveP(null);
      else rejectP(err);
    });
  });
}
