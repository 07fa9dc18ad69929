/**
 * `lianfang neighbours` in tests: the demo street's shops the neighbour tests use, and the --json
 * rows of a run.
 */
import { cli } from './gateway.js';
import type { NeighbourRow } from '../../gateway/cli/commands/neighbours.js';

/** The middle of a 30-shop demo street (simulators/street.ts). */
export const ORIGIN = 'DEMO-S016';
/** 55.9 m down the street from ORIGIN: in ring 3 by distance. */
export const FAR = 'DEMO-S030';
/** Across the road from ORIGIN, 14.4 m: in ring 1 by distance. */
export const NEAR = 'DEMO-S017';

/** The --json rows of `lianfang neighbours SHOP` with `extra` arguments (a rule change, --config…). */
export async function neighbourRows(data: string, shopId = ORIGIN, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<NeighbourRow[]> {
  const r = await cli(['neighbours', shopId, '--data', data, '--json', ...extra], env);
  if (r.code !== 0) throw new Error(`neighbours ${shopId} ${extra.join(' ')} --json failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as NeighbourRow[];
}

/** The shop ids of ring `n`, in order. */
export const ringOf = (rows: readonly NeighbourRow[], n: number) => rows.filter((r) => r.ring === n).map((r) => r.shopId);
