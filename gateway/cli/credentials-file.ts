/**
 * Where credentials issued in bulk go (`import devices --credentials OUT.csv`, `device rotate --all`):
 * a CSV file the installer names, created with mode 0600 and never overwritten, never the
 * terminal. Columns: shop, device id, transport, username, password (MQTT) or MAC key (wired).
 */
import { closeSync, fsyncSync, openSync, rmSync, writeSync, constants } from 'node:fs';
import { lfError } from '../errors.js';
import { DATA_FILE_MODE } from '../data-dir.js';

export interface IssuedCredential {
  shopId: string;
  deviceId: string;
  transport: string;
  /** MQTT devices: username (= client id = device id) and password. */
  username?: string;
  password?: string;
  /** Wired keypads: the MAC key in hex. */
  macKey?: string;
}

export const CREDENTIAL_COLUMNS = ['shop', 'device-id', 'transport', 'username', 'password', 'mac-key'] as const;

const cell = (v: string | undefined) => (v === undefined ? '' : /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

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
  writeSync(fd, CREDENTIAL_COLUMNS.join(',') + '\n');
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
      writeSync(fd, [c.shopId, c.deviceId, c.transport, c.username, c.password, c.macKey].map(cell).join(',') + '\n');
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
