/**
 * Devices in bulk: the CSV columns (`shop, type, transport`, the wired flags of `device add` and an
 * optional `id`), read by import and written by export, and the import. As for shops, the rows are
 * applied in file order in one transaction that is rolled back when any row is bad. A row with the
 * id of a device that exists moves it (its wire fields); any other row creates a device, whose
 * credentials are handed to the caller (for the credentials file), never printed.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Db } from '../../store/db.js';
import { addDevice, DeviceInput, getDevice, listDevices, updateDevice, type Device, type DeviceWireField } from '../../registry/registry.js';
import { listBuses, type Bus } from '../../registry/buses.js';
import { compile } from '../../../firmware-contracts/mqtt/payloads.js';
import { tr } from '../../i18n.js';
import type { IssuedCredential } from '../credentials-file.js';
import { applyRows, columnNamed, FirstLines, RowErrors, type ColumnSpec, type CsvRecord } from './csv.js';
import type { Progress } from './progress.js';

type DeviceField = keyof DeviceInput;

interface DeviceColumn {
  /** The long name of `device add`'s flag. */
  column: string;
  field: DeviceField;
  integer?: true;
  /** The value export writes for a device on its bus. */
  exported: (d: Device, bus: Bus | undefined) => string | number | null;
}

/** The device file's columns, in the order export writes them. */
export const DEVICE_CSV_COLUMNS: readonly DeviceColumn[] = [
  { column: 'id', field: 'id', exported: (d) => d.id },
  { column: 'shop', field: 'shopId', exported: (d) => d.shopId },
  { column: 'type', field: 'type', exported: (d) => d.type },
  { column: 'transport', field: 'transport', exported: (d) => d.transport },
  { column: 'bus', field: 'busId', exported: (d) => d.bus },
  { column: 'bus-address', field: 'busAddress', integer: true, exported: (d) => d.busAddress },
  { column: 'port', field: 'port', exported: (_, b) => b?.path ?? null },
  { column: 'baud', field: 'baud', integer: true, exported: (_, b) => b?.baud ?? null },
  { column: 'parity', field: 'parity', exported: (_, b) => b?.parity ?? null },
  { column: 'host', field: 'host', exported: (_, b) => b?.host ?? null },
  { column: 'tcp-port', field: 'tcpPort', integer: true, exported: (_, b) => b?.port ?? null },
  { column: 'model', field: 'model', exported: (d) => d.model },
];

export const DEVICE_COLUMN_SPEC: ColumnSpec = {
  known: DEVICE_CSV_COLUMNS.map((c) => c.column),
  required: ['shop', 'type', 'transport'],
};

const fieldCheckers = new Map(
  DEVICE_CSV_COLUMNS.map((c) => [c.field, compile((DeviceInput.properties as Record<string, TSchema>)[c.field]!)] as const),
);

/** The column of a registry error; what addDevice names without a flag: an address taken, a register map, the id. */
export function deviceColumnOf(message: string): string | null {
  const named = columnNamed(DEVICE_CSV_COLUMNS, message);
  if (named) return named;
  if (/^address \d+ on bus /.test(message)) return 'bus-address';
  if (/^register map /.test(message)) return 'model';
  if (/^(invalid )?(device|login name)\b/.test(message)) return 'id';
  return null;
}

/** A row as a device input (empty cells left out: they keep a device's value). null: a cell was bad. */
function deviceRow(record: CsvRecord, errors: RowErrors): DeviceInput | null {
  const before = errors.size;
  const out: Record<string, unknown> = {};
  for (const col of DEVICE_CSV_COLUMNS) {
    const raw = record.cells.get(col.column);
    if (raw === undefined || raw === '') continue;
    const value = col.integer ? Number(raw) : raw;
    const checker = fieldCheckers.get(col.field)!;
    if (col.integer && !Number.isInteger(value)) errors.add(record.line, col.column, tr(`${JSON.stringify(raw)} is not a whole number`, `${JSON.stringify(raw)} 不是整数`));
    else if (!checker.check(value)) errors.add(record.line, col.column, checker.firstError(value).replace(/^\/ /, ''));
    else out[col.field] = value;
  }
  return errors.size > before ? null : (out as DeviceInput);
}

export interface DeviceImportResult {
  created: string[];
  updated: { id: string; fields: DeviceWireField[] }[];
  unchanged: string[];
  /** Not errors: a shop getting a second device of the same type and transport. */
  warnings: { line: number; message: string }[];
}

export interface DeviceImportOptions {
  dryRun: boolean;
  progress: Progress;
  gatewayKey: Buffer;
  /** Called inside the transaction once every row is good (not on a dry run); a throw rolls it back. */
  issue: (credentials: IssuedCredential[]) => void;
}

export function importDevices(db: Db, records: readonly CsvRecord[], errors: RowErrors, opts: DeviceImportOptions): DeviceImportResult {
  const result: DeviceImportResult = { created: [], updated: [], unchanged: [], warnings: [] };
  const issued: IssuedCredential[] = [];
  const kinds = new DeviceKinds(listDevices(db));
  const ids = new FirstLines();
  applyRows(db, () => {
    for (const record of records) {
      const input = deviceRow(record, errors);
      opts.progress.tick();
      if (!input || (input.id !== undefined && !ids.claim(input.id, record.line, 'id', errors))) continue;
      if (input.id !== undefined && getDevice(db, input.id)) {
        const update = errors.attempt(record.line, deviceColumnOf, () => updateDevice(db, input.id!, input));
        if (update?.changed.length) result.updated.push({ id: input.id, fields: update.changed });
        else if (update) result.unchanged.push(input.id);
        continue;
      }
      const added = errors.attempt(record.line, deviceColumnOf, () => addDevice(db, opts.gatewayKey, input));
      if (!added) continue;
      const d = added.device;
      const warning = kinds.add(d);
      if (warning) result.warnings.push({ line: record.line, message: warning });
      result.created.push(d.id);
      issued.push({ shopId: d.shopId, deviceId: d.id, transport: d.transport, username: added.username ?? undefined, password: added.password ?? undefined, macKey: added.macKey ?? undefined });
    }
    if (errors.size || opts.dryRun) return false;
    opts.issue(issued);
    return true;
  });
  return result;
}

/** Devices in service by shop, type and transport: a second of a kind is usually a row typed twice. */
class DeviceKinds {
  private readonly byKind = new Map<string, string[]>();

  constructor(devices: readonly Device[]) {
    for (const d of devices) if (!d.revokedAt) this.add(d);
  }

  /** Count `d` in; the warning when its shop already had one of its kind. */
  add(d: Device): string | undefined {
    const kind = `${d.shopId}\0${d.type}\0${d.transport}`;
    const others = this.byKind.get(kind) ?? [];
    this.byKind.set(kind, [...others, d.id]);
    if (!others.length) return undefined;
    return tr(
      `shop ${d.shopId} gets a second ${d.type} over ${d.transport} (it has ${others.join(', ')})`,
      `店铺 ${d.shopId} 将有第二个经 ${d.transport} 连接的 ${d.type}（已有 ${others.join('、')}）`
    );
  }
}

/** The device file of every device in service (revoked ones cannot log in: they are history), without secrets. */
export function exportDevices(db: Db): { columns: string[]; rows: string[][] } {
  const buses = new Map(listBuses(db).map((b) => [b.id, b]));
  return {
    columns: DEVICE_CSV_COLUMNS.map((c) => c.column),
    rows: listDevices(db)
      .filter((d) => !d.revokedAt)
      .map((d) => DEVICE_CSV_COLUMNS.map((c) => String(c.exported(d, d.bus ? buses.get(d.bus) : undefined) ?? ''))),
  };
}
