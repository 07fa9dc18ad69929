/**
 * The Node-RED process (docs/node-red.md): started by the gateway's supervisor
 * (node-red-supervisor.ts) at a low scheduling priority, with an IPC channel as its only way to the
 * gateway. It waits for `init` (its settings and secrets), starts Node-RED on a listener bound to
 * loopback, tells the gateway its port, and from then on hands the gateway's messages to the
 * Lianfang nodes (`RED.settings.lianfang`) and the nodes' requests to the gateway.
 *
 * Every request to its listener must carry the per-start secret the gateway's proxy adds: the
 * editor, the admin API and the flows' HTTP-in endpoints are reached through the gateway (its
 * `nodeRed.editor` rule, its login for /flows-api) and no other way. When the gateway goes away
 * (the channel closes), this process exits.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { PROXY_HEADER, type CallOp, type ChildInit, type EditorUser, type FlowKind, type FlowMessage, type FromChild, type NodeBridge, type ToChild } from './protocol.js';

const require = createRequire(import.meta.url);
/** An answer from the gateway that does not come in this long is an error (the gateway is busy or going). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Node-RED's log levels (numbers of @node-red/util log) → the gateway's. */
const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = { 10: 'error', 20: 'error', 30: 'warn', 40: 'info', 50: 'debug', 60: 'debug' };

interface NodeRedRuntime {
  init(server: unknown, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: unknown;
  httpNode: unknown;
  events: { on(event: string, fn: (e: { config?: { flows?: { type?: string; label?: string }[] }; type?: string }) => void): void };
}

function send(m: FromChild): void {
  if (process.connected) process.send!(m);
}

/** Log lines to the gateway per window at most: a flow that fails on every alarm must not flood the gateway's log. */
const LOG_BURST = 20;
const LOG_WINDOW_MS = 10_000;
const logWindow = { start: 0, sent: 0, left: 0, timer: null as NodeJS.Timeout | null };

function logLine(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
  const now = Date.now();
  if (now - logWindow.start >= LOG_WINDOW_MS) Object.assign(logWindow, { start: now, sent: 0 });
  if (logWindow.sent < LOG_BURST) {
    logWindow.sent++;
    return send({ t: 'log', level, msg });
  }
  logWindow.left++;
  logWindow.timer ??= setTimeout(() => {
    send({ t: 'log', level: 'warn', msg: `${logWindow.left} more log lines of Node-RED within ${LOG_WINDOW_MS / 1000} s were left out` });
    Object.assign(logWindow, { left: 0, timer: null });
  }, LOG_WINDOW_MS - (now - logWindow.start));
  logWindow.timer.unref();
}

/** What Node-RED logged, as one line: which node (type, name) and the text of an error. */
function logText(m: { msg?: unknown; type?: string; name?: string; id?: string }): string {
  // An error thrown in a function node comes from its own context: an Error by shape, not by instanceof.
  const err = m.msg as { message?: unknown } | null;
  const text = typeof m.msg === 'string' ? m.msg : err && typeof err === 'object' && typeof err.message === 'string' ? err.message : JSON.stringify(m.msg);
  return m.type ? `[${m.type}${m.name ? `:${m.name}` : m.id ? `:${m.id}` : ''}] ${text}` : text;
}

/** A request without its id (distributed over the union's members). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

let nextId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

/** A request to the gateway, answered by its id. */
function ask<T>(m: Unnumbered<Extract<FromChild, { t: 'auth' | 'call' }>>): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(Object.assign(new Error('the gateway did not answer'), { code: 'LF_ERR_NODE_RED_DOWN' }));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    send({ ...m, id } as FromChild);
  });
}

function answered(id: number, settle: (p: { resolve: (v: unknown) => void; reject: (e: Error) => void }) => void): void {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  clearTimeout(p.timer);
  settle(p);
}

const listeners: Record<FlowKind, Set<(m: FlowMessage) => void>> = { alarm: new Set(), event: new Set(), fault: new Set() };

/** What the Lianfang nodes use (RED.settings.lianfang). */
const bridge: NodeBridge = {
  on(kind, listener) {
    listeners[kind].add(listener);
    return () => listeners[kind].delete(listener);
  },
  call(op: CallOp, args, flow) {
    return ask({ t: 'call', op, flow: String(flow || 'unnamed').slice(0, 200), args });
  },
};

/**
 * One message of a batch per turn of the event loop, the batch acknowledged after the last: what a
 * flow does with a message (Node-RED runs it in the next turn) comes before the next one is given
 * out, and the channel (the gateway's pings) is read between them. A flow that blocks a second on
 * every message keeps the process answering once a second, not once a batch.
 */
function deliver(seq: number, messages: readonly FlowMessage[], i = 0): void {
  if (i >= messages.length) return void setImmediate(() => send({ t: 'ack', seq }));
  const m = messages[i]!;
  for (const listener of listeners[m.kind]) {
    try {
      listener(m);
    } catch (err) {
      logLine('error', `a Lianfang node failed on a ${m.kind} message: ${(err as Error).message}`);
    }
  }
  setImmediate(() => deliver(seq, messages, i + 1));
}

/** The first `failStarts` starts of a data directory exit at once (tests of a child that keeps failing). */
function failingStart(init: ChildInit): boolean {
  if (!init.failStarts) return false;
  const file = join(init.userDir, '.lianfang-fail-starts');
  let n = 0;
  try {
    n = Number(readFileSync(file, 'utf8')) || 0;
  } catch {
    /* the first start */
  }
  if (n >= init.failStarts) return false;
  writeFileSync(file, String(n + 1));
  return true;
}

function sameSecret(given: string | string[] | undefined, secret: Buffer): boolean {
  const b = Buffer.from(typeof given === 'string' ? given : '');
  return b.length === secret.length && timingSafeEqual(b, secret);
}

async function start(init: ChildInit): Promise<void> {
  if (failingStart(init)) process.exit(3);
  const RED = require('node-red') as NodeRedRuntime;
  const express = require('express') as () => ((req: IncomingMessage, res: ServerResponse) => void) & { use(path: string, h: unknown): void; disable(s: string): void };
  const secret = Buffer.from(init.proxySecret);
  const fromGateway = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (sameSecret(req.headers[PROXY_HEADER], secret)) return next();
    res.writeHead(403, { 'content-type': 'text/plain' }).end('Node-RED is reached through the gateway only');
  };
  // Node-RED answers a logged-in user who lacks the permission (an officer's deploy) 401, as if not
  // logged in; it logs its audit event `permission.fail` just before, in the same turn: that is 403.
  let permissionFailed = false;
  const adminRequest = (req: IncomingMessage, res: ServerResponse & { status?: (code: number) => unknown }, next: () => void) =>
    fromGateway(req, res, () => {
      const status = res.status!.bind(res);
      res.status = (code: number) => {
        const forbidden = code === 401 && permissionFailed;
        permissionFailed = false;
        return status(forbidden ? 403 : code);
      };
      next();
    });
  const app = express();
  app.disable('x-powered-by');
  const server = createServer(app);
  let deployBy: { user: string | null; type: string } | null = null;
  const settings: Record<string, unknown> = {
    userDir: init.userDir,
    flowFile: 'flows.json',
    flowFilePretty: true,
    credentialSecret: init.credentialSecret,
    // Flows, credentials (encrypted) and the library on disk; editor tokens in memory only, never
    // in a file (they end with the process: one signs in again after a restart).
    storageModule: { ...require('@node-red/runtime/lib/storage/localfilesystem'), getSessions: async () => ({}), saveSessions: async () => {} },
    uiHost: '127.0.0.1',
    httpAdminRoot: init.httpAdminRoot,
    httpNodeRoot: init.httpNodeRoot,
    httpAdminMiddleware: adminRequest,
    httpNodeMiddleware: fromGateway,
    adminAuth: {
      type: 'credentials',
      sessionExpiryTime: init.tokenExpirySeconds,
      users: (username: string) => ask<EditorUser | null>({ t: 'auth', op: 'users', username: String(username ?? '') }),
      authenticate: (username: string, password: string) => ask<EditorUser | null>({ t: 'auth', op: 'authenticate', username: String(username ?? ''), password: String(password ?? '') }),
    },
    nodesDir: [init.nodesDir],
    // For function nodes (the relay example): no module is installed at run time.
    functionGlobalContext: { ModbusRTU: require('modbus-serial') },
    functionExternalModules: false,
    externalModules: { autoInstall: false, palette: { allowInstall: false, allowUpload: false, allowUpdate: false }, modules: { allowInstall: false } },
    editorTheme: {
      page: { title: 'Lianfang 联防 · Node-RED' },
      header: { title: 'Lianfang 联防 · Node-RED' },
      projects: { enabled: false },
      tours: false,
    },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    logging: {
      console: { level: 'off' },
      lianfang: {
        level: init.logLevel,
        audit: true,
        handler: () => (msg: { level: number; msg?: unknown; event?: string; user?: { username?: string }; username?: string; type?: string; name?: string; id?: string }) => {
          if (msg.level === 98) {
            if (msg.event === 'permission.fail') permissionFailed = true;
            else if (msg.event === 'flows.set') deployBy = { user: msg.user?.username ?? null, type: String(msg.type ?? 'full') };
            else if (msg.event === 'auth.login' || msg.event === 'auth.logout') send({ t: 'audit', event: msg.event, user: msg.user?.username ?? msg.username ?? null, detail: {} });
            return;
          }
          const level = LEVELS[msg.level];
          if (level) logLine(level, logText(msg));
        },
      },
    },
    lianfang: bridge,
  };
  RED.init(server, settings);
  app.use(init.httpAdminRoot, RED.httpAdmin);
  app.use(init.httpNodeRoot, RED.httpNode);
  // Who deployed which flows: Node-RED's audit event names the user, the start that follows the flows.
  RED.events.on('flows:started', (e) => {
    if (!deployBy) return;
    const flows = (e.config?.flows ?? []).filter((n) => n.type === 'tab').map((n) => n.label ?? '');
    send({ t: 'audit', event: 'flows.set', user: deployBy.user, detail: { type: deployBy.type, flows } });
    deployBy = null;
  });
  await RED.start();
  // The editor's WebSocket (listened for by Node-RED's comms): its upgrade carries the secret too, or it is closed.
  const upgrades = server.listeners('upgrade') as ((...a: unknown[]) => void)[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: { destroy(): void }, head: Buffer) => {
    if (!sameSecret(req.headers[PROXY_HEADER], secret)) return socket.destroy();
    for (const l of upgrades) l.call(server, req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  send({ t: 'ready', port: (server.address() as AddressInfo).port });
  stopping = async () => {
    await RED.stop().catch(() => {});
    server.close();
  };
}

let stopping: (() => Promise<void>) | null = null;

process.on('message', (m: ToChild) => {
  switch (m.t) {
    case 'init':
      start(m.init).catch((err: Error) => {
        send({ t: 'log', level: 'error', msg: `Node-RED failed to start: ${err.stack ?? err.message}` });
        process.exit(2);
      });
      return;
    case 'feed':
      // Acknowledged after what the nodes scheduled for these messages: a busy flow slows its own feed.
      deliver(m.seq, m.messages);
      return;
    case 'ping':
      send({ t: 'pong', n: m.n });
      return;
    case 'auth-reply':
      answered(m.id, (p) => p.resolve(m.user));
      return;
    case 'call-reply':
      answered(m.id, (p) => (m.ok ? p.resolve(m.result) : p.reject(Object.assign(new Error(m.message), { code: m.code }))));
      return;
    case 'stop':
      setTimeout(() => process.exit(0), 5000).unref();
      void (stopping ?? (async () => {}))().then(() => process.exit(0));
      return;
  }
});
// The gateway went away: nothing here is of use without it.
process.on('disconnect', () => process.exit(0));
