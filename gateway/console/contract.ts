/**
 * The JSON the console's API answers, shared by the gateway (gateway/console/) and the page
 * (gateway/console/web/): types only, so the page's bundle takes nothing of the server with it.
 * Alarm and fault messages are those of the MQTT contract (firmware-contracts/mqtt/payloads.ts).
 */
import type { ConsoleAlarm, ConsoleFault } from '../../firmware-contracts/mqtt/payloads.js';
import type { Shop } from '../registry/registry.js';

export type { ConsoleAlarm, ConsoleFault };

/** A console's scope: a station's alarm-receiving centre, or a compound's receiving point. */
export interface Scope {
  id: string;
  name: string;
  kind: 'station' | 'compound';
  /** The station itself, or the station a compound belongs to. */
  stationId: string;
  /** The IANA zone its times are shown in (the station's, else the gateway's `timeZone`). */
  timeZone: string;
}

/** GET /api/me: who is signed in, what they see, and how the page reaches the live feed. */
export interface Me {
  user: string;
  role: 'officer' | 'admin' | 'installer';
  scopes: Scope[];
  /** Echo in `x-csrf-token` on every POST. */
  csrf: string;
  /** IANA zone the station's times are shown in. */
  timeZone: string;
  gatewayId: string;
  /** MQTT over WebSocket on the console's own port; the password is the session's grant. */
  live: { path: string; username: string; password: string; clientIdPrefix: string };
}

/** A shop as the console shows it with an alarm (docs/concepts.md "Shop records"). */
export type ShopCard = Pick<
  Shop,
  | 'id' | 'name' | 'address' | 'doorPlate' | 'poleNumber' | 'grid' | 'sector' | 'ownerName' | 'ownerPhone'
  | 'dutyName' | 'dutyPhone' | 'cameraIds' | 'lat' | 'lon' | 'stationId' | 'compoundId'
>;

/** A neighbour alerted for an alarm, and what it answered. */
export interface NeighbourAnswer {
  shopId: string;
  name: string;
  ring: number;
  distanceM: number | null;
  lat: number | null;
  lon: number | null;
  /** The latest answer; null: none yet. */
  reply: 'coming' | 'seen' | 'cannot' | null;
  repliedAt: string | null;
}

/** One row of an alarm's audit trail. */
export interface TimelineEntry {
  at: string;
  actor: string;
  action: string;
  fromState: string | null;
  toState: string | null;
  rev: number | null;
  detail: Record<string, unknown>;
}

/** GET /api/alarms/:id */
export interface AlarmDetail {
  alarm: ConsoleAlarm;
  shop: ShopCard;
  neighbours: NeighbourAnswer[];
  timeline: TimelineEntry[];
  /** Other open alarms of the scope near this one (for the map), nearest first. */
  nearby: { alarm: ConsoleAlarm; lat: number | null; lon: number | null; distanceM: number | null }[];
  /** The other shops within the map's radius, to draw the street. */
  street: { id: string; name: string; lat: number; lon: number }[];
}

/** GET /api/alarms: the open alarms of a scope (and those closed since `closedSince`). */
export interface AlarmList {
  scope: Scope;
  alarms: ConsoleAlarm[];
  /** Open faults of the scope (the queue's last priority). */
  faults: ConsoleFault[];
  /** The server's time of the snapshot (ISO). */
  at: string;
}

/** Who is on duty in a scope, and the last handover. */
export interface ShiftView {
  scope: Scope;
  onDuty: { user: string; since: string }[];
  lastHandover: { from: string; to: string | null; note: string; at: string } | null;
  /** Is the caller signed on here? */
  mine: boolean;
  /** A station's scope: its compounds' receiving points and who is on duty there. */
  compounds?: { id: string; name: string; onDuty: { user: string; since: string }[] }[];
}

/** A refusal as the API answers it (HTTP 4xx), with the gateway's code. */
export interface ApiError {
  code: string;
  message: string;
  remedy?: string;
  /** The same in Chinese. */
  zh?: { message: string; remedy: string };
}
