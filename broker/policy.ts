/**
 * Who may connect, publish and subscribe: pure functions over data (STYLE.md 4), adapted to Aedes
 * in broker/broker.ts and unit-tested without sockets. Least privilege (README "MQTT topic
 * contract v1"): a device publishes only under its own devices/{id}/…, receives only its own
 * commands and its own shop's alerts, replies only for its own shop; a console acts only for its
 * station. Wildcard subscriptions are refused outright, so `#` and `$SYS/#` never match anything.
 */
import { parseTopic, type ParsedTopic } from '../firmware-contracts/mqtt/topics.js';

export type Principal =
  | { kind: 'device'; deviceId: string; shopId: string }
  /** `session`: a console page's live feed, logged in with that console session's grant (its id hash). */
  | { kind: 'user'; name: string; role: 'officer' | 'installer' | 'admin'; stationId: string | null; session?: string };

export type Decision = { ok: true; topic: ParsedTopic } | { ok: false; reason: string };

const refuse = (reason: string): Decision => ({ ok: false, reason });

/** `+`, `#` and `/` are refused in client ids and usernames: they would alias topics and sessions. */
export function hasForbiddenIdChars(s: string): boolean {
  return /[+#/\u0000]/.test(s);
}

/**
 * Separates a person's username from the rest of their client id (`duty1:console`). Usernames
 * cannot contain it (`user add` takes letters, digits, `_ . @ -`), so the owner of a person's client
 * id is always the part before the first `:`.
 */
export const PERSON_CLIENT_ID_SEPARATOR = ':';

/** The client id a person's program connects with: the username, or `username:suffix`. */
export function personClientId(username: string, suffix?: string): string {
  return suffix ? `${username}${PERSON_CLIENT_ID_SEPARATOR}${suffix}` : username;
}

/**
 * May this principal connect with this client id? A client id names a session, and a new
 * connection with the same id pushes the old one off ([MQTT-3.1.4-2]), so an id belongs to one
 * login: a device's is its username (device id); a person's is their username, or their username,
 * `:` and anything (one person may run several consoles), and never a device's id.
 */
export function checkClientId(p: Principal, clientId: string, isDeviceId: (id: string) => boolean): string | null {
  if (clientId.length === 0) return 'an empty client id is not accepted';
  if (hasForbiddenIdChars(clientId)) return 'client ids must not contain + # /';
  if (p.kind === 'device') return clientId === p.deviceId ? null : 'a device must use its username as client id';
  if (isDeviceId(clientId)) return "a person's client id must not be a device id";
  const own = clientId === p.name || (clientId.startsWith(p.name + PERSON_CLIENT_ID_SEPARATOR) && clientId.length > p.name.length + 1);
  return own ? null : `a person's client id must be their username or start with "username${PERSON_CLIENT_ID_SEPARATOR}"`;
}

/** The station a user may act for over MQTT, or null. Installers provision through the CLI only. */
function stationOf(p: Principal): string | null {
  return p.kind === 'user' && (p.role === 'officer' || p.role === 'admin') ? p.stationId : null;
}

export function canPublish(p: Principal, topic: string): Decision {
  const t = parseTopic(topic);
  if (!t) return refuse('not a lianfang/v1 topic');
  if (p.kind === 'device') {
    if (t.kind === 'device-events' || t.kind === 'device-status') {
      return t.id === p.deviceId ? { ok: true, topic: t } : refuse("another device's topic");
    }
    if (t.kind === 'shop-replies') return t.id === p.shopId ? { ok: true, topic: t } : refuse("another shop's replies");
    return refuse('devices publish only their events, status and their shop\'s replies');
  }
  if (t.kind === 'station-actions') {
    return stationOf(p) === t.id ? { ok: true, topic: t } : refuse('not an officer of this station');
  }
  return refuse('consoles publish only their station\'s actions');
}

/** The LWT a device may set: only its own status topic. Consoles set none. */
export function canSetWill(p: Principal, topic: string): boolean {
  const t = parseTopic(topic);
  return p.kind === 'device' && t?.kind === 'device-status' && t.id === p.deviceId;
}

export function canSubscribe(p: Principal, filter: string): Decision {
  if (/[+#]/.test(filter) || filter.startsWith('$')) return refuse('wildcard and $SYS subscriptions are refused');
  const t = parseTopic(filter);
  if (!t) return refuse('not a lianfang/v1 topic');
  if (p.kind === 'device') {
    if (t.kind === 'device-commands') return t.id === p.deviceId ? { ok: true, topic: t } : refuse("another device's commands");
    if (t.kind === 'shop-alerts') return t.id === p.shopId ? { ok: true, topic: t } : refuse("another shop's alerts");
    return refuse('devices receive only their commands and their shop\'s alerts');
  }
  if (t.kind === 'station-alarms' || t.kind === 'station-errors' || t.kind === 'station-faults') {
    // An admin may look at any scope (issue 11); acting stays with the station's own officers.
    if (p.role === 'admin') return { ok: true, topic: t };
    return stationOf(p) === t.id ? { ok: true, topic: t } : refuse('not an officer of this station');
  }
  return refuse('consoles receive only their station\'s alarms, errors and faults');
}

/** Who a message the gateway sends is for: a shop, a console (station; `fault`: its faults topic) or one device. */
export interface Recipient {
  kind: 'shop' | 'station' | 'device' | 'fault';
  id: string;
}

/** Which recipient a delivery (PUBACK) by this principal on this topic counts for, if any. */
export function deliveryRecipient(p: Principal, topic: string): Recipient | null {
  const d = canSubscribe(p, topic);
  if (!d.ok) return null;
  if (d.topic.kind === 'shop-alerts') return { kind: 'shop', id: d.topic.id };
  // canSubscribe let only the device itself through to its commands.
  if (d.topic.kind === 'device-commands') return { kind: 'device', id: d.topic.id };
  if (d.topic.kind === 'station-alarms' && p.kind === 'user' && p.role === 'officer') return { kind: 'station', id: d.topic.id };
  // A console's faults are outbox rows of their own kind (gateway/faults/fault-store.ts).
  if (d.topic.kind === 'station-faults' && p.kind === 'user' && p.role === 'officer') return { kind: 'fault', id: d.topic.id };
  return null;
}
