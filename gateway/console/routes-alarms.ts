/**
 * The queue and one alarm: the open alarms and faults of a scope (what the page loads on start and
 * after every reconnect, to catch up by `rev` on what the live feed missed), and an alarm's whole
 * picture: the shop's record, the neighbours alerted and their answers, the timeline from the
 * audit trail, and the other open alarms nearby for the map. Test alarms never reach a console.
 */
import type { Db } from '../store/db.js';
import { AlarmRepo, type AlarmRow } from '../alarm/alarm-repo.js';
import { faultMessage, type FaultRecord } from '../faults/fault-store.js';
import { distanceM } from '../geo.js';
import { iso } from '../clock.js';
import { lfError } from '../errors.js';
import { inScope, requireScope, type ConsoleDeps, type Route, type ApiRequest } from './api.js';
import type { AlarmDetail, AlarmList, NeighbourAnswer, Scope, ShopCard, TimelineEntry } from './contract.js';
import type { Shop } from '../registry/registry.js';

/** How far from an alarm other open alarms and shops are drawn on its map. */
const MAP_RADIUS_M = 500;

const repos = new WeakMap<Db, AlarmRepo>();
const repoOf = (db: Db) => {
  let r = repos.get(db);
  if (!r) repos.set(db, (r = new AlarmRepo(db)));
  return r;
};

/** A fault is in a scope when it is of the scope's station (or compound), or of the whole gateway. */
export function faultInScope(scope: Scope, f: Pick<FaultRecord, 'stationId' | 'compoundId'>): boolean {
  if (!f.stationId) return true;
  return inScope(scope, f.stationId, f.compoundId);
}

function openAlarmRows(db: Db, scope: Scope, closedSince: string | null): AlarmRow[] {
  const col = scope.kind === 'station' ? 'station_id' : 'compound_id';
  const ids = db
    .prepare(
      `SELECT id FROM alarms WHERE ${col} = ? AND test = 0 AND (state <> 'closed' OR (? IS NOT NULL AND closed_at >= ?))
       ORDER BY raised_at`,
    )
    .all(scope.id, closedSince, closedSince) as { id: string }[];
  const repo = repoOf(db);
  return ids.map((r) => repo.get(r.id)).filter((a): a is AlarmRow => a !== undefined);
}

export function shopCard(s: Shop): ShopCard {
  return {
    id: s.id,
    name: s.name,
    address: s.address,
    doorPlate: s.doorPlate,
    poleNumber: s.poleNumber,
    grid: s.grid,
    sector: s.sector,
    ownerName: s.ownerName,
    ownerPhone: s.ownerPhone,
    dutyName: s.dutyName,
    dutyPhone: s.dutyPhone,
    cameraIds: s.cameraIds,
    lat: s.lat,
    lon: s.lon,
    stationId: s.stationId,
    compoundId: s.compoundId,
  };
}

function listAlarms(deps: ConsoleDeps, req: ApiRequest): AlarmList {
  const scope = requireScope(req);
  const since = req.query.get('closedSince');
  if (since !== null && Number.isNaN(Date.parse(since))) throw lfError('LF_ERR_BAD_PAYLOAD', 'closedSince', 'not an ISO time');
  const at = iso(deps.clock.now());
  return {
    scope,
    alarms: openAlarmRows(deps.db, scope, since ? new Date(since).toISOString() : null).map((a) => deps.engine.consoleView(a)),
    faults: deps.faults
      .openFaults()
      .filter((f) => faultInScope(scope, f))
      .map((f) => faultMessage(f, at, deps.gatewayId)),
    at,
  };
}

/** The alarm, if the caller may see it; otherwise "not found" (another station's alarm is not confirmed to exist). */
function visibleAlarm(deps: ConsoleDeps, req: ApiRequest, id: string): { alarm: AlarmRow; scope: Scope } {
  const alarm = repoOf(deps.db).get(id);
  const scope = alarm && !alarm.test ? req.scopes.find((s) => inScope(s, alarm.stationId, alarm.compoundId)) : undefined;
  if (!alarm || !scope) throw lfError('LF_ERR_NOT_FOUND', 'alarm', id);
  return { alarm, scope };
}

function alarmDetail(deps: ConsoleDeps, req: ApiRequest): AlarmDetail {
  const { alarm, scope } = visibleAlarm(deps, req, req.params.id!);
  const { db, registry, engine } = deps;
  const shop = registry.shops.get(alarm.shopId);
  if (!shop) throw lfError('LF_ERR_NOT_FOUND', 'shop', alarm.shopId);
  const latest = new Map<string, { reply: NeighbourAnswer['reply']; at: string }>();
  for (const r of db.prepare('SELECT shop_id AS shopId, reply, at FROM alarm_replies WHERE alarm_id = ? ORDER BY id').all(alarm.id) as { shopId: string; reply: NeighbourAnswer['reply']; at: string }[]) {
    latest.set(r.shopId, { reply: r.reply, at: r.at });
  }
  const neighbours: NeighbourAnswer[] = repoOf(db)
    .recipients(alarm.id)
    .map((r) => {
      const s = registry.shops.get(r.shopId);
      const answer = latest.get(r.shopId);
      return {
        shopId: r.shopId,
        name: s?.name ?? r.shopId,
        ring: r.ring,
        distanceM: r.distanceM === null ? null : Math.round(r.distanceM),
        lat: s?.lat ?? null,
        lon: s?.lon ?? null,
        reply: answer?.reply ?? null,
        repliedAt: answer?.at ?? null,
      };
    });
  const timeline: TimelineEntry[] = (
    db.prepare('SELECT at, actor, action, from_state AS fromState, to_state AS toState, rev, detail FROM audit WHERE alarm_id = ? ORDER BY id').all(alarm.id) as (Omit<TimelineEntry, 'detail'> & { detail: string })[]
  ).map((r) => ({ ...r, detail: safeJson(r.detail) }));
  // The consoles' hop (tier 2): when each station's or compound's console first had the alarm.
  const deliveries = db
    .prepare(
      `SELECT recipient_id AS scopeId, min(delivered_at) AS at, delivered_by AS by, min(rev) AS rev FROM outbox
       WHERE alarm_id = ? AND recipient_kind = 'station' AND delivered_at IS NOT NULL GROUP BY recipient_id`,
    )
    .all(alarm.id) as { scopeId: string; at: string; by: string | null; rev: number }[];
  for (const d of deliveries) {
    timeline.push({ at: d.at, actor: d.by ?? 'gateway', action: 'delivered', fromState: null, toState: null, rev: d.rev, detail: { scopeId: d.scopeId, scopeName: registry.stations.get(d.scopeId)?.name ?? d.scopeId } });
  }
  timeline.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const near = (lat: number | null, lon: number | null) => (shop.lat !== null && shop.lon !== null && lat !== null && lon !== null ? distanceM(shop.lat, shop.lon, lat, lon) : null);
  const nearby = openAlarmRows(db, scope, null)
    .filter((a) => a.id !== alarm.id)
    .map((a) => {
      const s = registry.shops.get(a.shopId);
      return { alarm: engine.consoleView(a), lat: s?.lat ?? null, lon: s?.lon ?? null, distanceM: near(s?.lat ?? null, s?.lon ?? null) };
    })
    .filter((n) => n.distanceM !== null && n.distanceM <= MAP_RADIUS_M)
    .sort((a, b) => a.distanceM! - b.distanceM!)
    .map((n) => ({ ...n, distanceM: Math.round(n.distanceM!) }));
  const street = [...registry.shops.values()]
    .filter((s) => !s.retiredAt && s.id !== shop.id)
    .map((s) => ({ s, d: near(s.lat, s.lon) }))
    .filter((x) => x.d !== null && x.d <= MAP_RADIUS_M)
    .map(({ s }) => ({ id: s.id, name: s.name, lat: s.lat!, lon: s.lon! }));
  return { alarm: engine.consoleView(alarm), shop: shopCard(shop), neighbours, timeline, nearby, street };
}

function safeJson(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export const ALARM_ROUTES: Route[] = [
  { method: 'GET', path: '/api/alarms', summary: 'open alarms and faults of a scope (?scope=, ?closedSince=)', handler: listAlarms },
  { method: 'GET', path: '/api/alarms/:id', summary: "an alarm with its shop, neighbours' answers, timeline and map", handler: alarmDetail },
];
