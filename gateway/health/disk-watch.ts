/**
 * Free disk of the data directory's filesystem (docs/concepts.md "Faults and test mode": the
 * gateway's own disk is a fault the console sees). Checked every `checkIntervalMs` on the injected
 * clock; free space below `floorBytes` raises `disk-low` for `disk:<path>`, and it clears only once
 * free space is back at `floorBytes + clearMarginBytes`, so a disk hovering at the floor (a WAL
 * growing and checkpointed back) does not open and close a ticket at every check. While low, each
 * check says the fault again with the detail it was raised with: nothing changes for a stored
 * fault, and a raise the store could not take (the disk went from fine to full within one check)
 * is stored once it can be.
 *
 * Reporting is all it does: the alarm path keeps writing while SQLite can, and a commit that fails
 * is a `db-error` fault with nothing acknowledged (gateway/health/db-watch.ts). Dropping routine
 * events to save space would lose what a device was told was stored.
 */
import { statfsSync } from 'node:fs';
import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../logger.js';
import type { GatewayFaultSink } from '../faults/gateway-faults.js';

export interface DiskWatchOptions {
  /** A path on the filesystem to watch (the data directory). */
  path: string;
  floorBytes: number;
  clearMarginBytes: number;
  checkIntervalMs: number;
  clock: Clock;
  log: Logger;
  sink: GatewayFaultSink;
  /** Bytes an unprivileged writer may still use at `path`; defaults to statfs (tests may replace it). */
  freeBytes?: (path: string) => number;
}

/** Bytes available to an unprivileged writer on the filesystem holding `path` (statfs bavail × bsize). */
export function freeBytesAt(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

export class DiskWatch {
  /** null until the first check: a fault left open by the last run clears at the first good check. */
  private low: boolean | null = null;
  /** The detail the open fault was raised with. */
  private raised: { path: string; freeBytes: number; floorBytes: number } | null = null;
  private timer: Timer | null = null;
  private stopped = false;
  private failedReads = 0;

  constructor(private readonly opts: DiskWatchOptions) {}

  get subject(): `disk:${string}` {
    return `disk:${this.opts.path}`;
  }

  start(): void {
    this.stopped = false;
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  /** One check now: raise or clear as the free space says. */
  check(): void {
    const { path, floorBytes, clearMarginBytes, sink, log } = this.opts;
    let freeBytes: number;
    try {
      freeBytes = (this.opts.freeBytes ?? freeBytesAt)(path);
    } catch (err) {
      // A data directory that cannot be stat'ed will fail its writes too: those are the fault (db-error).
      if (this.failedReads++ % 60 === 0) log.warn({ err, path }, 'cannot read the free disk space');
      return;
    }
    this.failedReads = 0;
    if (freeBytes < floorBytes) {
      if (this.raised) {
        // Said again with the detail it was raised with: a no-op for a stored fault, and a raise
        // that could not be stored (the disk went from fine to full within one check) is stored now.
        sink.raiseGateway('disk-low', this.subject, this.raised);
        return;
      }
      this.low = true;
      this.raised = { path, freeBytes, floorBytes };
      log.warn(this.raised, 'free disk below its floor');
      sink.raiseGateway('disk-low', this.subject, this.raised);
    } else if (this.low !== false && freeBytes >= floorBytes + clearMarginBytes) {
      if (this.low) log.info({ path, freeBytes, floorBytes }, 'free disk above its floor again');
      this.low = false;
      this.raised = null;
      sink.clearGateway('disk-low', this.subject);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    try {
      this.check();
    } catch (err) {
      // A timer's exception would end the process; the next check tries again.
      this.opts.log.error({ err }, 'the disk check failed');
    }
    this.timer = this.opts.clock.setTimer(this.opts.checkIntervalMs, () => this.tick());
  }
}
