/**
 * The CLI's user-facing output: records as an aligned table or as JSON (`--json`), and coded errors
 * with their one-line remedy. This is the one place besides the simulators' screens that writes to
 * the terminal directly.
 */
import { isLianfangError } from '../errors.js';
import { currentLang, tr } from '../i18n.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Print rows as a table with the given columns (key → heading). */
export function printTable(rows: Record<string, unknown>[], columns: Record<string, string>): void {
  const keys = Object.keys(columns);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v));
  const width = (s: string) => [...s].reduce((w, ch) => w + (/[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1), 0);
  const widths = keys.map((k) => Math.max(width(columns[k]), ...rows.map((r) => width(cell(r[k])))));
  const line = (vals: string[]) => vals.map((v, i) => v + ' '.repeat(Math.max(0, widths[i] - width(v)))).join('  ').trimEnd();
  process.stdout.write(line(keys.map((k) => columns[k])) + '\n');
  for (const r of rows) process.stdout.write(line(keys.map((k) => cell(r[k]))) + '\n');
  if (rows.length === 0) process.stdout.write(tr('(none)\n', '（无）\n'));
}

export function printRecords(json: boolean, rows: Record<string, unknown>[], columns: Record<string, string>): void {
  if (json) printJson(rows);
  else printTable(rows, columns);
}

/** Print an error the way installers see them: one line with the code, the message and the remedy. Returns the exit code. */
export function reportError(err: unknown): number {
  if (isLianfangError(err)) {
    const zh = currentLang() === 'zh';
    process.stderr.write(`${tr('error', '错误')} ${err.code}: ${zh ? err.zh.message : err.message} — ${tr('remedy', '处理')}: ${zh ? err.zh.remedy : err.remedy}\n`);
    return 2;
  }
  process.stderr.write(`${tr('error', '错误')}: ${(err as Error)?.message ?? String(err)}\n`);
  return 1;
}

/** Colours only for a person at a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colourWanted(): boolean {
  return !!process.stdout.isTTY && !process.env.NO_COLOR;
}

export function note(message: string): void {
  process.stderr.write(message + '\n');
}
