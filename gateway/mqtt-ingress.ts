/**
 * What the gateway does with MQTT traffic the broker policy let through (the BrokerBackend):
 * logins, the one ingest for device events, shop replies, console actions, deliveries.
 * "Refuse without a loop" (docs/concepts.md): an authorised device's bad JSON, schema failure or duplicate
 * is acknowledged, dropped, logged with its code and counted; only a failed commit withholds the
 * PUBACK (the device will resend, and nothing acknowledged is lost).
 */
import type { BrokerBackend, ConnectionState } from '../broker/broker.js';
import type { Principal, Recipient } from '../broker/policy.js';
import { GRANT_PREFIX } from './console/sessions.js';
import { UserPasswords } from './security/user-password.js';
import type { ParsedTopic } from '../firmware-contracts/mqtt/topics.js';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import { validators, type ConsoleError } from '../firmware-contracts/mqtt/payloads.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { DeviceIngest } from './ingest/device-ingest.js';
import type { DeliveryMarks } from './delivery/delivery-marks.js';
import type { AlarmEngine } from './alarm/engine.js';
import type { RegistryCache } from './registry/registry-cache.js';
import type { Outbox } from './delivery/outbox.js';
import type { DeviceCommands } from './delivery/device-commands.js';
import type { Counters } from './metrics.js';
import type { Logger } from './logger.js';
import type { Clock } from './clock.js';
import { verifyKeyedHash } from './secrets.js';
import { isLianfangError, type ErrorCode, ERRORS } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface IngressContext {
  log: Logger;
  clock: Clock;
  counters: Counters;
  registry: RegistryCache;
  writer: GroupCommitWriter;
  engine: AlarmEngine;
  outbox: Outbox;
  /** A keypad's alert commands, re-sent when it subscribes. */
  commands: Pick<DeviceCommands, 'pendingAlertMessages'>;
  /** The one ingest of device events. */
  ingest: DeviceIngest;
  marks: DeliveryMarks;
  gatewayKey: Buffer;
  /** Publish a transient message (an error answer), QoS 1, not tracked. */
  publish: (topic: string, payload: string) => void;
  /** Supervision (gateway/supervision.ts), read at each publish (it is built after the ingress). */
  supervision?: () => DeviceLiveness | undefined;
  /** A console page's live-feed grant (gateway/console/sessions.ts): the id hash of the live session of `username` it belongs to, or null. */
  consoleGrant?: (username: string, grant: string) => string | null;
}

/** What the ingress tells supervision: a device published on its own topics, or said it went offline. */
export interface DeviceLiveness {
  seen(deviceId: string): void;
  offline(deviceId: string): void;
}

type Parsed = { ok: true; value: unknown } | { ok: false; code: ErrorCode; detail: string };

function parseJson(payload: Buffer): Parsed {
  try {
    return { ok: true, value: JSON.parse(utf8.decode(payload)) };
  } catch (err) {
    return { ok: false, code: 'LF_ERR_BAD_JSON', detail: (err as Error).message };
  }
}

export class MqttIngress implements BrokerBackend {
  private readonly passwords: UserPasswords;

  constructor(private readonly ctx: IngressContext) {
    this.passwords = new UserPasswords(() => ctx.registry.users);
  }

  async authenticate(username: string, password: Buffer): Promise<Principal | null> {
    const { registry, gatewayKey } = this.ctx;
    const device = registry.devices.get(username);
    if (device) {
      if (device.revokedAt || !device.secretHash) return null;
      return verifyKeyedHash(gatewayKey, password, device.secretHash) ? { kind: 'device', deviceId: device.id, shopId: device.shopId } : null;
    }
    const presented = password.toString('utf8');
    // A console page logs in with its session's grant, never the officer's password.
    if (presented.startsWith(GRANT_PREFIX)) {
      const user = this.passwords.live(username);
      const session = user ? this.ctx.consoleGrant?.(username, presented.slice(GRANT_PREFIX.length)) : null;
      return user && session ? { kind: 'user', name: user.name, role: user.role, stationId: user.stationId, session } : null;
    }
    const user = await this.passwords.check(username, presented);
    return user ? { kind: 'user', name: user.name, role: user.role, stationId: user.stationId } : null;
  }


  isDeviceId(id: string): boolean {
    return this.ctx.registry.devices.has(id);
  }

  /** Drop and count an input refused at the boundary; the sender still gets its PUBACK. */
  private refuse(code: ErrorCode, fields: Record<string, unknown>, detail: string): void {
    this.ctx.counters.inc(`refused.${code}`);
    this.ctx.log.warn({ code, ...fields, reason: detail }, 'message refused and dropped');
  }

  async onPublish(principal: Principal, topic: ParsedTopic, payload: Buffer, conn: ConnectionState): Promise<void> {
    switch (topic.kind) {
      case 'device-events':
        // Any publish of the device on its own topics proves it alive (the policy allows a device
        // only its own); keep-alive PINGREQs never come here.
        if (principal.kind === 'device') this.ctx.supervision?.()?.seen(topic.id);
        return this.deviceEvent(principal, topic.id, payload, conn);
      case 'device-status': {
        const parsed = parseJson(payload);
        if (!parsed.ok || !validators.deviceStatus.check(parsed.value)) {
          this.refuse(parsed.ok ? 'LF_ERR_BAD_PAYLOAD' : parsed.code, { deviceId: topic.id, topic: 'status' }, parsed.ok ? validators.deviceStatus.firstError(parsed.value) : parsed.detail);
          if (principal.kind === 'device') this.ctx.supervision?.()?.seen(topic.id);
          return;
        }
        // The broker publishes a device's last will through this same path (aedes authorizes it
        // with the dead client's principal): `online:false` is a fault at once.
        if (principal.kind === 'device') {
          const sup = this.ctx.supervision?.();
          if (parsed.value.online) sup?.seen(topic.id);
          else sup?.offline(topic.id);
        }
        return;
      }
      case 'shop-replies':
        return this.shopReply(principal, topic.id, payload);
      case 'station-actions':
        return this.stationAction(principal, topic.id, payload);
      default:
        return;
    }
  }

  private async deviceEvent(principal: Principal, deviceId: string, payload: Buffer, conn: ConnectionState): Promise<void> {
    const device = this.ctx.registry.devices.get(deviceId);
    if (principal.kind !== 'device' || !device || device.revokedAt) throw new Error('device not registered');
    const parsed = parseJson(payload);
    if (!parsed.ok) return this.refuse(parsed.code, { deviceId }, parsed.detail);
    if (!validators.deviceEvent.check(parsed.value)) {
      return this.refuse('LF_ERR_BAD_PAYLOAD', { deviceId }, validators.deviceEvent.firstError(parsed.value));
    }
    const event = parsed.value;
    if (event.boot === undefined) {
      // No boot: de-duplicated by seq within this MQTT connection (README "MQTT topic contract v1").
      if (conn.lastSeqWithoutBoot !== undefined && event.seq <= conn.lastSeqWithoutBoot) {
        this.ctx.counters.inc('events.duplicate');
        return this.refuse('LF_ERR_DUPLICATE', { deviceId, seq: event.seq }, 'seq already seen on this connection');
      }
    }
    const seenBefore = conn.lastSeqWithoutBoot;
    if (event.boot === undefined) conn.lastSeqWithoutBoot = event.seq;
    const { outcome } = await this.ctx
      .ingest(device, event, 'mqtt')
      .catch((err: unknown) => {
        // Not stored, not acknowledged: the device's resend must not be taken for a duplicate.
        if (event.boot === undefined) conn.lastSeqWithoutBoot = seenBefore;
        throw err;
      });
    if (outcome.status === 'duplicate') this.refuse('LF_ERR_DUPLICATE', { deviceId, boot: event.boot, seq: event.seq }, 'already stored');
  }

  private async shopReply(principal: Principal, shopId: string, payload: Buffer): Promise<void> {
    const parsed = parseJson(payload);
    if (!parsed.ok) return this.refuse(parsed.code, { shopId, topic: 'replies' }, parsed.detail);
    if (!validators.shopReply.check(parsed.value)) {
      return this.refuse('LF_ERR_BAD_PAYLOAD', { shopId, topic: 'replies' }, validators.shopReply.firstError(parsed.value));
    }
    const reply = parsed.value;
    const actor = principal.kind === 'device' ? `device:${principal.deviceId}` : `user:${principal.name}`;
    try {
      await this.ctx.writer.run((fx) => this.ctx.engine.shopReply(fx, shopId, reply.alarmId, reply.reply, actor), 'shop-reply');
    } catch (err) {
      if (isLianfangError(err)) return this.refuse(err.code, { shopId, alarmId: reply.alarmId }, err.message);
      throw err;
    }
  }

  private async stationAction(principal: Principal, stationId: string, payload: Buffer): Promise<void> {
    if (principal.kind !== 'user') throw new Error('not a user');
    const parsed = parseJson(payload);
    const answer = (e: ConsoleError) => {
      this.ctx.counters.inc(`refused.${e.code}`);
      this.ctx.log.warn({ stationId, user: principal.name, ...e }, 'console action refused');
      this.ctx.publish(topics.stationErrors(stationId), JSON.stringify(e));
    };
    if (!parsed.ok) return answer({ code: parsed.code, message: ERRORS[parsed.code].message });
    const raw = parsed.value as Record<string, unknown> | null;
    const requestId = raw && typeof raw === 'object' && typeof raw.requestId === 'string' ? raw.requestId.slice(0, 128) : undefined;
    if (!validators.consoleAction.check(parsed.value)) {
      return answer({
        code: 'LF_ERR_BAD_PAYLOAD',
        message: `payload does not match the console action schema: ${validators.consoleAction.firstError(parsed.value)}`,
        ...(requestId ? { requestId } : {}),
      });
    }
    const action = parsed.value;
    try {
      await this.ctx.writer.run((fx) => this.ctx.engine.consoleAction(fx, stationId, principal.name, action), 'console-action');
    } catch (err) {
      if (!isLianfangError(err)) throw err;
      answer({ code: err.code, message: err.message, alarmId: action.alarmId, action: action.action, ...(requestId ? { requestId } : {}) });
    }
  }

  onDelivered(recipient: Recipient, principal: Principal, _topic: string, payload: Buffer): void {
    // The payload is what the broker wrote to this client (the delivery tap pairs it with the
    // PUBACK), so the message's identity is read back from it.
    let msg: { alarmId?: unknown; faultId?: unknown; rev?: unknown; seq?: unknown };
    try {
      msg = JSON.parse(payload.toString('utf8')) as typeof msg;
    } catch {
      return;
    }
    const by = principal.kind === 'device' ? `device:${principal.deviceId}` : `user:${principal.name}`;
    if (recipient.kind === 'device') {
      // A feedback command is the device's own row (by seq); an alert command (alarmId and rev,
      // no seq) renders its shop's alert row, which the PUBACK marks as a PUBACK of the alert would.
      if (typeof msg.seq === 'number') return this.ctx.marks.markCommand(recipient.id, msg.seq, by);
      const shopId = this.ctx.registry.devices.get(recipient.id)?.shopId;
      if (shopId && typeof msg.alarmId === 'string' && typeof msg.rev === 'number') this.ctx.marks.mark('shop', shopId, msg.alarmId, msg.rev, by);
      return;
    }
    // A fault's row carries its faultId where an alarm's carries its alarmId.
    const id = recipient.kind === 'fault' ? msg.faultId : msg.alarmId;
    if (typeof id !== 'string' || typeof msg.rev !== 'number') return;
    this.ctx.marks.mark(recipient.kind, recipient.id, id, msg.rev, by);
  }

  onSubscribed(recipient: Recipient): void {
    let n = this.ctx.outbox.resendTo(recipient.kind, recipient.id);
    if (recipient.kind === 'device') {
      // A keypad back on its commands topic also gets its shop's undelivered alerts as commands.
      const missed = this.ctx.commands.pendingAlertMessages(recipient.id);
      for (const m of missed) this.ctx.publish(m.topic, m.payload);
      n += missed.length;
    }
    if (n > 0) this.ctx.log.info({ recipient, messages: n }, 're-sent undelivered messages to a recipient that subscribed');
  }
}
