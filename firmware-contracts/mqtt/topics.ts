/**
 * MQTT contract v1: the topic tree (README "MQTT topic contract v1"). Builders and one parser, shared by
 * the gateway, the broker policy, the simulators and the tests.
 */

export const TOPIC_ROOT = 'lianfang/v1';

/** Ids that appear as one topic level: no MQTT wildcards, no level separator, no control characters. */
export const ID_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$';
const ID_RE = new RegExp(ID_PATTERN);

export function isValidId(id: string): boolean {
  return ID_RE.test(id);
}

export const topics = {
  deviceEvents: (deviceId: string) => `${TOPIC_ROOT}/devices/${deviceId}/events`,
  deviceStatus: (deviceId: string) => `${TOPIC_ROOT}/devices/${deviceId}/status`,
  deviceCommands: (deviceId: string) => `${TOPIC_ROOT}/devices/${deviceId}/commands`,
  shopAlerts: (shopId: string) => `${TOPIC_ROOT}/shops/${shopId}/alerts`,
  shopReplies: (shopId: string) => `${TOPIC_ROOT}/shops/${shopId}/replies`,
  stationAlarms: (stationId: string) => `${TOPIC_ROOT}/stations/${stationId}/alarms`,
  stationActions: (stationId: string) => `${TOPIC_ROOT}/stations/${stationId}/actions`,
  stationErrors: (stationId: string) => `${TOPIC_ROOT}/stations/${stationId}/errors`,
  /** Faults (a device's, a shop's pin-lockout, the gateway's own) raised, cleared and their tickets changed, for the console (ConsoleFault). */
  stationFaults: (stationId: string) => `${TOPIC_ROOT}/stations/${stationId}/faults`,
} as const;

export type TopicKind =
  | 'device-events'
  | 'device-status'
  | 'device-commands'
  | 'shop-alerts'
  | 'shop-replies'
  | 'station-alarms'
  | 'station-actions'
  | 'station-errors'
  | 'station-faults';

export interface ParsedTopic {
  kind: TopicKind;
  /** deviceId, shopId or stationId, depending on kind. */
  id: string;
}

const KIND_BY_PATH: Record<string, Record<string, TopicKind>> = {
  devices: { events: 'device-events', status: 'device-status', commands: 'device-commands' },
  shops: { alerts: 'shop-alerts', replies: 'shop-replies' },
  stations: { alarms: 'station-alarms', actions: 'station-actions', errors: 'station-errors', faults: 'station-faults' },
};

/** Parse a concrete topic (no wildcards) of the v1 tree; null when it is not one. */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== 'lianfang' || parts[1] !== 'v1') return null;
  const byLeaf = Object.hasOwn(KIND_BY_PATH, parts[2]) ? KIND_BY_PATH[parts[2]] : undefined;
  const kind = byLeaf && Object.hasOwn(byLeaf, parts[4]) ? byLeaf[parts[4]] : undefined;
  if (!kind || !isValidId(parts[3])) return null;
  return { kind, id: parts[3] };
}
