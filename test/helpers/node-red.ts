/**
 * Embedded Node-RED's test fixture (issue 12 "Proof"): the gateway as a child process with Node-RED
 * on (the other helpers keep it off), a street of MQTT keypads provisioned through the CLI, the
 * three kinds of editor login (installer, officer, admin), and what the editor's client does over
 * HTTP: a token from /flows/auth/token (scope "": the account's own permissions, as the editor asks),
 * flows deployed with POST /flows/flows.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayProcess, cli, provisionStreet, tempDataDir, until } from './gateway.js';
import type { StreetFile } from '../../simulators/street.js';

interface T {
  teardown(fn: () => unknown): void;
}

export interface Login {
  username: string;
  password: string;
}

export const INSTALLER: Login = { username: 'inst1', password: 'inst1-pass-7351' };
export const OFFICER: Login = { username: 'duty9', password: 'duty9-pass-2468' };
export const ADMIN: Login = { username: 'boss1', password: 'boss1-pass-9753' };

/** Short intervals for tests: a child that dies or hangs is noticed and restarted within seconds. */
export const FAST_NODE_RED: Readonly<Record<string, string>> = {
  LF_NODE_RED_ENABLED: 'true',
  LF_NODE_RED_HEARTBEAT_INTERVAL_MS: '300',
  LF_NODE_RED_UNRESPONSIVE_AFTER_MS: '3000',
  LF_NODE_RED_RESTART_MIN_MS: '200',
  LF_NODE_RED_RESTART_MAX_MS: '2000',
};

async function run(args: string[]): Promise<string> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`lianfang ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export interface NodeRedStreet {
  data: string;
  street: StreetFile;
}

/** A street of `shops` MQTT keypads and the three editor logins, provisioned through the CLI. */
export async function provisionNodeRedStreet(t: T, shops = 4): Promise<NodeRedStreet> {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, shops);
  const d = ['--data', data];
  await run(['user', 'add', '--role', 'installer', '--name', INSTALLER.username, '--password', INSTALLER.password, ...d]);
  await run(['user', 'add', '--role', 'officer', '--station', street.stationId, '--name', OFFICER.username, '--password', OFFICER.password, ...d]);
  await run(['user', 'add', '--role', 'admin', '--name', ADMIN.username, '--password', ADMIN.password, ...d]);
  return { data, street };
}

/** The gateway with Node-RED on; resolves once Node-RED is ready (its start takes seconds). */
export async function startWithNodeRed(t: T, data: string, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const gw = await GatewayProcess.start(t, data, { ...FAST_NODE_RED, ...env });
  await gw.waitForLog((l) => l.msg === 'node-red ready', 90_000);
  return gw;
}

export function flowsUrl(gw: GatewayProcess, path = ''): string {
  return `http://127.0.0.1:${gw.ports.http}/flows${path}`;
}

/** What the editor does to log in: the password grant of /flows/auth/token. */
export async function tokenFor(gw: GatewayProcess, login: Login): Promise<{ status: number; token: string | null; expiresIn: number | null }> {
  const res = await fetch(flowsUrl(gw, '/auth/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'node-red-admin', grant_type: 'password', scope: '', username: login.username, password: login.password }),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number };
  return { status: res.status, token: body.access_token ?? null, expiresIn: body.expires_in ?? null };
}

export async function token(gw: GatewayProcess, login: Login): Promise<string> {
  const r = await tokenFor(gw, login);
  if (!r.token) throw new Error(`no token for ${login.username}: ${r.status}`);
  return r.token;
}

/**
 * POST /flows/flows (a full deploy) with a token: the status and the body. Node-RED answers before
 * the new flows have started; a deploy that was taken resolves once the gateway logs that they have
 * (an alarm raised before could miss them).
 */
export async function deploy(gw: GatewayProcess, bearer: string | null, flows: unknown[]): Promise<{ status: number; body: string }> {
  const deployed = (l: { msg: string }) => l.msg === 'node-red flows deployed';
  const before = gw.logs.filter(deployed).length;
  const res = await fetch(flowsUrl(gw, '/flows'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'node-red-deployment-type': 'full', 'node-red-api-version': 'v1', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(flows),
  });
  const body = await res.text();
  if (res.ok) await until('the deployed flows started', async () => gw.logs.filter(deployed).length, (n) => n > before, 30_000);
  return { status: res.status, body };
}

/** GET an admin path with a token (or none). */
export async function adminGet(gw: GatewayProcess, path: string, bearer: string | null): Promise<Response> {
  return fetch(flowsUrl(gw, path), { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
}

/** The gateway's full /health (the test runs on loopback, which gets the detail). */
export async function nodeRedHealth(gw: GatewayProcess): Promise<{ state: string; pid: number | null; restarts: number; queued: number; dropped: number }> {
  return (await gw.health()).nodeRed;
}

/** Wait until Node-RED runs again after a kill or a failed start (a new pid), and return its health. */
export async function runningAgain(gw: GatewayProcess, oldPid: number | null, timeoutMs = 60_000): Promise<{ state: string; pid: number | null; restarts: number }> {
  return until('Node-RED running again', () => nodeRedHealth(gw), (h) => h.state === 'running' && h.pid !== oldPid, timeoutMs);
}

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local HTTP server (127.0.0.1, port 0) that keeps what flows send it and answers 200. */
export async function receiver(t: T): Promise<{ url: string; received: Received[]; next(pred?: (r: Received) => boolean, timeoutMs?: number): Promise<Received> }> {
  const received: Received[] = [];
  const waiting: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const r = { path: req.url ?? '', headers: req.headers, body };
      received.push(r);
      for (const w of waiting.splice(0)) {
        if (w.pred(r)) w.resolve(r);
        else waiting.push(w);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    next(pred = () => true, timeoutMs = 20_000) {
      const seen = received.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`nothing matching arrived at ${url}; got ${received.map((r) => r.path).join(', ')}`)), timeoutMs);
        waiting.push({ pred, resolve: (r) => (clearTimeout(timer), resolve(r)) });
      });
    },
  };
}
