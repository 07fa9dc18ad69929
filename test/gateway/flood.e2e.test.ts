/**
 * Floods over MQTT with the gateway as a child process (issue 8): a device flooding door and
 * heartbeat events gets every PUBACK, the excess is dropped and counted (refused.LF_ERR_FLOOD), a
 * `flood` notice reaches the console once and clears when the device is quiet again, the log has
 * a summary and not one line per dropped event, a 9# from the same device in the middle of the
 * flood still raises the alarm, and a second device's events are all stored.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, query } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

t.test('a flooding device is acknowledged and mostly dropped, its 9# still raises the alarm, its neighbour is untouched', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 6);
  const gw = await GatewayProcess.start(t, data, { LF_INGEST_FLOOD_EVENTS_PER_MINUTE: '60', LF_INGEST_FLOOD_BURST: '10' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const watcher = await mqtt.connectAsync(gw.mqttUrl, { clientId: `${street.officer.username}:faults`, username: street.officer.username, password: street.officer.password, reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const faults: Record<string, any>[] = [];
  watcher.on('message', (_topic, payload) => faults.push(JSON.parse(payload.toString('utf8')) as Record<string, any>));
  await watcher.subscribeAsync(topics.stationFaults(street.stationId), { qos: 1 });

  const flooder = keypads.get(street.shops[1].shopId)!;
  const neighbour = keypads.get(street.shops[2].shopId)!;
  const started = Date.now();
  const FLOOD = 300;
  let acked = 0;
  for (let i = 0; i < FLOOD; i++) {
    // Each send resolves on its PUBACK: a withheld one hangs the test.
    await flooder.send((i % 2 ? { type: 'heartbeat' } : { type: 'door', open: i % 4 === 0 }) as never);
    acked++;
    if (i === FLOOD / 2) await flooder.press('9#');
    if (i % 40 === 0) await neighbour.send({ type: 'heartbeat' } as never);
  }
  const floodSeconds = (Date.now() - started) / 1000;
  t.equal(acked, FLOOD, 'every flooded event got its PUBACK');

  const alarm = await officer.waitFor((a) => a.state === 'raised');
  t.equal(alarm.shopId, flooder.shopId, 'the 9# sent in the middle of the flood raised the alarm');

  const stored = query<{ n: number }>(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type IN ('door', 'heartbeat')", flooder.deviceId)[0]!.n;
  // The burst, plus one a second for as long as the flood lasted (60 a minute).
  t.ok(stored >= 10 && stored <= 10 + Math.ceil(floodSeconds) + 1, `stored ${stored} of ${FLOOD} in ${floodSeconds}s`);
  t.equal(query(data, "SELECT * FROM events WHERE device_id = ? AND type = 'keypad'", flooder.deviceId).length, 1, 'the 9# was stored');
  t.equal(query(data, 'SELECT * FROM events WHERE device_id = ?', neighbour.deviceId).length, Math.ceil(FLOOD / 40), "every one of the neighbour's events was stored");
  const h = await gw.health();
  t.equal(h.counters['refused.LF_ERR_FLOOD'], FLOOD - stored, 'every dropped event counted');

  await eventually(() => faults.some((f) => f.fault === 'flood' && f.state === 'raised'), 'a flood notice on the console');
  const raised = faults.filter((f) => f.fault === 'flood' && f.state === 'raised');
  t.equal(raised.length, 1, 'one notice for the whole episode');
  t.match(raised[0], { deviceId: flooder.deviceId, shopId: flooder.shopId });
  // Quiet again: the bucket is full after burst / rate = 10 s, and the notice clears with the count.
  await eventually(() => faults.some((f) => f.fault === 'flood' && f.state === 'cleared'), 'the flood notice cleared');
  t.match(faults.find((f) => f.state === 'cleared'), { deviceId: flooder.deviceId, fault: 'flood', dropped: FLOOD - stored, raisedAt: raised[0]!.raisedAt });
  // The episode is a stored fault with its ticket, closed as recovered when it ended.
  t.match(faults.find((f) => f.state === 'cleared'), { faultId: raised[0]!.faultId, rev: 2, ticket: { state: 'fixed', recovered: true } });
  t.same(
    query(data, "SELECT kind, rev, json_extract(detail, '$.dropped') AS dropped, cleared_how AS how FROM faults WHERE id = ?", raised[0]!.faultId),
    [{ kind: 'flood', rev: 2, dropped: FLOOD - stored, how: 'recovered' }],
  );
  t.ok(gw.logs.filter((l) => l.code === 'LF_ERR_FLOOD').length <= 2, 'the log has a start and a summary, not a line per dropped event');
  t.ok(gw.logs.some((l) => l.code === 'LF_ERR_FLOOD' && l.dropped === FLOOD - stored), 'the summary carries the count');
  t.ok(flooder.client.connected, 'the flooding device stays connected');
});
