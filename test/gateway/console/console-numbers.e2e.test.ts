/**
 * The console's numbers in the browser (issue 11 "Proof": every chart and bulletin figure is
 * asserted against a seeded data set): the seeded street of test/helpers/console-seed.ts, the
 * gateway as a child process on it, headless Chromium signed in through the login form as the
 * station's officer and as the compound's guard. The stats tab, given the seed's period, shows in
 * the table beside each chart (per day by kind, false-alarm share by shop with the flagged ones,
 * time to acknowledge, time to the first neighbour's answer, faults opened and fixed) exactly the
 * seed's hand-worked figures; the bulletin of the seed's day shows exactly its totals and its rows
 * by grid and sector. Shop names that look like HTML or formulas show as text. Screenshots of the
 * stats and bulletin tabs (with these figures) go to docs/screenshots/.
 */
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { GatewayProcess, tempDataDir, ROOT } from '../../helpers/gateway.js';
import { launchBrowser, openConsole } from '../../helpers/console-street.js';
import { seedConsoleDir, SEED_EXPECTED, SEED_PERIOD, SEED_BULLETIN_DAY, SEED_USERS, SEED_PASSWORD } from '../../helpers/console-seed.js';

const SHOTS = join(ROOT, 'docs', 'screenshots');
const SEEN_MS = 15_000;

interface Row {
  attrs: Record<string, string | null>;
  cells: Record<string, string>;
}

/** Every body and footer row of a table: its data- attributes and its [data-field] cells' text. */
function tableRows(page: Page, selector: string): Promise<Row[]> {
  return page.$$eval(`${selector} tbody tr, ${selector} tfoot tr`, (trs) =>
    trs.map((tr) => ({
      attrs: Object.fromEntries(['data-day', 'data-shop-id', 'data-flagged', 'data-grid', 'data-sector'].filter((a) => tr.hasAttribute(a)).map((a) => [a, tr.getAttribute(a)])),
      cells: Object.fromEntries([...tr.querySelectorAll('[data-field]')].map((td) => [td.getAttribute('data-field')!, (td.textContent ?? '').trim()])),
    })),
  );
}

const cell = (v: number | null) => (v === null ? '—' : String(v));

t.test('the stats tab and the bulletin show exactly the seeded figures', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const data = tempDataDir(t);
  await seedConsoleDir(data);
  const gw = await GatewayProcess.start(t, data);
  const base = `http://127.0.0.1:${gw.ports.http}`;
  const browser = await launchBrowser(t);

  for (const [who, scope] of [
    ['station', 'PS1'],
    ['compound', 'PS1-C1'],
  ] as const) {
    await t.test(`${who} (${scope})`, async (t) => {
      const { page, dialogs } = await openConsole(browser, base, { username: SEED_USERS[who].name, password: SEED_PASSWORD }, { viewport: { width: 1366, height: 900 } });
      const exp = SEED_EXPECTED.stats[scope];

      // ------------------------------------------------------------ stats of the seed's period
      await page.click('[data-tab=stats]');
      await page.waitForSelector('[data-testid=stats]', { timeout: SEEN_MS });
      await page.fill('[data-testid=stats] [name=from]', SEED_PERIOD.from);
      await page.fill('[data-testid=stats] [name=to]', SEED_PERIOD.to);
      const days = exp.perDay.map((d) => d.day);
      await page.waitForFunction(
        (want) => {
          const got = [...document.querySelectorAll('[data-testid=stats-table-per-day] tbody tr')].map((tr) => tr.getAttribute('data-day'));
          return JSON.stringify(got) === JSON.stringify(want);
        },
        days,
        { timeout: SEEN_MS },
      );
      for (const name of ['per-day', 'false-share', 'ack-time', 'first-reply', 'faults']) {
        t.equal(await page.locator(`[data-chart=${name}] canvas`).count(), 1, `${name}: a chart`);
      }

      const perDay = await tableRows(page, '[data-testid=stats-table-per-day]');
      t.same(
        perDay.map((r) => r.cells),
        exp.perDay.map((d) => ({ day: d.day, panic: String(d.panic), intrusion: String(d.intrusion), help: String(d.help), duress: String(d.duress), total: String(d.panic + d.intrusion + d.help + d.duress) })),
        'alarms per day by kind',
      );

      const share = await tableRows(page, '[data-testid=stats-table-false-share]');
      const pick = (r: Row) => ({
        shop: r.attrs['data-shop-id'],
        flagged: r.attrs['data-flagged'],
        name: r.cells.name,
        total: r.cells.total,
        real: r.cells.real,
        false: r.cells.false,
        malicious: r.cells.malicious,
        sharePercent: r.cells.sharePercent,
      });
      t.same(
        share.map(pick),
        exp.falseShare.map((s) => ({
          shop: s.shopId,
          flagged: String(s.flagged),
          name: s.name.trim(),
          total: String(s.total),
          real: String(s.real),
          false: String(s.false),
          malicious: String(s.malicious),
          sharePercent: cell(s.sharePercent),
        })),
        'false-alarm share by shop, in order, the flagged ones flagged, names as text',
      );
      t.ok(share.some((r) => r.attrs['data-flagged'] === 'true') === exp.falseShare.some((s) => s.flagged), 'flagged rows as the seed says');

      for (const [table, d] of [
        ['ack-time', exp.ackSeconds],
        ['first-reply', exp.firstReplySeconds],
      ] as const) {
        const rows = await tableRows(page, `[data-testid=stats-table-${table}]`);
        t.same(rows.map((r) => r.cells), [{ n: String(d.n), p50: cell(d.p50), p90: cell(d.p90), max: cell(d.max) }], `${table} (seconds)`);
      }

      const faults = await tableRows(page, '[data-testid=stats-table-faults]');
      t.same(
        faults.filter((r) => r.attrs['data-day'] !== 'total').map((r) => ({ day: r.attrs['data-day'], opened: r.cells.opened, fixed: r.cells.fixed })),
        exp.faults.perDay.map((d) => ({ day: d.day, opened: String(d.opened), fixed: String(d.fixed) })),
        'faults opened and fixed per day',
      );
      const total = faults.find((r) => r.attrs['data-day'] === 'total');
      t.same({ opened: total?.cells.openedTotal, fixed: total?.cells.fixedTotal }, { opened: String(exp.faults.opened), fixed: String(exp.faults.fixed) }, 'faults opened and fixed in the period');
      await page.waitForTimeout(500); // the charts finish their animation
      if (who === 'station') await page.screenshot({ path: join(SHOTS, 'console-stats.png'), fullPage: true });

      // ------------------------------------------------------------ the bulletin of the seed's day
      const b = SEED_EXPECTED.bulletin[scope];
      await page.click('[data-tab=bulletin]');
      await page.waitForSelector('[data-testid=bulletin]', { timeout: SEEN_MS });
      await page.fill('[data-testid=bulletin] [name=day]', SEED_BULLETIN_DAY);
      await page.waitForFunction((day) => (document.querySelector('[data-testid=bulletin] h2')?.textContent ?? '').includes(day), SEED_BULLETIN_DAY, { timeout: SEEN_MS });
      const shown = await page.$$eval('[data-testid=bulletin] dd[data-field], [data-testid=bulletin] .figures [data-field]', (els) =>
        Object.fromEntries(els.map((e) => [e.getAttribute('data-field')!, (e.textContent ?? '').trim()])),
      );
      for (const field of ['received', 'dispatched', 'real', 'false', 'faultsOpened', 'faultsFixed', 'faultsOpen'] as const) {
        t.equal(shown[field], String(b.totals[field]), `bulletin ${field}`);
      }
      for (const [field, v] of Object.entries(shown)) {
        if (field in b.totals) t.equal(v, String(b.totals[field as keyof typeof b.totals]), `bulletin ${field} (every figure shown)`);
      }
      const grid = await tableRows(page, '[data-testid=bulletin] [data-testid=by-grid]');
      t.same(
        grid.map((r) => ({ grid: r.attrs['data-grid'], sector: r.attrs['data-sector'], received: r.cells.received, dispatched: r.cells.dispatched, real: r.cells.real, false: r.cells.false, malicious: r.cells.malicious, open: r.cells.open })),
        b.byGrid.map((g) => ({
          grid: g.grid ?? '',
          sector: g.sector ?? '',
          received: String(g.received),
          dispatched: String(g.dispatched),
          real: String(g.real),
          false: String(g.false),
          malicious: String(g.malicious),
          open: String(g.open),
        })),
        'by grid and sector',
      );
      if (who === 'station') await page.screenshot({ path: join(SHOTS, 'console-bulletin.png'), fullPage: true });
      t.same(dialogs, [], 'no dialog opened');
      await page.context().close();
    });
  }
});
