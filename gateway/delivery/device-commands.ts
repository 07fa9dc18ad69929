/**
 * What keypads are told besides the shop alert messages (docs/concepts.md "Keypad codes"; issue 8 "What the
 * pressing keypad shows"): the pressing keypad's answer to an entry, and the buzzer, display and
 * LED commands a neighbour shop's MQTT keypad gets for an alert, the same a wired neighbour gets.
 *
 * The answer to an entry is decided by the engine inside the event's transaction: an MQTT keypad's
 * are outbox rows of that device (numbered by `seq`, tracked, re-sent, superseded), a wired
 * keypad's go to the bus driver that holds it once the event is committed.
 *
 * A neighbour's alert commands are not rows of their own: they are a rendering of the shop's alert
 * row for the shop's MQTT keypads, published whenever that row is (first send, re-send, restart,
 * the periodic retry; `alertPublished`), right after the alerts of the same turn, carrying the alert's alarmId and rev and no `seq`; the
 * keypad's PUBACK of one marks the shop's alert delivered. Nothing here touches the database on the
 * alarm path (the registry's devicesByShop is in memory). The keypad keeps the latest raised alert
 * and ignores what is older (devices/bridge.ts AlertBook, as a wired keypad's bridge does).
 *
 * The answer must not endanger the shopkeeper: after 9# only the LED (no sound at the counter, no
 * text a robber could read), and a duress PIN shows exactly what a cancel shows.
 */
import type { Effects } from '../ingest/writer.js';
import type { Device } from '../registry/registry.js';
import type { RegistryCache } from '../registry/registry-cache.js';
import type { ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';
import { alertDisplay } from '../../firmware-contracts/serial/display.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { NewDeviceCommand, Outbox } from './outbox.js';

/** What the keypad that typed an entry shows (docs/concepts.md "Keypad codes"; issue 8 "What the pressing keypad shows"). */
export type KeypadFeedback = 'raised' | 'cancelled' | 'no-alarm' | 'wrong-pin' | 'locked-out' | 'armed' | 'disarmed';

export interface DeviceCommandSink {
  /** Inside the event's transaction: the pressing keypad's answer to an entry (MQTT: outbox rows; wired: after the commit). */
  feedback(fx: Effects, now: number, device: Device, what: KeypadFeedback): void;
}

/** One message to publish as it is (QoS 1, in process). */
export interface TopicPayload {
  topic: string;
  payload: string;
}

/**
 * The two LCD lines of each answer to a PIN: Chinese, then English, each within the 16 columns of
 * a line (firmware-contracts/serial/display.ts; a Chinese character takes two). A duress PIN is
 * answered 'cancelled' (or 'disarmed', 'armed') by the engine, so the two cannot differ here.
 */
export const FEEDBACK_TEXT: Readonly<Record<Exclude<KeypadFeedback, 'raised'>, readonly [string, string]>> = {
  cancelled: ['已取消', 'Cancelled'],
  'no-alarm': ['无报警', 'No alarm'],
  'wrong-pin': ['密码错误', 'Wrong PIN'],
  'locked-out': ['密码已锁定', 'PIN locked'],
  armed: ['已布防', 'Armed'],
  disarmed: ['已撤防', 'Disarmed'],
};

/** The commands that answer an entry on the keypad that typed it. */
export function feedbackCommands(what: KeypadFeedback): NewDeviceCommand[] {
  // Discreet: the LED alone, no buzzer and no text.
  if (what === 'raised') return [{ command: 'led', colour: 'green', blink: true }];
  const [text, line2] = FEEDBACK_TEXT[what];
  const display: NewDeviceCommand = { command: 'display', text, line2 };
  // The 9#'s blink stops when the alarm is cancelled (or seems to be: duress); a disarm cancels
  // the shop's open alarm too, and must look the same whether or not there was one.
  return what === 'cancelled' || what === 'disarmed' ? [display, { command: 'led', colour: 'off', blink: false }] : [display];
}

/**
 * What a neighbour's keypad does for an alert, as the serial bridge does it for a wired one
 * (devices/serial-bridge.ts `alert`): buzzer, display (the words of `alertDisplay`, one source
 * for both wires), LED; all off and cleared when the alarm is over. Each carries the alert's alarmId, rev and
 * state (a keypad keeps the latest raised alert; an `ended` for one it does not show changes nothing).
 */
export function alertCommands(alert: ShopAlert, buzzerSeconds: number): NewDeviceCommand[] {
  const about = { alarmId: alert.alarmId, rev: alert.rev, state: alert.state };
  if (alert.state === 'ended') {
    return [
      { command: 'buzzer', on: false, seconds: 0, ...about },
      { command: 'display', text: '', line2: '', ...about },
      { command: 'led', colour: 'off', blink: false, ...about },
    ];
  }
  const [text, line2] = alertDisplay(alert.doorPlate, alert.originName).text;
  return [
    { command: 'buzzer', on: true, seconds: buzzerSeconds, ...about },
    { command: 'display', text, line2, ...about },
    { command: 'led', colour: 'red', blink: true, ...about },
  ];
}

export interface DeviceCommandsContext {
  registry: RegistryCache;
  outbox: Outbox;
  /** The longest a neighbour keypad's buzzer sounds for one alert (config serial.buzzerSeconds). */
  buzzerSeconds: number;
  /** After the commit: a wired keypad's commands, to the bus driver that holds it. */
  wired(deviceId: string, commands: readonly NewDeviceCommand[]): void;
  /** Publish on the broker (QoS 1, in process): a neighbour keypad's alert commands. */
  publish(topic: string, payload: string): void;
}

export class DeviceCommands implements DeviceCommandSink {
  /** The commands of the last alert: one alarm's alert goes to ten shops at once, its display rendered once. */
  private last: { key: string; payloads: string[] } | null = null;
  /** Alert commands waiting for the end of the turn that published their alerts. */
  private queued: TopicPayload[] = [];

  constructor(private readonly ctx: DeviceCommandsContext) {}

  feedback(fx: Effects, now: number, device: Device, what: KeypadFeedback): void {
    // A Modbus module or a panic button has no display or LED to answer on.
    if (device.type !== 'keypad' || device.revokedAt) return;
    const commands = feedbackCommands(what);
    if (device.transport === 'mqtt') {
      this.ctx.outbox.enqueueCommands(fx, now, device.id, commands);
    } else if (device.transport === 'serial') {
      fx.afterCommit(() => this.ctx.wired(device.id, commands));
    }
  }

  /**
   * The outbox's publisher published the shop's alert row: its MQTT keypads' commands go out once
   * the rest of that turn's messages have (the alerts of one commit first, then their commands).
   */
  alertPublished(shopId: string, alert: ShopAlert): void {
    const messages = this.alertMessages(shopId, alert);
    if (messages.length === 0) return;
    const first = this.queued.length === 0;
    this.queued.push(...messages);
    if (!first) return;
    queueMicrotask(() => {
      const out = this.queued;
      this.queued = [];
      for (const m of out) this.ctx.publish(m.topic, m.payload);
    });
  }

  /**
   * What the shop's alert `alert` is for the shop's MQTT keypads (not revoked): its buzzer, display
   * and LED commands on each one's commands topic. Called by the outbox's publisher every time the
   * shop's alert row is published; no SQL (devicesByShop is in memory), the payloads built once.
   */
  alertMessages(shopId: string, alert: ShopAlert): TopicPayload[] {
    const keypads = (this.ctx.registry.devicesByShop.get(shopId) ?? []).filter((d) => d.transport === 'mqtt' && d.type === 'keypad' && !d.revokedAt);
    if (keypads.length === 0) return [];
    const payloads = this.payloadsFor(alert);
    return keypads.flatMap((d) => {
      const topic = topics.deviceCommands(d.id);
      return payloads.map((payload) => ({ topic, payload }));
    });
  }

  /**
   * What a device that just subscribed to its commands has missed of its shop's alerts: the alert
   * commands of each undelivered alert row of its shop, oldest first (one SELECT, at subscribe).
   */
  pendingAlertMessages(deviceId: string): TopicPayload[] {
    const d = this.ctx.registry.devices.get(deviceId);
    if (!d || d.transport !== 'mqtt' || d.type !== 'keypad' || d.revokedAt || !d.shopId) return [];
    const topic = topics.deviceCommands(d.id);
    return this.ctx.outbox
      .pending('shop', d.shopId)
      .flatMap((m) => (m.kind === 'shop' ? this.payloadsFor(m.body).map((payload) => ({ topic, payload })) : []));
  }

  private payloadsFor(alert: ShopAlert): string[] {
    // What the commands say depends on these alone (not on the shop's ring or distance).
    const key = JSON.stringify([alert.alarmId, alert.rev, alert.state, alert.doorPlate, alert.originName]);
    if (this.last?.key !== key) this.last = { key, payloads: alertCommands(alert, this.ctx.buzzerSeconds).map((c) => JSON.stringify(c)) };
    return this.last.payloads;
  }
}
