/**
 * Shops in bulk: the CSV columns (the long names of `shop add`'s flags), one table read by import
 * and export alike, and the import itself. Every row is checked before anything stays written:
 * rows are applied in file order inside one transaction (so a shop's neighbours may be shops
 * created earlier in the same file), and the transaction is rolled back when any row is bad.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Db } from '../../store/db.js';
import { addShop, getShop, listShops, SHOP_FLAGS, ShopInput, updateShop, type Shop, type ShopField } from '../../registry/registry.js';
import { compile } from '../../../firmware-contracts/mqtt/payloads.js';
import { list } from '../common.js';
import { tr } from '../../i18n.js';
import { applyRows, columnNamed, FirstLines, RowErrors, type ColumnSpec, type CsvRecord } from './csv.js';
import type { Progress } from './progress.js';

type CellKind = 'text' | 'number' | 'list';

export interface ShopColumn {
  /** The column's name: the long name of `shop add`'s flag. */
  column: string;
  field: 'id' | ShopField;
  kind: CellKind;
}

/** The shop file's fields, in the order export writes them (after id). */
const CSV_ORDER: readonly ShopField[] = [
  'name', 'address', 'lat', 'lon', 'stationId', 'doorPlate', 'poleNumber', 'grid', 'sector',
  'ownerName', 'ownerPhone', 'dutyName', 'dutyPhone', 'cameraIds', 'compoundId', 'neighbours',
];
const KINDS: Partial<Record<ShopField, CellKind>> = { lat: 'number', lon: 'number', cameraIds: 'list', neighbours: 'list' };

/** The shop file's columns: each named as `shop add`'s flag for its field (SHOP_FLAGS). */
export const SHOP_CSV_COLUMNS: readonly ShopColumn[] = [
  { column: 'id', field: 'id', kind: 'text' },
  ...CSV_ORDER.map((field) => ({ column: SHOP_FLAGS[field], field, kind: KINDS[field] ?? 'text' })),
];

export const SHOP_COLUMN_SPEC: ColumnSpec = {
  known: SHOP_CSV_COLUMNS.map((c) => c.column),
  required: ['id', 'name', 'address', 'station'],
};

/** One validator per field, so every bad cell of a row is named, not only the first. */
const fieldCheckers = new Map(
  SHOP_CSV_COLUMNS.map((c) => [c.field, compile((ShopInput.properties as Record<string, TSchema>)[c.field]!)] as const),
);

/** The column of a registry error; a shop that checkShop cannot find can only be a neighbour. */
export const shopColumnOf = (message: string): string | null =>
  columnNamed(SHOP_CSV_COLUMNS, message) ?? (/^shop \S+ does not exist/.test(message) ? 'neighbours' : null);

/** A cell as its field's value; errors name the column. undefined: the cell is bad (recorded). */
function cellValue(col: ShopColumn, raw: string, line: number, errors: RowErrors): unknown {
  let value: unknown = raw;
  if (col.kind === 'number') {
    value = Number(raw);
    if (!Number.isFinite(value)) {
      errors.add(line, col.column, tr(`${JSON.stringify(raw)} is not a number`, `${JSON.stringify(raw)} 不是数字`));
      return undefined;
    }
  } else if (col.kind === 'list') value = list(raw);
  const checker = fieldCheckers.get(col.field)!;
  if (!checker.check(value)) {
    errors.add(line, col.column, checker.firstError(value).replace(/^\/ /, ''));
    return undefined;
  }
  return value;
}

/** What a row says: the fields it sets and the optional ones it empties. null: a cell was bad. */
interface ShopRow {
  id: string;
  patch: Partial<Omit<ShopInput, 'id'>>;
  clear: ShopField[];
}

function shopRow(record: CsvRecord, errors: RowErrors): ShopRow | null {
  const before = errors.size;
  const out: Record<string, unknown> = {};
  const clear: ShopField[] = [];
  for (const col of SHOP_CSV_COLUMNS) {
    const raw = record.cells.get(col.column);
    if (raw === undefined) continue; // a column that is absent leaves the field alone
    if (raw === '') {
      // An empty cell clears an optional field (required ones were reported by parseCsv).
      if (!SHOP_COLUMN_SPEC.required.includes(col.column)) clear.push(col.field as ShopField);
      continue;
    }
    const v = cellValue(col, raw, record.line, errors);
    if (v !== undefined) out[col.field] = v;
  }
  if (errors.size > before) return null;
  const { id, ...patch } = out;
  return { id: id as string, patch, clear };
}

export interface ShopImportResult {
  created: string[];
  updated: { id: string; fields: ShopField[] }[];
  unchanged: string[];
}

/**
 * Apply the rows in file order inside one transaction: a new id is created, a known one updated
 * (unchanged when no field differs). Bad rows are recorded in `errors`; with any, or with `dryRun`,
 * nothing stays written. Returns what was (or, on a dry run, would have been) done.
 */
export function importShops(db: Db, records: readonly CsvRecord[], errors: RowErrors, opts: { dryRun: boolean; progress: Progress }): ShopImportResult {
  const result: ShopImportResult = { created: [], updated: [], unchanged: [] };
  const ids = new FirstLines();
  applyRows(db, () => {
    for (const record of records) {
      applyRow(db, record, errors, ids, result);
      opts.progress.tick();
    }
    return errors.size === 0 && !opts.dryRun;
  });
  return result;
}

function applyRow(db: Db, record: CsvRecord, errors: RowErrors, ids: FirstLines, result: ShopImportResult): void {
  const row = shopRow(record, errors);
  if (!row || !ids.claim(row.id, record.line, 'id', errors)) return;
  if (getShop(db, row.id)) {
    const update = errors.attempt(record.line, shopColumnOf, () => updateShop(db, row.id, row.patch, row.clear));
    if (update?.changed.length) result.updated.push({ id: row.id, fields: update.changed });
    else if (update) result.unchanged.push(row.id);
  } else {
    const added = errors.attempt(record.line, shopColumnOf, () => addShop(db, { id: row.id, ...row.patch } as ShopInput));
    if (added) result.created.push(row.id);
  }
}

/** A shop as a row of the shop file. */
function shopCells(shop: Shop): string[] {
  return SHOP_CSV_COLUMNS.map((c) => {
    const v = c.field === 'id' ? shop.id : shop[c.field];
    if (v === null || v === undefined) return '';
    return Array.isArray(v) ? v.join(',') : String(v);
  });
}

/** The shop file of every shop in service (retired shops are kept for the record, not exported). */
export function exportShops(db: Db): { columns: string[]; rows: string[][] } {
  return {
    columns: SHOP_CSV_COLUMNS.map((c) => c.column),
    rows: listShops(db)
      .filter((s) => !s.retiredAt)
      .map(shopCells),
  };
}
