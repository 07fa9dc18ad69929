/**
 * The installer's neighbour rules (`lianfang neighbours S01 --always S07 | --never S12`) and the one
 * ranking that applies them, shared by the alarm engine (who is alerted) and the CLI (who would be):
 * - `always` (S01 → S07): S07 is in S01's first ring, whatever the distance; ring 1 still holds
 *   ringSize shops, so a pinned shop pushes the farthest one out. It is S01's rule, not S07's.
 * - `never` (S01 – S12): the two are no one another's neighbour, both ways (a six-lane road between
 *   them); stored once, read both ways.
 * - a retired shop is never anyone's neighbour, and a retired origin has none.
 */
import type { Db } from '../store/db.js';
import { lfError } from '../errors.js';
import { distanceM, rankNeighbours, type Located, type Neighbour } from '../geo.js';
import { getShop } from './registry.js';

export const NEIGHBOUR_RULE_KINDS = ['always', 'never'] as const;
export type NeighbourRuleKind = (typeof NEIGHBOUR_RULE_KINDS)[number];

export interface NeighbourRule {
  shopId: string;
  otherId: string;
  rule: NeighbourRuleKind;
  createdAt: string;
  createdBy: string;
}

type Row = Record<string, unknown>;

const ruleFrom = (r: Row): NeighbourRule => ({
  shopId: r.shop_id as string,
  otherId: r.other_id as string,
  rule: r.rule as NeighbourRuleKind,
  createdAt: r.created_at as string,
  createdBy: r.created_by as string,
});

export function listNeighbourRules(db: Db): NeighbourRule[] {
  return (db.prepare('SELECT * FROM neighbour_rules ORDER BY shop_id, other_id').all() as Row[]).map(ruleFrom);
}

/** A shop a rule may name: it exists and is not retired. */
function liveShop(db: Db, id: string): void {
  const shop = getShop(db, id);
  if (!shop) throw lfError('LF_ERR_NOT_FOUND', 'shop', id);
  if (shop.retiredAt) throw lfError('LF_ERR_INVALID_ARGUMENT', 'shop', `${id} was retired on ${shop.retiredAt}`);
}

/**
 * The rules of the pair that a new rule for it contradicts: any rule from shopId to otherId, and
 * the reverse one when either is `never` (a reverse `always` stays: two shops may pin each other).
 */
const CONFLICTING = `DELETE FROM neighbour_rules
  WHERE (shop_id = @shopId AND other_id = @otherId)
     OR (shop_id = @otherId AND other_id = @shopId AND (rule = 'never' OR @rule = 'never'))
  RETURNING *`;

export interface RuleChange {
  rule: NeighbourRule;
  /** The rules of the pair it replaced. */
  replaced: NeighbourRule[];
}

/** Set `rule` for the pair (shopId, otherId), replacing the pair's rules it contradicts. */
export function setNeighbourRule(db: Db, shopId: string, otherId: string, rule: NeighbourRuleKind, actor: string): RuleChange {
  if (!NEIGHBOUR_RULE_KINDS.includes(rule)) throw lfError('LF_ERR_INVALID_ARGUMENT', 'rule', `one of ${NEIGHBOUR_RULE_KINDS.join(', ')}`);
  if (shopId === otherId) throw lfError('LF_ERR_INVALID_ARGUMENT', 'shop', 'a shop is not its own neighbour');
  return db.transaction(() => {
    liveShop(db, shopId);
    liveShop(db, otherId);
    const replaced = (db.prepare(CONFLICTING).all({ shopId, otherId, rule }) as Row[]).map(ruleFrom);
    const row = db
      .prepare('INSERT INTO neighbour_rules (shop_id, other_id, rule, created_at, created_by) VALUES (?, ?, ?, ?, ?) RETURNING *')
      .get(shopId, otherId, rule, new Date().toISOString(), actor) as Row;
    return { rule: ruleFrom(row), replaced };
  }).immediate();
}

/**
 * Undo the rule shopId holds about otherId: its own rule of the pair and a `never` either way
 * (a `never` set from otherId's side keeps shopId apart just the same). Whether there was one.
 */
export function resetNeighbourRule(db: Db, shopId: string, otherId: string): boolean {
  const info = db
    .prepare("DELETE FROM neighbour_rules WHERE (shop_id = ? AND other_id = ?) OR (shop_id = ? AND other_id = ? AND rule = 'never')")
    .run(shopId, otherId, otherId, shopId);
  return info.changes > 0;
}

/** What the ranking needs of a shop. */
export interface RankedShop extends Located {
  retiredAt: string | null;
}

export interface RankedNeighbour extends Neighbour {
  /** 1 for the first ringSize, 2 for the next ringSize, …: the ring the engine alerts it in. */
  ring: number;
  /** In ring 1 by an `always` rule of the origin. */
  pinned: boolean;
}

export interface NeighbourRanking {
  /** Every candidate, in the order the rings are cut from: pinned shops first, then nearest first. */
  ranked: RankedNeighbour[];
  /** The shops kept apart from the origin by a `never` rule (either way), nearest first. */
  excluded: Neighbour[];
}

const byDistanceThenId = (a: Neighbour, b: Neighbour) =>
  (a.distanceM ?? Infinity) - (b.distanceM ?? Infinity) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** `origin`'s neighbours with the installer's rules applied, in rings of `ringSize`. */
export function rankWithRules(origin: RankedShop, shops: Iterable<RankedShop>, rules: readonly NeighbourRule[], ringSize: number): NeighbourRanking {
  const live = new Map<string, RankedShop>();
  for (const s of shops) if (!s.retiredAt) live.set(s.id, s);
  const never = new Set<string>();
  const always = new Set<string>();
  for (const r of rules) {
    if (r.rule === 'never' && (r.shopId === origin.id || r.otherId === origin.id)) never.add(r.shopId === origin.id ? r.otherId : r.shopId);
    else if (r.rule === 'always' && r.shopId === origin.id) always.add(r.otherId);
  }
  const from = (id: string): Neighbour => {
    const s = live.get(id)!;
    const located = origin.lat !== null && origin.lon !== null && s.lat !== null && s.lon !== null;
    return { id, distanceM: located ? distanceM(origin.lat!, origin.lon!, s.lat!, s.lon!) : null };
  };
  const excluded = [...never].filter((id) => live.has(id)).map(from).sort(byDistanceThenId);
  if (origin.retiredAt) return { ranked: [], excluded };
  const pinned = [...always].filter((id) => live.has(id) && !never.has(id) && id !== origin.id).map(from).sort(byDistanceThenId);
  const rest = rankNeighbours(origin, live.values(), (id) => live.get(id)).filter((n) => !always.has(n.id) && !never.has(n.id));
  const ranked = [...pinned, ...rest].map((n, i) => ({ ...n, ring: Math.floor(i / ringSize) + 1, pinned: i < pinned.length }));
  return { ranked, excluded };
}
