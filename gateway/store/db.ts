/**
 * Opens the gateway's SQLite database: WAL with synchronous=FULL, so a commit is on disk before the
 * device is told "got it" (better-sqlite3 leaves WAL at NORMAL, which can lose the last commits on
 * power loss), foreign keys on, and migrations applied.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { migrate } from './migrations.js';
import { secureDataDir, DATA_FILE_MODE } from '../data-dir.js';

export type Db = Database.Database;

export const DB_FILE = 'lianfang.db';

export interface OpenOptions {
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/** Open `<dataDir>/lianfang.db`, creating and securing the directory first (gateway/data-dir.ts). */
export function openDatabase(dataDir: string, opts: OpenOptions = {}): Db {
  secureDataDir(dataDir);
  const file = join(dataDir, DB_FILE);
  const db = openDatabaseFile(file, opts);
  // SQLite creates a new database under the process umask (0644 by default) and gives its -wal and
  // -shm the database's own mode; a caller that did not set the private umask still gets 0600.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, DATA_FILE_MODE);
  return db;
}

/** `fn` on `<dataDir>/lianfang.db` opened as openDatabase does, closed after (the CLI's short visits). */
export function withDatabase<T>(dataDir: string, fn: (db: Db) => T): T {
  const db = openDatabase(dataDir);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function openDatabaseFile(file: string, opts: OpenOptions = {}): Db {
  const db = new Database(file, { readonly: opts.readonly ?? false });
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
  }
  db.pragma('foreign_keys = ON');
  if (!opts.readonly) {
    try {
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }
  return db;
}

export function getMeta(db: Db, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMeta(db: Db, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}
