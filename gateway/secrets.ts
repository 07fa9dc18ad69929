/**
 * Secrets, as docs/concepts.md "Secrets" says: what is only checked is stored as a keyed hash
 * (HMAC-SHA-256 under the gateway key in <data>/gateway.key, mode 0600): device tokens, PINs.
 * People's passwords use scrypt, checked asynchronously, off the alarm path. What the gateway must
 * use (a serial keypad's MAC key) is stored encrypted under the gateway key. Comparisons are in
 * constant time. Nothing here logs.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  scrypt as scryptCb,
  timingSafeEqual,
} from 'node:crypto';
import { chmodSync, existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { secureDataDir } from './data-dir.js';

export const GATEWAY_KEY_FILE = 'gateway.key';

/** Load the gateway key, creating it (32 random bytes, mode 0600) on first use. */
export function loadOrCreateGatewayKey(dataDir: string): Buffer {
  secureDataDir(dataDir);
  const file = join(dataDir, GATEWAY_KEY_FILE);
  if (!existsSync(file)) {
    // Written whole under a temporary name, then linked into place: link() fails if the key exists,
    // so of two processes creating it at once one wins and the other reads a complete key, never a
    // half-written one.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
  chmodSync(file, 0o600);
  const key = parseGatewayKey(readFileSync(file, 'utf8'));
  if (!key) throw new Error(`${file} does not hold a 32-byte hex key`);
  return key;
}

/** A key file's text (64 hex digits, a newline allowed) as the key, or null when it is not one. */
export function parseGatewayKey(text: string): Buffer | null {
  const hex = text.trim();
  const key = Buffer.from(hex, 'hex');
  return key.length === 32 && key.toString('hex') === hex.toLowerCase() ? key : null;
}

/** A fresh device secret: 256 random bits, URL-safe. */
export function newDeviceSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A serial keypad's MAC key: 256 random bits. */
export function newMacKey(): Buffer {
  return randomBytes(32);
}

export function keyedHash(gatewayKey: Buffer, secret: string | Buffer): Buffer {
  return createHmac('sha256', gatewayKey).update(secret).digest();
}

/** Constant-time check of a presented secret against its stored keyed hash. */
export function verifyKeyedHash(gatewayKey: Buffer, presented: string | Buffer, stored: Buffer): boolean {
  const h = keyedHash(gatewayKey, presented);
  return stored.length === h.length && timingSafeEqual(h, stored);
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 } as const;

function scrypt(password: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, { N, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash`, base64url. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  const key = await scrypt(password, salt, N, r, p, expected.length);
  return timingSafeEqual(key, expected);
}

function encryptionKey(gatewayKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', gatewayKey, Buffer.alloc(0), 'lianfang secret encryption v1', 32));
}

/** AES-256-GCM under a key derived from the gateway key: iv(12) ‖ tag(16) ‖ ciphertext. */
export function encryptSecret(gatewayKey: Buffer, plain: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(gatewayKey), iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function decryptSecret(gatewayKey: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', encryptionKey(gatewayKey), sealed.subarray(0, 12));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
}
