/**
 * Alarm ids are UUIDv7: unique across gateways without coordination and sortable by time, so
 * alarms from several gateways merge in order at a central receiving centre.
 */
import { v7 as uuidv7 } from 'uuid';
import { randomBytes } from 'node:crypto';

export function newAlarmId(nowMs: number): string {
  return uuidv7({ msecs: nowMs });
}

/** A short random id for generated names (gateway ids, device ids). */
export function shortId(bytes = 5): string {
  return randomBytes(bytes).toString('hex');
}
