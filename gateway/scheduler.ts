/**
 * Drives the stored deadlines (docs/concepts.md "Deadlines are rows"): one timer, armed for the earliest
 * pending row, by the injectable clock. After a restart it re-arms from the table, so a deadline
 * that fell due while the gateway was down fires at once.
 */
import type { Clock, Timer } from './clock.js';
import type { Logger } from './logger.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { AlarmEngine } from './alarm/engine.js';

export class DeadlineScheduler {
  private timer: Timer | null = null;
  private armedFor: number | null = null;
  private running = false;

  constructor(
    private readonly ctx: { clock: Clock; log: Logger; writer: GroupCommitWriter; engine: AlarmEngine },
  ) {}

  /** Arm for the earliest pending deadline in the table. */
  start(): void {
    this.running = true;
    const next = this.ctx.engine.nextDeadline();
    if (next !== null) this.consider(next);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
    this.armedFor = null;
  }

  /** A deadline due at `dueAtMs` was written: arm earlier if it comes first. */
  consider(dueAtMs: number): void {
    if (!this.running) return;
    if (this.armedFor !== null && this.armedFor <= dueAtMs) return;
    this.timer?.cancel();
    this.armedFor = dueAtMs;
    this.timer = this.ctx.clock.setTimer(dueAtMs - this.ctx.clock.now(), () => this.fire());
  }

  private fire(): void {
    this.timer = null;
    this.armedFor = null;
    if (!this.running) return;
    const { writer, engine, clock, log } = this.ctx;
    writer
      .run((fx) => {
        const due = engine.dueDeadlines(clock.now());
        for (const d of due) engine.runDeadline(fx, d);
        return due.length;
      }, 'deadlines')
      .then(
        () => {
          const next = engine.nextDeadline();
          if (next !== null) this.consider(next);
        },
        (err) => {
          log.error({ err }, 'deadline batch failed; retrying in 1 s');
          this.consider(clock.now() + 1000);
        },
      );
  }
}
