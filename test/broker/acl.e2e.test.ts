/**
 * Nobody is let in who does not belong: the broker's policy over real sockets against the gateway
 * as a child process. Anonymous and bad logins, client-id takeover, topics of others, wildcard and
 * $SYS subscriptions, and a packet larger than the maximum (refused before it is buffered).
 */
import t from 'tap';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { connect as netConnect } from 'node:net';
import { tempDataDir, GatewayProcess, provisionStreet, query, sleep, cli } from '../helpers/gateway.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import { SimConsole, SimKeypad } from '../../simulators/mqtt-devices.js';

async function refusedConnect(url: string, opts: IClientOptions): Promise<number | string> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  return new Promise((resolve) => {
    client.once('connect', () => {
      client.end(true);
      resolve('connected');
    });
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true);
      resolve(err.code ?? err.message);
    });
    client.once('close', () => resolve('closed'));
  });
}

/** Subscribe and return the granted QoS of each filter (128 = refused). */
async function grants(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted: number[] } }).packet;
    if (!packet) throw err;
    return packet.granted;
  }
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.disconnected || !client.connected ? resolve() : client.once('close', () => resolve())));
}

t.test('logins and client ids', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const [a, b] = street.shops;
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: 'anon' }), 4, 'anonymous: bad username or password');
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: a.deviceId, username: a.creds.username, password: 'wrong' }), 4, 'bad password');
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: a.deviceId, username: a.creds.username, password: b.creds.password }), 4, "another device's password");
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: b.deviceId, username: a.creds.username, password: a.creds.password }), 5, "a device may not take another device's client id");
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: 'x+y', username: a.creds.username, password: a.creds.password }), 2, 'client id with + refused');
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: 'ok', username: 'a/b', password: 'whatever-long' }), 4, 'username with / refused');
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: 'nobody', username: 'nobody', password: 'whatever-long' }), 4, 'unknown username');
  t.equal(
    await refusedConnect(gw.mqttUrl, { clientId: a.deviceId, username: street.officer.username, password: street.officer.password }),
    5,
    "a person may not use a device's client id",
  );
  t.equal(
    await refusedConnect(gw.mqttUrl, { clientId: 'duty-pc-1', username: street.officer.username, password: street.officer.password }),
    5,
    "a person's client id must start with their username",
  );
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: `${street.officer.username}:duty-pc-1`, username: street.officer.username, password: street.officer.password }), 'connected');
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: street.officer.username, username: street.officer.username, password: street.officer.password }), 'connected');
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: a.deviceId, username: a.creds.username, password: a.creds.password }), 'connected');
  const h = await gw.health();
  t.ok(h.counters['refused.LF_ERR_BAD_CREDENTIALS'] >= 4, 'refusals counted');
  t.notOk(JSON.stringify(gw.logs).includes(a.creds.password), 'no secret in the logs');
  t.notOk(JSON.stringify(gw.logs).includes(street.officer.password), 'no password in the logs');
});

t.test('topic ACLs: a device cannot publish for another, read another shop, or act for a station', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const [a, b] = street.shops;
  const dev = (s: typeof a) => mqtt.connectAsync(gw.mqttUrl, { clientId: s.deviceId, username: s.creds.username, password: s.creds.password, reconnectPeriod: 0 });

  // Publishing another device's events closes the connection, and raises nothing.
  const c1 = await dev(a);
  t.teardown(() => c1.endAsync(true));
  c1.publish(topics.deviceEvents(b.deviceId), JSON.stringify({ seq: 1, boot: 1, type: 'panic' }), { qos: 1 });
  await closed(c1);
  t.pass('connection closed');
  t.equal(query(data, 'SELECT * FROM events').length, 0);

  const c2 = await dev(a);
  t.teardown(() => c2.endAsync(true));
  c2.publish(topics.stationActions(street.stationId), JSON.stringify({ alarmId: 'x', action: 'ack' }), { qos: 1 });
  await closed(c2);
  t.pass('a device acting for a station is closed');

  const c3 = await dev(a);
  t.teardown(() => c3.endAsync(true));
  c3.publish(topics.shopReplies(b.shopId), JSON.stringify({ alarmId: 'x', reply: 'coming' }), { qos: 1 });
  await closed(c3);
  t.pass("replying for another shop is closed");

  const c4 = await dev(a);
  t.teardown(() => c4.endAsync(true));
  const subs = await grants(c4, [
    topics.shopAlerts(b.shopId),
    '#',
    '$SYS/#',
    'lianfang/v1/shops/+/alerts',
    topics.stationAlarms(street.stationId),
    topics.deviceCommands(b.deviceId),
    topics.shopAlerts(a.shopId),
    topics.deviceCommands(a.deviceId),
  ]);
  t.same(
    subs,
    [128, 128, 128, 128, 128, 128, 1, 1],
    "only its own shop's alerts and its own commands are granted",
  );
  t.ok(c4.connected, 'refused subscriptions do not disconnect');

  // An officer of another station.
  await cli(['station', 'add', '--id', 'PS2', '--name', 'Other', '--data', data]);
  await cli(['user', 'add', '--role', 'officer', '--station', 'PS2', '--name', 'other-officer', '--password', 'other-password', '--data', data]);
  const o = await mqtt.connectAsync(gw.mqttUrl, { clientId: 'other-officer:o-1', username: 'other-officer', password: 'other-password', reconnectPeriod: 0 });
  t.teardown(() => o.endAsync(true));
  const og = await grants(o, [topics.stationAlarms(street.stationId), topics.stationAlarms('PS2'), topics.stationErrors('PS2')]);
  t.same(og, [128, 1, 1], "an officer sees only their station");
  o.publish(topics.stationActions(street.stationId), JSON.stringify({ alarmId: 'x', action: 'ack' }), { qos: 1 });
  await closed(o);
  t.pass('acting for another station is closed');
  t.ok((await gw.health()).counters['refused.LF_ERR_FORBIDDEN_TOPIC'] >= 10);
});

t.test('a packet larger than the maximum closes the socket before it is buffered', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 11);
  const gw = await GatewayProcess.start(t, data);
  // An unauthenticated socket announcing a 200 MB CONNECT.
  const sock = netConnect(gw.ports.mqtt, '127.0.0.1');
  t.teardown(() => sock.destroy());
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const len = 200 * 1024 * 1024;
  const header = Buffer.from([0x10, (len & 0x7f) | 0x80, ((len >> 7) & 0x7f) | 0x80, ((len >> 14) & 0x7f) | 0x80, (len >> 21) & 0x7f]);
  let writeError = false;
  sock.on('error', () => (writeError = true));
  sock.write(header);
  // Keep streaming: a broker that buffers would accept all of it.
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const closedP = new Promise<void>((r) => sock.once('close', () => r()));
  const pump = async () => {
    while (!sock.destroyed && sent < 32 * 1024 * 1024) {
      if (!sock.write(chunk)) await new Promise((r) => setTimeout(r, 5));
      sent += chunk.length;
    }
  };
  await Promise.race([pump(), closedP]);
  await closedP;
  t.ok(sent < 32 * 1024 * 1024 || writeError, 'the gateway closed the socket instead of reading 200 MB');
  await gw.waitForLog((l) => l.code === 'LF_ERR_PACKET_TOO_LARGE');
  const h = await gw.health();
  t.equal(h.counters['refused.LF_ERR_PACKET_TOO_LARGE'], 1);
  t.equal(h.up, true, 'the gateway is still up');

  // An authenticated device publishing a 20 KiB payload (default max 8 KiB) is cut off too.
  const street = await provisionStreet(data, 11);
  const s = street.shops[0];
  const c = await mqtt.connectAsync(gw.mqttUrl, { clientId: s.deviceId, username: s.creds.username, password: s.creds.password, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true));
  c.publish(topics.deviceEvents(s.deviceId), JSON.stringify({ seq: 1, type: 'heartbeat', pad: 'x'.repeat(20_000) }), { qos: 1 });
  await closed(c);
  t.equal((await gw.health()).counters['refused.LF_ERR_PACKET_TOO_LARGE'], 2);
  await sleep(50);
});

t.test("an officer of another station cannot push a console off by taking its client id", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 11);
  await cli(['station', 'add', '--id', 'PS2', '--name', 'Other', '--data', data]);
  await cli(['user', 'add', '--role', 'officer', '--station', 'PS2', '--name', 'other-officer', '--password', 'other-password', '--data', data]);
  const gw = await GatewayProcess.start(t, data);
  // Station 1's console, on the client id the simulator uses (`username:console`).
  const s1 = await new SimConsole(street.stationId, street.officer).connect(gw.mqttUrl);
  t.teardown(() => s1.close());
  let pushedOff = 0;
  s1.client.on('close', () => pushedOff++);
  // Station 2's officer, with valid credentials, presents S1's console's client id, then S1's username.
  for (const clientId of [s1.clientId, street.officer.username]) {
    t.equal(
      await refusedConnect(gw.mqttUrl, { clientId, username: 'other-officer', password: 'other-password' }),
      5,
      `S2's officer may not use client id ${clientId}`,
    );
  }
  await gw.waitForLog((l) => l.code === 'LF_ERR_BAD_CLIENT_ID' && l.username === 'other-officer');
  await sleep(300);
  t.equal(pushedOff, 0, "S1's console was never disconnected");
  t.ok(s1.client.connected, "S1's console is still connected");
  // And it still receives its station's alarms: a shop's 9# reaches it.
  const kp = await new SimKeypad(street.shops[0]!.deviceId, street.shops[0]!.shopId, street.shops[0]!.creds, 1).connect(gw.mqttUrl);
  t.teardown(() => kp.close());
  const got = new Promise<void>((r) => s1.once('alarm', () => r()));
  await kp.press('9#');
  await got;
  t.pass('the console got the alarm');
  t.equal(pushedOff, 0);
  // Its own client id, username:anything, is accepted for S2's officer.
  t.equal(await refusedConnect(gw.mqttUrl, { clientId: 'other-officer:console', username: 'other-officer', password: 'other-password' }), 'connected');
});
