/**
 * Link supervision of every device (docs/concepts.md "Faults and test mode"; "Deadlines
 * are rows", the exception): silence is the signal. Wired bridges report every authenticated answer
 * with `seen()` (a serial keypad's unauthenticated NOTHING does not count); the MQTT ingress reports
 * every publish of a device on its own topics (keep-alive PINGREQs never reach it). A wired device
 * silent for `faultAfterMs`, an MQTT device silent for `mqttFaultAfterMs`, becomes a `silent`
 * fault, and clears itself when the device is heard again. The supervisor detects; every fault
 * change is stored and sent to the consoles by the one fault store (gateway/faults/fault-store.ts:
 * faultId, rev, ticket, outbox), which closes the ticket as recovered at the clear. An MQTT device whose status says `online:false` (its last will, published by the broker
 * when its connection dies uncleanly) is an `offline` fault at once, cleared by `online:true` or
 * any event. What a device reports about itself is a fault while it lasts (`event()`, after the
 * event's commit): `tamper` (active), `low-battery`, `selftest-failed` (a self-test with a non-zero
 * result); a device whose model declares a self-test (SELF_TEST_DECLARED) and reports none for
 * `selfTestFaultAfterMs` is `selftest-missed`, cleared by its next passing self-test. A serial keypad
 * whose polls keep having line errors (`lineError()`) is `line-errors` until its line is clean for
 * a whole window.
 *
 * Last-seen times live in memory only (a write per heartbeat would cost an fsync each): after a
 * restart every device's silence is counted from the gateway's start, so a dead device is found one
 * interval after a restart; faults left open are cleared by the device's next sign of health. The
 * last self-test of each device is stored (meta `last_selftest:{id}`, one small write a day), so a
 * gateway restarted more often than `selfTestFaultAfterMs` still finds a missed one; a device
 * without a stored one is counted from the start. A revoked or removed device is not
 * supervised (its open faults clear, their tickets closed as revoked or removed). Every fault of a
 * device is its own row and clears on its own.
 *
 * A `counter-reset` fault (a device whose boot went back, gateway/alarm/engine.ts) is raised at once
 * by the one ingest, in the event's own transaction. A serial keypad's clears only when the installer
 * runs `lianfang device reset-counter` (its events are refused until then); an MQTT device's also
 * clears itself at its next event taken in sequence, because its events were never refused and the
 * gateway and the device agree on a sequence again: the fault row and the audit keep the history.
 */
import type { Clock, Timer } from './clock.js';
import { iso } from './clock.js';
import type { Logger } from './logger.js';
import type { Counters } from './metrics.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { Db } from './store/db.js';
import type { RegistryCache } from './registry/registry-cache.js';
import { setMeta } from './store/db.js';
import type { DeviceEvent } from '../firmware-contracts/mqtt/payloads.js';
import type { Effects } from './ingest/writer.js';
import type { Device } from './registry/registry.js';
import type { CounterReset } from './ingest/sequence.js';
import type { DeviceIngest } from './ingest/device-ingest.js';
import { CONDITION_FAULTS, type ConditionFault, type DeviceFaultKind, type FaultStore } from './faults/fault-store.js';

export { CONDITION_FAULTS, type ConditionFault } from './faults/fault-store.js';
/** A device's faults (the fault store holds every kind, gateway/faults/fault-store.ts). */
export type FaultKind = DeviceFaultKind;

/**
 * Which devices declare a daily self-test, by transport and type (the one table; README "Faults").
 * Serial keypads send SELFTEST (firmware-contracts/serial/SPEC.md); MQTT keypads are the same
 * firmware over MQTT and send `selftest` events. An MQTT panic button is a sleeping battery device
 * with no self-test of its own (its heartbeats and battery reports supervise it), and the generic
 * Modbus module has none.
 */
export const SELF_TEST_DECLARED: Readonly<Record<Device['transport'], readonly Device['type'][]>> = {
  serial: ['keypad'],
  mqtt: ['keypad'],
  'modbus-rtu': [],
  'modbus-tcp': [],
};

/** Meta key prefix of a device's last self-test (ms since the epoch). */
export const SELF_TEST_META = 'last_selftest:';

export function declaresSelfTest(device: Pick<Device, 'transport' | 'type'>): boolean {
  return SELF_TEST_DECLARED[device.transport].includes(device.type);
}

/** What a device fault's detail holds besides its kind (the console message carries these at its top level). */
interface FaultExtra {
  /** selftest-failed: the device's failure code. */
  result?: number;
  /** line-errors (raised): polls with a line error within the window. */
  errors?: number;
}

interface OpenCounterReset {
  raisedAt: number;
  detail: CounterReset;
}

export interface SupervisorContext {
  db: Db;
  clock: Clock;
  log: Logger;
  counters: Counters;
  writer: GroupCommitWriter;
  registry: RegistryCache;
  /** Wired devices (watched by their bridges). */
  faultAfterMs: number;
  /** MQTT devices; absent: MQTT devices are not supervised for silence (harnesses). */
  mqttFaultAfterMs?: number;
  /** Devices that declare a self-test; absent: not supervised for it. */
  selfTestFaultAfterMs?: number;
  /** Line errors (serial keypads): this many polls with one within `windowMs`; absent: not supervised for them. */
  lineErrors?: { windowMs: number; perWindow: number };
  checkIntervalMs: number;
  /** Where every fault change is stored and announced to the consoles. */
  faults: FaultStore;
}

export class Supervisor {
  /** Wired devices a bridge polls, and MQTT devices: device id → last heard (ms). */
  private readonly lastSeen = new Map<string, number>();
  /** Device id → when it was last really heard (ms) since the gateway started; unlike lastSeen, never seeded. */
  private readonly heard = new Map<string, number>();
  /** Wired devices: since when their bus polls them as they are now (a re-keyed keypad is polled anew). */
  private readonly watchedSince = new Map<string, number>();
  /** Devices that declare a self-test: device id → the last self-test, or when watching began (ms). */
  private readonly lastSelfTest = new Map<string, number>();
  /** Open condition faults: device id → fault → raised-at (ms). Loaded from the store at start. */
  private readonly open = new Map<string, Map<ConditionFault, number>>();
  /** Open counter-reset faults by device id. Loaded from the store at start. */
  private readonly resets = new Map<string, OpenCounterReset>();
  /** The last self-test of each device as stored by the last run (ms). */
  private readonly storedSelfTest = new Map<string, number>();
  /** Serial keypads: when their recent polls had a line error (ms), within the window. */
  private readonly lineErrorsAt = new Map<string, number[]>();
  private timer: Timer | null = null;
  /** Stopped before the broker closes: the wills it then publishes for every device are no fault. */
  private stopped = false;
  private startedAt = 0;

  constructor(private readonly ctx: SupervisorContext) {}

  start(): void {
    for (const f of this.ctx.faults.openFaults()) {
      if (!f.deviceId) continue;
      if (f.kind === 'counter-reset') this.resets.set(f.deviceId, { raisedAt: Date.parse(f.raisedAt), detail: (f.detail ?? {}) as unknown as CounterReset });
      else if ((CONDITION_FAULTS as readonly string[]).includes(f.kind)) this.openOf(f.deviceId).set(f.kind as ConditionFault, Date.parse(f.raisedAt));
    }
    this.startedAt = this.ctx.clock.now();
    const tested = this.ctx.db.prepare(`SELECT key, value FROM meta WHERE key LIKE '${SELF_TEST_META}%'`).all() as { key: string; value: string }[];
    for (const r of tested) {
      const at = Number(r.value);
      if (Number.isFinite(at)) this.storedSelfTest.set(r.key.slice(SELF_TEST_META.length), Math.min(at, this.startedAt));
    }
    // MQTT devices are counted from the gateway's start, not from a first publish that may never
    // come: a device dead before a restart is found one interval after it.
    this.adoptMqttDevices();
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  /** A bridge now polls `deviceId`: its silence (and a declared self-test's absence) counts from now. */
  watch(deviceId: string): void {
    const now = this.ctx.clock.now();
    if (!this.lastSeen.has(deviceId)) this.lastSeen.set(deviceId, now);
    if (!this.watchedSince.has(deviceId)) this.watchedSince.set(deviceId, now);
    const device = this.ctx.registry.devices.get(deviceId);
    if (device && declaresSelfTest(device) && !this.lastSelfTest.has(deviceId)) this.lastSelfTest.set(deviceId, this.storedSelfTest.get(deviceId) ?? now);
  }

  /** The device is no longer polled (revoked, moved): it can no longer fall silent. */
  unwatch(deviceId: string): void {
    this.lastSeen.delete(deviceId);
    this.lastSelfTest.delete(deviceId);
    this.watchedSince.delete(deviceId);
  }

  /** The device was heard (an authenticated answer, a publish on its own topics). */
  seen(deviceId: string): void {
    if (!this.supervised(deviceId)) return;
    const now = this.ctx.clock.now();
    this.lastSeen.set(deviceId, now);
    this.heard.set(deviceId, now);
    this.clear(deviceId, 'silent', now);
    this.clear(deviceId, 'offline', now);
  }

  /** When the device was last heard since the gateway started (ms), if it was. */
  heardAt(deviceId: string): number | undefined {
    return this.heard.get(deviceId);
  }

  /**
   * A wired device answers: its bus polls it, and it was heard since the poll began (a keypad
   * re-keyed is not answering until it is heard on its new key) and within the time after which
   * its silence is a fault.
   */
  answering(deviceId: string): boolean {
    const at = this.heard.get(deviceId);
    const since = this.watchedSince.get(deviceId);
    return at !== undefined && since !== undefined && at >= since && this.ctx.clock.now() - at < this.ctx.faultAfterMs;
  }

  /**
   * A poll of the device had a line error: a fault once `perWindow` of them fall within `windowMs`;
   * cleared by check() once a whole window passes without one (the line is clean again).
   */
  lineError(deviceId: string): void {
    const rule = this.ctx.lineErrors;
    if (!rule || !this.supervised(deviceId)) return;
    const now = this.ctx.clock.now();
    const recent = (this.lineErrorsAt.get(deviceId) ?? []).filter((at) => now - at < rule.windowMs);
    recent.push(now);
    this.lineErrorsAt.set(deviceId, recent);
    if (recent.length >= rule.perWindow) this.raise(deviceId, 'line-errors', now, recent[0]!, { errors: recent.length });
  }

  /** An MQTT device's status says it went offline (its last will, or its own word): a fault at once. */
  offline(deviceId: string): void {
    if (!this.supervised(deviceId)) return;
    const now = this.ctx.clock.now();
    this.raise(deviceId, 'offline', now, this.lastSeen.get(deviceId) ?? now);
  }

  /**
   * After the commit of a device's new event: what it says about the device itself. Tamper while
   * active, a low battery while low, a failed self-test until one passes; a self-test of either
   * result ends a `selftest-missed`.
   */
  event(device: Device, event: DeviceEvent): void {
    if (!this.supervised(device.id)) return;
    const now = this.ctx.clock.now();
    const id = device.id;
    switch (event.type) {
      case 'tamper':
        if (event.active === false) this.clear(id, 'tamper', now);
        else this.raise(id, 'tamper', now, now);
        return;
      case 'battery':
        if (event.low === true) this.raise(id, 'low-battery', now, now);
        else if (event.low === false) this.clear(id, 'low-battery', now);
        return;
      case 'selftest':
        if (declaresSelfTest(device)) {
          this.lastSelfTest.set(id, now);
          this.storeSelfTest(id, now);
        }
        this.clear(id, 'selftest-missed', now);
        if (event.result === 0) this.clear(id, 'selftest-failed', now);
        else this.raise(id, 'selftest-failed', now, now, { result: event.result });
        return;
      default:
        return;
    }
  }

  /**
   * A condition of a device that the gateway judges rather than the device reports (a door held
   * open past its time while the shop is disarmed): a fault while `active`, cleared when not.
   */
  condition(deviceId: string, fault: ConditionFault, active: boolean): void {
    if (!this.supervised(deviceId)) return;
    const now = this.ctx.clock.now();
    if (active) this.raise(deviceId, fault, now, now);
    else this.clear(deviceId, fault, now);
  }

  /** Floods are not faults this supervisor holds: the flood guard (gateway/ingest/flood.ts) detects them. */
  isFaulted(deviceId: string, fault: Exclude<FaultKind, 'flood'> = 'silent'): boolean {
    return fault === 'counter-reset' ? this.resets.has(deviceId) : (this.open.get(deviceId)?.has(fault) ?? false);
  }

  // ---------------------------------------------------------------- counter-reset

  /**
   * Inside the ingest's transaction: `device`'s counter went back. Stored, audited and published
   * to its consoles after the commit, at once. A keypad whose refused events keep coming at the
   * same lower boot is the fault already open: counted, not raised again; any other counter-reset
   * (another boot) is published again with the new detail, on the same open fault.
   */
  counterReset(fx: Effects, device: Device, detail: CounterReset): void {
    const { db, clock, counters } = this.ctx;
    const now = clock.now();
    const before = this.resets.get(device.id);
    if (before && before.detail.events === detail.events && before.detail.boot === detail.boot && detail.events === 'refused') {
      counters.inc('supervision.counter-reset.repeated');
      return;
    }
    this.ctx.faults.raiseIn(fx, { kind: 'counter-reset', deviceId: device.id, detail: { ...detail } });
    db.prepare("INSERT INTO audit (alarm_id, at, actor, action, detail) VALUES (NULL, ?, ?, 'counter-reset', ?)").run(iso(now), `device:${device.id}`, JSON.stringify({ deviceId: device.id, ...detail }));
    const open = { raisedAt: before?.raisedAt ?? now, detail };
    this.resets.set(device.id, open);
    fx.onRollback(() => (before ? this.resets.set(device.id, before) : this.resets.delete(device.id)));
    fx.afterCommit(() => {
      counters.inc('supervision.faults.raised');
      this.ctx.log.warn(
        { deviceId: device.id, fault: 'counter-reset', ...detail },
        detail.events === 'refused'
          ? 'device counter went back: its events are refused until `lianfang device reset-counter` (fault raised)'
          : 'device counter went back: taken as a new sequence (fault raised)',
      );
    });
  }

  /** Inside the ingest's transaction: an MQTT device's event taken in sequence after a counter-reset clears it. */
  sequenceEstablished(fx: Effects, device: Device): void {
    if (!this.resets.has(device.id)) return;
    const now = this.ctx.clock.now();
    this.ctx.faults.clearIn(fx, { kind: 'counter-reset', deviceId: device.id }, { how: 'recovered', by: `device:${device.id}` });
    this.forgetCounterReset(fx, device.id, now, 'the device goes on in its new sequence');
  }

  /**
   * Inside the writer transaction in which the installer's reset was stored (its fault already
   * cleared by `resetDeviceCounter`, which told the consoles): forget the open fault.
   */
  forgetCounterReset(fx: Effects, deviceId: string, now = this.ctx.clock.now(), why = 'the installer reset the counter'): void {
    const before = this.resets.get(deviceId);
    if (!before) return;
    this.resets.delete(deviceId);
    fx.onRollback(() => this.resets.set(deviceId, before));
    fx.afterCommit(() => {
      this.ctx.counters.inc('supervision.faults.cleared');
      this.ctx.log.info({ deviceId, fault: 'counter-reset', faultMs: now - before.raisedAt }, `counter-reset fault cleared: ${why}`);
    });
  }

  /**
   * A flood episode of the device started or ended (gateway/ingest/flood.ts): a stored fault like
   * any other, cleared (with the episode's dropped count) once the device's rate is back under the
   * limit; one left open by the last run clears at the start (every bucket starts full).
   */
  floodNotice(deviceId: string, state: 'raised' | 'cleared', fields: { at: string; raisedAt: string; dropped: number }): void {
    this.ctx.counters.inc(state === 'raised' ? 'supervision.faults.raised' : 'supervision.faults.cleared');
    if (state === 'raised') void this.ctx.faults.raise({ kind: 'flood', deviceId, detail: { dropped: fields.dropped }, at: Date.parse(fields.at) });
    else void this.ctx.faults.clear({ kind: 'flood', deviceId }, { how: 'recovered', by: `device:${deviceId}`, detail: { dropped: fields.dropped } });
  }

  private arm(): void {
    this.timer = this.ctx.clock.setTimer(this.ctx.checkIntervalMs, () => {
      this.check();
      this.arm();
    });
  }

  /** A revoked or removed device is not supervised (its will, published when it is cut off, is no fault). */
  private supervised(deviceId: string): boolean {
    const device = this.ctx.registry.devices.get(deviceId);
    return device !== undefined && !device.revokedAt;
  }

  /** MQTT devices registered since the last look are watched from now; revoked and removed ones are dropped. */
  private adoptMqttDevices(): void {
    const now = this.ctx.clock.now();
    for (const d of this.ctx.registry.devices.values()) {
      if (d.transport !== 'mqtt' || d.revokedAt) continue;
      if (this.ctx.mqttFaultAfterMs !== undefined && !this.lastSeen.has(d.id)) this.lastSeen.set(d.id, now);
      if (declaresSelfTest(d) && !this.lastSelfTest.has(d.id)) this.lastSelfTest.set(d.id, this.storedSelfTest.get(d.id) ?? now);
    }
  }

  /** Raise a fault for each supervised device silent, or without its self-test, for too long. */
  check(): void {
    this.adoptMqttDevices();
    const now = this.ctx.clock.now();
    const { registry, faultAfterMs, mqttFaultAfterMs, selfTestFaultAfterMs } = this.ctx;
    for (const [deviceId, seenAt] of this.lastSeen) {
      const device = registry.devices.get(deviceId);
      if (!device || device.revokedAt) {
        // Wired devices are unwatched by their bridge; an MQTT device is dropped here.
        if (!device || device.transport === 'mqtt') this.lastSeen.delete(deviceId);
        continue;
      }
      const after = device.transport === 'mqtt' ? mqttFaultAfterMs : faultAfterMs;
      // An offline device is already a fault; its silence says nothing more.
      if (after !== undefined && now - seenAt >= after && !this.isFaulted(deviceId, 'offline')) this.raise(deviceId, 'silent', now, seenAt);
    }
    this.checkLines(now);
    this.dropRevoked(now);
    if (selfTestFaultAfterMs === undefined) return;
    for (const [deviceId, testedAt] of this.lastSelfTest) {
      const device = registry.devices.get(deviceId);
      if (!device || device.revokedAt) {
        if (!device || device.transport === 'mqtt') this.lastSelfTest.delete(deviceId);
        continue;
      }
      if (now - testedAt >= selfTestFaultAfterMs) this.raise(deviceId, 'selftest-missed', now, testedAt);
    }
  }

  /** A device revoked or removed is no longer supervised: its open faults clear, their tickets closed as such (no one is to fix them). */
  private dropRevoked(now: number): void {
    for (const [deviceId, faults] of this.open) {
      if (this.supervised(deviceId)) continue;
      const how = this.ctx.registry.devices.has(deviceId) ? 'revoked' : 'removed';
      for (const fault of [...faults.keys()]) this.clear(deviceId, fault, now, how);
    }
  }

  /** Keep the time of a self-test for the next run (daily: one small write). */
  private storeSelfTest(deviceId: string, at: number): void {
    this.storedSelfTest.set(deviceId, at);
    this.ctx.writer
      .run(() => setMeta(this.ctx.db, SELF_TEST_META + deviceId, String(at)), 'selftest-mark')
      .catch((err) => this.ctx.log.error({ err, deviceId }, 'could not store the time of a self-test'));
  }

  /** A line with no error for a whole window is clean again: its fault clears. */
  private checkLines(now: number): void {
    const rule = this.ctx.lineErrors;
    if (!rule) return;
    for (const [deviceId, times] of this.lineErrorsAt) {
      if (now - times[times.length - 1]! < rule.windowMs) continue;
      this.lineErrorsAt.delete(deviceId);
      this.clear(deviceId, 'line-errors', now);
    }
    // A fault left open by the last run, on a line that has had no error since the start.
    for (const [deviceId, faults] of this.open) {
      const raisedAt = faults.get('line-errors');
      if (raisedAt !== undefined && !this.lineErrorsAt.has(deviceId) && now - Math.max(raisedAt, this.startedAt) >= rule.windowMs) this.clear(deviceId, 'line-errors', now);
    }
  }

  private openOf(deviceId: string): Map<ConditionFault, number> {
    let m = this.open.get(deviceId);
    if (!m) this.open.set(deviceId, (m = new Map()));
    return m;
  }

  /** Open `fault` unless it is open already. `since`: when the device was last heard or tested (logged). */
  private raise(deviceId: string, fault: ConditionFault, now: number, since: number, extra: FaultExtra = {}): void {
    if (this.stopped) return;
    const open = this.openOf(deviceId);
    if (open.has(fault)) return;
    open.set(fault, now);
    this.ctx.counters.inc('supervision.faults.raised');
    this.ctx.log.warn({ deviceId, fault, sinceMs: now - since, ...extra }, `device fault raised: ${fault}`);
    void this.ctx.faults.raise({ kind: fault, deviceId, detail: { ...extra }, at: fault === 'silent' ? since : now });
  }

  /** Clear `fault`: its cause went away (`recovered`, the device's doing), or the device left supervision. */
  private clear(deviceId: string, fault: ConditionFault, now: number, how: 'recovered' | 'revoked' | 'removed' = 'recovered'): void {
    const open = this.open.get(deviceId);
    const raisedAt = open?.get(fault);
    if (raisedAt === undefined || this.stopped) return;
    open!.delete(fault);
    if (open!.size === 0) this.open.delete(deviceId);
    this.ctx.counters.inc('supervision.faults.cleared');
    this.ctx.log.info({ deviceId, fault, faultMs: now - raisedAt, how }, `device fault cleared: ${fault}`);
    void this.ctx.faults.clear({ kind: fault, deviceId }, { how, by: how === 'recovered' ? `device:${deviceId}` : 'gateway' });
  }
}

/**
 * The one ingest with what a stored event says about its device handed to the supervisor after the
 * commit (tamper, battery, self-test). A duplicate or a refused event says nothing new.
 */
export function superviseEvents(ingest: DeviceIngest, supervisor: () => Supervisor | undefined): DeviceIngest {
  return (device, event, via) =>
    ingest(device, event, via).then((r) => {
      if (r.outcome.status === 'stored') supervisor()?.event(device, event);
      return r;
    });
}
