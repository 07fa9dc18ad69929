/**
 * Supervision of MQTT devices (issue 9 "Supervision of every device"), with the gateway as a child
 * process and real MQTT clients on loopback: a device that publishes nothing is a `silent` fault
 * after `supervision.mqttFaultAfterMs` (shortened here) and clears when it publishes again; a
 * device kept connected by keep-alive PINGREQs alone still becomes one; a device never connected
 * since the start is one too; a device whose connection dies uncleanly is `offline` at once (its
 * last will), cleared when it is back and says `online:true`; tamper, a low battery and a failed
 * `selftest` are faults while they last; the demo street, heartbeating, raises none.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { tempDataDir, GatewayProcess, provisionStreet, query, sleep } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import { SimKeypad } from '../../simulators/mqtt-devices.js';
import { runStreet, type StreetFile } from '../../simulators/street.js';
import { createLogger } from '../../gateway/logger.js';

// Among the suite's longest files (30-75 s here): a slower machine must not reach tap's 120 s.
t.setTimeout(300_000);

type Fault = { deviceId: string; shopId: string; fault: string; state: string; at: string; raisedAt: string; result?: number };

/** The station's fault topic, as its officer's console hears it. */
async function watchFaults(t: { teardown(fn: () => unknown): void }, url: string, street: StreetFile): Promise<Fault[]> {
  const watcher = await mqtt.connectAsync(url, { clientId: `${street.officer.username}:faults`, username: street.officer.username, password: street.officer.password, reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const faults: Fault[] = [];
  watcher.on('message', (_topic, payload) => faults.push(JSON.parse(payload.toString('utf8')) as Fault));
  await watcher.subscribeAsync(topics.stationFaults(street.stationId), { qos: 1 });
  return faults;
}

const has = (faults: Fault[], deviceId: string, fault: string, state: string) => faults.some((f) => f.deviceId === deviceId && f.fault === fault && f.state === state);

t.test('silence is a fault, keep-alive pings do not hide it, a publish clears it; a device never seen counts from the start', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 3);
  // Three keep-alive intervals (1 s) in one fault interval.
  const gw = await GatewayProcess.start(t, data, { LF_SUPERVISION_MQTT_FAULT_AFTER_MS: '3000', LF_SUPERVISION_CHECK_INTERVAL_MS: '100' });
  const faults = await watchFaults(t, gw.mqttUrl, street);
  const [pinger, beater, absent] = street.shops;

  // Connected, pinging every second, publishing nothing.
  const quiet = await new SimKeypad(pinger!.deviceId, pinger!.shopId, pinger!.creds).connect(gw.mqttUrl, { keepalive: 1 });
  let pings = 0;
  quiet.client.on('packetsend', (p) => void (p.cmd === 'pingreq' && pings++));
  const alive = await new SimKeypad(beater!.deviceId, beater!.shopId, beater!.creds).connect(gw.mqttUrl);
  alive.startHeartbeats(300);
  t.teardown(() => Promise.all([quiet.close(), alive.close()]));
  // Heard once, then only pings: its silence counts from this publish.
  await quiet.send({ type: 'heartbeat' } as never);
  const from = faults.length;
  pings = 0;

  await eventually(() => has(faults.slice(from), pinger!.deviceId, 'silent', 'raised'), 'the pinging device is a silent fault');
  t.ok(pings >= 1, `it sent keep-alive pings (${pings}) since its last publish and was still found silent`);
  t.ok(quiet.client.connected, 'and it is still connected');
  await eventually(() => has(faults, absent!.deviceId, 'silent', 'raised'), 'the device never connected is a silent fault');
  t.match(
    query(data, "SELECT device_id, kind AS fault FROM faults WHERE cleared_at IS NULL AND kind = 'silent' ORDER BY device_id"),
    [pinger, absent].map((s) => ({ device_id: s!.deviceId, fault: 'silent' })).sort((a, b) => a.device_id.localeCompare(b.device_id)),
    'both stored',
  );

  const raisedAt = faults.length;
  await quiet.send({ type: 'heartbeat' } as never);
  await eventually(() => has(faults.slice(raisedAt), pinger!.deviceId, 'silent', 'cleared'), 'its publish clears the fault');
  t.equal(query(data, "SELECT count(*) AS n FROM faults WHERE device_id = ? AND cleared_at IS NULL", pinger!.deviceId)[0]!.n, 0, 'cleared in the store');
  // Two more fault intervals: the heartbeating device never became one.
  await sleep(6000);
  t.notOk(faults.some((f) => f.deviceId === beater!.deviceId), 'a device sending heartbeats is no fault');
  const h = await gw.health();
  t.ok(h.faults.some((f: Fault) => f.deviceId === absent!.deviceId && f.fault === 'silent'), '/health lists the open one');
});

t.test('a dead connection is offline at once by its last will; back online clears it; tamper, battery and self-test faults', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 2);
  // The default 90 s: any fault within the test comes from the will or the events, not silence.
  const gw = await GatewayProcess.start(t, data, { LF_SUPERVISION_CHECK_INTERVAL_MS: '100' });
  const faults = await watchFaults(t, gw.mqttUrl, street);
  const shop = street.shops[0]!;
  const will = { topic: topics.deviceStatus(shop.deviceId), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1 as const, retain: true };
  const kp = await new SimKeypad(shop.deviceId, shop.shopId, shop.creds).connect(gw.mqttUrl, { will, reconnectPeriod: 0 });
  await kp.client.publishAsync(topics.deviceStatus(shop.deviceId), JSON.stringify({ online: true }), { qos: 1, retain: true });
  await sleep(300);
  t.same(faults, [], 'no fault while connected');

  // The TCP connection cut without a DISCONNECT: the broker publishes the will.
  (kp.client.stream as unknown as { destroy(): void }).destroy();
  await eventually(() => has(faults, shop.deviceId, 'offline', 'raised'), 'offline at once');
  t.match(faults.find((f) => f.fault === 'offline'), { deviceId: shop.deviceId, shopId: shop.shopId, state: 'raised' });
  t.same(query(data, "SELECT kind AS fault FROM faults WHERE device_id = ? AND cleared_at IS NULL", shop.deviceId), [{ fault: 'offline' }], 'stored');

  const back = await new SimKeypad(shop.deviceId, shop.shopId, shop.creds, 2).connect(gw.mqttUrl, { will, reconnectPeriod: 0 });
  t.teardown(() => back.close());
  await back.client.publishAsync(topics.deviceStatus(shop.deviceId), JSON.stringify({ online: true }), { qos: 1, retain: true });
  await eventually(() => has(faults, shop.deviceId, 'offline', 'cleared'), 'online again clears it');

  await back.send({ type: 'tamper', active: true } as never);
  await back.send({ type: 'battery', low: true, level: 8 } as never);
  await back.send({ type: 'selftest', result: 7 } as never);
  await eventually(() => ['tamper', 'low-battery', 'selftest-failed'].every((f) => has(faults, shop.deviceId, f, 'raised')), 'tamper, low battery and the failed self-test raised');
  t.match(faults.find((f) => f.fault === 'selftest-failed'), { result: 7 }, 'with its failure code');
  t.same(
    query<{ fault: string }>(data, 'SELECT kind AS fault FROM faults WHERE device_id = ? AND cleared_at IS NULL ORDER BY fault', shop.deviceId).map((r) => r.fault),
    ['low-battery', 'selftest-failed', 'tamper'],
  );
  await back.send({ type: 'tamper', active: false } as never);
  await back.send({ type: 'battery', low: false, level: 90 } as never);
  await back.send({ type: 'selftest', result: 0 } as never);
  await eventually(() => ['tamper', 'low-battery', 'selftest-failed'].every((f) => has(faults, shop.deviceId, f, 'cleared')), 'each clears when its cause goes away');
  t.equal(query(data, 'SELECT count(*) AS n FROM faults WHERE device_id = ? AND cleared_at IS NULL', shop.deviceId)[0]!.n, 0);
  t.same(query(data, "SELECT result FROM (SELECT json_extract(payload, '$.result') AS result, id FROM events WHERE device_id = ? AND type = 'selftest') ORDER BY id", shop.deviceId), [{ result: 7 }, { result: 0 }], 'self-tests are events of their own type');

  t.notOk(faults.some((f) => f.deviceId === street.shops[1]!.deviceId), 'the other device, never connected, is not silent yet (90 s) and has no other fault');

  // Stopping the gateway cuts every connection: the wills the broker then publishes are no fault.
  await gw.kill('SIGTERM');
  t.equal(gw.exitCode, 0, 'stopped cleanly');
  t.same(query(data, 'SELECT kind AS fault FROM faults WHERE cleared_at IS NULL'), [], 'no offline fault stored by the stop');
});

t.test('the demo street, heartbeating, runs several fault intervals without a fault; one that stops beating is found', async (t) => {
  const data = tempDataDir(t);
  const gw = await GatewayProcess.start(t, data, { LF_SUPERVISION_MQTT_FAULT_AFTER_MS: '1500', LF_SUPERVISION_CHECK_INTERVAL_MS: '100' });
  const street = await provisionStreet(data, 6);
  const faults = await watchFaults(t, gw.mqttUrl, street);
  const running = await runStreet({ dataDir: data, street, mqttUrl: gw.mqttUrl, log: createLogger('silent'), out: () => {}, intervalMs: 60_000, count: 0, heartbeatMs: 400 });
  t.teardown(() => running.stop());
  await sleep(5000);
  t.same(faults.filter((f) => f.state === 'raised'), [], 'no fault in more than three fault intervals');
  running.keypads[0]!.stopHeartbeats();
  await eventually(() => has(faults, running.keypads[0]!.deviceId, 'silent', 'raised'), 'the keypad that stopped beating is a fault');
});
