/**
 * The Lianfang node package (gateway/nodered/lianfang-nodes) in a real Node-RED embedded in this
 * process (test/helpers/node-red-harness.ts): the package and its four examples are picked up, each
 * node's filters and calls, and each example flow against a local webhook receiver and a Modbus TCP
 * server. The bridge is the test's: the gateway end to end is examples.e2e.test.ts.
 */
import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { eventually } from '../../helpers/wired.js';
import { receiver } from '../../helpers/node-red.js';
import { startHarness, startModbus, NODES_DIR, exampleFlow, withEnv, type FlowNode, type Harness } from '../../helpers/node-red-harness.js';
import type { ConsoleAlarm, ConsoleFault } from '../../../firmware-contracts/mqtt/payloads.js';
import type { FlowEvent, FlowShop } from '../../../gateway/nodered/protocol.js';

let seq = 0;
function shop(over: Partial<FlowShop> = {}): FlowShop {
  return { shopId: 'S01', name: '李记茶行', address: '1 Test Road', doorPlate: '1号', grid: 'G7', sector: null, stationId: 'PS1', compoundId: 'C1', lat: 23, lon: 116, ...over };
}
function alarm(over: Partial<ConsoleAlarm> = {}): ConsoleAlarm {
  const now = new Date().toISOString();
  return {
    alarmId: `A${++seq}`, rev: 1, shopId: 'S01', shopName: '李记茶行', address: '1 Test Road', doorPlate: '1号', stationId: 'PS1', compoundId: 'C1',
    state: 'raised', kind: 'panic', raisedAt: now, updatedAt: now, overdue: false, duress: false, test: false, takenBy: null, disposition: null,
    patrol: null, ring: 1, shopsAlerted: 3, replies: { coming: 0, seen: 0, cannot: 0 }, gatewayId: 'gw1', ...over,
  };
}
function fault(over: Partial<ConsoleFault> = {}): ConsoleFault {
  const now = new Date().toISOString();
  return {
    faultId: `F${++seq}`, rev: 1, fault: 'silent', state: 'raised', deviceId: 'K01', shopId: 'S01', at: now, raisedAt: now, updatedAt: now,
    ticket: { state: 'open' }, text: { en: 'keypad K01 is silent', zh: '键盘 K01 无响应' }, ...over,
  };
}
function event(over: Partial<FlowEvent> = {}): FlowEvent {
  return { eventId: ++seq, deviceId: 'K01', deviceType: 'keypad', shopId: 'S01', stationId: 'PS1', type: 'door', at: new Date().toISOString(), test: false, fields: { open: true }, ...over };
}

/** A tab with one node under test wired to a function that collects what it sends in flow context. */
function oneNode(node: Record<string, unknown> & { type: string }, inputs = false): FlowNode[] {
  const z = 'lf7e570000000000';
  const nodes: FlowNode[] = [
    { id: z, type: 'tab', label: 'node test' },
    { id: 'lf7e570000000001', z, type: 'function', name: 'collect', func: "global.get('sink')('got', RED.util.cloneMessage(msg)); return null;", outputs: 0, wires: [] },
    { id: 'lf7e570000000002', z, ...node, wires: [['lf7e570000000001']] },
  ];
  if (inputs) {
    nodes.push({ id: 'lf7e570000000003', z, type: 'catch', scope: null, uncaught: false, wires: [['lf7e570000000004']] });
    nodes.push({ id: 'lf7e570000000004', z, type: 'function', func: "global.get('sink')('errors', msg.error); return null;", outputs: 0, wires: [] });
  }
  return nodes;
}

let h: Harness;
t.before(async () => {
  h = await startHarness(t);
});

t.test('the package and its four examples are picked up', async (t) => {
  const nodes = (await h.get('/nodes')) as { module: string; types: string[]; enabled: boolean; err?: string }[];
  const ours = nodes.find((n) => n.module === 'node-red-contrib-lianfang');
  t.ok(ours, 'listed in /flows/nodes');
  t.notOk(ours?.err, 'loaded without an error');
  t.same(ours?.types.sort(), ['lianfang-alarm-in', 'lianfang-alarm-note', 'lianfang-command-out', 'lianfang-event-in', 'lianfang-fault-in']);
  t.ok(((await h.get('/library/examples/flows/')) as string[]).includes('node-red-contrib-lianfang'), 'under Import ▸ Examples');
  const listing = (await h.get('/library/examples/flows/node-red-contrib-lianfang')) as { fn: string }[];
  t.same(listing.map((e) => e.fn).sort(), ['daily-fault-digest', 'relay-while-alarm-open', 'two-robberies-per-grid', 'webhook-on-every-alarm']);
  const flow = (await h.get('/library/examples/flows/node-red-contrib-lianfang/webhook-on-every-alarm')) as FlowNode[];
  t.equal(flow[0].type, 'tab');
  t.equal(flow[0].label, 'Webhook on every alarm');
});

t.test('outside the gateway (no bridge) every node says so and listens to nothing', async (t) => {
  const types = new Map<string, new (config: object) => { statuses: unknown[]; handlers: string[] }>();
  const RED = {
    settings: {},
    nodes: {
      createNode(node: { statuses: unknown[]; handlers: string[]; status: unknown; on: unknown }) {
        node.statuses = [];
        node.handlers = [];
        node.status = (s: unknown) => node.statuses.push(s);
        node.on = (event: string) => node.handlers.push(event);
      },
      registerType: (name: string, ctor: never) => types.set(name, ctor),
    },
  };
  createRequire(import.meta.url)(join(NODES_DIR, 'lianfang.js'))(RED);
  t.equal(types.size, 5);
  for (const [name, Ctor] of types) {
    const node = new Ctor({});
    t.same(node.statuses, [{ fill: 'red', shape: 'ring', text: 'no gateway / 未连接网关' }], name);
    t.same(node.handlers, [], `${name} has no handler`);
  }
});

t.test('alarm-in filters station/compound, kind, state and tests, and marks duress', async (t) => {
  await h.deploy(oneNode({ type: 'lianfang-alarm-in', stations: 'PS9, C1', kinds: 'duress,help', states: 'raised,closed', includeTests: false }));
  const sent: string[] = [];
  const keep = (a: ConsoleAlarm, s: FlowShop | null = shop()) => {
    h.bridge.feed({ kind: 'alarm', alarm: a, shop: s });
    return a.alarmId;
  };
  sent.push(keep(alarm({ kind: 'help' }))); // compound C1 matches
  keep(alarm({ kind: 'help', stationId: 'PS2', compoundId: undefined })); // station not listed
  keep(alarm({ kind: 'panic' })); // kind not ticked
  sent.push(keep(alarm({ kind: 'panic', duress: true }))); // a duress PIN: matches "duress"
  keep(alarm({ kind: 'help', state: 'acknowledged' })); // state not ticked
  keep(alarm({ kind: 'help', test: true })); // a test alarm
  sent.push(keep(alarm({ kind: 'help', stationId: 'PS9', compoundId: undefined, state: 'closed' }), null));
  const received = await collected(sent.length);
  t.same(received.map((m) => m.alarmId), sent);
  t.same(received.map((m) => m.topic), ['lianfang/alarms/raised', 'lianfang/alarms/raised', 'lianfang/alarms/closed']);
  t.same(received.map((m) => m.duress), [false, true, false]);
  t.equal(received[0].shop.grid, 'G7');
  t.equal(received[0].payload.shopName, '李记茶行');
  t.equal(received[2].shop, null);

  await h.deploy(oneNode({ type: 'lianfang-alarm-in', stations: '', kinds: '', states: '', includeTests: true }));
  t.equal(h.bridge.count('alarm'), 1, 'the old node let go of its listener');
  const test = keep(alarm({ test: true, kind: 'intrusion', state: 'cancelled' }));
  const all = await collected(1);
  t.same(all.map((m) => [m.alarmId, m.test]), [[test, true]]);
});

t.test('event-in filters type, shop and tests', async (t) => {
  await h.deploy(oneNode({ type: 'lianfang-event-in', types: 'door,battery', shops: 'S01', includeTests: false }));
  const door = event();
  h.bridge.feed({ kind: 'event', event: door, shop: shop() });
  h.bridge.feed({ kind: 'event', event: event({ type: 'selftest' }), shop: shop() });
  h.bridge.feed({ kind: 'event', event: event({ shopId: 'S02' }), shop: shop() });
  h.bridge.feed({ kind: 'event', event: event({ test: true }), shop: shop() });
  const battery = event({ type: 'battery', fields: { level: 12 } });
  h.bridge.feed({ kind: 'event', event: battery, shop: null });
  const got = await collected(2);
  t.same(got.map((m) => m.payload.eventId), [door.eventId, battery.eventId]);
  t.same(got.map((m) => m.topic), ['lianfang/events/door', 'lianfang/events/battery']);
  t.equal(got[0].shop.shopId, 'S01');
});

t.test('fault-in passes a change of state only, or every rev', async (t) => {
  await h.deploy(oneNode({ type: 'lianfang-fault-in', faults: 'silent', changes: 'state' }));
  const f = fault();
  const revs: ConsoleFault[] = [f, { ...f, rev: 2, ticket: { state: 'assigned', assignedTo: 'tech' } }, { ...f, rev: 3, state: 'cleared', clearedAt: new Date().toISOString() }, { ...f, rev: 4, state: 'cleared', ticket: { state: 'fixed' } }];
  h.bridge.feed({ kind: 'fault', fault: fault({ fault: 'low-battery' }) });
  for (const r of revs) h.bridge.feed({ kind: 'fault', fault: r });
  const states = await collected(2);
  t.same(states.map((m) => [m.payload.rev, m.topic]), [[1, 'lianfang/faults/raised'], [3, 'lianfang/faults/cleared']]);

  await h.deploy(oneNode({ type: 'lianfang-fault-in', faults: '', changes: 'all' }));
  for (const r of revs) h.bridge.feed({ kind: 'fault', fault: r });
  const every = await collected(4);
  t.same(every.map((m) => m.payload.rev), [1, 2, 3, 4]);
});

t.test('command-out: config or msg, device or shop; a refusal reaches a catch node with its code', async (t) => {
  await h.deploy(oneNode({ type: 'lianfang-command-out', deviceId: '', shopId: 'S01', command: 'display', text: '请稍候', line2: 'Please wait', colour: 'red' }, true));
  h.bridge.calls.length = 0;
  h.bridge.answer = () => ({ sent: 2 });
  h.receive('lf7e570000000002', { payload: 'ignored' });
  const [done] = await collected(1);
  t.same(done.payload, { sent: 2 });
  t.same(h.bridge.calls, [{ op: 'command', args: { shopId: 'S01', commands: [{ command: 'display', text: '请稍候', line2: 'Please wait' }] }, flow: 'node test' }]);

  await h.deploy(oneNode({ type: 'lianfang-command-out', deviceId: '', shopId: '', command: '' }, true));
  h.bridge.calls.length = 0;
  h.receive('lf7e570000000002', { deviceId: 'K01', payload: [{ command: 'led', colour: 'amber', blink: true }, { command: 'buzzer', on: true, seconds: 5 }] });
  await collected(1);
  t.same(h.bridge.calls[0].args, { deviceId: 'K01', commands: [{ command: 'led', colour: 'amber', blink: true }, { command: 'buzzer', on: true, seconds: 5 }] });

  h.bridge.answer = () => {
    throw Object.assign(new Error('shop S01 has an open duress alarm'), { code: 'LF_ERR_DURESS_SILENT' });
  };
  h.receive('lf7e570000000002', { shopId: 'S01', payload: { command: 'sounder', on: true } });
  h.receive('lf7e570000000002', { payload: { command: 'sounder', on: true } });
  h.receive('lf7e570000000002', { shopId: 'S01', payload: { command: 'horn' } });
  h.receive('lf7e570000000002', { shopId: 'S01', payload: { command: 'buzzer', on: true, seconds: 70000 } });
  const errors = await caught(4);
  t.same(errors.map((e) => e.code).sort(), ['LF_ERR_DURESS_SILENT', 'LF_ERR_INVALID_ARGUMENT', 'LF_ERR_INVALID_ARGUMENT', 'LF_ERR_INVALID_ARGUMENT']);
  t.equal(h.bridge.calls.length, 2, 'an invalid command never reaches the gateway');
});

t.test('alarm-note: the alarm from msg, the text from the node, msg.note or a text payload', async (t) => {
  await h.deploy(oneNode({ type: 'lianfang-alarm-note', note: '' }, true));
  h.bridge.calls.length = 0;
  h.bridge.answer = () => ({ noted: true });
  h.receive('lf7e570000000002', { alarmId: 'A1', note: 'first' });
  h.receive('lf7e570000000002', { payload: { alarmId: 'A2' }, note: 'second' });
  h.receive('lf7e570000000002', { alarmId: 'A3', payload: 'third' });
  h.receive('lf7e570000000002', { payload: 'no alarm' });
  await collected(3);
  t.same(h.bridge.calls.map((c) => [c.op, c.args, c.flow]), [['note', { alarmId: 'A1', text: 'first' }, 'node test'], ['note', { alarmId: 'A2', text: 'second' }, 'node test'], ['note', { alarmId: 'A3', text: 'third' }, 'node test']]);
  t.same((await caught(1)).map((e) => e.code), ['LF_ERR_INVALID_ARGUMENT']);

  await h.deploy(oneNode({ type: 'lianfang-alarm-note', note: 'fixed text' }, true));
  h.bridge.calls.length = 0;
  h.receive('lf7e570000000002', { alarmId: 'A4', note: 'not this' });
  await collected(1);
  t.same(h.bridge.calls[0].args, { alarmId: 'A4', text: 'fixed text' });
});

t.test('webhook on every alarm: a raised alarm POSTs its fields; other states do not', async (t) => {
  const hooks = await receiver(t);
  await h.deploy(withEnv(exampleFlow('webhook-on-every-alarm'), { WEBHOOK_URL: `${hooks.url}/hook` }));
  const a = alarm({ kind: 'panic', duress: true });
  h.bridge.feed({ kind: 'alarm', alarm: { ...alarm(), state: 'closed' }, shop: shop() });
  h.bridge.feed({ kind: 'alarm', alarm: a, shop: shop() });
  await eventually(() => hooks.received.length >= 1, 'the webhook');
  const [hook] = hooks.received;
  t.equal(hook.path, '/hook');
  t.match(hook.headers['content-type'], /^application\/json/);
  t.same(JSON.parse(hook.body), { alarmId: a.alarmId, kind: 'panic', state: 'raised', duress: true, shopName: '李记茶行', address: '1 Test Road', doorPlate: '1号', grid: 'G7', raisedAt: a.raisedAt, station: 'PS1' });
  h.bridge.feed({ kind: 'alarm', alarm: alarm({ state: 'raised' }), shop: shop() });
  await eventually(() => hooks.received.length >= 2, 'the second webhook');
  t.equal(hooks.received.length, 2, 'the closed alarm did not post');
});

t.test('street siren relay: on while a non-duress alarm is open, off when none is, never for duress', async (t) => {
  const modbus = await startModbus(t, 3);
  await h.deploy(withEnv(exampleFlow('relay-while-alarm-open'), { STATION: 'PS1', MODBUS_HOST: '127.0.0.1', MODBUS_PORT: String(modbus.port), MODBUS_UNIT: '3', COIL: '4' }));
  const coil = () => modbus.coils.get(4);
  const feed = (a: ConsoleAlarm) => h.bridge.feed({ kind: 'alarm', alarm: a, shop: shop() });

  const duress = alarm({ duress: true });
  feed(duress);
  feed(alarm({ stationId: 'PS2', compoundId: undefined })); // another station's street
  const marker = alarm({ state: 'closed' });
  feed(marker); // nothing open: the coil is written off, once
  await eventually(() => modbus.writes.length >= 1, 'the coil synced off');
  t.same(modbus.writes, [{ addr: 4, value: false, unit: 3 }], 'a duress alarm and another station\'s alarm never switch it on');

  const a = alarm();
  const b = alarm({ kind: 'intrusion' });
  feed(a);
  await eventually(() => coil() === true, 'the coil on');
  feed(b);
  feed({ ...a, rev: 2, state: 'closed' });
  feed({ ...duress, rev: 2, state: 'acknowledged' });
  feed({ ...b, rev: 2, state: 'acknowledged' });
  feed({ ...b, rev: 3, state: 'cancelled' });
  await eventually(() => coil() === false, 'the coil off');
  t.same(modbus.writes.map((w) => w.value), [false, true, false]);

  // An open alarm that turns into a duress alarm (a duress PIN) switches the siren off at once.
  const c = alarm();
  feed(c);
  await eventually(() => coil() === true, 'the coil on again');
  feed({ ...c, rev: 2, duress: true });
  await eventually(() => coil() === false, 'the coil off for duress');
});

t.test('street siren relay: a Modbus module that does not answer is an error, and the next alarm retries', async (t) => {
  const port = await freePort();
  const flow = withEnv(exampleFlow('relay-while-alarm-open'), { STATION: '', MODBUS_HOST: '127.0.0.1', MODBUS_PORT: String(port), MODBUS_UNIT: '1', COIL: '0' });
  const z = flow[0].id;
  flow.push({ id: 'lf02000000000a01', z, type: 'catch', scope: null, uncaught: false, wires: [['lf02000000000a02']] });
  flow.push({ id: 'lf02000000000a02', z, type: 'function', func: "global.get('sink')('errors', msg.error); return null;", outputs: 0, wires: [] });
  await h.deploy(flow);
  const a = alarm();
  h.bridge.feed({ kind: 'alarm', alarm: a, shop: shop() });
  const [error] = await caught(1);
  t.match(error.message, /coil write failed/);
  const modbus = await startModbus(t, 1, port);
  h.bridge.feed({ kind: 'alarm', alarm: { ...a, rev: 2, state: 'acknowledged' }, shop: shop() });
  await eventually(() => modbus.coils.get(0) === true, 'the coil on at the retry');
});

t.test('daily fault digest: open faults by kind, raised and cleared in the period', async (t) => {
  const hooks = await receiver(t);
  await h.deploy(withEnv(exampleFlow('daily-fault-digest'), { DIGEST_URL: `${hooks.url}/digest` }));
  const old = new Date(Date.now() - 3 * 86400_000).toISOString();
  const open = fault({ fault: 'low-battery', deviceId: 'K02', raisedAt: old, text: { en: 'battery low', zh: '电量低' } });
  const silent = fault();
  const cleared = fault({ fault: 'tamper' });
  const longGone = fault({ fault: 'tamper', raisedAt: old, state: 'cleared', clearedAt: old });
  for (const f of [open, silent, cleared, longGone]) h.bridge.feed({ kind: 'fault', fault: f });
  h.bridge.feed({ kind: 'fault', fault: { ...cleared, rev: 2, state: 'cleared', clearedAt: new Date().toISOString() } });
  await eventually(() => Object.keys((h.flowContext('lf03000000000002').get('faults') as object) ?? {}).length === 3, 'the faults kept (the one cleared 3 days ago is not)');
  await h.inject('lf03000000000003');
  await eventually(() => hooks.received.length >= 1, 'the digest');
  const body = JSON.parse(hooks.received[0]!.body);
  t.same(body.open.map((f: ConsoleFault) => f.faultId), [open.faultId, silent.faultId]);
  t.same(body.raised.map((f: ConsoleFault) => f.faultId).sort(), [silent.faultId, cleared.faultId].sort());
  t.same(body.cleared.map((f: ConsoleFault) => f.faultId), [cleared.faultId]);
  t.match(body.text.en, /Open faults: 2\n  low-battery \(1\)\n    shop S01, device K02 since .*: battery low/);
  t.match(body.text.zh, /未恢复故障：2 个/);
  t.match(body.text.zh, /设备 K01，自 .*：键盘 K01 无响应/);
  t.match(body.text.en, /Raised in the last 24 h: 2; cleared: 1/);
});

t.test('two robberies in one grid in one day: the second notifies every unit and notes the alarm, once', async (t) => {
  const hooks = await receiver(t);
  await h.deploy(withEnv(exampleFlow('two-robberies-per-grid'), { NOTIFY_URL: `${hooks.url}/grid`, TIME_ZONE: 'Asia/Shanghai' }));
  h.bridge.calls.length = 0;
  h.bridge.answer = () => ({ noted: true });
  const feed = (a: ConsoleAlarm, s = shop()) => h.bridge.feed({ kind: 'alarm', alarm: a, shop: s });
  const first = alarm();
  feed(first);
  feed({ ...first, rev: 2, replies: { coming: 1, seen: 0, cannot: 0 } }); // the same alarm again
  feed(alarm(), shop({ grid: 'G8' })); // another grid
  feed(alarm({ kind: 'help' })); // not a robbery
  const yesterday = new Date(Date.now() - 86400_000).toISOString();
  feed(alarm({ raisedAt: yesterday })); // another day
  const second = alarm({ duress: true, stationId: 'PS2', compoundId: undefined });
  feed(second, shop({ stationId: 'PS2', compoundId: null }));
  await eventually(() => hooks.received.length >= 1 && h.bridge.calls.length >= 1, 'the notification and the note');
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date(second.raisedAt));
  t.same(JSON.parse(hooks.received[0]!.body), { grid: 'G7', date: today, count: 2, threshold: 2, alarms: [first.alarmId, second.alarmId], units: ['PS1', 'C1', 'PS2'] });
  t.same(h.bridge.calls, [{ op: 'note', args: { alarmId: second.alarmId, text: 'Robbery alarm 2 in grid G7 today: every responsible unit notified / 网格 G7 今日第 2 起抢劫报警：已通知所有责任单位' }, flow: 'Two robbery alarms in one grid in one day' }]);

  const third = alarm();
  feed(third);
  const marker = alarm();
  feed(marker, shop({ grid: 'G8' })); // G8's second: notifies, after the third of G7 was handled
  await eventually(() => hooks.received.length >= 2, 'the G8 notification');
  t.same(hooks.received.map((r) => JSON.parse(r.body).grid), ['G7', 'G8'], 'the third of G7 did not notify again');
});

/** A loopback port nothing listens on (until the test starts something there). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits for `n` messages collected by oneNode's function and takes them. */
async function collected(n: number): Promise<any[]> {
  return take('got', n);
}
/** Waits for `n` errors seen by oneNode's catch node and takes them. */
async function caught(n: number): Promise<any[]> {
  return take('errors', n);
}
async function take(key: string, n: number): Promise<any[]> {
  await eventually(() => (h.sunk.get(key)?.length ?? 0) >= n, `${n} × ${key}`);
  const got = h.sunk.get(key) as any[];
  h.sunk.delete(key);
  return got;
}
