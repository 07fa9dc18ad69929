/**
 * What the store says about each device's life: when it was last heard.
 */
import type { Db } from '../store/db.js';

/**
 * When each device was last heard: the `received_at` of its newest stored event, by device id.
 * A device never heard since it was added is absent. The newest event is the one with the highest
 * id (events are stored in arrival order), found through the events_device index.
 */
export function lastSeenByDevice(db: Db): Map<string, string> {
  const rows = db
    .prepare('SELECT e.device_id AS deviceId, e.received_at AS at FROM events e JOIN (SELECT device_id, max(id) AS id FROM events GROUP BY device_id) n ON n.id = e.id')
    .all() as { deviceId: string; at: string }[];
  return new Map(rows.map((r) => [r.deviceId, r.at]));
}
