/**
 * Device commands over the real wire (gateway/delivery/device-commands.ts, the outbox's device
 * rows, broker/policy.ts deliveryRecipient): the gateway's broker on a loopback port, MQTT keypads
 * as the simulator over TCP. The sink is called as the engine calls it, inside a writer item, and
 * shop alert rows are enqueued as the engine enqueues them.
 * A command is delivered when the keypad PUBACKs it on its own commands topic; one enqueued while
 * the keypad is away is sent when it subscribes, after a gateway restart too, and re-sent while it
 * is connected and does not answer; a late copy of an older command never brings back old text.
 * A shop alert reaches the shop's MQTT keypads as commands each time its row is published (and when
 * a keypad subscribes to its commands alone), and a keypad's PUBACK of one delivers the shop's row.
 */
import t, { type Test } from 'tap';
import { createConnection } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { tempDataDir, query, startGateway } from '../../helpers/gateway.js';
import { provisionRow, eventually, rowAlert } from '../../helpers/wired.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { addDevice } from '../../../gateway/registry/registry.js';
import type { Gateway } from '../../../gateway/controller.js';
import { loadConfig } from '../../../config/load.js';
import { createLogger } from '../../../gateway/logger.js';
import mqtt from 'mqtt';
import { SimKeypad, type Credentials } from '../../../simulators/mqtt-devices.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import type { KeypadFeedback } from '../../../gateway/delivery/device-commands.js';
import type { ShopAlert } from '../../../firmware-contracts/mqtt/payloads.js';

const RETRY_MS = 300;

function start(t: Test, data: string, mqttPort = 0): Promise<Gateway> {
  return startGateway(t, data, { delivery: { retryIntervalMs: RETRY_MS } }, { mqttPort });
}

async function street(t: Test) {
  const data = tempDataDir(t);
  await provisionRow(data, 2);
  const db = openDatabase(data);
  const creds = new Map<string, Credentials>();
  try {
    for (const shopId of ['W00', 'W01']) {
      const issued = addDevice(db, loadOrCreateGatewayKey(data), { shopId, type: 'keypad', transport: 'mqtt', id: `${shopId}.keypad.k1` });
      creds.set(shopId, { username: issued.username!, password: issued.password! });
    }
  } finally {
    db.close();
  }
  const keypad = (shopId: string) => new SimKeypad(`${shopId}.keypad.k1`, shopId, creds.get(shopId)!);
  return { data, presser: 'W00.keypad.k1', neighbour: 'W01.keypad.k1', keypad, creds };
}

const url = (gw: Gateway) => `mqtt://127.0.0.1:${gw.ports().mqtt}`;

function feedback(gw: Gateway, deviceId: string, what: KeypadFeedback): Promise<void> {
  return gw.writer.run((fx) => gw.commands.feedback(fx, gw.clock.now(), gw.registry.devices.get(deviceId)!, what));
}


/** The shop alert row the engine would enqueue for W01. */
function enqueueAlert(gw: Gateway, a: ShopAlert): Promise<void> {
  return gw.writer.run((fx) => gw.outbox.enqueue(fx, gw.clock.now(), { alarmId: a.alarmId, rev: a.rev, kind: 'shop', recipientId: 'W01', topic: topics.shopAlerts('W01'), body: a }));
}

const shopRows = (data: string) =>
  query<{ alarmId: string; rev: number; deliveredBy: string | null; sentCount: number }>(
    data,
    "SELECT alarm_id AS alarmId, rev, delivered_by AS deliveredBy, sent_count AS sentCount FROM outbox WHERE recipient_kind = 'shop' AND recipient_id = 'W01' ORDER BY id",
  );

/** A raw MQTT client that subscribes to device `id`'s commands and never acknowledges; `write` sends a packet. */
async function muteSubscriber(t: Test, gw: Gateway, id: string, password: string) {
  const sock = createConnection({ host: '127.0.0.1', port: gw.ports().mqtt });
  t.teardown(() => sock.destroy());
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const got: { messageId?: number; payload: string }[] = [];
  let subacked = false;
  parser.on('packet', (p) => {
    if (p.cmd === 'suback') subacked = true;
    if (p.cmd === 'publish') got.push({ messageId: p.messageId, payload: p.payload.toString() });
  });
  sock.on('data', (d) => parser.parse(d));
  const write = (p: mqttPacket.Packet) => sock.write(mqttPacket.generate(p));
  await new Promise<void>((r) => sock.once('connect', () => r()));
  write({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id, clean: true, keepalive: 60, username: id, password: Buffer.from(password) });
  write({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics.deviceCommands(id), qos: 1 }] });
  await eventually(() => subacked, 'subscribed');
  return { got, write, sock };
}

const deviceRows = (data: string, deviceId: string) =>
  query<{ seq: number; command: string; deliveredBy: string | null; superseded: number; sentCount: number }>(
    data,
    "SELECT seq, command, delivered_by AS deliveredBy, superseded, sent_count AS sentCount FROM outbox WHERE recipient_kind = 'device' AND recipient_id = ? ORDER BY seq",
    deviceId,
  );

t.test("the pressing keypad gets its LED on its commands topic and PUBACKs it: the row is delivered by that keypad", async (t) => {
  const s = await street(t);
  const gw = await start(t, s.data);
  const kp = await s.keypad('W00').connect(url(gw));
  t.teardown(() => kp.close());
  await feedback(gw, s.presser, 'raised');
  await kp.waitForCommand((c) => c.command === 'led');
  t.same(kp.shows, { display: ['', ''], led: { colour: 'green', blink: true }, buzzer: { on: false, seconds: 0 } }, 'green blink, no buzzer, no text');
  await eventually(() => deviceRows(s.data, s.presser)[0]?.deliveredBy === `device:${s.presser}`, 'the LED command delivered');
  t.equal(gw.outbox.countPending(), 0);
});

t.test('a keypad away when its commands were enqueued gets the newest of each when it subscribes; a late older copy does not bring back old text', async (t) => {
  const s = await street(t);
  const gw = await start(t, s.data);
  await feedback(gw, s.presser, 'wrong-pin');
  await feedback(gw, s.presser, 'locked-out');
  t.same(deviceRows(s.data, s.presser).map((r) => [r.seq, r.superseded]), [[1, 1], [2, 0]], 'the wrong-PIN text superseded by the lock-out text');
  const kp = await s.keypad('W00').connect(url(gw));
  t.teardown(() => kp.close());
  await kp.waitForCommand((c) => c.command === 'display');
  t.same(kp.shows.display, ['密码已锁定', 'PIN locked']);
  t.notOk(kp.commandsReceived.some((c) => c.line2 === 'Wrong PIN'), 'the superseded text was never sent');
  await eventually(() => deviceRows(s.data, s.presser)[1]?.deliveredBy === `device:${s.presser}`, 'delivered on resubscribe');

  // A copy of an older display command arriving late (a re-send that crossed a newer one).
  const stale = { command: 'display', text: '密码错误', line2: 'Wrong PIN', seq: 1 };
  gw.broker.publish(topics.deviceCommands(s.presser), JSON.stringify(stale));
  await eventually(() => kp.commandsReceived.some((c) => c.seq === 1), 'the stale copy arrived');
  t.same(kp.shows.display, ['密码已锁定', 'PIN locked'], 'the keypad still shows the newer text');
});

t.test("after a gateway restart the undelivered device rows are sent again, and the shop's alert as the neighbour keypad's commands", async (t) => {
  const s = await street(t);
  const gw1 = await start(t, s.data);
  await enqueueAlert(gw1, rowAlert('A-restart', 1, 'raised'));
  await feedback(gw1, s.presser, 'cancelled');
  await gw1.stop();

  const gw2 = await start(t, s.data);
  const neighbour = await s.keypad('W01').connect(url(gw2));
  const presser = await s.keypad('W00').connect(url(gw2));
  t.teardown(() => Promise.all([neighbour.close(), presser.close()]));
  await neighbour.waitForCommand((c) => c.command === 'led');
  await presser.waitForCommand((c) => c.command === 'led');
  t.same(neighbour.shows, { display: ['报警 1号', '李记茶行'], led: { colour: 'red', blink: true }, buzzer: { on: true, seconds: gw2.opts.config.serial.buzzerSeconds } }, "the neighbour keypad sounds and shows the alert, as a wired one");
  t.match(neighbour.commands, [{ alarmId: 'A-restart', rev: 1 }, { alarmId: 'A-restart', rev: 1 }, { alarmId: 'A-restart', rev: 1 }]);
  await presser.waitForCommand((c) => c.command === 'display');
  t.same(presser.shows.display, ['已取消', 'Cancelled']);
  t.same(presser.shows.led, { colour: 'off', blink: false });
  await eventually(() => gw2.outbox.countPending() === 0, 'every row delivered after the restart');
  t.same(deviceRows(s.data, s.neighbour), [], 'the neighbour has no rows of its own: its commands render the shop row');
});

t.test('a keypad connected that does not answer gets its command again every retry interval, until it PUBACKs', async (t) => {
  const s = await street(t);
  const gw = await start(t, s.data);
  const { got, write } = await muteSubscriber(t, gw, s.presser, s.creds.get('W00')!.password);
  await feedback(gw, s.presser, 'no-alarm');
  await eventually(() => got.length >= 3, 'sent, then re-sent twice', 20_000);
  t.ok(got.every((g) => JSON.parse(g.payload).seq === 1), 'the same command, seq 1, each time');
  t.equal(deviceRows(s.data, s.presser)[0]!.deliveredBy, null, 'not delivered while unanswered');
  write({ cmd: 'puback', messageId: got.at(-1)!.messageId! });
  await eventually(() => deviceRows(s.data, s.presser)[0]?.deliveredBy === `device:${s.presser}`, 'delivered by the PUBACK');
  const n = got.length;
  await new Promise((r) => setTimeout(r, RETRY_MS * 4));
  t.ok(got.length <= n + 1, 'no more re-sends once delivered (one may have been under way)');
});

t.test("a neighbour keypad on its commands topic alone: the alert's commands when it subscribes and on every re-send; its PUBACK delivers the shop's row", async (t) => {
  const s = await street(t);
  const gw = await start(t, s.data);
  await enqueueAlert(gw, rowAlert('A-cmd', 1, 'raised'));
  const { username, password } = s.creds.get('W01')!;
  // First a client that takes its commands and never acknowledges them: the retry re-sends them.
  const mute = await muteSubscriber(t, gw, s.neighbour, password);
  const got = () => mute.got.map((g) => JSON.parse(g.payload) as { command: string; alarmId?: string; rev?: number; seq?: number });
  await eventually(() => got().length >= 6, 'sent when it subscribed, then again by the retry', 20_000);
  t.same(got().slice(0, 3).map((c) => [c.command, c.alarmId, c.rev, c.seq]), [['buzzer', 'A-cmd', 1, undefined], ['display', 'A-cmd', 1, undefined], ['led', 'A-cmd', 1, undefined]]);
  t.equal(shopRows(s.data)[0]!.deliveredBy, null, 'not delivered while unanswered');
  t.ok(shopRows(s.data)[0]!.sentCount >= 2, 'the shop row itself was re-sent (its keypad is there)');
  mute.sock.destroy();

  // Then a client that PUBACKs what it gets (on its commands topic only): that delivers the shop's alert.
  const client = await new Promise<mqtt.MqttClient>((r) => {
    const c = mqtt.connect(url(gw), { protocolVersion: 4, clientId: s.neighbour, username, password, reconnectPeriod: 0 });
    c.once('connect', () => r(c));
  });
  t.teardown(() => client.end(true));
  await client.subscribeAsync(topics.deviceCommands(s.neighbour), { qos: 1 });
  await eventually(() => shopRows(s.data)[0]?.deliveredBy === `device:${s.neighbour}`, "the keypad's PUBACK of a command delivered the shop's alert row");
  t.same(deviceRows(s.data, s.neighbour), [], 'no device rows');
});

t.test("the keypad keeps the latest raised alert: an alarm that ends while it shows another one's changes nothing", async (t) => {
  const s = await street(t);
  const gw = await start(t, s.data);
  const kp = await s.keypad('W01').connect(url(gw));
  t.teardown(() => kp.close());
  const leds = () => kp.commands.filter((c) => c.command === 'led').length;
  await enqueueAlert(gw, rowAlert('A1', 1, 'raised'));
  await kp.waitForCommand((c) => c.command === 'led' && c.alarmId === 'A1');
  const b2 = { ...rowAlert('B2', 1, 'raised'), originName: '阿妹粿条', doorPlate: '16号' };
  await enqueueAlert(gw, b2);
  await kp.waitForCommand((c) => c.command === 'led' && c.alarmId === 'B2');
  t.same(kp.shows.display, ['报警 16号', '阿妹粿条']);
  await enqueueAlert(gw, rowAlert('A1', 2, 'ended'));
  await eventually(() => kp.commandsReceived.some((c) => c.alarmId === 'A1' && c.rev === 2 && c.command === 'led'), "A1's end arrived");
  t.same(kp.shows, { display: ['报警 16号', '阿妹粿条'], led: { colour: 'red', blink: true }, buzzer: { on: true, seconds: gw.opts.config.serial.buzzerSeconds } }, 'still B2');
  t.equal(leds(), 2, "A1's end applied nothing");
  // A late copy of A1's raised commands (lower rev than the end it has seen) is ignored too.
  for (const c of gw.commands.alertMessages('W01', rowAlert('A1', 1, 'raised'))) gw.broker.publish(c.topic, c.payload);
  await enqueueAlert(gw, { ...b2, rev: 2, state: 'ended' });
  await kp.waitForCommand((c) => c.command === 'led' && c.alarmId === 'B2' && c.rev === 2);
  t.same(kp.shows, { display: ['', ''], led: { colour: 'off', blink: false }, buzzer: { on: false, seconds: 0 } }, "B2's end clears it");
  t.notOk(kp.commands.some((c) => c.alarmId === 'A1' && c.rev === 1 && kp.commands.indexOf(c) > 2), 'the late A1 copy was not applied');
});
