/**
 * Where credentials issued in bulk go (`import devices --credentials OUT.csv`, `device rotate --all`):
 * a CSV file the installer names, created with mode 0600 and never overwritten, never the
 * terminal. Columns: shop, device id, transport, username, password (MQTT) or MAC key (wired).
 */
import { closeSync, openSync, writeSync, constants } from 'node:fs';
import { lfError } from '../errors.js';

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

/** Refuses a file that exists (a second run must not overwrite the first run's keys). */
export function openCredentialsFile(path: string): { write(c: IssuedCredential): void; close(): void } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--credentials', code === 'EEXIST' ? `${path} exists: name a new file (credentials are never overwritten)` : `cannot create ${path}: ${code}`);
  }
  writeSync(fd, CREDENTIAL_COLUMNS.join(',') + '\n');
  return {
    write(c) {
      writeSync(fd, [c.shopId, c.deviceId, c.transport, c.username, c.password, c.macKey].map(cell).join(',') + '\n');
    },
    close() {
      closeSync(fd);
    },
  };
}
