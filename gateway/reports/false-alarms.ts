/**
 * The false-alarm report (issue 8, "False-alarm control"): per shop, the alarms raised in a period,
 * how many an officer closed `real`, `false` or `malicious`, and the false-alarm rate, false over
 * real + false. Test alarms (the `test` flag, or closed with disposition `test`) are not alarms of
 * the shop and are left out. A shop above the configured rate, with enough decided alarms for the
 * rate to mean something, is flagged for a visit. Read-only: it never writes the database.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DB_FILE, openDatabaseFile, type Db } from '../store/db.js';
import { LATEST_VERSION } from '../store/migrations.js';
import { lfError } from '../errors.js';

export interface FalseAlarmOptions {
  /** Alarms raised at or after this instant. */
  since: Date;
  /** … and before this instant (default: no end). */
  until?: Date;
  /** Flag when false / (real + false) is above this many percent. */
  ratePercent: number;
  /** … and at least this many alarms were closed real or false. */
  minDecided: number;
  /** Only the shops of this station (or compound receiving point). */
  stationId?: string;
}

export interface FalseAlarmRow {
  shopId: string;
  name: string | null;
  stationId: string;
  /** Every alarm of the period but test alarms, whatever its state. */
  alarms: number;
  real: number;
  false: number;
  malicious: number;
  /** Not closed yet (or cancelled and not yet closed by an officer): no disposition. */
  open: number;
  /** false / (real + false), to three decimals; null when nothing was closed real or false. */
  falseAlarmRate: number | null;
  flagged: boolean;
}

const MAX_SINCE_DAYS = 3660;

/**
 * `7d`, `30d`, `12h` (back from `now`) or an ISO date (`2026-11-01`, `2026-11-01T08:00:00Z`; a date
 * without an offset is taken as UTC). Anything else, zero, or a time in the future is LF_ERR_BAD_SINCE.
 */
export function parseSince(input: string, now: Date): Date {
  const v = input.trim();
  const rel = /^(\d{1,6})([dh])$/.exec(v);
  if (rel) {
    const n = Number(rel[1]);
    const hours = rel[2] === 'd' ? n * 24 : n;
    if (n < 1 || hours > MAX_SINCE_DAYS * 24) throw lfError('LF_ERR_BAD_SINCE', JSON.stringify(input), `a duration from 1h to ${MAX_SINCE_DAYS}d`);
    return new Date(now.getTime() - hours * 3600_000);
  }
  const iso = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)?)?$/.exec(v);
  if (iso) {
    // Date.parse reads a date-time without an offset as local time: make every form explicit.
    const text = iso[4] === undefined ? `${v}T00:00:00Z` : iso[7] === undefined ? `${v}Z` : v;
    const t = Date.parse(text);
    const [y, mo, d] = [Number(iso[1]), Number(iso[2]), Number(iso[3])];
    const day = new Date(Date.UTC(y, mo - 1, d));
    // Date.parse accepts 2026-02-31 as March 3rd on some engines: the calendar date must exist.
    const real = day.getUTCFullYear() === y && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d;
    if (!Number.isFinite(t) || !real) throw lfError('LF_ERR_BAD_SINCE', JSON.stringify(input), 'not a calendar date');
    if (t > now.getTime()) throw lfError('LF_ERR_BAD_SINCE', JSON.stringify(input), 'it is in the future');
    return new Date(t);
  }
  throw lfError('LF_ERR_BAD_SINCE', JSON.stringify(input), 'expected a duration such as 30d or 12h, or an ISO date');
}

/**
 * Open the data directory's database for reading only: nothing is created, migrated or tightened,
 * and a running gateway is not disturbed (WAL lets a reader in beside its writer).
 */
export function openDatabaseForReport(dataDir: string): Db {
  const file = join(dataDir, DB_FILE);
  if (!existsSync(file)) throw lfError('LF_ERR_NOT_FOUND', 'database', file);
  const db = openDatabaseFile(file, { readonly: true });
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > LATEST_VERSION) {
    db.close();
    throw lfError('LF_ERR_DB_TOO_NEW', version, LATEST_VERSION);
  }
  return db;
}

export function falseAlarmReport(db: Db, o: FalseAlarmOptions): FalseAlarmRow[] {
  // raised_at is ISO 8601 UTC with milliseconds (…T08:00:00.000Z): text order is time order.
  const rows = db
    .prepare(
      `SELECT a.shop_id AS shopId, s.name AS name, a.station_id AS stationId,
              count(*) AS alarms,
              coalesce(sum(a.disposition = 'real'), 0) AS real,
              coalesce(sum(a.disposition = 'false'), 0) AS false,
              coalesce(sum(a.disposition = 'malicious'), 0) AS malicious,
              coalesce(sum(a.disposition IS NULL), 0) AS open
         FROM alarms a LEFT JOIN shops s ON s.id = a.shop_id
        WHERE a.raised_at >= @since AND (@until IS NULL OR a.raised_at < @until)
          AND a.test = 0 AND a.disposition IS NOT 'test'
          AND (@station IS NULL OR a.station_id = @station OR a.compound_id = @station)
        GROUP BY a.shop_id, a.station_id
        ORDER BY a.shop_id, a.station_id`,
    )
    .all({ since: o.since.toISOString(), until: o.until?.toISOString() ?? null, station: o.stationId ?? null }) as Omit<FalseAlarmRow, 'falseAlarmRate' | 'flagged'>[];
  return rows
    .map((r) => {
      const decided = r.real + r.false;
      return {
        ...r,
        falseAlarmRate: decided === 0 ? null : Math.round((r.false / decided) * 1000) / 1000,
        // In integers: false / decided > percent / 100, without rounding at the threshold.
        flagged: decided >= o.minDecided && r.false * 100 > o.ratePercent * decided,
      };
    })
    .sort((a, b) => Number(b.flagged) - Number(a.flagged) || (b.falseAlarmRate ?? -1) - (a.falseAlarmRate ?? -1) || a.shopId.localeCompare(b.shopId));
}
