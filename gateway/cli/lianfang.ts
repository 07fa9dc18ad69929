#!/usr/bin/env node
/**
 * `lianfang`: the installer's command line. Provisioning commands write the database directly and
 * then tell a running gateway through the admin channel, so a change takes effect at once.
 * Every command takes --data DIR; every command that prints records takes --json.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ConfigInput } from '../../config/schema.js';
import { openDatabase, withDatabase, type Db } from '../store/db.js';
import { decryptSecret, loadOrCreateGatewayKey } from '../secrets.js';
import {
  addDevice,
  addShop,
  addStation,
  addUser,
  DEVICE_TYPES,
  getShop,
  listDevices,
  listShops,
  listStations,
  listUsers,
  revokeDevice,
  ROLES,
  TRANSPORTS,
  type DeviceInput,
  type ShopInput,
} from '../registry/registry.js';
import { describeBus, listBuses, PARITIES } from '../registry/buses.js';
import type { ScanHit } from '../../devices/bridge.js';
import { rankNeighbours } from '../geo.js';
import { adminRequest } from '../admin/channel.js';
import { lfError } from '../errors.js';
import { note, printJson, printRecords, printTable, reportError } from './output.js';
import { gatewayVersion } from '../version.js';
import { userInfo } from 'node:os';
import { getDevice } from '../registry/registry.js';
import { resetDeviceCounter, type CounterResetDone } from '../ingest/sequence.js';
import { usePrivateUmask } from '../data-dir.js';
import { clearShopPins, setShopPins, validatePins } from '../alarm/pins.js';
import { lastWalkTests, testStatus, type TestScope } from '../alarm/test-mode.js';
import { formatSchedule, getArming, listArming, parseSchedule, setArmed, setSchedule, shopTimeZone, type Arming } from '../alarm/arming.js';
import { reportRows, runWalk, startTestVia, stopTestVia, walkExitCode, WALK_EXIT } from './test-walk.js';
import { registerFaultCommands } from './fault.js';

const DEFAULT_DATA = process.env.LF_DATA_DIR ?? './data';

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** `--keypad 3:<64 hex digits>` → a simulated keypad's address and key. */
function parseKeypadArg(v: string): { address: number; key: Buffer } {
  const m = /^(\d{1,3}):([0-9a-fA-F]{64})$/.exec(v);
  const address = m ? Number(m[1]) : NaN;
  if (!m || address < 1 || address > 247) throw lfError('LF_ERR_INVALID_ARGUMENT', '--keypad', 'address:key, e.g. 3:<the 64 hex digits device add printed>');
  return { address, key: Buffer.from(m[2]!, 'hex') };
}

/** The keypads registered on a bus, with their MAC keys decrypted (for a simulator on the gateway's machine). */
function keypadsOnBus(db: Db, gatewayKey: Buffer, busId: string): { address: number; key: Buffer }[] {
  if (!listBuses(db).some((b) => b.id === busId)) throw lfError('LF_ERR_NOT_FOUND', 'bus', busId);
  return listDevices(db)
    .filter((d) => d.bus === busId && !d.revokedAt && d.transport === 'serial' && d.macKeyEnc)
    .map((d) => ({ address: d.busAddress!, key: decryptSecret(gatewayKey, d.macKeyEnc!) }));
}

/** The options commander left undefined, dropped (the input schemas allow no undefined fields). */
const definedOnly = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const dataOption = () => new Option('--data <dir>', 'data directory of the gateway').default(DEFAULT_DATA);
const jsonOption = () => new Option('--json', 'print JSON instead of a table');

const withDb = withDatabase;

/** Tell a running gateway to reload; say so to the installer (on stderr, to keep --json clean). */
async function notifyGateway(dataDir: string, req: { op: string; [k: string]: unknown } = { op: 'reload' }): Promise<void> {
  const result = await adminRequest(dataDir, req);
  if (result === null) note('(no gateway is running on this data directory; it will read the change when it starts)');
  else note('(the running gateway has taken the change)');
}

/** A shop's arming as `shop list` and `shop show` print it. */
function armingView(a: Arming): { armed: boolean; armedChangedAt: string | null; armedChangedBy: string | null; schedule: string; entryDelayUntil: string | null } {
  return {
    armed: a.armed,
    armedChangedAt: a.changedAt,
    armedChangedBy: a.changedBy,
    schedule: formatSchedule(a.schedule),
    entryDelayUntil: a.entry ? new Date(a.entry.dueAt).toISOString() : null,
  };
}

/**
 * `shop arm|disarm`: through the running gateway's admin channel (its writer, its clock, its
 * deadlines), or on the database when none runs (the gateway re-arms the deadlines at its start).
 */
async function armingCommand(o: { data: string; json?: boolean }, shopId: string, change: { armed: boolean } | { schedule: ReturnType<typeof parseSchedule> }): Promise<void> {
  let actor = 'cli';
  try {
    actor = `cli:${userInfo().username}`;
  } catch {
    /* no user name: plain cli */
  }
  const req = 'armed' in change ? { op: 'arming', shopId, armed: change.armed, actor } : { op: 'arming', shopId, schedule: formatSchedule(change.schedule), actor };
  const via = (await adminRequest(o.data, req)) as Arming | null;
  const arming =
    via ??
    withDb(o.data, (db) =>
      db
        .transaction(() => {
          if ('armed' in change) setArmed(db, shopId, change.armed, actor, Date.now());
          else setSchedule(db, shopId, change.schedule, actor, Date.now());
          return getArming(db, shopId);
        })
        .immediate(),
    );
  const view = { shopId, ...armingView(arming), gatewayRunning: via !== null };
  if (o.json) printJson(view);
  else process.stdout.write(`shop ${shopId}: ${view.armed ? 'armed 已布防' : 'disarmed 已撤防'}; schedule ${view.schedule}\n`);
  note(via ? '(the running gateway has taken the change)' : '(no gateway is running on this data directory; it will read the change when it starts)');
}

async function main(argv: string[]): Promise<void> {
  // Whatever a command creates in the data directory (the database, its -wal, the key) is private.
  usePrivateUmask();
  const program = new Command('lianfang')
    .description('Lianfang (联防) joint-defence alarm gateway: provision stations, shops, devices and users; run the gateway.')
    .version(gatewayVersion())
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Examples:
  $ lianfang start --data ./data
  $ lianfang station add --id PS1 --name "Changping Road Police Station"
  $ lianfang shop add --id S01 --name "李记茶行" --address "Changping Rd 23" --lat 23.3540 --lon 116.6820 --station PS1 --door-plate 23号
  $ lianfang device add --shop S01 --type keypad --transport mqtt --json
  $ lianfang device add --shop S01 --type keypad --transport serial --port /dev/ttyUSB0 --bus-address 3 --json
  $ lianfang bus scan ttyUSB0 --from 1 --to 32
  $ lianfang user add --role officer --station PS1 --name duty1 --password '…'
  $ lianfang neighbours S01
  $ lianfang simulate street --shops 30`,
    );
  program.configureOutput({ outputError: (str, write) => write(str) });

  // ------------------------------------------------------------------ start
  program
    .command('start')
    .description('start the gateway (embedded MQTT broker, SQLite store, HTTP /health) on the data directory')
    .addOption(dataOption())
    .option('--config <file>', 'JSON configuration file (see config/schema.ts); LF_* environment variables override it')
    .option('--mqtt-port <port>', 'MQTT over TCP port (0 = any free port; the chosen port is logged)', int('--mqtt-port', 0, 65535))
    .option('--ws-port <port>', 'MQTT over WebSocket port (0 = any free port)', int('--ws-port', 0, 65535))
    .option('--http-port <port>', 'HTTP port for /health (0 = any free port)', int('--http-port', 0, 65535))
    .option('--street <shops>', 'also create and run a simulated street of this many shops, to see alarms flow', int('--street', 11, 500))
    .addOption(new Option('--street-wire <wire>', 'how the street\'s keypads reach the gateway: MQTT, or a simulated RS-485 line (a pty pair)').choices(['mqtt', 'serial']).default('mqtt'))
    .addHelpText('after', '\nExample:\n  $ LF_ESCALATION_ACK_DEADLINE_MS=60000 lianfang start --data ./data --mqtt-port 1883 --http-port 8080')
    .action(async (o: { data: string; config?: string; mqttPort?: number; wsPort?: number; httpPort?: number; street?: number; streetWire: 'mqtt' | 'serial' }) => {
      const overrides: ConfigInput = { dataDir: o.data };
      const mqtt: Record<string, number> = {};
      if (o.mqttPort !== undefined) mqtt.port = o.mqttPort;
      if (o.wsPort !== undefined) mqtt.wsPort = o.wsPort;
      if (Object.keys(mqtt).length) overrides.mqtt = mqtt;
      if (o.httpPort !== undefined) overrides.http = { port: o.httpPort };
      const config = loadConfig({ file: o.config, overrides });
      const { Gateway } = await import('../controller.js');
      const gw = await Gateway.start({ config, failpoint: process.env.LF_FAILPOINT });
      let street: { stop(): Promise<void> } | null = null;
      const stop = async (signal: string) => {
        gw.log.info({ signal }, 'stopping');
        await street?.stop().catch(() => {});
        await gw.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
      if (o.street) {
        const { runStreet } = await import('../../simulators/street.js');
        street = await runStreet({
          dataDir: config.dataDir,
          shops: o.street,
          wire: o.streetWire,
          mqttUrl: `mqtt://127.0.0.1:${gw.ports().mqtt}`,
          log: gw.log.child({ module: 'street' }),
          // Three heartbeats per supervision interval: one lost is no fault.
          heartbeatMs: Math.max(1000, Math.floor(config.supervision.mqttFaultAfterMs / 3)),
        });
      }
    });

  // ------------------------------------------------------------------ station
  const station = program.command('station').description('police stations (接处警中心) and compound receiving points (次级接处警点)');
  station
    .command('add')
    .description('register a station, or with --compound-of a compound receiving point under a station')
    .requiredOption('--id <id>', 'station id (letters, digits, _ . : -)')
    .requiredOption('--name <name>', 'display name')
    .option('--compound-of <stationId>', 'make this a compound receiving point of that station')
    .option('--time-zone <tz>', 'time zone times are shown in (default Asia/Shanghai)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang station add --id PS1 --name "Changping Rd Station"\n  $ lianfang station add --id C1 --name "Garden Court guard room" --compound-of PS1')
    .action(async (o: { id: string; name: string; compoundOf?: string; timeZone?: string; data: string; json?: boolean }) => {
      const s = withDb(o.data, (db) => addStation(db, { id: o.id, name: o.name, ...(o.compoundOf ? { compoundOf: o.compoundOf } : {}), ...(o.timeZone ? { timeZone: o.timeZone } : {}) }));
      if (o.json) printJson(s);
      else process.stdout.write(`station ${s.id} added${s.compoundOf ? ` (compound of ${s.compoundOf})` : ''}\n`);
      await notifyGateway(o.data);
    });
  station
    .command('list')
    .description('list stations and compound receiving points')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => listStations(db));
      printRecords(!!o.json, rows as unknown as Record<string, unknown>[], { id: 'ID', name: 'NAME', compoundOf: 'COMPOUND OF', timeZone: 'TIME ZONE' });
    });

  // ------------------------------------------------------------------ shop
  const shop = program.command('shop').description('shops and households on the joint-defence network');
  shop
    .command('add')
    .description('register a shop with its record (DESIGN.md "Shop records")')
    .requiredOption('--id <id>', 'shop id')
    .requiredOption('--name <name>', 'shop name as neighbours see it, e.g. 李记茶行')
    .requiredOption('--address <address>', 'street address')
    .requiredOption('--station <stationId>', 'the police station responsible for it')
    .option('--lat <deg>', 'latitude, WGS-84 (as GPS gives it)', num('--lat'))
    .option('--lon <deg>', 'longitude, WGS-84', num('--lon'))
    .option('--neighbours <ids>', 'comma-separated neighbour shop ids, used when the shop has no coordinates', list)
    .option('--compound <id>', 'the residential compound (receiving point) it belongs to')
    .option('--door-plate <plate>', 'door-plate number, e.g. 23号')
    .option('--pole <number>', 'nearest utility-pole number')
    .option('--grid <grid>', 'grid')
    .option('--sector <sector>', 'sector')
    .option('--owner <name>', 'owner name')
    .option('--owner-phone <phone>', 'owner phone')
    .option('--duty <name>', 'daily duty contact')
    .option('--duty-phone <phone>', 'daily duty contact phone')
    .option('--cameras <ids>', 'comma-separated ids of the cameras covering the door', list)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang shop add --id S01 --name 李记茶行 --address "Changping Rd 23" --lat 23.354 --lon 116.682 --station PS1 --door-plate 23号 --owner "Li Ming" --owner-phone 13800000000')
    .action(async (o: Record<string, unknown> & { data: string; json?: boolean }) => {
      const input: ShopInput = {
        id: o.id as string,
        name: o.name as string,
        address: o.address as string,
        stationId: o.station as string,
      };
      const optional: [keyof ShopInput, string][] = [
        ['lat', 'lat'],
        ['lon', 'lon'],
        ['neighbours', 'neighbours'],
        ['compoundId', 'compound'],
        ['doorPlate', 'doorPlate'],
        ['poleNumber', 'pole'],
        ['grid', 'grid'],
        ['sector', 'sector'],
        ['ownerName', 'owner'],
        ['ownerPhone', 'ownerPhone'],
        ['dutyName', 'duty'],
        ['dutyPhone', 'dutyPhone'],
        ['cameraIds', 'cameras'],
      ];
      for (const [field, opt] of optional) if (o[opt] !== undefined) (input as Record<string, unknown>)[field] = o[opt];
      const s = withDb(o.data, (db) => addShop(db, input));
      if (o.json) printJson(s);
      else process.stdout.write(`shop ${s.id} added (${s.name}, station ${s.stationId})\n`);
      await notifyGateway(o.data);
    });
  shop
    .command('list')
    .description('list shops')
    .option('--station <id>', 'only the shops of this station')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { data: string; json?: boolean; station?: string }) => {
      const rows = withDb(o.data, (db) => {
        const arming = listArming(db);
        return listShops(db)
          .filter((s) => !o.station || s.stationId === o.station || s.compoundId === o.station)
          .map((s) => ({ ...s, ...armingView(arming.get(s.id) ?? getArming(db, s.id)) }));
      });
      printRecords(!!o.json, rows as unknown as Record<string, unknown>[], {
        id: 'ID',
        name: 'NAME',
        doorPlate: 'PLATE',
        address: 'ADDRESS',
        stationId: 'STATION',
        compoundId: 'COMPOUND',
        lat: 'LAT',
        lon: 'LON',
        armed: 'ARMED',
        schedule: 'SCHEDULE',
      });
    });

  shop
    .command('show <shopId>')
    .description('one shop: its record, whether it is armed (since when, by whom), its arming schedule and a running entry delay')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((shopId: string, o: { data: string; json?: boolean }) => {
      const row = withDb(o.data, (db) => {
        const s = getShop(db, shopId);
        if (!s) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        return { ...s, ...armingView(getArming(db, shopId)), timeZone: shopTimeZone(db, shopId) };
      });
      if (o.json) return printJson(row);
      for (const [k, v] of Object.entries(row)) if (v !== null && !(Array.isArray(v) && v.length === 0)) process.stdout.write(`${k}: ${Array.isArray(v) ? v.join(',') : String(v)}\n`);
    });

  shop
    .command('arm <shopId>')
    .description("arm a shop now (it holds until the schedule's next change), or set its daily schedule in the station's time zone (--schedule 23:00-06:00; none removes it)")
    .option('--schedule <ARM-DISARM>', 'armed daily from ARM to DISARM (HH:MM-HH:MM, may cross midnight), or none; it rules from now')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang shop arm S01\n  $ lianfang shop arm S01 --schedule 23:00-06:00\n  $ lianfang shop arm S01 --schedule none')
    .action(async (shopId: string, o: { schedule?: string; data: string; json?: boolean }) => {
      const schedule = o.schedule === undefined ? undefined : parseSchedule(o.schedule);
      await armingCommand(o, shopId, schedule === undefined ? { armed: true } : { schedule });
    });
  shop
    .command('disarm <shopId>')
    .description("disarm a shop now (ends a running entry delay; holds until the schedule's next change)")
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang shop disarm S01')
    .action(async (shopId: string, o: { data: string; json?: boolean }) => {
      await armingCommand(o, shopId, { armed: false });
    });

  shop
    .command('pin <shopId>')
    .description("set the shop's cancel and duress PINs (4–8 digits, different), or --clear them; stored only as keyed hashes, never printed")
    .option('--pin <digits>', 'the cancel PIN (or env LF_PIN, to keep it out of shell history)')
    .option('--duress-pin <digits>', 'the duress PIN: looks like a cancel at the shop, the console gets a duress alarm (or env LF_DURESS_PIN)')
    .option('--clear', 'remove both PINs (and any wrong-PIN lock-out)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ LF_PIN=2468 LF_DURESS_PIN=1357 lianfang shop pin S01\n  $ lianfang shop pin S01 --clear')
    .action(async (shopId: string, o: { pin?: string; duressPin?: string; clear?: boolean; data: string; json?: boolean }) => {
      const actor = `user:${userInfo().username}`;
      const at = new Date().toISOString();
      const pin = o.pin ?? process.env.LF_PIN;
      const duressPin = o.duressPin ?? process.env.LF_DURESS_PIN;
      if (o.clear) {
        if (o.pin !== undefined || o.duressPin !== undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--clear', 'give either --clear or the PINs, not both');
        const had = withDb(o.data, (db) => clearShopPins(db, shopId, actor, at));
        if (o.json) printJson({ shopId, pins: false, had });
        else process.stdout.write(had ? `PINs of shop ${shopId} removed\n` : `shop ${shopId} had no PINs\n`);
      } else {
        const pins = validatePins(pin, duressPin);
        const key = loadOrCreateGatewayKey(o.data);
        withDb(o.data, (db) => setShopPins(db, key, shopId, pins, actor, at));
        if (o.json) printJson({ shopId, pins: true });
        else process.stdout.write(`PINs of shop ${shopId} set (stored as keyed hashes only)\n`);
      }
      await notifyGateway(o.data);
    });

  // ------------------------------------------------------------------ device
  const device = program.command('device').description('keypads, panic buttons and I/O modules');
  device
    .command('add')
    .description('register a device and issue its credentials (printed once: the gateway keeps only a keyed hash or, for a MAC key, an encrypted copy)')
    .requiredOption('--shop <shopId>', 'the shop it belongs to')
    .addOption(new Option('--type <type>', 'device type').choices([...DEVICE_TYPES]).makeOptionMandatory())
    .addOption(new Option('--transport <transport>', 'how it reaches the gateway').choices([...TRANSPORTS]).default('mqtt'))
    .option('--id <id>', 'device id (default: <shop>.<type>.<random>)')
    .option('--port <path>', 'serial, modbus-rtu: the serial port of its bus, e.g. /dev/ttyUSB0')
    .option('--baud <n>', 'serial, modbus-rtu: line speed when the bus is new (default 9600 for keypads, 19200 for Modbus)', int('--baud', 1200, 921600))
    .addOption(new Option('--parity <parity>', 'serial, modbus-rtu: parity when the bus is new (default none)').choices([...PARITIES]))
    .option('--host <host>', 'modbus-tcp: the module\'s (or gateway\'s) address')
    .option('--tcp-port <n>', 'modbus-tcp: its TCP port (502 on most modules)', int('--tcp-port', 1, 65535))
    .option('--bus-address <n>', 'wired: the keypad\'s address on the line, or the module\'s Modbus unit id (1–247)', int('--bus-address', 1, 247))
    .option('--bus <busId>', 'wired: name of the bus (default: from the port, e.g. ttyUSB0)')
    .option('--model <model>', 'modbus: the module\'s register map: generic-8io (the default; its door is a live input) or door-latch-8io (its door latches both edges)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Examples:
  $ lianfang device add --shop S01 --type keypad --transport mqtt --json
  → {"deviceId": "S01.keypad.a1b2c3", "username": "S01.keypad.a1b2c3", "password": "…"}
  The device connects with username = client id = deviceId.
  $ lianfang device add --shop S01 --type keypad --transport serial --port /dev/ttyUSB0 --bus-address 3 --json
  → {"deviceId": "S01.keypad.d4e5f6", "macKey": "…64 hex digits…", "bus": "ttyUSB0", …}
  Load the MAC key into the keypad; it is not shown again.
  $ lianfang device add --shop S01 --type io-module --transport modbus-rtu --port /dev/ttyUSB1 --bus-address 7
  $ lianfang device add --shop S01 --type io-module --transport modbus-tcp --host 10.0.0.7 --tcp-port 502 --bus-address 1
A running gateway opens a new bus and polls a new device at once.`,
    )
    .action(
      async (o: {
        shop: string;
        type: (typeof DEVICE_TYPES)[number];
        transport: (typeof TRANSPORTS)[number];
        id?: string;
        port?: string;
        baud?: number;
        parity?: (typeof PARITIES)[number];
        host?: string;
        tcpPort?: number;
        busAddress?: number;
        bus?: string;
        model?: string;
        data: string;
        json?: boolean;
      }) => {
        const key = loadOrCreateGatewayKey(o.data);
        const input = definedOnly({
          shopId: o.shop,
          type: o.type,
          transport: o.transport,
          id: o.id,
          busId: o.bus,
          port: o.port,
          baud: o.baud,
          parity: o.parity,
          host: o.host,
          tcpPort: o.tcpPort,
          busAddress: o.busAddress,
          model: o.model,
        }) as DeviceInput;
        const issued = withDb(o.data, (db) => addDevice(db, key, input));
        const d = issued.device;
        const out = issued.bus
          ? { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, bus: issued.bus.id, busAddress: d.busAddress, ...(d.model ? { model: d.model } : {}), ...(issued.macKey ? { macKey: issued.macKey } : {}) }
          : { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, username: issued.username, password: issued.password };
        if (o.json) printJson(out);
        else if (issued.bus) {
          process.stdout.write(
            `device ${d.id} added to shop ${d.shopId}\n  bus ${issued.bus.id} (${describeBus(issued.bus)}), address ${d.busAddress}\n` +
              (issued.macKey ? `  MAC key: ${issued.macKey}\n  (shown once: load it into the keypad; the gateway keeps it encrypted)\n` : ''),
          );
        } else {
          process.stdout.write(
            `device ${d.id} added to shop ${d.shopId}\n  MQTT username (and client id): ${issued.username}\n  MQTT password: ${issued.password}\n` +
              `  (shown once: the gateway stores only a keyed hash of it)\n`,
          );
        }
        await notifyGateway(o.data);
      },
    );
  device
    .command('list')
    .description('list devices (never their secrets), with when each last passed a walk test (`test walk`)')
    .option('--shop <shopId>', 'only the devices of this shop')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { shop?: string; data: string; json?: boolean }) => {
      const { devices, tested } = withDb(o.data, (db) => ({ devices: listDevices(db, o.shop), tested: lastWalkTests(db) }));
      const rows = devices.map((d) => ({
        deviceId: d.id,
        shopId: d.shopId,
        type: d.type,
        transport: d.transport,
        bus: d.bus,
        busAddress: d.busAddress,
        revoked: d.revokedAt !== null,
        createdAt: d.createdAt,
        // The newest walk-test pass (`lianfang test walk`), or null when it never passed one.
        lastTested: tested.get(d.id) ?? null,
      }));
      printRecords(!!o.json, rows, {
        deviceId: 'DEVICE',
        shopId: 'SHOP',
        type: 'TYPE',
        transport: 'TRANSPORT',
        bus: 'BUS',
        busAddress: 'ADDR',
        revoked: 'REVOKED',
        createdAt: 'CREATED',
        lastTested: 'LAST TESTED 上次测试',
      });
    });
  device
    .command('revoke <deviceId>')
    .description('revoke a device: it is disconnected at once and can no longer log in')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(async (deviceId: string, o: { data: string; json?: boolean }) => {
      const d = withDb(o.data, (db) => revokeDevice(db, deviceId));
      if (o.json) printJson({ deviceId: d.id, revokedAt: d.revokedAt });
      else process.stdout.write(`device ${d.id} revoked\n`);
      await notifyGateway(o.data, { op: 'revoke', deviceId });
    });
  device
    .command('reset-counter <deviceId>')
    .description(
      "forget a device's event counter (boot, seq) so its next event is accepted in any sequence, and clear its counter-reset fault " +
        '(a keypad factory-reset or replaced: a serial keypad\'s events are refused until this is run)',
    )
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang device reset-counter S01.keypad.d4e5f6\n  device S01.keypad.d4e5f6: counter reset (it was boot 7, seq 12); its next event is accepted in any sequence')
    .action(async (deviceId: string, o: { data: string; json?: boolean }) => {
      withDb(o.data, (db) => {
        if (!getDevice(db, deviceId)) throw lfError('LF_ERR_NOT_FOUND', 'device', deviceId);
      });
      let who = 'cli';
      try {
        who = `cli:${userInfo().username}`;
      } catch {
        /* no user name for this uid: the audit says cli */
      }
      // The running gateway holds the counter in memory too: it resets both, in order with the
      // device's events. Without one, the database is all there is.
      const viaGateway = (await adminRequest(o.data, { op: 'reset-counter', deviceId, actor: who })) as CounterResetDone | null;
      const done = viaGateway ?? withDb(o.data, (db) => db.transaction(() => resetDeviceCounter(db, deviceId, who, new Date().toISOString())).immediate());
      if (o.json) printJson({ ...done, gatewayRunning: viaGateway !== null });
      else {
        const was = done.previous ? `it was boot ${done.previous.boot}, seq ${done.previous.seq ?? '-'}` : 'it had no counter yet';
        process.stdout.write(
          `device ${done.deviceId}: counter reset (${was}); its next event is accepted in any sequence\n` +
            (done.faultsCleared ? `  counter-reset fault cleared\n` : '') +
            `  audit row written (reset-counter by ${who})\n`,
        );
      }
      note(viaGateway ? '(the running gateway has taken the change)' : '(no gateway is running on this data directory; it will read the change when it starts)');
    });

  // ------------------------------------------------------------------ user
  const user = program.command('user').description('console logins (officers) and installers');
  user
    .command('add')
    .description('add a login; its password is stored with scrypt')
    .addOption(new Option('--role <role>', 'role').choices([...ROLES]).makeOptionMandatory())
    .requiredOption('--name <name>', 'login name (also the MQTT username of the console)')
    .option('--station <stationId>', 'station (or compound receiving point) an officer works for')
    .option('--password <password>', 'password, at least 8 characters (or LF_PASSWORD in the environment, which stays out of shell history)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', "\nExample:\n  $ LF_PASSWORD='correct horse battery' lianfang user add --role officer --station PS1 --name duty1")
    .action(async (o: { role: (typeof ROLES)[number]; name: string; station?: string; password?: string; data: string; json?: boolean }) => {
      const password = o.password ?? process.env.LF_PASSWORD;
      if (!password) throw lfError('LF_ERR_INVALID_ARGUMENT', '--password', 'give --password or set LF_PASSWORD');
      const db = openDatabase(o.data);
      try {
        const u = await addUser(db, { name: o.name, role: o.role, password, ...(o.station ? { stationId: o.station } : {}) });
        if (o.json) printJson({ name: u.name, role: u.role, stationId: u.stationId, createdAt: u.createdAt });
        else process.stdout.write(`user ${u.name} added (${u.role}${u.stationId ? `, station ${u.stationId}` : ''})\n`);
      } finally {
        db.close();
      }
      await notifyGateway(o.data);
    });
  user
    .command('list')
    .description('list logins (never their passwords)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => listUsers(db)).map((u) => ({ name: u.name, role: u.role, stationId: u.stationId, revoked: u.revokedAt !== null, createdAt: u.createdAt }));
      printRecords(!!o.json, rows, { name: 'NAME', role: 'ROLE', stationId: 'STATION', revoked: 'REVOKED', createdAt: 'CREATED' });
    });

  // ------------------------------------------------------------------ neighbours
  program
    .command('neighbours <shopId>')
    .description('the shops alerted first when this shop raises an alarm, nearest first, with distances')
    .option('--count <n>', 'how many', int('--count', 1, 100), 10)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang neighbours S15 --json')
    .action((shopId: string, o: { count: number; data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => {
        const origin = getShop(db, shopId);
        if (!origin) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        const shops = listShops(db);
        const byId = new Map(shops.map((s) => [s.id, s]));
        return rankNeighbours(origin, shops, (id) => byId.get(id))
          .slice(0, o.count)
          .map((n, i) => ({ rank: i + 1, shopId: n.id, name: byId.get(n.id)?.name, distanceM: n.distanceM === null ? null : Math.round(n.distanceM * 10) / 10 }));
      });
      printRecords(!!o.json, rows, { rank: '#', shopId: 'SHOP', name: 'NAME', distanceM: 'DISTANCE (m)' });
    });

  // ------------------------------------------------------------------ status
  program
    .command('status')
    .description("ask the running gateway for its health (through the admin channel)")
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(async (o: { data: string; json?: boolean }) => {
      const h = await adminRequest(o.data, { op: 'health' });
      if (h === null) throw lfError('LF_ERR_GATEWAY_NOT_RUNNING', o.data);
      printJson(h);
    });

  // ------------------------------------------------------------------ test (test mode)
  const testCmd = program.command('test').description('test mode: what a shop or a device raises reaches only the audit trail and the installer');
  /** --shop or --device, exactly one, registered. */
  const testTarget = (db: Db, o: { shop?: string; device?: string }): { scope: TestScope; targetId: string } => {
    if (!o.shop === !o.device) throw lfError('LF_ERR_INVALID_ARGUMENT', '--shop/--device', 'give exactly one of --shop S01 or --device ID');
    if (o.shop && !getShop(db, o.shop)) throw lfError('LF_ERR_NOT_FOUND', 'shop', o.shop);
    if (o.device && !getDevice(db, o.device)) throw lfError('LF_ERR_NOT_FOUND', 'device', o.device);
    return o.shop ? { scope: 'shop', targetId: o.shop } : { scope: 'device', targetId: o.device! };
  };
  const cliActor = () => {
    try {
      return `cli:${userInfo().username}`;
    } catch {
      return 'cli';
    }
  };
  const duration = (name: string, max: number) => (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name}: a whole number from 1 to ${max}`);
    return n;
  };
  /** --minutes (default 30) or --seconds, not both. */
  const testDurationMs = (o: { minutes?: number; seconds?: number }): number => {
    if (o.minutes !== undefined && o.seconds !== undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--minutes/--seconds', 'give one of them');
    return o.seconds !== undefined ? o.seconds * 1000 : (o.minutes ?? 30) * 60_000;
  };
  testCmd
    .command('start')
    .description('put a shop or a device in test mode for a while (a running one is replaced)')
    .option('--shop <shopId>', 'the shop')
    .option('--device <deviceId>', 'the device')
    .option('--minutes <n>', 'how long, 1 to 1440 (default 30)', duration('--minutes', 1440))
    .option('--seconds <n>', 'how long in seconds instead, 1 to 86400', duration('--seconds', 86400))
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang test start --shop S01 --minutes 30')
    .action(async (o: { shop?: string; device?: string; minutes?: number; seconds?: number; data: string; json?: boolean }) => {
      const { scope, targetId } = withDb(o.data, (db) => testTarget(db, o));
      const durationMs = testDurationMs(o);
      const actor = cliActor();
      const { row, viaGateway } = await startTestVia(o.data, scope, targetId, durationMs, actor);
      if (o.json) printJson({ ...row, until: new Date(row.untilMs).toISOString(), gatewayRunning: viaGateway });
      else process.stdout.write(`${scope} ${targetId}: in test mode until ${new Date(row.untilMs).toISOString()}; its alarms reach no neighbour and no console\n`);
      note(viaGateway ? '(the running gateway has taken the change)' : '(no gateway is running on this data directory; it will read the change when it starts)');
    });
  testCmd
    .command('stop')
    .description('end the test mode of a shop or a device: its next 9# raises a real alarm')
    .option('--shop <shopId>', 'the shop')
    .option('--device <deviceId>', 'the device')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang test stop --shop S01')
    .action(async (o: { shop?: string; device?: string; data: string; json?: boolean }) => {
      const { scope, targetId } = withDb(o.data, (db) => testTarget(db, o));
      const actor = cliActor();
      const { stopped, viaGateway } = await stopTestVia(o.data, scope, targetId, actor);
      if (o.json) printJson({ scope, targetId, stopped, gatewayRunning: viaGateway });
      else process.stdout.write(stopped ? `${scope} ${targetId}: test mode ended; its alarms are real again\n` : `${scope} ${targetId}: was not in test mode\n`);
    });
  testCmd
    .command('status')
    .description('what is in test mode, until when, and the test alarms raised in it (read from the database)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang test status --json')
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => testStatus(db, Date.now()));
      if (o.json) return printJson(rows);
      printTable(
        rows.map((r) => ({ ...r, alarms: r.alarms.map((a) => `${a.alarmId} (${a.kind} ${a.raisedAt})`) })),
        { scope: 'SCOPE', targetId: 'ID', until: 'UNTIL', startedBy: 'BY', alarms: 'TEST ALARMS' },
      );
    });
  testCmd
    .command('walk')
    .description(
      'walk test a shop: puts it in test mode, tells you what to do at each device (press 9#, press the panic button, open the door), ' +
        'shows each device as it passes, records the passes (audit walk-test-passed; `device list` shows LAST TESTED) and prints a report. ' +
        `Exit status 0: every device passed; ${WALK_EXIT.notAllPassed}: the time limit came first; ${WALK_EXIT.interrupted}: Ctrl-C came first`,
    )
    .requiredOption('--shop <shopId>', 'the shop')
    .option('--minutes <n>', 'time limit, 1 to 1440 (default 30, as test mode); the test mode lasts as long', duration('--minutes', 1440))
    .option('--seconds <n>', 'time limit in seconds instead, 1 to 86400', duration('--seconds', 86400))
    .addOption(dataOption())
    .addOption(new Option('--json', 'print the report as one JSON object on stdout (the plan and progress lines go to stderr)'))
    .addHelpText(
      'after',
      `
Example:
  $ lianfang test walk --shop S01 --minutes 20
  walk test of shop S01: 2 device(s) to test, until 2026-12-02T10:20:00.000Z; Ctrl-C ends it early
  巡检测试 商户 S01：2 台设备待测，截止 2026-12-02T10:20:00.000Z；按 Ctrl-C 提前结束
  (the shop is in test mode: its alarms reach no neighbour and no console)
    S01.keypad.a1b2c3  keypad (serial): press 9# / 按 9#
    S01.io-module.d4e5f6  io-module (modbus-tcp): input panic: press the panic button / 按下紧急按钮; input door: open the door / 打开门
  2026-12-02T10:01:07.120Z  PASS 通过  S01.keypad.a1b2c3  keypad 9#, test alarm 0193… (event 812)  [1/2]
  …
Exit status: 0 every device passed, ${WALK_EXIT.notAllPassed} the time limit came first, ${WALK_EXIT.interrupted} interrupted (Ctrl-C); the report and the end of test mode come in every case.`,
    )
    .action(async (o: { shop: string; minutes?: number; seconds?: number; data: string; json?: boolean }) => {
      const limitMs = testDurationMs(o);
      const write = (stream: NodeJS.WriteStream) => (line: string) => stream.write(line + '\n');
      // Ctrl-C, a TERM or a lost terminal (HUP) ends the walk early: the report is still printed and
      // the test mode ended. Kept for the whole walk, so a second Ctrl-C does not kill it before the
      // test mode is ended (left running, the shop's next real 9# would be a test alarm).
      const interrupt = new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => resolve());
      });
      const report = await runWalk({ data: o.data, shopId: o.shop, limitMs, actor: cliActor(), progress: write(o.json ? process.stderr : process.stdout), warn: write(process.stderr), interrupt });
      if (o.json) printJson(report);
      else {
        process.stdout.write(`\nreport 报告: shop ${report.shopId}, ${report.passed} of ${report.total} device(s) passed (${report.ended})\n`);
        printTable(reportRows(report), { deviceId: 'DEVICE 设备', type: 'TYPE 类型', result: 'RESULT 结果', at: 'AT 时间', by: 'BY / TO DO 事件/待测' });
        process.stdout.write(report.testMode.endedByWalk ? 'test mode ended: the shop\'s alarms are real again (测试模式已结束)\n' : `the shop stays in test mode until ${report.testMode.until}\n`);
      }
      process.exitCode = walkExitCode(report);
    });

  // ------------------------------------------------------------------ report
  const report = program.command('report').description('reports read from the database (read-only; a running gateway is not disturbed)');
  report
    .command('false-alarms')
    .description('per shop: alarms, closed real / false / malicious, the false-alarm rate (false over real + false; test alarms left out), flagged for a visit above reports.falseAlarmRatePercent')
    .option('--since <when>', 'alarms raised since: a duration back from now (7d, 30d, 12h) or an ISO date (2026-11-01)', '30d')
    .option('--station <id>', 'only the shops of this station or compound')
    .option('--config <file>', 'JSON configuration file, for reports.falseAlarmRatePercent and reports.falseAlarmMinDecided (LF_* variables override it)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang report false-alarms --since 30d\n  $ LF_REPORTS_FALSE_ALARM_RATE_PERCENT=40 lianfang report false-alarms --since 2026-11-01 --json')
    .action(async (o: { since: string; station?: string; config?: string; data: string; json?: boolean }) => {
      const { parseSince, falseAlarmReport, openDatabaseForReport } = await import('../reports/false-alarms.js');
      const since = parseSince(o.since, new Date());
      const { reports } = loadConfig({ file: o.config, overrides: { dataDir: o.data } });
      const db = openDatabaseForReport(o.data);
      let rows;
      try {
        rows = falseAlarmReport(db, { since, ratePercent: reports.falseAlarmRatePercent, minDecided: reports.falseAlarmMinDecided, ...(o.station ? { stationId: o.station } : {}) });
      } finally {
        db.close();
      }
      if (o.json) {
        printJson({ since: since.toISOString(), ratePercent: reports.falseAlarmRatePercent, minDecided: reports.falseAlarmMinDecided, shops: rows });
        return;
      }
      printTable(
        rows.map((r) => ({ ...r, rate: r.falseAlarmRate === null ? '-' : `${Math.round(r.falseAlarmRate * 100)}%`, flag: r.flagged ? 'VISIT 走访' : '' })),
        {
          shopId: 'SHOP 商户',
          name: 'NAME 名称',
          alarms: 'ALARMS 报警',
          real: 'REAL 真警',
          false: 'FALSE 误报',
          malicious: 'MALICIOUS 恶意',
          open: 'OPEN 未结',
          rate: 'FALSE RATE 误报率',
          flag: 'FLAG 标记',
        },
      );
      note(
        `alarms raised since ${since.toISOString()}, test alarms left out; flagged: false-alarm rate above ${reports.falseAlarmRatePercent}% ` +
          `with at least ${reports.falseAlarmMinDecided} alarms closed real or false (自${since.toISOString()}起，不含测试报警)`,
      );
    });

  // ------------------------------------------------------------------ bus
  const busCmd = program.command('bus').description('wired buses: RS-485 keypad lines and Modbus RTU/TCP links');
  busCmd
    .command('list')
    .description('list the buses and how many devices each carries')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang bus list\n  BUS      KIND    WHERE                       DEVICES\n  ttyUSB0  serial  /dev/ttyUSB0 @ 9600 8N1     12')
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => {
        const devices = listDevices(db).filter((d) => d.bus && !d.revokedAt);
        return listBuses(db).map((b) => ({ busId: b.id, kind: b.kind, where: describeBus(b), devices: devices.filter((d) => d.bus === b.id).length }));
      });
      printRecords(!!o.json, rows, { busId: 'BUS', kind: 'KIND', where: 'WHERE', devices: 'DEVICES' });
    });
  busCmd
    .command('scan <busId>')
    .description('list the keypad addresses or Modbus unit ids that answer on a bus (through the running gateway when it holds the port)')
    .option('--from <n>', 'first address', int('--from', 1, 247), 1)
    .option('--to <n>', 'last address', int('--to', 1, 247), 247)
    .option('--timeout-ms <ms>', 'how long to wait for each address', int('--timeout-ms', 5, 5000), 100)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang bus scan ttyUSB0 --from 1 --to 32\n  ADDRESS  DEVICE             ANSWER\n  3        S01.keypad.d4e5f6  answers (nothing new)')
    .action(async (busId: string, o: { from: number; to: number; timeoutMs: number; data: string; json?: boolean }) => {
      if (o.from > o.to) throw lfError('LF_ERR_INVALID_ARGUMENT', '--from/--to', 'the first address comes before the last');
      const { bus, known } = withDb(o.data, (db) => {
        const b = listBuses(db).find((x) => x.id === busId);
        if (!b) throw lfError('LF_ERR_NOT_FOUND', 'bus', busId);
        return { bus: b, known: new Map(listDevices(db).filter((d) => d.bus === busId && !d.revokedAt).map((d) => [d.busAddress!, d.id])) };
      });
      const scan = { from: o.from, to: o.to, timeoutMs: o.timeoutMs };
      // Generous: every address may cost its timeout plus the wire time of a poll and its answer.
      const budget = 10_000 + (o.to - o.from + 1) * (o.timeoutMs + 200);
      const viaGateway = (await adminRequest(o.data, { op: 'bus-scan', busId, scan }, budget)) as { hits: ScanHit[] } | null;
      let hits: ScanHit[];
      if (viaGateway) hits = viaGateway.hits;
      else {
        const { scanFreeBus } = await import('../wired-adapter.js');
        hits = await scanFreeBus(bus, scan, known);
      }
      printRecords(
        !!o.json,
        hits.map((h) => ({ address: h.address, deviceId: h.deviceId ?? '', answer: h.detail })),
        { address: 'ADDRESS', deviceId: 'DEVICE', answer: 'ANSWER' },
      );
      if (!o.json) note(`${hits.length} of ${o.to - o.from + 1} addresses answered on ${bus.id} (${describeBus(bus)})${viaGateway ? ', through the running gateway' : ''}`);
    });

  // ------------------------------------------------------------------ simulate
  const simulate = program.command('simulate').description('simulated devices on the real wire');
  simulate
    .command('street')
    .description('create (or reuse) a demo street with a station, shops, keypads and an officer, and run it against a gateway')
    .option('--shops <n>', 'number of shops', int('--shops', 11, 500), 30)
    .option('--mqtt-url <url>', 'the gateway\'s MQTT address', 'mqtt://127.0.0.1:1883')
    .option('--interval-ms <ms>', 'time between simulated alarms', int('--interval-ms', 200, 3_600_000), 10_000)
    .option('--count <n>', 'stop after this many alarms (0 = run until Ctrl-C)', int('--count', 0, 1_000_000), 0)
    .addOption(new Option('--wire <wire>', 'keypads on MQTT, or on a simulated RS-485 line (a pty pair under the data directory)').choices(['mqtt', 'serial']).default('mqtt'))
    .addOption(dataOption())
    .addHelpText('after', '\nExamples (with `lianfang start` running on ./data):\n  $ lianfang simulate street --shops 30 --data ./data\n  $ lianfang simulate street --shops 30 --wire serial --data ./data')
    .action(async (o: { shops: number; mqttUrl: string; intervalMs: number; count: number; wire: 'mqtt' | 'serial'; data: string }) => {
      const { runStreet } = await import('../../simulators/street.js');
      const { createLogger } = await import('../logger.js');
      const street = await runStreet({
        dataDir: o.data,
        shops: o.shops,
        mqttUrl: o.mqttUrl,
        intervalMs: o.intervalMs,
        count: o.count,
        wire: o.wire,
        log: createLogger(process.env.LF_LOG_LEVEL ?? 'info').child({ module: 'street' }),
      });
      const stop = async () => {
        await street.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
      await street.done;
      await street.stop();
    });

  simulate
    .command('keypad')
    .description('serial keypads on one RS-485 line (one end of a pty pair, or a real port): answer polls, show what the gateway sends; type "3 9#" to press keys')
    .requiredOption('--port <path>', 'the line\'s serial device (the keypad end)')
    .option('--baud <n>', 'line speed', int('--baud', 1200, 921600), 9600)
    .option('--keypad <address:key>', 'a keypad: bus address and its MAC key in hex (as `device add --transport serial` printed it); repeatable', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--bus <busId>', 'instead of --keypad: serve every keypad registered on this bus, keys read from the data directory (a demo on the gateway\'s own machine)')
    .option('--turnaround-ms <ms>', 'time from a request\'s last byte to the answer', int('--turnaround-ms', 0, 1000), 2)
    .addOption(dataOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang simulate keypad --port /dev/pts/7 --keypad 3:9f2c…e1\n  $ lianfang simulate keypad --port /tmp/line/b --bus line --data ./data\n  then type:  3 9#     (keypad 3 presses 9 and #)')
    .action(async (o: { port: string; baud: number; keypad: string[]; bus?: string; turnaroundMs: number; data: string }) => {
      const keypads = o.bus ? withDb(o.data, (db) => keypadsOnBus(db, loadOrCreateGatewayKey(o.data), o.bus!)) : o.keypad.map(parseKeypadArg);
      if (keypads.length === 0) throw lfError('LF_ERR_INVALID_ARGUMENT', '--keypad', 'give at least one keypad (--keypad 3:<key>) or --bus');
      const { runSerialKeypadSim } = await import('../../simulators/serial-keypad.js');
      const sim = await runSerialKeypadSim({ path: o.port, baud: o.baud, keypads, turnaroundMs: o.turnaroundMs }, (line) => process.stdout.write(line + '\n'));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        sim.once('closed', resolve);
      });
      await sim.close();
    });
  simulate
    .command('modbus')
    .description('Modbus I/O modules (generic 8-in/8-out): an RTU slave on a serial line or pty, or a TCP slave; type "pulse 3 0 50" to press unit 3\'s panic button for 50 ms')
    .addOption(new Option('--transport <t>', 'rtu or tcp').choices(['rtu', 'tcp']).default('rtu'))
    .option('--port <path>', 'rtu: the serial device (the module end); without it a pty pair is opened and the gateway\'s end printed')
    .option('--baud <n>', 'rtu: line speed', int('--baud', 1200, 921600), 19200)
    .option('--turnaround-ms <ms>', 'rtu: time from a request\'s last byte to the answer', int('--turnaround-ms', 0, 1000), 5)
    .option('--host <host>', 'tcp: address to listen on', '127.0.0.1')
    .option('--tcp-port <n>', 'tcp: port (0 = a free one, printed)', int('--tcp-port', 0, 65535), 0)
    .option('--units <ids>', 'unit ids served, e.g. 1,2,3', (v: string) => list(v).map((x) => int('--units', 1, 247)(x)), [1])
    .option('--model <model>', 'register map: a built-in name or a JSON file', 'generic-8io')
    .addHelpText('after', '\nExamples:\n  $ lianfang simulate modbus --transport rtu --port /tmp/line/b --units 1,2\n  $ lianfang simulate modbus --transport tcp --tcp-port 1502 --units 1\n  then type:  pulse 1 0 50   |   set 1 1 1   |   fault 2 silent   |   status')
    .action(async (o: { transport: 'rtu' | 'tcp'; port?: string; baud: number; turnaroundMs: number; host: string; tcpPort: number; units: number[]; model: string }) => {
      const { runModbusSim } = await import('../../simulators/modbus-module.js');
      const sim = await runModbusSim(
        { transport: o.transport, path: o.port, baud: o.baud, turnaroundMs: o.turnaroundMs, host: o.host, port: o.tcpPort, units: o.units, map: o.model, input: process.stdin },
        (line) => process.stdout.write(line + '\n'),
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        process.stdin.once('end', resolve);
      });
      await sim.close();
    });

  registerFaultCommands(program, { dataOption, jsonOption, actor: cliActor });

  await program.parseAsync(argv);
}

main(process.argv).catch((err) => {
  process.exitCode = reportError(err);
});
