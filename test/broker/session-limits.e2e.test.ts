/**
 * What a client may make the broker hold is bounded (broker/session-limits.ts), against the
 * gateway as a child process: QoS 2 publishes without PUBREL on a persistent session that keeps
 * reconnecting store nothing (they are taken as QoS 1); persistent sessions left behind expire;
 * an offline persistent session's queue is capped, and what it dropped still arrives through the
 * outbox; a normal keypad and console work afterwards. And a subscription refused in a SUBSCRIBE
 * that also held an allowed one is not kept in the session (aedes stores the packet's whole list).
 */
import t from 'tap';
import mqtt from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connect as netConnect, type Socket } from 'node:net';
import { tempDataDir, GatewayProcess, provisionStreet, sleep, until, nearestShops, query } from '../helpers/gateway.js';
import { SimConsole, SimKeypad } from '../../simulators/mqtt-devices.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { ConsoleAlarm } from '../../firmware-contracts/mqtt/payloads.js';

/** An MQTT 3.1.1 client on a bare socket, so it can withhold PUBREL (mqtt.js always sends it). */
class RawClient {
  readonly received: Packet[] = [];
  private waiters: (() => void)[] = [];
  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p: Packet) => {
      this.received.push(p);
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('data', (d) => parser.parse(d));
    socket.on('error', () => {});
  }

  static async connect(port: number, opts: { clientId: string; username: string; password: string; clean: boolean }): Promise<RawClient> {
    const socket = netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket);
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, keepalive: 60, ...opts, password: Buffer.from(opts.password) } as Packet);
    const connack = await c.waitFor((p) => p.cmd === 'connack');
    if ((connack as { returnCode?: number }).returnCode !== 0) throw new Error(`CONNACK ${(connack as { returnCode?: number }).returnCode}`);
    return c;
  }

  send(p: Packet): void {
    this.socket.write(mqttPacket.generate(p));
  }

  async waitFor(pred: (p: Packet) => boolean, timeoutMs = 15_000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(pred);
      if (found) return found;
      if (Date.now() > deadline || this.socket.destroyed) throw new Error(`no matching packet; got ${this.received.map((p) => p.cmd).join(',')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Go away without DISCONNECT, as a client that crashes or reconnects would. */
  drop(): void {
    this.socket.destroy();
  }
}


t.test('QoS 2 without PUBREL on a persistent session that reconnects holds nothing', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data, { LF_MQTT_LIMITS_LOG_INTERVAL_MS: '500' });
  const a = street.shops[0];
  const perConnection = 150;
  let id = 1;
  for (let round = 0; round < 4; round++) {
    const c = await RawClient.connect(gw.ports.mqtt, { clientId: a.deviceId, username: a.creds.username, password: a.creds.password, clean: false });
    for (let i = 0; i < perConnection; i++) {
      c.send({
        cmd: 'publish',
        topic: topics.deviceStatus(a.deviceId),
        payload: Buffer.from(JSON.stringify({ online: true })),
        qos: 2,
        messageId: id++,
        retain: false,
        dup: false,
      } as Packet);
    }
    // Every publish is answered (as QoS 1: PUBACK, not PUBREC), and no PUBREL is ever sent.
    await c.waitFor(() => c.received.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').length >= perConnection);
    const kinds = new Set(c.received.filter((p) => p.cmd !== 'connack').map((p) => p.cmd));
    t.same([...kinds], ['puback'], `round ${round}: answered with PUBACK only`);
    c.drop();
    await sleep(100);
  }
  const h = await gw.health();
  t.equal(h.mqtt?.sessions?.incomingHeld, 0, 'no QoS 2 packet is held awaiting PUBREL');
  t.ok(h.counters['mqtt.qos2Downgraded.publish'] >= 4 * perConnection, 'the downgrades are counted');

  // A QoS 2 subscription is granted QoS 1.
  const sub = await mqtt.connectAsync(gw.mqttUrl, { clientId: a.deviceId, username: a.creds.username, password: a.creds.password, reconnectPeriod: 0 });
  t.teardown(() => sub.endAsync(true));
  const granted = await sub.subscribeAsync(topics.shopAlerts(a.shopId), { qos: 2 });
  t.equal(granted[0].qos, 1, 'QoS 2 subscription granted as QoS 1');
  await gw.waitForLog((l) => l.msg === 'session limits applied', 15_000);
  t.pass('the downgrades are logged in summary');
});

t.test('persistent sessions left behind expire; a device and a console work afterwards', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data, { LF_MQTT_SESSION_EXPIRY_MS: '3000', LF_MQTT_LIMITS_LOG_INTERVAL_MS: '500' });
  const { officer } = street;
  const n = 12;
  for (let i = 0; i < n; i++) {
    // One at a time: officer logins are scrypt checks, and the login throttle limits them per address.
    const c = await mqtt.connectAsync(gw.mqttUrl, { clientId: `${officer.username}:left-${i}`, username: officer.username, password: officer.password, clean: false, reconnectPeriod: 0 });
    await c.subscribeAsync(topics.stationAlarms(street.stationId), { qos: 1 });
    await c.endAsync();
  }
  const before = await gw.health();
  t.ok(before.mqtt?.sessions?.persistentSessions >= n, `${n} persistent sessions held (${before.mqtt?.sessions?.persistentSessions})`);
  const after = await until(
    'the sessions to expire',
    () => gw.health(),
    (h) => h.mqtt?.sessions?.persistentSessions === 0,
  );
  t.ok(after.counters['sessions.expired'] >= n, 'expiries counted');
  await gw.waitForLog((l) => l.msg === 'session limits applied' && (l.expired as number) > 0);
  t.pass('expiries logged in summary');

  // An expired session starts afresh: CONNACK without a session.
  const back = await mqtt.connectAsync(gw.mqttUrl, { clientId: `${officer.username}:left-0`, username: officer.username, password: officer.password, clean: false, reconnectPeriod: 0 });
  t.teardown(() => back.endAsync(true));
  await until('its CONNACK', async () => (back as unknown as { connackPacket?: unknown }).connackPacket ?? null, () => true, 1000).catch(() => null);
  t.equal((back as unknown as { connackPacket?: { sessionPresent: boolean } }).connackPacket?.sessionPresent, false, 'the expired session is gone');

  const s = street.shops[3];
  const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds, 1).connect(gw.mqttUrl);
  t.teardown(() => kp.close());
  const con = await new SimConsole(street.stationId, officer, `${officer.username}:duty`).connect(gw.mqttUrl);
  t.teardown(() => con.close());
  await kp.press('9#');
  const alarm = await con.waitFor((a) => a.shopId === s.shopId);
  t.equal(alarm.shopId, s.shopId, 'a 9# still reaches the console');
});

t.test("an offline persistent session's queue is capped, and the outbox still delivers every alarm", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const cap = 3;
  const gw = await GatewayProcess.start(t, data, { LF_MQTT_MAX_QUEUED_PER_SESSION: String(cap), LF_MQTT_SESSION_EXPIRY_MS: '600000' });
  const { officer } = street;
  const clientId = `${officer.username}:night`;
  const opts = { clientId, username: officer.username, password: officer.password, clean: false, reconnectPeriod: 0 } as const;
  const first = await mqtt.connectAsync(gw.mqttUrl, opts);
  await first.subscribeAsync(topics.stationAlarms(street.stationId), { qos: 1 });
  await first.endAsync();

  // Alarms while the console is away: more messages than its session may hold.
  const pressed = street.shops.slice(0, 8);
  for (const s of pressed) {
    const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds, 1).connect(gw.mqttUrl);
    await kp.press('9#');
    await kp.close();
  }
  const h = await until(
    'messages to be dropped from the queue',
    () => gw.health(),
    (h) => h.counters['sessions.queueDropped'] >= pressed.length - cap,
  );
  t.ok(h.mqtt.sessions.queuedMessages <= cap, `at most ${cap} messages held (${h.mqtt.sessions.queuedMessages})`);

  // Back with its session and no SUBSCRIBE: the queued few come from the session, the rest from
  // the outbox (a restored session counts as subscribed).
  const seen = new Set<string>();
  const back = mqtt.connect(gw.mqttUrl, opts);
  t.teardown(() => back.endAsync(true));
  back.on('message', (_topic, payload) => seen.add((JSON.parse(payload.toString()) as ConsoleAlarm).shopId));
  await until('every alarm at the console', async () => seen.size, (n) => n >= pressed.length, 30_000);
  t.same([...seen].sort(), pressed.map((s) => s.shopId).sort(), 'every alarm arrived');
});

t.test("a refused subscription is not kept in a persistent session: no other shop's alerts later", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const [a, other] = street.shops;
  // An origin whose ring alerts both shops.
  const origin = street.shops.slice(2).find((s) => {
    const ring = nearestShops(data, s.shopId, 10);
    return ring.includes(a.shopId) && ring.includes(other.shopId);
  })!;
  const opts = { clientId: a.deviceId, username: a.creds.username, password: a.creds.password, clean: false, reconnectPeriod: 0 } as const;
  const first = await mqtt.connectAsync(gw.mqttUrl, opts);
  const granted = await first.subscribeAsync([topics.shopAlerts(a.shopId), topics.shopAlerts(other.shopId)], { qos: 1 }).then(
    (g) => g.map((x) => x.qos),
    (err: { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
  );
  t.same(granted, [1, 128], "its own alerts granted, another shop's refused");
  await first.endAsync();

  const kp = await new SimKeypad(origin.deviceId, origin.shopId, origin.creds, 1).connect(gw.mqttUrl);
  await kp.press('9#');
  await kp.close();
  await until('the alarm', async () => query(data, 'SELECT id FROM alarms').length, (n) => n > 0);

  const heard: string[] = [];
  const back = mqtt.connect(gw.mqttUrl, opts);
  t.teardown(() => back.endAsync(true));
  back.on('message', (topic) => heard.push(topic));
  await until('its own alert', async () => heard.includes(topics.shopAlerts(a.shopId)), (x) => x);
  await sleep(1000);
  t.notOk(heard.includes(topics.shopAlerts(other.shopId)), "no alert of another shop reaches it");
  const h = await gw.health();
  t.ok(h.counters['sessions.subscriptionsNotStored'] >= 1, 'the refused subscription was not stored, and that is counted');
});
