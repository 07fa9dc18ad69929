/**
 * The console's part of `npm run bench` (issue 11):
 * 1. Keypress → screen: a real headless Chromium page (Debian's /usr/bin/chromium, driven by
 *    playwright-core) signed in through the login form as the station's officer; a simulated
 *    keypad presses 9# (each alarm from a different shop, one at a time); from just before the
 *    keypad's publish to the moment a `[data-testid=queue-item]` with the alarm's id is in the
 *    page's DOM (a MutationObserver, and the next animation frame: roughly the paint). Both sides
 *    read the same machine clock (performance.timeOrigin + performance.now()). Each alarm is
 *    acknowledged and closed (disposition test) over MQTT once the page has it, so the page's
 *    queue stays short and every alarm is measured on the same screen.
 * 2. Page-style consoles for the fan-out runs: protocol clients connected the way the page
 *    connects — sign in over HTTP, read /api/me, MQTT over ws://…/mqtt with the session cookie and
 *    the session's grant — subscribed to the station's alarms topic (not browsers, which would take
 *    a core of the 2 the machine has).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { provisionStreet } from '../test/helpers/street.js';
import { openDatabase } from '../gateway/store/db.js';
import { SimKeypad } from '../simulators/mqtt-devices.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import type { Me } from '../gateway/console/contract.js';
import { GatewayChild } from './processes.js';
import { newHistogram, recordMs, summarize, type Summary } from './stats.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface KeypressScreenParams {
  /** Alarms measured (each from its own shop). */
  alarms: number;
  /** Alarms before those, not measured (the page's first render, JIT). */
  warmup: number;
  /** Longest wait for one alarm to reach the page. */
  timeoutMs: number;
}

export interface KeypressScreenResult {
  params: KeypressScreenParams;
  browser: string;
  /** Publish → the queue item in the DOM (ms). */
  domMs: Summary;
  /** Publish → the first animation frame after it (ms): about when it is painted. */
  frameMs: Summary;
  /** Publish → the gateway's PUBACK to the keypad (ms): the alarm is stored. */
  pubackMs: Summary;
  completed: number;
  /** Alarms the page did not show within timeoutMs. */
  missed: number;
  /** Queue items seen whose alarm was not the one just raised (should be 0). */
  strays: number;
  wallSeconds: number;
  skipped?: string;
  /** The phase failed (e.g. the page never came up): the first line of the error. */
  error?: string;
}

export interface ConsoleBenchContext {
  log: (line: string) => void;
  track: (c: { kill(): void }) => void;
  keepData?: boolean;
  logLevel: string;
  deadlinesMs: number;
}

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'];

const clock = () => performance.timeOrigin + performance.now();

/** Sign in as the page does (JSON POST /login), then /api/me: the cookie and the live feed's grant. */
export async function signInAsPage(httpPort: number, login: Credentials): Promise<{ cookie: string; me: Me }> {
  const base = `http://127.0.0.1:${httpPort}`;
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(login) });
  if (res.status !== 200) throw new Error(`console sign-in of ${login.username}: HTTP ${res.status} ${await res.text()}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const me = (await (await fetch(`${base}/api/me`, { headers: { cookie } })).json()) as Me;
  return { cookie, me };
}

/** Console clients connected the way the page connects, subscribed to the station's alarms. */
export class PageConsoles {
  private clients: MqttClient[] = [];
  /** Station alarm messages each client received. */
  readonly received: number[] = [];
  disconnects = 0;
  private closing = false;

  static async connect(httpPort: number, login: Credentials, stationId: string, count: number): Promise<PageConsoles> {
    const pc = new PageConsoles();
    for (let i = 0; i < count; i++) {
      const { cookie, me } = await signInAsPage(httpPort, login);
      const client = await mqtt.connectAsync(`ws://127.0.0.1:${httpPort}${me.live.path}`, {
        clientId: `${me.live.clientIdPrefix}bench-${i}`,
        username: me.live.username,
        password: me.live.password,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        wsOptions: { headers: { cookie } },
      });
      pc.received.push(0);
      client.on('message', () => pc.received[i]!++);
      client.on('close', () => {
        if (!pc.closing) pc.disconnects++;
      });
      client.on('error', () => {});
      const granted = await client.subscribeAsync([topics.stationAlarms(stationId), topics.stationErrors(stationId)], { qos: 1 });
      if (granted.some((g) => g.qos === 128)) throw new Error('a page-style console was refused the station topics');
      pc.clients.push(client);
    }
    return pc;
  }

  get count(): number {
    return this.clients.length;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.clients.map((c) => c.endAsync(true).catch(() => {})));
  }
}

/** Keypress → screen, on a street of its own (a fresh data directory and gateway). */
export async function runKeypressToScreen(p: KeypressScreenParams, ctx: ConsoleBenchContext): Promise<KeypressScreenResult> {
  const empty: Summary = summarize(newHistogram(), false);
  const result: KeypressScreenResult = { params: p, browser: '', domMs: empty, frameMs: empty, pubackMs: empty, completed: 0, missed: 0, strays: 0, wallSeconds: 0 };
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    return { ...result, skipped: 'playwright-core is not installed (a devDependency)' };
  }
  const { existsSync } = await import('node:fs');
  if (!existsSync(CHROMIUM)) return { ...result, skipped: `${CHROMIUM} not found (Debian's chromium package)` };

  const dir = mkdtempSync(join(tmpdir(), 'lfb-console-'));
  const total = p.alarms + p.warmup;
  const keypads: SimKeypad[] = [];
  let gw: GatewayChild | null = null;
  let browser: import('playwright-core').Browser | null = null;
  let officer: MqttClient | null = null;
  try {
    const street = await provisionStreet(dir, Math.max(11, total));
    gw = await GatewayChild.start(dir, {
      LF_LOG_LEVEL: ctx.logLevel,
      LF_ESCALATION_ACK_DEADLINE_MS: String(ctx.deadlinesMs),
      LF_ESCALATION_OVERDUE_REPEAT_MS: String(ctx.deadlinesMs),
      LF_ESCALATION_RING_INTERVAL_MS: String(ctx.deadlinesMs),
    });
    ctx.track(gw);
    const base = `http://127.0.0.1:${gw.ports.http}`;
    for (let from = 0; from < total; from += 25) {
      keypads.push(...(await Promise.all(street.shops.slice(from, Math.min(total, from + 25)).map((s) => new SimKeypad(s.deviceId, s.shopId, s.creds, 1).connect(gw!.mqttUrl)))));
    }
    // The officer's other console (MQTT): closes each alarm once the page has shown it.
    officer = await mqtt.connectAsync(gw.mqttUrl, { clientId: `${street.officer.username}:bench-closer`, username: street.officer.username, password: street.officer.password, reconnectPeriod: 0 });
    const closed = new Map<string, () => void>();
    officer.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString('utf8')) as { alarmId: string; state: string };
      if (m.state === 'acknowledged') officer!.publish(topics.stationActions(street.stationId), JSON.stringify({ alarmId: m.alarmId, action: 'close', disposition: 'test' }), { qos: 1 });
      if (m.state === 'closed') closed.get(m.alarmId)?.();
    });
    await officer.subscribeAsync(topics.stationAlarms(street.stationId), { qos: 1 });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    result.browser = browser.version();
    const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'zh-CN' })).newPage();
    await page.goto(base + '/');
    await page.fill('#username', street.officer.username);
    await page.fill('#password', street.officer.password);
    await page.click('#login-submit');
    await page.waitForSelector('[data-testid=app][data-connected=true]', { timeout: 30_000 });

    // The page reports each queue item the first time it is in the DOM, and the next frame.
    let onSeen: ((id: string, dom: number, frame: number) => void) | null = null;
    await page.exposeFunction('__lfBenchSeen', (id: string, dom: number, frame: number) => onSeen?.(id, dom, frame));
    await page.evaluate(() => {
      const seen = new Set<string>();
      const report = (window as unknown as { __lfBenchSeen: (id: string, dom: number, frame: number) => void }).__lfBenchSeen;
      const scan = () => {
        for (const el of document.querySelectorAll('[data-testid=queue-item][data-alarm-id]')) {
          const id = el.getAttribute('data-alarm-id')!;
          if (seen.has(id)) continue;
          seen.add(id);
          const dom = performance.timeOrigin + performance.now();
          requestAnimationFrame(() => report(id, dom, performance.timeOrigin + performance.now()));
        }
      };
      new MutationObserver(scan).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-alarm-id'] });
      scan();
    });

    const dom = newHistogram();
    const frame = newHistogram();
    const puback = newHistogram();
    const raisedBy = new Map<string, number>();
    const t0All = performance.now();
    for (let i = 0; i < total; i++) {
      const kp = keypads[i]!;
      const record = i >= p.warmup;
      let resolveSeen!: (v: { id: string; dom: number; frame: number } | null) => void;
      const seen = new Promise<{ id: string; dom: number; frame: number } | null>((r) => (resolveSeen = r));
      onSeen = (id, d, f) => {
        if (raisedBy.has(id)) return void result.strays++;
        resolveSeen({ id, dom: d, frame: f });
      };
      const timer = setTimeout(() => resolveSeen(null), p.timeoutMs);
      const t0 = clock();
      const acked = kp.press('9#').then(() => clock() - t0);
      const s = await seen;
      clearTimeout(timer);
      onSeen = null;
      const ackMs = await acked;
      if (!s) {
        result.missed++;
        continue;
      }
      raisedBy.set(s.id, i);
      if (record) {
        recordMs(dom, s.dom - t0);
        recordMs(frame, s.frame - t0);
        recordMs(puback, ackMs);
        result.completed++;
      }
      // Close it (ack, then close on the acknowledged update) before the next press.
      const done = new Promise<void>((r) => closed.set(s.id, r));
      officer.publish(topics.stationActions(street.stationId), JSON.stringify({ alarmId: s.id, action: 'ack' }), { qos: 1 });
      await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
      closed.delete(s.id);
    }
    result.wallSeconds = Math.round((performance.now() - t0All) / 100) / 10;
    // Every measured alarm was the pressed shop's (from the database, after the run).
    const db = openDatabase(dir);
    try {
      const shopOf = new Map((db.prepare('SELECT id, shop_id AS shopId FROM alarms').all() as { id: string; shopId: string }[]).map((r) => [r.id, r.shopId]));
      for (const [id, i] of raisedBy) if (shopOf.get(id) !== keypads[i]!.shopId) result.strays++;
    } finally {
      db.close();
    }
    result.domMs = summarize(dom, false);
    result.frameMs = summarize(frame, false);
    result.pubackMs = summarize(puback, false);
    return result;
  } finally {
    await browser?.close().catch(() => {});
    await officer?.endAsync(true).catch(() => {});
    await Promise.all(keypads.map((k) => k.close()));
    await gw?.stop();
    if (!ctx.keepData) rmSync(dir, { recursive: true, force: true });
  }
}
