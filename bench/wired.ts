/**
 * The wired phase of `npm run bench`: the gateway (a child process, `lianfang start`) as master of
 * real pty lines (socat), the simulators in this process on the other ends.
 *
 * 1. Serial keypad line: one keypad per shop (shops in a row, 50 m apart) on ONE line. An alarm is
 *    a 9# on one keypad, the origin rotating along the row. From the last byte of its KEYS frame:
 *    the commit (the gateway's own histogram `serial.lastByteToCommit`, from the serial 'data'
 *    event carrying that byte to the commit), the ACK at the pressing keypad, the alarm at the
 *    console (MQTT), and the BUZZER and DISPLAY commands at the 10 nearest neighbours' keypads.
 *    The console acknowledges and closes each alarm, and the next press waits until every keypad
 *    is idle again (display cleared, buzzer and LED off), so each press raises a fresh alarm.
 * 2. Modbus poll cycle: I/O modules on ONE RTU line, their panic inputs read as fast as the bus
 *    allows (panicPollMs 1). The cycle (every module read once) from the simulator's answered
 *    requests, each module's read interval as the simulator sees it and as the gateway records it
 *    (`modbus.panicPollInterval`), beside the wire limit of firmware-contracts/modbus/rtu.ts.
 *
 * Timing on a pty: bytes cross at once, so the simulators pace the line (wire-timing.ts, 11 bits a
 * character). The keypad simulator writes each answer frame when its last byte would arrive and
 * then emits 'sent': t0, taken in that handler, is the KEYS frame's last byte within microseconds.
 * The gateway writes its frames to the pty at once and the simulator handles them on arrival, i.e.
 * when their first byte would be on the wire: a command or ACK is counted as arrived one frame
 * wire time after the simulator's event, when its last byte would be in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../gateway/secrets.js';
import { addDevice, addShop, addStation, addUser, listShops, type DeviceInput } from '../gateway/registry/registry.js';
import { rankNeighbours } from '../gateway/geo.js';
import { openPtyPair, type PtyPair } from '../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../simulators/serial-keypad.js';
import { IoModule, ModbusRtuSlaveSim } from '../simulators/modbus-module.js';
import { SimConsole } from '../simulators/mqtt-devices.js';
import type { ConsoleAlarm } from '../firmware-contracts/mqtt/payloads.js';
import { ACK_BYTES, CMD_ACK_BYTES, DISPLAY_BYTES, KEYS_9H_BYTES, NOTHING_BYTES, POLL_BYTES, frameBytes } from '../firmware-contracts/serial/codec.js';
import { decodeDisplayLine } from '../firmware-contracts/serial/display.js';
import { FunctionCode, READ_REQUEST_BYTES, pollCycleBytes, readBitsResponseBytes, wireLimitMs, type ModbusRequest, type ModbusResponse } from '../firmware-contracts/modbus/rtu.js';
import { GENERIC_8IO } from '../firmware-contracts/modbus/register-map.js';
import { BITS_PER_CHAR, interFrameGapMs, wireTimeMs } from '../firmware-contracts/wire-timing.js';
import { newHistogram, recordMs, summarize, type Histogram, type Summary } from './stats.js';
import { GatewayChild, cpuTimeMs, selfCpuMs, systemBusyMs } from './processes.js';
import { cpuShare, round, type CpuShare, type CpuSample } from './fanout.js';

/** The first alert ring (escalation.ringSize, default 10). */
export const NEIGHBOURS = 10;

const STATION = 'PS-BENCH-W';
const OFFICER = { username: 'bench-wired-officer', password: 'bench-officer-password-1' };
/** Shop names of at most 8 Chinese characters: the second line of a neighbour's display. */
const NAMES = ['李记茶行', '陈氏五金', '老王水果', '林家药房', '金辉手机', '明珠理发', '福来便利店', '永安粮油', '华南眼镜', '德记烧腊', '新新服装', '万和电器', '平安诊所', '春风花店'];

/** What the run (run.ts) lends this phase. */
export interface WiredContext {
  log(line: string): void;
  /** Something to end at once if the run is cut short (watchdog, signal); it is also ended normally. */
  track(r: { kill(): void }): void;
  keepData: boolean;
  /** The gateway's log level. */
  logLevel: string;
  /** Escalation deadlines, long enough that none fires mid-run. */
  deadlinesMs: number;
  /** Node flags of the gateway (`--profile`: --cpu-prof). */
  nodeArgs: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `pred` every few ms until it holds (true) or `timeoutMs` passes (false). Timestamps are taken in event handlers, not here. */
async function until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

function cpuSampler(gw: GatewayChild): () => CpuSample {
  return () => ({ target: cpuTimeMs(gw.pid), self: selfCpuMs(), system: systemBusyMs() });
}

function escalationEnv(ctx: WiredContext): NodeJS.ProcessEnv {
  const d = String(ctx.deadlinesMs);
  return { LF_LOG_LEVEL: ctx.logLevel, LF_ESCALATION_ACK_DEADLINE_MS: d, LF_ESCALATION_OVERDUE_REPEAT_MS: d, LF_ESCALATION_RING_INTERVAL_MS: d };
}

// ------------------------------------------------------------------ provisioning

interface RowShop {
  shopId: string;
  busAddress: number;
  /** A serial keypad's MAC key. */
  key: Buffer | null;
  /** Bus addresses of the shop's NEIGHBOURS nearest shops, nearest first (the gateway's first ring). */
  neighbours: number[];
}

/**
 * A station, its officer, and `n` shops 50 m apart along one street, each with one device on the
 * same line at bus address i + 1, registered as `lianfang device add` does.
 */
async function provisionRow(dir: string, n: number, wire: (busAddress: number) => Omit<DeviceInput, 'shopId'>): Promise<RowShop[]> {
  const db = openDatabase(dir);
  try {
    const gatewayKey = loadOrCreateGatewayKey(dir);
    addStation(db, { id: STATION, name: 'Bench wired station' });
    const row: RowShop[] = [];
    for (let i = 0; i < n; i++) {
      const shopId = `BW${String(i).padStart(2, '0')}`;
      addShop(db, { id: shopId, name: NAMES[i % NAMES.length]!, address: `${i + 1} Bench Road`, lat: 23.35 + (i * 50) / 111_320, lon: 116.68, stationId: STATION, doorPlate: `${i + 1}号` });
      const issued = addDevice(db, gatewayKey, { shopId, ...wire(i + 1) });
      row.push({ shopId, busAddress: i + 1, key: issued.macKey ? Buffer.from(issued.macKey, 'hex') : null, neighbours: [] });
    }
    await addUser(db, { name: OFFICER.username, role: 'officer', stationId: STATION, password: OFFICER.password });
    const all = listShops(db);
    const byId = new Map(all.map((s) => [s.id, s]));
    const addressOf = new Map(row.map((s) => [s.shopId, s.busAddress]));
    for (const s of row) {
      s.neighbours = rankNeighbours(byId.get(s.shopId)!, all, (id) => byId.get(id))
        .slice(0, NEIGHBOURS)
        .map((x) => addressOf.get(x.id)!);
    }
    return row;
  } finally {
    db.close();
  }
}

/** A temporary data directory and a pty pair, both ended by the run's cleanup if it is cut short. */
async function wiredSetup(ctx: WiredContext, prefix: string): Promise<{ dir: string; pair: PtyPair; release(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const removeDir = () => {
    if (!ctx.keepData) rmSync(dir, { recursive: true, force: true });
  };
  ctx.track({ kill: removeDir });
  const pair = await openPtyPair();
  // close() signals socat before its first await: enough when the process is about to exit.
  ctx.track({ kill: () => void pair.close() });
  return {
    dir,
    pair,
    async release() {
      await pair.close();
      removeDir();
    },
  };
}

interface GatewaySummary {
  counters: Record<string, number>;
  faults: number;
  /** Log lines by pino level name, and the last warnings. */
  byLevel: Record<string, number>;
  lastWarnings: string[];
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

function gatewaySummary(gw: GatewayChild, health: Record<string, any> | null, prefix: string): GatewaySummary {
  const counters = Object.fromEntries(Object.entries((health?.counters ?? {}) as Record<string, number>).filter(([k]) => k.startsWith(prefix)));
  return {
    counters,
    faults: Array.isArray(health?.faults) ? health.faults.length : 0,
    byLevel: Object.fromEntries([...gw.levelCounts].map(([l, n]) => [LEVEL_NAMES[l] ?? String(l), n])),
    lastWarnings: gw.warnings.slice(-5).map((w) => `${w.msg}${w.code ? ` (${String(w.code)})` : ''}`),
  };
}

async function healthOrNull(gw: GatewayChild): Promise<Record<string, any> | null> {
  try {
    return await gw.health();
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ 1. serial keypad line

export interface SerialLineParams {
  keypads: number;
  alarms: number;
  baud: number;
  parity: 'none' | 'even';
  /** The keypads' turnaround (simulator), ms. */
  turnaroundMs: number;
  /** The gateway's pause between two rounds of polls (serial.pollPauseMs). */
  pollPauseMs: number;
  /** Longest wait for one alarm to reach every neighbour, and for the keypads to be idle again. */
  alarmTimeoutMs: number;
}

export interface SerialWireBound {
  /** Bits a character on this line, as the gateway counts them (devices/serial-bridge.ts): 10 at parity none, else 11. */
  bitsPerChar: number;
  frameBytes: Record<'POLL' | 'NOTHING' | 'KEYS_9H' | 'ACK' | 'BUZZER' | 'DISPLAY' | 'LED' | 'CMD_ACK', number>;
  /** From the KEYS frame's last byte, the least the wire allows (ms). */
  ackMs: number;
  firstBuzzMs: number;
  lastBuzzMs: number;
  lastDisplayMs: number;
  /** One round of polls over every keypad when none has anything to say: the gateway's basic cadence. */
  idlePollRoundMs: number;
}

export interface SerialLineResult {
  params: SerialLineParams;
  alarms: number;
  completed: number;
  incomplete: number;
  wallSeconds: number;
  /** Gateway: the 'data' event carrying the KEYS frame's last byte → committed (its own histogram, whole run). */
  commitMs: Summary | null;
  /** Bench: the KEYS frame's last byte → … (ms). */
  ackMs: Summary;
  consoleMs: Summary;
  firstBuzzMs: Summary;
  lastBuzzMs: Summary;
  lastDisplayMs: Summary;
  /** The same bound at 11 bits a character, as the simulators pace the line (firmware-contracts SPEC). */
  wireBound: SerialWireBound;
  wireBoundSimulated: SerialWireBound;
  anomalies: {
    /** KEYS frames the keypad sent again (no ACK in time). */
    keysResent: number;
    /** Commands switching something on at a keypad that is not among the origin's 10 nearest. */
    unexpectedCommands: number;
    /** Keypads not idle again within alarmTimeoutMs after the alarm was closed. */
    notIdle: number;
    consoleErrors: number;
  };
  simulator: { polls: number; framesSent: number; badFrames: number };
  gateway: GatewaySummary;
  cpu: CpuShare;
}

function serialWireBound(baud: number, bitsPerChar: number, turnaroundMs: number, keypads: number): SerialWireBound {
  const bytes = {
    POLL: POLL_BYTES,
    NOTHING: NOTHING_BYTES,
    KEYS_9H: KEYS_9H_BYTES,
    ACK: ACK_BYTES,
    BUZZER: frameBytes('BUZZER'),
    DISPLAY: DISPLAY_BYTES,
    LED: frameBytes('LED'),
    CMD_ACK: CMD_ACK_BYTES,
  };
  const w = (n: number) => wireTimeMs(n, baud, bitsPerChar);
  // One talker at a time: each command must be confirmed (turnaround + CMD_ACK) before the next
  // frame. Least order: the 10 BUZZERs first, then the 10 DISPLAYs; the ACK to the pressing keypad,
  // which the gateway sends first, is left out, so this is a lower bound of any master.
  const confirm = turnaroundMs + w(bytes.CMD_ACK);
  return {
    bitsPerChar,
    frameBytes: bytes,
    ackMs: round(w(bytes.ACK), 3),
    firstBuzzMs: round(w(bytes.BUZZER), 3),
    lastBuzzMs: round(NEIGHBOURS * w(bytes.BUZZER) + (NEIGHBOURS - 1) * confirm, 3),
    lastDisplayMs: round(NEIGHBOURS * (w(bytes.BUZZER) + w(bytes.DISPLAY)) + (2 * NEIGHBOURS - 1) * confirm, 3),
    idlePollRoundMs: round(keypads * (w(bytes.POLL) + turnaroundMs + w(bytes.NOTHING)), 3),
  };
}

interface Press {
  addr: number;
  shopId: string;
  seq: number;
  neighbours: Set<number>;
  t0: number | null;
  ackAt: number | null;
  consoleAt: number | null;
  alarmId?: string;
  buzz: Map<number, number>;
  display: Map<number, number>;
}

export async function runSerialLine(p: SerialLineParams, ctx: WiredContext): Promise<SerialLineResult> {
  const { dir, pair, release } = await wiredSetup(ctx, 'lfb-serial-');
  let gw: GatewayChild | null = null;
  let sim: SerialKeypadSim | null = null;
  let officer: SimConsole | null = null;
  try {
    const row = await provisionRow(dir, p.keypads, (busAddress) => ({ type: 'keypad', transport: 'serial', port: pair.a, busAddress, baud: p.baud, parity: p.parity }));
    ctx.log(`serial: ${row.length} keypads on one ${p.baud}-baud line (${p.parity === 'none' ? '8N1' : '8E1'}) ${pair.a} ↔ ${pair.b}, data in ${dir}`);

    gw = await GatewayChild.start(dir, { ...escalationEnv(ctx), LF_SERIAL_POLL_PAUSE_MS: String(p.pollPauseMs) }, ctx.nodeArgs);
    ctx.track(gw);
    sim = new SerialKeypadSim({ path: pair.b, baud: p.baud, turnaroundMs: p.turnaroundMs, keypads: row.map((s) => ({ address: s.busAddress, key: s.key! })) });
    await sim.start();
    officer = await new SimConsole(STATION, OFFICER, `${OFFICER.username}:bench-wired`).connect(gw.mqttUrl);

    // How the simulator times the line (it paces at BITS_PER_CHAR whatever the parity).
    const simWireMs = (bytes: number) => wireTimeMs(bytes, p.baud, BITS_PER_CHAR);
    /** What each keypad shows: true while it shows an alert. */
    const showing = new Map(row.map((s) => [s.busAddress, { buzzer: false, display: false, led: false }]));
    let cur: Press | null = null;
    let keysResent = 0;
    let unexpectedCommands = 0;
    const polled = new Map<number, number>();
    const seenAlarms = new Set<string>();

    sim.on('poll', (addr) => polled.set(addr, (polled.get(addr) ?? 0) + 1));
    sim.on('sent', (addr, f) => {
      if (!cur || addr !== cur.addr || f.type !== 'KEYS' || f.seq !== cur.seq) return;
      if (cur.t0 === null) cur.t0 = performance.now();
      else keysResent++;
    });
    sim.on('ack', (addr, _f, cleared) => {
      if (cur && addr === cur.addr && cleared > 0 && cur.ackAt === null) cur.ackAt = performance.now() + simWireMs(ACK_BYTES);
    });
    sim.on('command', (addr, f) => {
      const at = performance.now() + simWireMs(frameBytes(f.type));
      const s = showing.get(addr)!;
      let on: boolean;
      if (f.type === 'BUZZER') on = s.buzzer = f.on;
      else if (f.type === 'DISPLAY') on = s.display = decodeDisplayLine(f.lines[0]) !== '' || decodeDisplayLine(f.lines[1]) !== '';
      else on = s.led = f.colour !== 'off';
      if (!cur || !on) return;
      if (!cur.neighbours.has(addr)) {
        unexpectedCommands++;
        return;
      }
      if (f.type === 'BUZZER' && !cur.buzz.has(addr)) cur.buzz.set(addr, at);
      if (f.type === 'DISPLAY' && !cur.display.has(addr)) cur.display.set(addr, at);
    });
    sim.on('error', (err) => ctx.log(`serial: simulator line error: ${err.message}`));
    officer.on('alarm', (a: ConsoleAlarm) => {
      if (!cur || cur.alarmId || a.shopId !== cur.shopId || a.state !== 'raised' || seenAlarms.has(a.alarmId)) return;
      seenAlarms.add(a.alarmId);
      cur.alarmId = a.alarmId;
      cur.consoleAt = performance.now();
    });

    // The line is running once every keypad has been polled twice.
    if (!(await until(() => row.every((s) => (polled.get(s.busAddress) ?? 0) >= 2), 30_000))) {
      throw new Error(`serial: the gateway did not poll every keypad within 30 s (polled: ${JSON.stringify(Object.fromEntries(polled))})`);
    }

    const h = { ack: newHistogram(), console: newHistogram(), firstBuzz: newHistogram(), lastBuzz: newHistogram(), lastDisplay: newHistogram() };
    const rec = (hist: Histogram, at: number, t0: number) => recordMs(hist, at - t0);
    let completed = 0;
    let notIdle = 0;
    const cpu = cpuSampler(gw);
    const c0 = cpu();
    const start = performance.now();
    for (let i = 0; i < p.alarms; i++) {
      const origin = row[i % row.length]!;
      const press: Press = {
        addr: origin.busAddress,
        shopId: origin.shopId,
        seq: 0,
        neighbours: new Set(origin.neighbours),
        t0: null,
        ackAt: null,
        consoleAt: null,
        buzz: new Map(),
        display: new Map(),
      };
      cur = press;
      press.seq = sim.press(origin.busAddress, '9#').seq;
      const complete = await until(
        () => press.t0 !== null && press.ackAt !== null && press.consoleAt !== null && press.buzz.size === NEIGHBOURS && press.display.size === NEIGHBOURS,
        p.alarmTimeoutMs,
      );
      if (complete) {
        const t0 = press.t0!;
        completed++;
        rec(h.ack, press.ackAt!, t0);
        rec(h.console, press.consoleAt!, t0);
        rec(h.firstBuzz, Math.min(...press.buzz.values()), t0);
        rec(h.lastBuzz, Math.max(...press.buzz.values()), t0);
        rec(h.lastDisplay, Math.max(...press.display.values()), t0);
      } else {
        ctx.log(
          `serial: alarm ${i + 1} from ${origin.shopId} incomplete after ${p.alarmTimeoutMs} ms: sent ${press.t0 !== null}, ACK ${press.ackAt !== null}, ` +
            `console ${press.consoleAt !== null}, buzzers ${press.buzz.size}/${NEIGHBOURS}, displays ${press.display.size}/${NEIGHBOURS}`,
        );
      }
      if (press.alarmId) {
        const id = press.alarmId;
        const state = () => officer!.alarms.get(id)?.state;
        await officer.act({ alarmId: id, action: 'ack' });
        await until(() => state() === 'acknowledged', 10_000);
        await officer.act({ alarmId: id, action: 'close', disposition: 'test' });
        await until(() => state() === 'closed', 10_000);
      }
      cur = null;
      // The 'ended' commands (display cleared, buzzer and LED off) reach every keypad before the next press.
      const idle = await until(() => [...showing.values()].every((s) => !s.buzzer && !s.display && !s.led) && sim!.pending(origin.busAddress) === 0, p.alarmTimeoutMs);
      if (!idle) {
        notIdle++;
        ctx.log(`serial: keypads still showing alarm ${i + 1} ${p.alarmTimeoutMs} ms after it was closed`);
      }
      if ((i + 1) % 50 === 0) ctx.log(`  serial: ${i + 1}/${p.alarms} alarms`);
    }
    const wallMs = performance.now() - start;
    const c1 = cpu();
    const health = await healthOrNull(gw);
    const commit = (health?.latencies?.['serial.lastByteToCommit'] ?? null) as Summary | null;
    const bits = p.parity === 'none' ? 10 : 11;
    const sum = (x: Histogram) => summarize(x, false);
    return {
      params: p,
      alarms: p.alarms,
      completed,
      incomplete: p.alarms - completed,
      wallSeconds: round(wallMs / 1000, 1),
      commitMs: commit,
      ackMs: sum(h.ack),
      consoleMs: sum(h.console),
      firstBuzzMs: sum(h.firstBuzz),
      lastBuzzMs: sum(h.lastBuzz),
      lastDisplayMs: sum(h.lastDisplay),
      wireBound: serialWireBound(p.baud, bits, p.turnaroundMs, row.length),
      wireBoundSimulated: serialWireBound(p.baud, BITS_PER_CHAR, p.turnaroundMs, row.length),
      anomalies: { keysResent, unexpectedCommands, notIdle, consoleErrors: officer.errors.length },
      simulator: { polls: sim.stats.polls, framesSent: sim.stats.framesSent, badFrames: sim.stats.badFrames },
      gateway: gatewaySummary(gw, health, 'serial.'),
      cpu: cpuShare(c0, c1, wallMs),
    };
  } finally {
    await officer?.close();
    await gw?.stop();
    await sim?.close();
    await release();
  }
}

// ------------------------------------------------------------------ 2. Modbus poll cycle

export interface ModbusCycleParams {
  modules: number;
  baud: number;
  turnaroundMs: number;
  /** Measured seconds, after the warm-up. */
  seconds: number;
  warmupSeconds: number;
}

export interface ModbusCycleResult {
  params: ModbusCycleParams;
  measuredSeconds: number;
  /** firmware-contracts/modbus/rtu.ts wireLimitMs(modules, baud, turnaround): one FC02 read of each module. */
  wireLimitMs: number;
  /** What the limit assumes and what the gateway's panic poll reads: both must be the same bytes. */
  frames: { limitRequestBytes: number; limitResponseBytes: number; panicReadInputs: number; panicReadBytes: number; gapMs: number };
  /** Time for every module to be read once: measured seconds × modules / requests the simulator answered. */
  cycleMs: number;
  ratio: number;
  /** FC02 reads per module in the measured window: fewest, most (a starved module shows here). */
  readsPerModule: { min: number; max: number; minUnit: number; maxUnit: number };
  /** Bench: between two reads of the same module, as the simulator executes them (measured window only). */
  readIntervalMs: Summary;
  /** Gateway: its own histogram of the same, whole run (includes the warm-up). */
  gatewayIntervalMs: Summary | null;
  simulator: { requests: number; answered: number; badCrc: number; otherUnits: number; dropped: number };
  gateway: GatewaySummary;
  cpu: CpuShare;
}

/** An I/O module that notes when each FC02 read reaches it (on the simulated wire: the request's last byte). */
class TimedModule extends IoModule {
  reads = 0;
  readsInWindow = 0;
  recording = false;
  private last = 0;

  constructor(private readonly intervals: Histogram) {
    super({ map: GENERIC_8IO });
  }

  override execute(req: ModbusRequest, by: string): ModbusResponse {
    if (req.fc === FunctionCode.READ_DISCRETE_INPUTS) {
      const now = performance.now();
      if (this.recording) {
        if (this.last > 0) recordMs(this.intervals, now - this.last);
        this.readsInWindow++;
      }
      this.last = now;
      this.reads++;
    }
    return super.execute(req, by);
  }
}

export async function runModbusCycle(p: ModbusCycleParams, ctx: WiredContext): Promise<ModbusCycleResult> {
  const { dir, pair, release } = await wiredSetup(ctx, 'lfb-modbus-');
  let gw: GatewayChild | null = null;
  let sim: ModbusRtuSlaveSim | null = null;
  try {
    await provisionRow(dir, p.modules, (busAddress) => ({ type: 'io-module', transport: 'modbus-rtu', port: pair.a, busAddress, baud: p.baud }));
    const intervals = newHistogram();
    const modules = new Map<number, TimedModule>(Array.from({ length: p.modules }, (_, i) => [i + 1, new TimedModule(intervals)]));
    sim = new ModbusRtuSlaveSim({ path: pair.b, baud: p.baud, turnaroundMs: p.turnaroundMs, modules });
    await sim.start();
    ctx.log(`modbus: ${p.modules} modules on one ${p.baud}-baud RTU line, ${p.turnaroundMs} ms turnaround, ${pair.a} ↔ ${pair.b}`);
    gw = await GatewayChild.start(dir, {
      ...escalationEnv(ctx),
      // As fast as the bus allows; door contacts (a full read) only once, at start-up.
      LF_MODBUS_PANIC_POLL_MS: '1',
      LF_MODBUS_DOOR_POLL_MS: String(3_600_000),
    }, ctx.nodeArgs);
    ctx.track(gw);

    // Every module read at least three times: the first (full) read, then panic reads.
    if (!(await until(() => [...modules.values()].every((m) => m.reads >= 3), 30_000))) {
      const slow = [...modules].filter(([, m]) => m.reads < 3).map(([u, m]) => `${u}:${m.reads}`);
      throw new Error(`modbus: not every module was read three times within 30 s (unit:reads ${slow.join(' ')})`);
    }
    await sleep(p.warmupSeconds * 1000);

    const cpu = cpuSampler(gw);
    const a0 = sim.stats.answered;
    const c0 = cpu();
    const t0 = performance.now();
    for (const m of modules.values()) m.recording = true;
    await sleep(p.seconds * 1000);
    for (const m of modules.values()) m.recording = false;
    const t1 = performance.now();
    const c1 = cpu();
    const answered = sim.stats.answered - a0;
    const wallMs = t1 - t0;
    const health = await healthOrNull(gw);

    const limit = wireLimitMs(p.modules, p.baud, p.turnaroundMs);
    const cycleMs = answered > 0 ? (wallMs * p.modules) / answered : Infinity;
    // The gateway's panic read: FC02 of inputs 0 … the highest panic input (devices/modbus-bridge.ts fastCount).
    const panicAddrs = GENERIC_8IO.discreteInputs.filter((i) => i.role === 'panic').map((i) => i.address);
    const panicReadInputs = Math.max(...panicAddrs) + 1;
    const limitBytes = pollCycleBytes(GENERIC_8IO);
    const counts = [...modules].map(([unit, m]) => ({ unit, n: m.readsInWindow }));
    const fewest = counts.reduce((a, b) => (b.n < a.n ? b : a));
    const most = counts.reduce((a, b) => (b.n > a.n ? b : a));
    return {
      params: p,
      measuredSeconds: round(wallMs / 1000, 2),
      wireLimitMs: round(limit, 3),
      frames: {
        limitRequestBytes: READ_REQUEST_BYTES,
        limitResponseBytes: limitBytes - READ_REQUEST_BYTES,
        panicReadInputs,
        panicReadBytes: READ_REQUEST_BYTES + readBitsResponseBytes(panicReadInputs),
        gapMs: round(interFrameGapMs(p.baud), 3),
      },
      cycleMs: round(cycleMs, 3),
      ratio: round(cycleMs / limit, 3),
      readsPerModule: { min: fewest.n, max: most.n, minUnit: fewest.unit, maxUnit: most.unit },
      readIntervalMs: summarize(intervals, false),
      gatewayIntervalMs: (health?.latencies?.['modbus.panicPollInterval'] ?? null) as Summary | null,
      simulator: { requests: sim.stats.requests, answered: sim.stats.answered, badCrc: sim.stats.badCrc, otherUnits: sim.stats.otherUnits, dropped: sim.stats.dropped },
      gateway: gatewaySummary(gw, health, 'modbus.'),
      cpu: cpuShare(c0, c1, wallMs),
    };
  } finally {
    await gw?.stop();
    await sim?.close();
    await release();
  }
}
