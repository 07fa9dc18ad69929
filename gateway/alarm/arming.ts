/**
 * Arming a shop (issue 9 "Door contacts"; README "Arming and door contacts"): armed or disarmed by
 * hand (a keypad's `*` PIN `*1#` / `*` PIN `#`, `lianfang shop arm|disarm`) or by a daily schedule
 * in the shop's station's time zone. The schedule's changes are rows in `deadlines` (kind
 * `schedule`), so a restart re-arms them; a manual change holds until the schedule's next change,
 * which sets the state the schedule says. A door opening while armed starts an entry delay, also a
 * row in `deadlines` (kind `entry-delay`); a disarm ends it.
 *
 * These functions run inside the caller's transaction: the running gateway's writer (through the
 * engine), or the CLI's own transaction on a stopped gateway's database. Every change is an audit
 * row with who made it (`device:<id>`, `cli:<user>`, `schedule`).
 */
import type { Db } from '../store/db.js';
import { iso } from '../clock.js';
import { lfError } from '../errors.js';
import { auditRow } from '../store/audit.js';

/** Stations without a time zone of their own are in this one (docs/concepts.md "Shop records"). */
export const DEFAULT_TIME_ZONE = 'Asia/Shanghai';

/** Who changes an arming by the schedule, in audit rows. */
export const SCHEDULE_ACTOR = 'schedule';

/** A daily schedule: armed from `armAt` to `disarmAt`, wall-clock HH:MM in the station's time zone. */
export interface Schedule {
  armAt: string;
  disarmAt: string;
}

export interface Arming {
  shopId: string;
  armed: boolean;
  changedAt: string | null;
  changedBy: string | null;
  schedule: Schedule | null;
  /** A running entry delay: the door event that started it, its device, when it expires. */
  entry: { eventId: number; deviceId: string; dueAt: number } | null;
}

const HHMM = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** `23:00-06:00` → a schedule; `none` → null. Throws LF_ERR_INVALID_ARGUMENT. */
export function parseSchedule(text: string): Schedule | null {
  if (text.trim().toLowerCase() === 'none') return null;
  const [armAt, disarmAt, ...rest] = text.trim().split('-');
  if (rest.length || !armAt || !disarmAt || !HHMM.test(armAt) || !HHMM.test(disarmAt)) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--schedule', 'ARM-DISARM as HH:MM-HH:MM in the station\'s time zone (e.g. 23:00-06:00), or none');
  }
  if (armAt === disarmAt) throw lfError('LF_ERR_INVALID_ARGUMENT', '--schedule', 'the arming and disarming times must differ');
  return { armAt, disarmAt };
}

export function formatSchedule(s: Schedule | null): string {
  return s ? `${s.armAt}-${s.disarmAt}` : 'none';
}

const minuteOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

const formatters = new Map<string, Intl.DateTimeFormat>();

/** A formatter for `timeZone`, or undefined when the zone is not one Intl knows. */
function formatter(timeZone: string): Intl.DateTimeFormat | undefined {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch {
      return undefined;
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  return formatter(timeZone) !== undefined;
}

/** The wall clock in `timeZone` at `ms`. */
export function wallClock(timeZone: string, ms: number): { y: number; mo: number; d: number; minute: number; asUtcMs: number } {
  const parts = formatter(timeZone)!.formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const [y, mo, d, h, mi, s] = [get('year'), get('month'), get('day'), get('hour'), get('minute'), get('second')];
  return { y, mo, d, minute: h * 60 + mi, asUtcMs: Date.UTC(y, mo - 1, d, h, mi, s) };
}

/** The instant at which the wall clock of `timeZone` shows minute `minute` of the day y-mo-d. */
export function instantOf(timeZone: string, y: number, mo: number, d: number, minute: number): number {
  const wanted = Date.UTC(y, mo - 1, d, 0, minute);
  // The zone's offset at the guess, applied twice so an offset change between the two is followed.
  let t = wanted;
  for (let i = 0; i < 2; i++) t = wanted - (wallClock(timeZone, t).asUtcMs - Math.floor(t / 1000) * 1000);
  return t;
}

/** Whether the schedule says armed at `nowMs` (armed from armAt inclusive to disarmAt exclusive). */
export function scheduledArmed(s: Schedule, timeZone: string, nowMs: number): boolean {
  const m = wallClock(timeZone, nowMs).minute;
  const a = minuteOf(s.armAt);
  const d = minuteOf(s.disarmAt);
  return a < d ? m >= a && m < d : m >= a || m < d;
}

/** The schedule's first change after `nowMs`: when, and to what. */
export function nextChange(s: Schedule, timeZone: string, nowMs: number): { atMs: number; armed: boolean } {
  let best: { atMs: number; armed: boolean } | undefined;
  for (let day = -1; day <= 2; day++) {
    const { y, mo, d } = wallClock(timeZone, nowMs + day * 86_400_000);
    for (const [hhmm, armed] of [[s.armAt, true], [s.disarmAt, false]] as const) {
      const atMs = instantOf(timeZone, y, mo, d, minuteOf(hhmm));
      if (atMs > nowMs && (!best || atMs < best.atMs)) best = { atMs, armed };
    }
  }
  return best!;
}

interface ArmingDbRow {
  shopId: string;
  armed: number;
  changedAt: string | null;
  changedBy: string | null;
  armAt: string | null;
  disarmAt: string | null;
  entryEventId: number | null;
  entryDeviceId: string | null;
  entryDueAt: number | null;
}

const SELECT = `SELECT a.shop_id AS shopId, a.armed, a.changed_at AS changedAt, a.changed_by AS changedBy, a.arm_at AS armAt, a.disarm_at AS disarmAt,
  a.entry_event_id AS entryEventId, a.entry_device_id AS entryDeviceId,
  (SELECT min(due_at) FROM deadlines d WHERE d.shop_id = a.shop_id AND d.kind = 'entry-delay' AND d.done_at IS NULL) AS entryDueAt
  FROM shop_arming a`;

function toArming(r: ArmingDbRow): Arming {
  return {
    shopId: r.shopId,
    armed: r.armed === 1,
    changedAt: r.changedAt,
    changedBy: r.changedBy,
    schedule: r.armAt && r.disarmAt ? { armAt: r.armAt, disarmAt: r.disarmAt } : null,
    entry: r.entryEventId !== null && r.entryDeviceId !== null && r.entryDueAt !== null ? { eventId: r.entryEventId, deviceId: r.entryDeviceId, dueAt: r.entryDueAt } : null,
  };
}

/** A shop's arming (disarmed, no schedule, when it has no row). */
export function getArming(db: Db, shopId: string): Arming {
  const r = db.prepare(`${SELECT} WHERE a.shop_id = ?`).get(shopId) as ArmingDbRow | undefined;
  return r ? toArming(r) : { shopId, armed: false, changedAt: null, changedBy: null, schedule: null, entry: null };
}

/** Every shop's arming that has a row, by shop id (for `shop list`). */
export function listArming(db: Db): Map<string, Arming> {
  return new Map((db.prepare(SELECT).all() as ArmingDbRow[]).map((r) => [r.shopId, toArming(r)]));
}

/** The time zone of a shop's station (DEFAULT_TIME_ZONE when it has none, or one this runtime does not know). */
export function shopTimeZone(db: Db, shopId: string): string {
  const r = db.prepare('SELECT st.time_zone AS tz FROM shops s JOIN stations st ON st.id = s.station_id WHERE s.id = ?').get(shopId) as { tz: string | null } | undefined;
  return r?.tz && isTimeZone(r.tz) ? r.tz : DEFAULT_TIME_ZONE;
}

function requireShop(db: Db, shopId: string): void {
  if (!db.prepare('SELECT 1 FROM shops WHERE id = ?').get(shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
}

function ensureRow(db: Db, shopId: string): void {
  db.prepare('INSERT OR IGNORE INTO shop_arming (shop_id) VALUES (?)').run(shopId);
}


/** End a shop's running entry delay (its deadline done, its origin forgotten). */
function endEntryDelay(db: Db, shopId: string, nowMs: number): boolean {
  const ended = db.prepare("UPDATE deadlines SET done_at = ? WHERE shop_id = ? AND kind = 'entry-delay' AND done_at IS NULL").run(nowMs, shopId).changes > 0;
  db.prepare('UPDATE shop_arming SET entry_event_id = NULL, entry_device_id = NULL WHERE shop_id = ?').run(shopId);
  return ended;
}

/**
 * Arm or disarm a shop, an audit row `armed` / `disarmed` even when it already was (who tried is
 * worth knowing). A person's disarm (a keypad's PIN, the CLI) ends a running entry delay (detail
 * `entryDelayEnded`); the schedule's does not: a door opened at 05:59 by someone who cannot disarm
 * still ends in an intrusion when a schedule disarms at 06:00. Returns whether the state changed
 * and whether an entry delay was ended.
 */
export function setArmed(db: Db, shopId: string, armed: boolean, actor: string, nowMs: number): { changed: boolean; entryDelayEnded: boolean } {
  requireShop(db, shopId);
  const before = getArming(db, shopId);
  ensureRow(db, shopId);
  const at = iso(nowMs);
  db.prepare('UPDATE shop_arming SET armed = ?, changed_at = ?, changed_by = ? WHERE shop_id = ?').run(armed ? 1 : 0, at, actor, shopId);
  const entryDelayEnded = !armed && actor !== SCHEDULE_ACTOR && before.entry !== null && endEntryDelay(db, shopId, nowMs);
  auditRow(db, at, actor, armed ? 'armed' : 'disarmed', { shopId, was: before.armed ? 'armed' : 'disarmed', ...(entryDelayEnded ? { entryDelayEnded: true } : {}) });
  return { changed: before.armed !== armed, entryDelayEnded };
}

/** Write the schedule's next change as a deadline; returns its due time. */
function addScheduleDeadline(db: Db, shopId: string, s: Schedule, timeZone: string, nowMs: number): number {
  const next = nextChange(s, timeZone, nowMs);
  db.prepare("INSERT INTO deadlines (alarm_id, kind, due_at, shop_id) VALUES (NULL, 'schedule', ?, ?)").run(next.atMs, shopId);
  return next.atMs;
}

/**
 * Set (or, with null, remove) a shop's schedule: its pending change is dropped; a new schedule
 * rules from now (the shop takes the state it says, if different) and its next change is written
 * as a deadline. Removing it leaves the state as it is. Returns the new deadline's due time.
 */
export function setSchedule(db: Db, shopId: string, s: Schedule | null, actor: string, nowMs: number): { dueAt: number | null } {
  requireShop(db, shopId);
  ensureRow(db, shopId);
  db.prepare("UPDATE deadlines SET done_at = ? WHERE shop_id = ? AND kind = 'schedule' AND done_at IS NULL").run(nowMs, shopId);
  db.prepare('UPDATE shop_arming SET arm_at = ?, disarm_at = ? WHERE shop_id = ?').run(s?.armAt ?? null, s?.disarmAt ?? null, shopId);
  const timeZone = shopTimeZone(db, shopId);
  auditRow(db, iso(nowMs), actor, s ? 'arming-schedule-set' : 'arming-schedule-removed', { shopId, schedule: formatSchedule(s), timeZone });
  if (!s) return { dueAt: null };
  const armed = scheduledArmed(s, timeZone, nowMs);
  if (getArming(db, shopId).armed !== armed) setArmed(db, shopId, armed, SCHEDULE_ACTOR, nowMs);
  return { dueAt: addScheduleDeadline(db, shopId, s, timeZone, nowMs) };
}

/**
 * A schedule deadline of `shopId` fell due (at its time, or late after a restart): the shop takes
 * the state the schedule says now, whatever a manual change made it, and the next change is
 * written. Returns what changed and the next due time (null: the schedule was removed).
 */
export function runSchedule(db: Db, shopId: string, nowMs: number): { changed: boolean; armed: boolean; entryDelayEnded: boolean; dueAt: number | null } {
  const arming = getArming(db, shopId);
  if (!arming.schedule) return { changed: false, armed: arming.armed, entryDelayEnded: false, dueAt: null };
  const timeZone = shopTimeZone(db, shopId);
  const armed = scheduledArmed(arming.schedule, timeZone, nowMs);
  const { changed, entryDelayEnded } = arming.armed === armed ? { changed: false, entryDelayEnded: false } : setArmed(db, shopId, armed, SCHEDULE_ACTOR, nowMs);
  return { changed, armed, entryDelayEnded, dueAt: addScheduleDeadline(db, shopId, arming.schedule, timeZone, nowMs) };
}

/** Start a shop's entry delay: its deadline, and the door event and device that started it. */
export function startEntryDelay(db: Db, shopId: string, eventId: number, deviceId: string, dueAt: number, nowMs: number): void {
  ensureRow(db, shopId);
  db.prepare('UPDATE shop_arming SET entry_event_id = ?, entry_device_id = ? WHERE shop_id = ?').run(eventId, deviceId, shopId);
  db.prepare("INSERT INTO deadlines (alarm_id, kind, due_at, shop_id) VALUES (NULL, 'entry-delay', ?, ?)").run(dueAt, shopId);
  auditRow(db, iso(nowMs), `device:${deviceId}`, 'entry-delay-started', { shopId, eventId, until: iso(dueAt) });
}

/**
 * A shop's entry delay expired: its origin (the door event and its device) is returned and
 * forgotten; the caller raises the intrusion alarm. Undefined when a person disarmed the shop
 * within it (which forgot the origin).
 */
export function expireEntryDelay(db: Db, shopId: string): { eventId: number; deviceId: string } | undefined {
  const r = db.prepare('SELECT entry_event_id AS eventId, entry_device_id AS deviceId FROM shop_arming WHERE shop_id = ?').get(shopId) as
    | { eventId: number | null; deviceId: string | null }
    | undefined;
  if (!r || r.eventId === null || r.deviceId === null) return undefined;
  db.prepare('UPDATE shop_arming SET entry_event_id = NULL, entry_device_id = NULL WHERE shop_id = ?').run(shopId);
  return { eventId: r.eventId, deviceId: r.deviceId };
}
