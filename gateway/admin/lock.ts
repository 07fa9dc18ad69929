/**
 * Keeps two gateways off one data directory: `<data>/gateway.lock` holds the owner's pid. A lock
 * left by a process that no longer runs (after SIGKILL or a power cut) is taken over.
 */
import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { lfError } from '../errors.js';

export const LOCK_FILE = 'gateway.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding the lock, if a live process does. */
export function lockHolder(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, LOCK_FILE), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export interface Lock {
  release(): void;
}

export function acquireLock(dataDir: string): Lock {
  const file = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release() {
          try {
            if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = lockHolder(dataDir);
      if (holder !== null && holder !== process.pid) throw lfError('LF_ERR_DATA_LOCKED', dataDir, holder);
      // Stale: its owner is gone.
      try {
        unlinkSync(file);
      } catch {
        /* raced with another starter; try again */
      }
    }
  }
  throw lfError('LF_ERR_DATA_LOCKED', dataDir, 'unknown');
}
