/**
 * The gateway's log on disk: `<data>/logs/gateway[.<yyyy-MM-dd>].<n>.log`, written by pino-roll
 * (a new file at log.fileMaxBytes and, with log.fileRotateDaily, at each local midnight; the
 * oldest beyond log.fileCount removed) and read back by `lianfang logs`. The names are pino-roll's
 * ("extension last"); this module is the one place that knows them, for the writer and the reader.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import type { Config } from '../config/schema.js';
import { DATA_DIR_MODE } from './data-dir.js';

export const LOG_DIR = 'logs';
const BASE = 'gateway';
const EXTENSION = '.log';
const DATE_FORMAT = 'yyyy-MM-dd';
const FILE_NAME = /^gateway(?:\.(\d{4}-\d{2}-\d{2}))?\.(\d+)\.log$/;

export function logDir(dataDir: string): string {
  return join(dataDir, LOG_DIR);
}

/** A log file as the writer names it: its date (when rotated daily) and its number within the date. */
export interface LogFile {
  path: string;
  date: string;
  number: number;
}

/** The gateway's log files, oldest first (as pino-roll orders them: by date, then number); [] when there are none. */
export function listLogFiles(dataDir: string): LogFile[] {
  let names: string[];
  try {
    names = readdirSync(logDir(dataDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files: LogFile[] = [];
  for (const name of names) {
    const m = FILE_NAME.exec(name);
    if (m) files.push({ path: join(logDir(dataDir), name), date: m[1] ?? '', number: Number(m[2]) });
  }
  return files.sort((a, b) => (a.date === b.date ? a.number - b.number : a.date < b.date ? -1 : 1));
}

/** A destination that can be closed, as pino-roll's SonicBoom is. */
export interface LogFileStream extends DestinationStream {
  on(event: 'error', fn: (err: Error) => void): unknown;
  once(event: 'close', fn: () => void): unknown;
  end(): void;
}

/**
 * Open the rotating log file of a gateway in `dataDir` (the data directory exists and is private:
 * the logs directory is made 0700, and the process's private umask makes the files 0600).
 */
export async function openLogFile(dataDir: string, log: Config['log']): Promise<LogFileStream> {
  mkdirSync(logDir(dataDir), { recursive: true, mode: DATA_DIR_MODE });
  const { default: pinoRoll } = await import('pino-roll');
  return pinoRoll({
    file: join(logDir(dataDir), BASE),
    extension: EXTENSION,
    size: `${log.fileMaxBytes}b`,
    ...(log.fileRotateDaily ? { frequency: 'daily', dateFormat: DATE_FORMAT } : {}),
    // Every file of the pattern counts, not only this run's: the bound holds across restarts.
    limit: { count: log.fileCount, removeOtherLogFiles: true },
  });
}

/** Where a reader has got to: the file and the byte after the last whole line it took. */
export interface LogPosition {
  file: LogFile;
  offset: number;
}

/** The whole lines of `buf` (a line is whole once its newline is written) and the bytes they take. */
function wholeLines(buf: Buffer): { lines: string[]; bytes: number } {
  const end = buf.lastIndexOf(0x0a);
  if (end < 0) return { lines: [], bytes: 0 };
  return { lines: buf.subarray(0, end).toString('utf8').split('\n'), bytes: end + 1 };
}

/**
 * The last `n` lines that `keep` accepts, oldest first, read back from the newest file into older
 * ones as needed, and where the newest file's whole lines end (to follow on from); null when there
 * is no log file.
 */
export function lastLogLines(dataDir: string, n: number, keep: (line: string) => boolean): { lines: string[]; end: LogPosition } | null {
  const files = listLogFiles(dataDir);
  if (files.length === 0) return null;
  const taken: string[] = [];
  let end: LogPosition | null = null;
  // The newest file is always read: following starts where its whole lines end.
  for (let i = files.length - 1; i >= 0 && (taken.length < n || end === null); i--) {
    let buf: Buffer;
    try {
      buf = readFileSync(files[i].path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed by a rotation meanwhile
      throw err;
    }
    const { lines, bytes } = wholeLines(buf);
    end ??= { file: files[i], offset: bytes };
    for (let j = lines.length - 1; j >= 0 && taken.length < n; j--) if (lines[j] && keep(lines[j])) taken.push(lines[j]);
  }
  return { lines: taken.reverse(), end: end ?? { file: files[files.length - 1], offset: 0 } };
}

const newer = (a: LogFile, b: LogFile) => (a.date === b.date ? a.number > b.number : a.date > b.date);

/**
 * The whole lines written since `pos`, and the position after them. When the writer has moved on
 * to a newer file (a rotation), the rest of this one is read first and the next one from its start,
 * so no line is skipped; a file that shrank (replaced under the same name) is read from its start.
 */
export function readLogSince(dataDir: string, pos: LogPosition): { lines: string[]; pos: LogPosition } {
  const lines: string[] = [];
  for (;;) {
    const chunk = readFrom(pos);
    lines.push(...chunk.lines.filter(Boolean));
    pos = chunk.pos;
    const next = listLogFiles(dataDir).find((f) => newer(f, pos.file));
    if (!next) return { lines, pos };
    pos = { file: next, offset: 0 };
  }
}

function readFrom(pos: LogPosition): { lines: string[]; pos: LogPosition } {
  let fd: number;
  try {
    fd = openSync(pos.file.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], pos };
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    const offset = size < pos.offset ? 0 : pos.offset;
    if (size === offset) return { lines: [], pos: { file: pos.file, offset } };
    const buf = Buffer.alloc(size - offset);
    const got = readSync(fd, buf, 0, buf.length, offset);
    const { lines, bytes } = wholeLines(buf.subarray(0, got));
    return { lines, pos: { file: pos.file, offset: offset + bytes } };
  } finally {
    closeSync(fd);
  }
}
