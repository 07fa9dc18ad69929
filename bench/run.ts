/**
 * `npm run bench`: the alarm fan-out benchmark and the wired buses, in one run.
 *
 * For the gateway (a child process: `lianfang start`, store-before-ack, rules, ACLs) and for a bare
 * Aedes broker (a child process: no store, no rules, no auth) with the same fan-out (each alarm to
 * the origin's 10 nearest shops and the station console, QoS 1), it measures:
 * 1. latency, press → the last of the 11 recipients, at an offered rate (open loop, default
 *    100 alarms/s, 10,000 recorded alarms after a warm-up), HdrHistogram p50/p90/p99/p99.9/max;
 * 2. sustained throughput: a closed loop keeping a window of alarms outstanding; a short sweep
 *    of windows picks the best, which then runs for --throughput-seconds.
 * The clients (one per shop, plus the console) all live in this process, not in the broker's.
 * 3. Wired (bench/wired.ts): a 9# on a serial keypad line, from the last byte of its frame to the
 *    commit and to the neighbours' keypads; and the poll cycle of 32 Modbus modules on one
 *    19200-baud RTU line, beside the wire's limits.
 * 4. Fan-out latency with one stalled subscriber present (issue 7): the latency phase again on the
 *    gateway while a second device of a much-alerted shop subscribes to its alerts and never
 *    reads (a 2 KiB receive buffer); it reconnects each time the gateway cuts it off.
 * 5. `--runs N` (default 1; 3 with `--only fanout`): the latency phase N times on each target, the
 *    median of the gateway/bare p50 ratios compared with the ratio recorded in
 *    bench/results/latest.json (issue 7: it must not get worse by more than 10 %).
 * 6. The console (bench/console.ts, issue 11): keypress → screen in a real headless Chromium page
 *    (p50/p99 over --console-alarms alarms; target p99 < 1 s), and `--page-consoles N` (default 2)
 *    protocol clients connected the way the page connects (HTTP sign-in, MQTT over ws://…/mqtt with
 *    the session's grant) present during every gateway run, so the fan-out ratio is the one with
 *    the station's screens open. `--only console`: the browser phase and the fan-out latency runs
 *    (median of --runs, default 3) with the page consoles, against the recorded ratio.
 * 7. Embedded Node-RED (bench/node-red.ts, issue 12): the gateway's start-up with and without it,
 *    and keypad 9# → console latency (p50, median of --nodered-runs rounds) without Node-RED, with
 *    a deployed flow that throws on every alarm message and with one that busy-loops 1 s on each,
 *    against the target "within 20 %" of the gateway without Node-RED. `--only nodered`.
 * Results: a table on stdout, bench/results/latest.json and bench/results/latest.md
 * (`--quick`: bench/results/quick.*; `--only X`: bench/results/latest-X.*, so a partial run never
 * replaces the full one).
 *
 * Bounded: every phase has a count and a time limit, a watchdog ends the run, and every socket
 * is on 127.0.0.1.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir, cpus, platform, release, totalmem, arch, loadavg } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { provisionStreet } from '../test/helpers/street.js';
import { openDatabase } from '../gateway/store/db.js';
import { listShops, addDevice } from '../gateway/registry/registry.js';
import { loadOrCreateGatewayKey } from '../gateway/secrets.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import { StalledSubscriber } from './stalled-subscriber.js';
import { ConfigSchema } from '../config/schema.js';
import { rankNeighbours } from '../gateway/geo.js';
import { FanoutBench, round, cpuShare, type CpuShare, type BenchShop, type PhaseResult, type TargetSpec, type Credentials } from './fanout.js';
import { GatewayChild, BareBrokerChild, ROOT, cpuTimeMs, selfCpuMs, systemBusyMs } from './processes.js';
import { newHistogram, summarize, median, type Summary } from './stats.js';
import { runKeypressToScreen, PageConsoles, type KeypressScreenResult } from './console.js';
import { runNodeRedBench, VARIANTS, VARIANT_NAMES, type NodeRedResult, type AlarmRun } from './node-red.js';
import { runSerialLine, runModbusCycle, NEIGHBOURS, type SerialLineParams, type ModbusCycleParams, type SerialLineResult, type ModbusCycleResult } from './wired.js';

// ------------------------------------------------------------------ parameters

const USAGE = `usage: node dist/bench/run.js [--alarms N] [--rate R] [--throughput-seconds S] [--shops N] [--only gateway|bare|wired|fanout|console|nodered] [--runs N] [--quick]
  --alarms N               alarms recorded in the latency phase (default 10000)
  --rate R                 offered alarms/s in the latency phase (default 100)
  --throughput-seconds S   measured seconds of the throughput phase (default 15)
  --shops N                shops pressed in the latency phase, each with an MQTT keypad (default 100)
  --throughput-shops N     shops on the street and pressed in the throughput phase (default 400): a shop
                           is busy until its alarm is closed, so enough of them keep the harness from
                           being the limit
  --windows A,B,...        outstanding-alarm windows swept before the throughput run (default 16,32,64,128)
  --log-level L            the gateway's log level (default info, its shipped default)
  --only gateway|bare|wired|fanout|console|nodered
                           run one part only: the gateway's or bare Aedes' fan-out (no ratio), the wired buses,
                           fanout: the latency phase only, --runs times on each target (median ratio against the
                           recorded one), and with a stalled subscriber; console: keypress → screen in headless
                           Chromium and the fan-out latency runs with the page-style consoles (no stalled phase);
                           or nodered: embedded Node-RED's start-up time, and keypad → console latency with
                           a throwing and a busy-looping flow against Node-RED off;
                           results to bench/results/latest-<part>.*
  --runs N                 latency phases per target for the median p50 ratio (default 1; 3 with --only fanout or console)
  --console-alarms N       alarms of the keypress → screen phase, each from its own shop (default 100; --quick 30)
  --page-consoles N        console clients connected as the page connects during every gateway run (default 2; 0 = none)
  --nodered-alarms N       alarms measured on each gateway of the Node-RED part (default 300; --quick 50)
  --nodered-runs N         rounds of its three gateways, and gateway starts of each kind (default 3; --quick 1)
  --stalled-alarms N       alarms of the phase with a stalled subscriber present (default: --alarms; 0 = skip it)
  --serial-alarms N        alarms raised on the serial keypad line (default 200; --quick 30)
  --serial-baud B          the keypad line's baud rate (default 19200)
  --serial-parity none|even
                           the keypad line's parity (default even: 11 bits a character, as the serial SPEC and
                           the simulators count; none: 10 bits as the gateway counts an 8N1 line)
  --modbus-seconds S       measured seconds of the Modbus poll cycle (default 30; --quick 5)
  --seed N                 seed of the shop choice (default 1)
  --quick                  a smoke run: 500 alarms, 3 s throughput, 30 serial alarms, 5 s Modbus, results to bench/results/quick.*
  --profile DIR            write a CPU profile of each gateway run (node --cpu-prof) into DIR
  --trace DIR              write each latency-phase alarm (press time, latency, PUBACK time) as CSV into DIR
  --quiet-wait S           before each target, wait up to S s for other processes to use < 0.25 core (default 180; 0 = don't)
  --keep-data              keep the gateway's temporary data directory`;

const { values: flags } = parseArgs({
  options: {
    alarms: { type: 'string' },
    rate: { type: 'string' },
    'throughput-seconds': { type: 'string' },
    shops: { type: 'string' },
    'throughput-shops': { type: 'string' },
    windows: { type: 'string' },
    'log-level': { type: 'string' },
    only: { type: 'string' },
    seed: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    profile: { type: 'string' },
    trace: { type: 'string' },
    'quiet-wait': { type: 'string' },
    'serial-alarms': { type: 'string' },
    'serial-baud': { type: 'string' },
    'serial-parity': { type: 'string' },
    'modbus-seconds': { type: 'string' },
    runs: { type: 'string' },
    'stalled-alarms': { type: 'string' },
    'console-alarms': { type: 'string' },
    'page-consoles': { type: 'string' },
    'nodered-alarms': { type: 'string' },
    'nodered-runs': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}

function intFlag(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer from ${min} to ${max}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

const quick = flags.quick;
/** The parts `--only` runs, with the report's title for each. */
const PARTS = { gateway: 'alarm fan-out', bare: 'bare Aedes fan-out', wired: 'wired buses', fanout: 'alarm fan-out latency', console: 'alarm console', nodered: 'Node-RED' } as const;
type Part = keyof typeof PARTS;

const params = {
  alarms: intFlag('alarms', flags.alarms, quick ? 500 : 10_000, 10, 1_000_000),
  rate: intFlag('rate', flags.rate, 100, 1, 5_000),
  throughputSeconds: intFlag('throughput-seconds', flags['throughput-seconds'], quick ? 3 : 15, 1, 600),
  shops: intFlag('shops', flags.shops, 100, 11, 2_000),
  throughputShops: 0,
  warmupAlarms: 0,
  windows: (flags.windows ?? '16,32,64,128').split(',').map((w) => intFlag('windows', w, 8, 1, 10_000)),
  sweepSeconds: quick ? 1.5 : 3,
  throughputWarmupSeconds: quick ? 1 : 2,
  logLevel: flags['log-level'] ?? 'info',
  only: flags.only as Part | undefined,
  runs: intFlag('runs', flags.runs, flags.only === 'fanout' || flags.only === 'console' ? 3 : 1, 1, 9),
  consoleAlarms: intFlag('console-alarms', flags['console-alarms'], quick ? 30 : 100, 1, 10_000),
  pageConsoles: intFlag('page-consoles', flags['page-consoles'], 2, 0, 16),
  nodeRed: {
    alarms: intFlag('nodered-alarms', flags['nodered-alarms'], quick ? 50 : 300, 1, 100_000),
    warmup: 10,
    runs: intFlag('nodered-runs', flags['nodered-runs'], quick ? 1 : 3, 1, 9),
    shops: 30,
    timeoutMs: 10_000,
    retries: 2,
  },
  stalledAlarms: 0,
  seed: intFlag('seed', flags.seed, 1, 0, 2 ** 31),
  quietWaitSeconds: intFlag('quiet-wait', flags['quiet-wait'], 180, 0, 3600),
  quick,
  recipientsPerAlarm: 11,
  escalationDeadlinesMs: 3_600_000,
  serial: {
    keypads: 13,
    alarms: intFlag('serial-alarms', flags['serial-alarms'], quick ? 30 : 200, 1, 100_000),
    baud: intFlag('serial-baud', flags['serial-baud'], 19_200, 1200, 921_600),
    parity: (flags['serial-parity'] ?? 'even') as 'none' | 'even',
    turnaroundMs: 2,
    pollPauseMs: 0,
    alarmTimeoutMs: 30_000,
  } satisfies SerialLineParams,
  modbus: {
    modules: 32,
    baud: 19_200,
    turnaroundMs: 5,
    seconds: intFlag('modbus-seconds', flags['modbus-seconds'], quick ? 5 : 30, 1, 3600),
    warmupSeconds: quick ? 1 : 2,
  } satisfies ModbusCycleParams,
};
params.throughputShops = Math.max(params.shops, intFlag('throughput-shops', flags['throughput-shops'], 400, 11, 2_000));
params.warmupAlarms = Math.min(quick ? 100 : 500, Math.max(10, Math.round(params.alarms / 10)));
params.stalledAlarms = intFlag('stalled-alarms', flags['stalled-alarms'], params.only === 'console' ? 0 : params.alarms, 0, 1_000_000);
if (params.only && !Object.hasOwn(PARTS, params.only)) {
  process.stderr.write(`--only must be one of ${Object.keys(PARTS).join(', ')}\n`);
  process.exit(2);
}
if (params.serial.parity !== 'none' && params.serial.parity !== 'even') {
  process.stderr.write(`--serial-parity must be none or even\n`);
  process.exit(2);
}
const runs = {
  bare: !params.only || params.only === 'bare',
  gateway: !params.only || params.only === 'gateway',
  wired: !params.only || params.only === 'wired',
  /** The extra latency runs (median ratio) and the stalled-subscriber phase. */
  fanout: !params.only || params.only === 'fanout' || params.only === 'console',
  /** Keypress → screen in the browser (bench/console.ts). */
  console: !params.only || params.only === 'console',
  /** Embedded Node-RED: start-up, and the alarm path with hostile flows (bench/node-red.ts). */
  nodered: !params.only || params.only === 'nodered',
};
if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(params.logLevel)) {
  process.stderr.write(`--log-level must be a pino level\n`);
  process.exit(2);
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  os: `${platform()} ${release()} ${arch()}`,
  memoryGiB: round(totalmem() / 2 ** 30, 1),
  /** 1-minute load average before the run started and after it ended (other work on the machine skews results). */
  loadAverage: { before: round(loadavg()[0], 2), after: 0 },
};

const log = (line: string) => process.stderr.write(line + '\n');

// ------------------------------------------------------------------ safety: a bounded run

/** Child processes, pty pairs and temporary directories to end if the run is cut short. */
const children: { kill(): void }[] = [];
let dataDir: string | null = null;

function cleanup(): void {
  for (const c of children) c.kill();
  if (dataDir && !flags['keep-data']) rmSync(dataDir, { recursive: true, force: true });
}

const phaseBudgetS =
  (runs.gateway || runs.bare
    ? (params.alarms + params.warmupAlarms) / params.rate +
      params.windows.length * (params.sweepSeconds + 1) +
      params.throughputSeconds +
      params.throughputWarmupSeconds
    : 0) +
  // Wired: an alarm on the serial line takes 2–3 s at 19200 baud (raise, fan-out, close, every keypad idle again).
  (runs.fanout
    ? (params.runs * 2 + 1) * ((params.alarms + params.warmupAlarms) / params.rate + 60 + params.quietWaitSeconds)
    : 0) +
  (runs.console ? params.consoleAlarms * 3 + 120 : 0) +
  // Node-RED: a start takes seconds to tens of seconds; an alarm tens of ms, up to its timeout when missed.
  (runs.nodered ? params.nodeRed.runs * (2 * 90 + 3 * (1 + params.nodeRed.retries) * (params.nodeRed.alarms * 0.5 + 120 + params.quietWaitSeconds)) : 0) +
  (runs.wired ? params.serial.alarms * 4 + params.modbus.seconds + params.modbus.warmupSeconds + 60 + params.quietWaitSeconds : 0) +
  params.quietWaitSeconds +
  240;
const watchdog = setTimeout(() => {
  log(`bench: watchdog: still running after ${Math.round(2 * phaseBudgetS)} s; giving up`);
  cleanup();
  process.exit(3);
}, 2 * phaseBudgetS * 1000);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });
}

// ------------------------------------------------------------------ the machine's state

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cores used by processes other than this one over `ms`. */
async function otherCores(ms: number): Promise<number | null> {
  const a = systemBusyMs();
  const sa = selfCpuMs();
  const t = performance.now();
  await sleep(ms);
  const b = systemBusyMs();
  if (a === null || b === null) return null;
  return Math.max(0, b - a - (selfCpuMs() - sa)) / (performance.now() - t);
}

/**
 * Another job on a 2-core machine (a test run, a build) skews every figure: wait, bounded, until
 * other processes use less than a quarter of a core for two seconds in a row.
 */
async function waitForQuiet(what: string): Promise<{ waitedSeconds: number; otherCores: number | null }> {
  const t = performance.now();
  let quietFor = 0;
  let last: number | null = null;
  let told = false;
  while ((performance.now() - t) / 1000 < params.quietWaitSeconds) {
    last = await otherCores(1000);
    if (last === null) break;
    quietFor = last < 0.25 ? quietFor + 1 : 0;
    if (quietFor >= 2) break;
    if (!told && quietFor === 0) {
      log(`waiting (up to ${params.quietWaitSeconds} s) for other processes to quieten before ${what}: they use ${last.toFixed(2)} cores`);
      told = true;
    }
  }
  return { waitedSeconds: round((performance.now() - t) / 1000, 1), otherCores: last === null ? null : round(last, 2) };
}

/** The latency of a small SQLite commit (WAL, synchronous=FULL, as the gateway) on the data directory's disk. */
function probeDisk(dir: string, commits = 300): { commits: number; p50: number; p99: number; max: number } {
  const file = join(dir, 'disk-probe.db');
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
    const row = 'x'.repeat(500);
    const times: number[] = [];
    for (let i = 0; i < commits; i++) {
      const t = performance.now();
      db.transaction(() => ins.run(row)).immediate();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => round(times[Math.min(times.length - 1, Math.floor(q * times.length))], 3);
    return { commits, p50: at(0.5), p99: at(0.99), max: round(times[times.length - 1], 3) };
  } finally {
    db.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  }
}

// ------------------------------------------------------------------ the street

interface Street {
  stationId: string;
  officer: Credentials;
  shops: BenchShop[];
  /** A second MQTT device of the pressed shop that most pressed shops alert: the stalled subscriber. */
  stalled: { shopIndex: number; shopId: string; deviceId: string; creds: Credentials; alertedBy: number };
}

async function buildStreet(dir: string): Promise<Street> {
  const street = await provisionStreet(dir, params.throughputShops);
  const db = openDatabase(dir);
  try {
    const all = listShops(db);
    const byId = new Map(all.map((s) => [s.id, s]));
    const index = new Map(street.shops.map((s, i) => [s.shopId, i]));
    const shops: BenchShop[] = street.shops.map((s) => {
      const shop = byId.get(s.shopId)!;
      const neighbours = rankNeighbours(shop, all, (id) => byId.get(id))
        .slice(0, params.recipientsPerAlarm - 1)
        .map((n) => index.get(n.id)!);
      return {
        shopId: s.shopId,
        name: shop.name,
        address: shop.address,
        doorPlate: shop.doorPlate ?? '',
        deviceId: s.deviceId,
        creds: s.creds,
        neighbours,
      };
    });
    // The stalled subscriber: a second keypad of the shop in the most rings of the pressed shops, so
    // it is among the recipients of as many alarms as any shop.
    const rings = new Array<number>(shops.length).fill(0);
    shops.slice(0, params.shops).forEach((s) => s.neighbours.forEach((n) => rings[n]!++));
    const shopIndex = rings.indexOf(Math.max(...rings.slice(0, params.shops)));
    const issued = addDevice(db, loadOrCreateGatewayKey(dir), { shopId: shops[shopIndex]!.shopId, type: 'keypad', transport: 'mqtt' });
    const stalled = {
      shopIndex,
      shopId: shops[shopIndex]!.shopId,
      deviceId: issued.device.id,
      creds: { username: issued.username!, password: issued.password! },
      alertedBy: rings[shopIndex]!,
    };
    return { stationId: street.stationId, officer: street.officer, shops, stalled };
  } finally {
    db.close();
  }
}

// ------------------------------------------------------------------ one target

interface TargetResult {
  /** What other processes were doing when this target started, and how long we waited for quiet. */
  before: { waitedSeconds: number; otherCores: number | null };
  latency: PhaseResult & { cpu?: CpuShare };
  sweep: PhaseResult[];
  throughput: PhaseResult;
  /** Gateway only: its group-commit writer over each phase. */
  writer?: { latency?: WriterDelta; throughput?: WriterDelta };
  /** Gateway only: log lines by level, and the last warnings. */
  logs?: { byLevel: Record<string, number>; lastWarnings: string[] };
  /** Gateway only: the page-style consoles present (--page-consoles). */
  pageConsoles?: PageConsolesResult;
}

/** The page-style consoles of a gateway run: how many, what each received, disconnects. */
interface PageConsolesResult {
  count: number;
  received: number[];
  disconnects: number;
}

/** --page-consoles clients on a gateway run (none on bare Aedes, which has no console port). */
async function connectPageConsoles(gw: GatewayChild | null, street: Street): Promise<PageConsoles | null> {
  if (!gw || params.pageConsoles === 0) return null;
  const pc = await PageConsoles.connect(gw.ports.http, street.officer, street.stationId, params.pageConsoles);
  log(`  ${pc.count} page-style console(s) on ws://127.0.0.1:${gw.ports.http}/mqtt (session grant), subscribed to ${street.stationId}'s alarms`);
  return pc;
}

const pageConsolesResult = (pc: PageConsoles): PageConsolesResult => ({ count: pc.count, received: [...pc.received], disconnects: pc.disconnects });

interface WriterDelta {
  batches: number;
  items: number;
  itemsPerBatch: number;
  maxBatch: number;
  failedBatches: number;
}

async function writerStats(gw: GatewayChild): Promise<{ batches: number; items: number; maxBatch: number; failedBatches: number } | null> {
  try {
    return (await gw.health()).writer;
  } catch {
    return null;
  }
}

function writerDelta(a: Awaited<ReturnType<typeof writerStats>>, b: Awaited<ReturnType<typeof writerStats>>): WriterDelta | undefined {
  if (!a || !b) return undefined;
  const batches = b.batches - a.batches;
  const items = b.items - a.items;
  return { batches, items, itemsPerBatch: batches ? round(items / batches, 2) : 0, maxBatch: b.maxBatch, failedBatches: b.failedBatches - a.failedBatches };
}

async function runTarget(kind: 'gateway' | 'bare', street: Street, dir: string): Promise<TargetResult> {
  log(`\n== ${kind === 'gateway' ? 'gateway (lianfang start)' : 'bare Aedes'} ==`);
  const before = params.quietWaitSeconds > 0 ? await waitForQuiet(kind) : { waitedSeconds: 0, otherCores: null };
  const child = await startChild(kind, dir);
  const spec: TargetSpec = { kind, url: child.mqttUrl, shops: street.shops, stationId: street.stationId, officer: street.officer };
  const bench = new FanoutBench(spec, params.seed);
  if (kind === 'gateway') bench.boot = ++gatewayRuns;
  bench.traceEnabled = Boolean(flags.trace);
  const gw = kind === 'gateway' ? (child as GatewayChild) : null;
  const cpu = () => ({ target: cpuTimeMs(child.pid), self: selfCpuMs(), system: systemBusyMs() });
  let pages: PageConsoles | null = null;
  try {
    await bench.connect();
    log(`connected ${street.shops.length} shop clients and a console to ${child.mqttUrl}`);
    pages = await connectPageConsoles(gw, street);

    // 1. latency at the offered rate, pressing the first --shops shops
    bench.setPressable(params.shops);
    const expectS = (params.alarms + params.warmupAlarms) / params.rate;
    log(`latency: ${params.warmupAlarms} warm-up + ${params.alarms} alarms at ${params.rate}/s (~${Math.ceil(expectS)} s)`);
    const w0 = gw ? await writerStats(gw) : null;
    const c0 = cpu();
    const t0 = performance.now();
    const latency: TargetResult['latency'] = await bench.openLoop({
      name: 'latency',
      rate: params.rate,
      count: params.alarms,
      warmup: params.warmupAlarms,
      drainMs: 30_000,
    });
    const c1 = cpu();
    const wallMs = performance.now() - t0;
    latency.cpu = cpuShare(c0, c1, wallMs);
    const w1 = gw ? await writerStats(gw) : null;
    if (flags.trace) {
      mkdirSync(flags.trace, { recursive: true });
      const csv = ['t_ms,latency_ms,puback_ms', ...bench.lastTrace.map((x) => `${x.t.toFixed(3)},${x.latencyMs.toFixed(3)},${x.ackMs?.toFixed(3) ?? ''}`)];
      writeFileSync(join(flags.trace, `${kind}-latency.csv`), csv.join('\n') + '\n');
    }
    log(
      `  p50 ${latency.latencyMs.p50} ms, p99 ${latency.latencyMs.p99} ms, max ${latency.latencyMs.max} ms; ` +
        `${latency.completed}/${latency.alarms} complete`,
    );

    // 2. throughput: sweep the window, then the measured run with the best one, on every shop
    bench.setPressable(params.throughputShops);
    const sweep: PhaseResult[] = [];
    for (const window of params.windows) {
      const r = await bench.closedLoop({
        name: `sweep-w${window}`,
        window,
        warmupMs: 500,
        measureMs: params.sweepSeconds * 1000,
        drainMs: 15_000,
        cpu,
      });
      sweep.push(r);
      log(`  sweep window ${window}: ${r.throughput!.alarmsPerS} alarms/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`);
    }
    const best = sweep.reduce((a, b) => (b.throughput!.alarmsPerS > a.throughput!.alarmsPerS ? b : a));
    log(`throughput: window ${best.window}, ${params.throughputWarmupSeconds} s warm-up + ${params.throughputSeconds} s measured`);
    const w2 = gw ? await writerStats(gw) : null;
    const throughput = await bench.closedLoop({
      name: 'throughput',
      window: best.window!,
      warmupMs: params.throughputWarmupSeconds * 1000,
      measureMs: params.throughputSeconds * 1000,
      drainMs: 30_000,
      cpu,
    });
    const w3 = gw ? await writerStats(gw) : null;
    log(
      `  ${throughput.throughput!.alarmsPerS} alarms/s = ${throughput.throughput!.deliveriesPerS} deliveries/s; ` +
        `CPU ${kind} ${throughput.cpu?.targetCoreShare ?? '?'} core, clients ${throughput.cpu?.clientsCoreShare} core`,
    );
    const result: TargetResult = { before, latency, sweep, throughput };
    if (pages) result.pageConsoles = pageConsolesResult(pages);
    if (gw) {
      result.writer = { latency: writerDelta(w0, w1), throughput: writerDelta(w2, w3) };
      const names: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
      result.logs = {
        byLevel: Object.fromEntries([...gw.levelCounts].map(([l, n]) => [names[l] ?? String(l), n])),
        lastWarnings: gw.warnings.slice(-5).map((w) => `${w.msg}${w.code ? ` (${String(w.code)})` : ''}`),
      };
    }
    return result;
  } finally {
    await pages?.close();
    await bench.close();
    await child.stop();
  }
}

/** Gateway processes started on the street's database so far (each run's keypads use it as their boot). */
let gatewayRuns = 0;

/** The gateway (with the benchmark's settings) or bare Aedes, tracked for cleanup. */
async function startChild(kind: 'gateway' | 'bare', dir: string): Promise<GatewayChild | BareBrokerChild> {
  const child =
    kind === 'gateway'
      ? await GatewayChild.start(dir, {
          LF_LOG_LEVEL: params.logLevel,
          LF_ESCALATION_ACK_DEADLINE_MS: String(params.escalationDeadlinesMs),
          LF_ESCALATION_OVERDUE_REPEAT_MS: String(params.escalationDeadlinesMs),
          LF_ESCALATION_RING_INTERVAL_MS: String(params.escalationDeadlinesMs),
        }, flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${flags.profile}`] : [])
      : await BareBrokerChild.start();
  children.push(child);
  return child;
}

// ------------------------------------------------------------------ fan-out latency runs

/** The stalled subscriber of a latency phase: how often it connected and was cut off. */
interface StalledResult {
  shopId: string;
  deviceId: string;
  /** Pressed shops whose first ring holds the stalled shop. */
  alertedBy: number;
  /** Its receive buffer as the kernel granted it. */
  receiveBufferBytes: number;
  connections: number;
  /** Resets it saw, and the gateway's own count (mqtt.stalled-cut) over the phase. */
  cutsSeen: number;
  gatewayCuts: number | null;
  /** Connect → cut, ms (each connection). */
  connectedMs: { min: number; median: number; max: number } | null;
  stallTimeoutMs: number | null;
  errors: string[];
}

interface LatencyRun {
  before: { waitedSeconds: number; otherCores: number | null };
  latency: PhaseResult & { cpu?: CpuShare };
  /** Gateway: clients it cut off as stalled during the phase (mqtt.stalled-cut). */
  stalledCuts?: number | null;
  /** Gateway: the page-style consoles present (--page-consoles). */
  pageConsoles?: PageConsolesResult;
}

interface FanoutResult {
  /** One pair of latency phases per run (bare, then gateway, each on a fresh process). */
  runs: { bareP50: number; gatewayP50: number; ratio: number; gateway: Summary; bare: Summary }[];
  /** Median over the runs of the gateway/bare p50 ratio. */
  medianRatio: number;
  medianGatewayP50: number;
  medianBareP50: number;
  /** What bench/results/latest.json recorded before this run. */
  baseline: { ratio: number; date: string; file: string } | null;
  /** medianRatio / baseline − 1 (0.1 = 10 % worse). */
  change: number | null;
  extraRuns: { bare: LatencyRun[]; gateway: LatencyRun[] };
  stalled: (LatencyRun & { subscriber: StalledResult }) | null;
  stalledSkipped?: string;
}

/** The fan-out p50 ratio the last full run recorded (read before this run writes anything). */
function recordedBaseline(): FanoutResult['baseline'] {
  const file = join(ROOT, 'bench', 'results', 'latest.json');
  try {
    const prev = JSON.parse(readFileSync(file, 'utf8')) as { date?: string; ratios?: { latencyP50?: number | null; latencyP50Median?: number | null } };
    const ratio = prev.ratios?.latencyP50Median ?? prev.ratios?.latencyP50;
    return typeof ratio === 'number' ? { ratio, date: prev.date ?? '?', file: 'bench/results/latest.json' } : null;
  } catch {
    return null;
  }
}
const baselineAtStart = recordedBaseline();

/** Keeps one stalled subscriber connected for as long as it runs: reconnects each time it is cut off. */
class StalledLoop {
  readonly result: StalledResult;
  private running = true;
  private current: StalledSubscriber | null = null;
  private wake: (() => void) | null = null;
  private readonly lifetimes: number[] = [];
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly street: Street, private readonly port: number) {
    const st = street.stalled;
    this.result = {
      shopId: st.shopId,
      deviceId: st.deviceId,
      alertedBy: st.alertedBy,
      receiveBufferBytes: 0,
      connections: 0,
      cutsSeen: 0,
      gatewayCuts: null,
      connectedMs: null,
      stallTimeoutMs: null,
      errors: [],
    };
  }

  /** Resolves once the first connection has subscribed. */
  async start(): Promise<void> {
    let first!: () => void;
    const subscribed = new Promise<void>((r) => (first = r));
    this.done = (async () => {
      while (this.running) {
        const st = this.street.stalled;
        try {
          this.current = await StalledSubscriber.start({
            host: '127.0.0.1',
            port: this.port,
            clientId: st.deviceId,
            username: st.creds.username,
            password: st.creds.password,
            topic: topics.shopAlerts(st.shopId),
            receiveBufferBytes: 1024,
          });
          this.result.connections++;
          this.result.receiveBufferBytes = this.current.receiveBufferBytes;
          first();
          const t0 = performance.now();
          const how = await Promise.race([this.current.cut, new Promise<'stopped'>((r) => (this.wake = () => r('stopped')))]);
          if (how === 'reset') {
            this.result.cutsSeen++;
            this.lifetimes.push(performance.now() - t0);
          }
        } catch (err) {
          if (this.result.errors.length < 5) this.result.errors.push((err as Error).message);
          first();
          await sleep(500);
        } finally {
          this.current?.stop();
          this.current = null;
        }
      }
    })();
    await subscribed;
  }

  async stop(): Promise<StalledResult> {
    this.running = false;
    this.wake?.();
    this.current?.stop();
    await this.done;
    if (this.lifetimes.length) {
      const l = this.lifetimes;
      this.result.connectedMs = { min: round(Math.min(...l), 0), median: round(median(l), 0), max: round(Math.max(...l), 0) };
    }
    return this.result;
  }
}

function python3Available(): boolean {
  return spawnSync('python3', ['-c', 'import socket'], { stdio: 'ignore' }).status === 0;
}

/** One latency phase on a fresh process (`stalled`: with the stalled subscriber present). */
async function runLatency(kind: 'gateway' | 'bare', street: Street, dir: string, name: string, alarms: number, stalled = false): Promise<LatencyRun & { subscriber?: StalledResult }> {
  log(`\n== ${name}: ${kind === 'gateway' ? 'gateway' : 'bare Aedes'}${stalled ? ', one stalled subscriber present' : ''} ==`);
  const before = params.quietWaitSeconds > 0 ? await waitForQuiet(name) : { waitedSeconds: 0, otherCores: null };
  const child = await startChild(kind, dir);
  const spec: TargetSpec = { kind, url: child.mqttUrl, shops: street.shops, stationId: street.stationId, officer: street.officer };
  const bench = new FanoutBench(spec, params.seed);
  // The gateway's database outlives its process: every run's keypads start a new power-up, or
  // their seq 1, 2, … would be refused as already stored.
  if (kind === 'gateway') bench.boot = ++gatewayRuns;
  const gw = kind === 'gateway' ? (child as GatewayChild) : null;
  const cpu = () => ({ target: cpuTimeMs(child.pid), self: selfCpuMs(), system: systemBusyMs() });
  let loop: StalledLoop | null = null;
  let pages: PageConsoles | null = null;
  try {
    await bench.connect();
    pages = await connectPageConsoles(gw, street);
    bench.setPressable(params.shops);
    const cuts0 = gw ? (((await gw.health()).counters?.['mqtt.stalled-cut'] as number | undefined) ?? 0) : 0;
    if (stalled && gw) {
      loop = new StalledLoop(street, gw.ports.mqtt);
      await loop.start();
      log(`  stalled subscriber: ${street.stalled.deviceId} on ${street.stalled.shopId} (in the first ring of ${street.stalled.alertedBy} pressed shops), never reads`);
    }
    const c0 = cpu();
    const t0 = performance.now();
    const latency: LatencyRun['latency'] = await bench.openLoop({ name, rate: params.rate, count: alarms, warmup: params.warmupAlarms, drainMs: 30_000 });
    latency.cpu = cpuShare(c0, cpu(), performance.now() - t0);
    log(`  p50 ${latency.latencyMs.p50} ms, p99 ${latency.latencyMs.p99} ms, max ${latency.latencyMs.max} ms; ${latency.completed}/${latency.alarms} complete`);
    const out: LatencyRun & { subscriber?: StalledResult } = { before, latency };
    if (pages) out.pageConsoles = pageConsolesResult(pages);
    if (gw && !loop) {
      const h = await gw.health().catch(() => null);
      out.stalledCuts = h ? ((h.counters?.['mqtt.stalled-cut'] as number | undefined) ?? 0) - cuts0 : null;
    }
    if (loop && gw) {
      const subscriber = await loop.stop();
      loop = null;
      const h = await gw.health().catch(() => null);
      subscriber.gatewayCuts = h ? ((h.counters?.['mqtt.stalled-cut'] as number | undefined) ?? 0) - cuts0 : null;
      // The benchmark leaves the gateway at its default unless the environment overrides it.
      subscriber.stallTimeoutMs = Number(process.env.LF_MQTT_STALL_TIMEOUT_MS ?? ConfigSchema.properties.mqtt.properties.stallTimeoutMs.default);
      log(`  stalled subscriber: ${subscriber.connections} connections, cut off ${subscriber.gatewayCuts ?? '?'} times by the gateway (${subscriber.cutsSeen} resets seen)`);
      out.subscriber = subscriber;
    }
    return out;
  } finally {
    if (loop) await loop.stop();
    await pages?.close();
    await bench.close();
    await child.stop();
  }
}

/**
 * The latency phase `params.runs` times on each target (bare, then gateway, each on a fresh
 * process), reusing a full run's first pair if given, then once on the gateway with a stalled
 * subscriber present.
 */
async function runFanout(street: Street, dir: string, first?: { gateway: PhaseResult; bare: PhaseResult }): Promise<FanoutResult> {
  const extraRuns: FanoutResult['extraRuns'] = { bare: [], gateway: [] };
  const pairs: { bare: PhaseResult; gateway: PhaseResult }[] = first ? [first] : [];
  for (let i = pairs.length; i < params.runs; i++) {
    const bare = await runLatency('bare', street, dir, `latency run ${i + 1}/${params.runs}`, params.alarms);
    const gateway = await runLatency('gateway', street, dir, `latency run ${i + 1}/${params.runs}`, params.alarms);
    extraRuns.bare.push(bare);
    extraRuns.gateway.push(gateway);
    pairs.push({ bare: bare.latency, gateway: gateway.latency });
    log(`  run ${i + 1}: gateway/bare p50 ${round(gateway.latency.latencyMs.p50 / bare.latency.latencyMs.p50, 2)}×`);
  }
  const runs = pairs.map((p) => ({
    bareP50: p.bare.latencyMs.p50,
    gatewayP50: p.gateway.latencyMs.p50,
    ratio: round(p.gateway.latencyMs.p50 / p.bare.latencyMs.p50, 3),
    gateway: p.gateway.latencyMs,
    bare: p.bare.latencyMs,
  }));
  const medianRatio = round(median(runs.map((r) => r.ratio)), 2);
  let stalled: FanoutResult['stalled'] = null;
  let stalledSkipped: string | undefined;
  if (params.stalledAlarms === 0) stalledSkipped = '--stalled-alarms 0';
  else if (!python3Available()) stalledSkipped = 'python3 not found (the stalled subscriber sets a tiny SO_RCVBUF from python3)';
  else {
    const r = await runLatency('gateway', street, dir, 'latency, one stalled subscriber', params.stalledAlarms, true);
    stalled = { before: r.before, latency: r.latency, subscriber: r.subscriber! };
  }
  const baseline = baselineAtStart;
  return {
    runs,
    medianRatio,
    medianGatewayP50: round(median(runs.map((r) => r.gatewayP50)), 3),
    medianBareP50: round(median(runs.map((r) => r.bareP50)), 3),
    baseline,
    change: baseline ? round(medianRatio / baseline.ratio - 1, 3) : null,
    extraRuns,
    stalled,
    ...(stalledSkipped ? { stalledSkipped } : {}),
  };
}

// ------------------------------------------------------------------ report

interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

function targets(gateway?: TargetResult, bare?: TargetResult, wired?: WiredResult, fanout?: FanoutResult, screen?: ConsoleResult, nodeRed?: NodeRedResult): Target[] {
  const out: Target[] = [];
  if (nodeRed) out.push(...nodeRedTargets(nodeRed));
  if (screen) {
    out.push({
      name: `keypress → screen (headless Chromium, queue item in the DOM), p99 over ${screen.params.alarms} alarms`,
      goal: '< 1000 ms (the US fire-alarm rule allows 90 s)',
      measured: screen.skipped ? `skipped: ${screen.skipped}` : screen.error ? `failed: ${screen.error}` : `${fmt(screen.domMs.p99)} ms (p50 ${fmt(screen.domMs.p50)}; ${screen.completed}/${screen.params.alarms} shown, ${screen.missed} missed)`,
      met: screen.skipped ? null : !screen.error && screen.missed === 0 && screen.strays === 0 && screen.completed === screen.params.alarms && screen.domMs.p99 < 1000,
    });
  }
  if (fanout) {
    const b = fanout.baseline;
    out.push({
      name: `fan-out p50 ratio gateway / bare Aedes, median of ${fanout.runs.length} run(s)`,
      goal: b ? `not worse than the recorded ${b.ratio}× (${b.date.slice(0, 10)}) by more than 10 %: ≤ ${round(b.ratio * 1.1, 2)}×` : 'no recorded ratio to compare with',
      measured: `${fanout.medianRatio}× (runs ${fanout.runs.map((r) => `${round(r.ratio, 2)}×`).join(', ')})${fanout.change !== null ? `; ${fanout.change >= 0 ? '+' : ''}${round(fanout.change * 100, 1)} % against the recorded ratio` : ''}`,
      met: fanout.change === null ? null : fanout.change <= 0.1,
    });
    const st = fanout.stalled;
    if (st) {
      const normalP99 = median(fanout.runs.map((r) => r.gateway.p99));
      const p = st.latency.latencyMs;
      out.push({
        name: 'fan-out latency with one stalled subscriber present (gateway)',
        goal: `every alarm complete; p99 ≤ 2× the p99 without it (${fmt(normalP99)} ms, median of runs)`,
        measured:
          `p50 ${fmt(p.p50)} / p99 ${fmt(p.p99)} / max ${fmt(p.max)} ms, ${st.latency.completed}/${st.latency.alarms} complete; ` +
          `the stalled client was cut off ${st.subscriber.gatewayCuts ?? '?'} times (stall timeout ${st.subscriber.stallTimeoutMs} ms)`,
        met: st.latency.incomplete === 0 && p.p99 <= 2 * normalP99,
      });
    }
  }
  if (gateway) {
    const p99 = gateway.latency.latencyMs.p99;
    out.push({
      name: `gateway p99, press → last of 11, at ${params.rate} alarms/s`,
      goal: '< 10 ms' + (params.rate !== 100 ? ' (target is stated at 100 alarms/s)' : ''),
      measured: `${p99} ms`,
      met: gateway.latency.incomplete === 0 && p99 < 10,
    });
    const tput = gateway.throughput.throughput!.alarmsPerS;
    out.push({
      name: 'gateway sustained alarms/s (store-before-ack)',
      goal: '≥ 1,000 alarms/s (11,000 deliveries/s)',
      measured: `${tput} alarms/s (${gateway.throughput.throughput!.deliveriesPerS} deliveries/s)`,
      met: tput >= 1000,
    });
  }
  if (gateway && bare) {
    const ratio = gateway.latency.latencyMs.p50 / bare.latency.latencyMs.p50;
    out.push({
      name: 'gateway p50 / bare Aedes p50',
      goal: '≤ 3×',
      measured: `${round(ratio, 2)}× (${gateway.latency.latencyMs.p50} / ${bare.latency.latencyMs.p50} ms)`,
      met: ratio <= 3,
    });
  }
  if (wired) out.push(...wiredTargets(wired));
  return out;
}

// ------------------------------------------------------------------ the console in a browser

type ConsoleResult = KeypressScreenResult & { before: { waitedSeconds: number; otherCores: number | null } };

async function runConsole(): Promise<ConsoleResult> {
  log(`\n== console: keypress → screen in headless Chromium ==`);
  const before = params.quietWaitSeconds > 0 ? await waitForQuiet('the console phase') : { waitedSeconds: 0, otherCores: null };
  log(`console: ${params.consoleAlarms} alarms (+5 warm-up), one at a time, each from its own shop, each closed once shown`);
  const p = { alarms: params.consoleAlarms, warmup: 5, timeoutMs: 10_000 };
  // A page that does not come up is a result of this phase (reported, target not met), not the end of the run.
  const r = await runKeypressToScreen(p, { log, track: (c) => void children.push(c), keepData: flags['keep-data'], logLevel: params.logLevel, deadlinesMs: params.escalationDeadlinesMs }).catch(
    (err: Error): KeypressScreenResult => {
      const none = summarize(newHistogram(), false);
      return { params: p, browser: '', domMs: none, frameMs: none, pubackMs: none, completed: 0, missed: p.alarms, strays: 0, wallSeconds: 0, error: err.message.split('\n')[0] };
    },
  );
  if (r.error) log(`  failed: ${r.error}`);
  if (r.skipped) log(`  skipped: ${r.skipped}`);
  else log(`  DOM p50 ${fmt(r.domMs.p50)} ms, p99 ${fmt(r.domMs.p99)} ms, max ${fmt(r.domMs.max)} ms; ${r.completed}/${r.params.alarms} shown, ${r.missed} missed`);
  return { ...r, before };
}

function consoleTable(c: ConsoleResult): Table {
  const row = (name: string, x: Summary) => [name, fmt(x.p50), fmt(x.p90), fmt(x.p99), fmt(x.max)];
  return {
    section: `Console: keypad publish → the alarm on the officer's screen (headless Chromium ${c.browser || '?'}, ${c.params.alarms} alarms one at a time; ms)`,
    header: ['', 'p50', 'p90', 'p99', 'max'],
    rows: c.skipped
      ? [['skipped: ' + c.skipped, '', '', '', '']]
      : [row('queue item in the page\'s DOM', c.domMs), row('next animation frame (about the paint)', c.frameMs), row('PUBACK to the keypad (stored)', c.pubackMs)],
    notes: [
      `shown ${c.completed} / ${c.params.alarms} (+${c.params.warmup} warm-up), missed ${c.missed} (not on the page within ${c.params.timeoutMs} ms), strays ${c.strays}; ${c.wallSeconds} s`,
      'the page signed in through the login form as the station officer (1366×768); a MutationObserver in the page stamps performance.timeOrigin + performance.now() when a [data-testid=queue-item] with the alarm id first exists; the keypad side stamps the same clock just before its publish',
      `each alarm acknowledged and closed (disposition test) over MQTT once shown, before the next press; other processes at start ${fmt(c.before.otherCores)} cores`,
    ],
  };
}

// ------------------------------------------------------------------ embedded Node-RED

const QUEUE_MAX = ConfigSchema.properties.nodeRed.properties.queueMax.default;

async function runNodeRedPart(): Promise<NodeRedResult> {
  const quiet = (what: string) => (params.quietWaitSeconds > 0 ? waitForQuiet(what) : Promise.resolve({ waitedSeconds: 0, otherCores: null }));
  return runNodeRedBench(params.nodeRed, {
    log,
    track: (c) => void children.push(c),
    quiet,
    keepData: flags['keep-data'],
    logLevel: params.logLevel,
    deadlinesMs: params.escalationDeadlinesMs,
  });
}

const nodeRedRuns = (r: NodeRedResult, v: AlarmRun['variant']) => r.runs.filter((x) => x.variant === v);

function nodeRedTargets(r: NodeRedResult): Target[] {
  const n = r.params.runs;
  const latency = (v: 'throws' | 'busy'): Target => {
    const q = r.ratios[v];
    const runs = nodeRedRuns(r, v);
    return {
      name: `alarm path p50 (keypad 9# → console), ${VARIANT_NAMES[v]} / ${VARIANT_NAMES.off}, median of ${n} round(s)`,
      goal: '≤ 1.20× (issue 12: within 20 % of the gateway without Node-RED)',
      measured:
        `${fmt(q.medianOfRounds, 3)}× (rounds ${q.rounds.map((x) => `${fmt(x, 3)}×`).join(', ')}; ratio of the median p50s ${fmt(q.ofMedians, 3)}×: ` +
        `${fmt(r.medians[v].p50, 3)} / ${fmt(r.medians.off.p50, 3)} ms)` +
        (runs.some((x) => x.missed > 0) ? `; ${runs.reduce((a, x) => a + x.missed, 0)} alarms missed` : ''),
      met: q.medianOfRounds <= 1.2 && [...runs, ...nodeRedRuns(r, 'off')].every((x) => x.missed === 0),
    };
  };
  const busy = nodeRedRuns(r, 'busy');
  const on = [...nodeRedRuns(r, 'throws'), ...busy];
  const unexpected = on.reduce((a, x) => a + Math.max(0, (x.nodeRedExits?.exited ?? 0) - (x.nodeRedExits?.unresponsive ?? 0)), 0);
  const s = r.startup.median;
  return [
    latency('throws'),
    latency('busy'),
    {
      name: 'busy flow: messages to Node-RED beyond its queue are dropped and counted, not held',
      goal: `nodered.dropped > 0 in every busy run, the queue never above nodeRed.queueMax (${QUEUE_MAX})`,
      measured: busy.map((x) => `round ${x.run}: dropped ${x.counters?.dropped ?? '?'}, queued at the end ${x.nodeRed?.atEnd?.queued ?? '?'}`).join('; '),
      met: busy.every((x) => (x.counters?.dropped ?? 0) > 0 && (x.nodeRed?.atEnd?.queued ?? Infinity) <= QUEUE_MAX),
    },
    {
      name: 'Node-RED not restarted unexpectedly (only killed as unresponsive, after nodeRed.unresponsiveAfterMs, default 30 s)',
      goal: 'no exit of the Node-RED process but those the gateway caused as unresponsive',
      measured:
        on.map((x) => `${x.variant} ${x.run}: restarts ${x.counters?.restarts ?? '?'} (killed as unresponsive ${x.nodeRedExits?.unresponsive ?? '?'}, exits ${x.nodeRedExits?.exited ?? '?'})`).join('; ') +
        ` — unexpected exits ${unexpected}`,
      met: unexpected === 0,
    },
    {
      name: `gateway start-up with Node-RED on / off (spawn → 'gateway started'), median of ${n} start(s) each`,
      goal: 'about equal: the gateway does not wait for Node-RED (no figure stated)',
      measured: `${fmt(s.on.gatewayStartedMs, 0)} / ${fmt(s.off.gatewayStartedMs, 0)} ms = ${fmt(r.startup.startedRatio, 2)}×; 'node-red ready' ${fmt(s.on.nodeRedReadyMs, 0)} ms after the spawn`,
      met: null,
    },
  ];
}

function nodeRedTables(r: NodeRedResult): Table[] {
  const st = r.startup;
  const list = (xs: (number | null)[]) => xs.map((x) => fmt(x, 0)).join(', ');
  const startup: Table = {
    section: `Node-RED: gateway start-up, spawn of \`lianfang start\` → … (ms, median of ${st.off.length} starts each, off and on in turns)`,
    header: ['', "'gateway started'", '/health answers', "'node-red ready'", 'starts'],
    rows: [
      ['Node-RED off', fmt(st.median.off.gatewayStartedMs, 0), fmt(st.median.off.healthMs, 0), '–', `started ${list(st.off.map((x) => x.gatewayStartedMs))}`],
      ['Node-RED on', fmt(st.median.on.gatewayStartedMs, 0), fmt(st.median.on.healthMs, 0), fmt(st.median.on.nodeRedReadyMs, 0), `started ${list(st.on.map((x) => x.gatewayStartedMs))}; ready ${list(st.on.map((x) => x.nodeRedReadyMs))}`],
      ['on / off', `${fmt(st.startedRatio)}×`, ratio(st.median.on.healthMs, st.median.off.healthMs), '', ''],
    ],
    notes: [
      'a provisioned data directory, log level info; /health polled every 20 ms from the spawn; Node-RED\'s own directory kept between starts (no flows deployed yet); one start (Node-RED on) before these, not recorded',
      `other processes at the start of the phase ${fmt(st.before.otherCores)} cores`,
    ],
  };
  const p = r.params;
  const rows: string[][] = [];
  for (const v of VARIANTS) {
    const runs = nodeRedRuns(r, v);
    for (const x of runs) {
      rows.push([`${VARIANT_NAMES[v]}, round ${x.run}`, fmt(x.latencyMs.p50, 3), fmt(x.latencyMs.p90, 3), fmt(x.latencyMs.p99, 3), fmt(x.latencyMs.max, 3), `${x.completed} / ${p.alarms}`, v === 'off' ? '' : `${fmt(x.latencyMs.p50 / nodeRedRuns(r, 'off')[x.run - 1]!.latencyMs.p50, 3)}×`]);
    }
    const m = r.medians[v];
    rows.push([`${VARIANT_NAMES[v]}: median`, fmt(m.p50, 3), fmt(m.p90, 3), fmt(m.p99, 3), '', '', v === 'off' ? '' : `${fmt(r.ratios[v].medianOfRounds, 3)}× (median of rounds)`]);
  }
  const latency: Table = {
    section: `Node-RED: alarm path, keypad 9# (MQTT publish) → the station console has the raised alarm (ms), ${p.alarms} alarms (+${p.warmup} warm-up) one at a time per gateway, ${p.runs} round(s) of (a), (b), (c)`,
    header: ['', 'p50', 'p90', 'p99', 'max', 'at console', 'p50 / (a)'],
    rows,
    notes: [
      `flows deployed with an installer's token (POST /flows/auth/token, POST /flows/flows, full): lianfang-alarm-in (every alarm message) → function; (b) ${JSON.stringify(r.flows.throws)}; (c) ${JSON.stringify(r.flows.busy)}`,
      `each alarm from the next of ${p.shops} shops, acknowledged and closed by the console over MQTT before the next press; Node-RED at the shipped defaults (queueMax ${QUEUE_MAX}, unresponsiveAfterMs 30 s, ${process.env.LF_NODE_RED_IDLE === 'false' ? 'nice 19 only: LF_NODE_RED_IDLE=false' : 'SCHED_IDLE and nice 19'})`,
      ...r.runs.filter((x) => x.variant !== 'off').map((x) => nodeRedRunNote(x)),
      `CPU cores gateway / Node-RED / bench / other processes over the measured alarms: ${r.runs.map((x) => `${x.variant} ${x.run}: ${fmt(x.cpu.gateway)} / ${fmt(x.cpu.nodeRed)} / ${fmt(x.cpu.bench)} / ${fmt(x.cpu.other)}`).join('; ')}`,
      r.disturbed.length
        ? `run again (up to ${p.retries} times) because other processes used more than 0.25 cores, not in the medians: ` +
          r.disturbed.map((x) => `${x.variant} ${x.run}: p50 ${fmt(x.latencyMs.p50, 3)} ms, other ${fmt(x.cpu.other)} cores`).join('; ')
        : 'no run was disturbed by other work (other processes ≤ 0.25 cores during each)',
    ],
  };
  return [startup, latency];
}

function nodeRedRunNote(x: AlarmRun): string {
  const c = x.counters;
  const h = x.nodeRed?.atEnd;
  return (
    `${x.variant}, round ${x.run}: over the measured alarms (${x.wallSeconds} s) nodered.queued ${c?.queued ?? '?'}, delivered ${c?.delivered ?? '?'}, dropped ${c?.dropped ?? '?'}, lost ${c?.lost ?? '?'}, restarts ${c?.restarts ?? '?'}; ` +
    `/health nodeRed at the end: state ${h?.state ?? '?'}, pid ${h?.pid ?? '?'}, restarts ${h?.restarts ?? '?'}, queued ${h?.queued ?? '?'}, dropped ${h?.dropped ?? '?'}; ` +
    `Node-RED error lines in the gateway's log from the deploy on ${x.nodeRedErrors?.lines ?? '?'}${x.nodeRedErrors?.sample ? ` (e.g. ${JSON.stringify(x.nodeRedErrors.sample.slice(0, 120))})` : ''}; ` +
    `killed as unresponsive ${x.nodeRedExits?.unresponsive ?? '?'}, exits ${x.nodeRedExits?.exited ?? '?'}; deploy HTTP ${x.deploy?.status ?? '?'}`
  );
}

// ------------------------------------------------------------------ the wired phase

type WiredBefore = { before: { waitedSeconds: number; otherCores: number | null } };
interface WiredResult {
  serial: SerialLineResult & WiredBefore;
  modbus: ModbusCycleResult & WiredBefore;
}

async function runWired(): Promise<WiredResult> {
  const ctx = { log, track: (r: { kill(): void }) => void children.push(r), keepData: flags['keep-data'], logLevel: params.logLevel, deadlinesMs: params.escalationDeadlinesMs, nodeArgs: flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${flags.profile}`] : [] };
  const quiet = (what: string) => (params.quietWaitSeconds > 0 ? waitForQuiet(what) : Promise.resolve({ waitedSeconds: 0, otherCores: null }));

  log(`\n== wired: serial keypad line ==`);
  const sb = await quiet('the serial keypad line');
  log(`serial: ${params.serial.alarms} alarms, one at a time, each closed before the next (~${Math.ceil(params.serial.alarms * 2.5)} s)`);
  const serial = { before: sb, ...(await runSerialLine(params.serial, ctx)) };
  log(
    `  commit p99 ${fmt(serial.commitMs?.p99, 3)} ms; last of ${NEIGHBOURS} buzzes p50 ${fmt(serial.lastBuzzMs.p50)} ms, ` +
      `last display p50 ${fmt(serial.lastDisplayMs.p50)} / p99 ${fmt(serial.lastDisplayMs.p99)} ms; ${serial.completed}/${serial.alarms} complete`,
  );

  log(`\n== wired: Modbus poll cycle ==`);
  const mb = await quiet('the Modbus poll cycle');
  const modbus = { before: mb, ...(await runModbusCycle(params.modbus, ctx)) };
  log(`  cycle ${fmt(modbus.cycleMs)} ms for ${modbus.params.modules} modules; wire limit ${fmt(modbus.wireLimitMs)} ms; ${fmt(modbus.ratio)}×`);
  return { serial, modbus };
}

function wiredTargets(w: WiredResult): Target[] {
  const s = w.serial;
  const m = w.modbus;
  const commit = s.commitMs;
  return [
    {
      name: `serial keypad line (${s.params.baud} baud): last byte of a 9# frame → committed, p99`,
      goal: '≤ 1 ms beyond the wire time',
      measured: commit ? `${fmt(commit.p99, 3)} ms (p50 ${fmt(commit.p50, 3)}, max ${fmt(commit.max, 3)}; ${commit.count} events)` : 'no serial.lastByteToCommit in /health',
      met: commit !== null && commit.count > 0 && commit.p99 <= 1 && s.incomplete === 0,
    },
    {
      name: `serial keypad line: last byte of a 9# frame → last of ${NEIGHBOURS} neighbours' displays, p99`,
      goal: `none stated (wire bound ${fmt(s.wireBound.lastDisplayMs)} ms)`,
      measured: `${fmt(s.lastDisplayMs.p99)} ms (p50 ${fmt(s.lastDisplayMs.p50)}; last buzzer p99 ${fmt(s.lastBuzzMs.p99)})`,
      met: null,
    },
    {
      name: `Modbus poll cycle, ${m.params.modules} modules on one ${m.params.baud}-baud RTU bus, ${m.params.turnaroundMs} ms turnaround`,
      goal: `≤ 1.2× the wire limit (${fmt(m.wireLimitMs)} ms)`,
      measured: `${fmt(m.cycleMs)} ms (${fmt(m.ratio)}×)`,
      met: m.ratio <= 1.2,
    },
  ];
}

interface Table {
  section: string;
  header: string[];
  rows: string[][];
  /** Lines under the table. */
  notes: string[];
}

const trio = (x: { p50: number; p99: number; max: number } | null | undefined, digits = 2) => (x ? `${fmt(x.p50, digits)} / ${fmt(x.p99, digits)} / ${fmt(x.max, digits)}` : '–');

function wiredTables(w: WiredResult): Table[] {
  const s = w.serial;
  const m = w.modbus;
  const b = s.wireBound;
  const bs = s.wireBoundSimulated;
  // The bound at the line's bits a character; also at the simulators' where those differ.
  const bound = (k: 'ackMs' | 'firstBuzzMs' | 'lastBuzzMs' | 'lastDisplayMs') => (b.bitsPerChar === bs.bitsPerChar ? fmt(b[k]) : `${fmt(b[k])} (${fmt(bs[k])} sim)`);
  const ratioTo = (x: number, k: 'ackMs' | 'firstBuzzMs' | 'lastBuzzMs' | 'lastDisplayMs') => ratio(x, b[k]);
  const row = (name: string, x: Summary | null, k?: 'ackMs' | 'firstBuzzMs' | 'lastBuzzMs' | 'lastDisplayMs') => [
    name,
    fmt(x?.p50, 3),
    fmt(x?.p99, 3),
    fmt(x?.max, 3),
    k ? bound(k) : '–',
    k && x ? ratioTo(x.p50, k) : '',
  ];
  const serialTable: Table = {
    section:
      `Serial keypad line: ${s.params.keypads} keypads on one ${s.params.baud}-baud line (${b.bitsPerChar} bits a character), ` +
      `${s.alarms} alarms; ms from the last byte of the 9# frame`,
    header: ['', 'p50', 'p99', 'max', 'wire bound', 'p50/bound'],
    rows: [
      row('committed (gateway: last byte → commit)', s.commitMs),
      row('ACK at the pressing keypad', s.ackMs, 'ackMs'),
      row('console has the alarm (MQTT)', s.consoleMs),
      row(`first of ${NEIGHBOURS} neighbours buzzes`, s.firstBuzzMs, 'firstBuzzMs'),
      row(`last of ${NEIGHBOURS} neighbours buzzes`, s.lastBuzzMs, 'lastBuzzMs'),
      row(`last of ${NEIGHBOURS} neighbours displays the alert`, s.lastDisplayMs, 'lastDisplayMs'),
    ],
    notes: [
      `complete ${s.completed} / ${s.alarms} alarms in ${s.wallSeconds} s; KEYS resent ${s.anomalies.keysResent}, commands at non-neighbours ${s.anomalies.unexpectedCommands}, ` +
        `keypads not idle after close ${s.anomalies.notIdle}, console errors ${s.anomalies.consoleErrors}`,
      `frames (bytes): KEYS 9# ${b.frameBytes.KEYS_9H}, ACK ${b.frameBytes.ACK}, BUZZER ${b.frameBytes.BUZZER}, DISPLAY ${b.frameBytes.DISPLAY}, CMD_ACK ${b.frameBytes.CMD_ACK}, ` +
        `POLL ${b.frameBytes.POLL}, NOTHING ${b.frameBytes.NOTHING}; keypad turnaround ${s.params.turnaroundMs} ms; one round of polls over ${s.params.keypads} idle keypads ${fmt(b.idlePollRoundMs)} ms; ` +
        `gateway poll pause ${s.params.pollPauseMs} ms`,
      `wire bound: the ${NEIGHBOURS} BUZZERs, then the ${NEIGHBOURS} DISPLAYs, each confirmed (turnaround + CMD_ACK) before the next frame; the ACK to the pressing keypad ` +
        `(${fmt(b.ackMs)} ms on the wire) left out, though the gateway sends it first, then one command per keypad per round of polls (BUZZER, DISPLAY, LED)`,
      `commit: the gateway's histogram serial.lastByteToCommit over its whole run (${s.commitMs?.count ?? 0} events)`,
    ],
  };
  const gwi = m.gatewayIntervalMs;
  const perModule = m.wireLimitMs / m.params.modules;
  const modbusTable: Table = {
    section:
      `Modbus poll cycle: ${m.params.modules} modules on one ${m.params.baud}-baud RTU line, ${m.params.turnaroundMs} ms turnaround, ` +
      `panic inputs polled as fast as the bus allows, ${m.measuredSeconds} s measured`,
    header: ['', 'measured', 'wire limit', 'ratio'],
    rows: [
      [`cycle: all ${m.params.modules} modules read once (ms)`, fmt(m.cycleMs), fmt(m.wireLimitMs), ratio(m.cycleMs, m.wireLimitMs)],
      ['read interval per module, simulator p50 / p99 / max', trio(m.readIntervalMs), fmt(m.wireLimitMs), ratio(m.readIntervalMs.p50, m.wireLimitMs)],
      ['same, gateway modbus.panicPollInterval', trio(gwi), fmt(m.wireLimitMs), ratio(gwi?.p50, m.wireLimitMs)],
      ['one read (ms)', fmt((m.cycleMs / m.params.modules), 3), fmt(perModule, 3), ratio(m.cycleMs / m.params.modules, perModule)],
      ['reads per module in the window, fewest / most', `${m.readsPerModule.min} / ${m.readsPerModule.max}`, '', ''],
    ],
    notes: [
      `wire limit: firmware-contracts/modbus/rtu.ts wireLimitMs(${m.params.modules}, ${m.params.baud}, ${m.params.turnaroundMs}): per module an FC02 request ` +
        `(${m.frames.limitRequestBytes} bytes) + turnaround + response (${m.frames.limitResponseBytes} bytes) + a ${fmt(m.frames.gapMs, 3)} ms gap, at 11 bits a character; ` +
        `the gateway's panic read is FC02 of ${m.frames.panicReadInputs} input(s): ${m.frames.panicReadBytes} bytes request + response` +
        (m.frames.panicReadBytes === m.frames.limitRequestBytes + m.frames.limitResponseBytes ? ', the same' : ' — NOT what the limit assumes'),
      `simulator: ${m.simulator.answered} answered of ${m.simulator.requests} requests (bad CRC ${m.simulator.badCrc}, other units ${m.simulator.otherUnits}, dropped ${m.simulator.dropped}); ` +
        `gateway counters ${JSON.stringify(m.gateway.counters)}; faults ${m.gateway.faults}`,
      `gateway histogram: its whole run (${gwi?.count ?? 0} intervals, incl. start-up); simulator: the measured window only`,
    ],
  };
  return [serialTable, modbusTable];
}

function fanoutTables(f: FanoutResult): Table[] {
  const b = f.baseline;
  const ratioTable: Table = {
    section: `Fan-out latency p50, keypad publish → last of 11 recipients (ms), ${f.runs.length} run(s) of ${params.alarms} alarms at ${params.rate}/s, each on a fresh process`,
    header: ['', 'gateway p50', 'bare Aedes p50', 'ratio'],
    rows: [
      ...f.runs.map((r, i) => [`run ${i + 1}`, fmt(r.gatewayP50), fmt(r.bareP50), `${fmt(r.ratio)}×`]),
      ['median', fmt(f.medianGatewayP50), fmt(f.medianBareP50), `${fmt(f.medianRatio)}× (median of the ratios)`],
      [b ? `recorded (${b.file}, ${b.date.slice(0, 10)})` : 'recorded', '', '', b ? `${fmt(b.ratio)}×` : '–'],
      ['change against the recorded ratio (limit +10 %)', '', '', f.change === null ? '–' : `${f.change >= 0 ? '+' : ''}${fmt(f.change * 100, 1)} %`],
    ],
    notes: pageConsolesNotes(f),
  };
  const tables = [ratioTable];
  const sum = (x: Summary) => [fmt(x.p50), fmt(x.p90), fmt(x.p99), fmt(x.p999), fmt(x.max)];
  const st = f.stalled;
  const stalledTable: Table = {
    section: `Fan-out latency with one stalled subscriber present (gateway, ${params.stalledAlarms} alarms at ${params.rate}/s; ms)`,
    header: ['', 'p50', 'p90', 'p99', 'p99.9', 'max', 'complete'],
    rows: [
      ...f.runs.map((r, i) => [`gateway, run ${i + 1}: no stalled subscriber`, ...sum(r.gateway), '']),
      ...(st ? [['gateway, one stalled subscriber present', ...sum(st.latency.latencyMs), `${st.latency.completed} / ${st.latency.alarms}`]] : []),
    ],
    notes: st
      ? [
          `stalled subscriber: ${st.subscriber.deviceId}, a second keypad of ${st.subscriber.shopId} (in the first ring of ${st.subscriber.alertedBy} of the ${params.shops} pressed shops), ` +
            `SO_RCVBUF ${st.subscriber.receiveBufferBytes} bytes, subscribes to its shop's alerts and never reads; reconnects each time it is cut off`,
          `cut off by the gateway ${st.subscriber.gatewayCuts ?? '?'} times (mqtt.stalled-cut; ${st.subscriber.cutsSeen} resets seen by the client) over ${st.subscriber.connections} connections; ` +
            `connected → cut off ${st.subscriber.connectedMs ? `min ${st.subscriber.connectedMs.min} / median ${st.subscriber.connectedMs.median} / max ${st.subscriber.connectedMs.max} ms` : '–'} ` +
            `(stall timeout ${st.subscriber.stallTimeoutMs} ms)` +
            (st.subscriber.errors.length ? `; errors: ${st.subscriber.errors.join('; ')}` : ''),
          `CPU cores broker / clients / other: ${cpuCell(st.latency.cpu)}; anomalies ${JSON.stringify(st.latency.anomalies)}`,
          `clients cut off as stalled in the runs without a stalled subscriber (should be 0): ${f.extraRuns.gateway.map((r) => r.stalledCuts ?? '?').join(', ') || '– (first run from the full benchmark)'}`,
        ]
      : [`skipped: ${f.stalledSkipped ?? '?'}`],
  };
  tables.push(stalledTable);
  return tables;
}

function pageConsolesNotes(f: FanoutResult): string[] {
  const pcs = f.extraRuns.gateway.map((r) => r.pageConsoles).filter((x): x is PageConsolesResult => Boolean(x));
  if (params.pageConsoles === 0) return ['no page-style consoles (--page-consoles 0)'];
  return [
    `gateway runs with ${params.pageConsoles} page-style console(s) present: signed in over HTTP, MQTT over ws://…/mqtt with the session's grant, subscribed to the station's alarms ` +
      `(messages received per run: ${pcs.map((p) => p.received.join('+')).join(', ') || '–'}; disconnects ${pcs.reduce((a, p) => a + p.disconnects, 0)}); bare Aedes has no console port and runs as before`,
  ];
}

function tableText(t: Table): string[] {
  const w = t.header.map((h, i) => (i === 0 ? 50 : Math.max(12, h.length, ...t.rows.map((r) => (r[i] ?? '').length))));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' ');
  return [t.section, line(t.header), ...t.rows.map(line), ...t.notes.map((n) => `  ${n}`)];
}

function tableMarkdown(t: Table): string[] {
  return [
    `## ${t.section}`,
    '',
    `| ${t.header.join(' | ')} |`,
    `|---|${t.header.slice(1).map(() => '---:').join('|')}|`,
    ...t.rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    ...t.notes.map((n) => `- ${n}`),
    '',
  ];
}

function fmt(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return x.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (!a || !b) return '–';
  return `${(a / b).toFixed(2)}×`;
}

type Row = [string, string, string, string];

function cpuCell(c: CpuShare | undefined): string {
  return c ? `${fmt(c.targetCoreShare)} / ${fmt(c.clientsCoreShare)} / ${fmt(c.otherCoreShare)}` : '–';
}

function rows(g?: TargetResult, b?: TargetResult): { section: string; rows: Row[] }[] {
  const lat = (r: TargetResult | undefined, k: 'p50' | 'p90' | 'p99' | 'p999' | 'max' | 'mean') => r?.latency.latencyMs[k];
  const sched = (r: TargetResult | undefined, k: 'p50' | 'p99' | 'max') => r?.latency.latencyFromScheduleMs?.[k];
  const ack = (r: TargetResult | undefined, k: 'p50' | 'p99') => r?.latency.pressAckMs[k];
  const tp = (r: TargetResult | undefined) => r?.throughput.throughput;
  const latRows: Row[] = (['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const).map((k) => [
    k === 'p999' ? 'p99.9' : k,
    fmt(lat(g, k)),
    fmt(lat(b, k)),
    ratio(lat(g, k), lat(b, k)),
  ]);
  return [
    {
      section: `Latency, keypad publish → last of 11 recipients (ms), ${params.alarms} alarms at ${params.rate}/s`,
      rows: [
        ...latRows,
        ['p50 / p99 from schedule (open-loop check)', `${fmt(sched(g, 'p50'))} / ${fmt(sched(g, 'p99'))}`, `${fmt(sched(b, 'p50'))} / ${fmt(sched(b, 'p99'))}`, ''],
        ['press → PUBACK p50 / p99', `${fmt(ack(g, 'p50'))} / ${fmt(ack(g, 'p99'))}`, `${fmt(ack(b, 'p50'))} / ${fmt(ack(b, 'p99'))}`, ''],
        ['complete / alarms', g ? `${g.latency.completed} / ${g.latency.alarms}` : '–', b ? `${b.latency.completed} / ${b.latency.alarms}` : '–', ''],
        ['CPU cores: broker / clients / other processes', cpuCell(g?.latency.cpu), cpuCell(b?.latency.cpu), ''],
      ],
    },
    {
      section: `Throughput, closed loop (${params.throughputSeconds} s measured, ${params.throughputShops} shops)`,
      rows: [
        ['window (outstanding alarms)', String(g?.throughput.window ?? '–'), String(b?.throughput.window ?? '–'), ''],
        ['alarms/s', fmt(tp(g)?.alarmsPerS, 0), fmt(tp(b)?.alarmsPerS, 0), ratio(tp(g)?.alarmsPerS, tp(b)?.alarmsPerS)],
        ['deliveries/s (×11)', fmt(tp(g)?.deliveriesPerS, 0), fmt(tp(b)?.deliveriesPerS, 0), ratio(tp(g)?.deliveriesPerS, tp(b)?.deliveriesPerS)],
        ['messages/s received by clients (all)', fmt(tp(g)?.messagesPerS, 0), fmt(tp(b)?.messagesPerS, 0), ''],
        ['latency under load p50 / p99 (ms)', `${fmt(g?.throughput.latencyMs.p50)} / ${fmt(g?.throughput.latencyMs.p99)}`, `${fmt(b?.throughput.latencyMs.p50)} / ${fmt(b?.throughput.latencyMs.p99)}`, ''],
        ['CPU cores: broker / clients / other processes', cpuCell(g?.throughput.cpu), cpuCell(b?.throughput.cpu), ''],
      ],
    },
  ];
}

function textTable(g?: TargetResult, b?: TargetResult): string {
  const w = [46, 20, 20, 8];
  const line = (r: Row) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' ');
  const out: string[] = [];
  out.push(line(['', 'gateway', 'bare Aedes', 'ratio']));
  for (const s of rows(g, b)) {
    out.push('', s.section);
    for (const r of s.rows) out.push(line(r));
  }
  return out.join('\n');
}

/** How undisturbed the run was: the disk, and what other processes used during each phase. */
function conditions(report: Report): string[] {
  const d = report.machine.diskCommitMs;
  const out = [`disk: small SQLite commit (WAL, synchronous=FULL) p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms (${d.commits} commits before the run)`];
  for (const [name, r] of [['gateway', report.results.gateway], ['bare Aedes', report.results.bare]] as const) {
    if (!r) continue;
    const phases = [r.latency, ...r.sweep, r.throughput];
    const busy = phases.filter((p) => (p.cpu?.otherCoreShare ?? 0) > 0.25);
    out.push(
      `${name}: other processes used ${phases.map((p) => `${p.name} ${fmt(p.cpu?.otherCoreShare)}`).join(', ')} cores` +
        (r.before.waitedSeconds >= 2 ? `; waited ${r.before.waitedSeconds} s for quiet (${fmt(r.before.otherCores)} cores at start)` : '') +
        (busy.length ? ` — WARNING: ${busy.map((p) => p.name).join(', ')} disturbed by other work` : ''),
    );
    const c = r.throughput.cpu;
    if (c && c.clientsCoreShare >= 0.9) out.push(`${name} throughput: the clients' process was saturated (${fmt(c.clientsCoreShare)} cores): the figure is a lower bound of what the broker can do`);
    if (c && (c.targetCoreShare ?? 0) >= 0.9) out.push(`${name} throughput: the broker's process was saturated (${fmt(c.targetCoreShare)} cores; Node runs it on one thread)`);
  }
  const f = report.results.fanout;
  if (f) {
    const phases = [...f.extraRuns.bare.map((r) => ['bare', r] as const), ...f.extraRuns.gateway.map((r) => ['gateway', r] as const), ...(f.stalled ? [['gateway + stalled', f.stalled] as const] : [])];
    if (phases.length) {
      out.push(
        `fan-out runs: other processes used ${phases.map(([n, r]) => `${n} ${fmt(r.latency.cpu?.otherCoreShare)}`).join(', ')} cores` +
          (phases.some(([, r]) => (r.latency.cpu?.otherCoreShare ?? 0) > 0.25) ? ' — WARNING: some runs were disturbed by other work' : ''),
      );
    }
  }
  const nr = report.results.nodered;
  if (nr) {
    const busy = nr.runs.filter((r) => (r.cpu.other ?? 0) > 0.25);
    out.push(
      `node-red runs: other processes used ${nr.runs.map((r) => `${r.variant} ${r.run} ${fmt(r.cpu.other)}`).join(', ')} cores` +
        (busy.length ? ' — WARNING: some runs were disturbed by other work' : ''),
    );
  }
  const w = report.results.wired;
  for (const [name, r] of w ? ([['serial keypad line', w.serial], ['Modbus poll cycle', w.modbus]] as const) : []) {
    out.push(
      `${name}: CPU cores gateway / bench (simulators) / other processes ${cpuCell(r.cpu)}` +
        (r.before.waitedSeconds >= 2 ? `; waited ${r.before.waitedSeconds} s for quiet (${fmt(r.before.otherCores)} cores at start)` : '') +
        ((r.cpu.otherCoreShare ?? 0) > 0.25 ? ' — WARNING: disturbed by other work' : '') +
        (r.gateway.lastWarnings.length ? `; gateway warnings: ${r.gateway.lastWarnings.join('; ')}` : ''),
    );
  }
  return out;
}

function markdown(report: Report): string {
  const { gateway: g, bare: b, wired } = report.results;
  const out: string[] = [];
  const only = report.parameters.only;
  out.push(`# Lianfang benchmark: ${only ? PARTS[only] : 'alarm fan-out, wired buses, console and Node-RED'}`, '');
  out.push(
    `${report.date} · ${report.machine.cpu}, ${report.machine.cores} cores · Node ${report.machine.node} · ${report.machine.os} · ` +
      `load average ${report.machine.loadAverage.before} before, ${report.machine.loadAverage.after} after`,
    '',
  );
  if (g || b || report.results.fanout) {
    out.push(
      `Parameters: ${params.throughputShops} shops on the street (latency phase presses ${params.shops} of them), ${params.alarms} alarms (+${params.warmupAlarms} warm-up) at ${params.rate}/s; ` +
        `throughput ${params.throughputSeconds} s (window swept over ${params.windows.join(', ')}); ` +
        `gateway log level \`${params.logLevel}\`; each alarm to 10 neighbours + 1 console, QoS 1; clients in the benchmark process, ` +
        `broker in its own process.`,
      '',
    );
  }
  if (wired) {
    out.push(
      `Wired: the gateway (log level \`${params.logLevel}\`) as master of socat pty lines; the keypad and Modbus simulators in the benchmark process pace the line at its baud rate. ` +
        `Serial: ${params.serial.keypads} keypads (one per shop, shops 50 m apart in a row) on one line, ${params.serial.alarms} alarms one at a time, gateway poll pause ${params.serial.pollPauseMs} ms. ` +
        `Modbus: ${params.modbus.modules} generic-8io modules on one line, ${params.modbus.warmupSeconds} s warm-up + ${params.modbus.seconds} s measured.`,
      '',
    );
  }
  out.push(`Command: \`${report.command}\`.`, '');
  if (g || b) {
    for (const s of rows(g, b)) {
      out.push(`## ${s.section}`, '', '| | gateway | bare Aedes | ratio |', '|---|---:|---:|---:|');
      for (const r of s.rows) out.push(`| ${r.join(' | ')} |`);
      out.push('');
    }
  }
  if (wired) for (const t of wiredTables(wired)) out.push(...tableMarkdown(t));
  if (report.results.fanout) for (const t of fanoutTables(report.results.fanout)) out.push(...tableMarkdown(t));
  if (report.results.console) out.push(...tableMarkdown(consoleTable(report.results.console)));
  if (report.results.nodered) for (const t of nodeRedTables(report.results.nodered)) out.push(...tableMarkdown(t));
  out.push('## Targets', '', '| target | goal | measured | met |', '|---|---|---|---|');
  for (const t of report.targets) out.push(`| ${t.name} | ${t.goal} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
  out.push('');
  const sweep = (r: TargetResult | undefined, name: string) =>
    r ? r.sweep.map((s) => `| ${name} | ${s.window} | ${fmt(s.throughput!.alarmsPerS, 0)} | ${fmt(s.latencyMs.p50)} | ${fmt(s.latencyMs.p99)} | ${cpuCell(s.cpu)} |`) : [];
  if (g || b) {
    out.push(`## Window sweep (${params.sweepSeconds} s each)`, '', '| target | window | alarms/s | p50 ms | p99 ms | CPU broker / clients / other |', '|---|---:|---:|---:|---:|---|');
    out.push(...sweep(g, 'gateway'), ...sweep(b, 'bare Aedes'), '');
  }
  out.push('## Conditions', '', ...conditions(report).map((l) => `- ${l}`), '');
  if (g?.writer) {
    out.push('## Gateway group commit', '', '| phase | commits | items | items/commit |', '|---|---:|---:|---:|');
    for (const [k, v] of Object.entries(g.writer)) if (v) out.push(`| ${k} | ${v.batches} | ${v.items} | ${v.itemsPerBatch} |`);
    out.push('');
  }
  return out.join('\n');
}

interface Report {
  date: string;
  command: string;
  machine: typeof machine & { diskCommitMs: ReturnType<typeof probeDisk> };
  parameters: typeof params;
  results: { gateway?: TargetResult; bare?: TargetResult; wired?: WiredResult; fanout?: FanoutResult; console?: ConsoleResult; nodered?: NodeRedResult };
  /** latencyP50Median: the median over --runs pairs of latency phases (issue 7's figure). */
  ratios: { latencyP50: number | null; latencyP50Median: number | null; latencyP99: number | null; throughput: number | null };
  targets: Target[];
  notes: string[];
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = new Date();
  log(`Lianfang benchmark: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`);
  dataDir = mkdtempSync(join(tmpdir(), 'lfb-'));
  const disk = probeDisk(dataDir);
  log(`disk: a small SQLite commit (WAL, synchronous=FULL) takes p50 ${disk.p50} ms, p99 ${disk.p99} ms, max ${disk.max} ms`);
  const results: Report['results'] = {};
  if (runs.bare || runs.gateway || runs.fanout) {
    const street = await buildStreet(dataDir);
    log(`street: ${street.shops.length} shops of station ${street.stationId} in ${dataDir}`);
    if (runs.bare) results.bare = await runTarget('bare', street, dataDir);
    if (runs.gateway) results.gateway = await runTarget('gateway', street, dataDir);
    if (runs.fanout) {
      const first = results.gateway && results.bare ? { gateway: results.gateway.latency, bare: results.bare.latency } : undefined;
      results.fanout = await runFanout(street, dataDir, first);
    }
  }
  if (runs.console) results.console = await runConsole();
  if (runs.wired) results.wired = await runWired();
  if (runs.nodered) results.nodered = await runNodeRedPart();
  const g = results.gateway;
  const b = results.bare;
  const wired = results.wired;
  machine.loadAverage.after = round(loadavg()[0], 2);

  const report: Report = {
    date: started.toISOString(),
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machine, diskCommitMs: disk },
    parameters: params,
    results,
    ratios: {
      latencyP50: g && b ? round(g.latency.latencyMs.p50 / b.latency.latencyMs.p50, 2) : null,
      latencyP50Median: results.fanout?.medianRatio ?? null,
      latencyP99: g && b ? round(g.latency.latencyMs.p99 / b.latency.latencyMs.p99, 2) : null,
      throughput: g && b ? round(g.throughput.throughput!.alarmsPerS / b.throughput.throughput!.alarmsPerS, 2) : null,
    },
    targets: targets(g, b, wired, results.fanout, results.console, results.nodered),
    notes: [
      'Latency: t0 = performance.now() in the benchmark process just before the keypad publish; the alarm is complete when the last of its 11 expected recipients (10 nearest shops + console) has it, de-duplicated by (alarmId, rev).',
      'Gateway: the console acknowledges each raised alarm and closes it (disposition test); a shop is pressed again only once its alarm is closed. Per alarm the clients therefore receive 23 messages (11 raised, 2 console updates, 10 ended alerts) and the gateway commits 3 client messages plus one delivery mark per PUBACK.',
      'Bare Aedes: the shop client publishes the alert itself to bench/shops/{shopId}/raise; no ack/close traffic.',
      'Throughput counts alarms completed (all 11 recipients) inside the measured window with a fixed number outstanding.',
      ...(wired
        ? [
            'Serial: t0 = the keypad simulator\'s \'sent\' event for the KEYS frame, which it emits right after writing the frame at the time its last byte would arrive (pacing the line); a command or ACK counts as arrived one frame wire time (11 bits a character, as the simulator times the line) after the simulator decoded it, since the gateway writes a frame to the pty at once. The commit figure is the gateway\'s own histogram (from its serial \'data\' event to the commit).',
            'Serial: the origin rotates along the row of shops; the console acknowledges and closes each alarm (disposition test), and the next 9# waits until every keypad has cleared its display and switched its buzzer and LED off.',
            'Modbus: panicPollMs 1 and doorPollMs 1 h, so after the first (full) read of each module only panic reads run; the cycle is measured seconds × modules / requests the simulator answered in the window.',
          ]
        : []),
    ],
  };

  const outDir = join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  // A partial run (--only) never replaces the full run's files, whose ratio is the recorded baseline.
  const base = params.quick ? 'quick' : params.only ? `latest-${params.only}` : 'latest';
  writeFileSync(join(outDir, `${base}.json`), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(outDir, `${base}.md`), markdown(report));

  const out: string[] = [];
  out.push('', `Lianfang benchmark — ${report.date}`);
  out.push(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.os}; load average ${machine.loadAverage.before} before, ${machine.loadAverage.after} after`);
  if (g || b) {
    out.push(`${params.throughputShops} shops (${params.shops} pressed in the latency phase); ${params.alarms} alarms at ${params.rate}/s; throughput ${params.throughputSeconds} s; gateway log level ${params.logLevel}`, '');
    if (g || b) out.push(textTable(g, b));
  }
  if (report.results.fanout) for (const t of fanoutTables(report.results.fanout)) out.push('', ...tableText(t));
  if (report.results.console) out.push('', ...tableText(consoleTable(report.results.console)));
  if (wired) for (const t of wiredTables(wired)) out.push('', ...tableText(t));
  if (report.results.nodered) for (const t of nodeRedTables(report.results.nodered)) out.push('', ...tableText(t));
  out.push('', 'Targets');
  for (const t of report.targets) out.push(`  [${t.met === null ? '—' : t.met ? 'MET' : 'NOT MET'}] ${t.name}: ${t.goal}; measured ${t.measured}`);
  const anomalies = [g && ['gateway', g] as const, b && ['bare', b] as const].filter(Boolean) as (readonly [string, TargetResult])[];
  for (const [name, r] of anomalies) {
    const a = [r.latency, ...r.sweep, r.throughput].map((p) => p.anomalies);
    const sum = (k: keyof (typeof a)[number]) => a.reduce((s, x) => s + x[k], 0);
    const bad = { stale: sum('stale'), unexpectedRecipient: sum('unexpectedRecipient'), consoleErrors: sum('consoleErrors'), disconnects: sum('disconnects'), pressFailures: sum('pressFailures'), incomplete: r.latency.incomplete + r.throughput.incomplete };
    const nonZero = Object.entries(bad).filter(([, v]) => v > 0);
    if (nonZero.length) out.push(`  ${name}: anomalies ${nonZero.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  out.push('', 'Conditions', ...conditions(report).map((l) => `  ${l}`));
  out.push('', `Results: bench/results/${base}.json, bench/results/${base}.md`);
  process.stdout.write(out.join('\n') + '\n');
}

main()
  .then(() => {
    cleanup();
    process.exit(0);
  })
  .catch((err) => {
    log(`bench failed: ${(err as Error).stack ?? err}`);
    cleanup();
    process.exit(1);
  });
