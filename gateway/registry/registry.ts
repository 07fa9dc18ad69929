/**
 * Stations, shops, devices and users: what installers provision (CLI) and what the running gateway
 * holds in memory (reloaded through the admin channel when the CLI changes something). Input
 * records are validated against schemas here, at the boundary, whoever calls.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Db } from '../store/db.js';
import { compile } from '../../firmware-contracts/mqtt/payloads.js';
import { ID_PATTERN, isValidId } from '../../firmware-contracts/mqtt/topics.js';
import { lfError } from '../errors.js';
import { encryptSecret, hashPassword, keyedHash, newDeviceSecret, newMacKey } from '../secrets.js';
import { shortId } from '../ids.js';
import { PARITIES, findOrCreateBus, getBus, type Bus, type BusSpec } from './buses.js';
import { BUILT_IN_MAPS } from '../../firmware-contracts/modbus/register-map.js';
import { coordinatesProblem, phoneProblem } from './shop-checks.js';
import { OPEN_STATES, sqlStates } from '../alarm/state-machine.js';

/** The register map of a Modbus device registered without `--model`. */
export const DEFAULT_MODEL = 'generic-8io';

const Id = Type.String({ pattern: ID_PATTERN, description: 'letters, digits, _ . : - (1–64)' });
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

export const StationInput = Type.Object(
  {
    id: Id,
    name: Text(200),
    compoundOf: Type.Optional(Id),
    timeZone: Type.Optional(Text(64)),
  },
  { additionalProperties: false },
);
export type StationInput = Static<typeof StationInput>;

export const ShopInput = Type.Object(
  {
    id: Id,
    name: Text(200),
    address: Text(500),
    // Bounds (China's) and phone formats are checked by shop-checks.ts, which names the slip.
    lat: Type.Optional(Type.Number()),
    lon: Type.Optional(Type.Number()),
    stationId: Id,
    compoundId: Type.Optional(Id),
    doorPlate: Type.Optional(Text(32)),
    poleNumber: Type.Optional(Text(64)),
    grid: Type.Optional(Text(64)),
    sector: Type.Optional(Text(64)),
    ownerName: Type.Optional(Text(100)),
    ownerPhone: Type.Optional(Text(40)),
    dutyName: Type.Optional(Text(100)),
    dutyPhone: Type.Optional(Text(40)),
    cameraIds: Type.Optional(Type.Array(Text(64), { maxItems: 32 })),
    neighbours: Type.Optional(Type.Array(Id, { maxItems: 100 })),
  },
  { additionalProperties: false },
);
export type ShopInput = Static<typeof ShopInput>;

export const DEVICE_TYPES = ['keypad', 'panic', 'io-module'] as const;
export const TRANSPORTS = ['mqtt', 'serial', 'modbus-rtu', 'modbus-tcp'] as const;
export const ROLES = ['officer', 'installer', 'admin'] as const;

export const DeviceInput = Type.Object(
  {
    shopId: Id,
    type: Type.Union(DEVICE_TYPES.map((t) => Type.Literal(t))),
    transport: Type.Union(TRANSPORTS.map((t) => Type.Literal(t))),
    id: Type.Optional(Id),
    /** Wired devices: the bus (created on first use) and the device's address on it. */
    busId: Type.Optional(Id),
    port: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'serial device path, e.g. /dev/ttyUSB0' })),
    baud: Type.Optional(Type.Integer({ minimum: 1200, maximum: 921600 })),
    parity: Type.Optional(Type.Union(PARITIES.map((p) => Type.Literal(p)))),
    host: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9.:-]{1,253}$', description: 'host name or IP address' })),
    tcpPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    busAddress: Type.Optional(Type.Integer({ minimum: 1, maximum: 247, description: 'keypad address or Modbus unit id' })),
    model: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export type DeviceInput = Static<typeof DeviceInput>;

export const UserInput = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9_.@-]{1,64}$', description: 'letters, digits, _ . @ - (1–64)' }),
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    stationId: Type.Optional(Id),
    password: Type.String({ minLength: 8, maxLength: 256 }),
  },
  { additionalProperties: false },
);
export type UserInput = Static<typeof UserInput>;

const checkers = {
  station: compile(StationInput),
  shop: compile(ShopInput),
  device: compile(DeviceInput),
  user: compile(UserInput),
};

function validate<K extends keyof typeof checkers>(kind: K, value: unknown): void {
  const c = checkers[kind];
  if (!c.check(value)) throw lfError('LF_ERR_INVALID_ARGUMENT', kind, c.firstError(value));
}

export interface Station {
  id: string;
  name: string;
  compoundOf: string | null;
  timeZone: string | null;
  createdAt: string;
}

export interface Shop {
  id: string;
  name: string;
  address: string;
  lat: number | null;
  lon: number | null;
  stationId: string;
  compoundId: string | null;
  doorPlate: string | null;
  poleNumber: string | null;
  grid: string | null;
  sector: string | null;
  ownerName: string | null;
  ownerPhone: string | null;
  dutyName: string | null;
  dutyPhone: string | null;
  cameraIds: string[];
  neighbours: string[];
  createdAt: string;
  /** Set when the shop was retired (`shop remove`): kept for the record, no one's neighbour. */
  retiredAt: string | null;
}

export interface Device {
  id: string;
  shopId: string;
  type: (typeof DEVICE_TYPES)[number];
  transport: (typeof TRANSPORTS)[number];
  secretHash: Buffer | null;
  bus: string | null;
  busAddress: number | null;
  /** Modbus register map of an I/O module (e.g. generic-8io). */
  model: string | null;
  /** A serial keypad's MAC key, encrypted under the gateway key (docs/concepts.md "Secrets"). */
  macKeyEnc: Buffer | null;
  lastBoot: number | null;
  lastSeq: number | null;
  revokedAt: string | null;
  createdAt: string;
}

export interface User {
  name: string;
  role: (typeof ROLES)[number];
  stationId: string | null;
  passwordHash: string;
  revokedAt: string | null;
  createdAt: string;
}

type Row = Record<string, unknown>;

const stationFrom = (r: Row): Station => ({
  id: r.id as string,
  name: r.name as string,
  compoundOf: (r.compound_of as string) ?? null,
  timeZone: (r.time_zone as string) ?? null,
  createdAt: r.created_at as string,
});

const shopFrom = (r: Row): Shop => ({
  id: r.id as string,
  name: r.name as string,
  address: r.address as string,
  lat: (r.lat as number) ?? null,
  lon: (r.lon as number) ?? null,
  stationId: r.station_id as string,
  compoundId: (r.compound_id as string) ?? null,
  doorPlate: (r.door_plate as string) ?? null,
  poleNumber: (r.pole_number as string) ?? null,
  grid: (r.grid as string) ?? null,
  sector: (r.sector as string) ?? null,
  ownerName: (r.owner_name as string) ?? null,
  ownerPhone: (r.owner_phone as string) ?? null,
  dutyName: (r.duty_name as string) ?? null,
  dutyPhone: (r.duty_phone as string) ?? null,
  cameraIds: JSON.parse(r.camera_ids as string) as string[],
  neighbours: JSON.parse(r.neighbours as string) as string[],
  createdAt: r.created_at as string,
  retiredAt: (r.retired_at as string) ?? null,
});

const deviceFrom = (r: Row): Device => ({
  id: r.id as string,
  shopId: r.shop_id as string,
  type: r.type as Device['type'],
  transport: r.transport as Device['transport'],
  secretHash: (r.secret_hash as Buffer) ?? null,
  bus: (r.bus as string) ?? null,
  busAddress: (r.bus_address as number) ?? null,
  model: (r.model as string) ?? null,
  macKeyEnc: (r.mac_key_enc as Buffer) ?? null,
  lastBoot: (r.last_boot as number) ?? null,
  lastSeq: (r.last_seq as number) ?? null,
  revokedAt: (r.revoked_at as string) ?? null,
  createdAt: r.created_at as string,
});

const userFrom = (r: Row): User => ({
  name: r.name as string,
  role: r.role as User['role'],
  stationId: (r.station_id as string) ?? null,
  passwordHash: r.password_hash as string,
  revokedAt: (r.revoked_at as string) ?? null,
  createdAt: r.created_at as string,
});

const now = () => new Date().toISOString();

export function listStations(db: Db): Station[] {
  return (db.prepare('SELECT * FROM stations ORDER BY id').all() as Row[]).map(stationFrom);
}

export function getStation(db: Db, id: string): Station | undefined {
  const r = db.prepare('SELECT * FROM stations WHERE id = ?').get(id) as Row | undefined;
  return r && stationFrom(r);
}

export function addStation(db: Db, input: StationInput): Station {
  validate('station', input);
  return db.transaction(() => {
    if (getStation(db, input.id)) throw lfError('LF_ERR_ALREADY_EXISTS', 'station', input.id);
    if (input.compoundOf) {
      const parent = getStation(db, input.compoundOf);
      if (!parent) throw lfError('LF_ERR_NOT_FOUND', 'station', input.compoundOf);
      if (parent.compoundOf) throw lfError('LF_ERR_INVALID_ARGUMENT', '--compound-of', `${parent.id} is itself a compound`);
    }
    db.prepare('INSERT INTO stations (id, name, compound_of, time_zone, created_at) VALUES (?, ?, ?, ?, ?)').run(
      input.id,
      input.name,
      input.compoundOf ?? null,
      input.timeZone ?? null,
      now(),
    );
    return getStation(db, input.id)!;
  }).immediate();
}

export function listShops(db: Db): Shop[] {
  return (db.prepare('SELECT * FROM shops ORDER BY id').all() as Row[]).map(shopFrom);
}

export function getShop(db: Db, id: string): Shop | undefined {
  const r = db.prepare('SELECT * FROM shops WHERE id = ?').get(id) as Row | undefined;
  return r && shopFrom(r);
}

/** The columns of a shop record, by ShopInput field (list fields stored as JSON). */
const SHOP_COLUMNS = {
  name: 'name', address: 'address', lat: 'lat', lon: 'lon', stationId: 'station_id', compoundId: 'compound_id',
  doorPlate: 'door_plate', poleNumber: 'pole_number', grid: 'grid', sector: 'sector', ownerName: 'owner_name',
  ownerPhone: 'owner_phone', dutyName: 'duty_name', dutyPhone: 'duty_phone', cameraIds: 'camera_ids', neighbours: 'neighbours',
} as const satisfies Record<Exclude<keyof ShopInput, 'id'>, string>;
export type ShopField = keyof typeof SHOP_COLUMNS;
export const SHOP_FIELDS = Object.keys(SHOP_COLUMNS) as ShopField[];
/** Fields a shop cannot be without (`shop edit --clear` refuses them). */
export const REQUIRED_SHOP_FIELDS: readonly ShopField[] = ['name', 'address', 'stationId'];
/** The long name of each field's flag in `shop add` / `shop edit` (and the column in a shop CSV). */
export const SHOP_FLAGS = {
  name: 'name', address: 'address', lat: 'lat', lon: 'lon', stationId: 'station', compoundId: 'compound',
  doorPlate: 'door-plate', poleNumber: 'pole', grid: 'grid', sector: 'sector', ownerName: 'owner',
  ownerPhone: 'owner-phone', dutyName: 'duty', dutyPhone: 'duty-phone', cameraIds: 'cameras', neighbours: 'neighbours',
} as const satisfies Record<ShopField, string>;

/** A shop input as its database row's values. */
function shopRow(input: ShopInput): Record<string, unknown> {
  const row: Record<string, unknown> = { id: input.id };
  for (const f of SHOP_FIELDS) {
    const v = input[f];
    row[f] = f === 'cameraIds' || f === 'neighbours' ? JSON.stringify(v ?? []) : (v ?? null);
  }
  return row;
}

/** A stored shop as the input that would create it (null and empty fields left out). */
export function shopAsInput(shop: Shop): ShopInput {
  const out: Record<string, unknown> = { id: shop.id };
  for (const f of SHOP_FIELDS) {
    const v = shop[f];
    if (v === null || (Array.isArray(v) && v.length === 0)) continue;
    out[f] = v;
  }
  return out as ShopInput;
}

/**
 * Every check a shop record must pass, for add, edit and import alike: the schema, then what needs
 * the database (its station, compound and listed neighbours exist and fit).
 */
export function checkShop(db: Db, input: ShopInput): void {
  validate('shop', input);
  if ((input.lat === undefined) !== (input.lon === undefined)) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', 'coordinates', 'give both --lat and --lon, or neither');
  }
  if (input.lat !== undefined && input.lon !== undefined) {
    const bad = coordinatesProblem(input.lat, input.lon);
    if (bad) throw lfError('LF_ERR_INVALID_ARGUMENT', bad.flag, bad.message);
  }
  for (const f of ['ownerPhone', 'dutyPhone'] as const) {
    const bad = input[f] === undefined ? null : phoneProblem(input[f]);
    if (bad) throw lfError('LF_ERR_INVALID_ARGUMENT', `--${SHOP_FLAGS[f]}`, bad);
  }
  const station = getStation(db, input.stationId);
  if (!station) throw lfError('LF_ERR_NOT_FOUND', 'station', input.stationId);
  if (station.compoundOf) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--station', `${station.id} is a compound; use --station ${station.compoundOf} --compound ${station.id}`);
  }
  if (input.compoundId) {
    const compound = getStation(db, input.compoundId);
    if (!compound) throw lfError('LF_ERR_NOT_FOUND', 'compound', input.compoundId);
    if (compound.compoundOf !== station.id) {
      throw lfError('LF_ERR_INVALID_ARGUMENT', '--compound', `${compound.id} is not a compound of station ${station.id}`);
    }
  }
  for (const n of input.neighbours ?? []) {
    if (n === input.id) throw lfError('LF_ERR_INVALID_ARGUMENT', '--neighbours', 'a shop is not its own neighbour');
    if (!getShop(db, n)) throw lfError('LF_ERR_NOT_FOUND', 'shop', n);
  }
}

export function addShop(db: Db, input: ShopInput): Shop {
  return db.transaction(() => {
    const existing = getShop(db, input.id);
    if (existing?.retiredAt) throw lfError('LF_ERR_ALREADY_EXISTS', 'shop', `${input.id} (retired on ${existing.retiredAt}; a retired shop's id is not given again)`);
    if (existing) throw lfError('LF_ERR_ALREADY_EXISTS', 'shop', input.id);
    checkShop(db, input);
    const cols = SHOP_FIELDS.map((f) => SHOP_COLUMNS[f]).join(', ');
    const vals = SHOP_FIELDS.map((f) => `@${f}`).join(', ');
    db.prepare(`INSERT INTO shops (id, ${cols}, created_at) VALUES (@id, ${vals}, @createdAt)`).run({ ...shopRow(input), createdAt: now() });
    return getShop(db, input.id)!;
  }).immediate();
}

export interface ShopUpdate {
  shop: Shop;
  /** The fields whose value changed; empty when the update changed nothing. */
  changed: ShopField[];
}

/**
 * Change a shop: `patch` sets fields, `clear` empties optional ones. The result is checked as a
 * whole, as `shop add` checks a new one. A retired shop is not edited.
 */
export function updateShop(db: Db, id: string, patch: Partial<Omit<ShopInput, 'id'>>, clear: readonly ShopField[] = []): ShopUpdate {
  return db.transaction(() => {
    const current = getShop(db, id);
    if (!current) throw lfError('LF_ERR_NOT_FOUND', 'shop', id);
    refuseRetired(current);
    for (const f of clear) {
      if (!SHOP_FIELDS.includes(f)) throw lfError('LF_ERR_INVALID_ARGUMENT', '--clear', `no shop field ${String(f)}`);
      if (REQUIRED_SHOP_FIELDS.includes(f)) throw lfError('LF_ERR_INVALID_ARGUMENT', '--clear', `a shop cannot be without its --${SHOP_FLAGS[f]}`);
    }
    const next: Record<string, unknown> = { ...shopAsInput(current), ...patch };
    for (const f of clear) delete next[f];
    const input = next as ShopInput;
    checkShop(db, input);
    const before = shopRow(shopAsInput(current));
    const after = shopRow(input);
    const changed = SHOP_FIELDS.filter((f) => before[f] !== after[f]);
    if (changed.length) {
      db.prepare(`UPDATE shops SET ${changed.map((f) => `${SHOP_COLUMNS[f]} = @${f}`).join(', ')} WHERE id = @id`).run(
        Object.fromEntries([['id', id], ...changed.map((f) => [f, after[f]])]),
      );
    }
    return { shop: getShop(db, id)!, changed };
  }).immediate();
}

/** A retired shop keeps its record and nothing else: no edits, no devices. */
function refuseRetired(shop: Shop): void {
  if (shop.retiredAt) throw lfError('LF_ERR_SHOP_RETIRED', shop.id, shop.retiredAt);
}

export interface ShopRetirement {
  shop: Shop;
  /** The devices revoked with it (`--force`); the running gateway must drop their sessions. */
  revokedDevices: string[];
}

/**
 * Retire a shop (`shop remove`): it stays in the database with its alarms and events, for the
 * record, and is no one's neighbour any more. Refused while it has an alarm an officer still has
 * to close, and while it has live devices unless `force`, which revokes them in the same
 * transaction.
 */
export function retireShop(db: Db, id: string, actor: string, opts: { force?: boolean } = {}): ShopRetirement {
  return db.transaction(() => {
    const shop = getShop(db, id);
    if (!shop) throw lfError('LF_ERR_NOT_FOUND', 'shop', id);
    refuseRetired(shop);
    const open = db.prepare(`SELECT id, state FROM alarms WHERE shop_id = ? AND state IN (${sqlStates(OPEN_STATES)}) ORDER BY raised_at`).all(id) as { id: string; state: string }[];
    if (open.length) throw lfError('LF_ERR_SHOP_HAS_OPEN_ALARM', id, open.map((a) => `${a.id} (${a.state})`).join(', '));
    const live = listDevices(db, id).filter((d) => !d.revokedAt);
    if (live.length && !opts.force) throw lfError('LF_ERR_SHOP_HAS_DEVICES', id, live.map((d) => `${d.id} (${d.type}, ${d.transport})`).join(', '));
    for (const d of live) revokeDevice(db, d.id);
    const at = now();
    db.prepare('UPDATE shops SET retired_at = ?, retired_by = ? WHERE id = ?').run(at, actor, id);
    db.prepare("INSERT INTO audit (alarm_id, at, actor, action, detail) VALUES (NULL, ?, ?, 'shop-retired', ?)").run(
      at, actor, JSON.stringify({ shopId: id, revokedDevices: live.map((d) => d.id) }),
    );
    return { shop: getShop(db, id)!, revokedDevices: live.map((d) => d.id) };
  }).immediate();
}

export function listDevices(db: Db, shopId?: string): Device[] {
  const rows = shopId
    ? db.prepare('SELECT * FROM devices WHERE shop_id = ? ORDER BY id').all(shopId)
    : db.prepare('SELECT * FROM devices ORDER BY id').all();
  return (rows as Row[]).map(deviceFrom);
}

export function getDevice(db: Db, id: string): Device | undefined {
  const r = db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as Row | undefined;
  return r && deviceFrom(r);
}

export interface IssuedDevice {
  device: Device;
  /** MQTT username (= device id = the client id it must use); null for a wired device. */
  username: string | null;
  /** The MQTT password: shown once, stored only as a keyed hash. */
  password: string | null;
  /** A serial keypad's MAC key (hex): shown once, stored only encrypted. */
  macKey: string | null;
  /** The bus a wired device hangs on. */
  bus: Bus | null;
}

/** Which device types each wired transport carries. */
const WIRED_TYPES: Record<Exclude<(typeof TRANSPORTS)[number], 'mqtt'>, readonly (typeof DEVICE_TYPES)[number][]> = {
  serial: ['keypad'],
  'modbus-rtu': ['io-module', 'panic'],
  'modbus-tcp': ['io-module', 'panic'],
};

/** The wire fields of a device input must fit its transport; returns the bus spec for wired ones. */
function wiredSpec(input: DeviceInput): BusSpec | null {
  const { transport } = input;
  const given = (['busId', 'port', 'baud', 'parity', 'host', 'tcpPort', 'busAddress', 'model'] as const).filter((k) => input[k] !== undefined);
  if (transport === 'mqtt') {
    if (given.length) throw lfError('LF_ERR_INVALID_ARGUMENT', `--${given[0]}`, 'an MQTT device has no bus; leave out the wire options');
    return null;
  }
  if (!WIRED_TYPES[transport].includes(input.type)) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--type', `a ${transport} device is one of: ${WIRED_TYPES[transport].join(', ')}`);
  }
  if (input.busAddress === undefined) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--bus-address', transport === 'serial' ? 'the keypad\'s address on the line (1–247)' : 'the module\'s Modbus unit id (1–247)');
  }
  const tcp = transport === 'modbus-tcp';
  const misplaced = tcp ? given.find((k) => k === 'port' || k === 'baud' || k === 'parity') : given.find((k) => k === 'host' || k === 'tcpPort');
  if (misplaced) throw lfError('LF_ERR_INVALID_ARGUMENT', `--${misplaced}`, `not an option of a ${transport} device`);
  if (transport === 'serial' && input.model !== undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--model', 'register maps are for Modbus modules');
  if (input.model !== undefined && !BUILT_IN_MAPS[input.model]) throw lfError('LF_ERR_NOT_FOUND', 'register map', input.model);
  return { kind: transport, busId: input.busId, path: input.port, baud: input.baud, parity: input.parity, host: input.host, port: input.tcpPort };
}

/** One live device per address on a bus (`self`: the device being moved, which may keep its own). */
function refuseTakenAddress(db: Db, busId: string, address: number, self = ''): void {
  const taken = db.prepare('SELECT id FROM devices WHERE bus = ? AND bus_address = ? AND revoked_at IS NULL AND id <> ?').get(busId, address, self) as { id: string } | undefined;
  if (taken) throw lfError('LF_ERR_ALREADY_EXISTS', `address ${address} on bus ${busId}`, taken.id);
}

/** Register a device and issue its credentials. The password is returned once and never stored. */
export function addDevice(db: Db, gatewayKey: Buffer, input: DeviceInput): IssuedDevice {
  validate('device', input);
  const spec = wiredSpec(input);
  return db.transaction(() => {
    const shop = getShop(db, input.shopId);
    if (!shop) throw lfError('LF_ERR_NOT_FOUND', 'shop', input.shopId);
    refuseRetired(shop);
    const id = input.id ?? `${input.shopId}.${input.type}.${shortId(3)}`;
    if (!isValidId(id)) throw lfError('LF_ERR_INVALID_ARGUMENT', 'device id', id);
    if (getDevice(db, id)) throw lfError('LF_ERR_ALREADY_EXISTS', 'device', id);
    if (getUser(db, id)) throw lfError('LF_ERR_ALREADY_EXISTS', 'login name', id);
    const createdAt = now();
    if (!spec) {
      const password = newDeviceSecret();
      db.prepare('INSERT INTO devices (id, shop_id, type, transport, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        id, input.shopId, input.type, input.transport, keyedHash(gatewayKey, password), createdAt,
      );
      return { device: getDevice(db, id)!, username: id, password, macKey: null, bus: null };
    }
    const bus = findOrCreateBus(db, spec, createdAt);
    refuseTakenAddress(db, bus.id, input.busAddress!);
    // Serial keypads sign their frames with a per-device key the gateway must use, so it is kept
    // encrypted (not hashed) and shown once. Modbus has no authentication of its own.
    const macKey = input.transport === 'serial' ? newMacKey() : null;
    const model = input.transport === 'serial' ? null : (input.model ?? DEFAULT_MODEL);
    db.prepare(
      'INSERT INTO devices (id, shop_id, type, transport, mac_key_enc, bus, bus_address, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(id, input.shopId, input.type, input.transport, macKey && encryptSecret(gatewayKey, macKey), bus.id, input.busAddress, model, createdAt);
    return { device: getDevice(db, id)!, username: null, password: null, macKey: macKey?.toString('hex') ?? null, bus };
  }).immediate();
}

/** What `updateDevice` may change: where a wired device hangs. */
export type DeviceWireField = 'bus' | 'busAddress' | 'model';

export interface DeviceUpdate {
  device: Device;
  /** The fields whose value changed; empty when the update changed nothing. */
  changed: DeviceWireField[];
}

/**
 * Move a wired device (`import devices` with the id of one that exists): its bus, address and
 * register map, checked as `addDevice` checks a new one. Its shop, type and transport are what it
 * is, so a different one is refused; wire fields left out keep the device's own (a row that names
 * no bus, port or host keeps its bus). Its credentials are untouched.
 */
export function updateDevice(db: Db, id: string, input: DeviceInput): DeviceUpdate {
  validate('device', input);
  return db.transaction(() => {
    const current = getDevice(db, id);
    if (!current) throw lfError('LF_ERR_NOT_FOUND', 'device', id);
    if (current.revokedAt) throw lfError('LF_ERR_INVALID_ARGUMENT', 'device', `${id} was revoked on ${current.revokedAt}`);
    for (const [field, flag] of [['shopId', '--shop'], ['type', '--type'], ['transport', '--transport']] as const) {
      if (input[field] !== current[field]) {
        throw lfError('LF_ERR_INVALID_ARGUMENT', flag, `device ${id} is ${current[field]}, not ${input[field]}: add a new device and revoke this one`);
      }
    }
    const namesBus = input.busId !== undefined || input.port !== undefined || input.host !== undefined;
    const merged: DeviceInput = {
      ...input,
      ...(namesBus || !current.bus ? {} : { busId: current.bus }),
      ...(input.busAddress === undefined && current.busAddress !== null ? { busAddress: current.busAddress } : {}),
      ...(input.model === undefined && current.model !== null ? { model: current.model } : {}),
    };
    const spec = wiredSpec(merged);
    if (!spec) return { device: current, changed: [] };
    const bus = findOrCreateBus(db, spec, now());
    refuseTakenAddress(db, bus.id, merged.busAddress!, id);
    const next = { bus: bus.id, busAddress: merged.busAddress!, model: current.transport === 'serial' ? null : (merged.model ?? DEFAULT_MODEL) };
    const changed = (['bus', 'busAddress', 'model'] as const).filter((f) => next[f] !== current[f]);
    if (changed.length) db.prepare('UPDATE devices SET bus = ?, bus_address = ?, model = ? WHERE id = ?').run(next.bus, next.busAddress, next.model, id);
    return { device: getDevice(db, id)!, changed };
  }).immediate();
}

/** Revoke a device: it can no longer log in; a running gateway disconnects it on reload. */
export function revokeDevice(db: Db, id: string): Device {
  const info = db.prepare('UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now(), id);
  if (info.changes === 0 && !getDevice(db, id)) throw lfError('LF_ERR_NOT_FOUND', 'device', id);
  return getDevice(db, id)!;
}

/**
 * Issue new credentials to a device: an MQTT device a new password (its keyed hash replaces the
 * old one), a serial keypad a new MAC key (stored encrypted). The old ones stop working once a
 * running gateway reloads (the `rotate` admin op). Returned once, as addDevice returns them.
 */
export function rotateDevice(db: Db, gatewayKey: Buffer, id: string): IssuedDevice {
  return db.transaction(() => {
    const d = getDevice(db, id);
    if (!d) throw lfError('LF_ERR_NOT_FOUND', 'device', id);
    if (d.revokedAt) throw lfError('LF_ERR_INVALID_ARGUMENT', 'device', `${id} was revoked on ${d.revokedAt}; add a new device instead`);
    if (d.transport === 'mqtt') {
      const password = newDeviceSecret();
      db.prepare('UPDATE devices SET secret_hash = ? WHERE id = ?').run(keyedHash(gatewayKey, password), id);
      return { device: getDevice(db, id)!, username: id, password, macKey: null, bus: null };
    }
    if (d.transport !== 'serial') {
      throw lfError('LF_ERR_INVALID_ARGUMENT', 'device', `${id} is a ${d.transport} device: Modbus has no credentials to rotate`);
    }
    const macKey = newMacKey();
    db.prepare('UPDATE devices SET mac_key_enc = ? WHERE id = ?').run(encryptSecret(gatewayKey, macKey), id);
    return { device: getDevice(db, id)!, username: null, password: null, macKey: macKey.toString('hex'), bus: (d.bus && getBus(db, d.bus)) || null };
  }).immediate();
}

export function listUsers(db: Db): User[] {
  return (db.prepare('SELECT * FROM users ORDER BY name').all() as Row[]).map(userFrom);
}

export function getUser(db: Db, name: string): User | undefined {
  const r = db.prepare('SELECT * FROM users WHERE name = ?').get(name) as Row | undefined;
  return r && userFrom(r);
}

export async function addUser(db: Db, input: UserInput): Promise<User> {
  validate('user', input);
  if (input.role === 'officer' && !input.stationId) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--station', 'an officer belongs to a station (or a compound receiving point)');
  }
  // Checked before the slow hash, and again inside the transaction.
  const check = () => {
    if (getUser(db, input.name)) throw lfError('LF_ERR_ALREADY_EXISTS', 'user', input.name);
    if (getDevice(db, input.name)) throw lfError('LF_ERR_ALREADY_EXISTS', 'login name', input.name);
    if (input.stationId && !getStation(db, input.stationId)) throw lfError('LF_ERR_NOT_FOUND', 'station', input.stationId);
  };
  check();
  const passwordHash = await hashPassword(input.password);
  return db.transaction(() => {
    check();
    db.prepare('INSERT INTO users (name, role, station_id, password_hash, created_at) VALUES (?, ?, ?, ?, ?)').run(
      input.name,
      input.role,
      input.stationId ?? null,
      passwordHash,
      now(),
    );
    return getUser(db, input.name)!;
  }).immediate();
}

const PasswordInput = compile(Type.Object({ password: UserInput.properties.password }, { additionalProperties: false }));

/** A user's new password (scrypt), under addUser's rule; a revoked user keeps no password to change. */
export async function setUserPassword(db: Db, name: string, password: string): Promise<User> {
  if (!PasswordInput.check({ password })) throw lfError('LF_ERR_INVALID_ARGUMENT', 'password', PasswordInput.firstError({ password }));
  const check = () => {
    const u = getUser(db, name);
    if (!u) throw lfError('LF_ERR_NOT_FOUND', 'user', name);
    if (u.revokedAt) throw lfError('LF_ERR_INVALID_ARGUMENT', 'user', `${name} was revoked on ${u.revokedAt}; add a new login instead`);
  };
  // Checked before the slow hash, and again inside the transaction.
  check();
  const passwordHash = await hashPassword(password);
  return db.transaction(() => {
    check();
    db.prepare('UPDATE users SET password_hash = ? WHERE name = ?').run(passwordHash, name);
    return getUser(db, name)!;
  }).immediate();
}

/** Revoke a login: it can no longer log in; a running gateway drops its live sessions (`user-changed`). */
export function revokeUser(db: Db, name: string): User {
  const info = db.prepare('UPDATE users SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL').run(now(), name);
  if (info.changes === 0 && !getUser(db, name)) throw lfError('LF_ERR_NOT_FOUND', 'user', name);
  return getUser(db, name)!;
}
