/**
 * A shop's cancel and duress PINs (docs/concepts.md "Keypad codes", "Secrets"): stored only as keyed
 * hashes (HMAC-SHA-256 under the gateway key, over the shop id and the PIN, so one PIN in two shops
 * gives two hashes), checked in constant time, never logged, printed or written to an audit row.
 * The wrong-PIN count and the lock-out's end are columns of the same row: a restart lifts nothing.
 */
import type { Db } from '../store/db.js';
import { timingSafeEqual } from 'node:crypto';
import { keyedHash } from '../secrets.js';
import { lfError } from '../errors.js';

/** 4–8 digits (docs/concepts.md "Keypad codes"). */
export const PIN_PATTERN = /^[0-9]{4,8}$/;

/** Wrong PINs in a row that lock cancelling for a shop. */
export const WRONG_PINS_BEFORE_LOCKOUT = 5;

function pinHash(gatewayKey: Buffer, shopId: string, pin: string): Buffer {
  return keyedHash(gatewayKey, `lianfang pin v1\0${shopId}\0${pin}`);
}

/** Validate a pair of PINs as the installer gives them; throws LF_ERR_INVALID_ARGUMENT (the PIN itself is never in the message). */
export function validatePins(pin: string | undefined, duressPin: string | undefined): { pin: string; duressPin: string } {
  if (!pin) throw lfError('LF_ERR_INVALID_ARGUMENT', 'PIN', 'give --pin (or LF_PIN)');
  if (!duressPin) throw lfError('LF_ERR_INVALID_ARGUMENT', 'duress PIN', 'give --duress-pin (or LF_DURESS_PIN)');
  if (!PIN_PATTERN.test(pin)) throw lfError('LF_ERR_INVALID_ARGUMENT', 'PIN', 'it must be 4 to 8 digits');
  if (!PIN_PATTERN.test(duressPin)) throw lfError('LF_ERR_INVALID_ARGUMENT', 'duress PIN', 'it must be 4 to 8 digits');
  if (pin === duressPin) throw lfError('LF_ERR_INVALID_ARGUMENT', 'duress PIN', 'it must differ from the PIN');
  return { pin, duressPin };
}

/** The installer's `lianfang shop pin`: set (or replace) both PINs, resetting the wrong-PIN count and any lock-out; an audit row without the PINs. */
export function setShopPins(db: Db, gatewayKey: Buffer, shopId: string, pins: { pin: string; duressPin: string }, actor: string, at: string): void {
  const { pin, duressPin } = validatePins(pins.pin, pins.duressPin);
  if (!db.prepare('SELECT 1 FROM shops WHERE id = ?').get(shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
  db.transaction(() => {
    db.prepare(
      `INSERT INTO shop_pins (shop_id, pin_hash, duress_hash, set_at, wrong_in_a_row, locked_until) VALUES (?, ?, ?, ?, 0, NULL)
       ON CONFLICT (shop_id) DO UPDATE SET pin_hash = excluded.pin_hash, duress_hash = excluded.duress_hash, set_at = excluded.set_at, wrong_in_a_row = 0, locked_until = NULL`,
    ).run(shopId, pinHash(gatewayKey, shopId, pin), pinHash(gatewayKey, shopId, duressPin), at);
    db.prepare("INSERT INTO audit (alarm_id, at, actor, action, detail) VALUES (NULL, ?, ?, 'pin-set', ?)").run(at, actor, JSON.stringify({ shopId }));
  })();
}

/** `lianfang shop pin --clear`: remove both PINs (and the lock-out). Returns whether the shop had any. */
export function clearShopPins(db: Db, shopId: string, actor: string, at: string): boolean {
  if (!db.prepare('SELECT 1 FROM shops WHERE id = ?').get(shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
  return db.transaction(() => {
    const had = db.prepare('DELETE FROM shop_pins WHERE shop_id = ?').run(shopId).changes > 0;
    db.prepare("INSERT INTO audit (alarm_id, at, actor, action, detail) VALUES (NULL, ?, ?, 'pin-cleared', ?)").run(at, actor, JSON.stringify({ shopId, had }));
    return had;
  })();
}

/**
 * What a `*` PIN `#` entry is, checked against the shop's stored hashes at `nowMs`:
 * `cancel`, `duress`, `wrong` (counted; `lockedUntil` set when this one locked the shop),
 * `locked-duress` (the duress PIN while locked: reaches the console only), `locked` (any other
 * entry while locked, not counted), or `unset` (the shop has no PINs).
 */
export type PinVerdict =
  | { kind: 'cancel' }
  | { kind: 'duress' }
  | { kind: 'wrong'; wrongInARow: number; lockedUntil?: number }
  | { kind: 'locked'; lockedUntil: number }
  | { kind: 'locked-duress'; lockedUntil: number }
  | { kind: 'unset' };

interface PinRow {
  pinHash: Buffer;
  duressHash: Buffer;
  wrongInARow: number;
  lockedUntil: number | null;
}

/** Checks PIN entries for the engine; every method runs inside the caller's writer transaction. */
export class PinStore {
  private readonly get;
  private readonly setWrong;

  constructor(
    db: Db,
    private readonly gatewayKey: Buffer,
    private readonly lockoutMs: number,
  ) {
    this.get = db.prepare('SELECT pin_hash AS pinHash, duress_hash AS duressHash, wrong_in_a_row AS wrongInARow, locked_until AS lockedUntil FROM shop_pins WHERE shop_id = ?');
    this.setWrong = db.prepare('UPDATE shop_pins SET wrong_in_a_row = ?, locked_until = ? WHERE shop_id = ?');
  }

  /** When the shop's lock-out ends, if it is locked out at `nowMs` (nothing is counted). */
  lockedUntil(shopId: string, nowMs: number): number | undefined {
    const row = this.get.get(shopId) as PinRow | undefined;
    return row?.lockedUntil != null && nowMs < row.lockedUntil ? row.lockedUntil : undefined;
  }

  check(shopId: string, entered: string, nowMs: number): PinVerdict {
    const row = this.get.get(shopId) as PinRow | undefined;
    if (!row) return { kind: 'unset' };
    // Both compared every time, in constant time: which one matched must not show in the timing.
    const h = pinHash(this.gatewayKey, shopId, entered);
    const cancel = equal(h, row.pinHash);
    const duress = equal(h, row.duressHash);
    if (row.lockedUntil !== null && nowMs < row.lockedUntil) {
      return duress ? { kind: 'locked-duress', lockedUntil: row.lockedUntil } : { kind: 'locked', lockedUntil: row.lockedUntil };
    }
    if (cancel || duress) {
      if (row.wrongInARow !== 0 || row.lockedUntil !== null) this.setWrong.run(0, null, shopId);
      return cancel ? { kind: 'cancel' } : { kind: 'duress' };
    }
    const wrongInARow = row.wrongInARow + 1;
    if (wrongInARow >= WRONG_PINS_BEFORE_LOCKOUT) {
      const lockedUntil = nowMs + this.lockoutMs;
      this.setWrong.run(0, lockedUntil, shopId);
      return { kind: 'wrong', wrongInARow, lockedUntil };
    }
    this.setWrong.run(wrongInARow, null, shopId);
    return { kind: 'wrong', wrongInARow };
  }
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
