/**
 * The console's door (issue 11 "Getting in"), over real HTTP on loopback against an in-process
 * gateway: the login page, sessions in an HttpOnly SameSite cookie, CSRF on every POST, idle and
 * maximum-age expiry, logout, audit rows, throttled failures, and the live feed's `/mqtt` upgrade
 * that only a session opens, logging in with the session's grant (never the password).
 */
import t from 'tap';
import mqtt from 'mqtt';
import { startGateway, tempDataDir, provisionStreet, sleep, until } from '../../helpers/gateway.js';
import { SimConsole, SimKeypad } from '../../../simulators/mqtt-devices.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { addStation, addUser } from '../../../gateway/registry/registry.js';
import type { Me } from '../../../gateway/console/contract.js';

async function setup(t: Tap.Test, overrides: Record<string, unknown> = {}) {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 4);
  const db = openDatabase(data);
  addStation(db, { id: 'PS9', name: 'Other station 其他派出所' });
  await addUser(db, { name: 'other9', role: 'officer', stationId: 'PS9', password: 'other-pass-9' });
  await addUser(db, { name: 'inst1', role: 'installer', password: 'inst-pass-1' });
  db.close();
  const gw = await startGateway(t, data, overrides as never);
  const base = `http://127.0.0.1:${gw.ports().http}`;
  return { data, street, gw, base };
}

function cookieOf(res: Response): string {
  const set = res.headers.get('set-cookie') ?? '';
  return set.split(';')[0]!;
}

async function login(base: string, username: string, password: string): Promise<{ res: Response; cookie: string }> {
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  return { res, cookie: cookieOf(res) };
}

const auditRows = (data: string, action: string) => {
  const db = openDatabase(data);
  try {
    return db.prepare('SELECT actor, action, detail FROM audit WHERE action = ? ORDER BY id').all(action) as { actor: string; action: string; detail: string }[];
  } finally {
    db.close();
  }
};

t.test('without a session only the login page is served', async (t) => {
  const { base } = await setup(t);
  const page = await fetch(`${base}/`);
  t.equal(page.status, 200);
  const html = await page.text();
  t.match(html, /<input name="username"/, 'the form has a username field');
  t.match(html, /<input name="password"[^>]*type="password"/, 'and a password field');
  t.notMatch(html, /console\.js/, "the console's script is not on the login page");
  t.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/, 'only our own scripts');
  t.equal((await fetch(`${base}/app/login.js`)).status, 200, "the login page's script is open");
  t.equal((await fetch(`${base}/app/console.js`)).status, 401, "the console's script is not");
  const api = await fetch(`${base}/api/me`);
  t.equal(api.status, 401);
  t.equal(((await api.json()) as { code: string }).code, 'LF_ERR_NOT_SIGNED_IN');
  t.equal((await fetch(`${base}/api/alarms`)).status, 401);
  t.equal((await fetch(`${base}/api/nothing-here`)).status, 401, 'an unknown API path answers 401 too: nothing is told before login');
  const health = await fetch(`${base}/health`);
  t.equal(health.status, 200, '/health stays open');
});

t.test('a login gives an HttpOnly SameSite cookie; the session sees its scope; logout ends it', async (t) => {
  const { base, street, data } = await setup(t);
  const wrong = await login(base, street.officer.username, 'not-the-password');
  t.equal(wrong.res.status, 401, 'a wrong password is refused');
  t.equal(wrong.cookie, '', 'and gets no cookie');
  t.equal(auditRows(data, 'console-login-failed').length, 1, 'the failure is an audit row');

  const ok = await login(base, street.officer.username, street.officer.password);
  t.equal(ok.res.status, 200);
  const set = ok.res.headers.get('set-cookie') ?? '';
  t.match(set, /HttpOnly/);
  t.match(set, /SameSite=Strict/);
  t.notMatch(set, new RegExp(street.officer.password), 'the cookie is not the password');
  const me = (await (await fetch(`${base}/api/me`, { headers: { cookie: ok.cookie } })).json()) as Me;
  t.equal(me.user, street.officer.username);
  t.same(me.scopes.map((s) => s.id), [street.stationId], 'an officer sees their own station');
  t.equal(me.scopes[0]!.timeZone, 'Asia/Shanghai');
  t.notMatch(JSON.stringify(me), new RegExp(street.officer.password), 'the password is nowhere in what the page gets');
  const page = await (await fetch(`${base}/`, { headers: { cookie: ok.cookie } })).text();
  t.match(page, /console\.js/, 'with a session, / is the console');
  t.equal((await fetch(`${base}/app/console.js`, { headers: { cookie: ok.cookie } })).status, 200);

  // Scope is the API's: another station's alarms are refused, not only hidden by the page.
  const other = await fetch(`${base}/api/alarms?scope=PS9`, { headers: { cookie: ok.cookie } });
  t.equal(other.status, 403);
  t.equal(((await other.json()) as { code: string }).code, 'LF_ERR_SCOPE');

  // CSRF: a POST without the token, or from another origin, is refused.
  const noToken = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: ok.cookie } });
  t.equal(noToken.status, 403);
  t.equal(((await noToken.json()) as { code: string }).code, 'LF_ERR_CSRF');
  const crossSite = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: ok.cookie, 'x-csrf-token': me.csrf, origin: 'http://evil.example' } });
  t.equal(crossSite.status, 403, 'a request from another origin is refused even with the token');
  const out = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: ok.cookie, 'x-csrf-token': me.csrf } });
  t.equal(out.status, 200, 'logout');
  t.equal((await fetch(`${base}/api/me`, { headers: { cookie: ok.cookie } })).status, 401, 'the cookie opens nothing after logout');
  t.equal(auditRows(data, 'console-login').length, 1, 'the login is an audit row');
  t.equal(auditRows(data, 'console-logout').length, 1, 'the logout is an audit row');
  t.match(auditRows(data, 'console-logout')[0]!.actor, `user:${street.officer.username}`);
});

t.test('the login form works without script: a redirect with the cookie, or the page again with an error', async (t) => {
  const { base, street } = await setup(t);
  const form = (u: string, p: string) =>
    fetch(`${base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username: u, password: p }).toString() });
  const bad = await form(street.officer.username, 'nope');
  t.equal(bad.status, 401);
  t.match(await bad.text(), /账号或密码错误/, 'the page says why, in Chinese by default');
  const good = await form(street.officer.username, street.officer.password);
  t.equal(good.status, 303);
  t.equal(good.headers.get('location'), '/');
  t.match(good.headers.get('set-cookie') ?? '', /^lf_session=/);
});

t.test('an installer has no console; an unknown user costs as much as a wrong password', async (t) => {
  const { base, data } = await setup(t);
  const inst = await login(base, 'inst1', 'inst-pass-1');
  t.equal(inst.res.status, 403);
  t.equal(((await inst.res.json()) as { code: string }).code, 'LF_ERR_SCOPE');
  t.equal(inst.cookie, '', 'no session for an installer');
  t.equal(auditRows(data, 'console-login-refused').length, 1);
  const ghost = await login(base, 'nobody-here', 'whatever');
  t.equal(ghost.res.status, 401);
});

t.test('failed logins are throttled per account', async (t) => {
  const { base, street } = await setup(t, { login: { freeFailures: 1, delayMs: 400, maxDelayMs: 400 } });
  await login(base, street.officer.username, 'wrong-1');
  const started = Date.now();
  const second = await login(base, street.officer.username, 'wrong-2');
  t.equal(second.res.status, 401);
  t.ok(Date.now() - started >= 350, 'a failure past the free ones is answered only after the delay');
  const right = await login(base, street.officer.username, street.officer.password);
  t.equal(right.res.status, 200, 'the right password still gets in (no lock-out)');
});

t.test('a session ends after its idle time and after its maximum age', async (t) => {
  const { base, street, data } = await setup(t, { console: { sessionIdleMs: 1_000, sessionMaxAgeMs: 60_000 } });
  const { cookie } = await login(base, street.officer.username, street.officer.password);
  t.equal((await fetch(`${base}/api/me`, { headers: { cookie } })).status, 200);
  await sleep(1_300);
  t.equal((await fetch(`${base}/api/me`, { headers: { cookie } })).status, 401, 'idle too long');
  t.match(auditRows(data, 'console-session-ended').map((r) => JSON.parse(r.detail).reason), ['idle']);
});

t.test('the live feed opens only with a session, and logs in with the grant, never the password', async (t) => {
  const { base, street, gw } = await setup(t);
  const http = gw.ports().http;
  // No cookie: the upgrade is refused before MQTT.
  const anon = mqtt.connect(`ws://127.0.0.1:${http}/mqtt`, { username: street.officer.username, password: street.officer.password, reconnectPeriod: 0, connectTimeout: 5_000 });
  const anonErr = await new Promise<string>((resolve) => {
    anon.once('error', (e) => resolve(String(e.message)));
    anon.once('close', () => resolve('closed'));
    anon.once('connect', () => resolve('connected'));
  });
  anon.end(true);
  t.not(anonErr, 'connected', 'no live feed without a session');

  const { cookie } = await login(base, street.officer.username, street.officer.password);
  const me = (await (await fetch(`${base}/api/me`, { headers: { cookie } })).json()) as Me;
  const page = await new SimConsole(street.stationId, { username: me.live.username, password: me.live.password }).connect(`ws://127.0.0.1:${http}${me.live.path}`, {
    clientId: `${me.live.clientIdPrefix}t1`,
    wsOptions: { headers: { cookie } },
  } as never);
  t.teardown(() => page.close());
  const kp = await new SimKeypad(street.shops[0]!.deviceId, street.shops[0]!.shopId, street.shops[0]!.creds, 1).connect(`mqtt://127.0.0.1:${gw.ports().mqtt}`);
  t.teardown(() => kp.close());
  await kp.press('9#');
  const alarm = await page.waitFor((a) => a.shopId === street.shops[0]!.shopId);
  t.equal(alarm.state, 'raised', "the page's feed gets the alarm");
  const list = (await (await fetch(`${base}/api/alarms`, { headers: { cookie } })).json()) as { alarms: { alarmId: string; rev: number }[] };
  t.same(list.alarms.map((a) => a.alarmId), [alarm.alarmId], 'the snapshot the page catches up from holds it');
  const detail = (await (await fetch(`${base}/api/alarms/${alarm.alarmId}`, { headers: { cookie } })).json()) as { shop: { name: string }; neighbours: unknown[]; timeline: { action: string }[] };
  t.equal(detail.shop.name, street.shops[0]!.name);
  t.equal(detail.neighbours.length, 3, 'the three other shops were alerted');
  t.ok(detail.timeline.some((e) => e.action === 'raised'), 'the timeline starts at the raise');
  // The consoles' hop: the page's PUBACK is the station's delivery, and the timeline shows it.
  const delivered = await until(
    'the delivery in the timeline',
    async () => ((await (await fetch(`${base}/api/alarms/${alarm.alarmId}`, { headers: { cookie } })).json()) as { timeline: { action: string; actor: string; detail: { scopeId?: string } }[] }).timeline,
    (tl) => tl.some((e) => e.action === 'delivered'),
  );
  const hop = delivered.find((e) => e.action === 'delivered')!;
  t.equal(hop.detail.scopeId, street.stationId, "delivered to the station's console");
  t.equal(hop.actor, `user:${street.officer.username}`, 'by the officer whose page had it');

  // Logout closes the page's live feed, and the grant of a session that ended opens nothing any more.
  const closed = new Promise<void>((resolve) => page.client.once('close', () => resolve()));
  await fetch(`${base}/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': me.csrf } });
  await closed;
  t.pass("logout closed the page's live feed");
  const { cookie: c2 } = await login(base, street.officer.username, street.officer.password);
  const stale = mqtt.connect(`ws://127.0.0.1:${http}/mqtt`, { username: me.live.username, password: me.live.password, reconnectPeriod: 0, wsOptions: { headers: { cookie: c2 } } } as never);
  const staleResult = await new Promise<string>((resolve) => {
    stale.once('error', (e) => resolve(String(e.message)));
    stale.once('connect', () => resolve('connected'));
  });
  stale.end(true);
  t.not(staleResult, 'connected', "an ended session's grant is refused by the broker");

  // Another station's officer: the alarm is not found, and its broker login cannot read this station.
  const other = await login(base, 'other9', 'other-pass-9');
  t.equal((await fetch(`${base}/api/alarms/${alarm.alarmId}`, { headers: { cookie: other.cookie } })).status, 404, "another station's officer is not told the alarm exists");
});
