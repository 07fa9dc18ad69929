/**
 * `lianfang neighbours S01`: the shops an alarm of S01 alerts, ring by ring, as the engine cuts
 * them (the same rankWithRules over the same rules, with the ring size of the configuration), and
 * the installer's rules: `--always S07` pins S07 into S01's first ring, `--never S12` keeps the two
 * apart both ways, `--reset S07` undoes either. `--svg FILE` draws the street; without it a
 * character sketch follows the table.
 */
import { type Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import { getShop, listShops, type Shop } from '../../registry/registry.js';
import { listNeighbourRules, rankWithRules, resetNeighbourRule, setNeighbourRule, type NeighbourRanking } from '../../registry/neighbour-rules.js';
import { loadConfig } from '../../../config/load.js';
import { lfError } from '../../errors.js';
import { colourWanted, note, printJson, printTable } from '../output.js';
import { cliActor, dataOption, int, jsonOption, notifyGateway, withDb } from '../common.js';
import { tr } from '../../i18n.js';
import { renderSketch, renderSvg, streetMap } from '../neighbour-map.js';

interface Options {
  data: string;
  config?: string;
  json?: boolean;
  count?: number;
  always?: string;
  never?: string;
  reset?: string;
  svg?: string;
  all?: boolean;
}

/** One row of the listing; --json prints these as they are. */
export interface NeighbourRow {
  rank: number | null;
  ring: number | null;
  shopId: string;
  name: string;
  doorPlate: string | null;
  distanceM: number | null;
  pinned: boolean;
  excluded: boolean;
}

const round1 = (m: number | null) => (m === null ? null : Math.round(m * 10) / 10);

/** The ring size and ring count the gateway would use: its configuration file and LF_* variables. */
function ringSettings(o: Options): { ringSize: number; rings: number } {
  const { escalation } = loadConfig({ file: o.config, overrides: { dataDir: o.data } });
  return { ringSize: escalation.ringSize, rings: escalation.maxRings };
}

/** Apply the one rule change asked for; a line for the installer saying what changed. */
function changeRule(db: Parameters<typeof setNeighbourRule>[0], shopId: string, o: Options): string {
  if (o.reset !== undefined) {
    return resetNeighbourRule(db, shopId, o.reset)
      ? tr(`rule for ${shopId} and ${o.reset} removed: distance decides again`, `已删除 ${shopId} 与 ${o.reset} 的规则：重新按距离排列`)
      : tr(`${shopId} had no rule about ${o.reset}: nothing changed`, `${shopId} 没有关于 ${o.reset} 的规则：未作更改`);
  }
  const [other, rule] = o.always !== undefined ? [o.always, 'always' as const] : [o.never!, 'never' as const];
  const { replaced } = setNeighbourRule(db, shopId, other, rule, cliActor());
  const old = replaced.map((r) => `${r.shopId}→${r.otherId} ${r.rule}`).join(', ');
  const was = replaced.length ? tr(` (replaces ${old})`, `（取代 ${old}）`) : '';
  return rule === 'always'
    ? tr(`${other} is always in ${shopId}'s first ring${was}`, `${other} 始终在 ${shopId} 的第一圈${was}`)
    : tr(`${shopId} and ${other} are never each other's neighbours${was}`, `${shopId} 与 ${other} 互不为邻居${was}`);
}

function rowsOf(ranking: NeighbourRanking, byId: Map<string, Shop>, rings: number, count: number | undefined): NeighbourRow[] {
  const shop = (id: string) => byId.get(id)!;
  const ringed = ranking.ranked
    .filter((n) => n.ring <= rings)
    .slice(0, count)
    .map((n, i): NeighbourRow => ({ rank: i + 1, ring: n.ring, shopId: n.id, name: shop(n.id).name, doorPlate: shop(n.id).doorPlate, distanceM: round1(n.distanceM), pinned: n.pinned, excluded: false }));
  const apart = ranking.excluded.map((n): NeighbourRow => ({ rank: null, ring: null, shopId: n.id, name: shop(n.id).name, doorPlate: shop(n.id).doorPlate, distanceM: round1(n.distanceM), pinned: false, excluded: true }));
  return [...ringed, ...apart];
}


function printListing(origin: Shop, rows: NeighbourRow[], rings: number, ringSize: number): void {
  const ringed = rows.filter((r) => !r.excluded);
  process.stdout.write(
    tr(`Neighbours of ${origin.id} ${origin.name}: rings 1–${rings} of ${ringSize} shops`, `${origin.id} ${origin.name} 的邻居：第 1–${rings} 圈，每圈 ${ringSize} 家`) + '\n',
  );
  printTable(
    ringed.map((r) => ({ ...r, shopId: r.pinned ? `${r.shopId} *` : r.shopId })),
    { ring: tr('RING', '圈'), rank: '#', shopId: tr('SHOP', '店铺'), doorPlate: tr('DOOR', '门牌'), name: tr('NAME', '名称'), distanceM: tr('DISTANCE (m)', '距离（米）') },
  );
  if (ringed.some((r) => r.pinned)) process.stdout.write(tr('* pinned into ring 1 (--always)', '* 固定在第一圈（--always）') + '\n');
  if (ringed.some((r) => r.pinned && r.ring !== 1)) {
    note(tr(`more shops are pinned than ring 1 holds (${ringSize}): the last of them are alerted in ring 2`, `固定的店铺多于第一圈的容量（${ringSize} 家）：多出的在第二圈才通知`));
  }
  const apart = rows.filter((r) => r.excluded);
  if (apart.length) {
    process.stdout.write(tr('Never neighbours (--never), both ways:', '排除（--never），双向：') + '\n');
    for (const r of apart) process.stdout.write(`  ${r.shopId} ${r.doorPlate ?? ''} ${r.name}  ${r.distanceM ?? '—'} m\n`);
  }
}

/**
 * `--all`: every shop's first ring as the engine would cut it, one line per shop (or its rows in
 * JSON): a whole street checked at once after an import.
 */
function printAll(shops: Shop[], rankingOf: (s: Shop) => NeighbourRanking, rings: number, count: number | undefined, json: boolean): void {
  const byId = new Map(shops.map((s) => [s.id, s]));
  const live = shops.filter((s) => !s.retiredAt);
  const all = live.map((s) => ({ shopId: s.id, neighbours: rowsOf(rankingOf(s), byId, rings, count).filter((r) => !r.excluded) }));
  if (json) return printJson(all);
  for (const a of all) {
    const list = a.neighbours.map((r) => `${r.shopId}${r.pinned ? '*' : ''}${r.distanceM === null ? '' : ` ${r.distanceM}`}`).join(', ');
    process.stdout.write(`${a.shopId}: ${list || tr('(none)', '（无）')}\n`);
  }
  process.stdout.write(tr(`${all.length} shops; distances in metres, * pinned (--always)`, `共 ${all.length} 家店铺；距离单位为米，* 为固定邻居（--always）`) + '\n');
}

function printSketch(lines: string[], unplaced: string[]): void {
  process.stdout.write('\n' + lines.map((l) => (l ? `  ${l}` : '')).join('\n') + '\n');
  process.stdout.write(
    tr('  @ this shop  1 2 3 its rings  * pinned  x never  . other shop  - retired', '  @ 本店  1 2 3 各圈邻居  * 固定  x 排除  . 其他店铺  - 已撤销') + '\n',
  );
  if (unplaced.length) process.stdout.write(tr(`  not on the map (no coordinates): ${unplaced.join(', ')}`, `  无坐标，未画出：${unplaced.join('，')}`) + '\n');
}

function writeSvg(file: string, svg: string): void {
  try {
    writeFileSync(file, svg);
  } catch (err) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--svg', tr(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code}`, `无法写入 ${file}：${(err as NodeJS.ErrnoException).code}`));
  }
}

export function registerNeighbours(program: Command): void {
  program
    .command('neighbours [shopId]')
    .description('the shops an alarm of this shop alerts, ring by ring, with distances; pin one in (--always) or keep one out (--never); draw the street (--svg)')
    .option('--always <shopId>', 'always alert this shop in the first ring (the farthest of the ring makes room)')
    .option('--never <shopId>', 'never alert these two shops for each other (works both ways)')
    .option('--reset <shopId>', 'undo an --always or --never rule about this shop')
    .option('--svg <file>', 'draw the street as an SVG file: every shop, the rings in three colours, pinned and excluded shops')
    .option('--config <file>', 'the gateway\'s configuration file, for its ring size (LF_* variables apply as for start)')
    .option('--count <n>', 'list at most this many (default: every ring)', int('--count', 1, 1000))
    .option('--all', "every shop's neighbours instead of one shop's (with --count 10: each first ring), to check a street after an import")
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Examples:
  $ lianfang neighbours S01
  $ lianfang neighbours S01 --always S07        # S07 is alerted first, whatever the distance
  $ lianfang neighbours S01 --never S12         # across a six-lane road: not each other's neighbours
  $ lianfang neighbours S01 --reset S07
  $ lianfang neighbours S01 --svg street.svg    # open it in a browser
  $ lianfang neighbours S01 --json
  $ lianfang neighbours --all --count 10 --json  # every shop's first ring`,
    )
    .action(async (shopId: string | undefined, o: Options) => {
      const changes = [o.always, o.never, o.reset].filter((v) => v !== undefined);
      if (changes.length > 1) throw lfError('LF_ERR_INVALID_ARGUMENT', '--always/--never/--reset', tr('give one of them at a time', '每次只能给其中一个'));
      const { ringSize, rings } = ringSettings(o);
      if (o.all) {
        if (shopId !== undefined || changes.length || o.svg) throw lfError('LF_ERR_INVALID_ARGUMENT', '--all', tr('takes no shop, rule or --svg', '不能与店铺、规则或 --svg 同用'));
        const { shops, rules } = withDb(o.data, (db) => ({ shops: listShops(db), rules: listNeighbourRules(db) }));
        return printAll(shops, (s) => rankWithRules(s, shops, rules, ringSize), rings, o.count, !!o.json);
      }
      if (shopId === undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', 'shop', tr('name the shop (or give --all)', '请指定店铺（或使用 --all）'));
      const { origin, shops, ranking, changed } = withDb(o.data, (db) => {
        const origin = getShop(db, shopId);
        if (!origin) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        const changed = changes.length ? changeRule(db, shopId, o) : null;
        const shops = listShops(db);
        return { origin, shops, changed, ranking: rankWithRules(origin, shops, listNeighbourRules(db), ringSize) };
      });
      if (changed) {
        note(changed);
        await notifyGateway(o.data);
      }
      const rows = rowsOf(ranking, new Map(shops.map((s) => [s.id, s])), rings, o.count);
      const map = streetMap(origin, shops, ranking, rings);
      if (o.svg) writeSvg(o.svg, renderSvg(map, origin, rings));
      if (o.json) return printJson(rows);
      if (origin.retiredAt) note(tr(`${origin.id} is retired: it alerts no one`, `${origin.id} 已撤销：不会通知任何店铺`));
      printListing(origin, rows, rings, ringSize);
      if (o.svg) note(tr(`street drawn to ${o.svg}`, `街道图已写入 ${o.svg}`));
      else printSketch(renderSketch(map, colourWanted()), map.unplaced);
    });
}
