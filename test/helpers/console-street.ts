/**
 * The console's end-to-end fixture (issue 11 "Proof"): the demo street, provisioned through the
 * CLI as an installer would, plus what the console's tiers need: a compound receiving point of the
 * street's station holding a few shops (one named like an HTML attack, one with a cancel and a
 * duress PIN), an officer of the station, one of the compound, one of ANOTHER station (with a shop
 * of its own) and an admin. Also: signing in over HTTP as the page does (cookie, /api/me) and a
 * headless Chromium (Debian's, driven by playwright-core) signed in through the real login form.
 */
import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import mqtt, { type MqttClient } from 'mqtt';
import { cli, provisionStreet, tempDataDir, query, until } from './gateway.js';
import type { SimKeypad } from '../../simulators/mqtt-devices.js';
import type { StreetFile } from '../../simulators/street.js';
import type { Me } from '../../gateway/console/contract.js';

interface T {
  teardown(fn: () => unknown): void;
}

export const COMPOUND = 'C1';
export const OTHER_STATION = 'PS2';
export const OTHER_SHOP = 'PS2-S01';
/** A shop name that must show as text, never as markup. */
export const XSS_NAME = '<img src=x onerror=alert(1)>';
export const PIN = '24680864';
export const DURESS_PIN = '13577531';

export interface Login {
  username: string;
  password: string;
}

export interface ConsoleStreet {
  data: string;
  street: StreetFile;
  stationId: string;
  compoundId: string;
  /** Shops of the compound (ids), the first one named XSS_NAME, the second with PINs. */
  compoundShops: string[];
  xssShop: string;
  pinShop: string;
  /** Street shops not in the compound. */
  stationOnlyShops: string[];
  users: { station: Login; compound: Login; other: Login; admin: Login };
  /** An MQTT keypad of the other station's shop. */
  otherKeypad: { deviceId: string; username: string; password: string };
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await cli(args, env);
  if (r.code !== 0) throw new Error(`lianfang ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** The street of `shops` MQTT keypads with the compound, the other station and the four logins. */
export async function provisionConsoleStreet(t: T, shops = 12, compoundShops = 4): Promise<ConsoleStreet> {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, shops);
  const d = ['--data', data];
  const stationId = street.stationId;
  await run(['station', 'add', '--id', COMPOUND, '--name', '花园小区门卫室 Garden Court guard room', '--compound-of', stationId, ...d]);
  await run(['station', 'add', '--id', OTHER_STATION, '--name', '东湖派出所 East Lake Station', ...d]);
  await run(['shop', 'add', '--id', OTHER_SHOP, '--name', '东湖书店', '--address', 'East Lake Rd 1', '--station', OTHER_STATION, '--lat', '23.36', '--lon', '116.69', ...d]);
  const otherKeypad = JSON.parse(await run(['device', 'add', '--shop', OTHER_SHOP, '--type', 'keypad', '--json', ...d])) as ConsoleStreet['otherKeypad'];
  // The compound: the street's shops 2..2+n (neighbours of each other, so rings stay in the street).
  const inCompound = street.shops.slice(2, 2 + compoundShops).map((s) => s.shopId);
  for (const id of inCompound) await run(['shop', 'edit', id, '--compound', COMPOUND, ...d]);
  const xssShop = inCompound[0]!;
  const pinShop = inCompound[1]!;
  await run(['shop', 'edit', xssShop, '--name', XSS_NAME, ...d]);
  await run(['shop', 'pin', pinShop, ...d], { LF_PIN: PIN, LF_DURESS_PIN: DURESS_PIN });
  const user = async (name: string, role: string, station?: string): Promise<Login> => {
    const password = randomBytes(12).toString('base64url');
    await run(['user', 'add', '--role', role, '--name', name, ...(station ? ['--station', station] : []), ...d], { LF_PASSWORD: password });
    return { username: name, password };
  };
  const users = {
    // The street's own officer (provisionStreet made it) works for the station.
    station: street.officer as Login,
    compound: await user('guard-c1', 'officer', COMPOUND),
    other: await user('officer-ps2', 'officer', OTHER_STATION),
    admin: await user('admin1', 'admin'),
  };
  const stationOnlyShops = street.shops.map((s) => s.shopId).filter((id) => !inCompound.includes(id));
  return { data, street, stationId, compoundId: COMPOUND, compoundShops: inCompound, xssShop, pinShop, stationOnlyShops, users, otherKeypad };
}

// ------------------------------------------------------------------ HTTP, as the page

export interface HttpSession {
  cookie: string;
  me: Me;
  get(path: string): Promise<Response>;
}

/** Sign in with JSON (as login.ts does) and read /api/me. */
export async function signIn(base: string, login: Login): Promise<HttpSession> {
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(login) });
  if (res.status !== 200) throw new Error(`sign-in of ${login.username}: HTTP ${res.status} ${await res.text()}`);
  const set = res.headers.get('set-cookie') ?? '';
  const cookie = set.split(';')[0]!;
  const get = (path: string) => fetch(`${base}${path}`, { headers: { cookie } });
  const me = (await (await get('/api/me')).json()) as Me;
  return { cookie, me, get };
}

/** The live feed as the page connects to it: MQTT over ws://…/mqtt with the cookie and the session's grant. */
export function liveFeed(httpPort: number, s: HttpSession, suffix = 'e2e'): Promise<MqttClient> {
  return mqtt.connectAsync(`ws://127.0.0.1:${httpPort}${s.me.live.path}`, {
    clientId: `${s.me.live.clientIdPrefix}${suffix}`,
    username: s.me.live.username,
    password: s.me.live.password,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    wsOptions: { headers: { cookie: s.cookie } },
  });
}

// ------------------------------------------------------------------ the browser

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'];

export async function launchBrowser(t: T): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  return browser;
}

export interface OfficerPage {
  context: BrowserContext;
  page: Page;
  /** Dialogs the page opened (alert(1) of an injected shop name would land here). */
  dialogs: string[];
  /** Uncaught page errors and console errors, for diagnostics. */
  errors: string[];
}

/** A fresh context signed in through the real login form; resolves once the app has rendered. */
export async function openConsole(
  browser: Browser,
  base: string,
  login: Login,
  opts: { viewport?: { width: number; height: number }; locale?: string; appTimeoutMs?: number; prepare?: (c: BrowserContext) => Promise<void> } = {},
): Promise<OfficerPage> {
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1366, height: 768 }, locale: opts.locale ?? 'zh-CN' });
  if (opts.prepare) await opts.prepare(context);
  const page = await context.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(base + '/');
  await page.fill('#username', login.username);
  await page.fill('#password', login.password);
  await page.click('#login-submit');
  await page.waitForSelector('[data-testid=app]', { timeout: opts.appTimeoutMs ?? 15_000 });
  return { context, page, dialogs, errors };
}

/** The queue item of an alarm (a locator; waits are the caller's). */
export const queueItem = (page: Page, alarmId: string) => page.locator(`[data-testid=queue-item][data-alarm-id="${alarmId}"]`);

/** 9# on a keypad; the id of the new alarm of its shop, once it is in the database. */
export async function raiseAlarm(data: string, keypad: SimKeypad, timeoutMs = 20_000): Promise<string> {
  const ids = () => query<{ id: string }>(data, 'SELECT id FROM alarms WHERE shop_id = ?', keypad.shopId).map((r) => r.id);
  const before = new Set(ids());
  await keypad.press('9#');
  const fresh = await until(`a new alarm of ${keypad.shopId}`, async () => ids().filter((id) => !before.has(id)), (r) => r.length === 1, timeoutMs);
  return fresh[0]!;
}
