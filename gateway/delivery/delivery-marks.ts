/**
 * Recording deliveries (DESIGN.md "Delivered means answered"): an MQTT subscriber's PUBACK or a
 * wired bridge's confirmation that a keypad shows the alert (or a sounder rings). The marks that
 * arrive in one turn of the event loop are written by one writer item.
 */
import type { GroupCommitWriter } from '../ingest/writer.js';
import type { Outbox, RecipientKind } from './outbox.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';

interface Mark {
  kind: RecipientKind;
  id: string;
  alarmId: string;
  rev: number;
  by: string;
}

export class DeliveryMarks {
  private pending: Mark[] = [];

  constructor(private readonly ctx: { writer: GroupCommitWriter; outbox: Outbox; clock: Clock; log: Logger }) {}

  /** `recipient` has message `rev` of `alarmId`, as `by` (`device:…` or `user:…`) confirmed. */
  mark(kind: RecipientKind, id: string, alarmId: string, rev: number, by: string): void {
    this.pending.push({ kind, id, alarmId, rev, by });
    if (this.pending.length > 1) return;
    setImmediate(() => {
      const marks = this.pending;
      this.pending = [];
      this.ctx.writer
        .run(() => {
          const now = this.ctx.clock.now();
          for (const m of marks) this.ctx.outbox.markDelivered(now, m.kind, m.id, m.alarmId, m.rev, m.by);
        }, 'delivered')
        .catch((err) => this.ctx.log.error({ err, marks: marks.length }, 'could not mark deliveries; they will be re-sent'));
    });
  }
}
