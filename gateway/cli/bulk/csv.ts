/**
 * What every bulk command (`import shops|devices`, `shop pin --from`, `export`) shares: a file read
 * as text in the encoding street offices use (UTF-8 with or without a BOM, or GBK as Excel saves it
 * on a Chinese Windows), parsed to records that keep their line numbers, its header checked against
 * the columns a command knows, and every bad row collected, so the installer fixes them all in one
 * go instead of one per run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import iconv from 'iconv-lite';
import { isLianfangError, lfError } from '../../errors.js';
import { currentLang, tr } from '../../i18n.js';
import type { Db } from '../../store/db.js';

export const ENCODINGS = ['utf8', 'gbk'] as const;
export type Encoding = (typeof ENCODINGS)[number];

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Whether `bytes` is valid UTF-8 (a GBK file with Chinese in it almost never is). */
function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * A file's text: `forced` decides the encoding; otherwise a BOM or valid UTF-8 means UTF-8, and
 * anything else is taken as GBK. The BOM is dropped.
 */
export function decodeText(bytes: Buffer, forced?: Encoding): { text: string; encoding: Encoding } {
  const bom = bytes.subarray(0, 3).equals(UTF8_BOM);
  const encoding: Encoding = forced ?? (bom || isUtf8(bytes) ? 'utf8' : 'gbk');
  if (encoding === 'gbk') return { text: iconv.decode(bytes, 'gbk'), encoding };
  const body = bom ? bytes.subarray(3) : bytes;
  if (!isUtf8(body)) throw lfError('LF_ERR_INVALID_ARGUMENT', '--encoding', tr('the file is not valid UTF-8 (try --encoding gbk)', '文件不是有效的 UTF-8（可试 --encoding gbk）'));
  return { text: body.toString('utf8'), encoding };
}

export function readText(path: string, forced?: Encoding): { text: string; encoding: Encoding } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw lfError('LF_ERR_NOT_FOUND', tr('file', '文件'), `${path} (${(err as NodeJS.ErrnoException).code})`);
  }
  return decodeText(bytes, forced);
}

/** The bytes of `text` in `encoding` (UTF-8 with a BOM when `bom`: Excel needs it to read Chinese right). */
export function encodeText(text: string, encoding: Encoding, bom: boolean): Buffer {
  if (encoding === 'gbk') return iconv.encode(text, 'gbk');
  return Buffer.concat([bom ? UTF8_BOM : Buffer.alloc(0), Buffer.from(text, 'utf8')]);
}

/** One bad thing about one row: its line in the file, the column (null: the row as a whole) and what is wrong. */
export interface RowError {
  line: number;
  column: string | null;
  message: string;
}

/** A data row: its first line in the file and its cells by column name (trimmed). */
export interface CsvRecord {
  line: number;
  cells: Map<string, string>;
}

/**
 * Collects every bad row of a file. `attempt` runs one check and records a coded error it throws
 * (in the user's language) instead of stopping at it.
 */
export class RowErrors {
  readonly list: RowError[] = [];

  add(line: number, column: string | null, message: string): void {
    this.list.push({ line, column, message });
  }

  /** Runs `fn`; a LianfangError is recorded for `line` (its column guessed by `columnOf`), anything else rethrown. */
  attempt<T>(line: number, columnOf: (message: string) => string | null, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (!isLianfangError(err)) throw err;
      const message = currentLang() === 'zh' ? err.zh.message : err.message;
      this.add(line, columnOf(err.message), message);
      return undefined;
    }
  }

  get size(): number {
    return this.list.length;
  }

  /** Lines with errors, each once. */
  lines(): number[] {
    return [...new Set(this.list.map((e) => e.line))].sort((a, b) => a - b);
  }
}

function rowsRejected(file: string, errors: RowErrors) {
  return lfError('LF_ERR_IMPORT_ROWS', file, errors.lines().length);
}

function describeRowError(e: RowError): string {
  return e.column
    ? tr(`line ${e.line}, column ${e.column}: ${e.message}`, `第 ${e.line} 行，${e.column} 列：${e.message}`)
    : tr(`line ${e.line}: ${e.message}`, `第 ${e.line} 行：${e.message}`);
}

/**
 * The column a registry error is about, from its (English) message, for the columns of a file
 * (`column`: the flag's long name, `field`: the input's field): the subject of "invalid --lat: …"
 * or "station PS9 does not exist" first, then a field path (`/ownerPhone`) or a flag anywhere in it.
 * null when it names none (the row as a whole).
 */
export function columnNamed(columns: readonly { column: string; field: string }[], message: string): string | null {
  const subject = /^invalid (\S+?):/.exec(message)?.[1] ?? /^(\S+) \S+ (?:does not exist|already exists)/.exec(message)?.[1];
  const bySubject = subject && columns.find((c) => [c.column, `--${c.column}`, c.field, `--${c.field}`].includes(subject));
  if (bySubject) return bySubject.column;
  const byPath = columns.find((c) => new RegExp(`/${c.field}\\b`).test(message));
  if (byPath) return byPath.column;
  return columns.find((c) => new RegExp(`--(?:${c.column}|${c.field})\\b(?!-)`).test(message))?.column ?? null;
}

export interface ColumnSpec {
  /** Every column a command knows. */
  known: readonly string[];
  /** Columns a file must have. */
  required: readonly string[];
}

/**
 * Parse CSV text: the first non-empty line is the header (column names, case and surrounding
 * space ignored). A row with more or fewer cells than the header, and an empty cell where a
 * required column is, are row errors (and such a row is not returned); a quote left open ends the parse with an error at its line.
 */
export function parseCsv(text: string, spec: ColumnSpec, errors: RowErrors): { columns: string[]; records: CsvRecord[] } {
  let parsed: { record: string[]; info: { lines: number; empty_lines: number } }[];
  try {
    parsed = parse(text, { info: true, relax_column_count: true, skip_empty_lines: true, bom: true }) as unknown as typeof parsed;
  } catch (err) {
    const e = err as Error & { lines?: number };
    errors.add(e.lines ?? 1, null, tr(`not readable as CSV: ${e.message}`, `无法按 CSV 读取：${e.message}`));
    return { columns: [], records: [] };
  }
  if (parsed.length === 0) throw lfError('LF_ERR_INVALID_ARGUMENT', tr('file', '文件'), tr('it is empty: the first line must name the columns', '文件为空：第一行须为列名'));
  const columns = parsed[0]!.record.map((c) => c.trim().toLowerCase());
  checkHeader(columns, spec);
  const records: CsvRecord[] = [];
  let prev = parsed[0]!.info;
  for (const { record, info } of parsed.slice(1)) {
    // info.lines is where the record ends; a quoted cell may span lines, so count from the last one.
    const line = prev.lines + 1 + (info.empty_lines - prev.empty_lines);
    prev = info;
    if (record.length !== columns.length) {
      errors.add(line, null, tr(`${record.length} cells where the header has ${columns.length}`, `有 ${record.length} 个单元格，而表头有 ${columns.length} 列`));
      continue;
    }
    const cells = new Map(columns.map((c, i) => [c, record[i]!.trim()]));
    const empty = spec.required.filter((c) => cells.get(c) === '');
    for (const c of empty) errors.add(line, c, tr('required, but empty', '必填，但为空'));
    // A record with an empty required cell goes no further: its other errors would only follow from it.
    if (!empty.length) records.push({ line, cells });
  }
  return { columns, records };
}

/** Unknown and duplicate columns name themselves; so do required ones that are missing. */
function checkHeader(columns: string[], spec: ColumnSpec): void {
  const unknown = columns.filter((c) => !spec.known.includes(c));
  const twice = columns.filter((c, i) => columns.indexOf(c) !== i);
  const missing = spec.required.filter((c) => !columns.includes(c));
  const problems = [
    unknown.length ? tr(`unknown column(s) ${unknown.map((c) => JSON.stringify(c)).join(', ')}`, `未知列 ${unknown.map((c) => JSON.stringify(c)).join('、')}`) : '',
    twice.length ? tr(`column(s) given twice: ${twice.join(', ')}`, `重复的列：${twice.join('、')}`) : '',
    missing.length ? tr(`required column(s) missing: ${missing.join(', ')}`, `缺少必需的列：${missing.join('、')}`) : '',
  ].filter(Boolean);
  if (problems.length) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', tr('header (line 1)', '表头（第 1 行）'), `${problems.join('; ')} (${tr('the columns are', '可用的列')}: ${spec.known.join(', ')})`);
  }
}

/** Rows as CSV text with a header line (cells quoted where needed). */
export function toCsv(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  return stringify([columns as string[], ...(rows as string[][])], { record_delimiter: '\n' });
}

/** Write `text` to `file` (or stdout without one). A file gets a BOM in UTF-8, so Excel reads its Chinese right. */
export function writeCsvOut(text: string, file: string | undefined, encoding: Encoding): void {
  if (file === undefined) process.stdout.write(encoding === 'gbk' ? encodeText(text, 'gbk', false) : text);
  else writeFileSync(file, encodeText(text, encoding, true));
}

/** Thrown inside the transaction of `applyRows` to roll it back. */
class Rollback extends Error {}

/**
 * Run `apply` in one immediate transaction that is kept only when it returns true: a bulk command
 * applies its rows in file order (a later row sees what an earlier one created) and rolls all of
 * them back when any is bad, or on a dry run.
 */
export function applyRows(db: Db, apply: () => boolean): void {
  try {
    db.transaction(() => {
      if (!apply()) throw new Rollback();
    }).immediate();
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
}

/** Ids a file names in its key column: a second row with the same id is an error of that row. */
export class FirstLines {
  private readonly lines = new Map<string, number>();

  /** Whether `id` is new to the file; otherwise records the error (naming the earlier line). */
  claim(id: string, line: number, column: string, errors: RowErrors): boolean {
    const earlier = this.lines.get(id);
    if (earlier === undefined) {
      this.lines.set(id, line);
      return true;
    }
    errors.add(line, column, tr(`${id} is already on line ${earlier}`, `${id} 已在第 ${earlier} 行出现`));
    return false;
  }
}

/** Print every bad row (stderr; with --json also as JSON on stdout) and throw LF_ERR_IMPORT_ROWS. */
export function failOnRowErrors(file: string, errors: RowErrors, json: boolean): void {
  if (!errors.size) return;
  const sorted = [...errors.list].sort((a, b) => a.line - b.line);
  for (const e of sorted) process.stderr.write(`  ${describeRowError(e)}\n`);
  if (json) process.stdout.write(JSON.stringify({ ok: false, errors: sorted }, null, 2) + '\n');
  throw rowsRejected(file, errors);
}
