/**
 * The one fault store (docs/concepts.md "Faults and test mode"; issue 9, "Faults and
 * maintenance tickets"). Every fault, whoever detects it (the supervisor's device conditions, the
 * ingest's counter-reset, the flood guard, the alarm engine's PIN lock-out, the gateway's own
 * monitors through GatewayFaultSink), is a row of `faults` with a UUIDv7 `faultId` and a `rev` (1
 * when raised, +1 at every change: cleared, ticket assigned, ticket fixed), and every change is
 * written with its outbox rows in one transaction: one row per console (recipient kind `fault`,
 * the station or compound id, the faultId in `alarm_id`), delivered by an officer's PUBACK on the
 * station's faults topic, re-sent when a console subscribes to it and periodically, a newer rev
 * superseding an older undelivered one. So a console that connects later gets every open fault,
 * and the latest rev of every fault that changed while it was away.
 *
 * Who a fault goes to: a device's or a shop's fault to the shop's consoles (its station, and its
 * compound's receiving point when it has one); a bus's port-failed to the consoles of the shops
 * with a device on that bus (every station console when none has one); the gateway's own faults
 * (disk, database) to every station console of the gateway.
 *
 * Every fault opens a maintenance ticket (open → assigned → fixed). A ticket closes itself when the
 * cause recovers (`recovered`, fixed by the device or the gateway, at the clear); a revoked or
 * removed device's faults close as `revoked` / `removed` (nothing was repaired). `fault fix` on a
 * fault whose cause still holds is refused (LF_ERR_FAULT_ACTIVE) unless forced: "fixed" while the
 * device is still dead is the silent failure this store is against.
 *
 * A `db-error` is special: a database that cannot be written cannot store it. It is published at
 * once to every station console (QoS 1, not an outbox row), kept in memory, and stored with its
 * outbox rows once the database writes again (at its clear, or at a later raise); so is its clear.
 */
import type { Clock, Timer } from '../clock.js';
import { iso, systemClock } from '../clock.js';
import { createLogger, type Logger } from '../logger.js';
import type { Counters } from '../metrics.js';
import type { Db } from '../store/db.js';
import type { Effects, GroupCommitWriter } from '../ingest/writer.js';
import { RegistryCache } from '../registry/registry-cache.js';
import { Outbox } from '../delivery/outbox.js';
import { getMeta } from '../store/db.js';
import { newAlarmId } from '../ids.js';
import { lfError } from '../errors.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { ConsoleFault, FaultTicket, TicketState } from '../../firmware-contracts/mqtt/payloads.js';
import type { GatewayFaultKind, GatewayFaultSink, GatewaySubject } from './gateway-faults.js';

/** Faults that hold while their condition lasts, one row each, cleared by the device itself. */
export const CONDITION_FAULTS = ['silent', 'offline', 'tamper', 'low-battery', 'selftest-failed', 'selftest-missed', 'line-errors', 'door-held'] as const;
export type ConditionFault = (typeof CONDITION_FAULTS)[number];
export type DeviceFaultKind = ConditionFault | 'counter-reset' | 'flood';
/** `nobody-on-duty`: an alarm raised while no officer was signed on in any scope covering it (gateway/console/shifts.ts). */
export type FaultKind = DeviceFaultKind | 'pin-lockout' | 'nobody-on-duty' | GatewayFaultKind;

/** What an officer reads for each kind (console notices are also in Chinese). */
export const FAULT_TEXT: Readonly<Record<FaultKind, { en: string; zh: string }>> = {
  silent: { en: 'Device silent', zh: '设备无响应' },
  offline: { en: 'Device offline', zh: '设备离线' },
  tamper: { en: 'Device tampered with', zh: '设备被拆动' },
  'low-battery': { en: 'Low battery', zh: '电池电量低' },
  'selftest-failed': { en: 'Self-test failed', zh: '设备自检失败' },
  'selftest-missed': { en: 'Self-test missed', zh: '设备未按时自检' },
  'line-errors': { en: 'Line errors', zh: '线路通信错误' },
  'door-held': { en: 'Door held open', zh: '门长时间未关' },
  'counter-reset': { en: 'Device counter went back', zh: '设备计数器回退' },
  flood: { en: 'Device floods events', zh: '设备事件过多' },
  'pin-lockout': { en: 'PIN locked out', zh: '密码错误次数过多，已锁定' },
  'nobody-on-duty': { en: 'Alarm raised with nobody on duty', zh: '报警时无人值班' },
  'disk-low': { en: 'Gateway disk low', zh: '网关磁盘空间不足' },
  'db-error': { en: 'Gateway database error', zh: '网关数据库错误' },
  'port-failed': { en: 'Bus port failed', zh: '总线端口故障' },
  'node-red-down': { en: 'Node-RED automations stopped', zh: 'Node-RED 自动化流程已停止' },
};
const CLEARED_TEXT = { en: ' (cleared)', zh: '（已恢复）' };

/** A fault is found by its kind and its device, or its kind and its subject. */
export type FaultKey = { kind: FaultKind; deviceId: string; subject?: undefined } | { kind: FaultKind; subject: string; deviceId?: undefined };

export interface RaiseSpec {
  kind: FaultKind;
  deviceId?: string;
  subject?: string;
  /** A fault without a device that has a shop (pin-lockout). */
  shopId?: string;
  /** A fault of a scope without a shop (nobody-on-duty): its station and compound. */
  stationId?: string;
  compoundId?: string | null;
  detail?: Record<string, unknown>;
  /** The message's `at` (silent: when the device was last heard); default now. */
  at?: number;
}

/** How a fault ended: its cause went away, its device left supervision, or the installer reset it. */
export type ClearHow = 'recovered' | 'revoked' | 'removed' | 'reset';

export interface ClearSpec {
  how: ClearHow;
  /** Who ended it: `device:<id>`, `gateway`, the installer's actor. */
  by: string;
  /** The final detail (a flood's dropped count), merged into the stored one. */
  detail?: Record<string, unknown>;
}

export type TicketChange = { action: 'assign'; to: string } | { action: 'fix'; note: string; force?: boolean };

export interface FaultRecord {
  faultId: string;
  kind: FaultKind;
  deviceId: string | null;
  subject: string | null;
  shopId: string | null;
  stationId: string | null;
  compoundId: string | null;
  rev: number;
  detail: Record<string, unknown> | null;
  raisedAt: string;
  clearedAt: string | null;
  clearedHow: ClearHow | null;
  ticket: TicketState;
  assignedTo: string | null;
  assignedBy: string | null;
  assignedAt: string | null;
  fixedBy: string | null;
  fixedAt: string | null;
  fixNote: string | null;
  recovered: boolean;
  closedAs: FaultTicket['closedAs'] | null;
  updatedAt: string;
}

const COLUMNS = `id AS faultId, kind, device_id AS deviceId, subject, shop_id AS shopId, station_id AS stationId, compound_id AS compoundId, rev, detail,
  raised_at AS raisedAt, cleared_at AS clearedAt, cleared_how AS clearedHow, ticket, assigned_to AS assignedTo, assigned_by AS assignedBy,
  assigned_at AS assignedAt, fixed_by AS fixedBy, fixed_at AS fixedAt, fix_note AS fixNote, recovered, closed_as AS closedAs, updated_at AS updatedAt`;

type RawRecord = Omit<FaultRecord, 'detail' | 'recovered'> & { detail: string | null; recovered: number };
const fromRaw = (r: RawRecord): FaultRecord => ({ ...r, detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null, recovered: r.recovered === 1 });

/** The ticket as the consoles see it. */
export function ticketOf(f: FaultRecord): FaultTicket {
  return {
    state: f.ticket,
    ...(f.assignedTo ? { assignedTo: f.assignedTo, assignedBy: f.assignedBy ?? undefined, assignedAt: f.assignedAt ?? undefined } : {}),
    ...(f.fixedBy ? { fixedBy: f.fixedBy, fixedAt: f.fixedAt ?? undefined } : {}),
    ...(f.fixNote ? { note: f.fixNote } : {}),
    ...(f.ticket === 'fixed' ? { recovered: f.recovered, closedAs: f.closedAs ?? undefined } : {}),
  };
}

/** Fields of a kind's detail that the fault message carried at its top level before faults had ids (kept: none renamed). */
const TOP_LEVEL = ['dropped', 'result', 'errors', 'lockedUntil'] as const;

/** The console message of a fault's current rev. */
export function faultMessage(f: FaultRecord, at: string, gatewayId: string): ConsoleFault {
  const text = FAULT_TEXT[f.kind] ?? { en: f.kind, zh: f.kind };
  const cleared = f.clearedAt !== null;
  const msg: ConsoleFault = {
    faultId: f.faultId,
    rev: f.rev,
    fault: f.kind,
    state: cleared ? 'cleared' : 'raised',
    ...(f.deviceId ? { deviceId: f.deviceId } : typeof f.detail?.deviceId === 'string' ? { deviceId: f.detail.deviceId } : {}),
    ...(f.shopId ? { shopId: f.shopId } : {}),
    ...(f.subject ? { subject: f.subject } : {}),
    at,
    raisedAt: f.raisedAt,
    ...(f.clearedAt ? { clearedAt: f.clearedAt } : {}),
    updatedAt: f.updatedAt,
    ticket: ticketOf(f),
    text: cleared ? { en: text.en + CLEARED_TEXT.en, zh: text.zh + CLEARED_TEXT.zh } : text,
    ...(f.detail ? { detail: f.detail } : {}),
    gatewayId,
  };
  for (const k of TOP_LEVEL) if (f.detail && f.detail[k] !== undefined) (msg as Record<string, unknown>)[k] = f.detail[k];
  return msg;
}

export interface FaultStoreContext {
  db: Db;
  outbox: Outbox;
  registry: RegistryCache;
  clock: Clock;
  log: Logger;
  counters?: Counters;
  gatewayId: string;
  /** The running gateway's writer (absent on a stopped gateway's database, where callers run the ...In methods in their own transaction). */
  writer?: GroupCommitWriter;
  /** A direct QoS 1 publish, for the db-error that cannot wait for the database. */
  publish?: (topic: string, payload: string) => void;
  /** After the commit of each change of a fault or its ticket: its console message (to Node-RED's flows); a db-error's at once, not waiting for the database. */
  onMessage?: (fault: ConsoleFault) => void;
}

/** What to do with a fault's id given on the command line: the whole id or a unique prefix. */
const ID_PREFIX = /^[0-9a-f-]{4,36}$/;

/** A fault still open for the installer: not cleared, or its ticket not fixed (`fault list --open`, `device list`). */
export const OPEN_FAULT_SQL = "(cleared_at IS NULL OR ticket != 'fixed')";

export class FaultStore implements GatewayFaultSink {
  /** Lock-outs' ends: subject → timer, re-armed from the stored lockedUntil at start. */
  private readonly lockoutTimers = new Map<string, Timer>();
  /** The db-error the database could not take yet (published directly, stored when it writes again). */
  private dbFault: { record: FaultRecord; at: string } | null = null;
  private stopped = false;

  constructor(private readonly ctx: FaultStoreContext) {}

  /**
   * The store on a stopped gateway's database (the CLI): changes are written with their outbox
   * rows in the caller's transaction, and the gateway sends them when it starts (the consoles'
   * subscriptions and the periodic retry re-send every undelivered row).
   */
  static offline(db: Db, clock: Clock = systemClock): FaultStore {
    const registry = new RegistryCache(db);
    registry.reload();
    return new FaultStore({
      db,
      registry,
      clock,
      outbox: new Outbox(db, { publish: () => {} }),
      log: createLogger('silent'),
      gatewayId: getMeta(db, 'gateway_id') ?? '',
    });
  }

  /** After the registry is loaded: re-arm lock-out ends; floods left open by the last run are over (every bucket starts full). */
  start(): void {
    for (const f of this.openFaults()) {
      if (f.kind === 'pin-lockout' && f.subject) this.armLockoutEnd(f.subject, f.detail);
      if (f.kind === 'flood' && f.deviceId) void this.clear({ kind: 'flood', deviceId: f.deviceId }, { how: 'recovered', by: 'gateway' });
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.lockoutTimers.values()) t.cancel();
    this.lockoutTimers.clear();
  }

  // ------------------------------------------------------------------------------ reading

  /** Open faults (not cleared), oldest first: for /health and the supervisor's start. */
  openFaults(): FaultRecord[] {
    return (this.ctx.db.prepare(`SELECT ${COLUMNS} FROM faults WHERE cleared_at IS NULL ORDER BY raised_at, rowid`).all() as RawRecord[]).map(fromRaw);
  }

  /** Open faults as /health lists them (with the db-error the database has not taken yet). */
  health(): { faultId: string; rev: number; fault: FaultKind; deviceId?: string; subject?: string; shopId?: string; raisedAt: string; detail?: Record<string, unknown>; ticket: FaultTicket }[] {
    const open = this.dbFault && this.dbFault.record.clearedAt === null ? [this.dbFault.record] : [];
    return [...this.openFaultsSafely(), ...open].map((f) => ({
      faultId: f.faultId,
      rev: f.rev,
      fault: f.kind,
      ...(f.deviceId ? { deviceId: f.deviceId } : {}),
      ...(f.subject ? { subject: f.subject } : {}),
      ...(f.shopId ? { shopId: f.shopId } : {}),
      raisedAt: f.raisedAt,
      ...(f.detail ? { detail: f.detail } : {}),
      ticket: ticketOf(f),
    }));
  }

  private openFaultsSafely(): FaultRecord[] {
    try {
      return this.openFaults();
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'could not read the open faults');
      return [];
    }
  }

  /** Faults for `lianfang fault list`: `open` = ticket not fixed or fault not cleared; `station` = its scope (gateway-wide faults included). */
  list(filter: { open?: boolean; station?: string } = {}): FaultRecord[] {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.open) where.push(OPEN_FAULT_SQL);
    if (filter.station) {
      where.push('(station_id = ? OR compound_id = ? OR station_id IS NULL)');
      args.push(filter.station, filter.station);
    }
    // rowid after the raise time: two faults raised in one millisecond have UUIDv7s in random order.
    const sql = `SELECT ${COLUMNS} FROM faults ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY raised_at, rowid`;
    return (this.ctx.db.prepare(sql).all(...args) as RawRecord[]).map(fromRaw);
  }

  get(faultId: string): FaultRecord | undefined {
    const r = this.ctx.db.prepare(`SELECT ${COLUMNS} FROM faults WHERE id = ?`).get(faultId) as RawRecord | undefined;
    return r && fromRaw(r);
  }

  /** The fault a whole id or a unique prefix names (like git). */
  resolve(idOrPrefix: string): FaultRecord {
    const q = idOrPrefix.trim().toLowerCase();
    if (!ID_PREFIX.test(q)) throw lfError('LF_ERR_INVALID_ARGUMENT', 'fault id', 'a fault id or at least 4 of its first characters');
    const rows = this.ctx.db.prepare(`SELECT ${COLUMNS} FROM faults WHERE id >= ? AND id < ? ORDER BY id LIMIT 6`).all(q, q + '\uffff') as RawRecord[];
    if (rows.length === 0) throw lfError('LF_ERR_NOT_FOUND', 'fault', idOrPrefix);
    if (rows.length > 1) throw lfError('LF_ERR_AMBIGUOUS_ID', 'fault id', idOrPrefix, rows.map((r) => r.faultId).join(', '));
    return fromRaw(rows[0]!);
  }

  private findOpen(key: FaultKey): FaultRecord | undefined {
    const r = this.ctx.db
      .prepare(`SELECT ${COLUMNS} FROM faults WHERE kind = ? AND device_id IS ? AND subject IS ? AND cleared_at IS NULL`)
      .get(key.kind, key.deviceId ?? null, key.subject ?? null) as RawRecord | undefined;
    return r && fromRaw(r);
  }

  // ------------------------------------------------------------------------------ changes, inside a transaction

  /**
   * Inside a transaction: raise a fault, unless one is open for its key; an open one whose detail
   * changed (a counter-reset at another boot, a lock-out renewed) is a new rev. Returns the fault
   * when it changed.
   */
  raiseIn(fx: Effects, spec: RaiseSpec): FaultRecord | undefined {
    const key = (spec.deviceId ? { kind: spec.kind, deviceId: spec.deviceId } : { kind: spec.kind, subject: spec.subject! }) as FaultKey;
    const now = this.ctx.clock.now();
    const before = this.findOpen(key);
    const detailJson = spec.detail && Object.keys(spec.detail).length ? JSON.stringify(spec.detail) : null;
    if (before) {
      if (detailJson === null || detailJson === JSON.stringify(before.detail)) return undefined;
      this.ctx.db.prepare('UPDATE faults SET detail = ?, rev = rev + 1, updated_at = ? WHERE id = ?').run(detailJson, iso(now), before.faultId);
      // A lock-out renewed ends later.
      if (spec.kind === 'pin-lockout' && spec.subject) fx.afterCommit(() => this.armLockoutEnd(spec.subject!, spec.detail ?? null));
      return this.announce(fx, before.faultId, spec.at ?? now);
    }
    const scope = this.scopeOf(spec);
    const id = newAlarmId(now);
    this.ctx.db
      .prepare(
        `INSERT INTO faults (id, kind, device_id, subject, shop_id, station_id, compound_id, rev, detail, raised_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
      )
      .run(id, spec.kind, spec.deviceId ?? null, spec.subject ?? null, scope.shopId, scope.stationId, scope.compoundId, detailJson, iso(now), iso(now));
    const f = this.announce(fx, id, spec.at ?? now);
    fx.afterCommit(() => this.ctx.counters?.inc('faults.raised'));
    if (spec.kind === 'pin-lockout' && spec.subject) fx.afterCommit(() => this.armLockoutEnd(spec.subject!, spec.detail ?? null));
    return f;
  }

  /** Inside a transaction: the open fault of `key` clears (its ticket closes, unless someone already fixed it). Returns it when there was one. */
  clearIn(fx: Effects, key: FaultKey, spec: ClearSpec): FaultRecord | undefined {
    const before = this.findOpen(key);
    if (!before) return undefined;
    const now = iso(this.ctx.clock.now());
    const detail = spec.detail ? JSON.stringify({ ...(before.detail ?? {}), ...spec.detail }) : before.detail ? JSON.stringify(before.detail) : null;
    const closedAs = spec.how === 'reset' ? 'fixed' : spec.how;
    this.ctx.db
      .prepare(
        `UPDATE faults SET cleared_at = ?, cleared_how = ?, detail = ?, rev = rev + 1, updated_at = ?,
           fixed_by = CASE WHEN ticket = 'fixed' THEN fixed_by ELSE ? END,
           fixed_at = CASE WHEN ticket = 'fixed' THEN fixed_at ELSE ? END,
           recovered = CASE WHEN ticket = 'fixed' THEN recovered ELSE ? END,
           closed_as = CASE WHEN ticket = 'fixed' THEN closed_as ELSE ? END,
           ticket = 'fixed'
         WHERE id = ?`,
      )
      .run(now, spec.how, detail, now, spec.by, now, spec.how === 'recovered' ? 1 : 0, closedAs, before.faultId);
    fx.afterCommit(() => this.ctx.counters?.inc('faults.cleared'));
    return this.announce(fx, before.faultId, this.ctx.clock.now());
  }

  /**
   * Inside a transaction: a ticket change by a person (`lianfang fault assign|fix`), audited.
   * Assigning a closed ticket is refused; fixing a fault whose cause still holds is refused
   * (LF_ERR_FAULT_ACTIVE) unless `force`; a ticket that closed itself at a recovery may still get
   * the technician's fix note (what was repaired).
   */
  ticketIn(fx: Effects, faultId: string, change: TicketChange, actor: string): FaultRecord {
    const f = this.get(faultId);
    if (!f) throw lfError('LF_ERR_NOT_FOUND', 'fault', faultId);
    const now = iso(this.ctx.clock.now());
    const db = this.ctx.db;
    if (change.action === 'assign') {
      if (f.ticket === 'fixed') throw lfError('LF_ERR_TICKET_CLOSED', f.faultId, f.closedAs ?? 'fixed');
      db.prepare("UPDATE faults SET ticket = 'assigned', assigned_to = ?, assigned_by = ?, assigned_at = ?, rev = rev + 1, updated_at = ? WHERE id = ?").run(change.to, actor, now, now, f.faultId);
    } else {
      if (f.ticket === 'fixed' && f.closedAs !== 'recovered') throw lfError('LF_ERR_TICKET_CLOSED', f.faultId, f.closedAs ?? 'fixed');
      if (f.clearedAt === null && !change.force) throw lfError('LF_ERR_FAULT_ACTIVE', f.faultId, f.kind);
      db.prepare(
        "UPDATE faults SET ticket = 'fixed', fixed_by = ?, fixed_at = ?, fix_note = ?, closed_as = CASE WHEN closed_as = 'recovered' THEN 'recovered' ELSE 'fixed' END, rev = rev + 1, updated_at = ? WHERE id = ?",
      ).run(actor, now, change.note, now, f.faultId);
    }
    const after = this.announce(fx, f.faultId, this.ctx.clock.now());
    db.prepare('INSERT INTO audit (alarm_id, at, actor, action, rev, detail) VALUES (NULL, ?, ?, ?, ?, ?)').run(
      now,
      actor,
      `fault-${change.action}`,
      after.rev,
      JSON.stringify({ faultId: f.faultId, kind: f.kind, ...(f.deviceId ? { deviceId: f.deviceId } : { subject: f.subject }), ...change, active: f.clearedAt === null }),
    );
    return after;
  }

  // ------------------------------------------------------------------------------ changes through the writer

  /** Raise in a writer item of its own; errors are logged (the condition is still held by its detector). */
  raise(spec: RaiseSpec): Promise<FaultRecord | undefined> {
    return this.run((fx) => this.raiseIn(fx, spec), { kind: spec.kind, deviceId: spec.deviceId, subject: spec.subject, change: 'raise' });
  }

  clear(key: FaultKey, spec: ClearSpec): Promise<FaultRecord | undefined> {
    return this.run((fx) => this.clearIn(fx, key, spec), { ...key, change: 'clear' });
  }

  private run<T>(fn: (fx: Effects) => T, what: Record<string, unknown>): Promise<T | undefined> {
    const writer = this.ctx.writer;
    if (!writer || this.stopped) return Promise.resolve(undefined);
    return writer.run(fn, 'fault').catch((err) => {
      this.ctx.log.error({ err, ...what }, 'could not store a fault change');
      return undefined;
    });
  }

  // ------------------------------------------------------------------------------ the gateway's own faults

  raiseGateway(kind: GatewayFaultKind, subject: GatewaySubject, detail?: Record<string, unknown>): void {
    if (kind === 'db-error') return this.raiseDbError(subject, detail);
    this.ctx.log.warn({ kind, subject, ...detail }, `gateway fault raised: ${kind}`);
    void this.raise({ kind, subject, ...(detail ? { detail } : {}) });
  }

  clearGateway(kind: GatewayFaultKind, subject: GatewaySubject): void {
    if (kind === 'db-error' && this.dbFault) return this.clearDbError();
    void this.clear({ kind, subject }, { how: 'recovered', by: 'gateway' }).then((f) => f && this.ctx.log.info({ kind, subject, faultId: f.faultId }, `gateway fault cleared: ${kind}`));
  }

  /** The db-error the database has not taken yet (for /health), if any. */
  unstoredDbError(): FaultRecord | undefined {
    return this.dbFault?.record;
  }

  private raiseDbError(subject: GatewaySubject, detail?: Record<string, unknown>): void {
    if (this.dbFault && this.dbFault.record.clearedAt === null) return;
    if (!this.dbFault && this.findOpenSafely({ kind: 'db-error', subject })) return;
    const now = this.ctx.clock.now();
    const at = iso(now);
    const record: FaultRecord = {
      faultId: newAlarmId(now),
      kind: 'db-error',
      deviceId: null,
      subject,
      shopId: null,
      stationId: null,
      compoundId: null,
      rev: 1,
      detail: detail ?? null,
      raisedAt: at,
      clearedAt: null,
      clearedHow: null,
      ticket: 'open',
      assignedTo: null,
      assignedBy: null,
      assignedAt: null,
      fixedBy: null,
      fixedAt: null,
      fixNote: null,
      recovered: false,
      closedAs: null,
      updatedAt: at,
    };
    this.dbFault = { record, at };
    this.ctx.counters?.inc('faults.raised');
    this.ctx.log.error({ kind: 'db-error', subject, faultId: record.faultId, ...detail }, 'gateway fault raised: db-error (published at once; stored when the database writes again)');
    this.publishDirect(record, at);
    this.storeDbError();
  }

  private clearDbError(): void {
    const m = this.dbFault!;
    if (m.record.clearedAt !== null) return this.storeDbError();
    const at = iso(this.ctx.clock.now());
    Object.assign(m.record, { clearedAt: at, clearedHow: 'recovered', rev: m.record.rev + 1, updatedAt: at, ticket: 'fixed', fixedBy: 'gateway', fixedAt: at, recovered: true, closedAs: 'recovered' });
    m.at = at;
    this.ctx.counters?.inc('faults.cleared');
    this.ctx.log.info({ kind: 'db-error', faultId: m.record.faultId }, 'gateway fault cleared: db-error');
    this.publishDirect(m.record, at);
    this.storeDbError();
  }

  /** Write the in-memory db-error as it is now, with its outbox rows; kept in memory until that commits. */
  private storeDbError(): void {
    const m = this.dbFault;
    if (!m || !this.ctx.writer) return;
    const r = { ...m.record };
    this.ctx.writer
      .run((fx) => {
        const db = this.ctx.db;
        db.prepare('DELETE FROM faults WHERE id = ?').run(r.faultId);
        db.prepare(
          `INSERT INTO faults (id, kind, device_id, subject, shop_id, station_id, compound_id, rev, detail, raised_at, cleared_at, cleared_how, ticket, fixed_by, fixed_at, recovered, closed_as, updated_at)
           VALUES (?, 'db-error', NULL, ?, NULL, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(r.faultId, r.subject, r.rev, r.detail ? JSON.stringify(r.detail) : null, r.raisedAt, r.clearedAt, r.clearedHow, r.ticket, r.fixedBy, r.fixedAt, r.recovered ? 1 : 0, r.closedAs, r.updatedAt);
        // Flows heard of this rev at once, with its direct publish.
        this.enqueue(fx, r, m.at, false);
      }, 'fault')
      .then(() => {
        // Stored as it was; a change made meanwhile is stored by its own call.
        if (this.dbFault === m && m.record.rev === r.rev) this.dbFault = null;
        this.ctx.log.info({ faultId: r.faultId, rev: r.rev }, 'db-error fault stored');
      })
      .catch((err) => this.ctx.log.warn({ err: (err as Error).message, faultId: r.faultId }, 'db-error fault not stored yet: the database does not write; kept in memory'));
  }

  private findOpenSafely(key: FaultKey): FaultRecord | undefined {
    try {
      return this.findOpen(key);
    } catch {
      return undefined;
    }
  }

  /** The db-error's change to every console and to the flows, now: the database may not write for a long while. */
  private publishDirect(f: FaultRecord, at: string): void {
    const body = faultMessage(f, at, this.ctx.gatewayId);
    const payload = JSON.stringify(body);
    for (const stationId of this.consolesOf(f)) this.ctx.publish?.(topics.stationFaults(stationId), payload);
    this.ctx.onMessage?.(body);
  }

  // ------------------------------------------------------------------------------ lock-outs

  /** A pin-lockout clears when its lock-out ends (the stored lockedUntil, so a restart re-arms it). */
  private armLockoutEnd(subject: string, detail: Record<string, unknown> | null): void {
    if (this.stopped) return;
    const until = typeof detail?.lockedUntil === 'string' ? Date.parse(detail.lockedUntil) : NaN;
    this.lockoutTimers.get(subject)?.cancel();
    const ms = Number.isFinite(until) ? Math.max(0, until - this.ctx.clock.now()) : 0;
    this.lockoutTimers.set(
      subject,
      this.ctx.clock.setTimer(ms, () => {
        this.lockoutTimers.delete(subject);
        void this.clear({ kind: 'pin-lockout', subject }, { how: 'recovered', by: 'gateway' });
      }),
    );
  }

  // ------------------------------------------------------------------------------ delivery

  /** After a change of `faultId` in this transaction: its outbox rows, one per console. */
  private announce(fx: Effects, faultId: string, atMs: number): FaultRecord {
    const f = this.get(faultId)!;
    this.enqueue(fx, f, iso(atMs));
    return f;
  }

  private enqueue(fx: Effects, f: FaultRecord, at: string, toFlows = true): void {
    const body = faultMessage(f, at, this.ctx.gatewayId);
    const now = this.ctx.clock.now();
    const tap = this.ctx.onMessage;
    if (tap && toFlows) fx.afterCommit(() => tap(body));
    for (const stationId of this.consolesOf(f)) {
      this.ctx.outbox.enqueue(fx, now, { kind: 'fault', alarmId: f.faultId, rev: f.rev, recipientId: stationId, topic: topics.stationFaults(stationId), body });
    }
  }

  /** A fault's scope when raised: its shop's station and compound (a device's, or the one named). */
  private scopeOf(spec: RaiseSpec): { shopId: string | null; stationId: string | null; compoundId: string | null } {
    const { registry } = this.ctx;
    const shopId = spec.shopId ?? (spec.deviceId ? registry.devices.get(spec.deviceId)?.shopId : undefined);
    const shop = shopId ? registry.shops.get(shopId) : undefined;
    if (!shop && spec.stationId) return { shopId: null, stationId: spec.stationId, compoundId: spec.compoundId ?? null };
    return { shopId: shopId ?? null, stationId: shop?.stationId ?? null, compoundId: shop?.compoundId ?? null };
  }

  /** The consoles a fault goes to (the module comment says why these). */
  private consolesOf(f: Pick<FaultRecord, 'stationId' | 'compoundId' | 'subject'>): string[] {
    if (f.stationId) return f.compoundId ? [f.stationId, f.compoundId] : [f.stationId];
    const { registry } = this.ctx;
    if (f.subject?.startsWith('bus:')) {
      const busId = f.subject.slice(4);
      const out = new Set<string>();
      for (const d of registry.devices.values()) {
        const shop = d.bus === busId && !d.revokedAt ? registry.shops.get(d.shopId) : undefined;
        if (shop) for (const s of registry.consolesFor(shop)) out.add(s);
      }
      if (out.size > 0) return [...out];
    }
    return [...registry.stations.keys()];
  }
}
