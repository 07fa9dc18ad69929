/**
 * Wired buses: a serial line (RS-485 keypads, Modbus RTU modules) or a Modbus TCP endpoint. A bus is
 * created the first time a device is registered on it (`device add --transport serial --port …`)
 * and shared by every device with the same port (or host and port) after that.
 */
import { basename } from 'node:path';
import type { Db } from '../store/db.js';
import { lfError } from '../errors.js';
import { isValidId } from '../../firmware-contracts/mqtt/topics.js';
import { shortId } from '../ids.js';

export const BUS_KINDS = ['serial', 'modbus-rtu', 'modbus-tcp'] as const;
export type BusKind = (typeof BUS_KINDS)[number];
export const PARITIES = ['none', 'even', 'odd'] as const;
export type Parity = (typeof PARITIES)[number];

export interface Bus {
  id: string;
  kind: BusKind;
  path: string | null;
  baud: number | null;
  parity: Parity | null;
  host: string | null;
  port: number | null;
  createdAt: string;
}

/** What `device add` says about the bus of a wired device. */
export interface BusSpec {
  kind: BusKind;
  busId?: string;
  path?: string;
  baud?: number;
  parity?: Parity;
  host?: string;
  port?: number;
}

/** The default line settings: keypads at 9600 baud, Modbus RTU at 19200 (its spec's default rate). */
export const DEFAULT_BAUD: Record<Exclude<BusKind, 'modbus-tcp'>, number> = { serial: 9600, 'modbus-rtu': 19200 };

const busFrom = (r: Record<string, unknown>): Bus => ({
  id: r.id as string,
  kind: r.kind as BusKind,
  path: (r.path as string) ?? null,
  baud: (r.baud as number) ?? null,
  parity: (r.parity as Parity) ?? null,
  host: (r.host as string) ?? null,
  port: (r.port as number) ?? null,
  createdAt: r.created_at as string,
});

export function listBuses(db: Db): Bus[] {
  return (db.prepare('SELECT * FROM buses ORDER BY id').all() as Record<string, unknown>[]).map(busFrom);
}

export function getBus(db: Db, id: string): Bus | undefined {
  const r = db.prepare('SELECT * FROM buses WHERE id = ?').get(id) as Record<string, unknown> | undefined;
  return r && busFrom(r);
}

/** Where a bus is, as people say it: `/dev/ttyUSB0 @ 9600 8N1` or `10.0.0.7:502`. */
export function describeBus(b: Bus): string {
  if (b.kind === 'modbus-tcp') return `${b.host}:${b.port}`;
  return `${b.path} @ ${b.baud} ${b.parity === 'even' ? '8E1' : b.parity === 'odd' ? '8O1' : '8N1'}`;
}

/**
 * Inside a transaction: the bus `spec` names, created if new. A bus that exists must be of the same
 * kind and, where the spec says so, the same line settings (one line has one baud rate).
 */
export function findOrCreateBus(db: Db, spec: BusSpec, nowIso: string): Bus {
  const row = (sql: string, ...args: unknown[]) => db.prepare(sql).get(...args) as Record<string, unknown> | undefined;
  const found = spec.busId
    ? row('SELECT * FROM buses WHERE id = ?', spec.busId)
    : spec.kind === 'modbus-tcp'
      ? row('SELECT * FROM buses WHERE host = ? AND port = ?', spec.host, spec.port)
      : row('SELECT * FROM buses WHERE path = ?', spec.path);
  if (found) {
    const bus = busFrom(found);
    if (bus.kind !== spec.kind) throw lfError('LF_ERR_INVALID_ARGUMENT', '--transport', `bus ${bus.id} (${describeBus(bus)}) is a ${bus.kind} bus`);
    const clash = (what: string, have: unknown, want: unknown) => {
      if (want !== undefined && want !== have) {
        throw lfError('LF_ERR_INVALID_ARGUMENT', what, `bus ${bus.id} (${describeBus(bus)}) already uses ${String(have)}; one line has one setting`);
      }
    };
    if (spec.busId) {
      clash('--port', spec.kind === 'modbus-tcp' ? bus.port : bus.path, spec.kind === 'modbus-tcp' ? spec.port : spec.path);
      if (spec.kind === 'modbus-tcp') clash('--host', bus.host, spec.host);
    }
    clash('--baud', bus.baud, spec.baud);
    clash('--parity', bus.parity, spec.parity);
    return bus;
  }
  if (spec.kind === 'modbus-tcp') {
    if (!spec.host || spec.port === undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--host/--tcp-port', 'a modbus-tcp device needs the module\'s host and TCP port');
  } else if (!spec.path) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--port', `a ${spec.kind} device needs the serial port it hangs on, e.g. /dev/ttyUSB0`);
  }
  const id = spec.busId ?? freeBusId(db, spec);
  if (!isValidId(id)) throw lfError('LF_ERR_INVALID_ARGUMENT', '--bus', id);
  const serialLine = spec.kind !== 'modbus-tcp';
  db.prepare('INSERT INTO buses (id, kind, path, baud, parity, host, port, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
    id,
    spec.kind,
    serialLine ? spec.path : null,
    serialLine ? (spec.baud ?? DEFAULT_BAUD[spec.kind as 'serial' | 'modbus-rtu']) : null,
    serialLine ? (spec.parity ?? 'none') : null,
    serialLine ? null : spec.host,
    serialLine ? null : spec.port,
    nowIso,
  );
  return getBus(db, id)!;
}

/** A readable id from the port (`ttyUSB0`, `tcp-10.0.0.7-502`), made unique if needed. */
function freeBusId(db: Db, spec: BusSpec): string {
  const base =
    spec.kind === 'modbus-tcp'
      ? `tcp-${spec.host}-${spec.port}`
      : basename(spec.path!).replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 48) || 'bus';
  let id = base;
  while (getBus(db, id)) id = `${base}-${shortId(2)}`;
  return id;
}
