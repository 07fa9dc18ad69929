/**
 * The JSON of the console's numbers and health routes (routes-reports.ts, routes-health.ts), shared
 * by the gateway and the page: types only, so the page's bundle takes nothing of the server with it.
 *
 * Conventions: every time is ISO 8601 UTC (`…Z`); every `day` is a calendar date `YYYY-MM-DD` in the
 * scope's time zone (its station's, else the configuration's `timeZone`), given back as `timeZone`.
 * Durations are seconds to one decimal; percentiles are nearest-rank (p50 of 1, 2, 3, 4 is 2).
 * Test alarms (the `test` flag, or closed with disposition `test`) are never counted as alarms.
 */
import type { Scope } from './contract.js';
import type { ConsoleFault } from '../../firmware-contracts/mqtt/payloads.js';

/** The distribution of a duration over the alarms that have one; all null when n is 0. */
export interface DurationStats {
  n: number;
  p50: number | null;
  p90: number | null;
  max: number | null;
}

/** Alarms raised on one day, by kind; a duress alarm (a duress PIN) counts as duress, not panic. */
export interface DayKinds {
  day: string;
  panic: number;
  intrusion: number;
  help: number;
  duress: number;
}

/** One shop's false-alarm share (the false-alarm report of `lianfang report false-alarms`). */
export interface FalseShare {
  shopId: string;
  name: string | null;
  /** Alarms of the period, whatever their state (test alarms left out). */
  total: number;
  real: number;
  false: number;
  malicious: number;
  /** Not closed yet: no disposition. */
  open: number;
  /** 100 × false / (real + false), to one decimal; null when none was closed real or false. */
  sharePercent: number | null;
  /** Above `threshold.ratePercent` with at least `threshold.minDecided` closed real or false. */
  flagged: boolean;
}

/** GET /api/stats?scope=&from=YYYY-MM-DD&to=YYYY-MM-DD (both days included; default the last 7 days to today). */
export interface Stats {
  scope: Scope;
  timeZone: string;
  from: string;
  to: string;
  /** Every day of the period, oldest first, zeros included. */
  perDay: DayKinds[];
  /** Shops with at least one alarm in the period: flagged first, then by share, highest first. */
  falseShare: FalseShare[];
  threshold: { ratePercent: number; minDecided: number };
  /** Raised → the first `ack` of the alarm. */
  ackSeconds: DurationStats;
  /** Raised → the first answer of an alerted neighbour (any answer). */
  firstReplySeconds: DurationStats;
  /** Faults of the scope (its shops' devices, and the gateway's own) raised / ticket fixed in the period. */
  faults: { opened: number; fixed: number; perDay: { day: string; opened: number; fixed: number }[] };
}

/** The daily bulletin's counts, for the scope or one grid and sector. */
export interface BulletinCounts {
  /** Alarms raised on the day (test alarms left out). */
  received: number;
  /** … of which a patrol was dispatched to. */
  dispatched: number;
  /** … closed as a real incident. */
  real: number;
  /** … closed as a false alarm. */
  false: number;
  /** … closed as malicious. */
  malicious: number;
  /** … not closed yet. */
  open: number;
}

/** GET /api/bulletin?scope=&day=YYYY-MM-DD (default: yesterday in the scope's zone); `&format=html` for a printable page. */
export interface Bulletin {
  day: string;
  timeZone: string;
  scope: Scope;
  /** The day's first and last instants (from inclusive, to exclusive). */
  start: string;
  end: string;
  totals: BulletinCounts & {
    /** Test alarms raised on the day (not in `received`). */
    test: number;
    /** Faults raised on the day. */
    faultsOpened: number;
    /** Faults whose ticket was closed (fixed or recovered) on the day. */
    faultsFixed: number;
    /** Faults still open at the end of the day (not cleared, or the ticket not closed). */
    faultsOpen: number;
  };
  /** By the shops' grid and sector (null: not given), ordered by grid then sector; only those with an alarm. */
  byGrid: (BulletinCounts & { grid: string | null; sector: string | null })[];
  /** When the bulletin was made (ISO). */
  at: string;
}

/** A problem of a device: one of its open faults. */
export interface DeviceProblem {
  faultId: string;
  /** offline, silent, tamper, low-battery, selftest-failed, selftest-missed, line-errors, door-held, counter-reset, flood. */
  kind: string;
  text: { en: string; zh: string };
  /** When it began (ISO), and how long ago, in seconds, when the answer was made. */
  since: string;
  forSeconds: number;
  ticket: ConsoleFault['ticket'];
}

export interface DeviceHealth {
  deviceId: string;
  shopId: string;
  shopName: string;
  type: string;
  transport: string;
  /** Its newest stored event (ISO); null: never heard. */
  lastSeen: string | null;
  /** Its last passing walk test (`lianfang test walk`); null: never. */
  lastWalkTest: string | null;
  /** Its last self-test the supervisor stored (keypads test themselves daily); null: none stored. */
  lastSelfTest: string | null;
  /** The newer of the two; null: never tested. */
  lastTested: string | null;
  /** Open faults, oldest first; empty: healthy. */
  problems: DeviceProblem[];
}

/** GET /api/health/devices?scope=: every supervised (not revoked) device of the scope, those with problems first. */
export interface DevicesHealth {
  scope: Scope;
  /** Devices with at least one problem. */
  withProblems: number;
  devices: DeviceHealth[];
  at: string;
}

/** A maintenance ticket: a fault and its ticket as the fault store has them. */
export interface Ticket {
  faultId: string;
  rev: number;
  kind: string;
  text: { en: string; zh: string };
  deviceId: string | null;
  subject: string | null;
  shopId: string | null;
  shopName: string | null;
  raisedAt: string;
  clearedAt: string | null;
  /** open | assigned | fixed, with who and when. */
  ticket: ConsoleFault['ticket'];
}

/** GET /api/tickets?scope=&open=1 (open=1: not cleared or the ticket not closed); POST …/assign and …/fix answer one Ticket. */
export interface TicketList {
  scope: Scope;
  tickets: Ticket[];
}

/** POST /api/tickets/:faultId/assign */
export interface AssignTicket {
  to: string;
}

/** POST /api/tickets/:faultId/fix (`force`: the fault still holds; the officer says it is fixed anyway). */
export interface FixTicket {
  note: string;
  force?: boolean;
}
