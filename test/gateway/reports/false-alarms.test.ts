/**
 * The false-alarm report (gateway/reports/false-alarms.ts) over a real SQLite database built by the
 * store's migrations, with alarms written through the alarm repository: the counts per shop, the
 * rate (false over real + false), test alarms left out, the period, the flag's threshold and its
 * minimum, and --since parsing with its coded error. The database is opened read-only.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { addShop, addStation } from '../../../gateway/registry/registry.js';
import { AlarmRepo } from '../../../gateway/alarm/alarm-repo.js';
import { falseAlarmReport, openDatabaseForReport, parseSince } from '../../../gateway/reports/false-alarms.js';
import { LianfangError } from '../../../gateway/errors.js';

const NOW = new Date('2026-12-01T12:00:00.000Z');
const DAY = 24 * 3600_000;

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lf-rep-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let n = 0;
/** One alarm of `shopId`, raised `daysAgo` before NOW, closed with `disposition` (null: still open). */
function alarm(db: Db, shopId: string, disposition: string | null, o: { daysAgo?: number; test?: boolean; station?: string } = {}): void {
  const id = `A${String(++n).padStart(4, '0')}`;
  const raisedAt = new Date(NOW.getTime() - (o.daysAgo ?? 1) * DAY).toISOString();
  new AlarmRepo(db).insertAlarm({ id, gatewayId: 'gw', shopId, stationId: o.station ?? 'PS1', compoundId: null, state: 'raised', kind: 'panic', duress: false, test: !!o.test, raisedAt, originEventId: null });
  if (disposition) db.prepare("UPDATE alarms SET state = 'closed', disposition = ?, closed_at = ? WHERE id = ?").run(disposition, raisedAt, id);
}

function street(t: { teardown(fn: () => unknown): void }): { dir: string; db: Db } {
  const dir = tempDir(t);
  const db = openDatabase(dir);
  addStation(db, { id: 'PS1', name: 'Station 1' });
  addStation(db, { id: 'PS2', name: 'Station 2' });
  for (const [id, st] of [['S01', 'PS1'], ['S02', 'PS1'], ['S03', 'PS1'], ['S04', 'PS1'], ['S05', 'PS2']] as const) {
    addShop(db, { id, name: `shop ${id}`, address: `road ${id}`, stationId: st });
  }
  return { dir, db };
}

t.test('counts per shop, the rate over real + false, test alarms left out, flagged above the threshold with the minimum', async (t) => {
  const { dir, db } = street(t);
  // S01: 1 real, 3 false, 1 malicious, 1 open, and test alarms both ways → rate 3/4, flagged.
  alarm(db, 'S01', 'real');
  for (let i = 0; i < 3; i++) alarm(db, 'S01', 'false');
  alarm(db, 'S01', 'malicious');
  alarm(db, 'S01', null);
  alarm(db, 'S01', 'test');
  alarm(db, 'S01', 'false', { test: true });
  alarm(db, 'S01', null, { test: true });
  // S02: one false alarm of one: rate 100 %, but below the minimum of decided alarms.
  alarm(db, 'S02', 'false');
  // S03: 2 false of 4, exactly the threshold: not above it.
  alarm(db, 'S03', 'false');
  alarm(db, 'S03', 'false');
  alarm(db, 'S03', 'real');
  alarm(db, 'S03', 'real');
  // S04: only malicious and an old false alarm outside the period: no rate.
  alarm(db, 'S04', 'malicious');
  alarm(db, 'S04', 'false', { daysAgo: 40 });
  // S05 (another station): 3 false of 3.
  for (let i = 0; i < 3; i++) alarm(db, 'S05', 'false', { station: 'PS2' });
  db.close();

  const ro = openDatabaseForReport(dir);
  t.teardown(() => ro.close());
  t.throws(() => ro.prepare("UPDATE alarms SET disposition = 'real'").run(), 'the report opens the database read-only');
  const rows = falseAlarmReport(ro, { since: parseSince('30d', NOW), ratePercent: 50, minDecided: 3 });
  const by = new Map(rows.map((r) => [r.shopId, r]));
  t.same(by.get('S01'), { shopId: 'S01', name: 'shop S01', stationId: 'PS1', alarms: 6, real: 1, false: 3, malicious: 1, open: 1, falseAlarmRate: 0.75, flagged: true });
  t.same(by.get('S02'), { shopId: 'S02', name: 'shop S02', stationId: 'PS1', alarms: 1, real: 0, false: 1, malicious: 0, open: 0, falseAlarmRate: 1, flagged: false }, 'one of one is not flagged');
  t.match(by.get('S03'), { alarms: 4, real: 2, false: 2, falseAlarmRate: 0.5, flagged: false }, 'at the threshold is not above it');
  t.match(by.get('S04'), { alarms: 1, malicious: 1, false: 0, falseAlarmRate: null, flagged: false }, 'the 40-day-old alarm is outside 30d');
  t.match(by.get('S05'), { stationId: 'PS2', alarms: 3, false: 3, falseAlarmRate: 1, flagged: true });
  t.same(rows.map((r) => r.shopId), ['S05', 'S01', 'S02', 'S03', 'S04'], 'flagged first, then by rate');

  // The threshold and the minimum are what the caller gives.
  const strict = falseAlarmReport(ro, { since: parseSince('30d', NOW), ratePercent: 40, minDecided: 1 });
  t.same(strict.filter((r) => r.flagged).map((r) => r.shopId).sort(), ['S01', 'S02', 'S03', 'S05']);
  // The period: 60d takes in S04's old false alarm; a station filter keeps its shops only.
  t.match(falseAlarmReport(ro, { since: parseSince('60d', NOW), ratePercent: 50, minDecided: 3 }).find((r) => r.shopId === 'S04'), { alarms: 2, false: 1, falseAlarmRate: 1 });
  t.same(falseAlarmReport(ro, { since: parseSince('30d', NOW), ratePercent: 50, minDecided: 3, stationId: 'PS2' }).map((r) => r.shopId), ['S05']);
  t.same(falseAlarmReport(ro, { since: parseSince('12h', NOW), ratePercent: 50, minDecided: 3 }), [], 'nothing raised in the last 12 hours');
  // An end (the console's periods): before it only; 60d to 30d ago holds S04's old false alarm alone.
  t.same(
    falseAlarmReport(ro, { since: parseSince('60d', NOW), until: parseSince('30d', NOW), ratePercent: 50, minDecided: 3 }).map((r) => [r.shopId, r.alarms, r.false]),
    [['S04', 1, 1]],
  );
});

t.test('--since: durations and ISO dates; anything else is LF_ERR_BAD_SINCE', async (t) => {
  t.equal(parseSince('7d', NOW).toISOString(), '2026-11-24T12:00:00.000Z');
  t.equal(parseSince('12h', NOW).toISOString(), '2026-12-01T00:00:00.000Z');
  t.equal(parseSince('2026-11-01', NOW).toISOString(), '2026-11-01T00:00:00.000Z', 'a date is midnight UTC');
  t.equal(parseSince('2026-11-01T08:30', NOW).toISOString(), '2026-11-01T08:30:00.000Z', 'no offset = UTC');
  t.equal(parseSince('2026-11-01T08:30:00+08:00', NOW).toISOString(), '2026-11-01T00:30:00.000Z');
  for (const bad of ['', '30', 'd', '0d', '-3d', '30 days', '3w', 'yesterday', '2026-02-31', '2026-13-01', '2027-01-01', '99999d']) {
    const err = t.throws(() => parseSince(bad, NOW), `"${bad}" is refused`) as unknown;
    t.ok(err instanceof LianfangError && err.code === 'LF_ERR_BAD_SINCE', `"${bad}": LF_ERR_BAD_SINCE`);
  }
});

t.test('no database in the data directory: LF_ERR_NOT_FOUND, and nothing is created', async (t) => {
  const dir = tempDir(t);
  const err = t.throws(() => openDatabaseForReport(dir)) as unknown;
  t.ok(err instanceof LianfangError && err.code === 'LF_ERR_NOT_FOUND');
  t.notOk(existsSync(join(dir, 'lianfang.db')), 'no database was created');
});
