/**
 * The state machine as the one authority (gateway/alarm/state-machine.ts): the tables name only
 * the contract's states, the SQL lists of states are rendered from them and nothing else reaches
 * the SQL text, the repository's queries mean what the lists mean (one alarm in each state in a
 * real database) and still use the partial index alarms_open.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ALARM_STATES,
  CONSOLE_TRANSITIONS,
  INITIAL_STATE,
  JOINABLE_STATES,
  OPEN_STATES,
  SYSTEM_TRANSITIONS,
  nextState,
  sqlStates,
  statesOutside,
} from '../../../gateway/alarm/state-machine.js';
import { AlarmRepo, JOINABLE_STATE_SQL } from '../../../gateway/alarm/alarm-repo.js';
import { openDatabase } from '../../../gateway/store/db.js';
import type { AlarmState } from '../../../firmware-contracts/mqtt/payloads.js';

t.test('the tables name only the states of the contract', async (t) => {
  t.same([...ALARM_STATES].sort(), ['acknowledged', 'cancelled', 'closed', 'dispatched', 'raised']);
  t.ok(ALARM_STATES.includes(INITIAL_STATE));
  for (const [name, tr] of Object.entries({ ...CONSOLE_TRANSITIONS, ...SYSTEM_TRANSITIONS })) {
    t.ok(tr.from.length > 0 && tr.from.every((s) => ALARM_STATES.includes(s)), `${name}: from known states`);
    t.ok(tr.to === null || ALARM_STATES.includes(tr.to), `${name}: to a known state or none`);
  }
  t.ok(JOINABLE_STATES.every((s) => OPEN_STATES.includes(s)), 'a joinable alarm is open');
  t.same(statesOutside(OPEN_STATES), ['closed'], 'only a closed alarm is not open (a cancelled one waits for an officer)');
  t.same(statesOutside(JOINABLE_STATES).sort(), ['cancelled', 'closed']);
  t.equal(nextState(CONSOLE_TRANSITIONS.ack, 'raised'), 'acknowledged', 'to: the state reached');
  t.equal(nextState(CONSOLE_TRANSITIONS.take, 'dispatched'), 'dispatched', 'to null: the state stays');
  t.equal(nextState(SYSTEM_TRANSITIONS.duress, 'acknowledged'), 'acknowledged', 'duress is a flag, never cancelled');
});

t.test('sqlStates renders known states as literals and refuses anything else', async (t) => {
  t.equal(sqlStates(JOINABLE_STATES), "'raised', 'acknowledged', 'dispatched'");
  t.throws(() => sqlStates([]), /empty/);
  t.throws(() => sqlStates(["raised') OR 1=1 --" as AlarmState]), /not an alarm state/);
  t.throws(() => sqlStates(['Raised' as AlarmState]), /not an alarm state/);
});

t.test("the repository's queries mean the table's lists, and use the index alarms_open", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lf-sm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir);
  t.teardown(() => db.close());
  db.pragma('foreign_keys = OFF');
  const repo = new AlarmRepo(db);
  // One alarm of shop S<state> in each state, plus one in each joinable state whose shops' side ended.
  let n = 0;
  const add = (shopId: string, state: AlarmState, shopsEnded: boolean) => {
    const id = `a-${++n}`;
    repo.insertAlarm({ id, gatewayId: 'gw', shopId, stationId: 'PS1', compoundId: null, state, kind: 'panic', duress: false, test: false, raisedAt: `2026-12-01T00:00:0${n % 10}.000Z`, originEventId: null, shopsEnded });
    return id;
  };
  for (const s of ALARM_STATES) add(`S-${s}`, s, false);
  for (const s of JOINABLE_STATES) add(`E-${s}`, s, true);

  t.equal(repo.countOpen(), OPEN_STATES.length + JOINABLE_STATES.length, 'open: every state but closed (cancelled included)');
  for (const s of ALARM_STATES) {
    t.equal(repo.joinableForShop(`S-${s}`) !== undefined, JOINABLE_STATES.includes(s), `joinable in ${s}: as JOINABLE_STATES says`);
    t.equal(repo.inJoinableStateForShop(`S-${s}`) !== undefined, JOINABLE_STATES.includes(s), `in a joinable state (${s}): not cancelled, not closed`);
  }
  for (const s of JOINABLE_STATES) {
    t.equal(repo.joinableForShop(`E-${s}`), undefined, `${s}, its shops' side ended: not joinable`);
    t.ok(repo.inJoinableStateForShop(`E-${s}`), `${s}, its shops' side ended: still in a joinable state (a duress alarm)`);
  }

  const index = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'alarms_open'").get() as { sql: string };
  t.ok(index.sql.includes(`WHERE ${JOINABLE_STATE_SQL}`), "the term is the index's own condition, word for word");
  const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM alarms WHERE shop_id = ? AND ${JOINABLE_STATE_SQL} AND state IN (${sqlStates(JOINABLE_STATES)}) ORDER BY raised_at DESC LIMIT 1`).all('S-raised') as { detail: string }[];
  t.ok(plan.some((p) => p.detail.includes('USING INDEX alarms_open')), `SQLite uses alarms_open (${plan.map((p) => p.detail).join('; ')})`);
});
