/**
 * A door held open (issue 9 "Door contacts"): a door open past `doors.heldOpenMs` while its shop is
 * disarmed is a `door-held` fault of its device (Supervisor.condition), cleared when it closes.
 *
 * Its timer is a timer on the injected clock, not a stored deadline: what it times is the door's
 * state, which only the device knows, and a deadline row written and finished at every opening of
 * a shop door (many a day) would add two writes to events that are otherwise only stored. After a
 * restart the timers are started again from the stored events (`seed`: each door input's latest
 * door event, counted from when it was received), so a door left open across a restart is still
 * found held; the door's next event says what it is now. An armed shop's open door is the entry
 * delay's business (gateway/alarm/engine.ts): when the timer falls due while armed it waits
 * another period.
 */
import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/db.js';
import { latestDoorEvents } from '../store/door-events.js';
import type { Device } from '../registry/registry.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';

export interface DoorHeldContext {
  clock: Clock;
  log: Logger;
  heldOpenMs: number;
  /** How long a Modbus module's first full read may take after a start (its doors' seeded timers wait for it). */
  firstReadMs: number;
  /** Whether the shop is armed now (its open door is then an entry delay, not a held door). */
  isArmed(shopId: string): boolean;
  /** Supervisor.condition(deviceId, 'door-held', active). */
  condition(deviceId: string, active: boolean): void;
}

/** One door: a device, and its input for a module with several (none for a single contact). */
const doorKey = (deviceId: string, input: string | undefined) => `${deviceId}\u0000${input ?? ''}`;

export class DoorHeld {
  /** Open doors, by doorKey: their timer, or null once found held. */
  private readonly open = new Map<string, { deviceId: string; shopId: string; timer: Timer | null }>();
  private stopped = false;

  constructor(private readonly ctx: DoorHeldContext) {}

  /** After the commit of a door event of `device` (EngineContext.onDoor): time an opening, end a held door at its close. */
  event(device: Device, event: DeviceEvent): void {
    if (event.type !== 'door' || this.stopped) return;
    const input = (event as { input?: unknown }).input;
    if (event.open) this.opened(device.id, device.shopId, typeof input === 'string' ? input : undefined, this.ctx.heldOpenMs);
    else this.closed(device.id, typeof input === 'string' ? input : undefined);
  }

  /**
   * At start: every door whose latest stored door event says open, timed from when that event was
   * received (a door held past its time while the gateway was down is found held at once). A Modbus
   * module's doors are read again at the bridge's first full read, which reports a door that moved
   * while the gateway was down (firmware-contracts/modbus/SPEC.md "The first read after a start"):
   * their timers wait at least `firstReadMs`, so a door closed meanwhile is not raised and cleared
   * (and a ticket opened) for nothing.
   */
  seed(db: Db, devices: Iterable<Device>): void {
    const now = this.ctx.clock.now();
    for (const d of devices) {
      if (d.revokedAt || d.type === 'keypad') continue;
      const settle = d.transport === 'modbus-rtu' || d.transport === 'modbus-tcp' ? this.ctx.firstReadMs : 0;
      for (const [input, door] of latestDoorEvents(db, d.id)) {
        if (door.open) this.opened(d.id, d.shopId, input, Math.max(settle, Date.parse(door.receivedAt) + this.ctx.heldOpenMs - now));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const o of this.open.values()) o.timer?.cancel();
    this.open.clear();
  }

  private opened(deviceId: string, shopId: string, input: string | undefined, inMs: number): void {
    const key = doorKey(deviceId, input);
    if (this.open.has(key)) return;
    const door = { deviceId, shopId, timer: null as Timer | null };
    this.open.set(key, door);
    const arm = (ms: number) => {
      door.timer = this.ctx.clock.setTimer(ms, () => {
        if (this.stopped || this.open.get(key) !== door) return;
        if (this.ctx.isArmed(shopId)) return arm(this.ctx.heldOpenMs);
        door.timer = null;
        this.ctx.log.warn({ deviceId, input, heldOpenMs: this.ctx.heldOpenMs }, 'door held open');
        this.ctx.condition(deviceId, true);
      });
    };
    arm(inMs);
  }

  private closed(deviceId: string, input: string | undefined): void {
    const key = doorKey(deviceId, input);
    this.open.get(key)?.timer?.cancel();
    this.open.delete(key);
    // A door-held fault stays while another door of the device is still held (a fault raised
    // before a restart is cleared by the first close: the supervisor ignores a clear of nothing).
    const stillHeld = [...this.open.values()].some((o) => o.deviceId === deviceId && o.timer === null);
    if (!stillHeld) this.ctx.condition(deviceId, false);
  }
}
