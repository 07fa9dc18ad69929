/**
 * The outbox: one row per recipient of each message about an alarm, written in the same
 * transaction as the change it announces, kept until the recipient has it (docs/concepts.md "Delivered
 * means answered"): a shop when one of its devices PUBACKs the alert, a console when an officer's
 * console PUBACKs the alarm. Re-sent when a recipient (re)subscribes, after a restart, and
 * periodically while a recipient is connected but has not answered. A newer rev for the same
 * recipient supersedes an older undelivered one (receivers keep only the highest rev anyway).
 *
 * A device (an MQTT keypad) is a recipient too, of its own answers (after 9#, a PIN) as display and
 * LED commands: each row carries the device's command counter `seq` (in the payload; the device's
 * PUBACK of it is the delivery), and a newer command of the same kind supersedes an undelivered
 * older one (the device shows one thing at a time). A neighbour keypad's alert commands are no rows:
 * they render the shop's alert row whenever it is published (gateway/delivery/device-commands.ts).
 */
import type { Db } from '../store/db.js';
import type { Effects } from '../ingest/writer.js';
import type { Statement } from 'better-sqlite3';
import type { CommandKind, ConsoleAlarm, ConsoleFault, DeviceCommand, ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

/** `fault`: a console's faults topic (recipient id the station or compound id; the fault's id in alarm_id, gateway/faults/fault-store.ts). */
export type RecipientKind = 'shop' | 'station' | 'device' | 'fault';

interface MessageBase {
  id: number;
  alarmId: string;
  rev: number;
  recipientId: string;
  topic: string;
  /** The JSON on the wire, built once from `body`. */
  payload: string;
}

/** A device command as enqueued: the gateway numbers it (`seq`). */
export type NewDeviceCommand = Omit<DeviceCommand, 'seq'>;

/** A device's command row (a keypad's own answer; a command about an alarm would carry its id and rev). */
export type DeviceMessage = Omit<MessageBase, 'alarmId' | 'rev'> & {
  kind: 'device';
  alarmId: string | null;
  rev: number | null;
  command: CommandKind;
  seq: number;
  body: DeviceCommand & { seq: number };
};

/** One outbox message, with the object its payload was built from: publishers never parse. */
export type OutboxMessage =
  | (MessageBase & { kind: 'shop'; body: ShopAlert })
  | (MessageBase & { kind: 'station'; body: ConsoleAlarm })
  | (MessageBase & { kind: 'fault'; body: ConsoleFault })
  | DeviceMessage;

/** What a caller enqueues: the message without its row id, `payload` and `body` as it has them. */
export type OutboxEntry = Omit<MessageBase, 'id' | 'payload'> &
  ({ kind: 'shop'; body: ShopAlert } | { kind: 'station'; body: ConsoleAlarm } | { kind: 'fault'; body: ConsoleFault });

/**
 * Where outbox messages go, first sends and re-sends alike: the broker (in-process, QoS 1,
 * bypassing authorizePublish) and the wired bridges, which take a shop's alert object as it is.
 */
export interface Publisher {
  publish(msg: OutboxMessage): void;
}

type Row = Omit<MessageBase, 'alarmId' | 'rev'> & { alarmId: string | null; rev: number | null; kind: RecipientKind; command: CommandKind | null; seq: number | null };

/**
 * A row read back from the database (a re-send, possibly after a restart): its body is parsed
 * here, once, at the boundary where the message leaves storage. The stored payload is the exact
 * JSON first sent (receivers de-duplicate by it), so the row keeps only that, not a second copy.
 */
function fromRow(r: Row): OutboxMessage {
  const { command, seq, ...rest } = r;
  const body = JSON.parse(r.payload) as unknown;
  return (r.kind === 'device' ? { ...rest, command, seq, body } : { ...rest, body }) as OutboxMessage;
}

/**
 * The message an entry stands for: the caller hands the object it built (a ShopAlert, a
 * ConsoleAlarm) and its JSON is made here, once, so nothing downstream parses a topic or a payload.
 */
function toMessage(id: number, e: OutboxEntry): OutboxMessage {
  return { id, alarmId: e.alarmId, rev: e.rev, kind: e.kind, recipientId: e.recipientId, topic: e.topic, payload: JSON.stringify(e.body), body: e.body } as OutboxMessage;
}

export class Outbox {
  private readonly insert: Statement;
  private readonly supersede: Statement;
  private readonly deliver: Statement;
  private readonly pendingFor: Statement;
  private readonly pendingAll: Statement;
  private readonly touch: Statement;
  private readonly nextSeq: Statement;
  private readonly insertCommand: Statement;
  private readonly supersedeCommand: Statement;
  private readonly deliverCommand: Statement;
  /** Rows published, re-sent and delivered since start, for /health and tests. */
  readonly stats = { published: 0, resent: 0, delivered: 0 };

  constructor(
    private readonly db: Db,
    private readonly publisher: Publisher,
  ) {
    this.insert = db.prepare(
      `INSERT INTO outbox (alarm_id, rev, recipient_kind, recipient_id, topic, payload, created_at, sent_count, last_sent_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
    );
    this.supersede = db.prepare(
      `UPDATE outbox SET superseded = 1
       WHERE alarm_id = ? AND recipient_kind = ? AND recipient_id = ? AND delivered_at IS NULL AND superseded = 0`,
    );
    this.deliver = db.prepare(
      `UPDATE outbox SET delivered_at = ?, delivered_by = ?
       WHERE alarm_id = ? AND recipient_kind = ? AND recipient_id = ? AND rev <= ? AND delivered_at IS NULL`,
    );
    this.pendingFor = db.prepare(
      `SELECT id, alarm_id AS alarmId, rev, recipient_kind AS kind, recipient_id AS recipientId, command, seq, topic, payload
       FROM outbox WHERE recipient_kind = ? AND recipient_id = ? AND delivered_at IS NULL AND superseded = 0 ORDER BY id`,
    );
    this.pendingAll = db.prepare(
      `SELECT id, alarm_id AS alarmId, rev, recipient_kind AS kind, recipient_id AS recipientId, command, seq, topic, payload
       FROM outbox INDEXED BY outbox_pending WHERE delivered_at IS NULL AND superseded = 0 AND (last_sent_at IS NULL OR last_sent_at <= ?) ORDER BY id LIMIT ?`,
    );
    this.touch = db.prepare('UPDATE outbox SET sent_count = sent_count + 1, last_sent_at = ? WHERE id = ?');
    this.nextSeq = db.prepare(
      `INSERT INTO device_command_seq (device_id, seq) VALUES (?, ?)
       ON CONFLICT (device_id) DO UPDATE SET seq = seq + excluded.seq RETURNING seq`,
    );
    this.insertCommand = db.prepare(
      `INSERT INTO outbox (alarm_id, rev, recipient_kind, recipient_id, command, seq, topic, payload, created_at, sent_count, last_sent_at)
       VALUES (?, ?, 'device', ?, ?, ?, ?, ?, ?, 1, ?)`,
    );
    this.supersedeCommand = db.prepare(
      `UPDATE outbox SET superseded = 1
       WHERE recipient_kind = 'device' AND recipient_id = ? AND command IN (?, ?, ?, ?) AND delivered_at IS NULL AND superseded = 0`,
    );
    this.deliverCommand = db.prepare(
      `UPDATE outbox SET delivered_at = ?, delivered_by = ?
       WHERE recipient_kind = 'device' AND recipient_id = ? AND seq = ? AND delivered_at IS NULL AND superseded = 0`,
    );
  }

  /**
   * Inside a transaction: record a message for one recipient and publish it after the commit.
   * Older undelivered messages about the same alarm to the same recipient are superseded.
   */
  enqueue(fx: Effects, nowMs: number, entry: OutboxEntry): void {
    // A first message (rev 1) has nothing older to supersede.
    if (entry.rev > 1) this.supersede.run(entry.alarmId, entry.kind, entry.recipientId);
    const msg = toMessage(0, entry);
    const info = this.insert.run(msg.alarmId, msg.rev, msg.kind, msg.recipientId, msg.topic, msg.payload, new Date(nowMs).toISOString(), nowMs);
    msg.id = Number(info.lastInsertRowid);
    fx.afterCommit(() => {
      this.stats.published++;
      this.publisher.publish(msg);
    });
  }

  /**
   * Inside a transaction: number commands for one device (in order), record them and publish them
   * after the commit. An undelivered older command of the same kind to the same device is
   * superseded. One device's commands of one event go together: two statements for all of them
   * but the inserts.
   */
  enqueueCommands(fx: Effects, nowMs: number, deviceId: string, commands: readonly NewDeviceCommand[]): DeviceMessage[] {
    if (commands.length === 0) return [];
    const { seq: last } = this.nextSeq.get(deviceId, commands.length) as { seq: number };
    const topic = topics.deviceCommands(deviceId);
    const createdAt = new Date(nowMs).toISOString();
    // The four kinds at most, the list padded with its first (a fixed statement, no JSON to parse).
    const kinds = [...new Set(commands.map((c) => c.command))];
    this.supersedeCommand.run(deviceId, kinds[0], kinds[1] ?? kinds[0], kinds[2] ?? kinds[0], kinds[3] ?? kinds[0]);
    const msgs = commands.map((command, i): DeviceMessage => {
      const seq = last - commands.length + 1 + i;
      const body = { ...command, seq };
      const alarmId = command.alarmId ?? null;
      const rev = alarmId ? (command.rev ?? null) : null;
      const payload = JSON.stringify(body);
      const info = this.insertCommand.run(alarmId, rev, deviceId, command.command, seq, topic, payload, createdAt, nowMs);
      return { id: Number(info.lastInsertRowid), kind: 'device', alarmId, rev, recipientId: deviceId, command: command.command, seq, topic, payload, body };
    });
    fx.afterCommit(() => {
      this.stats.published += msgs.length;
      for (const m of msgs) this.publisher.publish(m);
    });
    return msgs;
  }

  /** Inside a transaction: a device has command `seq` (its PUBACK). Returns rows marked (0 or 1). */
  markCommandDelivered(nowMs: number, deviceId: string, seq: number, by: string): number {
    const n = this.deliverCommand.run(new Date(nowMs).toISOString(), by, deviceId, seq).changes;
    this.stats.delivered += n;
    return n;
  }

  /** Inside a transaction: a recipient has (alarmId, rev) and every lower rev. Returns rows marked. */
  markDelivered(nowMs: number, kind: 'shop' | 'station' | 'fault', recipientId: string, alarmId: string, rev: number, by: string): number {
    const n = this.deliver.run(new Date(nowMs).toISOString(), by, alarmId, kind, recipientId, rev).changes;
    this.stats.delivered += n;
    return n;
  }

  /** Undelivered messages for one recipient, oldest first. */
  pending(kind: RecipientKind, recipientId: string): OutboxMessage[] {
    return (this.pendingFor.all(kind, recipientId) as Row[]).map(fromRow);
  }

  /** Re-publish what one recipient has not answered yet (it just subscribed). Returns how many. */
  resendTo(kind: RecipientKind, recipientId: string): number {
    const rows = this.pending(kind, recipientId);
    for (const r of rows) this.publisher.publish(r);
    this.stats.resent += rows.length;
    return rows.length;
  }

  /**
   * Inside a transaction: undelivered rows last sent before `olderThanMs` whose recipient is
   * connected (`isConnected`), re-published after the commit and stamped. Returns how many.
   */
  resendStale(fx: Effects, nowMs: number, olderThanMs: number, isConnected: (kind: RecipientKind, id: string) => boolean, limit = 5000): number {
    const rows = (this.pendingAll.all(olderThanMs, limit) as Row[]).filter((r) => isConnected(r.kind, r.recipientId)).map(fromRow);
    for (const r of rows) this.touch.run(nowMs, r.id);
    fx.afterCommit(() => {
      for (const r of rows) this.publisher.publish(r);
      this.stats.resent += rows.length;
    });
    return rows.length;
  }

  /** Undelivered rows, for /health. */
  countPending(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM outbox WHERE delivered_at IS NULL AND superseded = 0').get() as { n: number }).n;
  }
}
