/**
 * Device commands over the real wire (gateway/delivery/device-commands.ts, the outbox's device
 * rows, broker/policy.ts deliveryRecipient): the gateway's broker on a loopback port, MQTT keypads
 * as the simulator over TCP. The sink is called as the engine calls it, inside a writer item.
 * A command is delivered when the keypad PUBACKs it on its own commands topic; one enqueued while
 * the keypad is away is sent when it subscribes, after a gateway restart too, and re-sent while it
 * is connected and does not answer; a late copy of an older command never brings back old text.
 */
import t, { type Test } from 'tap';
import { createConnection } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { tempDataDir, query } from '../../helpers/gateway.js';
import { provisionRow, eventually } from '../../helpers/wired.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { addDevice } from '../../../gateway/registry/registry.js';
import { Gateway } from '../../../gateway/controller.js';
import { loadConfig } from '../../../config/load.js';
import { createLogger } from '../../../gateway/logger.js';
import { SimKeypad, type Credentials } from '../../../simulators/mqtt-devices.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import type { KeypadFeedback } from '../../../gateway/delivery/device-commands.js';
import type { ShopAlert } from '../../../firmware-contracts/mqtt/payloads.js';

const RETRY_MS = 300;

async function start(t: Test, data: string, mqttPort = 0): Promise<Gateway> {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: data,
      log: { level: 'silent' },
      mqtt: { host: '127.0.0.1', port: mqttPort, wsPort: 0 },
      http: { host: '127.0.0.1', port: 0 },
      delivery: { retryIntervalMs: RETRY_MS },
    },
  });
  const gw = await Gateway.start({ config, log: createLogger('silent') });
  t.teardown(() => gw.stop());
  return gw;
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

t.test('after a gateway restart the undelivered device rows are sent again', async (t) => {
  const s = await street(t);
  const gw1 = await start(t, s.data);
  const alert: ShopAlert = { alarmId: 'A-restart', rev: 1, state: 'raised', originShopId: 'W00', originName: '李记茶行', address: '1 Test Road', doorPlate: '1号', kind: 'panic', raisedAt: new Date().toISOString() };
  await gw1.writer.run((fx) => gw1.commands.shopAlert(fx, gw1.clock.now(), 'W01', alert));
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
  await eventually(() => gw2.outbox.countPending() === 0, 'every device row delivered after the restart');
});

t.test('a keypad connected that does not answer gets its command again every retry interval, until it PUBACKs', async (t) => {
  const s = await street(t);
  const gw = await start(t, s.data);
  const { password } = s.creds.get('W00')!;
  // A raw MQTT client that subscribes to its commands and never acknowledges.
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
  write({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: s.presser, clean: true, keepalive: 60, username: s.presser, password: Buffer.from(password) });
  write({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics.deviceCommands(s.presser), qos: 1 }] });
  await eventually(() => subacked, 'subscribed');
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
