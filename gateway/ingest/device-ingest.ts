/**
 * The one ingest (docs/concepts.md "One ingest"): every device event, whatever brought it (MQTT, the
 * serial bridge, the Modbus bridge), goes through `deviceIngest`, read top to bottom:
 *   the flood guard (a routine event beyond its device's rate is dropped before the writer) →
 *   the writer's transaction → its place in the device's sequence (gateway/ingest/sequence.ts: a
 *   duplicate or a refused event stops here, a new one moves the mark) → the alarm engine reads it
 *   (keypad keys assembled, what follows a `*` masked) → the event is stored → the engine acts on
 *   it → a counter that went back is a fault in the same commit.
 * A heartbeat is a `light` writer item: it is stored like any event (its row and its mark), but a
 * batch of nothing else is committed without an fsync; losing the last few in a power cut costs
 * nothing (that a device was heard lives in the supervisor's memory anyway).
 * The promise resolves once the batch holding it is committed; only then may the device be told
 * "got it".
 */
import type { Effects, GroupCommitWriter } from './writer.js';
import type { AlarmEngine } from '../alarm/engine.js';
import type { Device } from '../registry/registry.js';
import type { Clock } from '../clock.js';
import { iso } from '../clock.js';
import type { Counters } from '../metrics.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/db.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';
import { U32_MAX } from '../../firmware-contracts/mqtt/payloads.js';
import type { FloodGuard } from './flood.js';
import { DeviceSequences, type CounterReset, type SequencePlace } from './sequence.js';

export type IngestOutcome =
  | { status: 'stored'; eventId: number; alarmId?: string; sequence?: SequencePlace; counterReset?: CounterReset }
  | { status: 'duplicate' }
  | { status: 'refused'; reason: 'counter-reset'; counterReset: CounterReset };

/** A routine event beyond its device's rate (gateway/ingest/flood.ts): acknowledged, not stored. */
export type FloodRefused = { status: 'refused'; reason: 'flood' };

/** `committedAt`: performance.now() at the commit (the fan-out that follows is not in it). */
export type DeviceIngest = (device: Device, event: DeviceEvent, via: 'mqtt' | 'serial' | 'modbus') => Promise<{ outcome: IngestOutcome | FloodRefused; committedAt: number }>;

/** Where a device whose counter went back is reported (gateway/supervision.ts), in the event's own transaction. */
export interface CounterFaults {
  counterReset(fx: Effects, device: Device, detail: CounterReset): void;
  /** An event taken in sequence: an MQTT device's open counter-reset fault clears. */
  sequenceEstablished(fx: Effects, device: Device): void;
}

export interface DeviceIngestContext {
  db: Db;
  writer: GroupCommitWriter;
  engine: AlarmEngine;
  clock: Clock;
  counters: Counters;
  log: Logger;
  /**
   * Read at each event (the supervisor is built after the ingest); a counter-reset is stored and
   * published with the event that revealed it, so the console hears of it at once and a rolled-back
   * event leaves no fault behind.
   */
  faults?: () => CounterFaults | undefined;
  flood?: FloodGuard;
  /** After the commit of each stored event but heartbeats (as stored: a keypad's keys masked), to Node-RED's flows. */
  onStored?: (device: Device, event: DeviceEvent, eventId: number, at: string) => void;
}

export function deviceIngest(ctx: DeviceIngestContext): DeviceIngest {
  const { writer, engine, clock, counters, flood } = ctx;
  const sequences = new DeviceSequences(ctx.db, counters, ctx.log);
  const insertEvent = ctx.db.prepare('INSERT INTO events (device_id, boot, seq, type, payload, via, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');

  /** Inside the writer's transaction. */
  const ingest = (fx: Effects, device: Device, event: DeviceEvent, via: string): IngestOutcome => {
    const placed = sequences.place(fx, device, event, via);
    if (placed.status !== 'new') return placed;
    const now = clock.now();
    const read = engine.readEvent(fx, device, event, now, placed.newSequence);
    const at = iso(now);
    const eventId = Number(insertEvent.run(device.id, event.boot ?? null, event.seq, event.type, JSON.stringify(read.stored), via, at).lastInsertRowid);
    counters.inc('events.stored');
    const tap = ctx.onStored;
    if (tap && event.type !== 'heartbeat') fx.afterCommit(() => tap(device, read.stored, eventId, at));
    const alarmId = engine.onEvent(fx, device, read, eventId);
    return {
      status: 'stored',
      eventId,
      ...(alarmId ? { alarmId } : {}),
      ...(placed.sequence ? { sequence: placed.sequence } : {}),
      ...(placed.counterReset ? { counterReset: placed.counterReset } : {}),
    };
  };

  const reportCounter = (fx: Effects, device: Device, via: string, outcome: IngestOutcome): void => {
    const f = ctx.faults?.();
    if (!f || outcome.status === 'duplicate') return;
    if (outcome.counterReset) f.counterReset(fx, device, outcome.counterReset);
    // A serial keypad's fault waits for the installer: its events were refused, and a replay on a
    // tapped line must not be able to clear it by going on in sequence.
    else if (outcome.status === 'stored' && outcome.sequence && via === 'mqtt') f.sequenceEstablished(fx, device);
  };

  return (device, event, via) =>
    // Dropped before the writer: a flooding device costs no transaction and slows no one else.
    flood && !flood.admit(device.id, event)
      ? Promise.resolve({ outcome: { status: 'refused', reason: 'flood' } as const, committedAt: 0 })
      : writer
          .run((fx) => {
            const outcome = ingest(fx, device, event, via);
            reportCounter(fx, device, via, outcome);
            return { outcome, fx };
          }, 'device-event', { light: event.type === 'heartbeat' })
          .then(({ outcome, fx }) => ({ outcome, committedAt: fx.committedAt }));
}

/**
 * The `boot` a bridge gives the events it makes itself (a Modbus module has no counter of its
 * own): seconds since the epoch, a u32 until 2106, and always above the device's stored mark so a
 * restart within the same second, or a clock set back, never reuses a boot (an equal boot with seq
 * from 1 again would be dropped as duplicates). A mark beyond u32 (an older version used
 * milliseconds) is left behind: the ingest takes the lower boot as a new sequence.
 */
export function nextBridgeBoot(lastBoot: number | null, nowMs: number): number {
  const seconds = Math.min(Math.floor(nowMs / 1000), U32_MAX);
  if (lastBoot !== null && lastBoot >= seconds && lastBoot < U32_MAX) return lastBoot + 1;
  return seconds;
}
