/**
 * Embedded Node-RED's part of `npm run bench` (issue 12 "Proof"), on a street of its own (a fresh
 * data directory, an installer's login):
 * 1. Start-up: `lianfang start` spawned on the provisioned directory with nodeRed.enabled false and
 *    true, in turns; from the spawn to the 'gateway started' log line, to /health answering, and
 *    (Node-RED on) to 'node-red ready'. The gateway does not wait for Node-RED, so the first two
 *    should be about the same either way.
 * 2. The alarm path with hostile flows: a simulated keypad's 9# (MQTT publish) → the station
 *    console's receipt of the raised alarm, one alarm at a time (each acknowledged and closed over
 *    MQTT before the next press), on three gateways in turns within each round: Node-RED off; on,
 *    with `lianfang-alarm-in → a function that throws` deployed; on, with `lianfang-alarm-in → a
 *    function that busy-loops 1000 ms on every message`. The flows are deployed through the admin
 *    API (/flows/auth/token with the installer's login, POST /flows/flows) as an installer does.
 *    Beside the latencies: /health's `nodeRed` (state, pid, restarts, queued, dropped) and the
 *    nodered.* counters over the measured alarms, the CPU the gateway and the Node-RED process used,
 *    and the error lines Node-RED sent the gateway's log.
 * Node-RED runs with the shipped defaults (queueMax 1000, unresponsiveAfterMs 30 s, SCHED_IDLE and
 * nice 19; LF_NODE_RED_IDLE=false in the bench's environment for nice 19 alone).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { provisionStreet } from '../test/helpers/street.js';
import { openDatabase } from '../gateway/store/db.js';
import { addUser } from '../gateway/registry/registry.js';
import { SimKeypad } from '../simulators/mqtt-devices.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import type { ConsoleAlarm } from '../firmware-contracts/mqtt/payloads.js';
import { round, type Credentials } from './fanout.js';
import { GatewayChild, freePort, cpuTimeMs, selfCpuMs, systemBusyMs } from './processes.js';
import { newHistogram, recordMs, summarize, median, type Summary } from './stats.js';

export interface NodeRedBenchParams {
  /** Alarms measured on each gateway (one at a time). */
  alarms: number;
  /** Alarms before those on each gateway, not measured. */
  warmup: number;
  /** Rounds of the three gateways (alarm path), and starts of each kind (start-up). */
  runs: number;
  /** Shops on the street, pressed in turn. */
  shops: number;
  /** Longest wait for one alarm at the console. */
  timeoutMs: number;
  /** A run during which other processes used more than a quarter of a core is run again, this many times at most. */
  retries: number;
}

export type Before = { waitedSeconds: number; otherCores: number | null };

export interface NodeRedBenchContext {
  log: (line: string) => void;
  track: (c: { kill(): void }) => void;
  /** Waits (bounded) for the machine to be quiet before a measurement. */
  quiet: (what: string) => Promise<Before>;
  keepData?: boolean;
  logLevel: string;
  deadlinesMs: number;
}

/** One start of the gateway, ms from the spawn. */
export interface StartSample {
  gatewayStartedMs: number;
  healthMs: number;
  /** Node-RED on: its 'node-red ready' line. */
  nodeRedReadyMs: number | null;
}

export interface StartupResult {
  off: StartSample[];
  on: StartSample[];
  median: { off: StartSample; on: StartSample };
  /** Median 'gateway started' time with Node-RED on / off. */
  startedRatio: number;
  before: Before;
}

export type Variant = 'off' | 'throws' | 'busy';
export const VARIANTS: readonly Variant[] = ['off', 'throws', 'busy'];
export const VARIANT_NAMES: Record<Variant, string> = {
  off: '(a) Node-RED off',
  throws: '(b) Node-RED + a flow that throws',
  busy: '(c) Node-RED + a flow busy 1 s a msg',
};

/** What /health says of Node-RED. */
export interface NodeRedHealth {
  state: string;
  pid: number | null;
  restarts: number;
  queued: number;
  dropped: number;
}

export interface AlarmRun {
  variant: Variant;
  run: number;
  before: Before;
  /** Keypad publish → the console has the raised alarm. */
  latencyMs: Summary;
  /** Keypad publish → its PUBACK (stored). */
  pubackMs: Summary;
  completed: number;
  missed: number;
  wallSeconds: number;
  /** Cores used over the measured alarms; nodeRed null when off or when its process changed. */
  cpu: { gateway: number | null; nodeRed: number | null; bench: number; other: number | null };
  /** Node-RED on: /health's nodeRed when the measured alarms began and when they ended. */
  nodeRed?: { atStart: NodeRedHealth; atEnd: NodeRedHealth };
  /** Node-RED on: the gateway's nodered.* counters over the measured alarms. */
  counters?: { queued: number; dropped: number; delivered: number; lost: number; restarts: number };
  /** Node-RED on: what the deploy answered, and the error lines Node-RED sent the gateway's log from the deploy to the last alarm (it sends 20 per 10 s at most). */
  deploy?: { status: number; ms: number };
  nodeRedErrors?: { lines: number; sample: string | null };
  /** Node-RED on: over the whole run, the times the gateway killed it as unresponsive, and the times it exited (killed or not). */
  nodeRedExits?: { unresponsive: number; exited: number };
}

export interface NodeRedResult {
  params: NodeRedBenchParams;
  startup: StartupResult;
  runs: AlarmRun[];
  /** Runs disturbed by other work (other processes above a quarter of a core) and run again; not in the medians. */
  disturbed: AlarmRun[];
  /** Per variant, the median over the runs. */
  medians: Record<Variant, { p50: number; p90: number; p99: number }>;
  /** p50 of (b) and (c) against (a): the median of the per-round ratios, and the ratio of the medians. */
  ratios: Record<'throws' | 'busy', { medianOfRounds: number; ofMedians: number; rounds: number[] }>;
  flows: Record<'throws' | 'busy', string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Other processes' use above which a run counts as disturbed (as run.ts's conditions warn). */
const DISTURBED_CORES = 0.25;

/** The function nodes' bodies, as the issue states them. */
export const FLOW_FUNCTIONS: Record<'throws' | 'busy', string> = {
  throws: "throw new Error('boom');",
  busy: 'const end = Date.now() + 1000; while (Date.now() < end) {}\nreturn msg;',
};

/** A flow tab: every alarm message (`lianfang-alarm-in`, no filter) → a function node. */
function hostileFlow(variant: 'throws' | 'busy'): unknown[] {
  const tab = `bench-${variant}-tab`;
  return [
    { id: tab, type: 'tab', label: `bench: ${variant}`, disabled: false, info: '' },
    { id: `bench-${variant}-in`, z: tab, type: 'lianfang-alarm-in', name: 'every alarm', stations: '', kinds: '', states: '', includeTests: false, x: 140, y: 80, wires: [[`bench-${variant}-fn`]] },
    {
      id: `bench-${variant}-fn`,
      z: tab,
      type: 'function',
      name: variant,
      func: FLOW_FUNCTIONS[variant],
      outputs: 1,
      timeout: 0,
      noerr: 0,
      initialize: '',
      finalize: '',
      libs: [],
      x: 360,
      y: 80,
      wires: [[]],
    },
  ];
}

/** The editor's login (password grant of /flows/auth/token), then a full deploy (POST /flows/flows). */
async function deployFlow(httpPort: number, login: Credentials, flows: unknown[]): Promise<{ status: number; ms: number }> {
  const base = `http://127.0.0.1:${httpPort}/flows`;
  const res = await fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: login.username, password: login.password }),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string };
  if (!body.access_token) throw new Error(`node-red bench: no editor token for ${login.username} (HTTP ${res.status})`);
  const t = performance.now();
  const dep = await fetch(`${base}/flows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'node-red-deployment-type': 'full', 'node-red-api-version': 'v1', authorization: `Bearer ${body.access_token}` },
    body: JSON.stringify(flows),
  });
  const text = await dep.text();
  if (dep.status !== 200 && dep.status !== 204) throw new Error(`node-red bench: the deploy answered ${dep.status}: ${text.slice(0, 300)}`);
  return { status: dep.status, ms: round(performance.now() - t, 1) };
}

/** Until /health says Node-RED runs (its start takes seconds). */
async function nodeRedRunning(gw: GatewayChild, timeoutMs: number): Promise<NodeRedHealth> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const h = (await gw.health().catch(() => null))?.nodeRed as NodeRedHealth | undefined;
    if (h?.state === 'running') return h;
    if (gw.exitCode !== null || gw.signal !== null) throw new Error('node-red bench: the gateway exited while Node-RED was starting');
    if (performance.now() > until) throw new Error(`node-red bench: Node-RED not running within ${timeoutMs} ms (${h?.state ?? '?'})`);
    await sleep(200);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stop the gateway (it stops Node-RED, up to 6 s), then make sure the Node-RED process it ran is gone too. */
async function stopGateway(gw: GatewayChild, nodeRedPid: number | null): Promise<void> {
  await gw.stop(15_000);
  if (nodeRedPid === null) return;
  // A child in a busy loop notices its gateway's exit only when the loop ends: it must not burn a core into the next run.
  for (let i = 0; i < 20 && alive(nodeRedPid); i++) await sleep(100);
  if (alive(nodeRedPid)) process.kill(nodeRedPid, 'SIGKILL');
}

function gatewayEnv(ctx: NodeRedBenchContext, nodeRed: boolean): NodeJS.ProcessEnv {
  return {
    LF_LOG_LEVEL: ctx.logLevel,
    LF_NODE_RED_ENABLED: nodeRed ? 'true' : 'false',
    LF_ESCALATION_ACK_DEADLINE_MS: String(ctx.deadlinesMs),
    LF_ESCALATION_OVERDUE_REPEAT_MS: String(ctx.deadlinesMs),
    LF_ESCALATION_RING_INTERVAL_MS: String(ctx.deadlinesMs),
  };
}

// ------------------------------------------------------------------ start-up

/** Poll /health from the spawn on (every 20 ms) until it answers; ms from `t0`. */
async function healthAnswers(gw: GatewayChild, port: number, t0: number, timeoutMs: number): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && ((await res.json()) as { up?: boolean }).up) return performance.now() - t0;
    } catch {
      /* not listening yet */
    }
    if (gw.exitCode !== null || gw.signal !== null) throw new Error(`node-red bench: the gateway exited while starting; stderr: ${gw.stderr.slice(-500)}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`node-red bench: /health did not answer within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function timeStart(dir: string, nodeRed: boolean, ctx: NodeRedBenchContext): Promise<StartSample> {
  const ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort() };
  const t0 = performance.now();
  const gw = GatewayChild.spawn(dir, { ...gatewayEnv(ctx, nodeRed), LF_LOG_LEVEL: 'info' }, [], ports);
  ctx.track(gw);
  let nodeRedPid: number | null = null;
  try {
    const started = gw.waitForLine((l) => l.msg === 'gateway started', 60_000, 'gateway').then(() => performance.now() - t0);
    const ready = nodeRed ? gw.waitForLine((l) => l.msg === 'node-red ready', 150_000, 'node-red').then((l) => ((nodeRedPid = l.nodeRedPid as number), performance.now() - t0)) : null;
    const health = healthAnswers(gw, ports.http, t0, 60_000);
    const [gatewayStartedMs, healthMs, nodeRedReadyMs] = await Promise.all([started, health, ready]);
    return { gatewayStartedMs: round(gatewayStartedMs, 1), healthMs: round(healthMs, 1), nodeRedReadyMs: nodeRedReadyMs === null ? null : round(nodeRedReadyMs, 1) };
  } finally {
    if (nodeRed && nodeRedPid === null) nodeRedPid = ((await gw.health().catch(() => null))?.nodeRed as NodeRedHealth | undefined)?.pid ?? null;
    await stopGateway(gw, nodeRedPid);
  }
}

async function runStartup(dir: string, p: NodeRedBenchParams, ctx: NodeRedBenchContext): Promise<StartupResult> {
  ctx.log(`\n== node-red: gateway start-up, Node-RED off and on in turns, ${p.runs} starts each ==`);
  const before = await ctx.quiet('the start-up timings');
  // One start not recorded: the first reads the gateway's and Node-RED's modules from disk.
  await timeStart(dir, true, ctx);
  const off: StartSample[] = [];
  const on: StartSample[] = [];
  for (let i = 0; i < p.runs; i++) {
    off.push(await timeStart(dir, false, ctx));
    on.push(await timeStart(dir, true, ctx));
    const a = off[i]!;
    const b = on[i]!;
    ctx.log(`  start ${i + 1}: off: started ${a.gatewayStartedMs} ms, /health ${a.healthMs} ms; on: started ${b.gatewayStartedMs} ms, /health ${b.healthMs} ms, node-red ready ${b.nodeRedReadyMs} ms`);
  }
  const med = (xs: StartSample[]): StartSample => ({
    gatewayStartedMs: round(median(xs.map((x) => x.gatewayStartedMs)), 1),
    healthMs: round(median(xs.map((x) => x.healthMs)), 1),
    nodeRedReadyMs: xs.every((x) => x.nodeRedReadyMs !== null) ? round(median(xs.map((x) => x.nodeRedReadyMs!)), 1) : null,
  });
  const m = { off: med(off), on: med(on) };
  return { off, on, median: m, startedRatio: round(m.on.gatewayStartedMs / m.off.gatewayStartedMs, 3), before };
}

// ------------------------------------------------------------------ the alarm path

/** The station's console over MQTT: tells when a shop's alarm is raised, acknowledges and closes it. */
class BenchConsole {
  private raisedWaiters = new Map<string, (at: number) => void>();
  private closedWaiters = new Map<string, () => void>();

  private constructor(private readonly client: MqttClient, private readonly stationId: string) {
    client.on('message', (_topic, payload) => this.onMessage(payload));
  }

  static async connect(url: string, officer: Credentials, stationId: string, boot: number): Promise<BenchConsole> {
    const client = await mqtt.connectAsync(url, { clientId: `${officer.username}:bench-nodered-${boot}`, username: officer.username, password: officer.password, reconnectPeriod: 0, connectTimeout: 10_000 });
    const c = new BenchConsole(client, stationId);
    await client.subscribeAsync(topics.stationAlarms(stationId), { qos: 1 });
    return c;
  }

  private onMessage(payload: Buffer): void {
    const at = performance.now();
    const m = JSON.parse(payload.toString('utf8')) as ConsoleAlarm;
    if (m.state === 'raised') {
      const w = this.raisedWaiters.get(m.shopId);
      if (w) {
        this.raisedWaiters.delete(m.shopId);
        w(at);
        this.publish({ alarmId: m.alarmId, action: 'ack' });
      }
    } else if (m.state === 'acknowledged') this.publish({ alarmId: m.alarmId, action: 'close', disposition: 'test' });
    else if (m.state === 'closed') this.closedWaiters.get(m.shopId)?.();
  }

  private publish(action: Record<string, unknown>): void {
    this.client.publish(topics.stationActions(this.stationId), JSON.stringify(action), { qos: 1 });
  }

  /** When the shop's next raised alarm reaches the console (performance.now()), and when it is closed; null on a timeout. */
  expect(shopId: string, timeoutMs: number): { raised: Promise<number | null>; closed: Promise<boolean> } {
    const raised = new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => (this.raisedWaiters.delete(shopId), resolve(null)), timeoutMs);
      this.raisedWaiters.set(shopId, (at) => (clearTimeout(timer), resolve(at)));
    });
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => (this.closedWaiters.delete(shopId), resolve(false)), timeoutMs * 2);
      this.closedWaiters.set(shopId, () => (clearTimeout(timer), this.closedWaiters.delete(shopId), resolve(true)));
    });
    return { raised, closed };
  }

  close(): Promise<void> {
    return this.client.endAsync(true).catch(() => {});
  }
}

interface Street {
  dir: string;
  stationId: string;
  officer: Credentials;
  installer: Credentials;
  shops: { shopId: string; deviceId: string; creds: Credentials }[];
}

async function buildStreet(dir: string, shops: number): Promise<Street> {
  const street = await provisionStreet(dir, shops);
  const installer = { username: 'bench-installer', password: randomBytes(18).toString('base64url') };
  const db = openDatabase(dir);
  try {
    await addUser(db, { name: installer.username, role: 'installer', password: installer.password });
  } finally {
    db.close();
  }
  return { dir, stationId: street.stationId, officer: street.officer, installer, shops: street.shops };
}

/** Gateway processes on the street's database so far: each run's keypads start a new power-up (boot). */
let boots = 0;

type Cpu = { gateway: number | null; nodeRed: number | null; self: number; system: number | null; t: number };

function cpuNow(gw: GatewayChild, nodeRedPid: number | null): Cpu {
  return { gateway: cpuTimeMs(gw.pid), nodeRed: nodeRedPid === null ? null : cpuTimeMs(nodeRedPid), self: selfCpuMs(), system: systemBusyMs(), t: performance.now() };
}

function cpuCores(a: Cpu, b: Cpu, sameNodeRed: boolean): AlarmRun['cpu'] {
  const wall = b.t - a.t;
  const d = (x: number | null, y: number | null) => (x === null || y === null ? null : y - x);
  const gateway = d(a.gateway, b.gateway);
  const nodeRed = sameNodeRed ? d(a.nodeRed, b.nodeRed) : null;
  const system = d(a.system, b.system);
  const self = b.self - a.self;
  const other = system === null || gateway === null ? null : Math.max(0, system - gateway - (nodeRed ?? 0) - self);
  const cores = (x: number | null) => (x === null ? null : round(x / wall, 2));
  return { gateway: cores(gateway), nodeRed: cores(nodeRed), bench: round(self / wall, 2), other: cores(other) };
}

function nodeRedCounters(h: Record<string, any> | null): Record<'queued' | 'dropped' | 'delivered' | 'lost' | 'restarts', number> {
  const c = (h?.counters ?? {}) as Record<string, number>;
  const get = (k: string) => c[`nodered.${k}`] ?? 0;
  return { queued: get('queued'), dropped: get('dropped'), delivered: get('delivered'), lost: get('lost'), restarts: get('restarts') };
}

/** One gateway (one variant), `p.warmup` + `p.alarms` alarms one at a time. */
async function alarmRun(street: Street, variant: Variant, run: number, p: NodeRedBenchParams, ctx: NodeRedBenchContext): Promise<AlarmRun> {
  ctx.log(`\n== node-red round ${run}/${p.runs}: ${VARIANT_NAMES[variant]} ==`);
  const before = await ctx.quiet(`node-red round ${run}, ${variant}`);
  const nodeRed = variant !== 'off';
  const gw = await GatewayChild.start(street.dir, gatewayEnv(ctx, nodeRed));
  ctx.track(gw);
  const boot = ++boots;
  const keypads: SimKeypad[] = [];
  let station: BenchConsole | null = null;
  let nodeRedPid: number | null = null;
  let errorLines = 0;
  let errorSample: string | null = null;
  let counting = false;
  const exits = { unresponsive: 0, exited: 0 };
  gw.onLine((l) => {
    if (l.msg === 'node-red stopped answering: killing it') exits.unresponsive++;
    if (l.msg === 'node-red exited: restarting it') exits.exited++;
    if (!counting || l.level < 50 || !String(l.msg).startsWith('node-red:')) return;
    errorLines++;
    errorSample ??= String(l.msg).slice(0, 200);
  });
  try {
    const out: Partial<AlarmRun> = {};
    if (variant !== 'off') {
      nodeRedPid = (await nodeRedRunning(gw, 150_000)).pid;
      out.deploy = await deployFlow(gw.ports.http, street.installer, hostileFlow(variant));
      counting = true;
      ctx.log(`  Node-RED running (pid ${nodeRedPid}); flow deployed by ${street.installer.username} (HTTP ${out.deploy.status}, ${out.deploy.ms} ms): ${JSON.stringify(FLOW_FUNCTIONS[variant])}`);
    }
    for (const s of street.shops) keypads.push(await new SimKeypad(s.deviceId, s.shopId, s.creds, boot).connect(gw.mqttUrl));
    station = await BenchConsole.connect(gw.mqttUrl, street.officer, street.stationId, boot);
    const latency = newHistogram();
    const puback = newHistogram();
    let completed = 0;
    let missed = 0;
    let h0: Record<string, any> | null = null;
    let c0: Cpu | null = null;
    let t0All = 0;
    ctx.log(`  ${p.warmup} warm-up + ${p.alarms} alarms, one at a time, from ${keypads.length} shops in turn`);
    for (let i = 0; i < p.warmup + p.alarms; i++) {
      if (i === p.warmup) {
        h0 = await gw.health().catch(() => null);
        c0 = cpuNow(gw, nodeRedPid);
        t0All = performance.now();
      }
      const kp = keypads[i % keypads.length]!;
      const wait = station.expect(kp.shopId, p.timeoutMs);
      const t0 = performance.now();
      const acked = kp.press('9#').then(() => performance.now() - t0);
      const at = await wait.raised;
      const ackMs = await acked;
      if (at === null) {
        missed++;
        continue;
      }
      if (i >= p.warmup) {
        recordMs(latency, at - t0);
        recordMs(puback, ackMs);
        completed++;
      }
      await wait.closed;
    }
    counting = false;
    const wallSeconds = round((performance.now() - t0All) / 1000, 1);
    const h1 = await gw.health().catch(() => null);
    const atEnd = h1?.nodeRed as NodeRedHealth | undefined;
    const c1 = cpuNow(gw, nodeRedPid);
    const result: AlarmRun = {
      variant,
      run,
      before,
      latencyMs: summarize(latency, false),
      pubackMs: summarize(puback, false),
      completed,
      missed,
      wallSeconds,
      cpu: cpuCores(c0!, c1, atEnd?.pid === nodeRedPid),
      ...out,
    };
    if (nodeRed) {
      const a = nodeRedCounters(h0);
      const b = nodeRedCounters(h1);
      result.nodeRed = { atStart: h0?.nodeRed as NodeRedHealth, atEnd: atEnd as NodeRedHealth };
      result.counters = { queued: b.queued - a.queued, dropped: b.dropped - a.dropped, delivered: b.delivered - a.delivered, lost: b.lost - a.lost, restarts: b.restarts - a.restarts };
      result.nodeRedErrors = { lines: errorLines, sample: errorSample };
      result.nodeRedExits = exits;
      nodeRedPid = atEnd?.pid ?? nodeRedPid;
    }
    const l = result.latencyMs;
    ctx.log(
      `  p50 ${l.p50} ms, p90 ${l.p90} ms, p99 ${l.p99} ms, max ${l.max} ms; ${completed}/${p.alarms} at the console, ${missed} missed; ${wallSeconds} s` +
        (result.counters ? `; nodered queued ${result.counters.queued}, delivered ${result.counters.delivered}, dropped ${result.counters.dropped}, restarts ${result.counters.restarts}; Node-RED ${fmtCores(result.cpu.nodeRed)} cores, gateway ${fmtCores(result.cpu.gateway)}` : ''),
    );
    return result;
  } finally {
    await station?.close();
    await Promise.all(keypads.map((k) => k.close()));
    await stopGateway(gw, nodeRedPid);
  }
}

const fmtCores = (x: number | null) => (x === null ? '?' : x.toFixed(2));

/** The whole part: its own street, the start-up timings, then `p.runs` rounds of the three gateways. */
export async function runNodeRedBench(p: NodeRedBenchParams, ctx: NodeRedBenchContext): Promise<NodeRedResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lfb-nodered-'));
  try {
    const street = await buildStreet(dir, p.shops);
    ctx.log(`node-red: street of ${street.shops.length} shops, installer ${street.installer.username}, in ${dir}`);
    const startup = await runStartup(dir, p, ctx);
    const runs: AlarmRun[] = [];
    const disturbed: AlarmRun[] = [];
    for (let r = 1; r <= p.runs; r++) {
      for (const v of VARIANTS) {
        let x = await alarmRun(street, v, r, p, ctx);
        for (let retry = 0; retry < p.retries && (x.cpu.other ?? 0) > DISTURBED_CORES; retry++) {
          ctx.log(`  disturbed: other processes used ${x.cpu.other} cores during the alarms; running it again`);
          disturbed.push(x);
          x = await alarmRun(street, v, r, p, ctx);
        }
        runs.push(x);
      }
    }
    const of = (v: Variant) => runs.filter((x) => x.variant === v);
    const medians = Object.fromEntries(
      VARIANTS.map((v) => [v, { p50: median(of(v).map((x) => x.latencyMs.p50)), p90: median(of(v).map((x) => x.latencyMs.p90)), p99: median(of(v).map((x) => x.latencyMs.p99)) }]),
    ) as NodeRedResult['medians'];
    const ratio = (v: 'throws' | 'busy') => {
      const rounds = of(v).map((x, i) => round(x.latencyMs.p50 / of('off')[i]!.latencyMs.p50, 3));
      return { medianOfRounds: round(median(rounds), 3), ofMedians: round(medians[v].p50 / medians.off.p50, 3), rounds };
    };
    return { params: p, startup, runs, disturbed, medians, ratios: { throws: ratio('throws'), busy: ratio('busy') }, flows: FLOW_FUNCTIONS };
  } finally {
    if (!ctx.keepData) rmSync(dir, { recursive: true, force: true });
  }
}
