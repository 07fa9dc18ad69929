/**
 * PINs in bulk (`shop pin --from pins.csv`, columns shop, pin, duress-pin): every row checked as
 * `shop pin` checks one (gateway/alarm/pins.ts), all set in one transaction or none. A PIN is
 * never echoed in an error, only its line and column.
 */
import type { Db } from '../../store/db.js';
import { getShop } from '../../registry/registry.js';
import { setShopPins, validatePins } from '../../alarm/pins.js';
import { lfError } from '../../errors.js';
import { applyRows, FirstLines, RowErrors, type ColumnSpec, type CsvRecord } from './csv.js';

export const PIN_COLUMN_SPEC: ColumnSpec = { known: ['shop', 'pin', 'duress-pin'], required: ['shop', 'pin', 'duress-pin'] };

const pinColumnOf = (message: string) => (/duress PIN/.test(message) ? 'duress-pin' : /PIN/.test(message) ? 'pin' : 'shop');

/** Set the PINs of every row, or of none when a row is bad (or on a dry run). Returns the shops. */
export function importPins(db: Db, gatewayKey: Buffer, records: readonly CsvRecord[], errors: RowErrors, opts: { dryRun: boolean; actor: string }): string[] {
  const shops: string[] = [];
  const ids = new FirstLines();
  const at = new Date().toISOString();
  applyRows(db, () => {
    for (const { line, cells } of records) {
      const shopId = cells.get('shop')!;
      if (!ids.claim(shopId, line, 'shop', errors)) continue;
      const pins = errors.attempt(line, pinColumnOf, () => validatePins(cells.get('pin'), cells.get('duress-pin')));
      const known = errors.attempt(line, pinColumnOf, () => {
        if (!getShop(db, shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        return true;
      });
      if (!pins || !known) continue;
      setShopPins(db, gatewayKey, shopId, pins, opts.actor, at);
      shops.push(shopId);
    }
    return errors.size === 0 && !opts.dryRun;
  });
  return shops;
}
