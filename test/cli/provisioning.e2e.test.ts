/**
 * Device provisioning against a running gateway, as an installer does it: `device revoke` and
 * `device rotate` cut off a connected MQTT device at once (the old password refused, the new one
 * works; the figure is printed), `device rotate --all` writes every new credential to a 0600 file
 * (and is refused without one), and `device list` shows who is online, when each was last seen
 * and its open faults (online unknown without a gateway). Real child processes, real MQTT clients.
 */
import t, { type Test } from 'tap';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayProcess, cli, oneShopStreet, query, sleep, tempDataDir, until, type CliResult } from '../helpers/gateway.js';
import { DROP_BOUND_MS, dropAfter, login, refusedCode, type Creds } from '../helpers/sessions.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

const json = <T = any>(s: string): T => JSON.parse(s) as T;

async function addMqttDevice(t: Test, d: string[], id: string): Promise<Creds> {
  const r = await cli(['device', 'add', '--shop', 'S01', '--type', 'keypad', '--id', id, '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  return json<Creds>(r.stdout);
}

const deviceList = async (d: string[]) => {
  const r = await cli(['device', 'list', '--json', ...d]);
  if (r.code !== 0) throw new Error(r.stderr);
  return new Map(json<any[]>(r.stdout).map((x) => [x.deviceId as string, x]));
};

t.test('with a running gateway', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const gw = await GatewayProcess.start(t, data);
  const url = gw.mqttUrl;

  await t.test('device revoke drops the connected device; it can no longer log in', async (t) => {
    const dev = await addMqttDevice(t, d, 'S01.keypad.rv');
    const client = await login(url, dev.username, dev.password);
    t.teardown(() => client.endAsync(true));
    await client.publishAsync(topics.deviceEvents(dev.deviceId), JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 });
    await dropAfter(t, client, () => cli(['device', 'revoke', dev.deviceId, ...d]));
    t.equal(await refusedCode(url, dev.username, dev.password), 4, 'a revoked device is refused');
    const again = await cli(['device', 'rotate', dev.deviceId, ...d]);
    t.equal(again.code, 2);
    t.match(again.stderr, /LF_ERR_INVALID_ARGUMENT: invalid device: S01\.keypad\.rv was revoked/, 'a revoked device is not re-keyed');
  });

  await t.test('device rotate drops the session; the old password is refused, the new one works', async (t) => {
    const dev = await addMqttDevice(t, d, 'S01.keypad.rot');
    const client = await login(url, dev.username, dev.password);
    t.teardown(() => client.endAsync(true));
    let out: CliResult | undefined;
    await dropAfter(t, client, async () => (out = await cli(['device', 'rotate', dev.deviceId, '--json', ...d])));
    const issued = json<Creds>(out!.stdout);
    t.match(issued, { deviceId: dev.deviceId, username: dev.deviceId, password: /^[A-Za-z0-9_-]{20,}$/ });
    t.not(issued.password, dev.password, 'a new password');
    t.equal(await refusedCode(url, dev.username, dev.password), 4, 'the old password is refused');
    const fresh = await login(url, issued.username, issued.password);
    await fresh.publishAsync(topics.deviceEvents(dev.deviceId), JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 });
    t.pass('the new password logs in');
    await fresh.endAsync(true);
    const text = await cli(['device', 'rotate', dev.deviceId, ...d]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /new credentials issued[\s\S]*MQTT password: \S{20,}/, 'without --json the new password is printed once, like device add');
  });

  await t.test('a Modbus module has no credentials to rotate', async (t) => {
    const r = await cli(['device', 'add', '--shop', 'S01', '--type', 'io-module', '--transport', 'modbus-tcp', '--host', '127.0.0.1', '--tcp-port', '1', '--bus-address', '1', '--id', 'S01.io.1', ...d]);
    t.equal(r.code, 0, r.stderr);
    const rot = await cli(['device', 'rotate', 'S01.io.1', ...d]);
    t.equal(rot.code, 2);
    t.match(rot.stderr, /LF_ERR_INVALID_ARGUMENT: .*Modbus has no credentials to rotate/);
  });

  await t.test('device list: online, last seen, open faults', async (t) => {
    const dev = await addMqttDevice(t, d, 'S01.keypad.ls');
    const before = (await deviceList(d)).get(dev.deviceId);
    t.match(before, { online: false, lastSeen: null, openFaults: 0 }, 'never connected');
    const client = await login(url, dev.username, dev.password);
    t.teardown(() => client.endAsync(true));
    await client.publishAsync(topics.deviceEvents(dev.deviceId), JSON.stringify({ seq: 1, type: 'tamper', active: true }), { qos: 1 });
    const on = await until('the device online with its tamper fault', async () => (await deviceList(d)).get(dev.deviceId), (x) => x.online === true && x.openFaults === 1);
    t.match(on, { online: true, lastSeen: /^\d{4}-\d\d-\d\dT/, openFaults: 1 });
    const stored = query<{ at: string }>(data, 'SELECT received_at AS at FROM events WHERE device_id = ? ORDER BY id DESC LIMIT 1', dev.deviceId)[0]!.at;
    t.ok(on.lastSeen >= stored, 'last seen is no older than its newest stored event');
    const table = await cli(['device', 'list', '--shop', 'S01', ...d]);
    t.match(table.stdout, /ONLINE\s+LAST SEEN\s+LAST TESTED\s+OPEN FAULTS/);
    t.match(table.stdout, new RegExp(`S01\\.keypad\\.ls .* yes\\s+\\S+\\s+1\\n`), 'the table shows it online with its fault');
    await client.endAsync();
    const off = await until('the device offline', async () => (await deviceList(d)).get(dev.deviceId), (x) => x.online === false);
    t.equal(off.lastSeen, on.lastSeen, 'last seen stays when it goes offline');
  });

  await t.test('rotate --all: refused without --credentials; with it every new password is in a 0600 file', async (t) => {
    const devices = [await addMqttDevice(t, d, 'S01.keypad.all1'), await addMqttDevice(t, d, 'S01.keypad.all2')];
    const clients = await Promise.all(devices.map((x) => login(url, x.username, x.password)));
    t.teardown(() => Promise.all(clients.map((c) => c.endAsync(true))));
    const refused = await cli(['device', 'rotate', '--all', ...d]);
    t.equal(refused.code, 2);
    t.match(refused.stderr, /LF_ERR_INVALID_ARGUMENT: invalid --credentials: .*never to the terminal/);
    t.ok(clients.every((c) => c.connected), 'nothing was rotated');
    t.not(await refusedCode(url, devices[0]!.username, devices[0]!.password, 'S01.keypad.all1'), 4, 'the old password still works');

    const out = tempDataDir(t);
    const file = join(out, 'new-creds.csv');
    const closed = Promise.all(clients.map((c) => new Promise<void>((res) => (c.connected ? c.once('close', () => res()) : res()))));
    const r = await cli(['device', 'rotate', '--all', '--credentials', file, '--json', ...d]);
    t.equal(r.code, 0, r.stderr);
    await Promise.race([closed, sleep(DROP_BOUND_MS)]);
    t.ok(clients.every((c) => !c.connected), 'every rotated device was dropped');
    t.equal(statSync(file).mode & 0o777, 0o600, 'the credentials file is 0600');
    const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(','));
    t.same(rows[0], ['shop', 'device-id', 'transport', 'username', 'password', 'mac-key']);
    const byId = new Map(rows.slice(1).map((c) => [c[1]!, c]));
    t.notOk(byId.has('S01.keypad.rv'), 'a revoked device is not rotated');
    t.notOk(byId.has('S01.io.1'), 'a Modbus module is not rotated');
    for (const x of devices) {
      const row = byId.get(x.deviceId)!;
      t.ok(row, `${x.deviceId} is in the file`);
      t.notOk(r.stdout.includes(row[4]!), 'no new password on the terminal');
      t.equal(await refusedCode(url, x.username, x.password), 4, `${x.deviceId}: the old password is refused`);
      const c = await login(url, row[3]!, row[4]!);
      await c.endAsync(true);
      t.pass(`${x.deviceId}: the password in the file logs in`);
    }
    t.match(json(r.stdout), { rotated: byId.size, credentials: file });
    const again = await cli(['device', 'rotate', '--all', '--credentials', file, ...d]);
    t.equal(again.code, 2);
    t.match(again.stderr, /exists: name a new file/, 'the file is never overwritten');
  });
});

t.test('without a gateway, online is unknown', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  await addMqttDevice(t, d, 'S01.keypad.x');
  t.match([...(await deviceList(d)).values()], [{ online: null, lastSeen: null, openFaults: 0 }]);
  t.match((await cli(['device', 'list', ...d])).stdout, /S01\.keypad\.x .* -\s+0\n/);
});
