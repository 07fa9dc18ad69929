/**
 * Group commit: every write the alarm path makes (device events, replies, console actions,
 * deadlines, delivery marks) is queued here and the items that arrive together are committed in
 * one transaction, so one fsync serves them all. A caller's promise resolves only after the commit
 * (that is when a device may be told "got it"); the effects collected by the items (publishes,
 * deadlines to arm) run only after the commit too.
 *
 * Each item runs in its own savepoint: an item that throws is rolled back and rejected alone.
 * A batch whose commit fails rejects every item in it; nothing was acknowledged, so nothing is lost.
 */
import type { Db } from '../store/db.js';
import type { Logger } from '../logger.js';
import { storageErrorCode } from '../health/db-watch.js';

/**
 * What an item asks to happen once its transaction is committed, and how to undo the changes it
 * made to in-memory state if its writes are rolled back (so memory never claims what the database
 * does not hold: a device event remembered as seen but never stored would swallow its resend).
 */
export class Effects {
  readonly actions: (() => void)[] = [];
  private readonly undo: (() => void)[] = [];
  /** performance.now() right after the batch holding this item committed (0 until then). */
  committedAt = 0;

  /** Run `fn` after the commit, before the callers' promises resolve. */
  afterCommit(fn: () => void): void {
    this.actions.push(fn);
  }

  /** Run `fn` if this item's writes are rolled back (its own failure or the batch's). */
  onRollback(fn: () => void): void {
    this.undo.push(fn);
  }

  /** Undo in reverse order of registration. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
    this.undo.length = 0;
    this.actions.length = 0;
  }
}

interface Item {
  fn: (fx: Effects) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Marks batches that carry a device event, for the `after-store` failpoint. */
  tag: string | undefined;
  /** Losing it in a power cut costs nothing that matters (a heartbeat's mark): no fsync for it alone. */
  light: boolean;
}

export interface WriterOptions {
  db: Db;
  log: Logger;
  /** `after-store`: exit the process right after a commit holding a device event, before any fan-out. */
  failpoint?: string;
  /** Called when a batch's commit failed (the caller refreshes in-memory caches). */
  onBatchFailed?: (err: unknown) => void;
  /** Told when the store cannot be written and when it can again (gateway/health/db-watch.ts). */
  watch?: CommitWatch;
}

/**
 * What the writer reports about the store itself: a commit (or an item) that failed with a store
 * error (SQLite's full, I/O, read-only, corrupt… codes: storageErrorCode), and the first commit
 * after one. Nothing is called on a commit that follows another good commit.
 */
export interface CommitWatch {
  /** `operation` is the item's tag (e.g. 'device-event'), or 'commit' when the batch's commit itself failed. */
  failed(operation: string, code: string): void;
  /** A batch committed, the first since a failure or since the writer started. */
  recovered(): void;
}

export class GroupCommitWriter {
  private queue: Item[] = [];
  private scheduled = false;
  private closed = false;
  /** Until a batch commits, the store is not known to be writable (a fault left by the last run clears at the first commit). */
  private storeFailing = true;
  /** Number of commits and items, for /health and the benchmark. */
  readonly stats = { batches: 0, items: 0, maxBatch: 0, failedBatches: 0, lightBatches: 0 };
  /** The connection's own setting, restored after a light batch (FULL for the gateway's file, see store/db.ts). */
  private readonly synchronous: number;

  constructor(private readonly opts: WriterOptions) {
    this.synchronous = opts.db.pragma('synchronous', { simple: true }) as number;
  }

  /**
   * Queue `fn` to run inside the next batch transaction. Resolves with its result once committed.
   * `tag` names the kind of item (e.g. 'device-event') for failpoints and logs. A `light` item is
   * one a power cut may lose without harm (a heartbeat moving its device's mark): a batch of light
   * items only is committed without an fsync (synchronous=NORMAL for that commit: in WAL mode it is
   * still atomic and survives a crash of the process, and the next full commit's fsync carries it to
   * disk); a batch with any other item is committed as always.
   */
  run<T>(fn: (fx: Effects) => T, tag?: string, opts: { light?: boolean } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error('writer is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject, tag, light: opts.light === true });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: it lets every packet already read from the sockets in
        // this turn of the event loop join the batch.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commit what is queued now (also used at shutdown). */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    const { db, log } = this.opts;
    const results: { ok: boolean; value: unknown; fx: Effects }[] = [];
    const light = batch.every((i) => i.light);
    if (light) {
      db.pragma('synchronous = NORMAL');
      this.stats.lightBatches++;
    }
    // An item that failed for the store (SQLITE_FULL inside its savepoint), reported after the transaction.
    let storeError: { operation: string; code: string } | null = null;
    try {
      db.transaction(() => {
        for (const item of batch) {
          const fx = new Effects();
          try {
            const value = db.transaction(() => item.fn(fx))();
            results.push({ ok: true, value, fx });
          } catch (err) {
            fx.rollback();
            results.push({ ok: false, value: err, fx });
            const code = storeError ? null : storageErrorCode(err);
            if (code) storeError = { operation: item.tag ?? 'item', code };
            // SQLite rolled the whole transaction back itself (SQLITE_FULL, SQLITE_IOERR can): the
            // items after this one would run outside it, each committed on its own, and then be
            // rejected with the batch. The batch fails here instead, nothing in it committed.
            if (!db.inTransaction) throw err;
          }
        }
      }).immediate();
    } catch (err) {
      this.stats.failedBatches++;
      log.error({ err, items: batch.length }, 'batch commit failed; nothing in it was acknowledged');
      // Newest first, as within an item: two events of one device each moved its mark, and the
      // older one's undo must be the last word (forward order would leave the mark past an event
      // that was never stored, and its resend would be dropped as a duplicate).
      for (let i = results.length - 1; i >= 0; i--) results[i]!.fx.rollback();
      this.opts.onBatchFailed?.(err);
      for (const item of batch) item.reject(err);
      const code = storageErrorCode(err);
      const failure = storeError ?? (code ? { operation: 'commit', code } : null);
      if (failure) this.reportStoreFailure(failure);
      return;
    } finally {
      if (light) db.pragma(`synchronous = ${this.synchronous}`);
    }
    const committedAt = performance.now();
    for (const r of results) r.fx.committedAt = committedAt;
    this.stats.batches++;
    this.stats.items += batch.length;
    if (batch.length > this.stats.maxBatch) this.stats.maxBatch = batch.length;
    if (storeError) this.reportStoreFailure(storeError);
    else if (this.storeFailing) this.reportStoreWritable();
    if (this.opts.failpoint === 'after-store' && batch.some((i) => i.tag === 'device-event')) {
      log.fatal({ failpoint: 'after-store' }, 'failpoint: exiting after the commit, before any fan-out');
      process.exit(86);
    }
    for (let i = 0; i < batch.length; i++) {
      const r = results[i];
      if (!r.ok) {
        batch[i].reject(r.value);
        continue;
      }
      for (const action of r.fx.actions) {
        try {
          action();
        } catch (err) {
          log.error({ err }, 'post-commit action failed');
        }
      }
      batch[i].resolve(r.value);
    }
  }

  private reportStoreFailure(f: { operation: string; code: string }): void {
    this.storeFailing = true;
    this.tellWatch(() => this.opts.watch?.failed(f.operation, f.code));
  }

  private reportStoreWritable(): void {
    this.storeFailing = false;
    this.tellWatch(() => this.opts.watch?.recovered());
  }

  /** The watch's own failure never fails a commit or its callers. */
  private tellWatch(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.error({ err }, 'the commit watch failed');
    }
  }

  /** Commit what is queued and refuse anything new. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
