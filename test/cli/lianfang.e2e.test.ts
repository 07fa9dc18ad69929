/**
 * The installer's CLI, as real child processes: provisioning, listing, coded errors with remedies,
 * help with examples, the admin channel to a running gateway, the data-directory lock.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempDataDir, GatewayProcess } from '../helpers/gateway.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

// Among the suite's longest files (30-75 s here): a slower machine must not reach tap's 120 s.
t.setTimeout(300_000);

const json = <T = any>(s: string): T => JSON.parse(s) as T;

t.test('provision a station, a compound, shops and devices; list them; neighbours with distances', async (t) => {
  const data = tempDataDir(t);
  const d = ['--data', data];
  let r = await cli(['station', 'add', '--id', 'PS1', '--name', '长平路派出所', ...d]);
  t.equal(r.code, 0, r.stderr);
  r = await cli(['station', 'add', '--id', 'C1', '--name', 'Garden Court guard room', '--compound-of', 'PS1', ...d]);
  t.equal(r.code, 0, r.stderr);
  for (let i = 0; i < 12; i++) {
    r = await cli([
      'shop', 'add', '--id', `S${i}`, '--name', `店${i}`, '--address', `Changping Rd ${i}`, '--station', 'PS1',
      '--lat', String(23.3586 + i * 0.0001), '--lon', '116.6832', ...(i === 0 ? ['--compound', 'C1', '--door-plate', '23号', '--pole', 'P-118', '--grid', 'G3', '--sector', 'A', '--owner', 'Li Ming', '--owner-phone', '13800000000', '--duty', 'Li Hua', '--duty-phone', '13900000000', '--cameras', 'cam-1,cam-2'] : []),
      ...d,
    ]);
    t.equal(r.code, 0, r.stderr);
  }
  r = await cli(['shop', 'add', '--id', 'NOGPS', '--name', 'Back lane', '--address', 'Lane 3', '--station', 'PS1', '--neighbours', 'S3,S1,S2', ...d]);
  t.equal(r.code, 0, r.stderr);

  const shops = json<any[]>((await cli(['shop', 'list', '--json', ...d])).stdout);
  t.equal(shops.length, 13);
  const s0 = shops.find((s) => s.id === 'S0');
  t.match(s0, { compoundId: 'C1', doorPlate: '23号', poleNumber: 'P-118', grid: 'G3', sector: 'A', ownerName: 'Li Ming', ownerPhone: '13800000000', dutyName: 'Li Hua', dutyPhone: '13900000000', cameraIds: ['cam-1', 'cam-2'] });
  const table = (await cli(['shop', 'list', ...d])).stdout;
  t.match(table, /店0/);
  t.match(table, /^ID\s+NAME/);

  const stations = json<any[]>((await cli(['station', 'list', '--json', ...d])).stdout);
  t.same(stations.map((s) => [s.id, s.compoundOf]), [['C1', 'PS1'], ['PS1', null]]);

  r = await cli(['device', 'add', '--shop', 'S0', '--type', 'keypad', '--transport', 'mqtt', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  const dev = json(r.stdout);
  t.match(dev, { deviceId: String, username: String, password: String, shopId: 'S0', type: 'keypad', transport: 'mqtt' });
  t.equal(dev.username, dev.deviceId);
  t.ok(Buffer.from(dev.password, 'base64url').length >= 32, '256 random bits');
  const listed = (await cli(['device', 'list', '--json', ...d])).stdout;
  t.notOk(listed.includes(dev.password), 'device list never shows the secret');
  t.equal(json<any[]>(listed)[0].deviceId, dev.deviceId);

  const near = json<any[]>((await cli(['neighbours', 'S5', '--json', ...d])).stdout);
  t.equal(near.length, 11, 'every other located shop, in its rings');
  t.same(near.map((n) => n.ring), [...Array(10).fill(1), 2], 'ten in ring 1, the rest in ring 2');
  t.same(near.slice(0, 2).map((n) => n.shopId).sort(), ['S4', 'S6']);
  t.ok(near.every((n, i) => i === 0 || n.distanceM >= near[i - 1].distanceM), 'nearest first');
  t.ok(Math.abs(near[0].distanceM - 11.1) < 0.5, 'great-circle metres');
  const manual = json<any[]>((await cli(['neighbours', 'NOGPS', '--json', ...d])).stdout);
  t.same(manual.map((n) => n.shopId), ['S3', 'S1', 'S2'], "a shop without coordinates uses the installer's list");
});

t.test('coded errors with a remedy, exit code 2, and nothing half-written', async (t) => {
  const data = tempDataDir(t);
  const d = ['--data', data];
  let r = await cli(['shop', 'add', '--id', 'S1', '--name', 'x', '--address', 'y', '--station', 'NOPE', ...d]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^error LF_ERR_NOT_FOUND: station NOPE does not exist — remedy: \S.*\n$/);
  r = await cli(['station', 'add', '--id', 'bad/id', '--name', 'x', ...d]);
  t.equal(r.code, 2);
  t.match(r.stderr, /LF_ERR_INVALID_ARGUMENT/);
  await cli(['station', 'add', '--id', 'PS1', '--name', 'x', ...d]);
  r = await cli(['station', 'add', '--id', 'PS1', '--name', 'x', ...d]);
  t.match(r.stderr, /LF_ERR_ALREADY_EXISTS/);
  r = await cli(['shop', 'add', '--id', 'S1', '--name', 'x', '--address', 'y', '--station', 'PS1', '--lat', '23.1', ...d]);
  t.match(r.stderr, /give both --lat and --lon/);
  r = await cli(['shop', 'add', '--id', 'S1', '--name', 'x', '--address', 'y', '--station', 'PS1', '--lat', 'north', '--lon', '1', ...d]);
  t.not(r.code, 0);
  t.match(r.stderr, /--lat must be a number/);
  r = await cli(['device', 'add', '--shop', 'S9', '--type', 'keypad', ...d]);
  t.match(r.stderr, /LF_ERR_NOT_FOUND: shop S9/);
  r = await cli(['device', 'add', '--shop', 'S9', '--type', 'toaster', ...d]);
  t.not(r.code, 0);
  t.match(r.stderr, /Allowed choices are keypad, panic, io-module/);
  r = await cli(['user', 'add', '--role', 'officer', '--name', 'duty1', '--password', 'short', '--station', 'PS1', ...d]);
  t.match(r.stderr, /LF_ERR_INVALID_ARGUMENT/);
  r = await cli(['user', 'add', '--role', 'officer', '--name', 'duty1', '--password', 'long-enough-1', ...d]);
  t.match(r.stderr, /an officer belongs to a station/);
  r = await cli(['user', 'add', '--role', 'officer', '--name', 'duty1', '--station', 'PS1', ...d], { LF_PASSWORD: 'from-the-env-1' });
  t.equal(r.code, 0, r.stderr);
  const users = json<any[]>((await cli(['user', 'list', '--json', ...d])).stdout);
  t.same(users.map((u) => [u.name, u.role, u.stationId]), [['duty1', 'officer', 'PS1']]);
  t.notOk(JSON.stringify(users).includes('from-the-env-1'));
  r = await cli(['status', ...d]);
  t.match(r.stderr, /LF_ERR_GATEWAY_NOT_RUNNING/);

  // A data directory whose admin socket path would be longer than 107 bytes.
  const deep = join(data, 'x'.repeat(60), 'y'.repeat(60));
  mkdirSync(deep, { recursive: true });
  r = await cli(['start', '--data', deep, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0']);
  t.equal(r.code, 2);
  t.match(r.stderr, /LF_ERR_SOCKET_PATH_TOO_LONG/);
});

// Every command's help is walked in-process by test/gateway/cli/help.test.ts; here, a few as a user
// runs them, through the real entry point.
t.test('--help explains every command with an example', async (t) => {
  const top = await cli(['--help']);
  t.equal(top.code, 0);
  for (const c of ['start', 'station', 'shop', 'device', 'user', 'neighbours', 'bus', 'simulate', 'import', 'export', 'doctor', 'logs']) t.match(top.stdout, new RegExp(`\\b${c}\\b`));
  const cmds = [['start'], ['shop', 'add'], ['device', 'add'], ['import', 'shops'], ['doctor']];
  for (const c of cmds) {
    const r = await cli([...c, '--help']);
    t.equal(r.code, 0, c.join(' '));
    t.match(r.stdout, /Example/, `${c.join(' ')} --help has an example`);
    t.match(r.stdout, /--data/, `${c.join(' ')} takes --data`);
  }
});

t.test('a running gateway takes CLI changes at once; revoking disconnects; a second gateway is locked out', async (t) => {
  const data = tempDataDir(t);
  const d = ['--data', data];
  await cli(['station', 'add', '--id', 'PS1', '--name', 'x', ...d]);
  await cli(['shop', 'add', '--id', 'S1', '--name', 'x', '--address', 'y', '--station', 'PS1', ...d]);
  const gw = await GatewayProcess.start(t, data);

  const second = await cli(['start', ...d, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0']);
  t.equal(second.code, 2);
  t.match(second.stderr, /LF_ERR_DATA_LOCKED/);

  const r = await cli(['device', 'add', '--shop', 'S1', '--type', 'panic', '--json', ...d]);
  t.match(r.stderr, /running gateway has taken the change/);
  const dev = json(r.stdout);
  const client = await mqtt.connectAsync(gw.mqttUrl, { clientId: dev.deviceId, username: dev.username, password: dev.password, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  await client.publishAsync(topics.deviceEvents(dev.deviceId), JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 });
  t.pass('a device added while the gateway runs connects at once');

  const closedP = new Promise<void>((res) => client.once('close', () => res()));
  const rv = await cli(['device', 'revoke', dev.deviceId, ...d]);
  t.equal(rv.code, 0, rv.stderr);
  await closedP;
  t.pass('revoking disconnects it');
  const again = mqtt.connect(gw.mqttUrl, { clientId: dev.deviceId, username: dev.username, password: dev.password, reconnectPeriod: 0 });
  const code = await new Promise((res) => again.once('error', (e: Error & { code?: number }) => res(e.code)));
  again.end(true);
  t.equal(code, 4, 'a revoked device can no longer log in');

  const status = json((await cli(['status', ...d])).stdout);
  t.match(status, { up: true, gatewayId: /^gw-/, counts: { shops: 1, devices: 1 } });
  const health = await gw.health();
  t.match(health, { up: true, version: /^\d+\.\d+\.\d+/, gatewayId: status.gatewayId });
});
