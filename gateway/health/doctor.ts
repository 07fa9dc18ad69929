/**
 * `lianfang doctor`: the usual reasons why "nothing works" on an edge box, each checked by one
 * function that returns findings. A finding says what is wrong and how to fix it (a command where
 * there is one), in both languages. Nothing here changes the data directory: the database is
 * opened read-only (no migration), no mode is tightened (a too-open key is reported, not hidden),
 * and a port is only bound for a moment to see whether it is free.
 */
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Db } from '../store/db.js';
import { DB_FILE } from '../store/db.js';
import { LATEST_VERSION } from '../store/migrations.js';
import { GATEWAY_KEY_FILE } from '../secrets.js';
import { freeBytesAt } from './disk-watch.js';
import { listBuses, describeBus, type Bus } from '../registry/buses.js';
import { listDevices, listShops, type Device } from '../registry/registry.js';
import { lastSeenByDevice } from '../registry/device-status.js';
import { both, type Text } from '../i18n.js';
import type { ScanHit } from '../../devices/bridge.js';

export interface Finding {
  /** Which check: `database`, `schema`, `disk`, `clock`, `port`, `serial-port`, `modbus-unit`, `gateway-key`, `device-seen`, `shop-pin`. */
  check: string;
  /** What it looked at, where a check looks at several things (a port's name, a bus, a device, a shop). */
  subject?: string;
  ok: boolean;
  /** What is wrong; null when ok. */
  problem: Text | null;
  /** What to do about it, with the command where there is one; null when ok. */
  fix: Text | null;
  /** What was found when ok, in a few words. */
  note?: Text;
  /** What was found (values, for scripts). */
  detail?: Record<string, unknown>;
}

/** The ports of the gateway running on the data directory, as its admin channel reports them. */
export interface RunningGateway {
  ports: { mqtt: number; ws: number; http: number };
}

const ok = (check: string, note: Text, detail?: Record<string, unknown>, subject?: string): Finding => ({
  check,
  ...(subject ? { subject } : {}),
  ok: true,
  problem: null,
  fix: null,
  note,
  ...(detail ? { detail } : {}),
});

const bad = (check: string, problem: Text, fix: Text, detail?: Record<string, unknown>, subject?: string): Finding => ({
  check,
  ...(subject ? { subject } : {}),
  ok: false,
  problem,
  fix,
  ...(detail ? { detail } : {}),
});

const octal = (mode: number) => '0' + (mode & 0o777).toString(8);

/**
 * The database opened read-only, as it is (no migration, nothing created), or the finding that it
 * cannot be: missing, not a database, or so damaged that SQLite refuses it.
 */
export function openForDoctor(dataDir: string): { db: Db } | { finding: Finding } {
  const file = join(dataDir, DB_FILE);
  if (!existsSync(file)) {
    return {
      finding: bad(
        'database',
        both(`there is no database at ${file}`, `${file} 处没有数据库`),
        both(`check --data; a new data directory gets one from \`lianfang start --data ${dataDir}\`, or restore a backup: \`lianfang restore FILE --data ${dataDir}\``, `检查 --data；新数据目录在 \`lianfang start --data ${dataDir}\` 时创建数据库，或恢复备份：\`lianfang restore FILE --data ${dataDir}\``),
        { file },
      ),
    };
  }
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return { db };
  } catch (err) {
    return { finding: corrupt(dataDir, file, (err as Error).message) };
  }
}

function corrupt(dataDir: string, file: string, what: string): Finding {
  return bad(
    'database',
    both(`the database ${file} is damaged: ${what}`, `数据库 ${file} 已损坏：${what}`),
    both(
      `stop the gateway and restore the latest backup: \`lianfang restore FILE --data ${dataDir}\` (the damaged file is kept aside)`,
      `停止网关并恢复最近的备份：\`lianfang restore FILE --data ${dataDir}\`（损坏的文件会被保留）`
    ),
    { file, integrity: what },
  );
}

/** PRAGMA integrity_check: every page and index of the database as SQLite expects it. */
export function checkIntegrity(db: Db, dataDir: string): Finding {
  const file = join(dataDir, DB_FILE);
  let rows: string[];
  try {
    rows = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
  } catch (err) {
    return corrupt(dataDir, file, (err as Error).message);
  }
  if (rows.length === 1 && rows[0] === 'ok') return ok('database', both('integrity_check ok', 'integrity_check 正常'), { file, integrity: 'ok' });
  return corrupt(dataDir, file, rows.slice(0, 5).join('; '));
}

/** The schema version (PRAGMA user_version, which migrations.ts keeps) against this build's LATEST_VERSION. */
export function checkSchemaVersion(db: Db, dataDir: string): Finding {
  const version = db.pragma('user_version', { simple: true }) as number;
  const detail = { version, latest: LATEST_VERSION };
  if (version === LATEST_VERSION) return ok('schema', both(`version ${version}, this build's`, `版本 ${version}，与本版本一致`), detail);
  if (version > LATEST_VERSION) {
    return bad(
      'schema',
      both(`the database's schema version ${version} is newer than this gateway's (${LATEST_VERSION}): a newer gateway wrote it`, `数据库结构版本 ${version} 比本网关的（${LATEST_VERSION}）新：它由更新的网关写入`),
      both('install the gateway version that last ran on this data directory (or newer), or restore a backup made by this version: `lianfang restore FILE`', '安装最后在此数据目录上运行的网关版本（或更新版本），或恢复由本版本生成的备份：`lianfang restore FILE`'),
      detail,
    );
  }
  return bad(
    'schema',
    both(`the database's schema version ${version} is older than this gateway's (${LATEST_VERSION}): it has not been migrated yet`, `数据库结构版本 ${version} 比本网关的（${LATEST_VERSION}）旧：尚未迁移`),
    both(`take a backup, then start the gateway, which migrates it: \`lianfang backup FILE --data ${dataDir}\` and \`lianfang start --data ${dataDir}\``, `先备份，再启动网关完成迁移：\`lianfang backup FILE --data ${dataDir}\`，然后 \`lianfang start --data ${dataDir}\``),
    detail,
  );
}

/** Free space on the data directory's filesystem against health.diskFloorBytes (the floor of the gateway's own disk-low fault). */
export function checkFreeDisk(dataDir: string, floorBytes: number, freeBytes: (path: string) => number = freeBytesAt): Finding {
  let free: number;
  try {
    free = freeBytes(dataDir);
  } catch (err) {
    return bad('disk', both(`cannot read the free space of ${dataDir}: ${(err as Error).message}`, `无法读取 ${dataDir} 的剩余空间：${(err as Error).message}`), both('check that the data directory exists and is mounted', '检查数据目录存在且已挂载'));
  }
  const mib = (n: number) => `${Math.floor(n / 1048576)} MiB`;
  const detail = { path: dataDir, freeBytes: free, floorBytes };
  if (free >= floorBytes) return ok('disk', both(`${mib(free)} free`, `剩余 ${mib(free)}`), detail);
  return bad(
    'disk',
    both(`only ${mib(free)} free on the filesystem of ${dataDir} (the floor is ${mib(floorBytes)}): events may soon fail to be stored`, `${dataDir} 所在文件系统只剩 ${mib(free)}（下限 ${mib(floorBytes)}）：事件可能很快无法存储`),
    both(`free space there (\`du -xsh ${dataDir}/* /var/log\`; old backups, \`journalctl --vacuum-size=100M\`), or lower health.diskFloorBytes (LF_HEALTH_DISK_FLOOR_BYTES)`, `清理该文件系统（\`du -xsh ${dataDir}/* /var/log\`；旧备份、\`journalctl --vacuum-size=100M\`），或调低 health.diskFloorBytes（LF_HEALTH_DISK_FLOOR_BYTES）`),
    detail,
  );
}

/**
 * No box runs this build before it was written: a clock earlier than this is one that lost its
 * time (an edge box without a battery-backed clock starts in 1970 or at its image's date).
 */
export const CLOCK_FLOOR = '2026-01-01T00:00:00.000Z';

/** A clock this far behind the newest stored time is wrong, not a few milliseconds of commit order. */
const CLOCK_BEHIND_TOLERANCE_MS = 1000;

/**
 * The newest time the store holds: of the latest events (by id: stored in arrival order), the
 * alarms, the latest audit rows and the faults. Bounded reads, not whole-table scans.
 */
export function newestStoredTime(db: Db): string | null {
  const times = [
    "SELECT max(received_at) AS t FROM (SELECT received_at FROM events ORDER BY id DESC LIMIT 1000)",
    'SELECT max(updated_at) AS t FROM alarms',
    'SELECT max(at) AS t FROM (SELECT at FROM audit ORDER BY id DESC LIMIT 1000)',
    'SELECT max(updated_at) AS t FROM faults',
  ].map((sql) => (db.prepare(sql).get() as { t: string | null }).t);
  return times.reduce<string | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
}

/**
 * The system clock against the newest stored time: behind it, deadlines (escalation, lock-outs,
 * entry delays) fire late or never and new events sort before old ones; before CLOCK_FLOOR it is
 * years off.
 */
export function checkClock(db: Db, nowMs: number): Finding {
  const newest = newestStoredTime(db);
  const now = new Date(nowMs).toISOString();
  const detail = { now, newestStored: newest };
  const fix = both(
    'set the clock (`timedatectl set-ntp true`, or `date -s "2026-12-02 10:00"` without a network), then restart the gateway',
    '校正时钟（`timedatectl set-ntp true`，无网络时 `date -s "2026-12-02 10:00"`），然后重启网关'
  );
  if (now < CLOCK_FLOOR) return bad('clock', both(`the clock says ${now}, before this gateway was written: it has lost its time`, `时钟显示 ${now}，早于本网关的编写时间：时钟已丢失`), fix, detail);
  if (newest !== null && Date.parse(newest) - nowMs > CLOCK_BEHIND_TOLERANCE_MS) {
    const behind = Date.parse(newest) - nowMs;
    const days = (behind / 86_400_000).toFixed(1);
    return bad(
      'clock',
      both(`the clock (${now}) is behind the newest time in the database (${newest}) by ${days} days: it was set back, or was wrong when those were stored`, `时钟（${now}）比数据库中最新的时间（${newest}）晚 ${days} 天：时钟被调回，或存储时时钟有误`),
      fix,
      { ...detail, behindMs: behind },
    );
  }
  return ok('clock', both(`${now}, not behind the newest stored time (${newest ?? 'none'})`, `${now}，不早于数据库中最新的时间（${newest ?? '无'}）`), detail);
}

/** Whether `port` on `host` can be bound now (released at once); the error code when not. */
export function probePort(host: string, port: number): Promise<'free' | string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve('free')));
  });
}

/**
 * Each configured listening port (0 = any free port: nothing to check) free, or held by the gateway
 * running on this data directory.
 */
export async function checkPorts(config: Readonly<Config>, gateway: RunningGateway | null): Promise<Finding[]> {
  const wanted = [
    { name: 'mqtt', host: config.mqtt.host, port: config.mqtt.port, field: 'mqtt.port', env: 'LF_MQTT_PORT', held: gateway?.ports.mqtt },
    { name: 'ws', host: config.mqtt.host, port: config.mqtt.wsPort, field: 'mqtt.wsPort', env: 'LF_MQTT_WS_PORT', held: gateway?.ports.ws },
    { name: 'http', host: config.http.host, port: config.http.port, field: 'http.port', env: 'LF_HTTP_PORT', held: gateway?.ports.http },
  ];
  const findings: Finding[] = [];
  for (const w of wanted) {
    const detail = { host: w.host, port: w.port };
    if (w.port === 0) findings.push(ok('port', both('0: any free port', '0：任意空闲端口'), { ...detail, state: 'any free port' }, w.name));
    else if (w.held === w.port) findings.push(ok('port', both(`${w.port}, held by the running gateway`, `${w.port}，由运行中的网关占用`), { ...detail, state: 'held by the running gateway' }, w.name));
    else {
      const state = await probePort(w.host, w.port);
      if (state === 'free') findings.push(ok('port', both(`${w.port} free`, `${w.port} 空闲`), { ...detail, state }, w.name));
      else {
        findings.push(
          bad(
            'port',
            both(`port ${w.port} (${w.name}, ${w.field}) on ${w.host} cannot be used by the gateway: ${state === 'EADDRINUSE' ? 'another program holds it' : state}`, `网关无法使用 ${w.host} 上的端口 ${w.port}（${w.name}，${w.field}）：${state === 'EADDRINUSE' ? '另一个程序占用了它' : state}`),
            both(`find the program: \`ss -ltnp 'sport = :${w.port}'\`; stop it, or give the gateway another port (${w.field}, ${w.env})`, `找出该程序：\`ss -ltnp 'sport = :${w.port}'\`；停止它，或为网关换一个端口（${w.field}，${w.env}）`),
            { ...detail, state },
            w.name
          ),
        );
      }
    }
  }
  return findings;
}

/** The buses the gateway opens: those with a device that is not revoked. */
function busesInUse(db: Db): { bus: Bus; devices: Device[] }[] {
  const devices = listDevices(db).filter((d) => d.bus && !d.revokedAt);
  return listBuses(db)
    .map((bus) => ({ bus, devices: devices.filter((d) => d.bus === bus.id) }))
    .filter((b) => b.devices.length > 0);
}

/** Each serial line in use (RS-485 keypads, Modbus RTU) has its device path. */
export function checkSerialPorts(db: Db): Finding[] {
  return busesInUse(db)
    .filter(({ bus }) => bus.kind !== 'modbus-tcp')
    .map(({ bus, devices }) => {
      const detail = { bus: bus.id, path: bus.path, devices: devices.length };
      if (bus.path && existsSync(bus.path)) return ok('serial-port', both(`${bus.path} present`, `${bus.path} 存在`), detail, bus.id);
      return bad(
        'serial-port',
        both(`the serial port ${bus.path} of bus ${bus.id} (${devices.length} devices) is not there`, `总线 ${bus.id}（${devices.length} 个设备）的串口 ${bus.path} 不存在`),
        both('plug the RS-485 adapter in and find its name: `ls -l /dev/serial/by-id/`; a renamed port: register the devices on the new one (`lianfang device add … --port PATH`)', '插上 RS-485 转换器并查看其名称：`ls -l /dev/serial/by-id/`；端口改名时，在新端口上重新登记设备（`lianfang device add … --port PATH`）'),
        detail,
        bus.id,
      );
    });
}

/** How a Modbus unit is asked whether it answers: through the running gateway (one master per line), or directly. */
export type UnitProbe = (bus: Bus, address: number, timeoutMs: number) => Promise<ScanHit[]>;

/** Each Modbus module that is not revoked answers at its unit id (a serial line that is missing is checkSerialPorts'). */
export async function checkModbusUnits(db: Db, probe: UnitProbe, timeoutMs: number): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const { bus, devices } of busesInUse(db)) {
    if (bus.kind === 'serial') continue;
    if (bus.kind === 'modbus-rtu' && !(bus.path && existsSync(bus.path))) continue;
    for (const d of devices) {
      const address = d.busAddress!;
      const detail = { bus: bus.id, where: describeBus(bus), address, deviceId: d.id, shopId: d.shopId };
      let answer: string | null;
      try {
        const hits = await probe(bus, address, timeoutMs);
        answer = hits.some((h) => h.address === address) ? null : `no answer within ${timeoutMs} ms`;
      } catch (err) {
        answer = (err as Error).message;
      }
      if (answer === null) {
        findings.push(ok('modbus-unit', both(`unit ${address} on ${describeBus(bus)} answers`, `${describeBus(bus)} 上的从站 ${address} 有应答`), detail, d.id));
        continue;
      }
      findings.push(
        bad(
          'modbus-unit',
          both(`Modbus module ${d.id} (shop ${d.shopId}, unit ${address} on ${describeBus(bus)}) does not answer: ${answer}`, `Modbus 模块 ${d.id}（店铺 ${d.shopId}，${describeBus(bus)} 上的从站 ${address}）无应答：${answer}`),
          both(
            `check its power, wiring and unit id, then \`lianfang bus scan ${bus.id} --from 1 --to 247\` to see which unit ids answer`,
            `检查其电源、接线和从站地址，然后运行 \`lianfang bus scan ${bus.id} --from 1 --to 247\` 查看哪些从站地址有应答`
          ),
          { ...detail, answer },
          d.id,
        ),
      );
    }
  }
  return findings;
}

/**
 * The gateway key file readable by its owner only (0600): with it, device tokens and 4-digit PINs
 * can be brute-forced from a copy of the database. (The key only comes from that file; a gateway
 * start tightens the mode itself, which is why this reports rather than relying on that.)
 */
export function checkKeyFile(dataDir: string, hasDatabase: boolean): Finding {
  const file = join(dataDir, GATEWAY_KEY_FILE);
  if (!existsSync(file)) {
    if (!hasDatabase) return ok('gateway-key', both('not created yet (the gateway creates it at its first start)', '尚未创建（网关首次启动时创建）'), { file, state: 'not created yet' });
    return bad(
      'gateway-key',
      both(`the gateway key ${file} is missing: the stored device tokens, MAC keys and PINs cannot be checked without it`, `网关密钥 ${file} 丢失：没有它，已存储的设备令牌、MAC 密钥和 PIN 都无法校验`),
      both(`put back the key saved with your backups (\`lianfang restore FILE --key KEYFILE --data ${dataDir}\`); without it, re-issue every device's credentials (\`lianfang device rotate\`) and every shop's PINs (\`lianfang shop pin\`)`, `放回与备份一同保存的密钥（\`lianfang restore FILE --key KEYFILE --data ${dataDir}\`）；没有密钥时，须重新签发所有设备的凭据（\`lianfang device rotate\`）和所有店铺的 PIN（\`lianfang shop pin\`）`),
      { file },
    );
  }
  const mode = statSync(file).mode & 0o777;
  const detail = { file, mode: octal(mode) };
  if ((mode & 0o077) === 0) return ok('gateway-key', both(`mode ${octal(mode)}`, `权限 ${octal(mode)}`), detail);
  return bad(
    'gateway-key',
    both(`the gateway key ${file} has mode ${octal(mode)}: others on this machine can read it`, `网关密钥 ${file} 的权限为 ${octal(mode)}：本机其他用户可以读取`),
    both(`\`chmod 600 ${file}\` (and find out who changed it)`, `\`chmod 600 ${file}\`（并查明是谁改的）`),
    detail,
  );
}

/**
 * Each device that is not revoked has been heard at least once since it was added: an event of its
 * stored, or (a Modbus module, which makes events only when an input changes) an answer to this
 * run's probe, in `answeredNow`.
 */
export function checkDevicesSeen(db: Db, answeredNow: ReadonlySet<string> = new Set()): Finding[] {
  const seen = lastSeenByDevice(db);
  return listDevices(db)
    .filter((d) => !d.revokedAt)
    .map((d) => {
      const detail = { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, addedAt: d.createdAt, lastSeen: seen.get(d.id) ?? null, answeredNow: answeredNow.has(d.id) };
      if (seen.has(d.id) || answeredNow.has(d.id)) return ok('device-seen', seen.has(d.id) ? both(`last heard ${seen.get(d.id)}`, `最近上报 ${seen.get(d.id)}`) : both('answers now', '当前有应答'), detail, d.id);
      const how = d.transport === 'mqtt' ? both('its network and the credentials it was given', '其网络和所配置的凭据') : both('its wiring and bus address', '其接线和总线地址');
      return bad(
        'device-seen',
        both(`device ${d.id} (${d.type}, ${d.transport}, shop ${d.shopId}) has never been heard since it was added on ${d.createdAt}`, `设备 ${d.id}（${d.type}，${d.transport}，店铺 ${d.shopId}）自 ${d.createdAt} 添加以来从未上报`),
        both(
          `power it and check ${how.en}, then press a key or wait for its heartbeat (\`lianfang device list --shop ${d.shopId}\`); a device never installed: \`lianfang device revoke ${d.id}\``,
          `接通电源并检查${how.zh}，然后按键或等待其心跳（\`lianfang device list --shop ${d.shopId}\`）；从未安装的设备：\`lianfang device revoke ${d.id}\``
        ),
        detail,
        d.id,
      );
    });
}

/** Each shop in service has its PINs: without them its alarm cannot be cancelled at the keypad, nor a duress PIN given. */
export function checkShopPins(db: Db): Finding[] {
  const withPins = new Set((db.prepare('SELECT shop_id FROM shop_pins').all() as { shop_id: string }[]).map((r) => r.shop_id));
  return listShops(db)
    .filter((s) => !s.retiredAt)
    .map((s) => {
      if (withPins.has(s.id)) return ok('shop-pin', both('PINs set', '已设置 PIN'), { shopId: s.id }, s.id);
      return bad(
        'shop-pin',
        both(`shop ${s.id} (${s.name}) has no PIN: its alarms cannot be cancelled at the keypad, and it has no duress PIN`, `店铺 ${s.id}（${s.name}）没有 PIN：其报警无法在键盘上取消，也没有胁迫 PIN`),
        both(`give it its PINs (4–8 digits, different): \`LF_PIN=NNNN LF_DURESS_PIN=NNNN lianfang shop pin ${s.id}\``, `为其设置 PIN（4–8 位数字，两者不同）：\`LF_PIN=NNNN LF_DURESS_PIN=NNNN lianfang shop pin ${s.id}\``),
        { shopId: s.id },
        s.id,
      );
    });
}

export interface DoctorOptions {
  dataDir: string;
  config: Readonly<Config>;
  /** The gateway running on dataDir, or null. */
  gateway: RunningGateway | null;
  probe: UnitProbe;
  probeTimeoutMs: number;
  nowMs: () => number;
}

/** Every check, in the order a person would fix things: the files first, then the store, the machine, the wires, the records. */
export async function runDoctor(o: DoctorOptions): Promise<Finding[]> {
  const opened = openForDoctor(o.dataDir);
  const findings: Finding[] = [checkKeyFile(o.dataDir, 'db' in opened)];
  findings.push(checkFreeDisk(o.dataDir, o.config.health.diskFloorBytes));
  findings.push(...(await checkPorts(o.config, o.gateway)));
  if (!('db' in opened)) return [opened.finding, ...findings];
  const db = opened.db;
  try {
    const integrity = checkIntegrity(db, o.dataDir);
    const schema = checkSchemaVersion(db, o.dataDir);
    findings.unshift(integrity, schema);
    // A damaged database, or one of another schema (its tables are not the ones these checks read):
    // fixed first, then checked again.
    if (!integrity.ok || !schema.ok) return findings;
    findings.push(checkClock(db, o.nowMs()));
    findings.push(...checkSerialPorts(db));
    const units = await checkModbusUnits(db, o.probe, o.probeTimeoutMs);
    findings.push(...units);
    findings.push(...checkDevicesSeen(db, new Set(units.filter((f) => f.ok).map((f) => f.subject!))));
    findings.push(...checkShopPins(db));
    return findings;
  } finally {
    db.close();
  }
}
