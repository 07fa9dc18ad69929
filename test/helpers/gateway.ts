/**
 * Test helpers: temporary data directories, the CLI and the gateway as real child processes
 * running the compiled code (as installers and crash tests need), and provisioning a street.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
export { STREET_STATION } from '../../simulators/street.js';
export { provisionStreet } from './street.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'gateway', 'cli', 'lianfang.js');

/**
 * The environment the gateways the helpers start run with, unless a test says otherwise:
 * - the nobody-on-duty fault off (console.nobodyOnDutyFault): no officer signs on to a shift in
 *   most tests, so every alarm would raise one as well (`LF_CONSOLE_NOBODY_ON_DUTY_FAULT: 'true'`
 *   in a test's env, or `console: { nobodyOnDutyFault: true }` in its overrides, turns it on);
 * - embedded Node-RED off (nodeRed.enabled): it takes seconds to start and loads hundreds of
 *   modules; the tests of test/gateway/nodered/ turn it on (test/helpers/node-red.ts).
 */
export const HELPER_ENV: Readonly<Record<string, string>> = { LF_CONSOLE_NOBODY_ON_DUTY_FAULT: 'false', LF_NODE_RED_ENABLED: 'false' };

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh data directory under the system temp dir (short, so the admin socket path fits). */
export function tempDataDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'lf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `lianfang …` as a child process. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // English unless a test asks for another language (the CLI follows LANG).
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: '', LC_MESSAGES: '', ...HELPER_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** The gateway as a child process: `lianfang start` on port 0, ports read from its log. */
export class GatewayProcess {
  readonly logs: LogLine[] = [];
  ports = { mqtt: 0, ws: 0, http: 0 };
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private listeners: ((l: LogLine) => void)[] = [];

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.signal = signal;
        resolve();
      }),
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = { level: 30, msg: line };
      }
      this.logs.push(parsed);
      for (const l of this.listeners) l(parsed);
    });
    child.stderr!.on('data', (d) => this.logs.push({ level: 50, msg: String(d) }));
  }

  static async start(t: Teardown, data: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<GatewayProcess> {
    const child = spawn(
      process.execPath,
      [CLI, 'start', '--data', data, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', ...extraArgs],
      { env: { ...process.env, LF_MQTT_HOST: '127.0.0.1', LF_HTTP_HOST: '127.0.0.1', LF_LOG_LEVEL: 'info', ...HELPER_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const gw = new GatewayProcess(child);
    t.teardown(() => gw.kill('SIGKILL'));
    const started = await Promise.race([
      gw.waitForLog((l) => l.msg === 'gateway started', 30_000),
      gw.exited.then(() => {
        throw new Error(`gateway exited (${gw.exitCode ?? gw.signal}) before starting: ${gw.logs.map((l) => l.msg).join(' | ')}`);
      }),
    ]);
    gw.ports = { mqtt: started.mqttPort as number, ws: started.wsPort as number, http: started.httpPort as number };
    return gw;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.ports.mqtt}`;
  }

  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const found = this.logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((x) => x !== on);
        reject(new Error(`timed out waiting for a log line; last: ${this.logs.slice(-5).map((l) => l.msg).join(' | ')}`));
      }, timeoutMs);
      const on = (l: LogLine) => {
        if (!pred(l)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((x) => x !== on);
        resolve(l);
      };
      this.listeners.push(on);
    });
  }

  async health(): Promise<Record<string, any>> {
    const res = await fetch(`http://127.0.0.1:${this.ports.http}/health`);
    return (await res.json()) as Record<string, any>;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exitCode === null && this.signal === null) this.child.kill(signal);
    return this.exited;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

import { SimConsole, SimKeypad } from '../../simulators/mqtt-devices.js';
import type { StreetFile } from '../../simulators/street.js';
import { openDatabase as openDb } from '../../gateway/store/db.js';
import { listShops } from '../../gateway/registry/registry.js';
import { rankNeighbours } from '../../gateway/geo.js';

/** Connect every shop's keypad and the street's officer console to a gateway. */
export async function connectStreet(t: Teardown, street: StreetFile, url: string): Promise<{ keypads: Map<string, SimKeypad>; console: SimConsole }> {
  const keypads = new Map<string, SimKeypad>();
  await Promise.all(
    street.shops.map(async (s) => {
      const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds, 1).connect(url);
      keypads.set(s.shopId, kp);
    }),
  );
  const officer = await new SimConsole(street.stationId, street.officer).connect(url);
  t.teardown(async () => {
    await Promise.all([...keypads.values()].map((k) => k.close()));
    await officer.close();
  });
  return { keypads, console: officer };
}

/** The ids of the `n` shops nearest to `shopId`, computed independently from the database. */
export function nearestShops(data: string, shopId: string, n = 10): string[] {
  const db = openDb(data);
  try {
    const shops = listShops(db);
    const byId = new Map(shops.map((s) => [s.id, s]));
    return rankNeighbours(byId.get(shopId)!, shops, (id) => byId.get(id))
      .slice(0, n)
      .map((x) => x.id);
  } finally {
    db.close();
  }
}

/** Query the gateway's database read-only (while it runs, WAL allows a reader). */
export function query<T = Record<string, unknown>>(data: string, sql: string, ...params: unknown[]): T[] {
  const db = openDb(data);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/**
 * Poll `get` until `ok` holds of its value, and return that value; a guard against hanging, not a
 * timing assertion (the error names what was awaited and the last value seen).
 */
export async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await get();
  while (!ok(v)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(200);
    v = await get();
  }
  return v;
}

/**
 * A fresh data directory with one station (PS1) and one shop (S01), provisioned through the CLI as
 * an installer would; each step is asserted.
 */
export async function oneShopStreet(t: Teardown & { equal(a: unknown, b: unknown, msg?: string): unknown }): Promise<string> {
  const data = tempDataDir(t);
  const d = ['--data', data];
  t.equal((await cli(['station', 'add', '--id', 'PS1', '--name', 'PS1', ...d])).code, 0, 'station added');
  t.equal((await cli(['shop', 'add', '--id', 'S01', '--name', '李记茶行', '--address', 'Changping Rd 23', '--station', 'PS1', '--lat', '23.354', '--lon', '116.682', ...d])).code, 0, 'shop added');
  return data;
}

import { Gateway } from '../../gateway/controller.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../gateway/logger.js';
import type { Clock } from '../../gateway/clock.js';
import type { ConfigInput } from '../../config/schema.js';

/**
 * The gateway in-process on `data` (for tests that hold its modules or drive its clock): MQTT and
 * HTTP on loopback (MQTT on `opts.mqttPort`, 0 = any free port, as a restart on the same port
 * needs), a silent log, `overrides` over the defaults; stopped when `t` ends.
 */
export async function startGateway(t: Teardown, data: string, overrides: ConfigInput = {}, opts: { clock?: Clock; mqttPort?: number } = {}): Promise<Gateway> {
  const config = loadConfig({
    env: HELPER_ENV,
    overrides: {
      dataDir: data,
      log: { level: 'silent' },
      mqtt: { host: '127.0.0.1', port: opts.mqttPort ?? 0, wsPort: 0 },
      http: { host: '127.0.0.1', port: 0 },
      ...overrides,
    },
  });
  const gw = await Gateway.start({ config, log: createLogger('silent'), ...(opts.clock ? { clock: opts.clock } : {}) });
  t.teardown(() => gw.stop());
  return gw;
}
