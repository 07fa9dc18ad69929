/**
 * The alarm state machine, as data (docs/concepts.md "Alarm kinds and states"): the one authority on which state an
 * alarm may leave by which action and which state it reaches. The engine applies `to` (gateway/
 * alarm/engine.ts `change`), and the alarm repository's SQL lists of states are rendered from the
 * lists here (gateway/alarm/alarm-repo.ts). Every transition is an audit row, written by the engine
 * in the same transaction as the change.
 */
import { AlarmState as AlarmStateSchema, type ActionKind, type AlarmState } from '../../firmware-contracts/mqtt/payloads.js';

/** Every state, as the MQTT contract lists them. */
export const ALARM_STATES: readonly AlarmState[] = AlarmStateSchema.anyOf.map((s) => s.const);

/** The state of a new alarm. */
export const INITIAL_STATE: AlarmState = 'raised';

/** States an officer still has to close (`take` works in all of them). */
export const OPEN_STATES: readonly AlarmState[] = ['raised', 'acknowledged', 'dispatched', 'cancelled'];
/** States in which a new 9# from the same shop joins the alarm instead of raising a new one. */
export const JOINABLE_STATES: readonly AlarmState[] = ['raised', 'acknowledged', 'dispatched'];

export interface Transition {
  /** States the action is allowed from. */
  readonly from: readonly AlarmState[];
  /** The state after it; null = the state does not change (only flags or fields do). */
  readonly to: AlarmState | null;
}

/** Console actions. Anything not listed here is refused with LF_ERR_BAD_TRANSITION. */
export const CONSOLE_TRANSITIONS: Readonly<Record<ActionKind, Transition>> = {
  ack: { from: ['raised'], to: 'acknowledged' },
  take: { from: OPEN_STATES, to: null },
  dispatch: { from: ['acknowledged'], to: 'dispatched' },
  close: { from: ['acknowledged', 'dispatched', 'cancelled'], to: 'closed' },
};

/** What the shop and the gateway itself may do. */
export const SYSTEM_TRANSITIONS = {
  cancel: { from: JOINABLE_STATES, to: 'cancelled' },
  /** The duress PIN: a flag (the console sees it in its open state, closable only by an officer). */
  duress: { from: JOINABLE_STATES, to: null },
  overdue: { from: ['raised'], to: null },
  widen: { from: JOINABLE_STATES, to: null },
  /** Test mode: a test alarm is closed (disposition `test`) the moment it is raised. */
  closeTest: { from: ['raised'], to: 'closed' },
} as const satisfies Record<string, Transition>;

export function allowed(t: Transition, state: AlarmState): boolean {
  return t.from.includes(state);
}

/** The state after `t` from `state`: its `to`, or `state` itself when `to` is null. */
export function nextState(t: Transition, state: AlarmState): AlarmState {
  return t.to ?? state;
}

/** The states not in `states`, in the contract's order. */
export function statesOutside(states: readonly AlarmState[]): AlarmState[] {
  return ALARM_STATES.filter((s) => !states.includes(s));
}

/**
 * A list of states as SQL literals (`'raised', 'acknowledged'`), for `state IN (…)`. Literals, not
 * bound parameters: a partial index is used only for a query that repeats its condition word for
 * word, and SQLite cannot see a bound value there. Each one is checked against the contract's
 * states (lower-case words), so nothing but a known state ever reaches the SQL text.
 */
export function sqlStates(states: readonly AlarmState[]): string {
  if (states.length === 0) throw new Error('an empty list of alarm states');
  for (const s of states) {
    if (!ALARM_STATES.includes(s) || !/^[a-z]+$/.test(s)) throw new Error(`not an alarm state: ${JSON.stringify(s)}`);
  }
  return states.map((s) => `'${s}'`).join(', ');
}
