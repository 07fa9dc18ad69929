/**
 * Where credentials issued in bulk go (`import devices --credentials OUT.csv`, `device rotate --all`):
 * a CSV file the installer names, created with mode 0600 and never overwritten, never the
 * terminal. Its format is the devices' contract: firmware-contracts/provisioning/credentials.ts.
 */
import { closeSync, fsyncSync, openSync, rmSync, writeSync, constants } from 'node:fs';
import { lfError } from '../errors.js';
import { DATA_FILE_MODE } from '../data-dir.js';
import { credentialsHeader, credentialsRow, type IssuedCredential } from '../../firmware-contracts/provisioning/credentials.js';

export type { IssuedCredential } from '../../firmware-contracts/provisioning/credentials.js';

/**
 * A new file of the installer's, mode 0600, open for writing: one that exists is refused (a key,
 * a backup or credentials are never overwritten). `option` names what gave the path, for the error.
 */
export function createPrivateFile(path: string, option: string): number {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, DATA_FILE_MODE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw lfError('LF_ERR_INVALID_ARGUMENT', option, code === 'EEXIST' ? `${path} exists: name a new file (it is never overwritten)` : `cannot create ${path}: ${code}`);
  }
}

/**
 * Refuses a file that exists (a second run must not overwrite the first run's keys). `close` puts
 * it on disk (fsync) before the caller commits what it holds; `discard` removes a file whose
 * credentials were not committed (they would not work).
 */
export function openCredentialsFile(path: string): { write(c: IssuedCredential): void; close(): void; discard(): void } {
  let fd: number | null = createPrivateFile(path, '--credentials');
  writeSync(fd, credentialsHeader());
  const close = () => {
    if (fd === null) return;
    const f = fd;
    fd = null;
    try {
      fsyncSync(f);
    } finally {
      closeSync(f);
    }
  };
  return {
    write(c) {
      if (fd === null) throw new Error('credentials file already closed');
      writeSync(fd, credentialsRow(c));
    },
    close,
    discard() {
      try {
        close();
      } finally {
        rmSync(path, { force: true });
      }
    },
  };
}
