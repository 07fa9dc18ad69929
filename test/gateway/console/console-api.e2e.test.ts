/**
 * The console's doors without a browser (issue 11 "Getting in", "Proof"), against the gateway as a
 * child process on a street provisioned through the CLI: without a session every route of the API
 * (the ROUTES table, all of it) answers 401, the page's script 401 and the live feed's upgrade is
 * refused, while /health stays open with counts only; an officer of another station is refused the
 * street's scope (403), does not find its alarm (404), sees an empty queue of its own, and its live
 * feed grant cannot subscribe to the street station's topics; the station's and the compound's
 * officers do see the alarm (the control that makes those refusals mean something), and an admin
 * may look at any scope.
 */
import t from 'tap';
import WebSocket from 'ws';
import { GatewayProcess, connectStreet, query, until } from '../../helpers/gateway.js';
import { provisionConsoleStreet, signIn, liveFeed, XSS_NAME } from '../../helpers/console-street.js';
import { ROUTES } from '../../../gateway/console/console-http.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import type { AlarmList } from '../../../gateway/console/contract.js';

t.test('anonymous requests, /health, and an officer of another station', async (t) => {
  const cs = await provisionConsoleStreet(t, 12);
  const gw = await GatewayProcess.start(t, cs.data);
  const base = `http://127.0.0.1:${gw.ports.http}`;

  await t.test('every route of the API answers 401 without a session', async (t) => {
    t.ok(ROUTES.length >= 2, `${ROUTES.length} routes in the table`);
    for (const r of [...ROUTES, { method: 'GET', path: '/api/me' }]) {
      const path = r.path.replace(/:[A-Za-z]+/g, 'dummy-1');
      const res = await fetch(base + path, { method: r.method, ...(r.method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) });
      t.equal(res.status, 401, `${r.method} ${path}: 401`);
      t.match(await res.json(), { code: 'LF_ERR_NOT_SIGNED_IN' });
    }
    // With a cookie that is no session: the same.
    const bad = await fetch(`${base}/api/alarms`, { headers: { cookie: 'lf_session=not-a-session' } });
    t.equal(bad.status, 401, 'a made-up cookie: 401');
    const app = await fetch(`${base}/app/console.js`);
    t.equal(app.status, 401, '/app/console.js: 401');
    const page = await fetch(`${base}/`);
    t.equal(page.status, 200, '/ answers the login page');
    const html = await page.text();
    t.match(html, /id="username"/);
    t.match(html, /id="password"/);
    t.notMatch(html, /console\.js/, 'the login page does not load the console');
  });

  await t.test('the live feed refuses an upgrade without a session', async (t) => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.ports.http}/mqtt`, 'mqtt');
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => {
        ws.close();
        reject(new Error('the upgrade was accepted'));
      });
      ws.on('error', () => resolve(-1));
    });
    t.equal(status, 401, '/mqtt upgrade: 401');
  });

  // An open alarm of the street (a shop of the station only) and one of the compound.
  const { keypads } = await connectStreet(t, cs.street, gw.mqttUrl);
  const raise = async (shopId: string) => {
    await keypads.get(shopId)!.press('9#');
    const rows = await until(
      `an alarm of ${shopId}`,
      async () => query<{ id: string }>(cs.data, "SELECT id FROM alarms WHERE shop_id = ? AND state = 'raised'", shopId),
      (r) => r.length === 1,
    );
    return rows[0]!.id;
  };
  const stationAlarm = await raise(cs.stationOnlyShops[0]!);
  const compoundAlarm = await raise(cs.xssShop);

  await t.test('/health stays open and names no shop, device or person', async (t) => {
    const res = await fetch(`${base}/health`);
    t.equal(res.status, 200);
    const text = await res.text();
    for (const s of cs.street.shops) {
      t.notOk(text.includes(s.shopId), `no shop id ${s.shopId}`);
      t.notOk(text.includes(s.deviceId), `no device id ${s.deviceId}`);
    }
    t.notOk(text.includes(XSS_NAME) || text.includes('img src'), 'no shop name');
    for (const u of Object.values(cs.users)) t.notOk(text.includes(u.username), `no user ${u.username}`);
    t.notOk(text.includes(stationAlarm), 'no alarm id');
  });

  await t.test('the station and the compound see their alarms (the control)', async (t) => {
    const st = await signIn(base, cs.users.station);
    const list = (await (await st.get(`/api/alarms?scope=${cs.stationId}`)).json()) as AlarmList;
    t.same(list.alarms.map((a) => a.alarmId).sort(), [stationAlarm, compoundAlarm].sort(), 'the station sees both');
    t.equal((await st.get(`/api/alarms/${stationAlarm}`)).status, 200, 'the station opens its alarm');
    const co = await signIn(base, cs.users.compound);
    const clist = (await (await co.get('/api/alarms')).json()) as AlarmList;
    t.equal(clist.scope.id, cs.compoundId);
    t.same(clist.alarms.map((a) => a.alarmId), [compoundAlarm], 'the compound sees its own shop only');
    t.equal((await co.get(`/api/alarms/${stationAlarm}`)).status, 404, "the compound does not find the station's other alarm");
    t.equal((await co.get(`/api/alarms?scope=${cs.stationId}`)).status, 403, 'the compound may not ask for the whole station');
  });

  await t.test('an admin may look at any scope', async (t) => {
    const admin = await signIn(base, cs.users.admin);
    t.same(admin.me.scopes.map((s) => s.id).sort(), [cs.compoundId, cs.stationId, 'PS2'].sort(), 'every station and compound');
    const st = (await (await admin.get(`/api/alarms?scope=${cs.stationId}`)).json()) as AlarmList;
    t.same(st.alarms.map((a) => a.alarmId).sort(), [stationAlarm, compoundAlarm].sort(), "the street station's queue");
    const ps2 = (await (await admin.get('/api/alarms?scope=PS2')).json()) as AlarmList;
    t.same(ps2.alarms, [], "the other station's (empty) queue");
  });

  await t.test('an officer of another station sees none of it', async (t) => {
    const other = await signIn(base, cs.users.other);
    t.same(other.me.scopes.map((s) => s.id), ['PS2'], 'its one scope');
    const refused = await other.get(`/api/alarms?scope=${cs.stationId}`);
    t.equal(refused.status, 403, '?scope=<street station>: 403');
    t.match(await refused.json(), { code: 'LF_ERR_SCOPE' });
    t.equal((await other.get(`/api/alarms?scope=${cs.compoundId}`)).status, 403, '?scope=<compound>: 403');
    for (const id of [stationAlarm, compoundAlarm]) {
      const r = await other.get(`/api/alarms/${id}`);
      t.equal(r.status, 404, `/api/alarms/${id}: 404`);
    }
    const own = (await (await other.get('/api/alarms')).json()) as AlarmList;
    t.equal(own.scope.id, 'PS2');
    t.same(own.alarms, [], 'its queue is empty while the street has open alarms');

    // Its live feed: the grant works for its own station, and cannot reach the street's topics.
    const feed = await liveFeed(gw.ports.http, other, 'probe');
    t.teardown(() => feed.endAsync(true).catch(() => {}));
    /** The SUBACK's granted QoS (128: refused; mqtt.js rejects those, with the packet). */
    const granted = (topic: string) =>
      feed.subscribeAsync(topic, { qos: 1 }).then(
        (g) => g[0]!.qos,
        (err: Error & { packet?: { granted?: number[] } }) => {
          if (err.packet?.granted) return err.packet.granted[0]!;
          throw err;
        },
      );
    t.not(await granted(topics.stationAlarms('PS2')), 128, 'subscribes to its own station');
    for (const topic of [topics.stationAlarms(cs.stationId), topics.stationAlarms(cs.compoundId), topics.stationErrors(cs.stationId), topics.shopAlerts(cs.stationOnlyShops[0]!)]) {
      t.equal(await granted(topic), 128, `refused: ${topic}`);
    }
  });
});
