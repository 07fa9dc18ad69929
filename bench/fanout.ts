/**
 * The measuring side of the benchmark: one MQTT client per shop (it presses 9# and receives its
 * shop's alerts: it is the neighbour receiver) and one console client, all in this process, and
 * the book-keeping that turns their messages into "press → last of the 11 recipients" latencies.
 *
 * Two targets with the same fan-out:
 * - `gateway`: a shop's keypad publishes `{"type":"keypad","keys":"9#"}` on its device events
 *   topic; the gateway stores it, raises the alarm and alerts the 10 nearest shops and the
 *   station's console. The console acknowledges and closes every alarm (disposition `test`) so the
 *   shop can raise a new one (a 9# from a shop with an open alarm joins it, no fan-out).
 * - `bare`: the shop's client publishes the alert itself on `bench/shops/{shopId}/raise`; the
 *   same 10 nearest shops' clients and a console client subscribe to it. No store, no rules.
 *
 * Receivers de-duplicate by (alarmId, rev) (RevTracker). t0 is taken with performance.now() just
 * before the publish; an alarm is complete when its 11th distinct expected recipient has it.
 * A shop is pressed again only when its previous alarm is complete (and, on the gateway, closed).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { RevTracker } from '../firmware-contracts/mqtt/dedupe.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import { newHistogram, recordMs, summarize, prng, type Summary } from './stats.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface BenchShop {
  shopId: string;
  name: string;
  address: string;
  doorPlate: string;
  /** Gateway mode: the keypad's device id and login. */
  deviceId?: string;
  creds?: Credentials;
  /** Indexes of the 10 nearest shops (the gateway's ring 1). */
  neighbours: number[];
}

export interface TargetSpec {
  kind: 'gateway' | 'bare';
  url: string;
  shops: BenchShop[];
  stationId: string;
  /** Gateway mode: the officer's login for the console. */
  officer?: Credentials;
}

/** Recipients per alarm: the neighbours plus the console. */
export const CONSOLE = -1;

interface Pending {
  origin: number;
  phase: Phase;
  /** Intended press time (open loop); equals t0 in the closed loop. */
  scheduled: number;
  t0: number;
  alarmId?: string;
  got: Set<number>;
  complete: boolean;
  closed: boolean;
  record: boolean;
  traced?: { t: number; latencyMs: number; ackMs?: number };
}

/** Counters and histograms of one phase. */
class Phase {
  readonly latency = newHistogram();
  readonly latencyFromSchedule = newHistogram();
  readonly pressAck = newHistogram();
  /** Per recorded alarm: press time (ms since the phase began), latency and PUBACK time (ms). */
  readonly trace: { t: number; latencyMs: number; ackMs?: number }[] = [];
  readonly began = performance.now();
  pressed = 0;
  pressedRecorded = 0;
  completed = 0;
  completedRecorded = 0;
  released = 0;
  /** Presses that found no free shop when they were due. */
  starved = 0;
  maxLatenessMs = 0;
  lateOver1ms = 0;
  /** Completions and received messages inside the measuring window (closed loop). */
  windowCompleted = 0;
  windowMessages = 0;
  windowFrom = Infinity;
  windowTo = Infinity;

  constructor(readonly name: string) {}
}

export interface PhaseResult {
  name: string;
  target: 'gateway' | 'bare';
  loop: 'open' | 'closed';
  offeredRatePerS?: number;
  window?: number;
  alarms: number;
  completed: number;
  incomplete: number;
  wallSeconds: number;
  /** Press (t0 before publish) → the last of the 11 recipients has it. */
  latencyMs: Summary;
  /** Same, from the time the press was due by the schedule (open loop: corrects coordinated omission). */
  latencyFromScheduleMs?: Summary;
  /** Press → PUBACK (on the gateway: store-before-ack). */
  pressAckMs: Summary;
  throughput?: {
    measuredSeconds: number;
    alarmsPerS: number;
    deliveriesPerS: number;
    /** Every message the clients received per second (gateway: also acks, closes, `ended` alerts). */
    messagesPerS: number;
  };
  presses: { starved: number; maxLatenessMs: number; lateOver1ms: number };
  anomalies: { stale: number; unexpectedRecipient: number; duplicates: number; consoleErrors: number; disconnects: number; pressFailures: number };
  /** Cores used on average: the broker's process, the clients (this process), everything else on the machine. */
  cpu?: CpuShare;
}

export interface CpuSample {
  target: number | null;
  self: number;
  system: number | null;
}

export interface CpuShare {
  targetCoreShare: number | null;
  clientsCoreShare: number;
  otherCoreShare: number | null;
}

export function cpuShare(a: CpuSample, b: CpuSample, wallMs: number): CpuShare {
  const target = a.target !== null && b.target !== null ? b.target - a.target : null;
  const self = b.self - a.self;
  const system = a.system !== null && b.system !== null ? b.system - a.system : null;
  return {
    targetCoreShare: target !== null ? round(target / wallMs, 2) : null,
    clientsCoreShare: round(self / wallMs, 2),
    otherCoreShare: system !== null && target !== null ? round(Math.max(0, system - target - self) / wallMs, 2) : null,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connect(url: string, opts: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clean: true, keepalive: 60, ...opts });
    const onError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('connect', () => {
      client.off('error', onError);
      // Nagle off on the client side too (the broker sets it on its side).
      (client.stream as unknown as Socket).setNoDelay?.(true);
      resolve(client);
    });
    client.once('error', onError);
  });
}

function subscribe(client: MqttClient, topicList: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    client.subscribe(topicList, { qos: 1 }, (err, granted) => {
      if (err) return reject(err);
      const refused = (granted ?? []).filter((g) => g.qos !== 1);
      if (refused.length) return reject(new Error(`subscription refused: ${refused.map((g) => g.topic).join(', ')}`));
      resolve();
    }),
  );
}

export class FanoutBench {
  private shopClients: MqttClient[] = [];
  private console!: MqttClient;
  private readonly shopRevs: RevTracker[];
  private readonly consoleRevs = new RevTracker();
  private readonly shopIndex = new Map<string, number>();
  private readonly neighbourSets: Set<number>[];
  private readonly current: (Pending | null)[];
  private readonly free: number[] = [];
  private readonly finished = new Set<string>();
  private readonly seq: number[];
  private readonly random: () => number;
  private serial = 0;
  private pressable: number;
  /** Called when an alarm completes or a shop is released (the closed loop refills). */
  private onProgress: (() => void) | null = null;
  private closing = false;
  readonly anomalies = { stale: 0, unexpectedRecipient: 0, duplicates: 0, consoleErrors: 0, disconnects: 0, pressFailures: 0 };
  messages = 0;
  /** The keypads' power-up counter (`boot`): a new one for each gateway process on the same database. */
  boot = 1;
  /** Keep a per-alarm trace of the open-loop phase (`--trace`). */
  traceEnabled = false;
  /**
   * Each shop's device sends a heartbeat this often (0: none), as supervised devices do (below the
   * gateway's 90 s `supervision.mqttFaultAfterMs`). Long, so heartbeats stay a small share of the
   * ingest; each is one stored event through the one ingest, raises nothing, reaches no recipient,
   * and so is in no fan-out timing. The bare broker's shops publish one too (to no subscriber).
   */
  heartbeatMs = 30_000;
  heartbeats = 0;
  private beatTimers: NodeJS.Timeout[] = [];
  lastTrace: Phase['trace'] = [];

  constructor(
    readonly spec: TargetSpec,
    seed = 1,
  ) {
    const n = spec.shops.length;
    spec.shops.forEach((s, i) => this.shopIndex.set(s.shopId, i));
    this.shopRevs = spec.shops.map(() => new RevTracker());
    this.neighbourSets = spec.shops.map((s) => new Set(s.neighbours));
    this.current = new Array(n).fill(null);
    this.seq = new Array(n).fill(0);
    this.pressable = n;
    for (let i = 0; i < n; i++) this.free.push(i);
    this.random = prng(seed);
  }

  // ------------------------------------------------------------------ connecting

  async connect(): Promise<void> {
    const { spec } = this;
    const n = spec.shops.length;
    // Which origins each shop hears from (bare mode subscribes to each of them).
    const hearsFrom: number[][] = spec.shops.map(() => []);
    spec.shops.forEach((s, o) => s.neighbours.forEach((nb) => hearsFrom[nb].push(o)));
    this.shopClients = new Array(n);
    const batch = 25;
    for (let from = 0; from < n; from += batch) {
      await Promise.all(
        spec.shops.slice(from, from + batch).map(async (shop, j) => {
          const i = from + j;
          const client =
            spec.kind === 'gateway'
              ? await connect(spec.url, { clientId: shop.deviceId!, username: shop.creds!.username, password: shop.creds!.password })
              : await connect(spec.url, { clientId: `bench-shop-${i}` });
          this.watch(client);
          client.on('message', (_topic, payload) => this.onShopMessage(i, payload));
          const subs =
            spec.kind === 'gateway' ? [topics.shopAlerts(shop.shopId)] : hearsFrom[i].map((o) => `bench/shops/${spec.shops[o].shopId}/raise`);
          if (subs.length) await subscribe(client, subs);
          this.shopClients[i] = client;
        }),
      );
    }
    if (spec.kind === 'gateway') {
      this.console = await connect(spec.url, { clientId: `${spec.officer!.username}:console`, username: spec.officer!.username, password: spec.officer!.password });
      this.console.on('message', (topic, payload) => this.onConsoleMessage(topic, payload));
      await subscribe(this.console, [topics.stationAlarms(spec.stationId), topics.stationErrors(spec.stationId)]);
    } else {
      this.console = await connect(spec.url, { clientId: 'bench-console' });
      this.console.on('message', (topic, payload) => this.onConsoleMessage(topic, payload));
      await subscribe(this.console, ['bench/shops/+/raise']);
    }
    this.watch(this.console);
    this.startHeartbeats();
  }

  /** Every shop beats at `heartbeatMs`, the first beats spread over one interval. */
  private startHeartbeats(): void {
    if (this.heartbeatMs <= 0) return;
    const { spec } = this;
    spec.shops.forEach((shop, i) => {
      const beat = () => {
        const client = this.shopClients[i];
        if (this.closing || !client?.connected) return;
        const [topic, body] =
          spec.kind === 'gateway'
            ? [topics.deviceEvents(shop.deviceId!), JSON.stringify({ seq: ++this.seq[i], boot: this.boot, type: 'heartbeat' })]
            : [`bench/shops/${shop.shopId}/heartbeat`, JSON.stringify({ type: 'heartbeat' })];
        this.heartbeats++;
        client.publish(topic, body, { qos: 1 }, () => {});
      };
      const first = setTimeout(() => {
        beat();
        const every = setInterval(beat, this.heartbeatMs);
        every.unref();
        this.beatTimers.push(every);
      }, Math.floor((i * this.heartbeatMs) / spec.shops.length));
      first.unref();
      this.beatTimers.push(first);
    });
  }

  private watch(client: MqttClient): void {
    client.on('close', () => {
      if (!this.closing) this.anomalies.disconnects++;
    });
    client.on('error', () => {
      /* counted on close */
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.beatTimers) clearTimeout(t);
    this.beatTimers = [];
    await Promise.all([...this.shopClients, this.console].filter(Boolean).map((c) => c.endAsync(true).catch(() => {})));
  }

  // ------------------------------------------------------------------ receiving

  private onShopMessage(recipient: number, payload: Buffer): void {
    const now = performance.now();
    this.messages++;
    let msg: { alarmId?: string; rev?: number; state?: string; originShopId?: string };
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (typeof msg.alarmId !== 'string' || typeof msg.rev !== 'number') return;
    if (!this.shopRevs[recipient].accept(msg.alarmId, msg.rev)) {
      this.anomalies.duplicates++;
      return;
    }
    if (msg.state !== 'raised' || msg.rev !== 1) return;
    const origin = this.shopIndex.get(msg.originShopId ?? '');
    if (origin === undefined) return;
    if (!this.neighbourSets[origin].has(recipient)) {
      this.anomalies.unexpectedRecipient++;
      return;
    }
    this.delivered(origin, msg.alarmId, recipient, now);
  }

  private onConsoleMessage(topic: string, payload: Buffer): void {
    const now = performance.now();
    this.messages++;
    let msg: { alarmId?: string; rev?: number; state?: string; shopId?: string; originShopId?: string };
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (this.spec.kind === 'gateway' && topic === topics.stationErrors(this.spec.stationId)) {
      this.anomalies.consoleErrors++;
      return;
    }
    if (typeof msg.alarmId !== 'string' || typeof msg.rev !== 'number') return;
    if (!this.consoleRevs.accept(msg.alarmId, msg.rev)) {
      this.anomalies.duplicates++;
      return;
    }
    const origin = this.shopIndex.get((this.spec.kind === 'gateway' ? msg.shopId : msg.originShopId) ?? '');
    if (origin === undefined) return;
    if (this.spec.kind === 'bare') {
      if (msg.rev === 1) this.delivered(origin, msg.alarmId, CONSOLE, now);
      return;
    }
    // The officer: acknowledge what is raised, close what is acknowledged (a test alarm).
    switch (msg.state) {
      case 'raised':
        if (msg.rev === 1) this.delivered(origin, msg.alarmId, CONSOLE, now);
        this.act({ alarmId: msg.alarmId, action: 'ack' });
        break;
      case 'acknowledged':
        this.act({ alarmId: msg.alarmId, action: 'close', disposition: 'test' });
        break;
      case 'closed': {
        const p = this.current[origin];
        if (p && p.alarmId === msg.alarmId) {
          p.closed = true;
          this.maybeRelease(p);
        }
        break;
      }
    }
  }

  private act(action: Record<string, unknown>): void {
    this.console.publish(topics.stationActions(this.spec.stationId), JSON.stringify(action), { qos: 1 }, (err) => {
      if (err) this.anomalies.pressFailures++;
    });
  }

  private delivered(origin: number, alarmId: string, recipient: number, now: number): void {
    const p = this.current[origin];
    if (!p || this.finished.has(alarmId)) {
      this.anomalies.stale++;
      return;
    }
    if (p.alarmId === undefined) p.alarmId = alarmId;
    else if (p.alarmId !== alarmId) {
      this.anomalies.stale++;
      return;
    }
    if (p.complete || p.got.has(recipient)) return;
    p.got.add(recipient);
    if (p.got.size < this.spec.shops[origin].neighbours.length + 1) return;
    p.complete = true;
    const ph = p.phase;
    ph.completed++;
    const ms = now - p.t0;
    if (p.record) {
      ph.completedRecorded++;
      recordMs(ph.latency, ms);
      recordMs(ph.latencyFromSchedule, now - p.scheduled);
      if (p.traced) p.traced.latencyMs = ms;
    }
    if (now >= ph.windowFrom && now <= ph.windowTo) ph.windowCompleted++;
    if (this.spec.kind === 'bare') p.closed = true;
    this.maybeRelease(p);
    this.onProgress?.();
  }

  /**
   * Press only shops 0..n-1 from now on (the latency phase uses fewer shops than the throughput
   * phase). Call between phases.
   */
  setPressable(n: number): void {
    this.pressable = Math.min(n, this.spec.shops.length);
    this.free.length = 0;
    for (let i = 0; i < this.pressable; i++) if (!this.current[i]) this.free.push(i);
  }

  private maybeRelease(p: Pending): void {
    if (!p.complete || !p.closed) return;
    if (p.alarmId) this.finished.add(p.alarmId);
    this.current[p.origin] = null;
    if (p.origin < this.pressable) this.free.push(p.origin);
    p.phase.released++;
    this.onProgress?.();
  }

  // ------------------------------------------------------------------ pressing

  /** A random free shop, taken out of the free list; -1 when every shop is busy. */
  private takeFreeShop(): number {
    if (this.free.length === 0) return -1;
    const k = Math.floor(this.random() * this.free.length);
    const shop = this.free[k];
    this.free[k] = this.free[this.free.length - 1];
    this.free.pop();
    return shop;
  }

  private press(origin: number, ph: Phase, scheduled: number | null, record: boolean): void {
    const { spec } = this;
    const shop = spec.shops[origin];
    const client = this.shopClients[origin];
    let topic: string;
    let body: string;
    const serial = ++this.serial;
    if (spec.kind === 'gateway') {
      topic = topics.deviceEvents(shop.deviceId!);
      body = JSON.stringify({ seq: ++this.seq[origin], boot: this.boot, type: 'keypad', keys: '9#' });
    } else {
      // The bare broker does no work: the shop's client publishes the alert a gateway would send.
      topic = `bench/shops/${shop.shopId}/raise`;
      body = JSON.stringify({
        alarmId: `bench-${serial}`,
        rev: 1,
        state: 'raised',
        originShopId: shop.shopId,
        originName: shop.name,
        address: shop.address,
        doorPlate: shop.doorPlate,
        kind: 'panic',
        raisedAt: new Date().toISOString(),
        ring: 1,
      });
    }
    const t0 = performance.now();
    const p: Pending = {
      origin,
      phase: ph,
      scheduled: scheduled ?? t0,
      t0,
      ...(spec.kind === 'bare' ? { alarmId: `bench-${serial}` } : {}),
      got: new Set(),
      complete: false,
      closed: false,
      record,
    };
    if (record && this.traceEnabled) {
      p.traced = { t: t0 - ph.began, latencyMs: NaN };
      ph.trace.push(p.traced);
    }
    this.current[origin] = p;
    ph.pressed++;
    if (record) ph.pressedRecorded++;
    if (scheduled !== null) {
      const late = t0 - scheduled;
      if (late > ph.maxLatenessMs) ph.maxLatenessMs = late;
      if (late > 1) ph.lateOver1ms++;
    }
    client.publish(topic, body, { qos: 1 }, (err) => {
      if (err) {
        this.anomalies.pressFailures++;
        return;
      }
      if (!record) return;
      const ackMs = performance.now() - t0;
      recordMs(ph.pressAck, ackMs);
      if (p.traced) p.traced.ackMs = ackMs;
    });
  }

  /** Wait until every alarm of `ph` is released, or `timeoutMs`. */
  private async drain(ph: Phase, timeoutMs: number): Promise<void> {
    const until = performance.now() + timeoutMs;
    while (ph.released < ph.pressed && performance.now() < until) await sleep(10);
  }

  private snapshotAnomalies() {
    return { ...this.anomalies };
  }

  private anomaliesSince(before: ReturnType<FanoutBench['snapshotAnomalies']>) {
    const out = { ...this.anomalies };
    for (const k of Object.keys(out) as (keyof typeof out)[]) out[k] -= before[k];
    return out;
  }

  // ------------------------------------------------------------------ open loop (latency)

  /**
   * Offer `rate` alarms/s on a fixed schedule: `warmup` alarms not recorded, then `count`
   * recorded. A press that is due when every shop is busy waits for one (counted as starved;
   * the latency from the schedule shows what that cost).
   */
  async openLoop(opts: { name: string; rate: number; count: number; warmup: number; drainMs: number }): Promise<PhaseResult> {
    const ph = new Phase(opts.name);
    const before = this.snapshotAnomalies();
    const total = opts.warmup + opts.count;
    const period = 1000 / opts.rate;
    const start = performance.now() + 20;
    let k = 0;
    let measuredFrom = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (k < total) {
          const due = start + k * period;
          if (due > now) break;
          const shop = this.takeFreeShop();
          if (shop < 0) {
            ph.starved++;
            break;
          }
          if (k === opts.warmup) measuredFrom = performance.now();
          this.press(shop, ph, due, k >= opts.warmup);
          k++;
        }
        if (k >= total) return resolve();
        const wait = start + k * period - performance.now();
        setTimeout(tick, Math.max(0, Math.min(wait, period)));
      };
      setTimeout(tick, 20);
    });
    const lastPress = performance.now();
    await this.drain(ph, opts.drainMs);
    this.lastTrace = ph.trace;
    const wallSeconds = (lastPress - measuredFrom) / 1000;
    return {
      name: opts.name,
      target: this.spec.kind,
      loop: 'open',
      offeredRatePerS: opts.rate,
      alarms: ph.pressedRecorded,
      completed: ph.completedRecorded,
      incomplete: ph.pressedRecorded - ph.completedRecorded,
      wallSeconds: round(wallSeconds, 2),
      latencyMs: summarize(ph.latency),
      latencyFromScheduleMs: summarize(ph.latencyFromSchedule),
      pressAckMs: summarize(ph.pressAck),
      presses: { starved: ph.starved, maxLatenessMs: round(ph.maxLatenessMs, 3), lateOver1ms: ph.lateOver1ms },
      anomalies: this.anomaliesSince(before),
    };
  }

  // ------------------------------------------------------------------ closed loop (throughput)

  /**
   * Keep `window` alarms outstanding (pressed, not yet at all 11 recipients): a completion
   * presses the next free shop. Completions inside [warmup, warmup + measure] are counted.
   */
  async closedLoop(opts: { name: string; window: number; warmupMs: number; measureMs: number; drainMs: number; cpu?: () => CpuSample }): Promise<PhaseResult> {
    const ph = new Phase(opts.name);
    const before = this.snapshotAnomalies();
    const messagesBefore = { n: 0 };
    let pressing = true;
    const fill = () => {
      if (!pressing) return;
      while (ph.pressed - ph.completed < opts.window) {
        const shop = this.takeFreeShop();
        if (shop < 0) {
          ph.starved++;
          return;
        }
        const now = performance.now();
        this.press(shop, ph, null, now >= ph.windowFrom && now <= ph.windowTo);
      }
    };
    this.onProgress = fill;
    const t = performance.now();
    ph.windowFrom = t + opts.warmupMs;
    ph.windowTo = ph.windowFrom + opts.measureMs;
    fill();
    await sleep(opts.warmupMs);
    messagesBefore.n = this.messages;
    const cpu0 = opts.cpu?.();
    const w0 = performance.now();
    await sleep(Math.max(0, ph.windowTo - performance.now()));
    const w1 = performance.now();
    const cpu1 = opts.cpu?.();
    const messages = this.messages - messagesBefore.n;
    pressing = false;
    this.onProgress = null;
    await this.drain(ph, opts.drainMs);
    const measuredSeconds = (w1 - w0) / 1000;
    const perS = ph.windowCompleted / measuredSeconds;
    const result: PhaseResult = {
      name: opts.name,
      target: this.spec.kind,
      loop: 'closed',
      window: opts.window,
      alarms: ph.pressed,
      completed: ph.completed,
      incomplete: ph.pressed - ph.completed,
      wallSeconds: round((performance.now() - t) / 1000, 2),
      latencyMs: summarize(ph.latency),
      pressAckMs: summarize(ph.pressAck),
      throughput: {
        measuredSeconds: round(measuredSeconds, 3),
        alarmsPerS: round(perS, 1),
        deliveriesPerS: round(perS * 11, 0),
        messagesPerS: round(messages / measuredSeconds, 0),
      },
      presses: { starved: ph.starved, maxLatenessMs: 0, lateOver1ms: 0 },
      anomalies: this.anomaliesSince(before),
    };
    if (cpu0 && cpu1) result.cpu = cpuShare(cpu0, cpu1, w1 - w0);
    return result;
  }
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
