/**
 * Embedded Node-RED that fails (issue 12 "Running it", "Proof"): killed, it is a node-red-down
 * fault, alarms go on reaching the console meanwhile, and it comes back with its flows; a child
 * that keeps failing to start is restarted with a growing wait until it runs; one that stops
 * answering (SIGSTOP) is killed and started again; flows that throw or block for a second on
 * every alarm leave the alarm path alone, what overflows their queue is counted, not held.
 */
import t from 'tap';
import { GatewayProcess, connectStreet, query, until } from '../../helpers/gateway.js';
import { FAST_NODE_RED, INSTALLER, deploy, nodeRedHealth, provisionNodeRedStreet, receiver, runningAgain, startWithNodeRed, token } from '../../helpers/node-red.js';

// Among the suite's longest files (30-75 s here): a slower machine must not reach tap's 120 s.
t.setTimeout(300_000);

interface FaultRow {
  id: string;
  cleared_at: string | null;
  detail: string | null;
}

const nodeRedFaults = (data: string) => query<FaultRow>(data, "SELECT id, cleared_at, detail FROM faults WHERE kind = 'node-red-down' AND subject = 'node-red' ORDER BY raised_at");

/** One tab: every raised alarm → `then` (a node list wired from the alarm-in node). */
function alarmFlow(tab: string, label: string, then: Record<string, unknown>[]): unknown[] {
  return [
    { id: `${tab}00`, type: 'tab', label },
    { id: `${tab}01`, type: 'lianfang-alarm-in', z: `${tab}00`, states: 'raised', wires: [then.map((n) => n.id)] },
    ...then.map((n) => ({ z: `${tab}00`, wires: [[]], ...n })),
  ];
}

async function counters(gw: GatewayProcess): Promise<Record<string, number>> {
  return (await gw.health()).counters as Record<string, number>;
}

t.test('killed, Node-RED is a fault; alarms still reach the console; it comes back with its flows and the fault clears', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 4);
  const hook = await receiver(t);
  const gw = await startWithNodeRed(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const d = await deploy(gw, await token(gw, INSTALLER), alarmFlow('lf7c0000000000', 'Webhook', [{ id: 'lf7c000000000002', type: 'http request', method: 'POST', ret: 'txt', url: `${hook.url}/alarm` }]));
  t.equal(d.status, 204, 'deployed');

  const before = await nodeRedHealth(gw);
  process.kill(before.pid!, 'SIGKILL');
  const raised = await until('the node-red-down fault', async () => nodeRedFaults(data), (f) => f.length === 1);
  t.match(JSON.parse(raised[0]!.detail!), { reason: 'exited', signal: 'SIGKILL' }, 'raised as an exit by SIGKILL');

  // While it is away (or starting again), a 9# reaches the console as ever.
  const s0 = street.shops[0]!;
  await keypads.get(s0.shopId)!.press('9#');
  const first = await officer.waitFor((a) => a.shopId === s0.shopId && a.state === 'raised', 20_000);
  t.ok(first.alarmId, 'the alarm reached the console with Node-RED down');

  const back = await runningAgain(gw, before.pid);
  t.ok(back.restarts >= 1, 'restarted by the gateway');
  const cleared = await until('the fault cleared', async () => nodeRedFaults(data), (f) => f[0]?.cleared_at !== null);
  t.ok(cleared[0]!.cleared_at, 'the fault cleared once it was ready again');

  // The flows survived the restart: the next alarm reaches the webhook.
  const s1 = street.shops[1]!;
  await keypads.get(s1.shopId)!.press('9#');
  const second = await officer.waitFor((a) => a.shopId === s1.shopId && a.state === 'raised', 20_000);
  const got = await hook.next((r) => JSON.parse(r.body).alarmId === second.alarmId, 30_000);
  t.ok(got, 'the deployed flow runs again after the restart');
});

t.test('a child that keeps failing to start is restarted with a growing wait until it runs', async (t) => {
  const { data } = await provisionNodeRedStreet(t, 1);
  // The first three starts exit at once; the fourth runs.
  const gw = await startWithNodeRed(t, data, { LF_NODE_RED_FAIL_STARTS: '3' });
  const waits = gw.logs.filter((l) => l.msg === 'node-red exited: restarting it').map((l) => l.waitMs as number);
  t.same(waits, [200, 400, 800], 'three restarts, each wait twice the last (restartMinMs 200)');
  const h = await nodeRedHealth(gw);
  t.equal(h.state, 'running', 'then it runs');
  t.equal(h.restarts, 3);
  const faults = await until('the fault cleared', async () => nodeRedFaults(data), (f) => f.length === 1 && f[0]!.cleared_at !== null);
  t.equal(faults.length, 1, 'one fault for the whole episode, cleared when it ran');
});

t.test('a Node-RED that never starts: the gateway runs, alarms flow, /flows says why', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 2);
  const gw = await GatewayProcess.start(t, data, { ...FAST_NODE_RED, LF_NODE_RED_FAIL_STARTS: '1000', LF_NODE_RED_RESTART_MAX_MS: '1000' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const s0 = street.shops[0]!;
  await keypads.get(s0.shopId)!.press('9#');
  t.ok((await officer.waitFor((a) => a.shopId === s0.shopId && a.state === 'raised', 20_000)).alarmId, 'the alarm reached the console');
  await until('several failed starts', () => nodeRedHealth(gw), (h) => h.restarts >= 3);
  const res = await fetch(`http://127.0.0.1:${gw.ports.http}/flows/`);
  t.equal(res.status, 503, '/flows answers 503 while Node-RED is not running');
  t.match(await res.json(), { code: 'LF_ERR_NODE_RED_DOWN' });
  t.equal(nodeRedFaults(data).filter((f) => f.cleared_at === null).length, 1, 'one open node-red-down fault');
});

t.test('a Node-RED that stops answering is killed and started again', async (t) => {
  const { data } = await provisionNodeRedStreet(t, 1);
  const gw = await startWithNodeRed(t, data);
  const before = await nodeRedHealth(gw);
  process.kill(before.pid!, 'SIGSTOP');
  await gw.waitForLog((l) => l.msg === 'node-red stopped answering: killing it', 30_000);
  const faults = await until('the fault', async () => nodeRedFaults(data), (f) => f.length === 1);
  t.match(JSON.parse(faults[0]!.detail!), { reason: 'unresponsive' }, 'raised as unresponsive');
  await runningAgain(gw, before.pid);
  await until('the fault cleared', async () => nodeRedFaults(data), (f) => f[0]!.cleared_at !== null);
  t.pass('it came back and the fault cleared');
});

t.test('flows that throw, or block a second on every alarm, leave the alarm path alone; the overflow is counted', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 8);
  // A small queue, and patience with a child that is busy for seconds at a time.
  const gw = await startWithNodeRed(t, data, { LF_NODE_RED_QUEUE_MAX: '2', LF_NODE_RED_UNRESPONSIVE_AFTER_MS: '120000' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const inst = await token(gw, INSTALLER);
  const flows = [
    ...alarmFlow('lf7d0000000000', 'Throws', [{ id: 'lf7d000000000002', type: 'function', func: "throw new Error('boom');" }]),
    ...alarmFlow('lf7e0000000000', 'Busy', [{ id: 'lf7e000000000002', type: 'function', func: 'const end = Date.now() + 1000; while (Date.now() < end) {} return msg;' }]),
  ];
  t.equal((await deploy(gw, inst, flows)).status, 204, 'both deployed');
  const pid = (await nodeRedHealth(gw)).pid;

  for (const s of street.shops) {
    await keypads.get(s.shopId)!.press('9#');
    const a = await officer.waitFor((x) => x.shopId === s.shopId && x.state === 'raised', 20_000);
    t.ok(a.alarmId, `${s.shopId}'s alarm reached the console`);
  }
  const c = await until('the overflow counted', () => counters(gw), (x) => (x['nodered.dropped'] ?? 0) > 0);
  t.ok(c['nodered.dropped']! > 0, `messages beyond the queue were dropped and counted (${c['nodered.dropped']})`);
  const h = await nodeRedHealth(gw);
  t.ok(h.queued <= 2, 'the queue never holds more than nodeRed.queueMax');
  const thrown = await until('the flow\'s error in the log', async () => gw.logs.filter((l) => l.msg.startsWith('node-red: [function')), (l) => l.length > 0);
  t.match(thrown[0]!.msg, /boom/, 'the flow\'s error is logged with its text');
  t.ok(thrown.length <= 20, 'and the log is not flooded by it (at most 20 lines in 10 s)');
  t.equal(h.pid, pid, 'the busy and throwing flows did not take Node-RED down');
  t.equal(h.restarts, 0);
});

t.test('a flow busy a second on every message keeps Node-RED answering: it is not taken for hung', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 8);
  // Hung = no answer for 5 s; the messages come in batches of several, each costing the flow a second.
  const gw = await startWithNodeRed(t, data, { LF_NODE_RED_UNRESPONSIVE_AFTER_MS: '5000' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const flows = alarmFlow('lf7e1000000000', 'Busy', [{ id: 'lf7e100000000002', type: 'function', func: 'const end = Date.now() + 1000; while (Date.now() < end) {} return msg;' }]);
  t.equal((await deploy(gw, await token(gw, INSTALLER), flows)).status, 204, 'deployed');
  const pid = (await nodeRedHealth(gw)).pid;
  for (const s of street.shops) {
    await keypads.get(s.shopId)!.press('9#');
    await officer.waitFor((x) => x.shopId === s.shopId && x.state === 'raised', 20_000);
  }
  const c = await until('eight messages through the busy flow', () => counters(gw), (x) => (x['nodered.delivered'] ?? 0) >= 8, 60_000);
  t.ok(c['nodered.delivered']! >= 8, 'the flow works through them, a second each');
  const h = await nodeRedHealth(gw);
  t.equal(h.pid, pid, 'never killed as unresponsive');
  t.equal(h.restarts, 0);
  t.notOk(gw.logs.some((l) => l.msg === 'node-red stopped answering: killing it'));
});
