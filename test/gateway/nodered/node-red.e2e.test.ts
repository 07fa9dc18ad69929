/**
 * Embedded Node-RED, end to end (issue 12 "Proof"): the gateway as a child process with Node-RED on;
 * an installer's token from /flows/auth/token deploys a flow through POST /flows/flows; a simulated
 * keypad's 9# reaches the flow, whose HTTP request arrives at a local server; anonymous admin
 * requests get 401 and an officer's deploy 403; who deployed is in the audit trail; HTTP-in
 * endpoints need a gateway login; the child runs at nice 19 under SCHED_IDLE, its listener only answers the
 * gateway's proxy, its credentials file is encrypted with a secret derived from the gateway key.
 */
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { cli, connectStreet, query, until } from '../../helpers/gateway.js';
import { ADMIN, INSTALLER, OFFICER, adminGet, deploy, flowsUrl, nodeRedHealth, provisionNodeRedStreet, receiver, startWithNodeRed, token, tokenFor } from '../../helpers/node-red.js';

const TAB = 'Tell the city platform';

t.test('a flow deployed by an installer gets every alarm; officers read, anonymous callers get nothing', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 4);
  const hook = await receiver(t);
  const gw = await startWithNodeRed(t, data, { LF_NODE_RED_TOKEN_EXPIRY_MS: '600000' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);

  // Anonymous: the editor's page loads (it shows the login), its API does not.
  t.equal((await adminGet(gw, '/flows', null)).status, 401, 'anonymous GET /flows/flows: 401');
  t.equal((await adminGet(gw, '/settings', null)).status, 401, 'anonymous GET /flows/settings: 401');
  t.equal((await deploy(gw, null, [])).status, 401, 'anonymous deploy: 401');
  t.equal((await tokenFor(gw, { username: INSTALLER.username, password: 'wrong-password' })).status, 403, 'a wrong password gets no token');
  t.equal((await tokenFor(gw, { username: 'nobody', password: 'x' })).token, null, 'an unknown user gets no token');
  // The editor's logins go through the gateway's throttle with the caller's address, like every other login.
  const refusedLogin = await gw.waitForLog((l) => l.msg.startsWith('connection refused: bad credentials') && l.username === INSTALLER.username);
  t.equal(refusedLogin.address, '127.0.0.1', 'the failed editor login is counted against its address');

  const inst = await token(gw, INSTALLER);
  const off = await token(gw, OFFICER);
  const adm = await token(gw, ADMIN);
  const officerRead = await adminGet(gw, '/flows', off);
  t.equal(officerRead.status, 200, 'an officer may read the flows');
  const flows = [
    { id: 'lf7a0000000000a1', type: 'tab', label: TAB },
    { id: 'lf7a0000000000a2', type: 'lianfang-alarm-in', z: 'lf7a0000000000a1', name: 'every alarm', stations: '', kinds: '', states: 'raised', includeTests: false, wires: [['lf7a0000000000a3']] },
    { id: 'lf7a0000000000a3', type: 'http request', z: 'lf7a0000000000a1', method: 'POST', ret: 'txt', paytoqs: 'ignore', url: `${hook.url}/alarm`, wires: [[]] },
    { id: 'lf7a0000000000a4', type: 'http in', z: 'lf7a0000000000a1', url: '/open-alarms', method: 'get', wires: [['lf7a0000000000a5']] },
    { id: 'lf7a0000000000a5', type: 'http response', z: 'lf7a0000000000a1', statusCode: '200', wires: [] },
  ];
  const refused = await deploy(gw, off, flows);
  t.equal(refused.status, 403, 'an officer may not deploy');
  const deployed = await deploy(gw, inst, flows);
  t.ok(deployed.status === 200 || deployed.status === 204, `the installer deploys (${deployed.status} ${deployed.body})`);
  t.equal((await adminGet(gw, '/flows', adm)).status, 200, 'an admin reads too');

  // The deploy, and who made it, is in the audit trail.
  const rows = await until(
    'the deploy audit row',
    async () => query<{ actor: string; detail: string }>(data, "SELECT actor, detail FROM audit WHERE action = 'flows-deployed'"),
    (r) => r.length > 0,
  );
  t.equal(rows[0]!.actor, `user:${INSTALLER.username}`, 'the deploy is the installer\'s');
  t.same(JSON.parse(rows[0]!.detail).flows, [TAB], 'with the names of the flows deployed');
  t.ok(query(data, "SELECT 1 FROM audit WHERE action = 'node-red-login' AND actor = ?", `user:${INSTALLER.username}`).length > 0, 'the editor login is audited');

  // A shopkeeper presses 9#: the console has it, and so does the flow's webhook.
  const shop = street.shops[1]!;
  await keypads.get(shop.shopId)!.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === shop.shopId && a.state === 'raised', 20_000);
  const got = await hook.next((r) => r.path === '/alarm', 30_000);
  const body = JSON.parse(got.body) as { alarmId: string; shopId: string; state: string; stationId: string };
  t.equal(body.alarmId, alarm.alarmId, 'the flow posted the alarm the console got');
  t.equal(body.shopId, shop.shopId);
  t.equal(body.state, 'raised');
  t.equal(got.headers['content-type']?.startsWith('application/json'), true, 'as JSON');
  officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'acknowledged');

  // HTTP-in endpoints of flows: a gateway login, or nothing.
  const api = `http://127.0.0.1:${gw.ports.http}/flows-api/open-alarms`;
  const anon = await fetch(api);
  t.equal(anon.status, 401, 'an HTTP-in endpoint without a login: 401');
  t.match(anon.headers.get('www-authenticate') ?? '', /^Basic /, 'asking for Basic');
  const basic = (l: { username: string; password: string }) => ({ authorization: `Basic ${Buffer.from(`${l.username}:${l.password}`).toString('base64')}` });
  t.equal((await fetch(api, { headers: basic({ username: OFFICER.username, password: 'nope' }) })).status, 401, 'a wrong password: 401');
  t.equal((await fetch(api, { headers: basic(OFFICER) })).status, 200, 'with a gateway account: 200');

  // The child: SCHED_IDLE and nice 19 on every thread; its own listener answers only the gateway's proxy.
  const h = await nodeRedHealth(gw);
  t.equal(h.state, 'running');
  const tasks = readdirSync(`/proc/${h.pid}/task`);
  t.ok(tasks.length > 1, 'the child has threads');
  for (const task of tasks) {
    // proc(5): from the 3rd field on, after the command's ")"; nice is the 19th, policy the 41st (5 = SCHED_IDLE).
    const fields = readFileSync(`/proc/${h.pid}/task/${task}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    t.same([Number(fields[19 - 3]), Number(fields[41 - 3])], [19, 5], `thread ${task} runs at nice 19 under SCHED_IDLE`);
  }
  t.match(gw.logs.find((l) => l.msg === 'node-red starting'), { nodeRedPid: Number, nice: 19, policy: 'idle' }, 'logged with the child\'s pid, its nice and policy');
  const listening = gw.logs.find((l) => l.msg === 'node-red ready')!;
  const direct = await new Promise<number>((resolve, reject) =>
    request({ host: '127.0.0.1', port: listening.port as number, path: '/flows/flows', headers: { authorization: `Bearer ${inst}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end(),
  );
  t.equal(direct, 403, 'Node-RED\'s own port, even with a token, answers only the gateway');
  // And that port listens on loopback only (the kernel's table of listening sockets).
  const portHex = (listening.port as number).toString(16).toUpperCase().padStart(4, '0');
  const listeners = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[1]?.endsWith(`:${portHex}`) && c[3] === '0A')
      .map((c) => c[1]!.split(':')[0]),
  );
  t.same(listeners, ['0100007F'], 'Node-RED listens on 127.0.0.1 alone');

  // The editor's WebSocket, through the gateway's port: a token is needed, and enough.
  const comms = async (auth: string) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.ports.http}/flows/comms`);
    await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error('no WebSocket')))));
    const answer = new Promise<unknown>((resolve) => (ws.onmessage = (e) => resolve(JSON.parse(String(e.data)))));
    ws.send(JSON.stringify({ auth }));
    const a = await answer;
    ws.close();
    return a;
  };
  t.same(await comms(inst), { auth: 'ok' }, 'the editor\'s WebSocket accepts the installer\'s token');
  t.same(await comms('not-a-token'), { auth: 'fail' }, 'and refuses a made-up one');

  // A revoked user's token stops working at once.
  t.equal((await cli(['user', 'revoke', ADMIN.username, '--data', data])).code, 0, 'admin revoked');
  await until('the revoked token refused', async () => (await adminGet(gw, '/flows', adm)).status, (s) => s === 401);
  t.pass('a revoked account\'s token is refused');
});

t.test('tokens expire; flow credentials are encrypted with a key derived from the gateway key', async (t) => {
  const { data } = await provisionNodeRedStreet(t, 1);
  const gw = await startWithNodeRed(t, data, { LF_NODE_RED_TOKEN_EXPIRY_MS: '2000' });
  const r = await tokenFor(gw, INSTALLER);
  t.equal(r.expiresIn, 2, 'the token says it lasts nodeRed.tokenExpiryMs');
  t.equal((await adminGet(gw, '/flows', r.token)).status, 200, 'it works at first');
  const secret = 'hook-password-5813';
  const flows = [
    { id: 'lf7b0000000000b1', type: 'tab', label: 'With a secret' },
    { id: 'lf7b0000000000b2', type: 'http request', z: 'lf7b0000000000b1', method: 'GET', url: 'http://127.0.0.1:9/', authType: 'basic', credentials: { user: 'city', password: secret }, wires: [[]] },
  ];
  const d = await deploy(gw, r.token!, flows);
  t.ok(d.status === 200 || d.status === 204, 'deployed with a credential');
  t.match(await (await adminGet(gw, '/credentials/http-request/lf7b0000000000b2', r.token)).json(), { user: 'city', has_password: true }, 'the credential was taken');
  const cred = readFileSync(join(data, 'node-red', 'flows_cred.json'), 'utf8');
  t.notMatch(cred, secret, 'the credential is not stored in clear');
  t.match(JSON.parse(cred), { $: String }, 'but encrypted');
  t.notMatch(readFileSync(join(data, 'node-red', 'flows.json'), 'utf8'), secret, 'nor in the flows file');
  await until('the token expired', async () => (await adminGet(gw, '/flows', r.token)).status, (s) => s === 401, 15_000);
  t.pass('after nodeRed.tokenExpiryMs the token is refused');
});
