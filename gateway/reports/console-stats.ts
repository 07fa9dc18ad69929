/**
 * The console's numbers (issue 11, "Health and numbers"): the statistics of a period, the daily
 * bulletin, and device health, for one scope (a station's every shop, or a compound's), read
 * straight from the database. Pure functions of the database and the instant given: nothing is
 * written, nothing is cached, so a figure on the page is what the rows say when it was asked.
 *
 * Days are calendar days in the scope's time zone (`Scope.timeZone`: its station's, else the
 * configuration's `timeZone`): an alarm at 23:30 in Shanghai is on that day, although it is 15:30
 * UTC. Rows are stored in UTC, so a period is a pair of instants (its first local midnight, the
 * midnight after its last day) and each row is put on its day here, not in SQL.
 *
 * Test alarms (the `test` flag, or closed with disposition `test`) are no alarms of the shop, as in
 * the false-alarm report, which serves the false-alarm share unchanged. Faults of the gateway
 * itself (no shop: disk, database, a bus no shop uses) go to every console and count in every scope,
 * as `fault list --station` lists them.
 */
import type { Db } from '../store/db.js';
import type { Scope } from '../console/contract.js';
import type { Bulletin, BulletinCounts, DayKinds, DeviceHealth, DevicesHealth, DurationStats, FalseShare, Stats } from '../console/contract-reports.js';
import { scopeSql } from '../console/api.js';
import { iso } from '../clock.js';
import { lfError } from '../errors.js';
import { DEFAULT_TIME_ZONE, instantOf, isTimeZone, wallClock } from '../alarm/arming.js';
import { falseAlarmReport } from './false-alarms.js';
import { lastSeenByDevice, newer } from '../registry/device-status.js';
import { lastWalkTests } from '../alarm/test-mode.js';
import { SELF_TEST_META } from '../supervision.js';
import { FAULT_TEXT, ticketOf, type FaultKind, type FaultRecord } from '../faults/fault-store.js';

/** The longest period the statistics take (a year and a day: a leap year, both ends included). */
export const MAX_PERIOD_DAYS = 367;
/** The default period of the statistics: this many days, today included. */
export const DEFAULT_PERIOD_DAYS = 7;

const DAY_RE = /^(\d{4})-(\d\d)-(\d\d)$/;

/** The zone the scope's days are counted in: its own (scopesOf: the station's, else the configuration's), if this runtime knows it. */
export function zoneOf(scope: Pick<Scope, 'timeZone'>): string {
  return isTimeZone(scope.timeZone) ? scope.timeZone : DEFAULT_TIME_ZONE;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The calendar day (YYYY-MM-DD) in `timeZone` at `ms`. */
export function localDay(timeZone: string, ms: number): string {
  const w = wallClock(timeZone, ms);
  return `${pad(w.y, 4)}-${pad(w.mo)}-${pad(w.d)}`;
}

/** `ms` as the wall clock of `timeZone` shows it: `2026-12-01 23:30:00` (for people: the CSV, the bulletin). */
export function localTime(timeZone: string, ms: number): string {
  const w = wallClock(timeZone, ms);
  const s = Math.floor((w.asUtcMs / 1000) % 60);
  return `${localDay(timeZone, ms)} ${pad(Math.floor(w.minute / 60))}:${pad(w.minute % 60)}:${pad(s)}`;
}

/** A day given by a person or a page, checked: a real calendar date. Throws LF_ERR_INVALID_ARGUMENT naming `what`. */
export function parseDay(what: string, value: string): string {
  const m = DAY_RE.exec(value);
  const [y, mo, d] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (!m || t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || y < 2000) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', what, `${JSON.stringify(value)}: expected a calendar date YYYY-MM-DD`);
  }
  return value;
}

/** `day` plus `n` calendar days. */
export function addDays(day: string, n: number): string {
  const [y, mo, d] = day.split('-').map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d + n));
  return `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** The instant the day begins in `timeZone` (its first local midnight). */
export function dayStartMs(timeZone: string, day: string): number {
  const [y, mo, d] = day.split('-').map(Number) as [number, number, number];
  return instantOf(timeZone, y, mo, d, 0);
}

/** A period of whole local days, `from` to `to` both included, and the instants that bound it. */
export interface Period {
  timeZone: string;
  from: string;
  to: string;
  days: string[];
  /** The first instant of `from` (inclusive) and of the day after `to` (exclusive), ms. */
  startMs: number;
  endMs: number;
}

export function periodOf(timeZone: string, from: string, to: string): Period {
  if (from > to) throw lfError('LF_ERR_INVALID_ARGUMENT', 'from', `${from} is after to=${to}`);
  const days: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) {
    days.push(d);
    if (days.length > MAX_PERIOD_DAYS) throw lfError('LF_ERR_INVALID_ARGUMENT', 'from', `a period of at most ${MAX_PERIOD_DAYS} days`);
  }
  return { timeZone, from, to, days, startMs: dayStartMs(timeZone, from), endMs: dayStartMs(timeZone, addDays(to, 1)) };
}

/** The period a request asks for (`from`, `to`, either missing): by default the last DEFAULT_PERIOD_DAYS days, today included. */
export function requestedPeriod(timeZone: string, nowMs: number, from?: string | null, to?: string | null): Period {
  const end = to ? parseDay('to', to) : from ? addDays(parseDay('from', from), DEFAULT_PERIOD_DAYS - 1) : localDay(timeZone, nowMs);
  const start = from ? parseDay('from', from) : addDays(end, -(DEFAULT_PERIOD_DAYS - 1));
  return periodOf(timeZone, start, end);
}

/** One alarm as the numbers need it, with its shop and the first times of what happened to it. */
export interface AlarmFacts {
  id: string;
  shopId: string;
  shopName: string | null;
  address: string | null;
  grid: string | null;
  sector: string | null;
  stationId: string;
  compoundId: string | null;
  kind: string;
  duress: boolean;
  /** A test alarm: the flag, or closed with disposition test. */
  test: boolean;
  state: string;
  disposition: string | null;
  takenBy: string | null;
  patrol: string | null;
  raisedAt: string;
  closedAt: string | null;
  ackAt: string | null;
  dispatchedAt: string | null;
  firstReplyAt: string | null;
  /** Neighbours alerted. */
  alerted: number;
  dispatchNote: string | null;
  closeNote: string | null;
}

/** The alarms of a scope raised in [startMs, endMs), oldest first. */
export function alarmFacts(db: Db, scope: Scope, startMs: number, endMs: number): AlarmFacts[] {
  const w = scopeSql(scope, 'a.station_id', 'a.compound_id');
  // raised_at is ISO UTC with milliseconds: text order is time order.
  const rows = db
    .prepare(
      `SELECT a.id, a.shop_id AS shopId, s.name AS shopName, s.address, s.grid, s.sector, a.station_id AS stationId, a.compound_id AS compoundId,
              a.kind, a.duress, (a.test = 1 OR a.disposition IS 'test') AS test, a.state, a.disposition, a.taken_by AS takenBy, a.patrol,
              a.raised_at AS raisedAt, a.closed_at AS closedAt,
              (SELECT min(u.at) FROM audit u WHERE u.alarm_id = a.id AND u.action = 'ack') AS ackAt,
              (SELECT min(u.at) FROM audit u WHERE u.alarm_id = a.id AND u.action = 'dispatch') AS dispatchedAt,
              (SELECT min(r.at) FROM alarm_replies r WHERE r.alarm_id = a.id) AS firstReplyAt,
              (SELECT count(*) FROM alarm_recipients r WHERE r.alarm_id = a.id) AS alerted,
              (SELECT json_extract(u.detail, '$.note') FROM audit u WHERE u.alarm_id = a.id AND u.action = 'dispatch' ORDER BY u.id DESC LIMIT 1) AS dispatchNote,
              (SELECT json_extract(u.detail, '$.note') FROM audit u WHERE u.alarm_id = a.id AND u.action = 'close' ORDER BY u.id DESC LIMIT 1) AS closeNote
         FROM alarms a LEFT JOIN shops s ON s.id = a.shop_id
        WHERE a.raised_at >= ? AND a.raised_at < ? AND ${w.sql}
        ORDER BY a.raised_at, a.id`,
    )
    .all(iso(startMs), iso(endMs), w.param) as (Omit<AlarmFacts, 'duress' | 'test'> & { duress: number; test: number })[];
  return rows.map((r) => ({ ...r, duress: r.duress === 1, test: r.test === 1 }));
}

/** The kind an alarm counts as: a duress alarm as duress (whatever it was raised as). */
export function countedKind(a: Pick<AlarmFacts, 'kind' | 'duress'>): keyof Omit<DayKinds, 'day'> {
  if (a.duress || a.kind === 'duress') return 'duress';
  return a.kind === 'intrusion' || a.kind === 'help' ? a.kind : 'panic';
}

const seconds = (fromIso: string, toIso: string) => (Date.parse(toIso) - Date.parse(fromIso)) / 1000;
const tenth = (x: number) => Math.round(x * 10) / 10;

/** n, nearest-rank p50 and p90, and the maximum of `values` (seconds, to one decimal). */
export function durationStats(values: number[]): DurationStats {
  const v = [...values].sort((a, b) => a - b);
  const rank = (p: number) => tenth(v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]!);
  if (v.length === 0) return { n: 0, p50: null, p90: null, max: null };
  return { n: v.length, p50: rank(50), p90: rank(90), max: tenth(v[v.length - 1]!) };
}

/** Faults of a scope (and the gateway's own) raised or fixed in [startMs, endMs). */
function faultTimes(db: Db, scope: Scope, startMs: number, endMs: number): { raisedAt: string; fixedAt: string | null }[] {
  const w = scopeSql(scope);
  return db
    .prepare(
      `SELECT raised_at AS raisedAt, CASE WHEN ticket = 'fixed' THEN fixed_at END AS fixedAt FROM faults
        WHERE (${w.sql} OR station_id IS NULL)
          AND ((raised_at >= @s AND raised_at < @e) OR (ticket = 'fixed' AND fixed_at >= @s AND fixed_at < @e))`,
    )
    .all({ s: iso(startMs), e: iso(endMs) }, w.param) as { raisedAt: string; fixedAt: string | null }[];
}

export interface StatsOptions {
  /** reports.falseAlarmRatePercent and reports.falseAlarmMinDecided. */
  ratePercent: number;
  minDecided: number;
}

/** GET /api/stats: the statistics of a period (contract-reports.ts `Stats`). */
export function consoleStats(db: Db, scope: Scope, period: Period, o: StatsOptions): Stats {
  const tz = period.timeZone;
  const inPeriod = (t: string | null) => t !== null && Date.parse(t) >= period.startMs && Date.parse(t) < period.endMs;
  const alarms = alarmFacts(db, scope, period.startMs, period.endMs).filter((a) => !a.test);
  const perDay = new Map<string, DayKinds>(period.days.map((day) => [day, { day, panic: 0, intrusion: 0, help: 0, duress: 0 }]));
  for (const a of alarms) {
    const row = perDay.get(localDay(tz, Date.parse(a.raisedAt)));
    if (row) row[countedKind(a)]++;
  }
  const faultsPerDay = new Map(period.days.map((day) => [day, { day, opened: 0, fixed: 0 }]));
  let opened = 0;
  let fixed = 0;
  for (const f of faultTimes(db, scope, period.startMs, period.endMs)) {
    if (inPeriod(f.raisedAt)) {
      opened++;
      faultsPerDay.get(localDay(tz, Date.parse(f.raisedAt)))!.opened++;
    }
    if (inPeriod(f.fixedAt)) {
      fixed++;
      faultsPerDay.get(localDay(tz, Date.parse(f.fixedAt!)))!.fixed++;
    }
  }
  const falseShare: FalseShare[] = falseAlarmReport(db, {
    since: new Date(period.startMs),
    until: new Date(period.endMs),
    ratePercent: o.ratePercent,
    minDecided: o.minDecided,
    stationId: scope.id,
  }).map((r) => ({
    shopId: r.shopId,
    name: r.name,
    total: r.alarms,
    real: r.real,
    false: r.false,
    malicious: r.malicious,
    open: r.open,
    sharePercent: r.real + r.false === 0 ? null : tenth((r.false * 100) / (r.real + r.false)),
    flagged: r.flagged,
  }));
  return {
    scope,
    timeZone: tz,
    from: period.from,
    to: period.to,
    perDay: [...perDay.values()],
    falseShare,
    threshold: { ratePercent: o.ratePercent, minDecided: o.minDecided },
    ackSeconds: durationStats(alarms.filter((a) => a.ackAt).map((a) => seconds(a.raisedAt, a.ackAt!))),
    firstReplySeconds: durationStats(alarms.filter((a) => a.firstReplyAt).map((a) => seconds(a.raisedAt, a.firstReplyAt!))),
    faults: { opened, fixed, perDay: [...faultsPerDay.values()] },
  };
}

function counts(alarms: AlarmFacts[]): BulletinCounts {
  const n = (p: (a: AlarmFacts) => boolean) => alarms.filter(p).length;
  return {
    received: alarms.length,
    dispatched: n((a) => a.dispatchedAt !== null),
    real: n((a) => a.disposition === 'real'),
    false: n((a) => a.disposition === 'false'),
    malicious: n((a) => a.disposition === 'malicious'),
    open: n((a) => a.disposition === null),
  };
}

/** The day a bulletin is for when none is asked: yesterday in the scope's zone. */
export function bulletinDay(timeZone: string, nowMs: number, asked?: string | null): string {
  return asked ? parseDay('day', asked) : addDays(localDay(timeZone, nowMs), -1);
}

/** GET /api/bulletin: the daily bulletin of `day` (contract-reports.ts `Bulletin`). */
export function dailyBulletin(db: Db, scope: Scope, timeZone: string, day: string, nowMs: number): Bulletin {
  const { startMs, endMs } = periodOf(timeZone, day, day);
  const all = alarmFacts(db, scope, startMs, endMs);
  const alarms = all.filter((a) => !a.test);
  const w = scopeSql(scope);
  const s = iso(startMs);
  const e = iso(endMs);
  const fault = (cond: string) =>
    (db.prepare(`SELECT count(*) AS n FROM faults WHERE (${w.sql} OR station_id IS NULL) AND ${cond}`).get(w.param, { s, e }) as { n: number }).n;
  const groups = new Map<string, AlarmFacts[]>();
  for (const a of alarms) {
    const key = JSON.stringify([a.grid, a.sector]);
    groups.set(key, [...(groups.get(key) ?? []), a]);
  }
  const byGrid = [...groups.entries()]
    .map(([key, list]) => {
      const [grid, sector] = JSON.parse(key) as [string | null, string | null];
      return { grid, sector, ...counts(list) };
    })
    // Not given last; then by grid and sector as a person reads them (网格2 before 网格10).
    .sort((a, b) => cmpLabel(a.grid, b.grid) || cmpLabel(a.sector, b.sector));
  return {
    day,
    timeZone,
    scope,
    start: s,
    end: e,
    totals: {
      ...counts(alarms),
      test: all.length - alarms.length,
      faultsOpened: fault('raised_at >= @s AND raised_at < @e'),
      faultsFixed: fault("ticket = 'fixed' AND fixed_at >= @s AND fixed_at < @e"),
      // Open at the day's end: raised before it, and not both cleared and its ticket closed before it.
      faultsOpen: fault("raised_at < @e AND (cleared_at IS NULL OR cleared_at >= @e OR ticket != 'fixed' OR fixed_at >= @e)"),
    },
    byGrid,
    at: iso(nowMs),
  };
}

const collator = new Intl.Collator('zh', { numeric: true });
function cmpLabel(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return collator.compare(a, b);
}

/** Device id → its last self-test the supervisor stored (ISO). */
export function lastSelfTests(db: Db): Map<string, string> {
  const rows = db.prepare('SELECT substr(key, ?) AS id, value FROM meta WHERE substr(key, 1, ?) = ?').all(SELF_TEST_META.length + 1, SELF_TEST_META.length, SELF_TEST_META) as {
    id: string;
    value: string;
  }[];
  return new Map(rows.filter((r) => Number.isFinite(Number(r.value))).map((r) => [r.id, iso(Number(r.value))]));
}

/**
 * GET /api/health/devices: every device of the scope that is not revoked, with its open faults
 * (`openFaults`: the fault store's, oldest first), when it was last heard and last tested.
 */
export function devicesHealth(db: Db, scope: Scope, openFaults: readonly FaultRecord[], nowMs: number): DevicesHealth {
  const w = scopeSql(scope, 's.station_id', 's.compound_id');
  const devices = db
    .prepare(
      `SELECT d.id AS deviceId, d.shop_id AS shopId, s.name AS shopName, d.type, d.transport FROM devices d JOIN shops s ON s.id = d.shop_id
        WHERE d.revoked_at IS NULL AND ${w.sql} ORDER BY d.shop_id, d.id`,
    )
    .all(w.param) as Pick<DeviceHealth, 'deviceId' | 'shopId' | 'shopName' | 'type' | 'transport'>[];
  const seen = lastSeenByDevice(db);
  const walked = lastWalkTests(db);
  const selfTested = lastSelfTests(db);
  const byDevice = new Map<string, FaultRecord[]>();
  for (const f of openFaults) if (f.deviceId && f.clearedAt === null) byDevice.set(f.deviceId, [...(byDevice.get(f.deviceId) ?? []), f]);
  const out: DeviceHealth[] = devices.map((d) => {
    const lastWalkTest = walked.get(d.deviceId) ?? null;
    const lastSelfTest = selfTested.get(d.deviceId) ?? null;
    return {
      ...d,
      lastSeen: seen.get(d.deviceId) ?? null,
      lastWalkTest,
      lastSelfTest,
      lastTested: newer(lastWalkTest, lastSelfTest),
      problems: (byDevice.get(d.deviceId) ?? []).map((f) => ({
        faultId: f.faultId,
        kind: f.kind,
        text: FAULT_TEXT[f.kind as FaultKind] ?? { en: f.kind, zh: f.kind },
        since: f.raisedAt,
        forSeconds: Math.max(0, Math.round((nowMs - Date.parse(f.raisedAt)) / 1000)),
        ticket: ticketOf(f),
      })),
    };
  });
  // Those with problems first, the longest-standing first; then as listed.
  const oldest = (d: DeviceHealth) => (d.problems.length ? Math.min(...d.problems.map((p) => Date.parse(p.since))) : Number.MAX_SAFE_INTEGER);
  out.sort((a, b) => oldest(a) - oldest(b));
  return { scope, withProblems: out.filter((d) => d.problems.length > 0).length, devices: out, at: iso(nowMs) };
}
