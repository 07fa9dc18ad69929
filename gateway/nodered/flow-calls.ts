/**
 * What a flow may ask of the gateway (docs/node-red.md "Lianfang nodes"), each as flow
 * `flow:<flow name>` in the audit trail:
 *
 * - `command` (lianfang-command-out): buzzer, sounder, display text or LED to one device or to
 *   every device of a shop. An MQTT device's are outbox rows like any command (numbered, tracked,
 *   re-sent); a serial keypad's go to its bus after the commit. Refused for a shop with an open
 *   duress alarm: a siren or a text at the counter would betray the shopkeeper to the robber.
 * - `note` (lianfang-alarm-note): a note on an alarm's timeline. A flow never acknowledges, takes
 *   or closes an alarm: that waits for a person.
 *
 * Every argument comes from a flow an installer wrote, so it is checked here as any input is.
 */
import { validators, type DeviceCommand } from '../../firmware-contracts/mqtt/payloads.js';
import { iso, type Clock } from '../clock.js';
import { lfError } from '../errors.js';
import type { Db } from '../store/db.js';
import { auditRow } from '../store/audit.js';
import type { GroupCommitWriter } from '../ingest/writer.js';
import type { NewDeviceCommand, Outbox } from '../delivery/outbox.js';
import type { Device } from '../registry/registry.js';
import type { RegistryCache } from '../registry/registry-cache.js';
import type { CallOp } from './protocol.js';

/** At most this many commands in one call (the four kinds, each once, is what a device keeps). */
const MAX_COMMANDS = 8;
export const NOTE_MAX = 1000;

export interface FlowCallsContext {
  db: Db;
  writer: GroupCommitWriter;
  outbox: Outbox;
  registry: RegistryCache;
  clock: Clock;
  /** After the commit: a wired keypad's commands, to the bus driver that holds it. */
  wired(deviceId: string, commands: readonly NewDeviceCommand[]): void;
}

const str = (v: unknown, max: number): string | null => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : null);

/** A flow's commands: checked against the MQTT contract, without what only the gateway may set. */
export function flowCommands(raw: unknown): NewDeviceCommand[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0 || list.length > MAX_COMMANDS) throw lfError('LF_ERR_INVALID_ARGUMENT', 'commands', `1 to ${MAX_COMMANDS} commands`);
  return list.map((c, i) => {
    if (!validators.deviceCommand.check(c)) throw lfError('LF_ERR_INVALID_ARGUMENT', `commands[${i}]`, validators.deviceCommand.firstError(c));
    const { command, on, text, line2, colour, blink, seconds } = c as DeviceCommand;
    return { command, ...(on !== undefined ? { on } : {}), ...(text !== undefined ? { text } : {}), ...(line2 !== undefined ? { line2 } : {}), ...(colour ? { colour } : {}), ...(blink !== undefined ? { blink } : {}), ...(seconds !== undefined ? { seconds } : {}) };
  });
}

/** What a device can be told: an MQTT device anything; a serial keypad its buzzer, display and LED. */
function takes(device: Device, commands: readonly NewDeviceCommand[]): boolean {
  if (device.revokedAt) return false;
  if (device.transport === 'mqtt') return true;
  return device.transport === 'serial' && device.type === 'keypad' && commands.every((c) => c.command !== 'sounder');
}

export class FlowCalls {
  private readonly openDuress;
  private readonly alarmExists;

  constructor(private readonly ctx: FlowCallsContext) {
    this.openDuress = ctx.db.prepare("SELECT id FROM alarms WHERE shop_id = ? AND duress = 1 AND state NOT IN ('closed', 'cancelled') LIMIT 1").pluck();
    this.alarmExists = ctx.db.prepare('SELECT id FROM alarms WHERE id = ?').pluck();
  }

  call(op: CallOp, args: Record<string, unknown>, flow: string): Promise<unknown> {
    if (op === 'command') return this.command(args, flow);
    if (op === 'note') return this.note(args, flow);
    return Promise.reject(lfError('LF_ERR_INVALID_ARGUMENT', 'op', String(op)));
  }

  private async command(args: Record<string, unknown>, flow: string): Promise<unknown> {
    const { registry } = this.ctx;
    const commands = flowCommands(args.commands);
    const deviceId = str(args.deviceId, 64);
    const shopId = deviceId ? null : str(args.shopId, 64);
    let devices: Device[];
    if (deviceId) {
      const d = registry.devices.get(deviceId);
      if (!d || d.revokedAt) throw lfError('LF_ERR_NOT_FOUND', 'device', deviceId);
      devices = [d];
    } else if (shopId) {
      if (!registry.shops.has(shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
      devices = registry.devicesByShop.get(shopId) ?? [];
    } else {
      throw lfError('LF_ERR_INVALID_ARGUMENT', 'target', 'a deviceId or a shopId');
    }
    const shops = new Set(devices.map((d) => d.shopId));
    for (const s of shops) if (this.openDuress.get(s)) throw lfError('LF_ERR_DURESS_SILENT', s);
    const told = devices.filter((d) => takes(d, commands));
    if (deviceId && told.length === 0) throw lfError('LF_ERR_INVALID_ARGUMENT', 'commands', `device ${deviceId} cannot take ${commands.map((c) => c.command).join(', ')}`);
    const now = this.ctx.clock.now();
    await this.ctx.writer.run((fx) => {
      for (const d of told) {
        if (d.transport === 'mqtt') this.ctx.outbox.enqueueCommands(fx, now, d.id, commands);
        else fx.afterCommit(() => this.ctx.wired(d.id, commands));
      }
      auditRow(this.ctx.db, iso(now), `flow:${flow}`, 'flow-command', { deviceIds: told.map((d) => d.id), ...(shopId ? { shopId } : {}), commands });
    }, 'flow-command');
    return { devices: told.map((d) => d.id), skipped: devices.filter((d) => !told.includes(d)).map((d) => d.id) };
  }

  private async note(args: Record<string, unknown>, flow: string): Promise<unknown> {
    const alarmId = str(args.alarmId, 64);
    if (!alarmId) throw lfError('LF_ERR_INVALID_ARGUMENT', 'alarmId', 'the alarm the note is about');
    const text = typeof args.text === 'string' ? args.text.trim() : '';
    if (!text || [...text].length > NOTE_MAX) throw lfError('LF_ERR_INVALID_ARGUMENT', 'note', `1 to ${NOTE_MAX} characters`);
    const at = iso(this.ctx.clock.now());
    await this.ctx.writer.run(() => {
      if (!this.alarmExists.get(alarmId)) throw lfError('LF_ERR_NOT_FOUND', 'alarm', alarmId);
      auditRow(this.ctx.db, at, `flow:${flow}`, 'note', { note: text }, alarmId);
    }, 'flow-note');
    return { alarmId, at };
  }
}
