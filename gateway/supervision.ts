/**
 * Link supervision of wired devices (DESIGN.md "Deadlines are rows", the exception): serialport may
 * not notice an unplugged cable until it writes, so silence is the signal. Bridges report every
 * answer with `seen()`; a device silent for `faultAfterMs` becomes a `silent` fault, stored and
 * published to its station's console, and clears itself when the device answers again.
 * Last-seen times live in memory only (a write per poll would cost an fsync each): after a restart
 * every device's silence is counted from the start, and faults left open are cleared by an answer.
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
import type { RegistryCache } from './registry/registry.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import type { Effects } from './ingest/writer.js';
import type { Device } from './registry/registry.js';
import type { CounterReset } from './ingest/sequence.js';

export type FaultKind = 'silent' | 'counter-reset' | 'flood';

export interface FaultMessage {
  deviceId: string;
  shopId: string;
  fault: FaultKind;
  state: 'raised' | 'cleared';
  /** When the device was last heard (silent, raised), when its counter went back (counter-reset, raised), or when the fault cleared. */
  at: string;
  raisedAt: string;
  /** counter-reset: the old and the new (boot, seq), and whether the device's events are accepted or refused. */
  detail?: CounterReset;
  /** flood: routine events dropped in this episode so far (raised: 1; cleared: all of them). */
  dropped?: number;
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
  faultAfterMs: number;
  checkIntervalMs: number;
  publish(topic: string, payload: string): void;
}

export class Supervisor {
  private readonly lastSeen = new Map<string, number>();
  /** Open faults: device id → raised-at (ms). Loaded from the store at start. */
  private readonly open = new Map<string, number>();
  /** Open counter-reset faults by device id. Loaded from the store at start. */
  private readonly resets = new Map<string, OpenCounterReset>();
  private timer: Timer | null = null;

  constructor(private readonly ctx: SupervisorContext) {}

  start(): void {
    const rows = this.ctx.db.prepare('SELECT device_id, fault, raised_at, detail FROM device_faults WHERE cleared_at IS NULL').all() as {
      device_id: string;
      fault: string;
      raised_at: string;
      detail: string | null;
    }[];
    for (const r of rows) {
      if (r.fault === 'counter-reset') this.resets.set(r.device_id, { raisedAt: Date.parse(r.raised_at), detail: JSON.parse(r.detail ?? '{}') as CounterReset });
      else this.open.set(r.device_id, Date.parse(r.raised_at));
    }
    this.arm();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** A bridge now polls `deviceId`: its silence counts from now. */
  watch(deviceId: string): void {
    if (!this.lastSeen.has(deviceId)) this.lastSeen.set(deviceId, this.ctx.clock.now());
  }

  /** The device is no longer polled (revoked, moved): it can no longer fall silent. */
  unwatch(deviceId: string): void {
    this.lastSeen.delete(deviceId);
  }

  /** The device answered. */
  seen(deviceId: string): void {
    const now = this.ctx.clock.now();
    this.lastSeen.set(deviceId, now);
    if (this.open.has(deviceId)) this.clear(deviceId, now);
  }

  /** Devices with an open fault, for /health and the console. */
  faults(): { deviceId: string; fault: FaultKind; raisedAt: string; detail?: CounterReset }[] {
    return [
      ...[...this.open].map(([deviceId, at]) => ({ deviceId, fault: 'silent' as const, raisedAt: iso(at) })),
      ...[...this.resets].map(([deviceId, r]) => ({ deviceId, fault: 'counter-reset' as const, raisedAt: iso(r.raisedAt), detail: r.detail })),
    ];
  }

  /** Floods are not faults this supervisor holds: the flood guard (gateway/ingest/flood.ts) tracks them. */
  isFaulted(deviceId: string, fault: Exclude<FaultKind, 'flood'> = 'silent'): boolean {
    return fault === 'silent' ? this.open.has(deviceId) : this.resets.has(deviceId);
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
    const json = JSON.stringify(detail);
    if (before) db.prepare("UPDATE device_faults SET detail = ? WHERE device_id = ? AND fault = 'counter-reset' AND cleared_at IS NULL").run(json, device.id);
    else db.prepare("INSERT INTO device_faults (device_id, fault, raised_at, detail) VALUES (?, 'counter-reset', ?, ?)").run(device.id, iso(now), json);
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
      this.publish(device.id, { fault: 'counter-reset', state: 'raised', at: iso(now), raisedAt: iso(open.raisedAt), detail });
    });
  }

  /** Inside the ingest's transaction: an MQTT device's event taken in sequence after a counter-reset clears it. */
  sequenceEstablished(fx: Effects, device: Device): void {
    if (!this.resets.has(device.id)) return;
    const now = this.ctx.clock.now();
    this.ctx.db.prepare("UPDATE device_faults SET cleared_at = ? WHERE device_id = ? AND fault = 'counter-reset' AND cleared_at IS NULL").run(iso(now), device.id);
    this.forgetCounterReset(fx, device.id, now, 'the device goes on in its new sequence');
  }

  /**
   * Inside the writer transaction in which the installer's reset was stored (its rows already
   * cleared by `resetDeviceCounter`): forget the open fault and tell the consoles after the commit.
   */
  forgetCounterReset(fx: Effects, deviceId: string, now = this.ctx.clock.now(), why = 'the installer reset the counter'): void {
    const before = this.resets.get(deviceId);
    if (!before) return;
    this.resets.delete(deviceId);
    fx.onRollback(() => this.resets.set(deviceId, before));
    fx.afterCommit(() => {
      this.ctx.counters.inc('supervision.faults.cleared');
      this.ctx.log.info({ deviceId, fault: 'counter-reset', faultMs: now - before.raisedAt }, `counter-reset fault cleared: ${why}`);
      this.publish(deviceId, { fault: 'counter-reset', state: 'cleared', at: iso(now), raisedAt: iso(before.raisedAt), detail: before.detail });
    });
  }

  /**
   * A flood episode of the device started or ended (gateway/ingest/flood.ts): published, not
   * stored; it clears itself once the device's rate is back under the limit.
   */
  floodNotice(deviceId: string, state: FaultMessage['state'], fields: { at: string; raisedAt: string; dropped: number }): void {
    this.ctx.counters.inc(state === 'raised' ? 'supervision.faults.raised' : 'supervision.faults.cleared');
    this.publish(deviceId, { fault: 'flood', state, ...fields });
  }

  private arm(): void {
    this.timer = this.ctx.clock.setTimer(this.ctx.checkIntervalMs, () => {
      this.check();
      this.arm();
    });
  }

  /** Raise a fault for each watched device silent for too long. */
  check(): void {
    const now = this.ctx.clock.now();
    for (const [deviceId, seenAt] of this.lastSeen) {
      if (now - seenAt >= this.ctx.faultAfterMs && !this.open.has(deviceId)) this.raise(deviceId, seenAt, now);
    }
  }

  private raise(deviceId: string, seenAt: number, now: number): void {
    this.open.set(deviceId, now);
    this.ctx.counters.inc('supervision.faults.raised');
    this.ctx.log.warn({ deviceId, silentMs: now - seenAt }, 'device silent: fault raised');
    this.store(deviceId, 'raised', now, seenAt, () =>
      this.ctx.db.prepare("INSERT INTO device_faults (device_id, fault, raised_at) VALUES (?, 'silent', ?)").run(deviceId, iso(now)),
    );
  }

  private clear(deviceId: string, now: number): void {
    const raisedAt = this.open.get(deviceId)!;
    this.open.delete(deviceId);
    this.ctx.counters.inc('supervision.faults.cleared');
    this.ctx.log.info({ deviceId, faultMs: now - raisedAt }, 'device answers again: fault cleared');
    this.store(deviceId, 'cleared', raisedAt, now, () =>
      this.ctx.db.prepare("UPDATE device_faults SET cleared_at = ? WHERE device_id = ? AND fault = 'silent' AND cleared_at IS NULL").run(iso(now), deviceId),
    );
  }

  /** Store the change, then tell the device's station (and compound) console. */
  private store(deviceId: string, state: FaultMessage['state'], raisedAt: number, at: number, write: () => void): void {
    this.ctx.writer
      .run((fx) => {
        write();
        fx.afterCommit(() => this.publish(deviceId, { fault: 'silent', state, at: iso(at), raisedAt: iso(raisedAt) }));
      }, 'fault')
      .catch((err) => this.ctx.log.error({ err, deviceId, state }, 'could not store a fault change'));
  }

  /** Tell the device's station (and compound) console. */
  private publish(deviceId: string, fields: Omit<FaultMessage, 'deviceId' | 'shopId'>): void {
    const device = this.ctx.registry.devices.get(deviceId);
    const shop = device && this.ctx.registry.shops.get(device.shopId);
    if (!shop) return;
    const msg: FaultMessage = { deviceId, shopId: shop.id, ...fields };
    for (const stationId of this.ctx.registry.consolesFor(shop)) this.ctx.publish(topics.stationFaults(stationId), JSON.stringify(msg));
  }
}
