/**
 * Shifts (issue 11, "The tiers and the shift"): officers sign on to a shift in a scope (a station's
 * alarm-receiving centre or a compound's receiving point) and hand over to the next with a note,
 * which is kept. One row of `shifts` per officer per shift (migration 10); `signed_off_at` set:
 * handed over. A handover's open alarms pass to the next officer: to one already on duty in the
 * scope at the moment of the handover (the newcomer of an overlapping handover), otherwise to
 * whoever signs on there next (`handed_to` records who got them). Who is on duty also decides the
 * `nobody-on-duty` fault the engine raises with an alarm nobody covers, and which a sign-on in a
 * covering scope clears.
 *
 * The functions on `db` are plain reads and writes; `signOnIn` and `handOverIn` are the whole
 * change, to run inside one writer transaction with its audit row, alarm changes and fault clear.
 */
import type { Db } from '../store/db.js';
import type { Effects } from '../ingest/writer.js';
import type { AlarmEngine } from '../alarm/engine.js';
import type { FaultStore } from '../faults/fault-store.js';
import type { Scope, ShiftView } from './contract.js';
import { lfError } from '../errors.js';
import { auditRow } from '../store/audit.js';

export interface ShiftRow {
  id: number;
  scopeId: string;
  user: string;
  signedOnAt: string;
  signedOffAt: string | null;
  handoverNote: string | null;
  handedTo: string | null;
}

/** The longest handover note kept (the page says so too). */
export const HANDOVER_NOTE_MAX = 1000;

const COLUMNS = 'id, scope_id AS scopeId, user_name AS user, signed_on_at AS signedOnAt, signed_off_at AS signedOffAt, handover_note AS handoverNote, handed_to AS handedTo';

/** `user`'s open shift in the scope, if any. */
export function openShift(db: Db, scopeId: string, user: string): ShiftRow | undefined {
  return db.prepare(`SELECT ${COLUMNS} FROM shifts WHERE scope_id = ? AND user_name = ? AND signed_off_at IS NULL ORDER BY id DESC LIMIT 1`).get(scopeId, user) as ShiftRow | undefined;
}

/** Who is signed on in the scope, longest on duty first. */
export function onDuty(db: Db, scopeId: string): { user: string; since: string }[] {
  return db.prepare('SELECT user_name AS user, signed_on_at AS since FROM shifts WHERE scope_id = ? AND signed_off_at IS NULL ORDER BY signed_on_at, id').all(scopeId) as {
    user: string;
    since: string;
  }[];
}

/** The scope's latest handover and its note. */
export function lastHandover(db: Db, scopeId: string): ShiftView['lastHandover'] {
  const r = db
    .prepare('SELECT user_name AS "from", handed_to AS "to", handover_note AS note, signed_off_at AS at FROM shifts WHERE scope_id = ? AND signed_off_at IS NOT NULL ORDER BY signed_off_at DESC, id DESC LIMIT 1')
    .get(scopeId) as { from: string; to: string | null; note: string | null; at: string } | undefined;
  return r ? { ...r, note: r.note ?? '' } : null;
}

/** What the page shows of a scope's shift, for `user`. */
export function shiftView(db: Db, scope: Scope, user: string): ShiftView {
  const duty = onDuty(db, scope.id);
  return { scope, onDuty: duty, lastHandover: lastHandover(db, scope.id), mine: duty.some((d) => d.user === user) };
}

/** A handover waiting for the next officer: its shift, who left it, and the note. */
export interface PendingHandover {
  shiftId: number;
  from: string;
  note: string | null;
  at: string;
}

/**
 * Sign `user` on in the scope at `at` (ISO). Already signed on: nothing changes (`already`).
 * Otherwise a new shift, and every handover in the scope still waiting for the next officer is
 * theirs (returned, oldest first).
 */
export function signOn(db: Db, scopeId: string, user: string, at: string): { shift: ShiftRow; already: boolean; handovers: PendingHandover[] } {
  const open = openShift(db, scopeId, user);
  if (open) return { shift: open, already: true, handovers: [] };
  const handovers = db
    .prepare(
      `SELECT id AS shiftId, user_name AS "from", handover_note AS note, signed_off_at AS at FROM shifts
       WHERE scope_id = ? AND signed_off_at IS NOT NULL AND handed_to IS NULL ORDER BY signed_off_at, id`,
    )
    .all(scopeId) as PendingHandover[];
  const mark = db.prepare('UPDATE shifts SET handed_to = ? WHERE id = ?');
  for (const h of handovers) mark.run(user, h.shiftId);
  const id = Number(db.prepare('INSERT INTO shifts (scope_id, user_name, signed_on_at) VALUES (?, ?, ?)').run(scopeId, user, at).lastInsertRowid);
  return { shift: db.prepare(`SELECT ${COLUMNS} FROM shifts WHERE id = ?`).get(id) as ShiftRow, already: false, handovers };
}

/**
 * End `user`'s open shift in the scope at `at`, keeping `note`. Handed to the officer signed on
 * there most recently (another one), if any; otherwise the handover waits for the next sign-on.
 * Not signed on: LF_ERR_NOT_ON_DUTY.
 */
export function handOver(db: Db, scopeId: string, user: string, note: string, at: string): { shift: ShiftRow; to: string | null } {
  const open = openShift(db, scopeId, user);
  if (!open) throw lfError('LF_ERR_NOT_ON_DUTY', user, scopeId);
  const next = onDuty(db, scopeId)
    .filter((d) => d.user !== user)
    .at(-1);
  const to = next?.user ?? null;
  db.prepare('UPDATE shifts SET signed_off_at = ?, handover_note = ?, handed_to = ? WHERE id = ?').run(at, note, to, open.id);
  return { shift: { ...open, signedOffAt: at, handoverNote: note, handedTo: to }, to };
}

/** What a sign-on or a hand-over changes besides the shifts: the alarms, the faults, the audit trail. */
export interface ShiftParts {
  db: Db;
  engine: Pick<AlarmEngine, 'passAlarms'>;
  faults: Pick<FaultStore, 'openFaults' | 'clearIn'>;
}


/**
 * Inside a transaction: `user` signs on in `scope`. An audit row (`shift-sign-on`); the open alarms
 * of every handover waiting in the scope pass to them; the scope's nobody-on-duty faults clear (a
 * station's: every one of the station, its compounds' included; a compound's: its own).
 */
export function signOnIn(fx: Effects, parts: ShiftParts, scope: Scope, user: string, at: string): { already: boolean; passed: number; handovers: PendingHandover[] } {
  const actor = `user:${user}`;
  const r = signOn(parts.db, scope.id, user, at);
  if (r.already) return { already: true, passed: 0, handovers: [] };
  let passed = 0;
  for (const h of r.handovers) passed += parts.engine.passAlarms(fx, scope, h.from, user, h.note, actor).length;
  auditRow(parts.db, at, actor, 'shift-sign-on', { scopeId: scope.id, note: null, ...(r.handovers.length ? { handedOverBy: r.handovers.map((h) => h.from), alarmsPassed: passed } : {}) });
  for (const f of parts.faults.openFaults()) {
    if (f.kind !== 'nobody-on-duty' || !f.subject) continue;
    const covered = scope.kind === 'station' ? f.stationId === scope.id : f.compoundId === scope.id;
    if (covered) parts.faults.clearIn(fx, { kind: 'nobody-on-duty', subject: f.subject }, { how: 'recovered', by: actor });
  }
  return { already: false, passed, handovers: r.handovers };
}

/**
 * Inside a transaction: `user` hands over in `scope` with `note`. An audit row (`shift-hand-over`);
 * when another officer is on duty there, the open alarms `user` holds pass to them now.
 */
export function handOverIn(fx: Effects, parts: ShiftParts, scope: Scope, user: string, note: string, at: string): { to: string | null; passed: number } {
  const actor = `user:${user}`;
  const { to } = handOver(parts.db, scope.id, user, note, at);
  const passed = to ? parts.engine.passAlarms(fx, scope, user, to, note, actor).length : 0;
  auditRow(parts.db, at, actor, 'shift-hand-over', { scopeId: scope.id, note, to, alarmsPassed: passed });
  return { to, passed };
}
