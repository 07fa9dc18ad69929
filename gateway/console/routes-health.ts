/**
 * Device health and maintenance tickets (issue 11, "Health and numbers"): the devices of a scope
 * with their open faults and when each was last tested, and the tickets, assigned and fixed from
 * the page through the fault store's one ticket path (changeTicket: validated by ticketRequest,
 * run in the writer, audited, sent to every console as a new rev). A ticket is changed only by an
 * officer who can see its fault: another station's fault is "not found", as if it did not exist.
 */
import { inScope, requireScope, type ApiRequest, type ConsoleDeps, type Route } from './api.js';
import type { DevicesHealth, Ticket, TicketList } from './contract-reports.js';
import { devicesHealth } from '../reports/console-stats.js';
import { changeTicket, ticketRequest } from '../faults/fault-tickets.js';
import { FAULT_TEXT, ticketOf, type FaultRecord } from '../faults/fault-store.js';
import { lfError } from '../errors.js';

function ticketView(deps: ConsoleDeps, f: FaultRecord): Ticket {
  return {
    faultId: f.faultId,
    rev: f.rev,
    kind: f.kind,
    text: FAULT_TEXT[f.kind] ?? { en: f.kind, zh: f.kind },
    deviceId: f.deviceId,
    subject: f.subject,
    shopId: f.shopId,
    shopName: f.shopId ? (deps.registry.shops.get(f.shopId)?.name ?? null) : null,
    raisedAt: f.raisedAt,
    clearedAt: f.clearedAt,
    ticket: ticketOf(f),
  };
}

/** The fault of `:faultId` (its whole id), if the caller may see it: a fault of their scope's shops, or one of the gateway's own. */
function visibleFault(deps: ConsoleDeps, req: ApiRequest): FaultRecord {
  const id = req.params.faultId ?? '';
  const f = deps.faults.get(id);
  const visible = f && (f.stationId === null || req.scopes.some((s) => inScope(s, f.stationId!, f.compoundId)));
  if (!f || !visible) throw lfError('LF_ERR_NOT_FOUND', 'fault', id);
  return f;
}

async function change(deps: ConsoleDeps, req: ApiRequest, change: Record<string, unknown>): Promise<Ticket> {
  const f = visibleFault(deps, req);
  const after = await changeTicket(deps.faults, deps.writer, ticketRequest({ faultId: f.faultId, change, actor: req.actor }));
  return ticketView(deps, after);
}

export const HEALTH_ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/api/health/devices',
    summary: 'the devices of a scope: offline, in fault, tampered, low on battery (since when), last heard and last tested',
    handler: (deps, req): DevicesHealth => devicesHealth(deps.db, requireScope(req), deps.faults.openFaults(), deps.clock.now()),
  },
  {
    method: 'GET',
    path: '/api/tickets',
    summary: 'maintenance tickets of a scope (?scope=&open=1: only those not closed)',
    handler: (deps, req): TicketList => {
      const scope = requireScope(req);
      const open = req.query.get('open');
      if (open !== null && open !== '0' && open !== '1') throw lfError('LF_ERR_INVALID_ARGUMENT', 'open', '0 or 1');
      return { scope, tickets: deps.faults.list({ open: open === '1', station: scope.id }).map((f) => ticketView(deps, f)) };
    },
  },
  {
    method: 'POST',
    path: '/api/tickets/:faultId/assign',
    summary: 'assign a maintenance ticket to a technician ({to})',
    handler: (deps, req) => change(deps, req, { action: 'assign', to: req.body.to }),
  },
  {
    method: 'POST',
    path: '/api/tickets/:faultId/fix',
    summary: 'close a maintenance ticket as fixed ({note, force?}: force when the fault still holds)',
    handler: (deps, req) => change(deps, req, { action: 'fix', note: req.body.note, ...(req.body.force === true ? { force: true } : {}) }),
  },
];
