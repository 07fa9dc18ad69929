/**
 * The console's JSON API: a table of routes (method, path pattern, handler), each run with the
 * caller's session already checked. Nothing under `/api/` answers without a session (401), a
 * state-changing request without the session's CSRF token (403), and a handler sees only the
 * scopes its caller may see (`scopeOf` / `requireScope`): the API enforces the scope, not the page.
 *
 * Routes are grouped by subject in routes-*.ts files; ROUTES in console-http.ts lists them all, and
 * the test that asks every route anonymously walks that list.
 */
import type { Db } from '../store/db.js';
import type { Clock } from '../clock.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../logger.js';
import type { Counters } from '../metrics.js';
import type { RegistryCache } from '../registry/registry-cache.js';
import type { GroupCommitWriter } from '../ingest/writer.js';
import type { AlarmEngine } from '../alarm/engine.js';
import type { FaultStore } from '../faults/fault-store.js';
import type { User } from '../registry/registry.js';
import type { ConsoleSession } from './sessions.js';
import type { Scope } from './contract.js';
import { lfError } from '../errors.js';

/** What a route handler may use: the gateway's parts, listed by the composition root. */
export interface ConsoleDeps {
  db: Db;
  registry: RegistryCache;
  writer: GroupCommitWriter;
  engine: AlarmEngine;
  faults: FaultStore;
  clock: Clock;
  config: Readonly<Config>;
  log: Logger;
  counters: Counters;
  gatewayId: string;
}

export interface ApiRequest {
  method: string;
  /** Path parameters (`:id` in the pattern). */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body of a POST (an object; {} when there was none). */
  body: Record<string, unknown>;
  session: ConsoleSession;
  user: User;
  /** Every scope the caller may see (an admin: all of them). */
  scopes: Scope[];
  /** The actor the audit trail names: `user:<name>`. */
  actor: string;
}

/** A reply other than JSON (CSV, a printable page). */
export class RawReply {
  constructor(
    readonly body: string | Buffer,
    readonly contentType: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

export interface Route {
  method: 'GET' | 'POST';
  /** A pattern such as `/api/alarms/:id`; `:name` matches one path segment. */
  path: string;
  /** What the route is for (shown in the anonymous-401 test's output and the docs). */
  summary: string;
  handler: (deps: ConsoleDeps, req: ApiRequest) => unknown;
}

/** Every scope (station or compound) a user may see: an officer their own, an admin all. */
export function scopesOf(user: User, registry: RegistryCache, defaultZone: string): Scope[] {
  const toScope = (id: string): Scope | null => {
    const st = registry.stations.get(id);
    if (!st) return null;
    const parent = st.compoundOf ? registry.stations.get(st.compoundOf) : undefined;
    const timeZone = st.timeZone ?? parent?.timeZone ?? defaultZone;
    return { id: st.id, name: st.name, kind: st.compoundOf ? 'compound' : 'station', stationId: st.compoundOf ?? st.id, timeZone };
  };
  if (user.role === 'admin') return [...registry.stations.keys()].map(toScope).filter((s): s is Scope => s !== null);
  if (user.role !== 'officer' || !user.stationId) return [];
  const own = toScope(user.stationId);
  return own ? [own] : [];
}

/**
 * The scope a request asks for (`?scope=` or a body's `scope`), which the caller must be allowed;
 * without one, the caller's first scope. Throws LF_ERR_SCOPE.
 */
export function requireScope(req: ApiRequest, asked?: unknown): Scope {
  const id = typeof asked === 'string' && asked ? asked : (req.query.get('scope') ?? (typeof req.body.scope === 'string' ? req.body.scope : ''));
  if (!id) {
    const first = req.scopes[0];
    if (!first) throw lfError('LF_ERR_SCOPE', req.user.name, 'any station');
    return first;
  }
  const s = req.scopes.find((x) => x.id === id);
  if (!s) throw lfError('LF_ERR_SCOPE', req.user.name, id);
  return s;
}

/**
 * True when a shop of `stationId` (and `compoundId`) is inside `scope`: a station's scope holds
 * every shop of the station, a compound's only the compound's.
 */
export function inScope(scope: Scope, stationId: string, compoundId: string | null | undefined): boolean {
  return scope.kind === 'station' ? stationId === scope.id : compoundId === scope.id;
}

/** SQL for "a row of station_id/compound_id columns is in this scope", with its one parameter. */
export function scopeSql(scope: Scope, stationCol = 'station_id', compoundCol = 'compound_id'): { sql: string; param: string } {
  return scope.kind === 'station' ? { sql: `${stationCol} = ?`, param: scope.id } : { sql: `${compoundCol} = ?`, param: scope.id };
}

/** Match `path` against a route pattern; the parameters, or null. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/');
  const a = path.split('/');
  if (p.length !== a.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i]!.startsWith(':')) {
      if (!a[i]) return null;
      try {
        params[p[i]!.slice(1)] = decodeURIComponent(a[i]!);
      } catch {
        return null;
      }
    } else if (p[i] !== a[i]) return null;
  }
  return params;
}
