/**
 * The benchmark's child processes: the gateway (`lianfang start`, compiled) and the bare Aedes
 * baseline, each on 127.0.0.1 and port 0, plus the CPU time a process has used (Linux /proc), so
 * the report can say which side of the wire was busy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createServer, type AddressInfo } from 'node:net';

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The repository root (this file runs as dist/bench/processes.js). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'gateway', 'cli', 'lianfang.js');
const BARE = join(dirname(fileURLToPath(import.meta.url)), 'bare-broker.js');

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A child process that prints JSON lines on stdout. */
abstract class Child {
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  /** Lines at warn level or above (pino: 40+), the last few kept; counts by level. */
  readonly warnings: LogLine[] = [];
  readonly levelCounts = new Map<number, number>();
  protected listeners: ((l: LogLine) => void)[] = [];
  stderr = '';

  constructor(readonly child: ChildProcess) {
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
      const level = typeof parsed.level === 'number' ? parsed.level : 30;
      this.levelCounts.set(level, (this.levelCounts.get(level) ?? 0) + 1);
      if (level >= 40) {
        this.warnings.push(parsed);
        if (this.warnings.length > 20) this.warnings.shift();
      }
      for (const l of this.listeners) l(parsed);
    });
    child.stderr!.on('data', (d) => {
      this.stderr = (this.stderr + String(d)).slice(-4000);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Every log line from now on. */
  onLine(fn: (l: LogLine) => void): void {
    this.listeners.push(fn);
  }

  /** The first log line matching `pred` from now on; rejects on a timeout or if the process exits. */
  waitForLine(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: no start-up line within ${timeoutMs} ms; stderr: ${this.stderr.slice(-500)}`));
      }, timeoutMs);
      const on = (l: LogLine) => {
        if (!pred(l)) return;
        done();
        resolve(l);
      };
      const onExit = () => {
        done();
        reject(new Error(`${what} exited (${this.exitCode ?? this.signal}) before starting; stderr: ${this.stderr.slice(-1000)}`));
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((x) => x !== on);
        this.child.off('exit', onExit);
      };
      this.listeners.push(on);
      this.child.once('exit', onExit);
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitCode !== null || this.signal !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kill at once (used by the watchdog and on an error path). */
  kill(): void {
    if (this.exitCode === null && this.signal === null) this.child.kill('SIGKILL');
  }
}

export class GatewayChild extends Child {
  ports = { mqtt: 0, ws: 0, http: 0 };

  /**
   * `nodeArgs`: e.g. `--cpu-prof` to profile the gateway (the profile is written when it stops).
   * The ports come from the 'gateway started' line, logged at info; at a quieter log level the
   * ports are chosen here (free ports on 127.0.0.1) and readiness is polled on /health.
   */
  static async start(dataDir: string, env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<GatewayChild> {
    const level = env.LF_LOG_LEVEL ?? 'info';
    const logsStart = ['trace', 'debug', 'info'].includes(level);
    const chosen = logsStart ? { mqtt: 0, ws: 0, http: 0 } : { mqtt: await freePort(), ws: await freePort(), http: await freePort() };
    const gw = GatewayChild.spawn(dataDir, env, nodeArgs, chosen);
    try {
      if (logsStart) {
        const started = await gw.waitForLine((l) => l.msg === 'gateway started', 30_000, 'gateway');
        gw.ports = { mqtt: started.mqttPort as number, ws: started.wsPort as number, http: started.httpPort as number };
      } else {
        await gw.waitForHealth(30_000);
      }
    } catch (err) {
      gw.kill();
      throw err;
    }
    return gw;
  }

  /**
   * Spawns `lianfang start` on the given ports (0: the gateway picks one, known from its 'gateway
   * started' line) and returns at once, before the gateway is up (bench/node-red.ts times its start).
   */
  static spawn(dataDir: string, env: NodeJS.ProcessEnv, nodeArgs: string[], ports: { mqtt: number; ws: number; http: number }): GatewayChild {
    const child = spawn(
      process.execPath,
      [...nodeArgs, CLI, 'start', '--data', dataDir, '--mqtt-port', String(ports.mqtt), '--ws-port', String(ports.ws), '--http-port', String(ports.http)],
      {
        // Node-RED off unless a bench part turns it on (bench/node-red.ts).
        env: { ...process.env, LF_MQTT_HOST: '127.0.0.1', LF_HTTP_HOST: '127.0.0.1', LF_NODE_RED_ENABLED: 'false', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const gw = new GatewayChild(child);
    gw.ports = { ...ports };
    return gw;
  }

  private async waitForHealth(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitCode !== null || this.signal !== null) {
        throw new Error(`gateway exited (${this.exitCode ?? this.signal}) before starting; stderr: ${this.stderr.slice(-1000)}`);
      }
      try {
        const h = await this.health();
        if (h.up) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > until) throw new Error(`gateway: /health did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.ports.mqtt}`;
  }

  async health(): Promise<Record<string, any>> {
    const res = await fetch(`http://127.0.0.1:${this.ports.http}/health`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as Record<string, any>;
  }
}

export class BareBrokerChild extends Child {
  port = 0;

  static async start(): Promise<BareBrokerChild> {
    // stdin is a pipe the broker watches: when this process ends, so does the broker.
    const child = spawn(process.execPath, [BARE], { stdio: ['pipe', 'pipe', 'pipe'] });
    const bb = new BareBrokerChild(child);
    try {
      const line = await bb.waitForLine((l) => typeof l.port === 'number', 15_000, 'bare broker');
      bb.port = line.port as number;
    } catch (err) {
      bb.kill();
      throw err;
    }
    return bb;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  override async stop(graceMs = 3000): Promise<void> {
    this.child.stdin?.end();
    return super.stop(graceMs);
  }
}

/** USER_HZ, the unit of /proc/<pid>/stat times: 100 on every mainstream Linux. */
const CLOCK_TICKS = 100;

/** CPU time (user + system) a process has used, in ms; null where /proc is not available. */
export function cpuTimeMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** CPU time of this process, in ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time all processes of the machine have used (user, nice, system, irq, softirq, steal), in ms; null without /proc. */
export function systemBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
    return (busy * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
