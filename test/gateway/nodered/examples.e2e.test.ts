/**
 * The four example flows of the Lianfang node package (gateway/nodered/lianfang-nodes/examples)
 * against the real gateway (issue 12 "each shipped example flow runs in a test"): the gateway as a
 * child process with Node-RED on, each example loaded from the package, its settings in the tab's
 * env, deployed through POST /flows/flows with an installer's token; real alarms from simulated
 * MQTT keypads (9#, a duress PIN), real faults (a tamper switch), a local HTTP server and a Modbus
 * TCP server on loopback ports receiving what the flows send.
 *
 * One gateway for the four (Node-RED takes seconds to start); each subtest deploys its own example
 * (a full deploy replaces the one before) and closes the alarms it raised, so that the next flow
 * sees none of them.
 */
import t from 'tap';
import { cli, connectStreet, query, until } from '../../helpers/gateway.js';
import { raiseAlarm } from '../../helpers/console-street.js';
import { provisionNodeRedStreet, startWithNodeRed, token, deploy, flowsUrl, receiver, INSTALLER, type Received } from '../../helpers/node-red.js';
import { exampleFlow, withEnv, startModbus, readyProbe } from '../../helpers/node-red-harness.js';
import type { SimConsole } from '../../../simulators/mqtt-devices.js';

t.setTimeout(600_000);

const PIN = '24680864';
const DURESS_PIN = '13577531';
const COMPOUND = 'C9';

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const r = await cli(args, env);
  if (r.code !== 0) throw new Error(`lianfang ${args.join(' ')}: ${r.stderr}`);
}

/**
 * The officer acknowledges and closes an alarm (false alarm); resolves when the console has it
 * closed and the flows have been given the close (see readyProbe), so that the next example's
 * flows are never handed one of this alarm's changes late.
 */
async function closeAlarm(officer: SimConsole, probe: Awaited<ReturnType<typeof receiver>>, alarmId: string): Promise<void> {
  await officer.act({ alarmId, action: 'ack' });
  await officer.act({ alarmId, action: 'close', disposition: 'false' });
  await officer.waitFor((a) => a.alarmId === alarmId && a.state === 'closed', 20_000);
  await probe.next((r) => r.path.startsWith('/closed/') && json(r).alarmId === alarmId, 30_000);
}

const json = (r: Received) => JSON.parse(r.body) as any;

t.test('the example flows', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 6);
  const d = ['--data', data];
  const [a, b, c, dShop, e, f] = street.shops.map((s) => s.shopId) as [string, string, string, string, string, string];
  // Shops a and b in grid G1 (b in a compound of the station), c in G2; dShop has a duress PIN.
  await run(['station', 'add', '--id', COMPOUND, '--name', '花园小区门卫室 Garden Court guard room', '--compound-of', street.stationId, ...d]);
  await run(['shop', 'edit', a, '--grid', 'G1', ...d]);
  await run(['shop', 'edit', b, '--grid', 'G1', '--compound', COMPOUND, ...d]);
  await run(['shop', 'edit', c, '--grid', 'G2', ...d]);
  await run(['shop', 'pin', dShop, ...d], { LF_PIN: PIN, LF_DURESS_PIN: DURESS_PIN });
  const gw = await startWithNodeRed(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const bearer = await token(gw, INSTALLER);
  const probe = await receiver(t);
  /** Deploys an example with its settings; resolves once its flow runs. */
  const install = async (name: string, env: Record<string, string>) => {
    const r = await deploy(gw, bearer, [...withEnv(exampleFlow(name), env), ...readyProbe(probe.url, name, { closed: true })]);
    if (r.status !== 200 && r.status !== 204) throw new Error(`deploy ${name}: ${r.status} ${r.body}`);
    await probe.next((p) => p.path === `/ready/${name}`, 60_000);
  };
  const raise = (shopId: string) => raiseAlarm(data, keypads.get(shopId)!);

  t.test('webhook on every alarm: a 9# POSTs the alarm with its shop', async (t) => {
    const hook = await receiver(t);
    await install('webhook-on-every-alarm', { WEBHOOK_URL: `${hook.url}/hook` });
    const alarmId = await raise(a);
    const got = await hook.next((r) => json(r).alarmId === alarmId, 30_000);
    const shop = query<{ name: string; address: string; door_plate: string }>(data, 'SELECT name, address, door_plate FROM shops WHERE id = ?', a)[0]!;
    const raisedAt = query<{ raised_at: string }>(data, 'SELECT raised_at FROM alarms WHERE id = ?', alarmId)[0]!.raised_at;
    t.equal(got.path, '/hook');
    t.match(got.headers['content-type'], /^application\/json/);
    t.same(json(got), { alarmId, kind: 'panic', state: 'raised', duress: false, shopName: shop.name, address: shop.address, doorPlate: shop.door_plate, grid: 'G1', raisedAt, station: street.stationId });
    await closeAlarm(officer, probe, alarmId);
    t.notOk(hook.received.some((r) => json(r).state !== 'raised'), 'only raised alarms are posted');
  });

  t.test('two robbery alarms in one grid in one day: the second notifies every unit and is noted on its timeline', async (t) => {
    const notify = await receiver(t);
    await install('two-robberies-per-grid', { NOTIFY_URL: `${notify.url}/grid`, THRESHOLD: '2', TIME_ZONE: 'Asia/Shanghai' });
    const first = await raise(a);
    const otherGrid = await raise(c);
    const second = await raise(b);
    const got = await notify.next(() => true, 30_000);
    const date = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date());
    t.same(json(got), { grid: 'G1', date, count: 2, threshold: 2, alarms: [first, second], units: [street.stationId, COMPOUND] }, 'grid G1, both alarms, the station and the compound');
    const label = exampleFlow('two-robberies-per-grid')[0]!.label as string;
    const notes = await until(
      'the note on the second alarm',
      async () => query<{ alarm_id: string; actor: string; detail: string }>(data, "SELECT alarm_id, actor, detail FROM audit WHERE action = 'note'"),
      (rows) => rows.length > 0,
    );
    t.same(
      notes.map((n) => [n.alarm_id, n.actor, JSON.parse(n.detail).note]),
      [[second, `flow:${label}`, 'Robbery alarm 2 in grid G1 today: every responsible unit notified / 网格 G1 今日第 2 起抢劫报警：已通知所有责任单位']],
      'on the second alarm only, by the flow',
    );
    for (const id of [first, otherGrid, second]) await closeAlarm(officer, probe, id);
    t.equal(notify.received.length, 1, 'one notification');
  });

  t.test('street siren relay: a duress alarm never switches the coil; an open alarm does, until it is closed', async (t) => {
    const modbus = await startModbus(t);
    await install('relay-while-alarm-open', { STATION: street.stationId, MODBUS_HOST: '127.0.0.1', MODBUS_PORT: String(modbus.port), MODBUS_UNIT: '1', COIL: '2' });
    // A duress PIN with no alarm open raises a duress alarm: the flow sees it and keeps the coil off.
    await keypads.get(dShop)!.press(`*${DURESS_PIN}#`);
    const duress = await officer.waitFor((x) => x.shopId === dShop && x.duress && x.state === 'raised', 20_000);
    await until('the coil written off', async () => modbus.writes.length, (n) => n >= 1, 30_000);
    t.same(modbus.writes, [{ addr: 2, value: false, unit: 1 }], 'the duress alarm did not switch it on');

    const open = await raise(a);
    await until('the coil on', async () => modbus.coils.get(2), (v) => v === true, 30_000);
    await closeAlarm(officer, probe, open);
    await until('the coil off', async () => modbus.coils.get(2), (v) => v === false, 30_000);
    await closeAlarm(officer, probe, duress.alarmId);
    t.same(modbus.writes.map((w) => w.value), [false, true, false], 'on while the alarm was open, off when it closed');
  });

  t.test('daily fault digest: the open fault and the one cleared today, by kind, when the inject runs', async (t) => {
    const digest = await receiver(t);
    await install('daily-fault-digest', { DIGEST_URL: `${digest.url}/digest` });
    const open = keypads.get(e)!;
    const gone = keypads.get(f)!;
    await open.send({ type: 'tamper', active: true } as never);
    await gone.send({ type: 'tamper', active: true } as never);
    await gone.send({ type: 'tamper', active: false } as never);
    // Press the inject's button (as the editor does) until the digest has both: the flow keeps the
    // faults as the gateway feeds them, a moment after their commit.
    const body = await until(
      'a digest with both faults',
      async () => {
        const n = digest.received.length;
        const res = await fetch(flowsUrl(gw, '/inject/lf03000000000003'), { method: 'POST', headers: { authorization: `Bearer ${bearer}` } });
        if (res.status !== 200) throw new Error(`inject: ${res.status}`);
        return json(await digest.next((r) => digest.received.indexOf(r) >= n, 20_000));
      },
      (x) => x.open.some((y: any) => y.deviceId === open.deviceId) && x.cleared.some((y: any) => y.deviceId === gone.deviceId),
      60_000,
    );
    t.same(body.open.map((x: any) => [x.fault, x.deviceId, x.shopId]), [['tamper', open.deviceId, e]]);
    t.same(body.cleared.map((x: any) => [x.fault, x.deviceId]), [['tamper', gone.deviceId]]);
    t.same(body.raised.map((x: any) => x.deviceId).sort(), [open.deviceId, gone.deviceId].sort(), 'both raised in the last 24 h');
    t.match(body.text.en, new RegExp(`Open faults: 1\\n  tamper \\(1\\)\\n    shop ${e}, device ${open.deviceId.replace(/[.]/g, '\\.')} since `));
    t.match(body.text.zh, /未恢复故障：1 个/);
    t.match(body.text.en, /Raised in the last 24 h: 2; cleared: 1/);
  });
});
