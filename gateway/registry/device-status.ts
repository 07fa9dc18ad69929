/**
 * What the database says about each device's life, for `device list` and `doctor`: when it was
 * last heard (its newest stored event) and how many faults of it are still open. What only a
 * running gateway knows (a live MQTT session, a wired device answering its polls, a heartbeat not
 * stored as an event) comes through the admin channel's `device-status` op and is merged by the
 * caller.
 */
import type { Db } from '../store/db.js';
import { OPEN_FAULT_SQL } from '../faults/fault-store.js';

/**
 * Device id → received_at of its newest stored event (ISO), for devices with one. One index probe
 * per device (events_device): the newest row by id is the newest received, as rows are written in
 * the order they arrive.
 */
export function lastSeenByDevice(db: Db): Map<string, string> {
  const rows = db
    .prepare('SELECT d.id AS id, (SELECT e.received_at FROM events e WHERE e.device_id = d.id ORDER BY e.id DESC LIMIT 1) AS at FROM devices d')
    .all() as { id: string; at: string | null }[];
  return new Map(rows.filter((r) => r.at !== null).map((r) => [r.id, r.at!]));
}

/** Device id → the number of its faults still open (not cleared, or their ticket not fixed). */
export function openFaultsByDevice(db: Db): Map<string, number> {
  const rows = db
    .prepare(`SELECT device_id AS id, COUNT(*) AS n FROM faults WHERE device_id IS NOT NULL AND ${OPEN_FAULT_SQL} GROUP BY device_id`)
    .all() as { id: string; n: number }[];
  return new Map(rows.map((r) => [r.id, r.n]));
}

/** What a running gateway answers to `device-status`: per device, whether it is online now and when it was last heard. */
export interface LiveDeviceStatus {
  online: boolean;
  /** ISO time the gateway last heard it since it started (a publish, a poll answered); null: not since. */
  lastSeen: string | null;
}

/** The newer of two ISO times, either possibly missing. */
export function newer(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return a > b ? a : b;
}
