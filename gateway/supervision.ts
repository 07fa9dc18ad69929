/**
 * Link supervision of wired devices (DESIGN.md "Deadlines are rows", the exception): serialport may
 * not notice an unplugged cable until it writes, so silence is the signal. Bridges report every
 * answer with `seen()`; a device silent for `faultAfterMs` becomes a `silent` fault, stored and
 * published to its station's console, and clears itself when the device answers again.
 * Last-seen times live in memory only (a write per poll would cost an fsync each): after a restart
 * every device's silence is counted from the start, and faults left open are cleared by an answer.
 */
import type { Clock, Timer } from './clock.js';
import { iso } from './clock.js';
import type { Logger } from './logger.js';
import type { Counters } from './metrics.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { Db } from './store/db.js';
import type { RegistryCache } from './registry/registry.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';

export interface FaultMessage {
  deviceId: string;
  shopId: string;
  fault: 'silent';
  state: 'raised' | 'cleared';
  /** When the device was last heard (raised) or when the fault cleared. */
  at: string;
  raisedAt: string;
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
  private timer: Timer | null = null;

  constructor(private readonly ctx: SupervisorContext) {}

  start(): void {
    const rows = this.ctx.db.prepare('SELECT device_id, raised_at FROM device_faults WHERE cleared_at IS NULL').all() as { device_id: string; raised_at: string }[];
    for (const r of rows) this.open.set(r.device_id, Date.parse(r.raised_at));
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
  faults(): { deviceId: string; fault: 'silent'; raisedAt: string }[] {
    return [...this.open].map(([deviceId, at]) => ({ deviceId, fault: 'silent' as const, raisedAt: iso(at) }));
  }

  isFaulted(deviceId: string): boolean {
    return this.open.has(deviceId);
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
      this.ctx.db.prepare('INSERT INTO device_faults (device_id, fault, raised_at) VALUES (?, ?, ?)').run(deviceId, 'silent', iso(now)),
    );
  }

  private clear(deviceId: string, now: number): void {
    const raisedAt = this.open.get(deviceId)!;
    this.open.delete(deviceId);
    this.ctx.counters.inc('supervision.faults.cleared');
    this.ctx.log.info({ deviceId, faultMs: now - raisedAt }, 'device answers again: fault cleared');
    this.store(deviceId, 'cleared', raisedAt, now, () =>
      this.ctx.db.prepare('UPDATE device_faults SET cleared_at = ? WHERE device_id = ? AND cleared_at IS NULL').run(iso(now), deviceId),
    );
  }

  /** Store the change, then tell the device's station (and compound) console. */
  private store(deviceId: string, state: FaultMessage['state'], raisedAt: number, at: number, write: () => void): void {
    const device = this.ctx.registry.devices.get(deviceId);
    const shop = device && this.ctx.registry.shops.get(device.shopId);
    this.ctx.writer
      .run((fx) => {
        write();
        fx.afterCommit(() => {
          if (!shop) return;
          const msg: FaultMessage = { deviceId, shopId: shop.id, fault: 'silent', state, at: iso(at), raisedAt: iso(raisedAt) };
          for (const stationId of this.ctx.registry.consolesFor(shop)) this.ctx.publish(topics.stationFaults(stationId), JSON.stringify(msg));
        });
      }, 'fault')
      .catch((err) => this.ctx.log.error({ err, deviceId, state }, 'could not store a fault change'));
  }
}
