/**
 * Recording deliveries (docs/concepts.md "Delivered means answered"): an MQTT subscriber's PUBACK or a
 * wired bridge's confirmation that a keypad shows the alert (or a sounder rings). The marks that
 * arrive in one turn of the event loop are written by one writer item; a mark that says nothing
 * new (a rev of an alarm already marked for that recipient: the other alert commands a keypad
 * PUBACKs with the alert) is not written again.
 */
import type { GroupCommitWriter } from '../ingest/writer.js';
import type { Outbox } from './outbox.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';

/** A shop or a console has `rev` of `alarmId`; a device has its command `seq`. */
type Mark =
  | { kind: 'shop' | 'station' | 'fault'; id: string; alarmId: string; rev: number; by: string }
  | { kind: 'device'; id: string; seq: number; by: string };

/** How many (recipient, alarm) pairs the marks remember, to write each delivery once. */
const REMEMBERED = 4096;

export class DeliveryMarks {
  private pending: Mark[] = [];
  /**
   * The highest rev marked per (recipient, alarm): a keypad PUBACKs an alert and each of its three
   * alert commands, and only the first says anything new (a mark at or below it matches no row).
   */
  private readonly marked = new Map<string, number>();

  constructor(private readonly ctx: { writer: GroupCommitWriter; outbox: Outbox; clock: Clock; log: Logger }) {}

  /** `recipient` has message `rev` of `alarmId` (a console's fault: its faultId), as `by` (`device:…` or `user:…`) confirmed. */
  mark(kind: 'shop' | 'station' | 'fault', id: string, alarmId: string, rev: number, by: string): void {
    const key = `${kind}:${id}:${alarmId}`;
    if ((this.marked.get(key) ?? 0) >= rev) return;
    this.marked.delete(key);
    this.marked.set(key, rev);
    if (this.marked.size > REMEMBERED) this.marked.delete(this.marked.keys().next().value!);
    this.add({ kind, id, alarmId, rev, by });
  }

  /** Device `deviceId` acknowledged its command `seq`. */
  markCommand(deviceId: string, seq: number, by: string): void {
    this.add({ kind: 'device', id: deviceId, seq, by });
  }

  private add(m: Mark): void {
    this.pending.push(m);
    if (this.pending.length > 1) return;
    setImmediate(() => {
      const marks = this.pending;
      this.pending = [];
      this.ctx.writer
        .run(() => {
          const now = this.ctx.clock.now();
          const { outbox } = this.ctx;
          for (const m of marks) {
            if (m.kind === 'device') outbox.markCommandDelivered(now, m.id, m.seq, m.by);
            else outbox.markDelivered(now, m.kind, m.id, m.alarmId, m.rev, m.by);
          }
        }, 'delivered')
        .catch((err) => {
          // Not written: the re-sent copies' PUBACKs must be marked again.
          for (const m of marks) if (m.kind !== 'device') this.marked.delete(`${m.kind}:${m.id}:${m.alarmId}`);
          this.ctx.log.error({ err, marks: marks.length }, 'could not mark deliveries; they will be re-sent');
        });
    });
  }
}
