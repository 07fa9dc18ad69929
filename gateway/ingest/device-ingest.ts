/**
 * The one ingest (DESIGN.md "One ingest"): every device event, whatever brought it (MQTT, the
 * serial bridge, the Modbus bridge), is stored and run through the alarm engine in the group-commit
 * writer. The promise resolves once the batch holding it is committed; only then may the device be
 * told "got it".
 */
import type { Effects, GroupCommitWriter } from './writer.js';
import type { AlarmEngine, CounterReset, IngestOutcome } from '../alarm/engine.js';
import type { Device } from '../registry/registry.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';
import { U32_MAX } from '../../firmware-contracts/mqtt/payloads.js';
import type { FloodGuard } from './flood.js';

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

/**
 * `faults` is read at each event (the supervisor is built after the ingest); a counter-reset is
 * stored and published with the event that revealed it, so the console hears of it at once and a
 * rolled-back event leaves no fault behind.
 */
export function deviceIngest(writer: GroupCommitWriter, engine: AlarmEngine, faults: () => CounterFaults | undefined = () => undefined, flood?: FloodGuard): DeviceIngest {
  return (device, event, via) =>
    // Dropped before the writer: a flooding device costs no transaction and slows no one else.
    flood && !flood.admit(device.id, event)
      ? Promise.resolve({ outcome: { status: 'refused', reason: 'flood' } as const, committedAt: 0 })
      : writer
      .run((fx) => {
        const outcome = engine.ingestDeviceEvent(fx, device, event, via);
        const f = faults();
        if (f && outcome.status !== 'duplicate') {
          if (outcome.counterReset) f.counterReset(fx, device, outcome.counterReset);
          // A serial keypad's fault waits for the installer: its events were refused, and a replay
          // on a tapped line must not be able to clear it by going on in sequence.
          else if (outcome.status === 'stored' && outcome.sequence && via === 'mqtt') f.sequenceEstablished(fx, device);
        }
        return { outcome, fx };
      }, 'device-event')
      .then(({ outcome, fx }) => ({ outcome, committedAt: fx.committedAt }));
}

/**
 * The `boot` a bridge gives the events it makes itself (a Modbus module has no counter of its
 * own): seconds since the epoch, a u32 until 2106, and always above the device's stored mark so a
 * restart within the same second, or a clock set back, never reuses a boot (an equal boot with seq
 * from 1 again would be dropped as duplicates). A mark beyond u32 (an older version used
 * milliseconds) is left behind: the engine takes the lower boot as a new sequence.
 */
export function nextBridgeBoot(lastBoot: number | null, nowMs: number): number {
  const seconds = Math.min(Math.floor(nowMs / 1000), U32_MAX);
  if (lastBoot !== null && lastBoot >= seconds && lastBoot < U32_MAX) return lastBoot + 1;
  return seconds;
}
