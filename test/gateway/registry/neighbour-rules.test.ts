/**
 * The installer's neighbour rules (gateway/registry/neighbour-rules.ts): storing them (both shops
 * live, one rule per pair and direction, a never read both ways, reset) and the one ranking the
 * engine and the CLI share (pinned first in a ring 1 that keeps its size, never both ways, retired
 * shops nobody's neighbour, rings 2 and 3 cut from the rest).
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { addShop, addStation, listShops, type Shop } from '../../../gateway/registry/registry.js';
import {
  listNeighbourRules,
  rankWithRules,
  resetNeighbourRule,
  setNeighbourRule,
  type NeighbourRule,
  type RankedShop,
} from '../../../gateway/registry/neighbour-rules.js';
import { rankNeighbours } from '../../../gateway/geo.js';
import { streetPosition } from '../../../simulators/street.js';

const id = (i: number) => `S${String(i + 1).padStart(2, '0')}`;

/** A street of `n` shops (S01…), as the simulated street lays them out. */
function street(n: number): RankedShop[] {
  return Array.from({ length: n }, (_, i) => ({ id: id(i), ...streetPosition(i), neighbours: [], retiredAt: null }));
}

const rule = (shopId: string, otherId: string, kind: NeighbourRule['rule']): NeighbourRule => ({ shopId, otherId, rule: kind, createdAt: '', createdBy: 'test' });

function db(t: { teardown(fn: () => unknown): void }): Db {
  const dir = mkdtempSync(join(tmpdir(), 'lf-nr-'));
  const d = openDatabase(dir);
  t.teardown(() => {
    d.close();
    rmSync(dir, { recursive: true, force: true });
  });
  addStation(d, { id: 'PS1', name: 'PS1' });
  for (const s of street(6)) addShop(d, { id: s.id, name: s.id, address: 'Changping Rd', lat: s.lat!, lon: s.lon!, stationId: 'PS1' });
  return d;
}

t.test('without rules the ranking is the distance ranking, cut into rings', async (t) => {
  const shops = street(40);
  const origin = shops[20];
  const plain = rankNeighbours(origin, shops, (x) => shops.find((s) => s.id === x));
  const { ranked, excluded } = rankWithRules(origin, shops, [], 10);
  t.same(ranked.map((n) => n.id), plain.map((n) => n.id));
  t.same(ranked.map((n) => n.distanceM), plain.map((n) => n.distanceM));
  t.same(ranked.slice(0, 30).map((n) => n.ring), [...Array(10).fill(1), ...Array(10).fill(2), ...Array(10).fill(3)]);
  t.notOk(ranked.some((n) => n.pinned));
  t.same(excluded, []);
});

t.test('an always shop is first in ring 1, which keeps its size; rings 2 and 3 follow from the rest', async (t) => {
  const shops = street(40);
  const origin = shops[0];
  const plain = rankWithRules(origin, shops, [], 10).ranked.map((n) => n.id);
  const far = id(39);
  t.notOk(plain.slice(0, 30).includes(far), 'the far shop is in no ring without a rule');
  const { ranked } = rankWithRules(origin, shops, [rule(origin.id, far, 'always')], 10);
  t.equal(ranked[0].id, far);
  t.equal(ranked[0].pinned, true);
  t.equal(ranked[0].ring, 1);
  t.ok(ranked[0].distanceM! > 100, 'with its real distance');
  const ring1 = ranked.filter((n) => n.ring === 1).map((n) => n.id);
  t.equal(ring1.length, 10, 'ring 1 still holds 10 shops');
  t.same(ring1.slice(1), plain.slice(0, 9), 'the nearest nine follow');
  t.equal(ranked.find((n) => n.id === plain[9])!.ring, 2, 'the tenth nearest is pushed into ring 2');
  t.same(ranked.filter((n) => n.ring === 2).map((n) => n.id), plain.slice(9, 19));
  t.same(ranked.filter((n) => n.ring === 3).map((n) => n.id), plain.slice(19, 29));
  t.equal(ranked.length, plain.length, 'no shop is lost or doubled');
});

t.test('several pinned shops: nearest of them first; an always rule belongs to its origin only', async (t) => {
  const shops = street(40);
  const rules = [rule('S01', 'S40', 'always'), rule('S01', 'S30', 'always')];
  t.same(rankWithRules(shops[0], shops, rules, 10).ranked.slice(0, 2).map((n) => n.id), ['S30', 'S40']);
  const s40 = rankWithRules(shops[39], shops, rules, 10).ranked;
  t.notOk(s40.find((n) => n.id === 'S01')!.pinned, 'S40 does not pin S01 back');
});

t.test('never works both ways and is listed apart', async (t) => {
  const shops = street(20);
  const rules = [rule('S01', 'S02', 'never')];
  const a = rankWithRules(shops[0], shops, rules, 10);
  t.notOk(a.ranked.some((n) => n.id === 'S02'), 'S02 is not S01\'s neighbour');
  t.same(a.excluded.map((n) => n.id), ['S02']);
  t.ok(a.excluded[0].distanceM! > 0);
  t.equal(a.ranked.filter((n) => n.ring === 1).length, 10, 'ring 1 is filled from the next nearest');
  const b = rankWithRules(shops[1], shops, rules, 10);
  t.notOk(b.ranked.some((n) => n.id === 'S01'), 'nor is S01 S02\'s');
  t.same(b.excluded.map((n) => n.id), ['S01']);
});

t.test('retired shops are nobody\'s neighbour, pinned or not, and a retired origin has none', async (t) => {
  const shops = street(20).map((s) => (s.id === 'S02' || s.id === 'S15' ? { ...s, retiredAt: '2026-01-01T00:00:00.000Z' } : s));
  const { ranked } = rankWithRules(shops[0], shops, [rule('S01', 'S15', 'always')], 10);
  t.notOk(ranked.some((n) => n.id === 'S02' || n.id === 'S15'));
  t.notOk(ranked.some((n) => n.pinned));
  t.same(rankWithRules(shops[1], shops, [], 10).ranked, []);
});

t.test('a shop without coordinates: its installer list, with its rules applied', async (t) => {
  const shops = street(10);
  const origin: RankedShop = { id: 'X', lat: null, lon: null, neighbours: ['S03', 'S04', 'S05'], retiredAt: null };
  const all = [...shops, origin];
  const { ranked, excluded } = rankWithRules(origin, all, [rule('X', 'S09', 'always'), rule('S04', 'X', 'never')], 10);
  t.same(ranked.map((n) => n.id), ['S09', 'S03', 'S05']);
  t.same(ranked.map((n) => n.distanceM), [null, null, null]);
  t.same(excluded.map((n) => n.id), ['S04']);
});

t.test('setNeighbourRule: both shops live and distinct; a new rule replaces what it contradicts', async (t) => {
  const d = db(t);
  t.throws(() => setNeighbourRule(d, 'S01', 'S01', 'always', 'cli:test'), { code: 'LF_ERR_INVALID_ARGUMENT' });
  t.throws(() => setNeighbourRule(d, 'S01', 'NOPE', 'always', 'cli:test'), { code: 'LF_ERR_NOT_FOUND' });
  t.throws(() => setNeighbourRule(d, 'NOPE', 'S01', 'never', 'cli:test'), { code: 'LF_ERR_NOT_FOUND' });
  t.throws(() => setNeighbourRule(d, 'S01', 'S02', 'sometimes' as never, 'cli:test'), { code: 'LF_ERR_INVALID_ARGUMENT' });
  d.prepare("UPDATE shops SET retired_at = '2026-01-01T00:00:00.000Z' WHERE id = 'S06'").run();
  t.throws(() => setNeighbourRule(d, 'S01', 'S06', 'always', 'cli:test'), { code: 'LF_ERR_INVALID_ARGUMENT' }, 'a retired shop gets no rule');
  t.same(listNeighbourRules(d), []);

  const set = setNeighbourRule(d, 'S01', 'S05', 'always', 'cli:ann');
  t.match(set, { rule: { shopId: 'S01', otherId: 'S05', rule: 'always', createdBy: 'cli:ann' }, replaced: [] });
  t.match(set.rule.createdAt, /^\d{4}-/);
  t.same(setNeighbourRule(d, 'S05', 'S01', 'always', 'cli:ann').replaced, [], 'two shops may pin each other');
  t.equal(listNeighbourRules(d).length, 2);

  const never = setNeighbourRule(d, 'S05', 'S01', 'never', 'cli:bob');
  t.same(never.replaced.map((r) => `${r.shopId}>${r.otherId}:${r.rule}`).sort(), ['S01>S05:always', 'S05>S01:always'], 'a never replaces both directions');
  t.same(listNeighbourRules(d).map((r) => [r.shopId, r.otherId, r.rule]), [['S05', 'S01', 'never']]);

  const again = setNeighbourRule(d, 'S01', 'S05', 'always', 'cli:ann');
  t.same(again.replaced.map((r) => r.rule), ['never'], 'an always replaces a never set from the other side');
  t.same(listNeighbourRules(d).map((r) => [r.shopId, r.otherId, r.rule]), [['S01', 'S05', 'always']]);
});

t.test('resetNeighbourRule: the shop\'s own rule and a never either way; reports whether there was one', async (t) => {
  const d = db(t);
  setNeighbourRule(d, 'S01', 'S02', 'always', 'cli:test');
  setNeighbourRule(d, 'S02', 'S01', 'always', 'cli:test');
  setNeighbourRule(d, 'S03', 'S01', 'never', 'cli:test');
  t.equal(resetNeighbourRule(d, 'S01', 'S02'), true);
  t.same(listNeighbourRules(d).map((r) => [r.shopId, r.otherId]), [['S02', 'S01'], ['S03', 'S01']], 'S02 still pins S01');
  t.equal(resetNeighbourRule(d, 'S01', 'S03'), true, 'a never set from the other side is undone too');
  t.equal(resetNeighbourRule(d, 'S01', 'S03'), false, 'nothing left to reset');
  t.equal(resetNeighbourRule(d, 'S01', 'S02'), false, 'S02\'s own always of S01 is not S01\'s to reset');
  t.same(listNeighbourRules(d).map((r) => [r.shopId, r.otherId]), [['S02', 'S01']]);
});

t.test('the stored rules rank as the pure function says', async (t) => {
  const d = db(t);
  setNeighbourRule(d, 'S01', 'S06', 'always', 'cli:test');
  setNeighbourRule(d, 'S02', 'S01', 'never', 'cli:test');
  const shops: Shop[] = listShops(d);
  const { ranked, excluded } = rankWithRules(shops[0], shops, listNeighbourRules(d), 2);
  t.same(ranked.map((n) => [n.id, n.ring, n.pinned]), [['S06', 1, true], ['S03', 1, false], ['S04', 2, false], ['S05', 2, false]]);
  t.same(excluded.map((n) => n.id), ['S02']);
});
