/**
 * A seeded street for the console's numbers (issue 11, "Every chart and bulletin figure is asserted
 * against a seeded data set"): two stations, a compound under the first, shops with grid and
 * sector (and names a spreadsheet or a page could trip on), alarms of every kind and disposition on
 * known days with known acknowledge and reply times, test alarms that must not count, faults opened
 * and fixed, walk and self-tests. Written straight into a fresh database through the registry, the
 * fault store and SQL (the alarm path's own tests cover how rows come to be; this is what they say).
 *
 * SEED_EXPECTED holds every figure the stats, the bulletin and device health must answer for it,
 * worked out by hand from the table below (the comments show the sums), never by the code under
 * test. Periods are given explicitly (SEED_PERIOD, SEED_BULLETIN_DAY) so a gateway started on the
 * seeded directory with the real clock answers the same; only `forSeconds` of device health and the
 * default day depend on the clock (SEED_NOW).
 *
 * All days are Asia/Shanghai (UTC+8, the configuration's default): local day = UTC + 8 h.
 */
import { openDatabase, type Db } from '../../gateway/store/db.js';
import { addDevice, addShop, addStation, addUser, revokeDevice } from '../../gateway/registry/registry.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { AlarmRepo } from '../../gateway/alarm/alarm-repo.js';
import { recordWalkPass } from '../../gateway/alarm/test-mode.js';
import { FaultStore, type FaultKey, type TicketChange } from '../../gateway/faults/fault-store.js';
import { Effects } from '../../gateway/ingest/writer.js';
import { setMeta } from '../../gateway/store/db.js';
import type { Clock } from '../../gateway/clock.js';

/** The instant the seed's "now" is: 12:00 on 2 December in Shanghai. */
export const SEED_NOW = Date.parse('2026-12-02T04:00:00.000Z');
/** The stats period the figures are for (the default period at SEED_NOW: the last 7 days, today included). */
export const SEED_PERIOD = { from: '2026-11-26', to: '2026-12-02' } as const;
/** The bulletin's day (the default at SEED_NOW: yesterday). */
export const SEED_BULLETIN_DAY = '2026-12-01';

export const SEED_STATIONS = {
  station: { id: 'PS1', name: '城关派出所 Chengguan station' },
  compound: { id: 'PS1-C1', name: '幸福小区 Xingfu compound', compoundOf: 'PS1' },
  other: { id: 'PS2', name: '东关派出所 Dongguan station' },
} as const;

/** Shops: names with a comma and quotes, a formula, a line break and HTML, to prove the CSV and the page keep them text. */
export const SEED_SHOPS = [
  { id: 'S01', name: 'Tea, "Old" House 老茶馆', address: '1 Main St', stationId: 'PS1', grid: '网格1', sector: 'A' },
  { id: 'S02', name: '=HYPERLINK("http://evil.example","x")', address: '2 Main St', stationId: 'PS1', grid: '网格1', sector: 'B' },
  { id: 'S03', name: 'Noodles\nline two', address: '3 Xingfu Rd', stationId: 'PS1', compoundId: 'PS1-C1', grid: '网格2', sector: 'A' },
  { id: 'S04', name: '<img src=x onerror=alert(1)>', address: '4 Xingfu Rd', stationId: 'PS1', compoundId: 'PS1-C1', grid: '网格2', sector: 'A' },
  { id: 'S05', name: '@SUM(1+1) 便利店', address: '5 Main St', stationId: 'PS1' },
  { id: 'S09', name: 'Other station shop', address: '9 East Rd', stationId: 'PS2', grid: '网格1', sector: 'A' },
] as const;

/** Officer accounts (password for all: SEED_PASSWORD). */
export const SEED_USERS = {
  station: { name: 'duty1', role: 'officer', stationId: 'PS1' },
  compound: { name: 'guard1', role: 'officer', stationId: 'PS1-C1' },
  other: { name: 'other1', role: 'officer', stationId: 'PS2' },
  admin: { name: 'admin1', role: 'admin' },
} as const;
export const SEED_PASSWORD = 'correct horse battery';

interface SeedAlarm {
  id: string;
  shop: string;
  kind: 'panic' | 'help' | 'intrusion';
  raisedAt: string;
  duress?: boolean;
  test?: boolean;
  state: 'raised' | 'acknowledged' | 'dispatched' | 'cancelled' | 'closed';
  disposition?: 'real' | 'false' | 'test' | 'malicious';
  /** Seconds after the raise. */
  ack?: number;
  dispatch?: number;
  replies?: number[];
  close?: number;
  patrol?: string;
  note?: string;
}

/**
 * The alarms. Local (Shanghai) day in the comment; "T" = test, excluded from every statistic.
 * The day-boundary pairs: A05 (23:30 on 30 Nov local, 15:30Z) vs A06 (00:30 on 1 Dec local but
 * 30 Nov in UTC); A11 (00:30 on 2 Dec local, 1 Dec in UTC).
 */
export const SEED_ALARMS: readonly SeedAlarm[] = [
  { id: 'A01', shop: 'S01', kind: 'panic', raisedAt: '2026-11-26T02:00:00.000Z', state: 'closed', disposition: 'real', ack: 30, dispatch: 60, replies: [20, 50], close: 600, patrol: 'P-1', note: 'robbery, "suspect" fled' }, // 26 Nov
  { id: 'A02', shop: 'S01', kind: 'panic', raisedAt: '2026-11-27T03:00:00.000Z', state: 'closed', disposition: 'false', ack: 10, close: 120, note: '=cmd|calc' }, // 27 Nov
  { id: 'A03', shop: 'S01', kind: 'panic', raisedAt: '2026-11-28T03:00:00.000Z', state: 'closed', disposition: 'false', ack: 50, replies: [5.25], close: 120 }, // 28 Nov
  { id: 'A04', shop: 'S01', kind: 'help', raisedAt: '2026-11-29T03:00:00.000Z', state: 'closed', disposition: 'false', ack: 20, close: 100 }, // 29 Nov
  { id: 'A16', shop: 'S05', kind: 'panic', raisedAt: '2026-11-29T10:00:00.000Z', state: 'cancelled', ack: 15 }, // 29 Nov, cancelled by the shop, not closed
  { id: 'A05', shop: 'S02', kind: 'intrusion', raisedAt: '2026-11-30T15:30:00.000Z', state: 'closed', disposition: 'real', ack: 40, dispatch: 70, replies: [15], close: 900, patrol: 'P-2' }, // 30 Nov 23:30
  { id: 'A06', shop: 'S02', kind: 'panic', duress: true, raisedAt: '2026-11-30T16:30:00.000Z', state: 'closed', disposition: 'real', ack: 5, dispatch: 30, close: 1200, patrol: 'P-2', note: 'duress: line one\nline two' }, // 1 Dec 00:30
  { id: 'A07', shop: 'S03', kind: 'panic', raisedAt: '2026-11-30T23:30:00.000Z', state: 'closed', disposition: 'false', ack: 60, replies: [30], close: 300 }, // 1 Dec 07:30 (compound)
  { id: 'A08', shop: 'S03', kind: 'panic', test: true, raisedAt: '2026-12-01T02:00:00.000Z', state: 'closed', disposition: 'test', ack: 1, replies: [1], close: 2 }, // 1 Dec T (test mode)
  { id: 'A09', shop: 'S04', kind: 'help', raisedAt: '2026-12-01T04:00:00.000Z', state: 'acknowledged', ack: 90 }, // 1 Dec 12:00 (compound), still open
  { id: 'A10', shop: 'S05', kind: 'panic', raisedAt: '2026-12-01T06:00:00.000Z', state: 'closed', disposition: 'malicious', ack: 25, dispatch: 40, replies: [45.46], close: 700, patrol: 'P-3' }, // 1 Dec 14:00
  { id: 'A12', shop: 'S01', kind: 'panic', raisedAt: '2026-12-01T08:00:00.000Z', state: 'closed', disposition: 'test', ack: 3, close: 10 }, // 1 Dec 16:00 T (closed as test)
  { id: 'A13', shop: 'S09', kind: 'panic', raisedAt: '2026-12-01T05:00:00.000Z', state: 'closed', disposition: 'false', ack: 15, replies: [2], close: 60 }, // 1 Dec, other station
  { id: 'A11', shop: 'S04', kind: 'intrusion', raisedAt: '2026-12-01T16:30:00.000Z', state: 'raised' }, // 2 Dec 00:30 (compound), not acknowledged
  { id: 'A14', shop: 'S01', kind: 'panic', raisedAt: '2026-11-20T03:00:00.000Z', state: 'closed', disposition: 'false', ack: 1, close: 60 }, // 20 Nov: before the period
];

/** Devices (all MQTT; the revoked one is not supervised and never listed). */
export const SEED_DEVICES = [
  { id: 'S01.keypad', shop: 'S01', type: 'keypad' },
  { id: 'S02.panic', shop: 'S02', type: 'panic' },
  { id: 'S03.keypad', shop: 'S03', type: 'keypad' },
  { id: 'S04.keypad', shop: 'S04', type: 'keypad' },
  { id: 'S05.keypad', shop: 'S05', type: 'keypad' },
  { id: 'S05.old', shop: 'S05', type: 'panic', revoked: true },
  { id: 'S09.keypad', shop: 'S09', type: 'keypad' },
] as const;

/**
 * Faults in the order they happened (the fault store is run on a clock set to each time). Local day
 * in the comment. F7 is the gateway's own (no shop): it counts in every scope.
 */
const FAULT_STEPS: { at: string; step: 'raise' | 'clear' | 'assign' | 'fix'; name: string; key: FaultKey; change?: TicketChange }[] = [
  { at: '2026-11-25T02:00:00.000Z', step: 'raise', name: 'F4', key: { kind: 'silent', deviceId: 'S04.keypad' } }, // 25 Nov, before the period, still open
  { at: '2026-11-27T04:00:00.000Z', step: 'raise', name: 'F1', key: { kind: 'offline', deviceId: 'S01.keypad' } }, // 27 Nov
  { at: '2026-11-27T05:00:00.000Z', step: 'clear', name: 'F1', key: { kind: 'offline', deviceId: 'S01.keypad' } }, // 27 Nov: recovered (fixed)
  { at: '2026-11-28T00:00:00.000Z', step: 'raise', name: 'F7', key: { kind: 'disk-low', subject: 'disk:/var/lib/lianfang' } }, // 28 Nov 08:00
  { at: '2026-11-30T16:10:00.000Z', step: 'raise', name: 'F2', key: { kind: 'low-battery', deviceId: 'S02.panic' } }, // 1 Dec 00:10 (30 Nov in UTC)
  { at: '2026-12-01T01:00:00.000Z', step: 'raise', name: 'F3', key: { kind: 'tamper', deviceId: 'S03.keypad' } }, // 1 Dec (compound)
  { at: '2026-12-01T02:00:00.000Z', step: 'raise', name: 'F6', key: { kind: 'offline', deviceId: 'S09.keypad' } }, // 1 Dec, other station
  { at: '2026-12-01T02:30:00.000Z', step: 'assign', name: 'F2', key: { kind: 'low-battery', deviceId: 'S02.panic' }, change: { action: 'assign', to: 'tech Wang' } },
  { at: '2026-12-01T03:00:00.000Z', step: 'clear', name: 'F3', key: { kind: 'tamper', deviceId: 'S03.keypad' } }, // 1 Dec: recovered (fixed)
  { at: '2026-12-01T10:00:00.000Z', step: 'raise', name: 'F5', key: { kind: 'selftest-failed', deviceId: 'S01.keypad' } }, // 1 Dec 18:00
  { at: '2026-12-01T12:00:00.000Z', step: 'fix', name: 'F5', key: { kind: 'selftest-failed', deviceId: 'S01.keypad' }, change: { action: 'fix', note: 'replaced the board', force: true } }, // 1 Dec 20:00: ticket fixed, fault not cleared
  { at: '2026-12-02T01:00:00.000Z', step: 'clear', name: 'F7', key: { kind: 'disk-low', subject: 'disk:/var/lib/lianfang' } }, // 2 Dec 09:00
];

const ZERO = { panic: 0, intrusion: 0, help: 0, duress: 0 };
const dur = (n: number, p50: number | null, p90: number | null, max: number | null) => ({ n, p50, p90, max });

/**
 * Every figure, by hand. Stats for SEED_PERIOD, bulletin for SEED_BULLETIN_DAY, health at SEED_NOW.
 * ack (PS1, not test, in the period): A01 30, A02 10, A03 50, A04 20, A16 15, A05 40, A06 5, A07 60,
 *   A09 90, A10 25 → sorted 5 10 15 20 25 30 40 50 60 90: n 10, p50 = 5th = 25, p90 = 9th = 60, max 90.
 * first reply (PS1): A01 20 (of 20, 50), A03 5.25, A05 15, A07 30, A10 45.46 → sorted 5.3 15 20 30 45.5:
 *   n 5, p50 = 3rd = 20, p90 = 5th = 45.5, max 45.5.
 * Compound: ack A07 60, A09 90 → p50 = 1st = 60, p90 = 2nd = 90; reply A07 30.
 * Faults, PS1 (+ the gateway's F7): opened in the period F1 27, F7 28, F2 1 Dec, F3 1 Dec, F5 1 Dec
 *   = 5 (F4 before, F6 other station); fixed F1 27, F3 1 Dec, F5 1 Dec, F7 2 Dec = 4.
 *   Compound: F3, F4 (before), F7 → opened F7 28, F3 1 Dec = 2; fixed F3 1 Dec, F7 2 Dec = 2.
 * Bulletin 1 Dec = [30 Nov 16:00Z, 1 Dec 16:00Z): A06, A07, A09, A10 (A08, A12 test; A05 is 30 Nov;
 *   A11 is 2 Dec). Faults open at its end: F2, F4, F5 (fixed, not cleared), F7 = 4.
 */
export const SEED_EXPECTED = {
  timeZone: 'Asia/Shanghai',
  stats: {
    PS1: {
      perDay: [
        { day: '2026-11-26', ...ZERO, panic: 1 }, // A01
        { day: '2026-11-27', ...ZERO, panic: 1 }, // A02
        { day: '2026-11-28', ...ZERO, panic: 1 }, // A03
        { day: '2026-11-29', ...ZERO, panic: 1, help: 1 }, // A16, A04
        { day: '2026-11-30', ...ZERO, intrusion: 1 }, // A05
        { day: '2026-12-01', ...ZERO, panic: 2, help: 1, duress: 1 }, // A07 A10, A09, A06
        { day: '2026-12-02', ...ZERO, intrusion: 1 }, // A11
      ],
      falseShare: [
        { shopId: 'S01', name: SEED_SHOPS[0].name, total: 4, real: 1, false: 3, malicious: 0, open: 0, sharePercent: 75, flagged: true }, // A01-A04 (A12 test, A14 before)
        { shopId: 'S03', name: SEED_SHOPS[2].name, total: 1, real: 0, false: 1, malicious: 0, open: 0, sharePercent: 100, flagged: false }, // A07: 1 decided < 3
        { shopId: 'S02', name: SEED_SHOPS[1].name, total: 2, real: 2, false: 0, malicious: 0, open: 0, sharePercent: 0, flagged: false }, // A05, A06
        { shopId: 'S04', name: SEED_SHOPS[3].name, total: 2, real: 0, false: 0, malicious: 0, open: 2, sharePercent: null, flagged: false }, // A09, A11
        { shopId: 'S05', name: SEED_SHOPS[4].name, total: 2, real: 0, false: 0, malicious: 1, open: 1, sharePercent: null, flagged: false }, // A10, A16
      ],
      threshold: { ratePercent: 50, minDecided: 3 },
      ackSeconds: dur(10, 25, 60, 90),
      firstReplySeconds: dur(5, 20, 45.5, 45.5),
      faults: {
        opened: 5,
        fixed: 4,
        perDay: [
          { day: '2026-11-26', opened: 0, fixed: 0 },
          { day: '2026-11-27', opened: 1, fixed: 1 }, // F1
          { day: '2026-11-28', opened: 1, fixed: 0 }, // F7
          { day: '2026-11-29', opened: 0, fixed: 0 },
          { day: '2026-11-30', opened: 0, fixed: 0 },
          { day: '2026-12-01', opened: 3, fixed: 2 }, // F2 F3 F5; F3 F5
          { day: '2026-12-02', opened: 0, fixed: 1 }, // F7
        ],
      },
    },
    'PS1-C1': {
      perDay: [
        { day: '2026-11-26', ...ZERO },
        { day: '2026-11-27', ...ZERO },
        { day: '2026-11-28', ...ZERO },
        { day: '2026-11-29', ...ZERO },
        { day: '2026-11-30', ...ZERO },
        { day: '2026-12-01', ...ZERO, panic: 1, help: 1 }, // A07, A09
        { day: '2026-12-02', ...ZERO, intrusion: 1 }, // A11
      ],
      falseShare: [
        { shopId: 'S03', name: SEED_SHOPS[2].name, total: 1, real: 0, false: 1, malicious: 0, open: 0, sharePercent: 100, flagged: false },
        { shopId: 'S04', name: SEED_SHOPS[3].name, total: 2, real: 0, false: 0, malicious: 0, open: 2, sharePercent: null, flagged: false },
      ],
      threshold: { ratePercent: 50, minDecided: 3 },
      ackSeconds: dur(2, 60, 90, 90),
      firstReplySeconds: dur(1, 30, 30, 30),
      faults: {
        opened: 2,
        fixed: 2,
        perDay: [
          { day: '2026-11-26', opened: 0, fixed: 0 },
          { day: '2026-11-27', opened: 0, fixed: 0 },
          { day: '2026-11-28', opened: 1, fixed: 0 }, // F7
          { day: '2026-11-29', opened: 0, fixed: 0 },
          { day: '2026-11-30', opened: 0, fixed: 0 },
          { day: '2026-12-01', opened: 1, fixed: 1 }, // F3
          { day: '2026-12-02', opened: 0, fixed: 1 }, // F7
        ],
      },
    },
  },
  bulletin: {
    PS1: {
      day: '2026-12-01',
      start: '2026-11-30T16:00:00.000Z',
      end: '2026-12-01T16:00:00.000Z',
      totals: { received: 4, dispatched: 2, real: 1, false: 1, malicious: 1, open: 1, test: 2, faultsOpened: 3, faultsFixed: 2, faultsOpen: 4 },
      byGrid: [
        { grid: '网格1', sector: 'B', received: 1, dispatched: 1, real: 1, false: 0, malicious: 0, open: 0 }, // A06
        { grid: '网格2', sector: 'A', received: 2, dispatched: 0, real: 0, false: 1, malicious: 0, open: 1 }, // A07, A09
        { grid: null, sector: null, received: 1, dispatched: 1, real: 0, false: 0, malicious: 1, open: 0 }, // A10
      ],
    },
    'PS1-C1': {
      day: '2026-12-01',
      start: '2026-11-30T16:00:00.000Z',
      end: '2026-12-01T16:00:00.000Z',
      // A07, A09 (A08 test); faults: F3 opened and fixed; open at the end: F4, F7.
      totals: { received: 2, dispatched: 0, real: 0, false: 1, malicious: 0, open: 1, test: 1, faultsOpened: 1, faultsFixed: 1, faultsOpen: 2 },
      byGrid: [{ grid: '网格2', sector: 'A', received: 2, dispatched: 0, real: 0, false: 1, malicious: 0, open: 1 }],
    },
  },
  /** Devices of PS1 at SEED_NOW, in the order listed (longest-standing problem first). */
  health: {
    PS1: [
      { deviceId: 'S04.keypad', problems: [{ kind: 'silent', since: '2026-11-25T02:00:00.000Z', forSeconds: 7 * 86400 + 2 * 3600 }], lastSeen: null, lastTested: null },
      { deviceId: 'S02.panic', problems: [{ kind: 'low-battery', since: '2026-11-30T16:10:00.000Z', forSeconds: 86400 + 11 * 3600 + 50 * 60, assignedTo: 'tech Wang' }], lastSeen: null, lastTested: null },
      {
        deviceId: 'S01.keypad',
        problems: [{ kind: 'selftest-failed', since: '2026-12-01T10:00:00.000Z', forSeconds: 18 * 3600 }],
        lastSeen: '2026-12-01T09:00:00.000Z',
        lastWalkTest: null,
        lastSelfTest: '2026-12-01T10:00:00.000Z',
        lastTested: '2026-12-01T10:00:00.000Z',
      },
      {
        deviceId: 'S03.keypad',
        problems: [],
        lastSeen: '2026-11-29T01:59:00.000Z',
        lastWalkTest: '2026-11-29T02:00:00.000Z',
        lastSelfTest: '2026-11-28T00:00:00.000Z',
        lastTested: '2026-11-29T02:00:00.000Z',
      },
      { deviceId: 'S05.keypad', problems: [], lastSeen: null, lastTested: null },
    ],
    'PS1-C1': ['S04.keypad', 'S03.keypad'],
  },
  /** Open tickets (`open=1`) at SEED_NOW: not cleared or not fixed, oldest first (F1, F3, F7 recovered; F6 other station). */
  openTickets: { PS1: ['F4', 'F2', 'F5'], 'PS1-C1': ['F4'] },
  /** Alarms in the CSV of SEED_PERIOD for PS1 (test alarms included, marked): every PS1 alarm but A14. */
  csvAlarms: { PS1: 13, 'PS1-C1': 4 },
} as const;

/** What the seed made: the fault ids by their names in FAULT_STEPS (F1…F7). */
export interface Seeded {
  faults: Record<string, string>;
}

/** A clock set by hand (the fault store is run at each step's time). */
class SetClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  setTimer() {
    return { cancel: () => {} };
  }
}

/** Write the seed into a fresh, migrated database (`gatewayKey`: for the devices' credentials). */
export function seedConsoleDb(db: Db, gatewayKey: Buffer): Seeded {
  const { station, compound, other } = SEED_STATIONS;
  addStation(db, { id: station.id, name: station.name, timeZone: 'Asia/Shanghai' });
  addStation(db, { id: compound.id, name: compound.name, compoundOf: compound.compoundOf });
  addStation(db, { id: other.id, name: other.name });
  for (const s of SEED_SHOPS) addShop(db, { ...s });
  for (const d of SEED_DEVICES) {
    addDevice(db, gatewayKey, { id: d.id, shopId: d.shop, type: d.type, transport: 'mqtt' });
    if ('revoked' in d) revokeDevice(db, d.id);
  }
  const repo = new AlarmRepo(db);
  const byId = new Map<string, { stationId: string; compoundId?: string }>(SEED_SHOPS.map((s) => [s.id, s]));
  const at = (base: string, s: number) => new Date(Date.parse(base) + Math.round(s * 1000)).toISOString();
  const audit = db.prepare('INSERT INTO audit (alarm_id, at, actor, action, from_state, to_state, rev, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const a of SEED_ALARMS) {
      const shop = byId.get(a.shop)!;
      repo.insertAlarm({
        id: a.id,
        gatewayId: 'gw-seed',
        shopId: a.shop,
        stationId: shop.stationId,
        compoundId: shop.compoundId ?? null,
        state: 'raised',
        kind: a.kind,
        duress: !!a.duress,
        test: !!a.test,
        shopsEnded: false,
        raisedAt: a.raisedAt,
        originEventId: null,
      });
      let rev = 1;
      audit.run(a.id, a.raisedAt, 'device:seed', 'raised', null, 'raised', rev, JSON.stringify({ kind: a.kind }));
      const officer = shop.compoundId ? SEED_USERS.compound.name : SEED_USERS.station.name;
      if (a.ack !== undefined) audit.run(a.id, at(a.raisedAt, a.ack), `user:${officer}`, 'ack', 'raised', 'acknowledged', ++rev, '{}');
      (a.replies ?? []).forEach((s, i) => {
        const neighbour = SEED_SHOPS.find((x) => x.id !== a.shop)!.id;
        const ts = at(a.raisedAt, s);
        if (i === 0) db.prepare('INSERT INTO alarm_recipients (alarm_id, shop_id, ring, distance_m, alerted_at) VALUES (?, ?, 1, 20, ?)').run(a.id, neighbour, a.raisedAt);
        db.prepare('INSERT INTO alarm_replies (alarm_id, shop_id, reply, actor, at) VALUES (?, ?, ?, ?, ?)').run(a.id, neighbour, i === 0 ? 'seen' : 'coming', `shop:${neighbour}`, ts);
        audit.run(a.id, ts, `shop:${neighbour}`, 'reply', null, null, ++rev, JSON.stringify({ shopId: neighbour, reply: i === 0 ? 'seen' : 'coming' }));
      });
      if (a.dispatch !== undefined) audit.run(a.id, at(a.raisedAt, a.dispatch), `user:${officer}`, 'dispatch', 'acknowledged', 'dispatched', ++rev, JSON.stringify({ patrol: a.patrol ?? null, note: null }));
      if (a.state === 'cancelled') audit.run(a.id, at(a.raisedAt, 120), 'device:seed', 'cancel', 'acknowledged', 'cancelled', ++rev, '{}');
      const closedAt = a.close !== undefined ? at(a.raisedAt, a.close) : null;
      if (closedAt) audit.run(a.id, closedAt, a.test ? 'gateway' : `user:${officer}`, 'close', 'dispatched', 'closed', ++rev, JSON.stringify({ disposition: a.disposition, note: a.note ?? null }));
      db.prepare('UPDATE alarms SET state = ?, rev = ?, disposition = ?, closed_at = ?, patrol = ?, taken_by = ?, updated_at = ? WHERE id = ?').run(
        a.state,
        rev,
        a.disposition ?? null,
        closedAt,
        a.patrol ?? null,
        a.ack !== undefined ? officer : null,
        closedAt ?? a.raisedAt,
        a.id,
      );
    }
    // Last heard: S01's keypad (an event), S03's keypad (the event its walk test passed on).
    const ev = db.prepare("INSERT INTO events (device_id, boot, seq, type, payload, via, received_at) VALUES (?, 1, ?, ?, '{}', 'mqtt', ?)");
    ev.run('S01.keypad', 1, 'heartbeat', '2026-12-01T09:00:00.000Z');
    const walkEvent = Number(ev.run('S03.keypad', 1, 'panic', '2026-11-29T01:59:00.000Z').lastInsertRowid);
    recordWalkPass(db, { deviceId: 'S03.keypad', shopId: 'S03', eventId: walkEvent, eventType: 'panic', eventAt: '2026-11-29T01:59:00.000Z' }, 'cli:installer', Date.parse('2026-11-29T02:00:00.000Z'));
    // Self-tests the supervisor stored (ms since the epoch, meta last_selftest:{id}).
    setMeta(db, 'last_selftest:S01.keypad', String(Date.parse('2026-12-01T10:00:00.000Z')));
    setMeta(db, 'last_selftest:S03.keypad', String(Date.parse('2026-11-28T00:00:00.000Z')));
  })();

  const clock = new SetClock(0);
  const store = FaultStore.offline(db, clock);
  const faults: Record<string, string> = {};
  for (const s of FAULT_STEPS) {
    clock.t = Date.parse(s.at);
    db.transaction(() => {
      const fx = new Effects();
      if (s.step === 'raise') faults[s.name] = store.raiseIn(fx, { ...s.key } as Parameters<FaultStore['raiseIn']>[1])!.faultId;
      else if (s.step === 'clear') store.clearIn(fx, s.key, { how: 'recovered', by: 'gateway' });
      else store.ticketIn(fx, faults[s.name]!, s.change!, `user:${SEED_USERS.station.name}`);
    }).immediate();
  }
  store.stop();
  return { faults };
}

/** Seed a fresh data directory (its database, gateway key and the officer accounts). */
export async function seedConsoleDir(dataDir: string): Promise<Seeded> {
  const db = openDatabase(dataDir);
  try {
    const seeded = seedConsoleDb(db, loadOrCreateGatewayKey(dataDir));
    for (const u of Object.values(SEED_USERS)) await addUser(db, { ...u, password: SEED_PASSWORD });
    return seeded;
  } finally {
    db.close();
  }
}
