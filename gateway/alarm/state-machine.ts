/**
 * The alarm state machine, as data (DESIGN.md "Alarm states"). Every transition is an audit row,
 * written by the engine in the same transaction as the change.
 */
import type { ActionKind, AlarmState } from '../../firmware-contracts/mqtt/payloads.js';

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
} as const satisfies Record<string, Transition>;

export function allowed(t: Transition, state: AlarmState): boolean {
  return t.from.includes(state);
}

export function isJoinable(state: AlarmState): boolean {
  return JOINABLE_STATES.includes(state);
}
