/**
 * Database errors as a fault (docs/concepts.md "Faults and test mode"): a commit of the
 * group-commit writer that fails for a reason of the store itself (the disk is full, an I/O error,
 * a read-only or corrupt file) raises `db-error` for `db`, with the SQLite code and the operation
 * that failed, never the data. It clears when a probe write (one meta row through the writer)
 * commits: tried at once when the writer commits a batch again (a batch that changed nothing
 * commits on a full disk too, so that alone is no proof) and every `probeIntervalMs` on the
 * injected clock while the fault is open, so a quiet gateway also finds out that writes work.
 *
 * The writer tells this watch only about failures, and about the first commit after one (a branch
 * on the success path, nothing more): gateway/ingest/writer.ts CommitWatch.
 */
import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../logger.js';
import type { GatewayFaultSink } from '../faults/gateway-faults.js';

/**
 * SQLite's primary result codes that say the store cannot be written, whatever was being written
 * (extended codes such as SQLITE_IOERR_WRITE carry them as a prefix). A constraint or a misuse is
 * the caller's error, not the store's: those are not faults of the gateway.
 */
const STORE_CODES = ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_NOMEM', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_PROTOCOL'];

/** The SQLite code of `err` when it says the store cannot be written; null for any other error. */
export function storageErrorCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return null;
  return STORE_CODES.some((c) => code === c || code.startsWith(`${c}_`)) ? code : null;
}

export interface DbWatchOptions {
  clock: Clock;
  log: Logger;
  sink: GatewayFaultSink;
  probeIntervalMs: number;
  /** One small write through the writer; its commit (or failure) reaches this watch as any other. */
  probe(): Promise<unknown>;
}

export class DbWatch {
  private failing: { code: string; operation: string } | null = null;
  private probeTimer: Timer | null = null;
  private probing = false;
  private stopped = false;

  constructor(private readonly opts: DbWatchOptions) {}

  /** A commit failed with a store error (`code` from storageErrorCode) while writing `operation`. */
  failed(operation: string, code: string): void {
    const changed = this.failing === null || this.failing.code !== code;
    this.failing = { code, operation };
    if (changed) {
      this.opts.log.error({ code, operation }, 'the database cannot be written');
      this.opts.sink.raiseGateway('db-error', 'db', { code, operation });
    }
    this.scheduleProbe();
  }

  /**
   * A batch committed, the first since a failure or since the writer started. That alone proves
   * nothing (a batch that changed nothing commits without writing a page), so the probe, a real
   * write, is tried now; its commit clears the fault (and, at the first commit of a run, a fault
   * the last run may have left open).
   */
  recovered(): void {
    this.probeTimer?.cancel();
    this.probeTimer = null;
    this.runProbe();
  }

  stop(): void {
    this.stopped = true;
    this.probeTimer?.cancel();
    this.probeTimer = null;
  }

  private scheduleProbe(): void {
    if (this.probeTimer || this.probing || this.stopped) return;
    this.probeTimer = this.opts.clock.setTimer(this.opts.probeIntervalMs, () => {
      this.probeTimer = null;
      this.runProbe();
    });
  }

  private runProbe(): void {
    if (this.probing || this.stopped) return;
    this.probing = true;
    this.opts.probe().then(
      () => {
        this.probing = false;
        if (this.stopped) return;
        if (this.failing) this.opts.log.info({ after: this.failing }, 'the database is written again');
        this.failing = null;
        try {
          this.opts.sink.clearGateway('db-error', 'db');
        } catch (err) {
          this.opts.log.error({ err }, 'clearing the db-error fault failed');
        }
      },
      () => {
        // The writer has reported the failure (failed() above); the next probe is one interval away.
        this.probing = false;
        if (this.failing) this.scheduleProbe();
      },
    );
  }
}
