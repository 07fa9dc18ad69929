/**
 * Maintenance tickets from the command line (`lianfang fault assign|fix`), on either side of the
 * admin channel: the running gateway changes the ticket in its writer (admin op `fault-ticket`), so
 * the new rev goes to the consoles at once; on a stopped gateway's database the CLI makes the same
 * change with its outbox rows in its own transaction, sent when the gateway starts. Both take the
 * request through `ticketRequest`, the one place it is validated.
 */
import { Effects, type GroupCommitWriter } from '../ingest/writer.js';
import { lfError } from '../errors.js';
import type { Db } from '../store/db.js';
import { FaultStore, type FaultRecord, type TicketChange } from './fault-store.js';

export interface TicketRequest {
  /** A fault id or a unique prefix of one. */
  faultId: string;
  change: TicketChange;
  /** Who changed it, as the audit names it (`cli:<os user>`). */
  actor: string;
}

const NAME = /^[\p{L}\p{N} _.:@-]{1,100}$/u;
const ACTOR = /^[A-Za-z0-9_.:@-]{1,100}$/;

/** A ticket request from the CLI or the admin socket, checked (the socket is the installer's, 0600: still checked). */
export function ticketRequest(raw: { [key: string]: unknown }): TicketRequest {
  const faultId = typeof raw.faultId === 'string' ? raw.faultId : '';
  if (!faultId) throw lfError('LF_ERR_INVALID_ARGUMENT', 'fault id', 'a fault id or at least 4 of its first characters');
  const c = (raw.change ?? {}) as { action?: unknown; to?: unknown; note?: unknown; force?: unknown };
  let change: TicketChange;
  if (c.action === 'assign') {
    if (typeof c.to !== 'string' || !NAME.test(c.to.trim())) throw lfError('LF_ERR_INVALID_ARGUMENT', '--to', 'a name of 1 to 100 letters, digits, spaces or _.:@-');
    change = { action: 'assign', to: c.to.trim() };
  } else if (c.action === 'fix') {
    if (typeof c.note !== 'string' || c.note.trim() === '' || c.note.length > 1000) throw lfError('LF_ERR_INVALID_ARGUMENT', '--note', 'what was done, 1 to 1000 characters');
    change = { action: 'fix', note: c.note.trim(), ...(c.force === true ? { force: true } : {}) };
  } else throw lfError('LF_ERR_INVALID_ARGUMENT', 'ticket action', 'assign or fix');
  const actor = typeof raw.actor === 'string' && ACTOR.test(raw.actor) ? raw.actor : 'cli';
  return { faultId, change, actor };
}

/** The running gateway's side: in the writer, ordered with the fault changes its detectors make. */
export function changeTicket(faults: FaultStore, writer: GroupCommitWriter, req: TicketRequest): Promise<FaultRecord> {
  return writer.run((fx) => faults.ticketIn(fx, faults.resolve(req.faultId).faultId, req.change, req.actor), 'fault-ticket');
}

/** A stopped gateway's database: the change and its outbox rows in one transaction. */
export function changeTicketOffline(db: Db, req: TicketRequest): FaultRecord {
  const faults = FaultStore.offline(db);
  return db.transaction(() => faults.ticketIn(new Effects(), faults.resolve(req.faultId).faultId, req.change, req.actor)).immediate();
}
