/**
 * What keypads are told besides the shop alert messages (DESIGN "Keypad codes"; issue 8 "What the
 * pressing keypad shows"): the pressing keypad's answer to an entry, and the buzzer, display and
 * LED commands a neighbour shop's MQTT keypad gets for an alert, the same a wired neighbour gets.
 * The engine calls this inside the event's transaction; an MQTT keypad's commands are outbox rows
 * (tracked, re-sent, superseded like every message), a wired keypad's go to the bus driver that
 * holds it once the event is committed (the driver confirms and retries on its own line).
 *
 * The answer must not endanger the shopkeeper: after 9# only the LED (no sound at the counter, no
 * text a robber could read), and a duress PIN shows exactly what a cancel shows.
 */
import type { Effects } from '../ingest/writer.js';
import type { Device, RegistryCache } from '../registry/registry.js';
import type { ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';
import { alertDisplay } from '../../firmware-contracts/serial/display.js';
import type { NewDeviceCommand, Outbox } from './outbox.js';

/** What the keypad that typed an entry shows (DESIGN "Keypad codes"; issue 8 "What the pressing keypad shows"). */
export type KeypadFeedback = 'raised' | 'cancelled' | 'no-alarm' | 'wrong-pin' | 'locked-out';

export interface DeviceCommandSink {
  /** Inside the event's transaction: the pressing keypad's answer to an entry (MQTT: outbox rows; wired: after the commit). */
  feedback(fx: Effects, now: number, device: Device, what: KeypadFeedback): void;
  /** Inside the transaction, right after a shop alert row is enqueued for `shopId`: that shop's MQTT keypads get the buzzer and display commands a wired keypad gets. */
  shopAlert(fx: Effects, now: number, shopId: string, alert: ShopAlert): void;
}

/**
 * The two LCD lines of each answer to a PIN: Chinese, then English, each within the 16 columns of
 * a line (firmware-contracts/serial/display.ts; a Chinese character takes two). A duress PIN is
 * answered 'cancelled' by the engine, so the two cannot differ here.
 */
export const FEEDBACK_TEXT: Readonly<Record<Exclude<KeypadFeedback, 'raised'>, readonly [string, string]>> = {
  cancelled: ['已取消', 'Cancelled'],
  'no-alarm': ['无报警', 'No alarm'],
  'wrong-pin': ['密码错误', 'Wrong PIN'],
  'locked-out': ['密码已锁定', 'PIN locked'],
};

/** The commands that answer an entry on the keypad that typed it. */
export function feedbackCommands(what: KeypadFeedback): NewDeviceCommand[] {
  // Discreet: the LED alone, no buzzer and no text.
  if (what === 'raised') return [{ command: 'led', colour: 'green', blink: true }];
  const [text, line2] = FEEDBACK_TEXT[what];
  const display: NewDeviceCommand = { command: 'display', text, line2 };
  // The 9#'s blink stops when the alarm is cancelled (or seems to be: duress).
  return what === 'cancelled' ? [display, { command: 'led', colour: 'off', blink: false }] : [display];
}

/**
 * What a neighbour's keypad does for an alert, as the serial bridge does it for a wired one
 * (devices/serial-bridge.ts `alert`): buzzer, display (the words of `alertDisplay`, one source
 * for both wires), LED; all off and cleared when the alarm is over.
 */
export function alertCommands(alert: ShopAlert, buzzerSeconds: number): NewDeviceCommand[] {
  const about = { alarmId: alert.alarmId, rev: alert.rev };
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
}

export class DeviceCommands implements DeviceCommandSink {
  /** The commands of the last alert: one alarm's alert goes to ten shops in one commit, its display rendered once. */
  private last: { key: string; commands: NewDeviceCommand[] } | null = null;

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

  shopAlert(fx: Effects, now: number, shopId: string, alert: ShopAlert): void {
    for (const d of this.ctx.registry.devicesByShop.get(shopId) ?? []) {
      if (d.transport !== 'mqtt' || d.type !== 'keypad' || d.revokedAt) continue;
      if (alert.state === 'ended') {
        // As on a wired keypad (devices/bridge.ts AlertBook): an alarm that is over while the
        // keypad shows another alarm's alert changes nothing on it.
        const shown = this.ctx.outbox.lastDisplayedAlarm(d.id);
        if (shown && shown !== alert.alarmId) continue;
      }
      this.ctx.outbox.enqueueCommands(fx, now, d.id, this.commandsFor(alert));
    }
  }

  private commandsFor(alert: ShopAlert): NewDeviceCommand[] {
    // What the commands say depends on these alone (not on the shop's ring or distance).
    const key = JSON.stringify([alert.alarmId, alert.rev, alert.state, alert.doorPlate, alert.originName]);
    if (this.last?.key !== key) this.last = { key, commands: alertCommands(alert, this.ctx.buzzerSeconds) };
    return this.last.commands;
  }
}
