/**
 * A whole simulated street: a station, N shops facing each other along Changping Road, a keypad per
 * shop and a duty officer's console, all on the real wire. The simulator is the devices: it is
 * provisioned the way an installer would do it (`lianfang import`, see gateway/cli/demo-street.ts),
 * and reads what the installer hands a device: the shop sheet, the device sheet (bus addresses) and
 * the credentials file. `runStreet` connects them to a gateway and makes alarms flow: a shop presses
 * 9#, its neighbours answer, the officer acknowledges, dispatches and closes.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { SimConsole, SimKeypad, type Credentials } from './mqtt-devices.js';
import { SerialKeypadSim } from './serial-keypad.js';
import { openPtyPair } from './wire/pty-pair.js';
import type { ConsoleAlarm, ShopAlert } from '../firmware-contracts/mqtt/payloads.js';
import { parseCredentials, type IssuedCredential } from '../firmware-contracts/provisioning/credentials.js';

export const STREET_STATION = 'DEMO-PS';
export const STREET_OFFICER = 'demo-officer';
/** The street's RS-485 line (its bus id). */
export const STREET_LINE = 'street-line';

/** Where the installer keeps the demo street's sheets and what they issued, in the data directory. */
export function streetDir(dataDir: string): string {
  return join(resolve(dataDir), 'demo-street');
}
/** The files in streetDir: the sheets imported, the officer's login, the credentials files (one per import). */
export const STREET_FILES = { shops: 'shops.csv', devices: 'devices.csv', officer: 'officer.json', credentialsPrefix: 'credentials-' } as const;

export const STREET_NAMES = [
  '李记茶行', '陈氏五金', '潮汕牛肉丸', '老王水果', '林家药房', '金辉手机', '海鲜大排档', '明珠理发', '福来便利店', '永安粮油',
  '好运彩票', '华南眼镜', '德记烧腊', '新新服装', '万和电器', '阿妹粿条', '大发文具', '顺风快递', '平安诊所', '春风花店',
];

export interface StreetShop {
  shopId: string;
  name: string;
  deviceId: string;
  creds: Credentials;
  /** With `--wire serial`: the shop's keypad on the street's RS-485 line (a pty pair). */
  serial?: { deviceId: string; address: number; key: string };
}

/** How the street's keypads reach the gateway. */
export type StreetWire = 'mqtt' | 'serial';

/** The street's serial line: a pty pair whose links stay at the same place across runs. */
export function streetLineDir(dataDir: string): string {
  return join(resolve(dataDir), 'street-line');
}

export interface StreetFile {
  stationId: string;
  officer: Credentials;
  shops: StreetShop[];
}

export function streetShopId(i: number): string {
  return `DEMO-S${String(i + 1).padStart(3, '0')}`;
}

/**
 * Shop i's position: two rows facing each other across the road (12 m apart), 8 m between doors.
 * Around Changping Road, Shantou (23.3586 N, 116.6832 E).
 */
export function streetPosition(i: number): { lat: number; lon: number } {
  const side = i % 2;
  const along = Math.floor(i / 2);
  const mPerDegLat = 111_320;
  const mPerDegLon = 111_320 * Math.cos((23.3586 * Math.PI) / 180);
  return { lat: 23.3586 + (side * 12) / mPerDegLat, lon: 116.6832 + (along * 8) / mPerDegLon };
}

/** Shop i's name and its keypads' ids: the street's layout, shared by the installer and the test fixtures. */
export function streetShop(i: number): { shopId: string; name: string; address: string; doorPlate: string; mqttKeypad: string; serialKeypad: string; address485: number } {
  const shopId = streetShopId(i);
  const name = STREET_NAMES[i % STREET_NAMES.length] + (i >= STREET_NAMES.length ? ` ${Math.floor(i / STREET_NAMES.length) + 1}` : '');
  return { shopId, name, address: `Changping Road ${i + 1} 长平路${i + 1}号`, doorPlate: `${i + 1}号`, mqttKeypad: `${shopId}.keypad`, serialKeypad: `${shopId}.keypad-485`, address485: i + 1 };
}

type Sheet = Record<string, string>[];
const readSheet = (path: string): Sheet => parse(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true, bom: true }) as Sheet;

/**
 * The street as its devices know it, from the installer's files in streetDir: which shops, each
 * keypad's credentials (the newest credentials file that names a device wins) and, on the serial
 * line, its bus address. A shop whose keypad has no credentials is left out (its keypad was never
 * loaded).
 */
export function loadStreet(dataDir: string, wire: StreetWire = 'mqtt'): StreetFile {
  const dir = streetDir(dataDir);
  if (!existsSync(join(dir, STREET_FILES.shops))) throw new Error(`no demo street in ${dir}: provision it first (lianfang simulate street)`);
  const shops = readSheet(join(dir, STREET_FILES.shops));
  const devices = readSheet(join(dir, STREET_FILES.devices));
  const creds = new Map<string, IssuedCredential>();
  const files = readdirSync(dir).filter((f) => f.startsWith(STREET_FILES.credentialsPrefix) && f.endsWith('.csv')).sort();
  for (const f of files) for (const c of parseCredentials(readFileSync(join(dir, f), 'utf8'))) creds.set(c.deviceId, c);
  const officer = JSON.parse(readFileSync(join(dir, STREET_FILES.officer), 'utf8')) as { stationId: string; username: string; password: string };
  const out: StreetShop[] = [];
  for (const row of shops) {
    const shopId = row.id!;
    const mine = devices.filter((d) => d.shop === shopId);
    const mqttRow = mine.find((d) => d.transport === 'mqtt' && d.type === 'keypad');
    const mqttCreds = mqttRow && creds.get(mqttRow.id!);
    if (!mqttRow || !mqttCreds?.password) continue;
    let shop: StreetShop = { shopId, name: row.name!, deviceId: mqttRow.id!, creds: { username: mqttCreds.username ?? mqttRow.id!, password: mqttCreds.password } };
    if (wire === 'serial') {
      const serialRow = mine.find((d) => d.transport === 'serial');
      const key = serialRow && creds.get(serialRow.id!)?.macKey;
      if (!serialRow || !key) continue;
      shop = { ...shop, serial: { deviceId: serialRow.id!, address: Number(serialRow['bus-address']), key } };
    }
    out.push(shop);
  }
  return { stationId: officer.stationId, officer: { username: officer.username, password: officer.password }, shops: out };
}

export interface StreetOptions {
  dataDir: string;
  /** The street to run; default: the one provisioned in dataDir (loadStreet). */
  street?: StreetFile;
  mqttUrl: string;
  /** Time between alarms (default 10 s). */
  intervalMs?: number;
  /** Stop after this many alarms (0 = never). */
  count?: number;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Where the human-readable lines go (default stderr). */
  out?: (line: string) => void;
  /** Put the shops' keypads on a simulated RS-485 line instead of MQTT (shops ≤ 247). */
  wire?: StreetWire;
  /** MQTT keypads send a heartbeat this often (default 30 s), below the gateway's `supervision.mqttFaultAfterMs`. */
  heartbeatMs?: number;
}

export interface RunningStreet {
  /** The MQTT keypads (none when the street is on a serial line). */
  keypads: SimKeypad[];
  console: SimConsole;
  /** Resolves when `count` alarms have run their course. */
  done: Promise<void>;
  stop(): Promise<void>;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A keypad got an alert: say what it showed, and how the shopkeeper can answer it. */
type OnAlert = (shopId: string, text: string, reply: (r: 'coming' | 'seen' | 'cannot') => Promise<unknown>) => void;

/** The street's keypads, whatever carries them: they press keys and answer the alerts they get. */
interface StreetKeypads {
  shopIds: string[];
  /** The MQTT-native keypads (none on a serial line). */
  mqtt: SimKeypad[];
  press(shopId: string, keys: string): Promise<void>;
  close(): Promise<void>;
}

/** MQTT-native keypads: alerts arrive on the shop topic, replies go back as MQTT messages. */
async function mqttKeypads(street: StreetFile, opts: StreetOptions, onAlert: OnAlert): Promise<StreetKeypads> {
  // A new boot per run, so a restarted demo is a new sequence: seconds since the epoch, a u32 as the contract bounds it.
  const keypads = await Promise.all(street.shops.map((s) => new SimKeypad(s.deviceId, s.shopId, s.creds, Math.floor(Date.now() / 1000)).connect(opts.mqttUrl)));
  for (const kp of keypads) {
    // Supervised like real ones: heartbeats (and the daily self-test) so a quiet street is no fault.
    kp.startHeartbeats(opts.heartbeatMs ?? 30_000);
    kp.on('alert', (a: ShopAlert) => {
      if (a.state !== 'raised') return;
      onAlert(kp.shopId, `报警 ${a.doorPlate ?? ''} ${a.originName} — alert received (ring ${a.ring ?? 1}, ${a.distanceM ?? '?'} m)`, (r) => kp.reply(a.alarmId, r));
    });
  }
  const byShop = new Map(keypads.map((k) => [k.shopId, k]));
  return {
    mqtt: keypads,
    shopIds: keypads.map((k) => k.shopId),
    press: (shopId, keys) => byShop.get(shopId)!.press(keys).then(() => undefined),
    close: async () => void (await Promise.all(keypads.map((k) => k.close()))),
  };
}

/**
 * Keypads on a simulated RS-485 line (a pty pair under the data directory): the gateway polls them,
 * alerts arrive as buzzer and display commands, and a shopkeeper answers on the keypad (1# coming,
 * 2# cannot come).
 */
async function serialKeypads(street: StreetFile, opts: StreetOptions, onAlert: OnAlert): Promise<StreetKeypads> {
  const line = await openPtyPair({ dir: streetLineDir(opts.dataDir) });
  const wired = street.shops.filter((s) => s.serial);
  const sim = new SerialKeypadSim({ path: line.b, baud: 19200, keypads: wired.map((s) => ({ address: s.serial!.address, key: Buffer.from(s.serial!.key, 'hex'), boot: Math.floor(Date.now() / 1000) })) });
  await sim.start();
  const byAddress = new Map(wired.map((s) => [s.serial!.address, s]));
  sim.on('command', (address, frame) => {
    if (frame.type !== 'DISPLAY') return;
    const [top, bottom] = sim.state(address).display;
    if (!top.startsWith('报警')) return;
    onAlert(byAddress.get(address)!.shopId, `${top} ${bottom} — shown on the keypad`, (r) => {
      sim.press(address, r === 'cannot' ? '2#' : '1#');
      return Promise.resolve();
    });
  });
  const addressOf = new Map(wired.map((s) => [s.shopId, s.serial!.address]));
  return {
    mqtt: [],
    shopIds: wired.map((s) => s.shopId),
    press: async (shopId, keys) => void sim.press(addressOf.get(shopId)!, keys),
    close: async () => {
      await sim.close();
      await line.close();
    },
  };
}

export async function runStreet(opts: StreetOptions): Promise<RunningStreet> {
  const out = opts.out ?? ((line: string) => process.stderr.write(line + '\n'));
  const wire = opts.wire ?? 'mqtt';
  const street = opts.street ?? loadStreet(opts.dataDir, wire);
  if (street.shops.length === 0) throw new Error('the demo street has no shop whose keypad has credentials');
  const names = new Map(street.shops.map((s) => [s.shopId, s.name]));
  let stopped = false;
  const onAlert: OnAlert = (shopId, text, reply) => {
    out(`  [${shopId} ${names.get(shopId)}] ${text}`);
    void delay(300 + Math.random() * 1500).then(() => {
      if (stopped) return;
      const r = Math.random();
      return reply(r < 0.6 ? 'coming' : r < 0.85 ? 'seen' : 'cannot').catch(() => {});
    });
  };
  const keypads = wire === 'serial' ? await serialKeypads(street, opts, onAlert) : await mqttKeypads(street, opts, onAlert);
  const officer = await new SimConsole(street.stationId, street.officer).connect(opts.mqttUrl);

  const handled = new Set<string>();
  let closedCount = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  officer.on('alarm', (a: ConsoleAlarm) => {
    out(`[station ${a.stationId}] alarm ${a.alarmId.slice(-8)} ${a.shopName} (${a.shopId}) state=${a.state} rev=${a.rev} alerted=${a.shopsAlerted} coming=${a.replies.coming} seen=${a.replies.seen}${a.overdue ? ' OVERDUE' : ''}`);
    if (a.state === 'closed') {
      closedCount++;
      if (opts.count && closedCount >= opts.count) resolveDone();
      return;
    }
    if (a.state !== 'raised' || handled.has(a.alarmId)) return;
    handled.add(a.alarmId);
    void (async () => {
      await delay(1000);
      if (stopped) return;
      await officer.act({ alarmId: a.alarmId, action: 'ack', requestId: `ack-${a.alarmId}` });
      await delay(1000);
      if (stopped) return;
      await officer.act({ alarmId: a.alarmId, action: 'dispatch', patrol: 'P-07', note: 'simulated' });
      await delay(3000);
      if (stopped) return;
      await officer.act({ alarmId: a.alarmId, action: 'close', disposition: 'test', note: 'simulated street' });
    })().catch(() => {});
  });

  const interval = opts.intervalMs ?? 10_000;
  let raised = 0;
  const loop = (async () => {
    await delay(500);
    while (!stopped && (!opts.count || raised < opts.count)) {
      const shopId = keypads.shopIds[Math.floor(Math.random() * keypads.shopIds.length)]!;
      out(`[${shopId} ${names.get(shopId)}] presses 9#`);
      await keypads.press(shopId, '9#').catch((err: Error) => opts.log.warn({ err: err.message }, 'press failed'));
      raised++;
      await delay(interval);
    }
  })();

  opts.log.info({ shops: keypads.shopIds.length, station: street.stationId, intervalMs: interval, wire }, 'simulated street running');
  return {
    keypads: keypads.mqtt,
    console: officer,
    done,
    async stop() {
      stopped = true;
      resolveDone();
      void loop.catch(() => {});
      await Promise.all([keypads.close(), officer.close()]);
    },
  };
}
