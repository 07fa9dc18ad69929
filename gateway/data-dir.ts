/**
 * The data directory holds the password hashes, the gateway key and the admin socket, so only its
 * owner may read it: the directory is 0700 and everything in it 0600 (0700 for a subdirectory).
 * Called by everything that opens it (the gateway and every CLI command, through openDatabase and
 * loadOrCreateGatewayKey) before anything is read from it.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { lfError } from './errors.js';

export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;
/** New files and directories get no group or world bits, whoever creates them (SQLite's -wal, sockets). */
export const PRIVATE_UMASK = 0o077;

/**
 * Set the process umask so that what is created from now on is private. Called first by the CLI and
 * by Gateway.start; process-wide, which is what we want in a process that owns a data directory.
 */
export function usePrivateUmask(): void {
  process.umask(PRIVATE_UMASK);
}

const octal = (mode: number) => '0' + (mode & 0o777).toString(8);

/**
 * Create the data directory (0700), refuse it if its group or others may write to it, and tighten
 * what already exists in it. A directory others could write to is refused rather than tightened:
 * someone may already have replaced the key or the database, or planted a symlink, and chmod would
 * hide that; the installer checks and runs the chmod the message names. Symlinks inside it are never
 * followed.
 */
export function secureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: DATA_DIR_MODE });
  // The directory itself may be a symlink (/var/lib/lianfang → /data/lianfang): its target counts.
  const st = statSync(dataDir);
  if (st.mode & 0o022) throw lfError('LF_ERR_DATA_DIR_UNSAFE', dataDir, octal(st.mode), dataDir);
  tighten(dataDir, st, 0);
}

function tighten(path: string, st: Stats, depth: number): void {
  if (st.isSymbolicLink()) return;
  const want = st.isDirectory() ? DATA_DIR_MODE : DATA_FILE_MODE;
  // Only narrowing: a file deliberately made stricter (0400) stays so.
  if ((st.mode & 0o777 & ~want) !== 0) {
    try {
      chmodSync(path, st.mode & 0o777 & want);
    } catch (err) {
      // Removed since it was listed (a socket of a process that just exited): nothing to protect.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return;
    }
  }
  if (!st.isDirectory() || depth >= 4) return;
  for (const name of readdirSync(path)) {
    const child = join(path, name);
    let cst: Stats;
    try {
      cst = lstatSync(child);
    } catch {
      continue; // removed since it was listed
    }
    tighten(child, cst, depth + 1);
  }
}
