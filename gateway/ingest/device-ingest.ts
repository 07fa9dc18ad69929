/**
 * The one ingest (DESIGN.md "One ingest"): every device event, whatever brought it (MQTT, the
 * serial bridge, the Modbus bridge), is stored and run through the alarm engine in the group-commit
 * writer. The promise resolves once the batch holding it is committed; only then may the device be
 * told "got it".
 */
import type { GroupCommitWriter } from './writer.js';
import type { AlarmEngine, IngestOutcome } from '../alarm/engine.js';
import type { Device } from '../registry/registry.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';

/** `committedAt`: performance.now() at the commit (the fan-out that follows is not in it). */
export type DeviceIngest = (device: Device, event: DeviceEvent, via: 'mqtt' | 'serial' | 'modbus') => Promise<{ outcome: IngestOutcome; committedAt: number }>;

export function deviceIngest(writer: GroupCommitWriter, engine: AlarmEngine): DeviceIngest {
  return (device, event, via) =>
    writer
      .run((fx) => ({ outcome: engine.ingestDeviceEvent(fx, device, event, via), fx }), 'device-event')
      .then(({ outcome, fx }) => ({ outcome, committedAt: fx.committedAt }));
}
