/**
 * `lianfang doctor` as an installer runs it: a healthy data directory passes (exit 0), with its
 * gateway running (whose ports are its own) and without; then each fault is staged for real and
 * its check, and only its check (or what follows from it), fails with exit status 3: a damaged
 * database page, a schema version from the future, a free-disk floor no disk meets, an event from
 * the future (the clock), a port held by another program, a serial bus on a missing path, a Modbus
 * TCP unit that does not answer, a key readable by others, a device never heard, a shop without PIN.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { chmodSync, closeSync, openSync, statSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { GatewayProcess, cli, oneShopStreet, sleep } from '../helpers/gateway.js';
import { ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { SimKeypad } from '../../simulators/mqtt-devices.js';
import { LATEST_VERSION } from '../../gateway/store/migrations.js';

interface Finding {
  check: string;
  subject?: string;
  ok: boolean;
  problem: { en: string; zh: string } | null;
  fix: { en: string; zh: string } | null;
  detail?: Record<string, unknown>;
}
interface Report {
  ok: boolean;
  gatewayRunning: boolean;
  findings: Finding[];
}

/** Free ports for the gateway's configuration: bound by nobody once this returns. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

t.test('doctor: healthy, then each fault staged', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const db = () => join(data, 'lianfang.db');
  t.equal((await cli(['shop', 'pin', 'S01', ...d], { LF_PIN: '2468', LF_DURESS_PIN: '1357' })).code, 0, 'PIN set');
  const modbus = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] }).start();
  t.teardown(() => modbus.close());
  const added = await cli(['device', 'add', '--shop', 'S01', '--type', 'io-module', '--transport', 'modbus-tcp', '--host', '127.0.0.1', '--tcp-port', String(modbus.port), '--bus-address', '1', '--json', ...d]);
  t.equal(added.code, 0, added.stderr);
  const kpAdd = await cli(['device', 'add', '--shop', 'S01', '--type', 'keypad', '--transport', 'mqtt', '--json', ...d]);
  t.equal(kpAdd.code, 0, kpAdd.stderr);
  const keypad = JSON.parse(kpAdd.stdout) as { deviceId: string; username: string; password: string };

  const [mqttPort, wsPort, httpPort] = await freePorts(3);
  const env = { LF_MQTT_HOST: '127.0.0.1', LF_HTTP_HOST: '127.0.0.1', LF_MQTT_PORT: String(mqttPort), LF_MQTT_WS_PORT: String(wsPort), LF_HTTP_PORT: String(httpPort) };
  const doctor = async (extraEnv: NodeJS.ProcessEnv = {}, args: string[] = []) => {
    const r = await cli(['doctor', '--json', ...d, ...args], { ...env, ...extraEnv });
    let report: Report;
    try {
      report = JSON.parse(r.stdout) as Report;
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.code}): ${r.stdout} ${r.stderr}`);
    }
    return { code: r.code, report, failing: [...new Set(report.findings.filter((f) => !f.ok).map((f) => f.check))].sort() };
  };

  await t.test('healthy with its gateway running: the gateway\'s ports are its own', async (t) => {
    // The gateway on the configured ports, as `lianfang start` with this configuration runs it.
    const gw = await GatewayProcess.start(t, data, {}, []);
    const kp = await new SimKeypad(keypad.deviceId, 'S01', { username: keypad.username, password: keypad.password }, 1).connect(gw.mqttUrl);
    await kp.send({ type: 'heartbeat' });
    await kp.close();
    const r = await doctor({ LF_MQTT_PORT: String(gw.ports.mqtt), LF_MQTT_WS_PORT: String(gw.ports.ws), LF_HTTP_PORT: String(gw.ports.http) });
    t.same(r.failing, [], JSON.stringify(r.report.findings.filter((f) => !f.ok)));
    t.equal(r.code, 0);
    t.equal(r.report.gatewayRunning, true);
    const ports = r.report.findings.filter((f) => f.check === 'port');
    t.equal(ports.length, 3);
    t.ok(ports.every((p) => p.detail?.state === 'held by the running gateway'), 'held by this gateway, not a finding');
    t.ok(r.report.findings.some((f) => f.check === 'modbus-unit' && f.ok), 'the Modbus unit answers through the gateway');
    await gw.kill('SIGTERM');
  });

  await t.test('healthy without a gateway (text output)', async (t) => {
    const r = await doctor();
    t.same(r.failing, [], JSON.stringify(r.report.findings.filter((f) => !f.ok)));
    t.equal(r.code, 0);
    t.equal(r.report.gatewayRunning, false);
    const checks = new Set(r.report.findings.map((f) => f.check));
    for (const c of ['database', 'schema', 'disk', 'clock', 'port', 'modbus-unit', 'gateway-key', 'device-seen', 'shop-pin']) t.ok(checks.has(c), `${c} was checked`);
    t.ok(r.report.findings.some((f) => f.check === 'modbus-unit' && f.ok), 'the Modbus unit answers when probed directly');
    const text = await cli(['doctor', ...d], env);
    t.equal(text.code, 0);
    t.match(text.stdout, /ok\s+database: integrity_check ok/);
    t.match(text.stdout, new RegExp(`ok\\s+port mqtt: ${mqttPort} free`));
    t.match(text.stdout, /no problems found/);
  });

  await t.test('the gateway key readable by others', async (t) => {
    chmodSync(join(data, 'gateway.key'), 0o644);
    t.teardown(() => chmodSync(join(data, 'gateway.key'), 0o600));
    const r = await doctor();
    t.same(r.failing, ['gateway-key']);
    t.equal(r.code, 3);
    const text = await cli(['doctor', ...d], env);
    t.equal(text.code, 3);
    t.match(text.stdout, /PROBLEM\s+gateway-key: the gateway key .* has mode 0644/);
    t.match(text.stdout, /fix: `chmod 600 .*gateway\.key`/);
    const zh = await cli(['doctor', ...d], { ...env, LANG: 'zh_CN.UTF-8' });
    t.match(zh.stdout, /问题\s+gateway-key: 网关密钥 .* 的权限为 0644/);
    t.equal(statSync(join(data, 'gateway.key')).mode & 0o777, 0o644, 'doctor reports the mode and leaves it: it changes nothing');
  });

  await t.test('free disk under the configured floor', async (t) => {
    const r = await doctor({ LF_HEALTH_DISK_FLOOR_BYTES: String(Number.MAX_SAFE_INTEGER) });
    t.same(r.failing, ['disk']);
    t.equal(r.code, 3);
  });

  await t.test('a configured port held by another program', async (t) => {
    const other = createServer();
    await new Promise<void>((r) => other.listen(mqttPort, '127.0.0.1', () => r()));
    t.teardown(() => new Promise((r) => other.close(r)));
    const r = await doctor();
    t.same(r.failing, ['port']);
    const f = r.report.findings.find((x) => !x.ok)!;
    t.equal(f.subject, 'mqtt');
    t.match(f.problem!.en, `port ${mqttPort}`);
    t.match(f.fix!.en, `ss -ltnp 'sport = :${mqttPort}'`);
  });

  await t.test('an event stored from the future: the clock is behind', async (t) => {
    const w = new Database(db());
    const future = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const id = w.prepare("INSERT INTO events (device_id, seq, type, payload, via, received_at) VALUES (?, 999, 'heartbeat', '{}', 'mqtt', ?)").run(keypad.deviceId, future).lastInsertRowid;
    w.close();
    t.teardown(() => {
      const c = new Database(db());
      c.prepare('DELETE FROM events WHERE id = ?').run(id);
      c.close();
    });
    const r = await doctor();
    t.same(r.failing, ['clock']);
    t.equal(r.report.findings.find((f) => f.check === 'clock')!.detail!.newestStored, future);
  });

  await t.test('a Modbus TCP unit that does not answer (its port closed)', async (t) => {
    await modbus.close();
    const r = await doctor();
    const unit = r.report.findings.find((f) => f.check === 'modbus-unit')!;
    t.equal(unit.ok, false);
    t.match(unit.problem!.en, /does not answer/);
    t.match(unit.fix!.en, /lianfang bus scan/);
    t.ok(r.failing.every((c) => c === 'modbus-unit' || c === 'device-seen'), `only the module: ${r.failing}`);
    t.equal(r.code, 3);
    await modbus.start();
  });

  await t.test('a serial bus on a missing path', async (t) => {
    const a = await cli(['device', 'add', '--shop', 'S01', '--type', 'keypad', '--transport', 'serial', '--port', join(data, 'no-such-tty'), '--bus-address', '3', '--json', ...d]);
    t.equal(a.code, 0, a.stderr);
    const id = (JSON.parse(a.stdout) as { deviceId: string }).deviceId;
    const r = await doctor();
    t.ok(r.failing.includes('serial-port'), `${r.failing}`);
    t.ok(r.failing.every((c) => c === 'serial-port' || c === 'device-seen'), 'and the keypad on it was never heard');
    t.match(r.report.findings.find((f) => f.check === 'serial-port')!.problem!.en, /no-such-tty .* is not there/);
    t.equal((await cli(['device', 'revoke', id, ...d])).code, 0);
  });

  await t.test('a device never heard since it was added', async (t) => {
    const a = await cli(['device', 'add', '--shop', 'S01', '--type', 'panic', '--transport', 'mqtt', '--json', ...d]);
    const id = (JSON.parse(a.stdout) as { deviceId: string }).deviceId;
    const r = await doctor();
    t.same(r.failing, ['device-seen']);
    const f = r.report.findings.find((x) => !x.ok)!;
    t.equal(f.subject, id);
    t.match(f.fix!.en, `lianfang device revoke ${id}`);
    t.equal((await cli(['device', 'revoke', id, ...d])).code, 0);
    t.same((await doctor()).failing, [], 'a revoked device is not expected to be heard');
  });

  await t.test('a shop without a PIN', async (t) => {
    t.equal((await cli(['shop', 'add', '--id', 'S02', '--name', '阿妹粿条', '--address', 'Changping Rd 25', '--station', 'PS1', '--lat', '23.3541', '--lon', '116.6821', ...d])).code, 0);
    const r = await doctor();
    t.same(r.failing, ['shop-pin']);
    t.equal(r.report.findings.find((f) => !f.ok)!.subject, 'S02');
    t.equal((await cli(['shop', 'pin', 'S02', ...d], { LF_PIN: '1111', LF_DURESS_PIN: '2222' })).code, 0);
    t.same((await doctor()).failing, []);
  });

  await t.test('a schema version newer than this build', async (t) => {
    const w = new Database(db());
    w.pragma(`user_version = ${LATEST_VERSION + 1}`);
    w.close();
    t.teardown(() => {
      const c = new Database(db());
      c.pragma(`user_version = ${LATEST_VERSION}`);
      c.close();
    });
    const r = await doctor();
    t.same(r.failing, ['schema']);
    t.match(r.report.findings.find((f) => f.check === 'schema')!.problem!.en, `${LATEST_VERSION + 1} is newer`);
    t.equal(r.code, 3);
  });

  await t.test('a damaged database page', async (t) => {
    // The shops table's root page overwritten, as a bad sector or a torn write would leave it.
    const w = new Database(db());
    const { rootpage } = w.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'shops'").get() as { rootpage: number };
    const pageSize = w.pragma('page_size', { simple: true }) as number;
    w.close();
    const fd = openSync(db(), 'r+');
    writeSync(fd, Buffer.alloc(512, 0xa5), 0, 512, (rootpage - 1) * pageSize);
    closeSync(fd);
    await sleep(10);
    const r = await doctor();
    t.same(r.failing, ['database']);
    t.match(r.report.findings.find((f) => f.check === 'database')!.fix!.en, /lianfang restore/);
    t.equal(r.code, 3);
  });
});
