/** `lianfang neighbours`. */
import type { Command } from 'commander';
import { getShop, listShops } from '../../registry/registry.js';
import { rankNeighbours } from '../../geo.js';
import { lfError } from '../../errors.js';
import { printRecords } from '../output.js';
import { dataOption, int, jsonOption, withDb } from '../common.js';

export function registerNeighbours(program: Command): void {
  program
    .command('neighbours <shopId>')
    .description('the shops alerted first when this shop raises an alarm, nearest first, with distances')
    .option('--count <n>', 'how many', int('--count', 1, 100), 10)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang neighbours S15 --json')
    .action((shopId: string, o: { count: number; data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => {
        const origin = getShop(db, shopId);
        if (!origin) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        const shops = listShops(db);
        const byId = new Map(shops.map((s) => [s.id, s]));
        return rankNeighbours(origin, shops, (id) => byId.get(id))
          .slice(0, o.count)
          .map((n, i) => ({ rank: i + 1, shopId: n.id, name: byId.get(n.id)?.name, distanceM: n.distanceM === null ? null : Math.round(n.distanceM * 10) / 10 }));
      });
      printRecords(!!o.json, rows, { rank: '#', shopId: 'SHOP', name: 'NAME', distanceM: 'DISTANCE (m)' });
    });
}
