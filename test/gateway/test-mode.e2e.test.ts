/**
 * Test mode over real MQTT against the gateway as a child process, driven by the CLI as a child
 * process (gateway/alarm/test-mode.ts, gateway/cli/lianfang.ts `test`): with the shop in test mode a
 * 9# reaches neither the console nor any neighbour (all subscribed) while `test status` shows the
 * test alarm; after `test stop` a 9# is a real alarm that reaches them all. Test mode written by
 * the CLI without a gateway is read at start, survives a restart, and expires by itself.
 */
import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query, sleep, cli, until } from '../helpers/gateway.js';

/** Long enough for a message that was sent to have arrived many times over. */
const QUIET_MS = 2_000;

interface Status {
  scope: string;
  targetId: string;
  until: string;
  alarms: { alarmId: string }[];
}

const testAlarms = (data: string, shopId: string) => query<{ id: string }>(data, 'SELECT id FROM alarms WHERE shop_id = ? AND test = 1 ORDER BY raised_at, id', shopId).map((r) => r.id);

t.test('in test mode a 9# reaches no console and no neighbour; after test stop it reaches them all', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const origin = street.shops[5].shopId;
  const gw = await GatewayProcess.start(t, data, { LF_ESCALATION_RING_INTERVAL_MS: '3600000' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const kp = keypads.get(origin)!;
  const expected = nearestShops(data, origin, 10);

  const started = await cli(['test', 'start', '--shop', origin, '--minutes', '30', '--data', data, '--json']);
  t.equal(started.code, 0, started.stderr);
  t.match(JSON.parse(started.stdout), { scope: 'shop', targetId: origin, gatewayRunning: true });

  await kp.press('9#');
  const [testAlarm] = await until('the test alarm', async () => testAlarms(data, origin), (ids) => ids.length === 1);
  await sleep(QUIET_MS);
  t.same(officer.updates.filter((a) => a.shopId === origin), [], 'the console got nothing');
  for (const [shopId, k] of keypads) t.same(k.alerts, [], `${shopId} got nothing`);
  t.same(query(data, 'SELECT count(*) AS n FROM outbox WHERE alarm_id = ?', testAlarm), [{ n: 0 }], 'no outbox row');
  const status = await cli(['test', 'status', '--data', data, '--json']);
  t.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as Status[];
  t.match(rows, [{ scope: 'shop', targetId: origin, alarms: [{ alarmId: testAlarm }] }], 'test status shows the test alarm');
  const table = await cli(['test', 'status', '--data', data]);
  t.ok(table.stdout.includes(origin) && table.stdout.includes(testAlarm), 'the table too');

  const stopped = await cli(['test', 'stop', '--shop', origin, '--data', data, '--json']);
  t.equal(stopped.code, 0, stopped.stderr);
  t.match(JSON.parse(stopped.stdout), { stopped: true, gatewayRunning: true });
  await kp.press('9#');
  const real = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  t.equal(real.test, false, 'the console gets a real alarm');
  t.not(real.alarmId, testAlarm);
  await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((x) => x.alarmId === real.alarmId && x.state === 'raised')));
  t.pass('the 10 nearest neighbours get it');
  t.same(JSON.parse((await cli(['test', 'status', '--data', data, '--json'])).stdout), [], 'nothing in test mode');
});

t.test('test mode written without a gateway is read at start, survives a restart, and expires by itself', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const origin = street.shops[5].shopId;
  const offline = await cli(['test', 'start', '--shop', origin, '--minutes', '30', '--data', data, '--json']);
  t.equal(offline.code, 0, offline.stderr);
  t.match(JSON.parse(offline.stdout), { gatewayRunning: false });

  const env = { LF_ESCALATION_RING_INTERVAL_MS: '3600000' };
  const gw1 = await GatewayProcess.start(t, data, env);
  const { keypads, console: officer } = await connectStreet(t, street, gw1.mqttUrl);
  const kp = keypads.get(origin)!;
  await kp.press('9#');
  await until('a test alarm', async () => testAlarms(data, origin), (ids) => ids.length === 1);

  await gw1.kill('SIGTERM');
  const gw2 = await GatewayProcess.start(t, data, env, ['--mqtt-port', String(gw1.ports.mqtt)]);
  await kp.press('9#');
  await until('a second test alarm after the restart', async () => testAlarms(data, origin), (ids) => ids.length === 2);

  // A short test mode through the running gateway replaces the long one; it ends by itself.
  const short = await cli(['test', 'start', '--shop', origin, '--seconds', '2', '--data', data, '--json']);
  t.equal(short.code, 0, short.stderr);
  t.match(JSON.parse(short.stdout), { gatewayRunning: true });
  await until('the expiry audit row', async () => query(data, "SELECT count(*) AS n FROM audit WHERE action = 'test-expired'"), (r) => (r[0] as { n: number }).n === 1, 30_000);
  await sleep(QUIET_MS);
  t.same(officer.updates.filter((a) => a.shopId === origin), [], 'the console never heard of the test alarms');
  await kp.press('9#');
  const real = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  t.equal(real.test, false, 'after the expiry a 9# is a real alarm');
  t.equal(testAlarms(data, origin).length, 2, 'no more test alarms');
  void gw2;
});
