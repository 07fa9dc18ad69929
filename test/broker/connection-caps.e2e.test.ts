/**
 * Idle sockets cannot take the room of registered devices (broker/connection-admission.ts),
 * against the gateway as a child process: several processes open many idle TCP sockets from
 * other loopback addresses (127.0.0.2, 127.0.0.3, …); with the caps set low, the sockets past
 * them are closed at once and counted, a registered device on 127.0.0.1 still gets in and its 9#
 * raises an alarm, and once the idle sockets are gone new ones are accepted again.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { tempDataDir, GatewayProcess, provisionStreet, query, sleep, until, ROOT } from '../helpers/gateway.js';
import { SimKeypad } from '../../simulators/mqtt-devices.js';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

const HELPER = join(ROOT, 'test', 'helpers', 'idle-sockets.mjs');

interface Holder {
  child: ChildProcess;
  /** What the helper saw once its sockets settled. */
  report: Promise<{ opened: number; closed: number }>;
}

function holdIdleSockets(t: { teardown(fn: () => unknown): void }, port: number, localAddress: string, count: number): Holder {
  const child = spawn(process.execPath, [HELPER, String(port), localAddress, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill('SIGKILL'));
  const report = new Promise<{ opened: number; closed: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l) as { opened: number; closed: number }));
    child.once('exit', (code) => reject(new Error(`idle-socket helper exited (${code}) before reporting`)));
  });
  return { child, report };
}

function gone(h: Holder): Promise<void> {
  return new Promise((resolve) => {
    if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
    h.child.once('exit', () => resolve());
    h.child.kill('SIGTERM');
  });
}


/**
 * A keypad behind a given local address (mqtt.js cannot bind one): CONNECT, one 9# at QoS 1,
 * resolves on its PUBACK.
 */
function pressFrom(port: number, localAddress: string, shop: { deviceId: string; creds: { username: string; password: string } }): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ port, host: '127.0.0.1', localAddress });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const timer = setTimeout(() => fail(new Error('no PUBACK in time')), 15_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    s.on('error', fail);
    s.on('close', () => fail(new Error('closed by the gateway')));
    s.on('data', (d) => parser.parse(d));
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connack') {
        if ((p as { returnCode?: number }).returnCode !== 0) return fail(new Error(`CONNACK ${(p as { returnCode?: number }).returnCode}`));
        const event = { seq: 1, boot: 1, type: 'keypad', keys: '9#' };
        s.write(mqttPacket.generate({ cmd: 'publish', topic: topics.deviceEvents(shop.deviceId), payload: Buffer.from(JSON.stringify(event)), qos: 1, messageId: 1, retain: false, dup: false } as Packet));
      } else if (p.cmd === 'puback') {
        clearTimeout(timer);
        s.removeAllListeners('close');
        s.end();
        resolve();
      }
    });
    s.once('connect', () =>
      s.write(
        mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, keepalive: 60, clean: true, clientId: shop.deviceId, username: shop.creds.username, password: Buffer.from(shop.creds.password) } as Packet),
      ),
    );
  });
}

const refused = (h: Record<string, any>, reason: string) => (h.counters[`refused.connection.${reason}`] as number | undefined) ?? 0;

t.test('idle sockets from several processes leave room for a registered device', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const perAddress = 100;
  const pendingTotal = 250;
  const gw = await GatewayProcess.start(t, data, {
    LF_MQTT_MAX_PENDING_PER_ADDRESS: String(perAddress),
    LF_MQTT_MAX_PENDING_CONNECTIONS: String(pendingTotal),
    LF_MQTT_MAX_CONNECTIONS: '1000',
    // Long enough that no idle socket is closed for its silence while the test runs.
    LF_MQTT_CONNECT_TIMEOUT_MS: '120000',
    LF_MQTT_LIMITS_LOG_INTERVAL_MS: '500',
    LF_MQTT_PENDING_EVICTABLE_AFTER_MS: '1000',
  });
  const each = 150;
  const holders = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => holdIdleSockets(t, gw.ports.mqtt, a, each));
  const reports = await Promise.all(holders.map((h) => h.report));
  for (const [i, r] of reports.entries()) {
    t.equal(r.opened, each, `process ${i + 2}: every socket was accepted by the kernel`);
    t.ok(r.closed >= each - perAddress, `process ${i + 2}: the sockets past the per-address cap were closed at once (${r.closed} closed)`);
  }
  const h = await gw.health();
  const all = ['per-address', 'pending-total', 'evicted'].reduce((n, r) => n + refused(h, r), 0);
  t.ok(refused(h, 'per-address') > 0, `per-address refusals counted (${refused(h, 'per-address')})`);
  t.ok(refused(h, 'pending-total') + refused(h, 'evicted') > 0, 'the total cap of pending sockets was reached and counted');
  t.ok(all >= 4 * each - pendingTotal, `every socket past the caps was refused or made room and was counted (${all})`);
  t.ok(h.mqtt.connections.pending <= pendingTotal, `pending sockets within the cap (${h.mqtt.connections.pending})`);
  const summary = await gw.waitForLog((l) => l.msg === 'connections refused');
  t.equal(summary.code, 'LF_ERR_TOO_MANY_CONNECTIONS', 'refusals logged in summary, with their code');
  t.ok(gw.logs.filter((l) => l.msg === 'connections refused').length < 20, 'one line per interval, not one per socket');

  // A registered device still finds room, and its 9# raises an alarm.
  const s = street.shops[0];
  const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds, 1).connect(gw.mqttUrl);
  t.teardown(() => kp.close());
  await kp.press('9#');
  const alarms = await until('the alarm', async () => query(data, 'SELECT shop_id FROM alarms'), (rows) => rows.length > 0);
  t.same(alarms.map((r) => r.shop_id), [s.shopId], 'the alarm was raised');

  // A keypad behind the address of one of the processes (a NAT they share) gets in too: the idle
  // sockets there are older than mqtt.pendingEvictableAfterMs.
  const nat = street.shops[2];
  await pressFrom(gw.ports.mqtt, '127.0.0.2', nat);
  await until('its alarm', async () => query(data, 'SELECT shop_id FROM alarms'), (rows) => rows.some((r) => r.shop_id === nat.shopId));
  t.pass('a keypad behind a busy address raised its alarm');

  // The idle sockets go away: new connections are accepted again, from the same addresses.
  await Promise.all(holders.map(gone));
  await until('the pending sockets to be released', () => gw.health(), (h) => h.mqtt.connections.pending === 0);
  const again = holdIdleSockets(t, gw.ports.mqtt, '127.0.0.2', perAddress);
  const r = await again.report;
  t.same(r, { opened: perAddress, closed: 0 }, 'up to the per-address cap are accepted again');
  await gone(again);
  // The WebSocket listener is capped from its TCP accept too, before any HTTP upgrade.
  const ws = holdIdleSockets(t, gw.ports.ws, '127.0.0.3', perAddress + 50);
  const wr = await ws.report;
  t.ok(wr.closed >= 50, `WebSocket port: the sockets past the per-address cap were closed at once (${wr.closed} closed)`);
  await gone(ws);
  const s2 = street.shops[1];
  const kp2 = await new SimKeypad(s2.deviceId, s2.shopId, s2.creds, 1).connect(gw.mqttUrl);
  t.teardown(() => kp2.close());
  await kp2.press('9#');
  await until('the last alarm', async () => query(data, 'SELECT shop_id FROM alarms'), (rows) => rows.some((r) => r.shop_id === s2.shopId));
  t.pass('a second device raises an alarm after the recovery');
});

t.test('idle sockets are closed after connectTimeoutMs, on the TCP and the WebSocket port', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 11);
  const gw = await GatewayProcess.start(t, data, { LF_MQTT_CONNECT_TIMEOUT_MS: '1000' });
  const closedWithin = (port: number) =>
    new Promise<number>((resolve) => {
      const started = Date.now();
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => {});
      s.once('close', () => resolve(Date.now() - started));
      setTimeout(() => {
        s.destroy();
        resolve(Infinity);
      }, 15_000);
    });
  const [tcp, ws] = await Promise.all([closedWithin(gw.ports.mqtt), closedWithin(gw.ports.ws)]);
  t.ok(tcp < 15_000, `MQTT port: an idle socket was closed (${tcp} ms)`);
  t.ok(ws < 15_000, `WebSocket port: a socket that sends no upgrade request was closed (${ws} ms)`);
  await until('no pending socket', () => gw.health(), (h) => h.mqtt.connections.pending === 0);
  t.pass('their places were released');

  // A device over WebSocket that logged in is not pending, and outlives the timeout.
  const s = street.shops[0];
  const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds, 1).connect(`ws://127.0.0.1:${gw.ports.ws}`);
  t.teardown(() => kp.close());
  const h = await gw.health();
  t.same(h.mqtt.connections.pending, 0, 'a logged-in WebSocket client is not pending');
  await sleep(2500);
  await kp.press('9#');
  await until('the alarm', async () => query(data, 'SELECT id FROM alarms').length, (n) => n > 0);
  t.pass('its 9# raised an alarm after more than connectTimeoutMs');
});
