/**
 * Rows of the alarm path: alarms, recipients, replies, audit, deadlines (the events themselves and
 * the devices' high-water marks are the ingest's: gateway/ingest/). Prepared once; every method is
 * called inside a writer transaction.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/db.js';
import type { AlarmState, Disposition, ReplyKind } from '../../firmware-contracts/mqtt/payloads.js';
import { JOINABLE_STATES, OPEN_STATES, sqlStates, statesOutside } from './state-machine.js';

export interface AlarmRow {
  id: string;
  gatewayId: string;
  shopId: string;
  stationId: string;
  compoundId: string | null;
  state: AlarmState;
  kind: string;
  rev: number;
  overdue: boolean;
  duress: boolean;
  test: boolean;
  /** Cancelled or duress: the shops were told it ended; on their side it is over (no widening, not joinable, nothing more at close). */
  shopsEnded: boolean;
  takenBy: string | null;
  disposition: Disposition | null;
  patrol: string | null;
  ring: number;
  raisedAt: string;
  updatedAt: string;
  closedAt: string | null;
}

export interface DeadlineRow {
  id: number;
  alarmId: string | null;
  kind: 'ack' | 'ring' | 'test-expiry' | 'schedule' | 'entry-delay';
  dueAt: number;
  /** A test-expiry deadline: the test mode it ends. */
  testModeId?: number | null;
  /** A schedule or entry-delay deadline (gateway/alarm/arming.ts): the shop it is for. */
  shopId?: string | null;
}

export interface AuditEntry {
  alarmId: string | null;
  at: string;
  actor: string;
  action: string;
  fromState?: string | null;
  toState?: string | null;
  rev?: number | null;
  detail?: Record<string, unknown>;
}

const ALARM_COLUMNS = `id, gateway_id AS gatewayId, shop_id AS shopId, station_id AS stationId, compound_id AS compoundId,
  state, kind, rev, overdue, duress, test, taken_by AS takenBy, disposition, patrol, ring,
  raised_at AS raisedAt, updated_at AS updatedAt, closed_at AS closedAt, shops_ended AS shopsEnded`;

function toAlarm(r: Record<string, unknown> | undefined): AlarmRow | undefined {
  if (!r) return undefined;
  return { ...(r as unknown as AlarmRow), overdue: r.overdue === 1, duress: r.duress === 1, test: r.test === 1, shopsEnded: r.shopsEnded === 1 };
}

/**
 * The condition of the partial index alarms_open (migration 1), which SQLite uses only for a query
 * that repeats it word for word (the same list in the same order): the states that are not
 * joinable. A migration is history and cannot follow the table, so the table is checked against it
 * here, once, when this module loads.
 */
const OPEN_INDEX_EXCLUDES: readonly AlarmState[] = ['closed', 'cancelled'];
const notJoinable = statesOutside(JOINABLE_STATES);
if (notJoinable.length !== OPEN_INDEX_EXCLUDES.length || !notJoinable.every((s) => OPEN_INDEX_EXCLUDES.includes(s))) {
  throw new Error(`the alarms_open index leaves out ${OPEN_INDEX_EXCLUDES.join(', ')}, the state machine's non-joinable states are ${notJoinable.join(', ')}: a migration must follow`);
}
/** `state` is joinable, in the words of the index alarms_open. */
export const JOINABLE_STATE_SQL = `state NOT IN (${sqlStates(OPEN_INDEX_EXCLUDES)})`;

export class AlarmRepo {
  private readonly s: Record<string, Statement>;

  constructor(db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insertAlarm: p(
        `INSERT INTO alarms (id, gateway_id, shop_id, station_id, compound_id, state, kind, rev, duress, test, ring, origin_event_id, raised_at, updated_at, shops_ended)
         VALUES (@id, @gatewayId, @shopId, @stationId, @compoundId, @state, @kind, 1, @duress, @test, 1, @originEventId, @raisedAt, @raisedAt, @shopsEnded)`,
      ),
      getAlarm: p(`SELECT ${ALARM_COLUMNS} FROM alarms WHERE id = ?`),
      // JOINABLE_STATE_SQL repeats the partial index's condition word for word, so SQLite uses alarms_open.
      joinableForShop: p(
        `SELECT ${ALARM_COLUMNS} FROM alarms WHERE shop_id = ? AND ${JOINABLE_STATE_SQL} AND state IN (${sqlStates(JOINABLE_STATES)}) AND shops_ended = 0 ORDER BY raised_at DESC LIMIT 1`,
      ),
      inJoinableStateForShop: p(`SELECT ${ALARM_COLUMNS} FROM alarms WHERE shop_id = ? AND ${JOINABLE_STATE_SQL} ORDER BY raised_at DESC LIMIT 1`),
      countOpen: p(`SELECT count(*) AS n FROM alarms WHERE state IN (${sqlStates(OPEN_STATES)})`),
      openHeldInStation: p(`SELECT ${ALARM_COLUMNS} FROM alarms WHERE station_id = ? AND taken_by = ? AND state IN (${sqlStates(OPEN_STATES)}) ORDER BY raised_at, id`),
      openHeldInCompound: p(`SELECT ${ALARM_COLUMNS} FROM alarms WHERE compound_id = ? AND taken_by = ? AND state IN (${sqlStates(OPEN_STATES)}) ORDER BY raised_at, id`),
      updateAlarm: p(
        `UPDATE alarms SET state = @state, rev = @rev, overdue = @overdue, duress = @duress, taken_by = @takenBy,
           disposition = @disposition, patrol = @patrol, ring = @ring, updated_at = @updatedAt, closed_at = @closedAt,
           shops_ended = @shopsEnded
         WHERE id = @id`,
      ),
      insertRecipient: p('INSERT OR IGNORE INTO alarm_recipients (alarm_id, shop_id, ring, distance_m, alerted_at) VALUES (?, ?, ?, ?, ?)'),
      recipients: p('SELECT shop_id AS shopId, ring, distance_m AS distanceM FROM alarm_recipients WHERE alarm_id = ? ORDER BY ring, distance_m, shop_id'),
      isRecipient: p('SELECT 1 FROM alarm_recipients WHERE alarm_id = ? AND shop_id = ?'),
      latestAlertFor: p(
        `SELECT r.alarm_id AS alarmId FROM alarm_recipients r JOIN alarms a ON a.id = r.alarm_id
         WHERE r.shop_id = ? AND a.state IN (${sqlStates(JOINABLE_STATES)}) AND a.shops_ended = 0 ORDER BY r.alerted_at DESC, a.raised_at DESC LIMIT 1`,
      ),
      insertReply: p('INSERT INTO alarm_replies (alarm_id, shop_id, reply, actor, at) VALUES (?, ?, ?, ?, ?)'),
      replyCounts: p(
        `SELECT reply, count(*) AS n FROM (
           SELECT shop_id, reply FROM alarm_replies a WHERE alarm_id = ?
             AND id = (SELECT max(id) FROM alarm_replies b WHERE b.alarm_id = a.alarm_id AND b.shop_id = a.shop_id)
         ) GROUP BY reply`,
      ),
      insertAudit: p('INSERT INTO audit (alarm_id, at, actor, action, from_state, to_state, rev, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      insertDeadline: p('INSERT INTO deadlines (alarm_id, kind, due_at) VALUES (?, ?, ?)'),
      dueDeadlines: p('SELECT id, alarm_id AS alarmId, kind, due_at AS dueAt, test_mode_id AS testModeId, shop_id AS shopId FROM deadlines WHERE done_at IS NULL AND due_at <= ? ORDER BY due_at, id LIMIT ?'),
      nextDeadline: p('SELECT min(due_at) AS dueAt FROM deadlines WHERE done_at IS NULL'),
      finishDeadline: p('UPDATE deadlines SET done_at = ? WHERE id = ?'),
      finishAlarmDeadlines: p('UPDATE deadlines SET done_at = ? WHERE alarm_id = ? AND kind = ? AND done_at IS NULL'),
      finishAllAlarmDeadlines: p('UPDATE deadlines SET done_at = ? WHERE alarm_id = ? AND done_at IS NULL'),
    };
  }

  insertAlarm(
    a: Pick<AlarmRow, 'id' | 'gatewayId' | 'shopId' | 'stationId' | 'compoundId' | 'state' | 'kind' | 'duress' | 'test' | 'raisedAt'> & {
      originEventId: number | null;
      shopsEnded?: boolean;
    },
  ): void {
    this.s.insertAlarm.run({ ...a, duress: a.duress ? 1 : 0, test: a.test ? 1 : 0, shopsEnded: a.shopsEnded ? 1 : 0 });
  }

  get(id: string): AlarmRow | undefined {
    return toAlarm(this.s.getAlarm.get(id) as Record<string, unknown> | undefined);
  }

  /**
   * The shop's newest alarm in a joinable state, whether or not it is over on the shops' side (a
   * duress alarm whose shops were told it ended). Not every open alarm: a cancelled one is over for
   * the shop, and a duress PIN after it raises a console-only duress alarm.
   */
  inJoinableStateForShop(shopId: string): AlarmRow | undefined {
    return toAlarm(this.s.inJoinableStateForShop.get(shopId) as Record<string, unknown> | undefined);
  }

  /** The shop's newest alarm that a 9# joins: in a joinable state and not over on the shops' side. */
  joinableForShop(shopId: string): AlarmRow | undefined {
    return toAlarm(this.s.joinableForShop.get(shopId) as Record<string, unknown> | undefined);
  }

  /** Alarms an officer still has to close (OPEN_STATES), for /health. */
  countOpen(): number {
    return (this.s.countOpen.get() as { n: number }).n;
  }

  /** The open alarms of a station's (every shop of it) or a compound's scope that `user` holds, oldest first. */
  openHeldBy(scope: { kind: 'station' | 'compound'; id: string }, user: string): AlarmRow[] {
    const stmt = scope.kind === 'station' ? this.s.openHeldInStation : this.s.openHeldInCompound;
    return (stmt.all(scope.id, user) as Record<string, unknown>[]).map((r) => toAlarm(r)!);
  }

  update(a: AlarmRow): void {
    this.s.updateAlarm.run({
      id: a.id,
      state: a.state,
      rev: a.rev,
      overdue: a.overdue ? 1 : 0,
      duress: a.duress ? 1 : 0,
      takenBy: a.takenBy,
      disposition: a.disposition,
      patrol: a.patrol,
      ring: a.ring,
      updatedAt: a.updatedAt,
      closedAt: a.closedAt,
      shopsEnded: a.shopsEnded ? 1 : 0,
    });
  }

  addRecipient(alarmId: string, shopId: string, ring: number, distanceM: number | null, at: string): void {
    this.s.insertRecipient.run(alarmId, shopId, ring, distanceM, at);
  }

  recipients(alarmId: string): { shopId: string; ring: number; distanceM: number | null }[] {
    return this.s.recipients.all(alarmId) as { shopId: string; ring: number; distanceM: number | null }[];
  }

  isRecipient(alarmId: string, shopId: string): boolean {
    return this.s.isRecipient.get(alarmId, shopId) !== undefined;
  }

  /** The open alarm most recently alerted to a shop (what its keypad displays). */
  latestAlertFor(shopId: string): string | undefined {
    return (this.s.latestAlertFor.get(shopId) as { alarmId: string } | undefined)?.alarmId;
  }

  addReply(alarmId: string, shopId: string, reply: ReplyKind, actor: string, at: string): void {
    this.s.insertReply.run(alarmId, shopId, reply, actor, at);
  }

  /** Each shop's latest answer, counted. */
  replyCounts(alarmId: string): { coming: number; seen: number; cannot: number } {
    const out = { coming: 0, seen: 0, cannot: 0 };
    for (const r of this.s.replyCounts.all(alarmId) as { reply: ReplyKind; n: number }[]) out[r.reply] = r.n;
    return out;
  }

  audit(e: AuditEntry): void {
    this.s.insertAudit.run(e.alarmId, e.at, e.actor, e.action, e.fromState ?? null, e.toState ?? null, e.rev ?? null, JSON.stringify(e.detail ?? {}));
  }

  addDeadline(alarmId: string | null, kind: DeadlineRow['kind'], dueAt: number): void {
    this.s.insertDeadline.run(alarmId, kind, dueAt);
  }

  dueDeadlines(nowMs: number, limit = 500): DeadlineRow[] {
    return this.s.dueDeadlines.all(nowMs, limit) as DeadlineRow[];
  }

  nextDeadline(): number | null {
    return (this.s.nextDeadline.get() as { dueAt: number | null }).dueAt;
  }

  finishDeadline(id: number, nowMs: number): void {
    this.s.finishDeadline.run(nowMs, id);
  }

  finishAlarmDeadlines(alarmId: string, nowMs: number, kind?: DeadlineRow['kind']): void {
    if (kind) this.s.finishAlarmDeadlines.run(nowMs, alarmId, kind);
    else this.s.finishAllAlarmDeadlines.run(nowMs, alarmId);
  }
}
