/**
 * The one ingest over MQTT: duplicates are acknowledged and dropped (never a second alarm, never a
 * resend loop), a rebooted keypad's first 9# is not swallowed, bad JSON and schema failures are
 * acknowledged, dropped and counted, and the connection stays up.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, query, sleep } from '../helpers/gateway.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

t.test('a repeated (device, boot, seq) is acknowledged and makes no second alarm', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const kp = keypads.get(street.shops[2].shopId)!;
  await kp.send({ type: 'keypad', keys: '9#', seq: 7 } as never);
  const a = await officer.waitFor((x) => x.state === 'raised');
  await officer.act({ alarmId: a.alarmId, action: 'ack' });
  await officer.act({ alarmId: a.alarmId, action: 'close', disposition: 'false' });
  await officer.waitFor((x) => x.alarmId === a.alarmId && x.state === 'closed');
  // The same frame again (a replay, or a resend the gateway already stored): PUBACK, nothing else.
  await kp.send({ type: 'keypad', keys: '9#', seq: 7 } as never);
  await kp.send({ type: 'keypad', keys: '9#', seq: 3 } as never);
  await sleep(300);
  t.equal(query(data, 'SELECT * FROM alarms').length, 1, 'no second alarm');
  t.equal(query(data, 'SELECT * FROM events').length, 1, 'the duplicates were not stored');
  t.ok(kp.client.connected, 'the device stays connected');
  t.equal((await gw.health()).counters['events.duplicate'], 2);
});

t.test("a rebooted keypad (new boot, seq from 1) is not mistaken for a replay; an older boot is", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const kp = keypads.get(street.shops[4].shopId)!;
  kp.boot = 5;
  for (let i = 0; i < 20; i++) await kp.send({ type: 'heartbeat' } as never);
  kp.reboot();
  t.equal(kp.boot, 6);
  await kp.press('9#');
  const a = await officer.waitFor((x) => x.state === 'raised');
  t.equal(a.shopId, kp.shopId, "the rebooted keypad's first 9# raised the alarm");
  const stored = query<{ boot: number; seq: number }>(data, "SELECT boot, seq FROM events WHERE type = 'keypad'");
  t.same(stored, [{ boot: 6, seq: 1 }]);
  // A frame from before the reboot (boot 5) is a replay.
  await kp.send({ type: 'panic', boot: 5, seq: 99 } as never);
  await sleep(200);
  t.equal(query(data, "SELECT * FROM events WHERE type = 'panic'").length, 0, 'a lower boot is refused');
});

t.test('bad JSON and schema failures get their PUBACK, are dropped and counted; no resend loop', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const s = street.shops[0];
  const client = await mqtt.connectAsync(gw.mqttUrl, { clientId: s.deviceId, username: s.creds.username, password: s.creds.password, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  let closes = 0;
  client.on('close', () => closes++);
  const topic = topics.deviceEvents(s.deviceId);
  await client.publishAsync(topic, '{"seq": 1, "type": "keypad", "keys": "9#"', { qos: 1 });
  await client.publishAsync(topic, Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), { qos: 1 });
  await client.publishAsync(topic, JSON.stringify({ seq: 2, type: 'keypad', keys: '9#<script>' }), { qos: 1 });
  await client.publishAsync(topic, JSON.stringify({ seq: -1, type: 'panic' }), { qos: 1 });
  await client.publishAsync(topic, JSON.stringify({ type: 'panic' }), { qos: 1 });
  await client.publishAsync(topic, JSON.stringify([1, 2, 3]), { qos: 1 });
  await client.publishAsync(topic, 'null', { qos: 1 });
  t.pass('every bad message got its PUBACK');
  t.equal(closes, 0, 'the connection stayed up');
  t.equal(query(data, 'SELECT * FROM events').length, 0);
  t.equal(query(data, 'SELECT * FROM alarms').length, 0);
  const h = await gw.health();
  t.equal(h.counters['refused.LF_ERR_BAD_JSON'], 2);
  t.equal(h.counters['refused.LF_ERR_BAD_PAYLOAD'], 5);
  t.ok(gw.logs.some((l) => l.code === 'LF_ERR_BAD_PAYLOAD' && typeof l.reason === 'string'), 'each rejection is logged with its reason');
  // A good one still works on the same connection.
  await client.publishAsync(topic, JSON.stringify({ seq: 3, type: 'panic' }), { qos: 1 });
  t.equal(query(data, "SELECT * FROM events WHERE type = 'panic'").length, 1);
});

t.test('a keypad that sends no boot is de-duplicated by seq within one connection', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const s = street.shops[1];
  const client = await mqtt.connectAsync(gw.mqttUrl, { clientId: s.deviceId, username: s.creds.username, password: s.creds.password, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const topic = topics.deviceEvents(s.deviceId);
  await client.publishAsync(topic, JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 });
  await client.publishAsync(topic, JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 });
  await client.publishAsync(topic, JSON.stringify({ seq: 2, type: 'heartbeat' }), { qos: 1 });
  t.equal(query(data, 'SELECT * FROM events').length, 2);
  await client.endAsync();
  // A new connection (the device power-cycled) starts over.
  const again = await mqtt.connectAsync(gw.mqttUrl, { clientId: s.deviceId, username: s.creds.username, password: s.creds.password, reconnectPeriod: 0 });
  t.teardown(() => again.endAsync(true));
  await again.publishAsync(topic, JSON.stringify({ seq: 1, type: 'panic' }), { qos: 1 });
  t.equal(query(data, "SELECT * FROM events WHERE type = 'panic'").length, 1);
});
