/**
 * De-duplication by (device, boot, seq) (docs/concepts.md "Refuse without a loop"): the one owner of a
 * device's high-water mark, the stored `devices.last_boot/last_seq` and the copy on the registry's
 * device record (which the serial bridge reads to resume a keypad's sequence). Nothing else writes
 * either: the ingest moves the mark past each event it takes (gateway/ingest/device-ingest.ts), the
 * installer's `lianfang device reset-counter` forgets it (here, called by the CLI on the database
 * or by gateway/ingest/counter-reset.ts in the running gateway's writer).
 */
import type { Statement } from 'better-sqlite3';
import { Effects } from './writer.js';
import { FaultStore } from '../faults/fault-store.js';
import type { Device } from '../registry/registry.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';
import type { Counters } from '../metrics.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/db.js';
import { lfError } from '../errors.js';

/**
 * Where an event stands against its device's high-water mark (boot, seq): the `first` one the
 * gateway takes (no mark yet, or the installer reset it), the `next` of the same boot, the first of
 * a `newer-boot`, a `repeat` (equal boot, seq not higher: a resend after a lost PUBACK or ACK), or
 * a `lower-boot` (the device's counter went back).
 */
export type SequencePlace = 'first' | 'next' | 'newer-boot' | 'repeat' | 'lower-boot';

export function placeInSequence(last: { boot: number | null; seq: number | null }, event: { boot: number; seq: number }): SequencePlace {
  if (last.boot === null) return 'first';
  if (event.boot > last.boot) return 'newer-boot';
  if (event.boot < last.boot) return 'lower-boot';
  return event.seq > (last.seq ?? -1) ? 'next' : 'repeat';
}

/** A device's counter went back: the mark it had, the event that went below it, and what was done. */
export interface CounterReset {
  previousBoot: number;
  previousSeq: number | null;
  boot: number;
  seq: number;
  /** `accepted` as a new sequence (MQTT: identity is the login), `refused` (serial: a tapped line can replay). */
  events: 'accepted' | 'refused';
}

/**
 * What the mark says of one event: a `duplicate` or a `refused` one is not stored; a `new` one is,
 * and the mark has moved past it. `sequence` is absent for an event without a boot (an MQTT device
 * de-duplicated per connection by gateway/mqtt-ingress.ts); `newSequence` says that what the device
 * had half typed belongs to another power-up.
 */
export type Placement =
  | { status: 'duplicate' }
  | { status: 'refused'; reason: 'counter-reset'; counterReset: CounterReset }
  | { status: 'new'; sequence?: SequencePlace; counterReset?: CounterReset; newSequence: boolean };

export class DeviceSequences {
  private readonly markSeq: Statement;

  constructor(
    db: Db,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {
    this.markSeq = db.prepare('UPDATE devices SET last_boot = ?, last_seq = ? WHERE id = ?');
  }

  /**
   * Inside the event's transaction, before it is stored: place it against the device's mark and,
   * when it is taken, move the mark (stored and in memory; memory follows a rollback back).
   *
   * A boot lower than the mark is never a silent duplicate (a factory reset, a power cut during the
   * device's flash write, a replaced unit given the old id, or a mark left absurdly high): from an
   * MQTT device, whose identity is its login, it starts a new sequence and carries a `counterReset`
   * for the console; from a serial keypad, whose frames a tapped line can replay, it is refused
   * until the installer runs `lianfang device reset-counter`. A Modbus module's boot is the bridge's
   * own number, never on the wire: a lower one (the gateway's clock set back, or a mark from an older
   * version) only starts a new sequence.
   */
  place(fx: Effects, device: Device, event: DeviceEvent, via: string): Placement {
    if (event.boot === undefined) return { status: 'new', newSequence: false };
    const { counters } = this;
    const sequence = placeInSequence({ boot: device.lastBoot, seq: device.lastSeq }, { boot: event.boot, seq: event.seq });
    if (sequence === 'repeat') {
      counters.inc('events.duplicate');
      return { status: 'duplicate' };
    }
    let counterReset: CounterReset | undefined;
    if (sequence === 'lower-boot') {
      const reset = { previousBoot: device.lastBoot!, previousSeq: device.lastSeq, boot: event.boot, seq: event.seq };
      if (via === 'serial') {
        // The mark stays: the keypad's real sequence (if this was a replay) goes on being accepted.
        counters.inc('events.refused.counter-reset');
        return { status: 'refused', reason: 'counter-reset', counterReset: { ...reset, events: 'refused' } };
      }
      if (via === 'mqtt') {
        counterReset = { ...reset, events: 'accepted' };
        counters.inc('events.counter-reset');
      } else {
        counters.inc('events.bridge-counter-restarted');
        this.log.info({ deviceId: device.id, ...reset }, "the bridge's counter for a module started below its mark: a new sequence");
      }
    }
    this.markSeq.run(event.boot, event.seq, device.id);
    setMark(fx, device, event.boot, event.seq);
    return { status: 'new', sequence, newSequence: sequence === 'newer-boot' || sequence === 'lower-boot', ...(counterReset ? { counterReset } : {}) };
  }
}

/**
 * The copy of the mark on the device record, set inside a transaction: if it is rolled back, memory
 * must forget it too, or the device's resend of the same (boot, seq) would be taken for a duplicate
 * and the alarm never raised.
 */
function setMark(fx: Effects, device: Device, boot: number | null, seq: number | null): void {
  const before = { boot: device.lastBoot, seq: device.lastSeq };
  device.lastBoot = boot;
  device.lastSeq = seq;
  fx.onRollback(() => {
    device.lastBoot = before.boot;
    device.lastSeq = before.seq;
  });
}

/** What `resetDeviceCounter` did. */
export interface CounterResetDone {
  deviceId: string;
  /** The high-water mark it forgot (null: the device had sent no counted event yet). */
  previous: { boot: number; seq: number | null } | null;
  /** Open counter-reset faults of the device now cleared. */
  faultsCleared: number;
}

/**
 * The installer's `lianfang device reset-counter ID`, in the caller's transaction: forget the
 * device's de-duplication mark (so its next event, in whatever sequence, is accepted), clear its
 * counter-reset fault, and write an audit row. The CLI calls it directly when no gateway runs; the
 * running gateway calls it in its writer with `fx` and its device record, whose mark is forgotten
 * in the same item.
 */
export function resetDeviceCounter(db: Db, deviceId: string, actor: string, at: string, memory?: { fx: Effects; device: Device | undefined; faults?: FaultStore }): CounterResetDone {
  const row = db.prepare('SELECT last_boot AS boot, last_seq AS seq FROM devices WHERE id = ?').get(deviceId) as { boot: number | null; seq: number | null } | undefined;
  if (!row) throw lfError('LF_ERR_NOT_FOUND', 'device', deviceId);
  db.prepare('UPDATE devices SET last_boot = NULL, last_seq = NULL WHERE id = ?').run(deviceId);
  if (memory?.device) setMark(memory.fx, memory.device, null, null);
  // The fault's change goes to the consoles through the outbox (on a stopped gateway's database: when it starts).
  const faults = memory?.faults ?? FaultStore.offline(db);
  const faultsCleared = faults.clearIn(memory?.fx ?? new Effects(), { kind: 'counter-reset', deviceId }, { how: 'reset', by: actor }) ? 1 : 0;
  const previous = row.boot === null ? null : { boot: row.boot, seq: row.seq };
  db.prepare("INSERT INTO audit (alarm_id, at, actor, action, detail) VALUES (NULL, ?, ?, 'reset-counter', ?)").run(
    at,
    actor,
    JSON.stringify({ deviceId, previousBoot: previous?.boot ?? null, previousSeq: previous?.seq ?? null, faultsCleared }),
  );
  return { deviceId, previous, faultsCleared };
}
