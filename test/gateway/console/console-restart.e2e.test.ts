/**
 * The console page across lost connections (issue 11 "Quality of the page", "Proof"), in headless
 * Chromium against the gateway as a child process:
 * 1. Catch-up by rev: the page's live feed is cut while the gateway runs (the test holds the
 *    page's WebSocket in a Playwright route and refuses its reconnections for a while); meanwhile
 *    another alarm is raised and the open one acknowledged from another console. The page shows the
 *    banner, then, let through again, shows both changes without a reload — changes it never saw
 *    on the feed.
 * 2. Gateway restart: the child is stopped (SIGTERM) under the open page; the offline banner shows
 *    and the app says data-connected=false; it is started again on the same ports; the banner goes,
 *    and alarms raised after the restart (the first while the page may still be reconnecting)
 *    arrive without a reload.
 */
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { WebSocketRoute } from 'playwright-core';
import { GatewayProcess, connectStreet, query, until, ROOT } from '../../helpers/gateway.js';
import { provisionConsoleStreet, launchBrowser, openConsole, queueItem, raiseAlarm } from '../../helpers/console-street.js';

const SHOTS = join(ROOT, 'docs', 'screenshots');
const SEEN_MS = 10_000;
/** A restarted gateway and a page's reconnect back-off on a loaded machine. */
const BACK_MS = 30_000;

t.test('the page catches up by rev after a lost feed and survives a gateway restart', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const cs = await provisionConsoleStreet(t, 12);
  let gw = await GatewayProcess.start(t, cs.data);
  const ports = { ...gw.ports };
  const base = `http://127.0.0.1:${ports.http}`;
  const { keypads, console: other } = await connectStreet(t, cs.street, gw.mqttUrl);
  const browser = await launchBrowser(t);

  // The page's live feed through a route the test holds: passed through, or refused while `blocked`.
  let blocked = false;
  const feeds: WebSocketRoute[] = [];
  const station = await openConsole(browser, base, cs.users.station, {
    prepare: (ctx) =>
      ctx.routeWebSocket(/\/mqtt$/, (ws) => {
        if (blocked) return void ws.close({ code: 1011, reason: 'test: feed blocked' });
        feeds.push(ws);
        ws.connectToServer();
      }),
  });
  const page = station.page;
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  await page.evaluate(() => ((window as unknown as { __lfMark: number }).__lfMark = 42));
  const sameDocument = async () => (await page.evaluate(() => (window as unknown as { __lfMark?: number }).__lfMark)) === 42 && navigations === 0;
  await page.waitForSelector('[data-testid=app][data-connected=true]', { timeout: SEEN_MS });
  t.equal(await page.locator('[data-testid=offline-banner]').count(), 0, 'no banner while connected');

  const newAlarm = (shopId: string) => raiseAlarm(cs.data, keypads.get(shopId)!, BACK_MS);
  const stateOf = (id: string) => query<{ state: string }>(cs.data, 'SELECT state FROM alarms WHERE id = ?', id)[0]?.state;
  const [s1, s2, s3, s4] = cs.stationOnlyShops;

  const a1 = await newAlarm(s1!);
  await queueItem(page, a1).waitFor({ timeout: SEEN_MS });
  t.equal(await queueItem(page, a1).getAttribute('data-state'), 'raised');

  await t.test('a feed lost while the gateway runs: banner, then caught up by rev', async (t) => {
    blocked = true;
    for (const ws of feeds.splice(0)) await ws.close({ code: 1011, reason: 'test: feed cut' });
    await page.waitForSelector('[data-testid=offline-banner]', { state: 'visible', timeout: SEEN_MS });
    await page.waitForSelector('[data-testid=app][data-connected=false]', { timeout: SEEN_MS });
    t.pass('banner shown, data-connected=false');
    await page.waitForSelector('[data-testid=app][data-sound=lost]', { timeout: SEEN_MS });
    t.pass('the lost feed sounds');

    // Changes the page cannot hear: a new alarm, and the open one acknowledged elsewhere.
    const a2 = await newAlarm(s2!);
    await other.act({ alarmId: a1, action: 'ack' });
    await until('a1 acknowledged', async () => stateOf(a1), (s) => s === 'acknowledged', SEEN_MS);
    t.equal(await queueItem(page, a2).count(), 0, 'the blocked page has not seen the new alarm');
    t.equal(await queueItem(page, a1).getAttribute('data-state'), 'raised', 'nor the acknowledgement');

    blocked = false;
    await page.waitForSelector('[data-testid=offline-banner]', { state: 'detached', timeout: BACK_MS });
    await page.waitForSelector('[data-testid=app][data-connected=true]', { timeout: SEEN_MS });
    await queueItem(page, a2).waitFor({ timeout: SEEN_MS });
    await page.waitForSelector(`[data-testid=queue-item][data-alarm-id="${a1}"][data-state=acknowledged]`, { timeout: SEEN_MS });
    t.pass('the missed alarm and the missed acknowledgement are on the page');
    t.ok(await sameDocument(), 'without a reload');
  });

  await t.test('the gateway restarts under the open page', async (t) => {
    await gw.kill('SIGTERM');
    t.equal(gw.exitCode, 0, 'the gateway stopped cleanly');
    await page.waitForSelector('[data-testid=offline-banner]', { state: 'visible', timeout: SEEN_MS });
    await page.waitForSelector('[data-testid=app][data-connected=false]', { timeout: SEEN_MS });
    const banner = (await page.locator('[data-testid=offline-banner]').innerText()).trim();
    t.match(banner, /连接已断开|Connection to the gateway lost/, `the banner says so: ${banner}`);
    await page.screenshot({ path: join(SHOTS, 'console-offline.png') });

    gw = await GatewayProcess.start(t, cs.data, {}, ['--http-port', String(ports.http), '--mqtt-port', String(ports.mqtt)]);
    t.same({ http: gw.ports.http, mqtt: gw.ports.mqtt }, { http: ports.http, mqtt: ports.mqtt }, 'the same ports again');
    // At once, while the page (and the keypads) may still be reconnecting.
    const a3 = await newAlarm(s3!);
    await page.waitForSelector('[data-testid=offline-banner]', { state: 'detached', timeout: BACK_MS });
    await page.waitForSelector('[data-testid=app][data-connected=true]', { timeout: SEEN_MS });
    t.pass('the banner is gone');
    await queueItem(page, a3).waitFor({ timeout: SEEN_MS });
    t.pass('the alarm raised during the reconnect is on the page');
    const a4 = await newAlarm(s4!);
    await queueItem(page, a4).waitFor({ timeout: SEEN_MS });
    t.pass('a new 9# after the restart arrives');
    t.equal(await queueItem(page, a1).getAttribute('data-state'), 'acknowledged', 'what it had is still right');
    t.ok(await sameDocument(), 'without a reload');
  });
  t.same(station.dialogs, [], 'no dialog opened');
  if (station.errors.length) t.comment(`page errors: ${station.errors.join(' | ')}`);
});
