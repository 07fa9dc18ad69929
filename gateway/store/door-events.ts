/**
 * Reads of the stored door events (events table, type 'door'): what each door of a device last
 * said, for what must start again from it after a restart (the Modbus bridge's level last
 * committed, gateway/wired-adapter.ts).
 */
import type { Db } from './db.js';

/** A door's latest stored event: its level (open = true) and when the gateway received it. */
export interface StoredDoor {
  open: boolean;
  receivedAt: string;
}

/**
 * How many of a device's newest door events are read: enough for every door of a module (eight
 * inputs at most), and a bounded walk of the events_device index whatever the device's history.
 * A door none of whose events is among them counts as having none.
 */
export const LATEST_DOOR_EVENTS = 64;

/**
 * Each door input's latest stored door event of `deviceId`, by input name (undefined: a device with
 * one contact, whose events name no input). A row whose payload is not a door event with a boolean
 * `open` is skipped (every stored event passed its schema; this read does not rely on it).
 */
export function latestDoorEvents(db: Db, deviceId: string): Map<string | undefined, StoredDoor> {
  const rows = db
    .prepare("SELECT payload, received_at AS receivedAt FROM events WHERE device_id = ? AND type = 'door' ORDER BY id DESC LIMIT ?")
    .all(deviceId, LATEST_DOOR_EVENTS) as { payload: string; receivedAt: string }[];
  const latest = new Map<string | undefined, StoredDoor>();
  for (const row of rows) {
    let ev: { open?: unknown; input?: unknown } | null;
    try {
      ev = JSON.parse(row.payload) as typeof ev;
    } catch {
      continue;
    }
    if (typeof ev?.open !== 'boolean') continue;
    const input = typeof ev.input === 'string' ? ev.input : undefined;
    if (!latest.has(input)) latest.set(input, { open: ev.open, receivedAt: row.receivedAt });
  }
  return latest;
}
