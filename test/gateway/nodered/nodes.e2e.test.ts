/**
 * The Lianfang nodes against the real gateway (its Node-RED child, the IPC bridge, flow calls): a
 * flow deployed through POST /flows/flows as an installer posts what each in-node sends to a local
 * HTTP server. A keypad's event reaches `lianfang-event-in` without its keys; a test alarm reaches
 * only the `lianfang-alarm-in` that asks for test alarms; a tamper reaches `lianfang-fault-in`
 * raised then cleared; `lianfang-command-out` puts a display command on a keypad and is refused
 * (LF_ERR_DURESS_SILENT, seen by a catch node) at a shop with an open duress alarm;
 * `lianfang-alarm-note` notes an alarm's timeline as `flow:<tab label>`. The nodes' filters one by
 * one: examples.harness.test.ts.
 */
import t from 'tap';
import { cli, connectStreet, query, until } from '../../helpers/gateway.js';
import { provisionNodeRedStreet, startWithNodeRed, token, deploy, flowsUrl, receiver, INSTALLER, type Received } from '../../helpers/node-red.js';
import { readyProbe, type FlowNode } from '../../helpers/node-red-harness.js';

t.setTimeout(600_000);

const PIN = '24680864';
const DURESS_PIN = '13577531';
const LABEL = 'Lianfang nodes e2e';
const Z = 'lf7e000000000000';

/** A function node that posts `msg.<what>` with the node's name as the path. */
function poster(id: string, path: string, x: number, y: number): FlowNode[] {
  return [
    { id, z: Z, type: 'function', name: path, func: `msg.url = env.get('URL') + '/${path}';\nmsg.headers = { 'content-type': 'application/json' };\nmsg.payload = { payload: msg.payload, shop: msg.shop, alarmId: msg.alarmId, duress: msg.duress, test: msg.test, topic: msg.topic, error: msg.error };\nreturn msg;`, outputs: 1, timeout: 0, noerr: 0, libs: [], x, y, wires: [[`${id}p`]] },
    { id: `${id}p`, z: Z, type: 'http request', method: 'POST', ret: 'txt', paytoqs: 'ignore', url: '', tls: '', persist: false, proxy: '', authType: '', senderr: false, headers: [], x: x + 200, y, wires: [[]] },
  ];
}

function flow(url: string, keypadId: string, duressShop: string): FlowNode[] {
  return [
    { id: Z, type: 'tab', label: LABEL, env: [{ name: 'URL', value: url, type: 'str' }] },
    { id: 'lf7e000000000001', z: Z, type: 'lianfang-event-in', types: 'keypad,tamper', shops: '', includeTests: false, x: 100, y: 40, wires: [['lf7e0000000000e1']] },
    ...poster('lf7e0000000000e1', 'event', 300, 40),
    { id: 'lf7e000000000002', z: Z, type: 'lianfang-alarm-in', stations: '', kinds: '', states: 'raised', includeTests: false, x: 100, y: 100, wires: [['lf7e0000000000a1', 'lf7e0000000000n1']] },
    ...poster('lf7e0000000000a1', 'alarm', 300, 100),
    { id: 'lf7e000000000003', z: Z, type: 'lianfang-alarm-in', stations: '', kinds: '', states: 'raised', includeTests: true, x: 100, y: 160, wires: [['lf7e0000000000t1']] },
    ...poster('lf7e0000000000t1', 'alarm-with-tests', 300, 160),
    { id: 'lf7e000000000004', z: Z, type: 'lianfang-fault-in', faults: 'tamper', changes: 'state', x: 100, y: 220, wires: [['lf7e0000000000f1']] },
    ...poster('lf7e0000000000f1', 'fault', 300, 220),
    // An alarm's first rev gets a note.
    { id: 'lf7e0000000000n1', z: Z, type: 'function', name: 'first rev', func: 'return msg.payload.rev === 1 ? msg : null;', outputs: 1, timeout: 0, noerr: 0, libs: [], x: 300, y: 280, wires: [['lf7e0000000000n2']] },
    { id: 'lf7e0000000000n2', z: Z, type: 'lianfang-alarm-note', note: 'seen by the flow / 流程已收到', x: 500, y: 280, wires: [[]] },
    // The buttons: a display text to the keypad, a sounder to the duress shop.
    { id: 'lf7e0000000000c1', z: Z, type: 'inject', props: [{ p: 'payload' }], payload: '{"command":"display","text":"Flow says hi","line2":"流程问好"}', payloadType: 'json', repeat: '', crontab: '', once: false, topic: '', x: 100, y: 340, wires: [['lf7e0000000000c2']] },
    { id: 'lf7e0000000000c2', z: Z, type: 'lianfang-command-out', deviceId: keypadId, shopId: '', command: '', x: 300, y: 340, wires: [['lf7e0000000000r1']] },
    ...poster('lf7e0000000000r1', 'command', 500, 340),
    { id: 'lf7e0000000000c3', z: Z, type: 'inject', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', crontab: '', once: false, topic: '', x: 100, y: 400, wires: [['lf7e0000000000c4']] },
    { id: 'lf7e0000000000c4', z: Z, type: 'lianfang-command-out', deviceId: '', shopId: duressShop, command: 'sounder', on: true, seconds: '30', x: 300, y: 400, wires: [['lf7e0000000000r1']] },
    { id: 'lf7e0000000000x1', z: Z, type: 'catch', scope: ['lf7e0000000000c2', 'lf7e0000000000c4'], uncaught: false, x: 100, y: 460, wires: [['lf7e0000000000x2']] },
    ...poster('lf7e0000000000x2', 'error', 300, 460),
  ];
}

const body = (r: Received) => JSON.parse(r.body) as any;

t.test('each node against the gateway', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 4);
  const [plain, inTest, duressShop] = street.shops as [(typeof street.shops)[0], (typeof street.shops)[0], (typeof street.shops)[0]];
  const pinned = await cli(['shop', 'pin', plain.shopId, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS_PIN });
  t.equal(pinned.code, 0, pinned.stderr);
  const pinned2 = await cli(['shop', 'pin', duressShop.shopId, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS_PIN });
  t.equal(pinned2.code, 0, pinned2.stderr);
  const gw = await startWithNodeRed(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const sink = await receiver(t);
  const bearer = await token(gw, INSTALLER);
  const deployed = await deploy(gw, bearer, [...flow(sink.url, plain.deviceId, duressShop.shopId), ...readyProbe(sink.url, 'nodes')]);
  t.ok(deployed.status === 200 || deployed.status === 204, `deployed: ${deployed.status} ${deployed.body}`);
  await sink.next((r) => r.path === '/ready/nodes', 60_000);
  const press = (id: string) => fetch(flowsUrl(gw, `/inject/${id}`), { method: 'POST', headers: { authorization: `Bearer ${bearer}` } });
  const at = (path: string) => (r: Received) => r.path === `/${path}`;

  // A 9# and a PIN: the keypad events arrive without their keys; the alarm once per node.
  const kp = keypads.get(plain.shopId)!;
  await kp.press('9#');
  const alarm = body(await sink.next(at('alarm'), 30_000));
  t.match(alarm, { alarmId: String, duress: false, test: false, topic: 'lianfang/alarms/raised', shop: { shopId: plain.shopId }, payload: { shopId: plain.shopId, state: 'raised' } });
  await sink.next((r) => at('alarm-with-tests')(r) && body(r).alarmId === alarm.alarmId, 30_000);
  await kp.press(`*${PIN}#`);
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'cancelled', 20_000);
  const events = await until('two keypad events', async () => sink.received.filter(at('event')), (r) => r.length >= 2, 30_000);
  t.same(events.map((r) => [body(r).payload.type, body(r).topic, body(r).payload.shopId]), [['keypad', 'lianfang/events/keypad', plain.shopId], ['keypad', 'lianfang/events/keypad', plain.shopId]]);
  t.notOk(events.some((r) => r.body.includes('keys') || r.body.includes(PIN) || r.body.includes('9#')), 'no keys, no PIN');

  // The note on the alarm's timeline, by the flow.
  const notes = await until('the flow note', async () => query<{ actor: string; detail: string }>(data, "SELECT actor, detail FROM audit WHERE action = 'note' AND alarm_id = ?", alarm.alarmId), (r) => r.length > 0, 30_000);
  t.same(notes.map((n) => [n.actor, JSON.parse(n.detail).note]), [[`flow:${LABEL}`, 'seen by the flow / 流程已收到']]);

  // A tamper: raised then cleared, each once.
  await kp.send({ type: 'tamper', active: true } as never);
  await kp.send({ type: 'tamper', active: false } as never);
  const faults = await until('the tamper raised and cleared', async () => sink.received.filter(at('fault')), (r) => r.length >= 2, 30_000);
  t.same(faults.map((r) => [body(r).payload.fault, body(r).payload.deviceId, body(r).topic]), [['tamper', plain.deviceId, 'lianfang/faults/raised'], ['tamper', plain.deviceId, 'lianfang/faults/cleared']]);
  t.equal(sink.received.filter(at('event')).filter((r) => body(r).payload.type === 'tamper').length, 2, 'and the tamper events themselves');

  // Commands: a text on the keypad; a sounder refused at a shop with an open duress alarm.
  t.equal((await press('lf7e0000000000c1')).status, 200);
  const shown = await kp.waitForCommand((c) => c.command === 'display' && c.text === 'Flow says hi', 30_000);
  t.equal(shown.line2, '流程问好');
  t.match(body(await sink.next(at('command'), 30_000)).payload, { devices: [plain.deviceId] });
  const audited = query<{ actor: string }>(data, "SELECT actor FROM audit WHERE action = 'flow-command'");
  t.same(audited.map((r) => r.actor), [`flow:${LABEL}`], 'the command is audited as the flow');

  await keypads.get(duressShop.shopId)!.press(`*${DURESS_PIN}#`);
  await officer.waitFor((a) => a.shopId === duressShop.shopId && a.duress, 20_000);
  t.equal((await press('lf7e0000000000c3')).status, 200);
  const refused = body(await sink.next(at('error'), 30_000));
  t.equal(refused.error.code, 'LF_ERR_DURESS_SILENT');
  t.equal(sink.received.filter(at('command')).length, 1, 'the refused command sent nothing on');
  // The flow hears of the alarm on its own time (the feed batches, never waits): wait for it.
  const duressOf = (r: Received) => at('alarm')(r) && body(r).payload.shopId === duressShop.shopId;
  await sink.next(duressOf, 30_000);
  const duressAlarms = sink.received.filter(duressOf).map(body);
  t.ok(duressAlarms.length > 0 && duressAlarms.every((a) => a.duress === true), 'the duress alarm reached the flow marked as duress');

  // A test alarm: only the node that asks for tests sends it, marked as a test.
  t.test('a test alarm reaches only the node that asks for tests', async (t) => {
    const started = await cli(['test', 'start', '--shop', inTest.shopId, '--minutes', '30', '--data', data]);
    t.equal(started.code, 0, started.stderr);
    await keypads.get(inTest.shopId)!.press('9#');
    const testAlarm = body(await sink.next((r) => at('alarm-with-tests')(r) && body(r).payload.shopId === inTest.shopId, 15_000));
    t.equal(testAlarm.test, true, 'marked as a test');
    t.notOk(sink.received.filter(at('alarm')).some((r) => body(r).payload.shopId === inTest.shopId), 'not to the node that does not ask');
  });
});
