/**
 * Whether anyone is on duty for a shop's alarm: an officer signed on to a shift (the `shifts` table,
 * written by gateway/console/shifts.ts) in its station's scope or its compound's. The engine asks
 * when it raises an alarm (the `nobody-on-duty` fault); the console's sign-on clears that fault.
 */
import type { Db } from '../store/db.js';

/** True when an officer is signed on in the station's scope or the compound's (a scope that covers a shop of them). */
export function anyoneOnDuty(db: Db, stationId: string, compoundId: string | null | undefined): boolean {
  const r = db.prepare('SELECT 1 FROM shifts WHERE scope_id IN (?, ?) AND signed_off_at IS NULL LIMIT 1').get(stationId, compoundId ?? stationId);
  return r !== undefined;
}

/** The subject of the nobody-on-duty fault of an alarm of (station, compound): the narrowest scope that covers it. */
export function nobodyOnDutySubject(stationId: string, compoundId: string | null | undefined): string {
  return `station:${compoundId ?? stationId}`;
}
