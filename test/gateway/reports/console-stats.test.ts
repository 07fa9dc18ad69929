/**
 * The console's numbers (gateway/reports/console-stats.ts, alarms-csv.ts, bulletin-html.ts) on the
 * seeded street (test/helpers/console-seed.ts) in a real SQLite database: every figure of the
 * statistics, the bulletin and device health against the figures the seed worked out by hand, the
 * day boundary in Asia/Shanghai, the scope (a compound's figures count only its shops), the CSV's
 * BOM, CRLF, quoting and formula guard, and the printable page's escaping.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import type { Scope } from '../../../gateway/console/contract.js';
import { bulletinDay, consoleStats, dailyBulletin, devicesHealth, periodOf, requestedPeriod, zoneOf } from '../../../gateway/reports/console-stats.js';
import { alarmsCsv, alarmsCsvName, safeCell } from '../../../gateway/reports/alarms-csv.js';
import { bulletinHtml } from '../../../gateway/reports/bulletin-html.js';
import { FaultStore } from '../../../gateway/faults/fault-store.js';
import { SEED_BULLETIN_DAY, SEED_EXPECTED, SEED_NOW, SEED_PERIOD, SEED_SHOPS, SEED_STATIONS, seedConsoleDb, type Seeded } from '../../helpers/console-seed.js';

const STATION: Scope = { id: 'PS1', name: SEED_STATIONS.station.name, kind: 'station', stationId: 'PS1', timeZone: 'Asia/Shanghai' };
const COMPOUND: Scope = { id: 'PS1-C1', name: SEED_STATIONS.compound.name, kind: 'compound', stationId: 'PS1', timeZone: 'Asia/Shanghai' };
const OTHER: Scope = { id: 'PS2', name: SEED_STATIONS.other.name, kind: 'station', stationId: 'PS2', timeZone: 'Asia/Shanghai' };
const OPTS = { ratePercent: 50, minDecided: 3 };

function seeded(t: { teardown(fn: () => unknown): void }): { db: Db; seed: Seeded } {
  const dir = mkdtempSync(join(tmpdir(), 'lf-cstats-'));
  const db = openDatabase(dir);
  t.teardown(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, seed: seedConsoleDb(db, loadOrCreateGatewayKey(dir)) };
}

const period = (_db: Db, scope: Scope) => requestedPeriod(zoneOf(scope), SEED_NOW, SEED_PERIOD.from, SEED_PERIOD.to);

t.test('statistics of the seeded week: every figure, for the station and for its compound', async (t) => {
  const { db } = seeded(t);
  for (const scope of [STATION, COMPOUND]) {
    const s = consoleStats(db, scope, period(db, scope), OPTS);
    const want = SEED_EXPECTED.stats[scope.id as 'PS1' | 'PS1-C1'];
    t.same(s.scope, scope);
    t.equal(s.timeZone, 'Asia/Shanghai');
    t.same([s.from, s.to], [SEED_PERIOD.from, SEED_PERIOD.to]);
    t.same(s.perDay, want.perDay, `${scope.id}: alarms per day by kind (duress as duress, tests out, local days)`);
    t.same(s.falseShare, want.falseShare, `${scope.id}: false-alarm share by shop, flagged above 50 % with 3 decided`);
    t.same(s.threshold, want.threshold);
    t.same(s.ackSeconds, want.ackSeconds, `${scope.id}: raised → first ack`);
    t.same(s.firstReplySeconds, want.firstReplySeconds, `${scope.id}: raised → first neighbour answer`);
    t.same(s.faults, want.faults, `${scope.id}: faults opened and fixed`);
  }
  // The compound's officer: nothing of S01, S02, S05.
  const c = consoleStats(db, COMPOUND, period(db, COMPOUND), OPTS);
  t.notOk(c.falseShare.some((r) => !['S03', 'S04'].includes(r.shopId)), 'only the compound\'s shops');
});

t.test('another station sees only its own alarm, and the gateway\'s own faults', async (t) => {
  const { db } = seeded(t);
  const s = consoleStats(db, OTHER, period(db, OTHER), OPTS);
  // A13 (1 Dec, false); faults F6 (its keypad, 1 Dec, open) and F7 (the gateway's: 28 Nov, cleared 2 Dec).
  t.same(
    s.perDay.filter((d) => d.panic + d.help + d.intrusion + d.duress > 0),
    [{ day: '2026-12-01', panic: 1, intrusion: 0, help: 0, duress: 0 }],
  );
  t.same(s.falseShare.map((r) => [r.shopId, r.total, r.false]), [['S09', 1, 1]]);
  t.same(s.ackSeconds, { n: 1, p50: 15, p90: 15, max: 15 });
  t.same([s.faults.opened, s.faults.fixed], [2, 1]);
});

t.test('the threshold comes from the options: at 80 % S01 (75 %) is not flagged', async (t) => {
  const { db } = seeded(t);
  const s = consoleStats(db, STATION, period(db, STATION), { ratePercent: 80, minDecided: 3 });
  t.equal(s.falseShare.find((r) => r.shopId === 'S01')!.flagged, false);
  const s2 = consoleStats(db, STATION, period(db, STATION), { ratePercent: 50, minDecided: 1 });
  t.same(s2.falseShare.filter((r) => r.flagged).map((r) => r.shopId), ['S03', 'S01'], 'with 1 decided enough, S03 (1 of 1) is flagged too');
  // The period's end bounds the share too: to 30 Nov, S03 (A07 on 1 Dec) and S04 (1 and 2 Dec) are out.
  const s3 = consoleStats(db, STATION, periodOf('Asia/Shanghai', '2026-11-26', '2026-11-30'), OPTS);
  t.same(s3.falseShare.map((r) => [r.shopId, r.total]), [['S01', 4], ['S02', 1], ['S05', 1]]);
});

t.test('the period: default the last 7 days to today, days checked', async (t) => {
  const tz = 'Asia/Shanghai';
  // SEED_NOW is 12:00 on 2 Dec in Shanghai.
  t.same([requestedPeriod(tz, SEED_NOW).from, requestedPeriod(tz, SEED_NOW).to], ['2026-11-26', '2026-12-02']);
  // 23:30 on 2 Dec in Shanghai is still 2 Dec there, 15:30 UTC.
  t.equal(requestedPeriod(tz, Date.parse('2026-12-02T15:59:59.000Z')).to, '2026-12-02');
  t.equal(requestedPeriod(tz, Date.parse('2026-12-02T16:00:00.000Z')).to, '2026-12-03', 'midnight in Shanghai is 16:00 UTC');
  t.same([requestedPeriod(tz, SEED_NOW, '2026-11-01').from, requestedPeriod(tz, SEED_NOW, '2026-11-01').to], ['2026-11-01', '2026-11-07']);
  const p = periodOf(tz, '2026-12-01', '2026-12-01');
  t.same([new Date(p.startMs).toISOString(), new Date(p.endMs).toISOString()], ['2026-11-30T16:00:00.000Z', '2026-12-01T16:00:00.000Z']);
  t.equal(periodOf(tz, '2026-01-01', '2026-12-31').days.length, 365);
  for (const [from, to] of [
    ['2026-02-30', null],
    ['yesterday', null],
    ['2026-12-01', '2026-11-30'],
    ['2024-01-01', '2026-01-01'],
    [null, '2026-13-01'],
    ['1999-12-31', null],
  ] as const) {
    t.throws(() => requestedPeriod(tz, SEED_NOW, from, to), { code: 'LF_ERR_INVALID_ARGUMENT' }, `from=${from} to=${to} is refused`);
  }
});

t.test('the daily bulletin: every figure, the default day, for the station and its compound', async (t) => {
  const { db } = seeded(t);
  t.equal(bulletinDay('Asia/Shanghai', SEED_NOW), SEED_BULLETIN_DAY, 'yesterday in Shanghai');
  // 07:59 on 1 Dec in Shanghai is 23:59 on 30 Nov UTC: "yesterday" is 30 Nov.
  t.equal(bulletinDay('Asia/Shanghai', Date.parse('2026-11-30T23:59:00.000Z')), '2026-11-30');
  for (const scope of [STATION, COMPOUND]) {
    const b = dailyBulletin(db, scope, 'Asia/Shanghai', bulletinDay('Asia/Shanghai', SEED_NOW), SEED_NOW);
    const want = SEED_EXPECTED.bulletin[scope.id as 'PS1' | 'PS1-C1'];
    t.same([b.day, b.timeZone, b.start, b.end], [want.day, 'Asia/Shanghai', want.start, want.end]);
    t.same(b.scope, scope);
    t.same(b.totals, want.totals, `${scope.id}: totals`);
    t.same(b.byGrid, want.byGrid, `${scope.id}: by grid and sector`);
    t.equal(b.at, new Date(SEED_NOW).toISOString());
  }
});

t.test('the day boundary is Shanghai\'s: 23:30 local is that day, 00:30 local the next, whatever UTC says', async (t) => {
  const { db } = seeded(t);
  // 30 Nov local: A05 (15:30Z, 23:30 local). A06 (16:30Z on 30 Nov: 00:30 on 1 Dec local) is not.
  const nov30 = dailyBulletin(db, STATION, 'Asia/Shanghai', '2026-11-30', SEED_NOW);
  t.same(nov30.totals, { received: 1, dispatched: 1, real: 1, false: 0, malicious: 0, open: 0, test: 0, faultsOpened: 0, faultsFixed: 0, faultsOpen: 2 }, 'A05 only; F4 and F7 open');
  t.same(nov30.byGrid, [{ grid: '网格1', sector: 'B', received: 1, dispatched: 1, real: 1, false: 0, malicious: 0, open: 0 }]);
  // 2 Dec local: A11 (16:30Z on 1 Dec, 00:30 on 2 Dec local); F7 fixed at 09:00.
  const dec2 = dailyBulletin(db, STATION, 'Asia/Shanghai', '2026-12-02', SEED_NOW);
  t.same(dec2.totals, { received: 1, dispatched: 0, real: 0, false: 0, malicious: 0, open: 1, test: 0, faultsOpened: 0, faultsFixed: 1, faultsOpen: 3 }, 'A11 only; F2, F4, F5 open');
  // The same rows in a scope whose zone is UTC: 1 Dec holds A09, A10, A11 (and the tests A08, A12).
  const utc = dailyBulletin(db, { ...STATION, timeZone: 'UTC' }, 'UTC', '2026-12-01', SEED_NOW);
  t.same([utc.totals.received, utc.totals.test, utc.start], [3, 2, '2026-12-01T00:00:00.000Z']);
  t.equal(zoneOf({ timeZone: 'Mars/Olympus' }), 'Asia/Shanghai', 'a zone the runtime does not know: the default');
  t.equal(zoneOf({ timeZone: 'Europe/Berlin' }), 'Europe/Berlin');
});

t.test('device health: problems with since and how long, last heard and last tested, in scope', async (t) => {
  const { db, seed } = seeded(t);
  const open = FaultStore.offline(db).openFaults();
  const h = devicesHealth(db, STATION, open, SEED_NOW);
  t.same(h.scope, STATION);
  t.equal(h.withProblems, 3);
  t.same(h.devices.map((d) => d.deviceId), SEED_EXPECTED.health.PS1.map((d) => d.deviceId), 'longest-standing problem first; the revoked device and other stations left out');
  for (const [i, want] of SEED_EXPECTED.health.PS1.entries()) {
    const got = h.devices[i]!;
    t.match(got, { ...want, problems: want.problems.map((p) => {
      const { assignedTo, ...rest } = p as typeof p & { assignedTo?: string };
      return { ...rest, ...(assignedTo ? { ticket: { state: 'assigned', assignedTo } } : {}) };
    }) }, want.deviceId);
    t.equal(got.problems.length, want.problems.length);
  }
  t.same(h.devices[0]!.problems[0]!.text, { en: 'Device silent', zh: '设备无响应' });
  t.equal(h.devices[0]!.problems[0]!.faultId, seed.faults.F4);
  t.equal(h.devices.find((d) => d.deviceId === 'S01.keypad')!.problems[0]!.ticket.state, 'fixed', 'fixed by force: the ticket is closed, the fault still holds');
  const c = devicesHealth(db, COMPOUND, open, SEED_NOW);
  t.same(c.devices.map((d) => d.deviceId), SEED_EXPECTED.health['PS1-C1']);
  t.same(devicesHealth(db, OTHER, open, SEED_NOW).devices.map((d) => [d.deviceId, d.problems.map((p) => p.kind)]), [['S09.keypad', ['offline']]]);
});

t.test('the CSV: BOM, CRLF, bilingual header, local times, quoting, formulas made text, scoped', async (t) => {
  const { db } = seeded(t);
  const p = period(db, STATION);
  const csv = alarmsCsv(db, STATION, p);
  t.ok(csv.startsWith('\uFEFF'), 'a UTF-8 BOM first (Excel reads Chinese right)');
  t.ok(Buffer.from(csv, 'utf8').subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])));
  const body = csv.slice(1);
  t.ok(body.endsWith('\r\n'));
  // Every line break outside a quoted cell is CRLF: remove the quoted cells, then no bare \n is left.
  t.notMatch(body.replace(/"(?:[^"]|"")*"/g, '').replace(/\r\n/g, ''), /[\r\n]/, 'records end with CRLF');
  t.ok(body.includes('"Tea, ""Old"" House 老茶馆"'), 'a comma and quotes: quoted, quotes doubled');
  const rows = parse(body, { relax_column_count: false }) as string[][];
  const [header, ...records] = rows;
  t.equal(header![0], '报警编号 Alarm id');
  t.equal(header![1], '报警时间 Raised (Asia/Shanghai)');
  t.ok(header!.every((h) => /[\u4e00-\u9fff]/.test(h) && /[A-Za-z]/.test(h)), 'every heading in Chinese and English');
  t.equal(records.length, SEED_EXPECTED.csvAlarms.PS1);
  const col = (name: string) => header!.findIndex((h) => h.endsWith(name) || h.includes(` ${name}`));
  const row = (id: string) => records.find((r) => r[0] === id)!;
  t.equal(row('A05')[col('Raised (Asia/Shanghai)')], '2026-11-30 23:30:00', 'times are Shanghai\'s wall clock');
  t.equal(row('A06')[col('Raised (Asia/Shanghai)')], '2026-12-01 00:30:00');
  t.equal(row('A06')[col('Kind')], '胁迫报警 duress');
  t.equal(row('A01')[col('Acknowledged (Asia/Shanghai)')], '2026-11-26 10:00:30');
  t.equal(row('A01')[col('Shop name')], SEED_SHOPS[0].name, 'the comma and quotes come back as they were');
  t.equal(row('A05')[col('Shop name')], `'${SEED_SHOPS[1].name}`, 'a formula is made text with an apostrophe');
  t.equal(row('A10')[col('Shop name')], `'${SEED_SHOPS[4].name}`, '@ too');
  t.equal(row('A07')[col('Shop name')], 'Noodles\nline two', 'a line break stays inside its cell');
  t.equal(row('A02')[col('Close note')], "'=cmd|calc");
  t.equal(row('A06')[col('Close note')], 'duress: line one\nline two');
  t.equal(row('A01')[col('Disposition')], '真实警情 real');
  t.equal(row('A08')[col('Test')], '是 yes', 'test alarms are in the record, marked');
  t.equal(row('A01')[col('Patrol')], 'P-1');
  t.notOk(records.some((r) => r[0] === 'A13' || r[0] === 'A14'), 'not another station\'s, not outside the period');
  const c = parse(alarmsCsv(db, COMPOUND, period(db, COMPOUND)).slice(1)) as string[][];
  t.same(c.slice(1).map((r) => r[0]).sort(), ['A07', 'A08', 'A09', 'A11'], 'the compound\'s officer: only its shops');
  t.equal(alarmsCsvName(STATION, p), 'alarms-PS1-2026-11-26-2026-12-02.csv');
  t.same(['=1', '+1', '-1', '@a', '\tx', '\rx', 'ok', '1-2', ''].map(safeCell), ["'=1", "'+1", "'-1", "'@a", "'\tx", "'\rx", 'ok', '1-2', '']);
});

t.test('the printable bulletin escapes every text', async (t) => {
  const { db } = seeded(t);
  db.prepare("UPDATE shops SET grid = '<script>alert(1)</script>', sector = '\"&''' WHERE id = 'S05'").run();
  const scope = { ...STATION, name: '<b>Station</b>' };
  const html = bulletinHtml(dailyBulletin(db, scope, 'Asia/Shanghai', SEED_BULLETIN_DAY, SEED_NOW));
  t.notMatch(html, /<script|<b>/);
  t.match(html, '&lt;script&gt;alert(1)&lt;/script&gt;');
  t.match(html, '&quot;&amp;&#39;');
  t.match(html, '&lt;b&gt;Station&lt;/b&gt; 警情日报');
  t.match(html, /接警总数 <span class="en">Alarms received<\/span><\/th><td class="n">4<\/td>/);
  t.match(html, /日终未修复故障 <span class="en">Faults open at the end of the day<\/span><\/th><td class="n">4<\/td>/);
  t.match(html, '2026-12-01 00:00:00 – 2026-12-02 00:00:00');
});
