/**
 * Shifts: who is on duty in a scope, sign on, hand over with a note (gateway/console/shifts.ts).
 * Only the scope's officers (and admins) may see or change its shift: requireScope refuses the
 * rest (LF_ERR_SCOPE). A sign-on and a hand-over are each one writer transaction: the shift row,
 * its audit row, the alarms that pass to the new shift and the nobody-on-duty faults it clears.
 */
import type { ApiRequest, ConsoleDeps, Route } from './api.js';
import { requireScope } from './api.js';
import type { ShiftView } from './contract.js';
import { HANDOVER_NOTE_MAX, handOverIn, onDuty, shiftView, signOnIn } from './shifts.js';
import { iso } from '../clock.js';
import { lfError } from '../errors.js';

/** The handover note of a request: text, not blank, at most HANDOVER_NOTE_MAX characters. */
function noteOf(req: ApiRequest): string {
  const note = req.body.note;
  if (typeof note !== 'string' || note.trim() === '') throw lfError('LF_ERR_INVALID_ARGUMENT', 'note', 'a handover needs a note for the next shift');
  if ([...note].length > HANDOVER_NOTE_MAX) throw lfError('LF_ERR_INVALID_ARGUMENT', 'note', `at most ${HANDOVER_NOTE_MAX} characters`);
  return note;
}

const parts = (deps: ConsoleDeps) => ({ db: deps.db, engine: deps.engine, faults: deps.faults });

export const SHIFT_ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/api/shifts',
    summary: "who is on duty in a scope (?scope=, default the caller's), the last handover and its note",
    handler: (deps, req): ShiftView => {
      const scope = requireScope(req);
      const view = shiftView(deps.db, scope, req.user.name);
      if (scope.kind !== 'station') return view;
      // A station's officer sees every shop of the station: who guards its compounds is theirs to know.
      const compounds = [...deps.registry.stations.values()].filter((s) => s.compoundOf === scope.id).map((c) => ({ id: c.id, name: c.name, onDuty: onDuty(deps.db, c.id) }));
      return { ...view, compounds };
    },
  },
  {
    method: 'POST',
    path: '/api/shifts/sign-on',
    summary: "sign on to the scope's shift ({scope}); a waiting handover's open alarms pass to the caller",
    handler: async (deps, req): Promise<ShiftView & { already: boolean; alarmsPassed: number }> => {
      const scope = requireScope(req);
      const at = iso(deps.clock.now());
      const r = await deps.writer.run((fx) => signOnIn(fx, parts(deps), scope, req.user.name, at), 'shift-sign-on');
      deps.log.info({ scope: scope.id, user: req.user.name, already: r.already, alarmsPassed: r.passed }, 'officer signed on');
      return { ...shiftView(deps.db, scope, req.user.name), already: r.already, alarmsPassed: r.passed };
    },
  },
  {
    method: 'POST',
    path: '/api/shifts/hand-over',
    summary: 'hand over the shift with a note ({scope, note}); the next officer gets the open alarms the caller holds',
    handler: async (deps, req): Promise<ShiftView & { handedTo: string | null; alarmsPassed: number }> => {
      const scope = requireScope(req);
      const note = noteOf(req);
      const at = iso(deps.clock.now());
      const r = await deps.writer.run((fx) => handOverIn(fx, parts(deps), scope, req.user.name, note, at), 'shift-hand-over');
      deps.log.info({ scope: scope.id, user: req.user.name, to: r.to, alarmsPassed: r.passed }, 'officer handed over');
      return { ...shiftView(deps.db, scope, req.user.name), handedTo: r.to, alarmsPassed: r.passed };
    },
  },
];
