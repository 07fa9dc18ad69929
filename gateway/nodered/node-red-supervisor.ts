/**
 * Runs embedded Node-RED (docs/node-red.md) as a child process of the gateway and keeps it running:
 * started at a low scheduling priority (SCHED_IDLE, nodeRed.idle, through `chrt`; nodeRed.nice,
 * through `nice`; so that every thread of it has them), given its settings over the IPC channel,
 * asked every nodeRed.heartbeatIntervalMs whether it still answers. A child that exits, does not finish starting, or stops answering is killed,
 * raised as a `node-red-down` fault, and started again after a wait that doubles at each failure
 * in a row (nodeRed.restartMinMs … restartMaxMs); the fault clears when it is ready again.
 *
 * Nothing on the alarm path waits for it: the flow feed (flow-feed.ts) queues what the flows get,
 * and one batch at a time goes to the child, the next when it acknowledged the last. What the
 * child asks (a login, a node's command or note) is answered through the context's functions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../logger.js';
import type { Counters } from '../metrics.js';
import type { GatewayFaultSink } from '../faults/gateway-faults.js';
import { isLianfangError } from '../errors.js';
import { ADMIN_ROOT, NODE_ROOT } from './node-red-root.js';
import type { FlowFeed } from './flow-feed.js';
import type { CallOp, ChildInit, EditorUser, FromChild, ToChild } from './protocol.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The compiled child entry, beside this file in dist/. */
const CHILD_SCRIPT = join(HERE, 'node-red-child.js');
/** The node package is read from the repository's source tree (its .js and .html are not compiled). */
export const NODES_DIR = join(HERE, '..', '..', '..', 'gateway', 'nodered', 'lianfang-nodes');
/** Messages in one batch to the child. */
const BATCH = 100;
const NICE = ['/usr/bin/nice', '/bin/nice'].find((p) => existsSync(p)) ?? null;
const CHRT = ['/usr/bin/chrt', '/bin/chrt'].find((p) => existsSync(p)) ?? null;

export type NodeRedState = 'starting' | 'running' | 'waiting' | 'stopped';

export interface NodeRedContext {
  config: Readonly<Config['nodeRed']>;
  dataDir: string;
  gatewayKey: Buffer;
  logLevel: string;
  log: Logger;
  counters: Counters;
  feed: FlowFeed;
  faults: GatewayFaultSink;
  /** A login to the editor (through the gateway's login throttle): the user, or null. */
  authenticate(username: string, password: string): Promise<EditorUser | null>;
  /** The live account of that name as the editor sees it (checked at every request of a token). */
  user(username: string): EditorUser | null;
  /** What a Lianfang node asks (command-out, alarm-note), as flow `flow`. */
  call(op: CallOp, args: Record<string, unknown>, flow: string): Promise<unknown>;
  /** Node-RED's own audit events: a deploy (with the flows' names), a login, a logout. */
  audit(event: string, user: string | null, detail: Record<string, unknown>): void;
  /** Test hook (LF_NODE_RED_FAIL_STARTS): the first N starts of the child exit at once. */
  failStarts?: number;
}

/** The key flow credentials are encrypted with: the gateway key's, never the key itself, never `false`. */
export function credentialSecret(gatewayKey: Buffer): string {
  return createHmac('sha256', gatewayKey).update('lianfang node-red credentialSecret v1').digest('base64url');
}

export class NodeRedSupervisor {
  state: NodeRedState = 'stopped';
  /** The child's loopback port while it runs. */
  port: number | null = null;
  /** What the proxy adds to each request it forwards (new at every start). */
  proxySecret = '';
  restarts = 0;
  private child: ChildProcess | null = null;
  private failures = 0;
  private readyAt = 0;
  private lastPong = 0;
  private pingN = 0;
  private inFlight: { seq: number; size: number } | null = null;
  private seq = 0;
  private faultRaised = false;
  private timers: { restart?: NodeJS.Timeout; start?: NodeJS.Timeout; heartbeat?: NodeJS.Timeout } = {};
  private stopping = false;
  private readonly log: Logger;

  constructor(private readonly ctx: NodeRedContext) {
    this.log = ctx.log;
  }

  /** Starts the child and returns at once: the gateway does not wait for Node-RED. */
  start(): void {
    this.stopping = false;
    this.spawnChild();
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  health(): Record<string, unknown> {
    return { state: this.state, pid: this.pid, restarts: this.restarts, queued: this.ctx.feed.length, dropped: this.ctx.counters.get('nodered.dropped') };
  }

  /** Called by the feed when the queue was empty and is not. */
  wake(): void {
    this.pump();
  }

  private spawnChild(): void {
    const { config } = this.ctx;
    const userDir = join(this.ctx.dataDir, 'node-red');
    mkdirSync(userDir, { recursive: true, mode: 0o700 });
    this.proxySecret = randomBytes(24).toString('base64url');
    this.state = 'starting';
    this.port = null;
    const args = [CHILD_SCRIPT];
    // Through `chrt --idle 0` (SCHED_IDLE) and `nice`, each then execs the next: every thread of
    // the child has both. SCHED_IDLE is what keeps a busy flow off the alarm path's latency: a
    // woken gateway thread preempts an idle-policy one at once, where a nice 19 one may finish
    // its slice first.
    const idle = CHRT !== null && config.idle;
    const niced = NICE !== null && config.nice > 0;
    const node = [process.execPath, ...process.execArgv.filter((a) => !a.startsWith('--inspect')), ...args];
    const argv = [...(idle ? [CHRT!, '--idle', '0'] : []), ...(niced ? [NICE!, '-n', String(config.nice)] : []), ...node];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child = child;
    if (!niced && config.nice > 0 && child.pid) {
      try {
        setPriority(child.pid, config.nice);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not lower the Node-RED process\'s priority');
      }
    }
    const lines = (level: 'info' | 'warn') => (d: Buffer) => {
      for (const line of String(d).split('\n')) if (line.trim()) this.log[level]({ nodeRedPid: child.pid }, `node-red: ${line.slice(0, 2000)}`);
    };
    child.stdout!.on('data', lines('info'));
    child.stderr!.on('data', lines('warn'));
    child.on('message', (m: FromChild) => this.onMessage(child, m));
    child.on('error', (err) => this.log.error({ err: err.message }, 'the Node-RED process could not be started'));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    const init: ChildInit = {
      userDir,
      credentialSecret: credentialSecret(this.ctx.gatewayKey),
      proxySecret: this.proxySecret,
      nodesDir: NODES_DIR,
      tokenExpirySeconds: Math.max(1, Math.round(config.tokenExpiryMs / 1000)),
      httpAdminRoot: ADMIN_ROOT,
      httpNodeRoot: NODE_ROOT,
      logLevel: this.ctx.logLevel === 'silent' ? 'off' : this.ctx.logLevel === 'trace' ? 'trace' : this.ctx.logLevel === 'debug' ? 'debug' : 'warn',
      ...(this.ctx.failStarts ? { failStarts: this.ctx.failStarts } : {}),
    };
    this.send(child, { t: 'init', init });
    this.log.info({ nodeRedPid: child.pid, nice: niced || config.nice === 0 ? config.nice : 'setpriority', policy: idle ? 'idle' : 'normal' }, 'node-red starting');
    if (config.idle && !idle) this.log.warn('chrt not found: Node-RED runs under the normal scheduling policy (nodeRed.nice only)');
    this.timers.start = setTimeout(() => this.giveUp(child, 'start-timeout'), config.startTimeoutMs);
  }

  private send(child: ChildProcess, m: ToChild): boolean {
    if (!child.connected) return false;
    try {
      return child.send(m, (err) => err && this.log.debug({ err: err.message }, 'IPC send to Node-RED failed'));
    } catch {
      return false;
    }
  }

  private onMessage(child: ChildProcess, m: FromChild): void {
    if (child !== this.child || typeof m !== 'object' || m === null) return;
    switch (m.t) {
      case 'ready':
        return this.onReady(child, m.port);
      case 'ack':
        if (this.inFlight?.seq === m.seq) {
          this.ctx.counters.inc('nodered.delivered', this.inFlight.size);
          this.inFlight = null;
          this.pump();
        }
        return;
      case 'pong':
        this.lastPong = Date.now();
        return;
      case 'auth':
        return void this.answerAuth(child, m);
      case 'call':
        return void this.answerCall(child, m);
      case 'audit':
        return this.ctx.audit(String(m.event), typeof m.user === 'string' ? m.user : null, m.detail && typeof m.detail === 'object' ? m.detail : {});
      case 'log':
        if (m.level === 'error' || m.level === 'warn' || m.level === 'info' || m.level === 'debug') this.log[m.level]({ nodeRedPid: child.pid }, `node-red: ${String(m.msg).slice(0, 2000)}`);
        return;
    }
  }

  private onReady(child: ChildProcess, port: number): void {
    clearTimeout(this.timers.start);
    this.state = 'running';
    this.port = port;
    this.readyAt = Date.now();
    this.lastPong = Date.now();
    this.log.info({ nodeRedPid: child.pid, port, restarts: this.restarts }, 'node-red ready');
    if (this.faultRaised) {
      this.faultRaised = false;
      this.ctx.faults.clearGateway('node-red-down', 'node-red');
    }
    this.timers.heartbeat = setInterval(() => this.heartbeat(child), this.ctx.config.heartbeatIntervalMs);
    this.timers.heartbeat.unref();
    this.pump();
  }

  private heartbeat(child: ChildProcess): void {
    if (Date.now() - this.lastPong > this.ctx.config.unresponsiveAfterMs) return this.giveUp(child, 'unresponsive');
    this.send(child, { t: 'ping', n: ++this.pingN });
  }

  /** The child is not answering, or never got ready: it is killed, and its exit restarts it. */
  private giveUp(child: ChildProcess, reason: 'unresponsive' | 'start-timeout'): void {
    if (child !== this.child) return;
    this.log.error({ nodeRedPid: child.pid, reason }, reason === 'unresponsive' ? 'node-red stopped answering: killing it' : 'node-red did not start in time: killing it');
    this.raise({ reason });
    child.kill('SIGKILL');
  }

  private raise(detail: Record<string, unknown>): void {
    this.faultRaised = true;
    this.ctx.faults.raiseGateway('node-red-down', 'node-red', detail);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    clearTimeout(this.timers.start);
    clearInterval(this.timers.heartbeat);
    this.child = null;
    this.port = null;
    if (this.inFlight) this.ctx.counters.inc('nodered.lost', this.inFlight.size);
    this.inFlight = null;
    if (this.stopping) {
      this.state = 'stopped';
      return;
    }
    // A child that ran a good while before it failed starts again with the shortest wait.
    if (this.readyAt && Date.now() - this.readyAt > this.ctx.config.restartMaxMs) this.failures = 0;
    this.readyAt = 0;
    const waitMs = Math.min(this.ctx.config.restartMaxMs, this.ctx.config.restartMinMs * 2 ** this.failures);
    this.failures++;
    this.restarts++;
    this.ctx.counters.inc('nodered.restarts');
    this.log.error({ code, signal, waitMs, failures: this.failures }, 'node-red exited: restarting it');
    if (!this.faultRaised) this.raise({ reason: 'exited', code, signal });
    this.state = 'waiting';
    this.timers.restart = setTimeout(() => {
      if (!this.stopping) this.spawnChild();
    }, waitMs);
  }

  /** One batch at a time to a ready child. */
  private pump(): void {
    const child = this.child;
    if (!child || this.state !== 'running' || this.inFlight || this.ctx.feed.length === 0) return;
    const messages = this.ctx.feed.take(BATCH);
    const seq = ++this.seq;
    this.inFlight = { seq, size: messages.length };
    if (!this.send(child, { t: 'feed', seq, messages })) {
      this.ctx.counters.inc('nodered.lost', messages.length);
      this.inFlight = null;
    }
  }

  private async answerAuth(child: ChildProcess, m: Extract<FromChild, { t: 'auth' }>): Promise<void> {
    let user: EditorUser | null = null;
    try {
      const name = String(m.username ?? '').slice(0, 64);
      user = m.op === 'authenticate' ? await this.ctx.authenticate(name, String(m.password ?? '').slice(0, 256)) : this.ctx.user(name);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'a Node-RED login could not be checked');
    }
    this.send(child, { t: 'auth-reply', id: m.id, user });
  }

  private async answerCall(child: ChildProcess, m: Extract<FromChild, { t: 'call' }>): Promise<void> {
    try {
      const result = await this.ctx.call(m.op, m.args && typeof m.args === 'object' ? m.args : {}, String(m.flow ?? 'unnamed').slice(0, 200));
      this.send(child, { t: 'call-reply', id: m.id, ok: true, result });
    } catch (err) {
      const code = isLianfangError(err) ? err.code : 'LF_ERR_INTERNAL';
      if (!isLianfangError(err)) this.log.error({ err }, 'a Node-RED call failed');
      this.ctx.counters.inc(`nodered.refused.${code}`);
      this.send(child, { t: 'call-reply', id: m.id, ok: false, code, message: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timers.restart);
    clearTimeout(this.timers.start);
    clearInterval(this.timers.heartbeat);
    const child = this.child;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (!this.send(child, { t: 'stop' })) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 6000);
    await exited;
    clearTimeout(timer);
  }
}
