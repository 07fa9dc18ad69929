/**
 * Loads the configuration once at start-up: schema defaults ← `--config FILE` ← `LF_*` environment
 * variables ← command-line flags; validated against config/schema.ts, then deep-frozen.
 */
import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, type Config, type ConfigInput } from './schema.js';
import { lfError } from '../gateway/errors.js';

/** `escalation.ackDeadlineMs` → `LF_ESCALATION_ACK_DEADLINE_MS`. */
export function envNameFor(path: readonly string[]): string {
  return 'LF_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

interface Leaf {
  path: string[];
  schema: TSchema;
}

/** Every leaf field of the schema, with its path. */
export function configLeaves(schema: TSchema = ConfigSchema, prefix: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  const props = (schema as { properties?: Record<string, TSchema> }).properties ?? {};
  for (const [key, sub] of Object.entries(props)) {
    if ((sub as { type?: string }).type === 'object') out.push(...configLeaves(sub, [...prefix, key]));
    else out.push({ path: [...prefix, key], schema: sub });
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

function coerceEnv(leaf: Leaf, raw: string): unknown {
  const type = (leaf.schema as { type?: string }).type;
  if (type === 'integer' || type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) {
      throw lfError('LF_ERR_CONFIG_INVALID', `${envNameFor(leaf.path)}=${JSON.stringify(raw)} is not a number`);
    }
    return n;
  }
  if (type === 'boolean') return raw === 'true' || raw === '1';
  // A list is comma-separated (`LF_HTTP_HEALTH_DETAIL_FROM=127.0.0.1,10.0.0.0/24`).
  if (type === 'array') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  return raw;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface LoadOptions {
  /** Path of a JSON configuration file (`--config`). */
  file?: string;
  /** Environment to read `LF_*` overrides from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Overrides from command-line flags; they win over everything else. */
  overrides?: ConfigInput;
}

/** Build, validate and freeze the configuration. Throws LF_ERR_CONFIG_* with the offending field. */
export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  let merged: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
      merged = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw lfError('LF_ERR_CONFIG_FILE', opts.file, (err as Error).message);
    }
    if (!merged || typeof merged !== 'object' || Array.isArray(merged)) {
      throw lfError('LF_ERR_CONFIG_FILE', opts.file, 'the top level must be a JSON object');
    }
  }
  const env = opts.env ?? process.env;
  const fromEnv: Record<string, unknown> = {};
  for (const leaf of configLeaves()) {
    const raw = env[envNameFor(leaf.path)];
    if (raw !== undefined) setPath(fromEnv, leaf.path, coerceEnv(leaf, raw));
  }
  merged = deepMerge(merged, fromEnv);
  merged = deepMerge(merged, (opts.overrides ?? {}) as Record<string, unknown>);
  const withDefaults = Value.Default(ConfigSchema, structuredClone(merged)) as unknown;
  if (!Value.Check(ConfigSchema, withDefaults)) {
    const first = [...Value.Errors(ConfigSchema, withDefaults)][0];
    const where = first ? first.path.replace(/^\//, '').replace(/\//g, '.') || '(root)' : '(root)';
    throw lfError('LF_ERR_CONFIG_INVALID', `${where}: ${first?.message ?? 'invalid'}`);
  }
  return deepFreeze(withDefaults as Config);
}
