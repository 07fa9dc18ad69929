/**
 * The alarm engine: turns device events (handed over by the one ingest, gateway/ingest/device-
 * ingest.ts, which de-duplicates and stores them: `readEvent` before the store, `onEvent` after),
 * shop replies, console actions and due deadlines into alarm changes, their audit rows, their
 * outbox rows and their deadlines, and tells the keypads what to show (EngineContext.commands), all
 * inside the caller's writer transaction (docs/concepts.md "The path of one alarm", "Alarm states",
 * "Rings", "Keypad codes"). Every state it writes is a transition's `to` from the table of
 * gateway/alarm/state-machine.ts. Its repository and keypad assembler are its own. Nothing here
 * publishes directly: the outbox publishes after the commit.
 */
import type { Config } from '../../config/schema.js';
import type { Clock } from '../clock.js';
import { iso } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Effects } from '../ingest/writer.js';
import type { Outbox } from '../delivery/outbox.js';
import type { Counters } from '../metrics.js';
import type { Shop, Device } from '../registry/registry.js';
import type { RegistryCache } from '../registry/registry-cache.js';
import { AlarmRepo, type AlarmRow, type DeadlineRow } from './alarm-repo.js';
import { KeypadAssembler, type Entry } from './keypad-assembler.js';
import { CONSOLE_TRANSITIONS, INITIAL_STATE, SYSTEM_TRANSITIONS, allowed, nextState, type Transition } from './state-machine.js';
import { newAlarmId } from '../ids.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { ConsoleAction, ConsoleAlarm, DeviceEvent, ReplyKind, ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';
import { alarmPriority } from '../../firmware-contracts/mqtt/payloads.js';
import { LianfangError, lfError } from '../errors.js';
import type { Db } from '../store/db.js';
import { PIN_PATTERN, PinStore } from './pins.js';
import { activeTestMode, expireTestMode, startTestMode, stopTestMode, type TestModeRow, type TestScope } from './test-mode.js';
import type { DeviceCommandSink, KeypadFeedback } from '../delivery/device-commands.js';
import type { FaultStore } from '../faults/fault-store.js';
import { anyoneOnDuty, nobodyOnDutySubject } from './on-duty.js';
import { expireEntryDelay, getArming, runSchedule, setArmed, setSchedule, startEntryDelay, type Arming, type Schedule } from './arming.js';

export interface EngineContext {
  db: Db;
  config: Readonly<Config>;
  clock: Clock;
  log: Logger;
  registry: RegistryCache;
  outbox: Outbox;
  counters: Counters;
  gatewayId: string;
  /** Key of the keyed hashes a shop's PINs are stored as. */
  gatewayKey: Buffer;
  /** Where a shop's PIN lock-out is raised as a fault (with its outbox rows, in the same transaction). */
  faults: Pick<FaultStore, 'raiseIn'>;
  /** Told about every deadline written, so the scheduler can arm an earlier timer. */
  onDeadline: (dueAtMs: number) => void;
  /**
   * Where the answer to a keypad entry goes (the pressing keypad's LED or text), inside the same
   * transaction; absent, keypads are told nothing beyond the alert messages. (A neighbour's MQTT
   * keypads get each shop alert as commands from the outbox's publisher, gateway/delivery/device-commands.ts.)
   */
  commands?: DeviceCommandSink;
  /** After the commit of a door event (open or closed): the door-held timers (gateway/alarm/door-held.ts). */
  onDoor?: (device: Device, event: DeviceEvent) => void;
  /** After the commit of each change of an alarm: its console view, once per rev (to Node-RED's flows; a test-mode alarm's too, marked test). */
  onConsoleAlarm?: (alarm: ConsoleAlarm) => void;
}

/**
 * What the engine reads of a device event before it is stored: the copy that may be stored (the
 * keys typed after a `*`, here or in an earlier event, masked) and the keypad entries it completed.
 */
export interface ReadEvent {
  stored: DeviceEvent;
  entries: Entry[];
}

/** Who did something: `device:<id>`, `user:<name>`, `cli:<user>`, `schedule` (a shop's arming schedule), or `gateway`. */
export type Actor = string;

export class AlarmEngine {
  private readonly repo: AlarmRepo;
  private readonly assembler: KeypadAssembler;
  private readonly pins: PinStore;

  constructor(private readonly ctx: EngineContext) {
    this.repo = new AlarmRepo(ctx.db);
    this.pins = new PinStore(ctx.db, ctx.gatewayKey, ctx.config.keypad.pinLockoutMs);
    this.assembler = new KeypadAssembler(ctx.config.keypad.entryTimeoutMs);
  }

  // ---------------------------------------------------------------- device events (gateway/ingest/device-ingest.ts)

  /**
   * Inside the event's transaction, once it is known to be new and before it is stored: feed a
   * keypad's keys to its assembler, timed at `nowMs` (`newSequence`: what was half typed before
   * belongs to another power-up). The assembler follows a rollback back.
   */
  readEvent(fx: Effects, device: Device, event: DeviceEvent, nowMs: number, newSequence: boolean): ReadEvent {
    // If this item is rolled back, the keys it fed must be forgotten, or the resend would be
    // assembled twice (and a '9' … '#' entry whose '#' failed never completed).
    const keypadBefore = this.assembler.snapshot(device.id);
    fx.onRollback(() => this.assembler.restore(device.id, keypadBefore));
    if (newSequence) this.assembler.reset(device.id);
    if (event.type !== 'keypad') return { stored: event, entries: [] };
    const fed = this.assembler.feed(device.id, event.keys, nowMs);
    if (fed.expired) this.ctx.counters.inc('keypad.entries.expired', fed.expired);
    return { stored: { ...event, keys: fed.masked }, entries: fed.entries };
  }

  /**
   * Inside the event's transaction, once it is stored as `eventId`: act on it (a panic, the keypad
   * entries it completed). Returns the alarm it raised, joined or changed, if any.
   */
  onEvent(fx: Effects, device: Device, read: ReadEvent, eventId: number): string | undefined {
    const { counters } = this.ctx;
    const shop = this.ctx.registry.shops.get(device.shopId);
    if (!shop) return undefined;
    const actor = `device:${device.id}`;
    let alarmId: string | undefined;
    if (read.stored.type === 'panic') {
      alarmId = this.raiseOrJoin(fx, shop, 'panic', actor, eventId, device);
    }
    if (read.stored.type === 'door') {
      const door = read.stored;
      if (door.open) alarmId = this.doorOpened(fx, shop, device, eventId) ?? alarmId;
      const onDoor = this.ctx.onDoor;
      if (onDoor) fx.afterCommit(() => onDoor(device, door));
    }
    for (const entry of read.entries) {
      switch (entry.kind) {
        case 'panic':
          alarmId = this.raiseOrJoin(fx, shop, 'panic', actor, eventId, device);
          // Raised or joined, test mode or not: the LED only, nothing a robber at the counter hears.
          this.feedback(fx, device, 'raised');
          break;
        case 'help':
          // 0#: someone needs help, no crime: neighbours and, at the lowest priority, the console.
          alarmId = this.raiseOrJoin(fx, shop, 'help', actor, eventId, device);
          this.feedback(fx, device, 'raised');
          break;
        case 'reply': {
          const target = this.repo.latestAlertFor(shop.id);
          if (target) this.recordReply(fx, target, shop.id, entry.reply, actor);
          else counters.inc('keypad.entries.reply-without-alert');
          break;
        }
        case 'pin': {
          // The PIN is checked against its keyed hashes, never stored, logged or audited.
          const id = this.pinEntry(fx, shop, device, entry.pin, actor, eventId, entry.command);
          if (id) alarmId = id;
          break;
        }
        case 'other':
          counters.inc('keypad.entries.ignored');
          break;
      }
    }
    return alarmId;
  }

  /** The answer the keypad that typed an entry shows (docs/concepts.md "Keypad codes"). */
  private feedback(fx: Effects, device: Device, what: KeypadFeedback): void {
    this.ctx.commands?.feedback(fx, this.ctx.clock.now(), device, what);
  }

  /** Forget what a keypad had half typed (its counter was reset by the installer, or it was revoked). */
  forgetKeys(deviceId: string): void {
    this.assembler.reset(deviceId);
  }

  // ---------------------------------------------------------------- PINs

  /**
   * A `*` PIN `#` entry from `device` of `shop` (docs/concepts.md "Keypad codes", "Alarm kinds and states"): cancel,
   * duress, a wrong PIN (five in a row lock cancelling for `keypad.pinLockoutMs`), or nothing; the
   * pressing keypad is told what it shows. Returns the alarm it changed or raised.
   */
  private pinEntry(fx: Effects, shop: Shop, device: Device, pin: string, actor: Actor, eventId: number, command?: 'arm'): string | undefined {
    const { alarmId, shows } = this.checkPin(fx, shop, device, pin, actor, eventId, command);
    this.feedback(fx, device, shows);
    return alarmId;
  }

  /**
   * What a PIN entry does and what its keypad shows. A duress PIN shows exactly what the cancel PIN
   * would have shown (`cancelled` when there was an alarm to cancel, `no-alarm` when not; `armed`
   * for `*` PIN `*1#`; `disarmed` on an armed shop); during a lock-out every PIN shows
   * `locked-out`, the duress PIN too, and nothing is armed or disarmed.
   */
  private checkPin(fx: Effects, shop: Shop, device: Device, pin: string, actor: Actor, eventId: number, command?: 'arm'): { alarmId?: string; shows: KeypadFeedback } {
    const { counters, clock } = this.ctx;
    const now = clock.now();
    if (!PIN_PATTERN.test(pin)) {
      counters.inc('keypad.entries.pin-malformed');
      // Not a PIN the shop could have (not counted as a wrong one), but shown as one.
      return { shows: this.pins.lockedUntil(shop.id, now) !== undefined ? 'locked-out' : 'wrong-pin' };
    }
    const verdict = this.pins.check(shop.id, pin, now);
    switch (verdict.kind) {
      case 'unset':
        counters.inc('keypad.entries.pin-unset');
        return { shows: 'wrong-pin' };
      case 'cancel': {
        if (command === 'arm') {
          this.setArmed(fx, shop.id, true, actor);
          return { shows: 'armed' };
        }
        // `*` PIN `#` on an armed shop disarms it (ending its entry delay) and cancels its open alarm, if any.
        const disarm = this.disarmable(shop.id);
        if (disarm) this.setArmed(fx, shop.id, false, actor);
        const alarmId = this.cancelByPin(fx, shop, actor, eventId);
        if (disarm) return { alarmId, shows: 'disarmed' };
        return alarmId ? { alarmId, shows: 'cancelled' } : { shows: 'no-alarm' };
      }
      case 'duress': {
        if (command === 'arm') {
          // Arming leaves an open alarm as it is at the shops: so does the duress PIN (console only).
          this.setArmed(fx, shop.id, true, actor);
          return { alarmId: this.duressByPin(fx, shop, actor, eventId, false, device).alarmId, shows: 'armed' };
        }
        const disarm = this.disarmable(shop.id);
        if (disarm) this.setArmed(fx, shop.id, false, actor);
        const { alarmId, asCancel } = this.duressByPin(fx, shop, actor, eventId, true, device);
        return { alarmId, shows: disarm ? 'disarmed' : asCancel ? 'cancelled' : 'no-alarm' };
      }
      case 'locked-duress':
        // During a lock-out nothing changes at any keypad or neighbour; the console still learns.
        return { alarmId: this.duressByPin(fx, shop, actor, eventId, false, device).alarmId, shows: 'locked-out' };
      case 'locked':
        counters.inc('pins.refused-locked');
        this.repo.audit({ alarmId: null, at: iso(now), actor, action: 'pin-refused-locked', detail: { shopId: shop.id, eventId, lockedUntil: iso(verdict.lockedUntil) } });
        return { shows: 'locked-out' };
      case 'wrong': {
        counters.inc('pins.wrong');
        this.repo.audit({ alarmId: null, at: iso(now), actor, action: 'pin-wrong', detail: { shopId: shop.id, eventId, wrongInARow: verdict.wrongInARow } });
        if (verdict.lockedUntil === undefined) return { shows: 'wrong-pin' };
        this.lockOut(fx, shop, device, actor, now, verdict.lockedUntil);
        return { shows: 'locked-out' };
      }
    }
  }

  /**
   * Five wrong PINs in a row: an audit row and a `pin-lockout` fault of the shop (subject
   * `shop:<id>`, to its consoles through the outbox), which clears when the lock-out ends (the
   * fault store arms its end from the stored lockedUntil, again after a restart).
   */
  private lockOut(fx: Effects, shop: Shop, device: Device, actor: Actor, now: number, lockedUntil: number): void {
    const at = iso(now);
    this.repo.audit({ alarmId: null, at, actor, action: 'pin-lockout', detail: { shopId: shop.id, deviceId: device.id, lockedUntil: iso(lockedUntil) } });
    this.ctx.counters.inc('pins.lockouts');
    this.ctx.log.warn({ shopId: shop.id, deviceId: device.id, lockedUntil: iso(lockedUntil) }, 'wrong PINs in a row: cancelling locked for the shop');
    this.ctx.faults.raiseIn(fx, { kind: 'pin-lockout', subject: `shop:${shop.id}`, shopId: shop.id, detail: { deviceId: device.id, lockedUntil: iso(lockedUntil) }, at: now });
  }

  /** The cancel PIN: the shop's open alarm becomes `cancelled` and every alerted shop is told it ended. */
  private cancelByPin(fx: Effects, shop: Shop, actor: Actor, eventId: number): string | undefined {
    const now = this.ctx.clock.now();
    const open = this.repo.joinableForShop(shop.id);
    if (!open || !allowed(SYSTEM_TRANSITIONS.cancel, open.state)) {
      this.ctx.counters.inc('pins.cancel-without-alarm');
      return undefined;
    }
    this.repo.finishAlarmDeadlines(open.id, now);
    const cancelled = this.change(fx, open, actor, 'cancel', SYSTEM_TRANSITIONS.cancel, (a) => (a.shopsEnded = true), { eventId });
    this.endForShops(fx, cancelled);
    this.ctx.counters.inc('alarms.cancelled');
    this.ctx.log.info({ alarmId: open.id, shopId: shop.id }, 'alarm cancelled by the shop');
    return open.id;
  }

  /**
   * The duress PIN. `shopsSide` (not locked out): on the shops' side exactly what a cancel does (the
   * same `ended` messages in the same commit; then no widening, not joinable, nothing at close),
   * while the console gets `duress: true` in the alarm's open state. Locked out: only the console
   * learns. With no open alarm: a console-only duress alarm. `asCancel`: there was an alarm a cancel
   * PIN would have cancelled (a joinable one).
   */
  private duressByPin(fx: Effects, shop: Shop, actor: Actor, eventId: number, shopsSide: boolean, device?: Device): { alarmId: string; asCancel: boolean } {
    const now = this.ctx.clock.now();
    this.ctx.counters.inc('alarms.duress');
    const joinable = this.repo.joinableForShop(shop.id);
    if (joinable && allowed(SYSTEM_TRANSITIONS.duress, joinable.state)) {
      if (shopsSide) this.repo.finishAlarmDeadlines(joinable.id, now, 'ring');
      const flagged = this.change(fx, joinable, actor, 'duress', SYSTEM_TRANSITIONS.duress, (a) => {
        a.duress = true;
        if (shopsSide) a.shopsEnded = true;
      }, { eventId });
      if (shopsSide) this.endForShops(fx, flagged);
      this.ctx.log.warn({ alarmId: joinable.id, shopId: shop.id }, 'duress');
      return { alarmId: joinable.id, asCancel: true };
    }
    const open = this.repo.inJoinableStateForShop(shop.id);
    if (open) {
      // Already a duress alarm (its shops told it ended): the console has it; one more audit row.
      if (!open.duress) this.change(fx, open, actor, 'duress', SYSTEM_TRANSITIONS.duress, (a) => (a.duress = true), { eventId });
      else this.repo.audit({ alarmId: open.id, at: iso(now), actor, action: 'duress-repeat', fromState: open.state, toState: open.state, rev: open.rev, detail: { eventId } });
      return { alarmId: open.id, asCancel: false };
    }
    // In test mode (the installer trying the PINs) a duress alarm is a test alarm like a 9#.
    const testMode = activeTestMode(this.ctx.db, shop.id, device?.id, now);
    if (testMode) return { alarmId: this.raiseTest(fx, shop, 'panic', actor, eventId, now, testMode, true), asCancel: false };
    // No neighbour is alerted: on the shops' side there is nothing to end or join.
    const id = this.insertRaised(shop, 'panic', { duress: true, shopsEnded: true }, actor, eventId, now);
    this.publishToConsoles(fx, this.repo.get(id)!, now);
    this.noticeNobodyOnDuty(fx, shop, now);
    this.addDeadline(id, 'ack', now + this.ctx.config.escalation.ackDeadlineMs);
    this.ctx.counters.inc('alarms.raised');
    this.ctx.log.warn({ alarmId: id, shopId: shop.id }, 'duress alarm raised (console only)');
    return { alarmId: id, asCancel: false };
  }

  // ---------------------------------------------------------------- arming and doors (gateway/alarm/arming.ts)

  /** A shop's arming, schedule and running entry delay (read inside or outside a transaction). */
  arming(shopId: string): Arming {
    return getArming(this.ctx.db, shopId);
  }

  isArmed(shopId: string): boolean {
    return getArming(this.ctx.db, shopId).armed;
  }

  /** What `*` PIN `#` disarms: an armed shop, or one whose entry delay outlived a scheduled disarm. */
  private disarmable(shopId: string): boolean {
    const a = getArming(this.ctx.db, shopId);
    return a.armed || a.entry !== null;
  }

  /** Inside a transaction: arm or disarm a shop by hand (a keypad, the CLI); a disarm ends its entry delay. */
  setArmed(_fx: Effects, shopId: string, armed: boolean, actor: Actor): Arming {
    const { changed, entryDelayEnded } = setArmed(this.ctx.db, shopId, armed, actor, this.ctx.clock.now());
    this.armingChanged(shopId, armed, actor, changed, entryDelayEnded);
    return this.arming(shopId);
  }

  /** Inside a transaction: set or (null) remove a shop's arming schedule; it rules from now. */
  setSchedule(_fx: Effects, shopId: string, schedule: Schedule | null, actor: Actor): Arming {
    const before = this.isArmed(shopId);
    const { dueAt } = setSchedule(this.ctx.db, shopId, schedule, actor, this.ctx.clock.now());
    if (dueAt !== null) this.ctx.onDeadline(dueAt);
    const after = this.arming(shopId);
    if (after.armed !== before) this.armingChanged(shopId, after.armed, 'schedule', true, false);
    return after;
  }

  private armingChanged(shopId: string, armed: boolean, actor: Actor, changed: boolean, entryDelayEnded: boolean): void {
    if (changed) this.ctx.counters.inc(armed ? 'arming.armed' : 'arming.disarmed');
    if (entryDelayEnded) this.ctx.counters.inc('doors.entry-delays.disarmed');
    this.ctx.log.info({ shopId, armed, actor, changed, entryDelayEnded }, armed ? 'shop armed' : 'shop disarmed');
  }

  /**
   * A door of `shop` opened (stored as `eventId`). Armed: an entry delay starts, a stored deadline
   * (an intrusion alarm when it expires undisarmed); a door opening during the delay, or while the
   * shop's intrusion alarm is open, joins it. Disarmed: nothing here (door-held is timed outside the
   * transaction, gateway/alarm/door-held.ts). Returns the alarm joined, if any.
   */
  private doorOpened(fx: Effects, shop: Shop, device: Device, eventId: number): string | undefined {
    const arming = this.arming(shop.id);
    if (!arming.armed) return undefined;
    const now = this.ctx.clock.now();
    const actor = `device:${device.id}`;
    if (arming.entry) {
      this.repo.audit({ alarmId: null, at: iso(now), actor, action: 'entry-delay-joined', detail: { shopId: shop.id, eventId, until: iso(arming.entry.dueAt) } });
      this.ctx.counters.inc('doors.entry-delays.joined');
      return undefined;
    }
    const open = this.repo.joinableForShop(shop.id);
    if (open?.kind === 'intrusion') return this.raiseOrJoin(fx, shop, 'intrusion', actor, eventId, device);
    const dueAt = now + this.ctx.config.doors.entryDelayMs;
    startEntryDelay(this.ctx.db, shop.id, eventId, device.id, dueAt, now);
    this.ctx.onDeadline(dueAt);
    this.ctx.counters.inc('doors.entry-delays.started');
    this.ctx.log.info({ shopId: shop.id, deviceId: device.id, until: iso(dueAt) }, 'door opened while armed: entry delay started');
    return undefined;
  }

  /** An entry delay expired without a disarm: an intrusion alarm, raised (or in test mode a test alarm) like a panic. */
  private entryDelayExpired(fx: Effects, shopId: string): void {
    const origin = expireEntryDelay(this.ctx.db, shopId);
    const shop = this.ctx.registry.shops.get(shopId);
    if (!origin || !shop) return;
    const device = this.ctx.registry.devices.get(origin.deviceId);
    this.ctx.counters.inc('doors.entry-delays.expired');
    const alarmId = this.raiseOrJoin(fx, shop, 'intrusion', `device:${origin.deviceId}`, origin.eventId, device);
    this.ctx.log.warn({ shopId, deviceId: origin.deviceId, alarmId }, 'entry delay expired without a disarm: intrusion');
  }

  // ---------------------------------------------------------------- raising and fan-out

  /**
   * A panic from `shop` (from `device`, when a device raised it): in test mode a test alarm;
   * otherwise join its open alarm, or raise a new one and fan it out.
   */
  raiseOrJoin(fx: Effects, shop: Shop, kind: string, actor: Actor, eventId: number | null, device?: Device): string {
    const now = this.ctx.clock.now();
    const testMode = activeTestMode(this.ctx.db, shop.id, device?.id, now);
    if (testMode) return this.raiseTest(fx, shop, kind, actor, eventId, now, testMode);
    const found = this.repo.joinableForShop(shop.id);
    // A 9# while the shop's help call is open is a crime, not more of the same: its own alarm, at
    // its own priority (a 0# while a panic is open joins the panic).
    const open = found && !(found.kind === 'help' && kind !== 'help') ? found : undefined;
    if (open) {
      this.repo.audit({ alarmId: open.id, at: iso(now), actor, action: 'joined', fromState: open.state, toState: open.state, rev: open.rev, detail: { eventId } });
      this.ctx.counters.inc('alarms.joined');
      return open.id;
    }
    const id = this.insertRaised(shop, kind, { duress: false, shopsEnded: false }, actor, eventId, now);
    const alarm = this.repo.get(id)!;
    this.alertRing(fx, alarm, shop, 1, now);
    this.publishToConsoles(fx, alarm, now);
    this.noticeNobodyOnDuty(fx, shop, now);
    const esc = this.ctx.config.escalation;
    this.addDeadline(id, 'ack', now + esc.ackDeadlineMs);
    if (esc.maxRings > 1) this.addDeadline(id, 'ring', now + esc.ringIntervalMs);
    this.ctx.counters.inc('alarms.raised');
    this.ctx.log.info({ alarmId: id, shopId: shop.id, kind }, 'alarm raised');
    return id;
  }

  /**
   * Test mode: an alarm marked `test` that reaches only the audit trail and the installer (no
   * recipient, no outbox row, no deadline), closed at once with disposition `test`, never joinable.
   */
  private raiseTest(fx: Effects, shop: Shop, kind: string, actor: Actor, eventId: number | null, now: number, testMode: TestModeRow, duress = false): string {
    const id = this.insertRaised(shop, kind, { duress, shopsEnded: true, test: true }, actor, eventId, now);
    const raised = this.repo.get(id)!;
    const state = nextState(SYSTEM_TRANSITIONS.closeTest, raised.state);
    const closed: AlarmRow = { ...raised, state, disposition: 'test', closedAt: iso(now), updatedAt: iso(now), rev: raised.rev + 1 };
    this.repo.update(closed);
    this.ctx.db.prepare('UPDATE alarms SET test_mode_id = ? WHERE id = ?').run(testMode.id, id);
    this.repo.audit({ alarmId: id, at: iso(now), actor: 'gateway', action: 'close', fromState: raised.state, toState: state, rev: closed.rev, detail: { disposition: 'test', testModeId: testMode.id } });
    this.ctx.counters.inc('alarms.test');
    this.ctx.log.info({ alarmId: id, shopId: shop.id, kind, testModeId: testMode.id }, 'test alarm (test mode): audit trail only');
    // No console hears of it; Node-RED's flows do, marked test (a node passes them on only when asked to).
    const tap = this.ctx.onConsoleAlarm;
    if (tap) {
      const views = [this.consoleView(raised), this.consoleView(closed)];
      fx.afterCommit(() => views.forEach(tap));
    }
    return id;
  }

  // ---------------------------------------------------------------- test mode

  /** Inside a transaction: put a shop or a device in test mode for `durationMs`; its expiry is a deadline. */
  startTest(scope: TestScope, targetId: string, durationMs: number, actor: Actor): TestModeRow {
    const row = startTestMode(this.ctx.db, scope, targetId, durationMs, actor, this.ctx.clock.now());
    this.ctx.onDeadline(row.untilMs);
    this.ctx.log.info({ scope, targetId, until: iso(row.untilMs) }, 'test mode started');
    return row;
  }

  /** Inside a transaction: end a shop's or a device's test mode; false when it was in none. */
  stopTest(scope: TestScope, targetId: string, actor: Actor): boolean {
    const stopped = stopTestMode(this.ctx.db, scope, targetId, actor, this.ctx.clock.now());
    if (stopped) this.ctx.log.info({ scope, targetId }, 'test mode stopped');
    return stopped;
  }

  /** A new alarm of `shop` in state `raised` (rev 1) and its audit row; nothing is sent yet. */
  private insertRaised(shop: Shop, kind: string, flags: { duress: boolean; shopsEnded: boolean; test?: boolean }, actor: Actor, eventId: number | null, now: number): string {
    const id = newAlarmId(now);
    const raisedAt = iso(now);
    this.repo.insertAlarm({
      id,
      gatewayId: this.ctx.gatewayId,
      shopId: shop.id,
      stationId: shop.stationId,
      compoundId: shop.compoundId,
      state: INITIAL_STATE,
      kind,
      duress: flags.duress,
      test: flags.test ?? false,
      shopsEnded: flags.shopsEnded,
      originEventId: eventId,
      raisedAt,
    });
    const detail = { eventId, kind, ...(flags.duress ? { duress: true } : {}), ...(flags.test ? { test: true } : {}) };
    this.repo.audit({ alarmId: id, at: raisedAt, actor, action: 'raised', fromState: null, toState: INITIAL_STATE, rev: 1, detail });
    return id;
  }

  /**
   * Alert ring `ring` of an alarm: the next `ringSize` shops of the origin's ranking (its pinned
   * shops first, then the nearest; never-rules and retired shops left out) not yet alerted.
   */
  private alertRing(fx: Effects, alarm: AlarmRow, origin: Shop, ring: number, now: number): number {
    const { registry, config } = this.ctx;
    const already = new Set(this.repo.recipients(alarm.id).map((r) => r.shopId));
    const { ranked } = registry.neighboursOf(origin, config.escalation.ringSize);
    let alerted = 0;
    for (const n of ranked) {
      if (alerted >= config.escalation.ringSize) break;
      if (already.has(n.id)) continue;
      this.repo.addRecipient(alarm.id, n.id, ring, n.distanceM, iso(now));
      this.enqueueShopAlert(fx, alarm, origin, n.id, 'raised', now, ring, n.distanceM);
      alerted++;
    }
    return alerted;
  }

  private enqueueShopAlert(
    fx: Effects,
    alarm: AlarmRow,
    origin: Shop,
    shopId: string,
    state: ShopAlert['state'],
    now: number,
    ring?: number,
    distanceM?: number | null,
  ): void {
    const alert: ShopAlert = {
      alarmId: alarm.id,
      rev: alarm.rev,
      state,
      originShopId: origin.id,
      originName: origin.name,
      address: origin.address,
      ...(origin.doorPlate ? { doorPlate: origin.doorPlate } : {}),
      kind: alarm.kind === 'duress' ? 'panic' : alarm.kind,
      raisedAt: alarm.raisedAt,
      ...(ring !== undefined ? { ring } : {}),
      ...(distanceM !== undefined && distanceM !== null ? { distanceM: Math.round(distanceM) } : {}),
    };
    this.ctx.outbox.enqueue(fx, now, { alarmId: alarm.id, rev: alarm.rev, kind: 'shop', recipientId: shopId, topic: topics.shopAlerts(shopId), body: alert });
  }

  /** The console's view of an alarm. */
  consoleView(alarm: AlarmRow): ConsoleAlarm {
    const shop = this.ctx.registry.shops.get(alarm.shopId);
    return {
      alarmId: alarm.id,
      rev: alarm.rev,
      shopId: alarm.shopId,
      shopName: shop?.name ?? alarm.shopId,
      address: shop?.address ?? '',
      ...(shop?.doorPlate ? { doorPlate: shop.doorPlate } : {}),
      stationId: alarm.stationId,
      ...(alarm.compoundId ? { compoundId: alarm.compoundId } : {}),
      state: alarm.state,
      kind: alarm.kind,
      raisedAt: alarm.raisedAt,
      updatedAt: alarm.updatedAt,
      overdue: alarm.overdue,
      duress: alarm.duress,
      priority: alarmPriority(alarm.kind, alarm.duress),
      test: alarm.test,
      takenBy: alarm.takenBy,
      disposition: alarm.disposition,
      patrol: alarm.patrol,
      ring: alarm.ring,
      shopsAlerted: this.repo.recipients(alarm.id).length,
      replies: this.repo.replyCounts(alarm.id),
      gatewayId: alarm.gatewayId,
    };
  }

  private publishToConsoles(fx: Effects, alarm: AlarmRow, now: number): void {
    const body = this.consoleView(alarm);
    const tap = this.ctx.onConsoleAlarm;
    if (tap) fx.afterCommit(() => tap(body));
    const consoles = alarm.compoundId ? [alarm.stationId, alarm.compoundId] : [alarm.stationId];
    for (const stationId of consoles) {
      this.ctx.outbox.enqueue(fx, now, {
        alarmId: alarm.id,
        rev: alarm.rev,
        kind: 'station',
        recipientId: stationId,
        topic: topics.stationAlarms(stationId),
        body,
      });
    }
  }

  /**
   * Apply a change: the state the table's transition `t` reaches (null: no transition, the state
   * stays, as for a reply), the fields `mutate` sets (never the state), then bump rev, stamp, store,
   * audit, publish to the consoles. A transition not allowed from the alarm's state is refused.
   */
  private change(
    fx: Effects,
    alarm: AlarmRow,
    actor: Actor,
    action: string,
    t: Transition | null,
    mutate: (a: AlarmRow) => void,
    detail?: Record<string, unknown>,
    beforePublish?: (a: AlarmRow) => void,
  ): AlarmRow {
    if (t && !allowed(t, alarm.state)) throw lfError('LF_ERR_BAD_TRANSITION', action, alarm.id, alarm.state);
    const now = this.ctx.clock.now();
    const fromState = alarm.state;
    const next: AlarmRow = { ...alarm };
    mutate(next);
    next.state = t ? nextState(t, fromState) : fromState;
    next.rev = alarm.rev + 1;
    next.updatedAt = iso(now);
    this.repo.update(next);
    this.repo.audit({ alarmId: alarm.id, at: next.updatedAt, actor, action, fromState, toState: next.state, rev: next.rev, detail });
    beforePublish?.(next);
    this.publishToConsoles(fx, next, now);
    return next;
  }

  /** Tell every alerted shop the alarm is over (display cleared, buzzer and sounder off). */
  private endForShops(fx: Effects, alarm: AlarmRow): void {
    const origin = this.ctx.registry.shops.get(alarm.shopId);
    if (!origin) return;
    const now = this.ctx.clock.now();
    for (const r of this.repo.recipients(alarm.id)) this.enqueueShopAlert(fx, alarm, origin, r.shopId, 'ended', now);
  }

  private addDeadline(alarmId: string, kind: DeadlineRow['kind'], dueAt: number): void {
    this.repo.addDeadline(alarmId, kind, dueAt);
    this.ctx.onDeadline(dueAt);
  }

  // ---------------------------------------------------------------- replies

  /** Inside a transaction: a shop's answer to an alert. Throws LF_ERR_UNKNOWN_ALARM when it was not alerted. */
  shopReply(fx: Effects, shopId: string, alarmId: string, reply: ReplyKind, actor: Actor): void {
    if (!this.repo.isRecipient(alarmId, shopId)) throw lfError('LF_ERR_UNKNOWN_ALARM', alarmId);
    this.recordReply(fx, alarmId, shopId, reply, actor);
  }

  private recordReply(fx: Effects, alarmId: string, shopId: string, reply: ReplyKind, actor: Actor): void {
    const alarm = this.repo.get(alarmId);
    if (!alarm) return;
    this.repo.addReply(alarmId, shopId, reply, actor, iso(this.ctx.clock.now()));
    this.change(fx, alarm, actor, 'reply', null, () => {}, { shopId, reply });
    this.ctx.counters.inc(`replies.${reply}`);
  }

  // ---------------------------------------------------------------- console actions

  /**
   * Inside a transaction: an officer's action for `stationId`. Throws a LianfangError
   * (LF_ERR_UNKNOWN_ALARM, LF_ERR_BAD_TRANSITION, LF_ERR_BAD_PAYLOAD, LF_ERR_TAKEN) that the caller
   * answers on the station's errors topic. Two officers cannot both take an alarm (the station and
   * a compound's receiving point see it at the same moment): a `take` or `ack` of an alarm another
   * officer holds is refused with LF_ERR_TAKEN naming the holder, unless it says `force: true`,
   * which is audited as taken from them.
   */
  consoleAction(fx: Effects, stationId: string, user: string, action: ConsoleAction): AlarmRow {
    const alarm = this.repo.get(action.alarmId);
    if (!alarm || (alarm.stationId !== stationId && alarm.compoundId !== stationId)) {
      throw lfError('LF_ERR_UNKNOWN_ALARM', action.alarmId);
    }
    const t = CONSOLE_TRANSITIONS[action.action];
    if (!allowed(t, alarm.state)) throw lfError('LF_ERR_BAD_TRANSITION', action.action, alarm.id, alarm.state);
    const actor = `user:${user}`;
    const now = this.ctx.clock.now();
    const takesOver = (action.action === 'take' || action.action === 'ack') && alarm.takenBy !== null && alarm.takenBy !== user;
    if (takesOver && action.force !== true) throw lfError('LF_ERR_TAKEN', alarm.id, alarm.takenBy);
    // Who had it, who has it now: a take always says so; an ack only when it took the alarm over.
    const handedFrom = takesOver ? { from: alarm.takenBy, to: user, force: true } : undefined;
    switch (action.action) {
      case 'ack': {
        this.repo.finishAlarmDeadlines(alarm.id, now, 'ack');
        return this.change(
          fx,
          alarm,
          actor,
          'ack',
          t,
          (a) => {
            a.takenBy = user;
            a.overdue = false;
          },
          handedFrom,
        );
      }
      case 'take':
        return this.change(fx, alarm, actor, 'take', t, (a) => (a.takenBy = user), handedFrom ?? { from: alarm.takenBy, to: user });
      case 'dispatch':
        return this.change(
          fx,
          alarm,
          actor,
          'dispatch',
          t,
          (a) => (a.patrol = action.patrol ?? null),
          { patrol: action.patrol ?? null, note: action.note ?? null },
        );
      case 'close': {
        if (!action.disposition) throw lfError('LF_ERR_BAD_PAYLOAD', 'console action', 'close needs a disposition (real, false, test, malicious)');
        this.repo.finishAlarmDeadlines(alarm.id, now);
        const closed = this.change(
          fx,
          alarm,
          actor,
          'close',
          t,
          (a) => {
            a.disposition = action.disposition!;
            a.closedAt = iso(now);
          },
          { disposition: action.disposition, note: action.note ?? null },
        );
        // A cancelled or duress alarm's shops were told it ended by the PIN.
        if (!alarm.shopsEnded) this.endForShops(fx, closed);
        return closed;
      }
    }
  }

  // ---------------------------------------------------------------- shifts (gateway/console/shifts.ts)

  /**
   * Inside a transaction: a handover. The open alarms of `scope` (a station's: every shop of it; a
   * compound's: its shops) that `from` holds pass to `to`: each a change like any other (audit
   * action `handover` with `{from, to, note}`, rev + 1, published to its consoles). Returns them.
   */
  passAlarms(fx: Effects, scope: { kind: 'station' | 'compound'; id: string }, from: string, to: string, note: string | null, actor: Actor): AlarmRow[] {
    if (from === to) return [];
    const passed = this.repo.openHeldBy(scope, from).map((alarm) => this.change(fx, alarm, actor, 'handover', null, (a) => (a.takenBy = to), { from, to, note }));
    if (passed.length) this.ctx.log.info({ scope: scope.id, from, to, alarms: passed.length }, 'open alarms passed to the new shift');
    return passed;
  }

  /**
   * A new alarm (not a test) of `shop` while no officer is signed on to a shift in any scope that
   * covers it (its station, its compound): a `nobody-on-duty` fault as well, in the same
   * transaction, for whoever signs on next and for Node-RED (it clears at the next sign-on in a
   * covering scope). One open fault per uncovered scope, subject `station:<compound or station id>`.
   */
  private noticeNobodyOnDuty(fx: Effects, shop: Shop, now: number): void {
    if (!this.ctx.config.console.nobodyOnDutyFault) return;
    if (anyoneOnDuty(this.ctx.db, shop.stationId, shop.compoundId)) return;
    this.ctx.faults.raiseIn(fx, {
      kind: 'nobody-on-duty',
      subject: nobodyOnDutySubject(shop.stationId, shop.compoundId),
      stationId: shop.stationId,
      compoundId: shop.compoundId,
      detail: { stationId: shop.stationId, compoundId: shop.compoundId },
      at: now,
    });
  }

  // ---------------------------------------------------------------- deadlines (gateway/scheduler.ts)

  /** The earliest pending deadline (ms), or null: what the scheduler arms for. */
  nextDeadline(): number | null {
    return this.repo.nextDeadline();
  }

  /** Inside a transaction: the deadlines due at `nowMs`, oldest first, to run one by one. */
  dueDeadlines(nowMs: number): DeadlineRow[] {
    return this.repo.dueDeadlines(nowMs);
  }

  /** Alarms an officer still has to close, for /health. */
  countOpenAlarms(): number {
    return this.repo.countOpen();
  }

  /** Inside a transaction: act on one due deadline and mark it done. */
  runDeadline(fx: Effects, d: DeadlineRow): void {
    const now = this.ctx.clock.now();
    this.repo.finishDeadline(d.id, now);
    if (d.kind === 'schedule' || d.kind === 'entry-delay') {
      if (!d.shopId) return;
      if (d.kind === 'entry-delay') return this.entryDelayExpired(fx, d.shopId);
      const before = this.isArmed(d.shopId);
      const { armed, entryDelayEnded, dueAt } = runSchedule(this.ctx.db, d.shopId, now);
      if (dueAt !== null) this.ctx.onDeadline(dueAt);
      if (armed !== before) this.armingChanged(d.shopId, armed, 'schedule', true, entryDelayEnded);
      return;
    }
    if (d.kind === 'test-expiry') {
      const ended = d.testModeId ? expireTestMode(this.ctx.db, d.testModeId, now) : undefined;
      if (ended) {
        this.ctx.counters.inc('test-modes.expired');
        this.ctx.log.info({ scope: ended.scope, targetId: ended.targetId }, 'test mode expired');
      }
      return;
    }
    const alarm = d.alarmId ? this.repo.get(d.alarmId) : undefined;
    if (!alarm) return;
    const esc = this.ctx.config.escalation;
    if (d.kind === 'ack') {
      if (!allowed(SYSTEM_TRANSITIONS.overdue, alarm.state)) return;
      const updated = this.change(fx, alarm, 'gateway', alarm.overdue ? 'overdue-repeat' : 'overdue', SYSTEM_TRANSITIONS.overdue, (a) => (a.overdue = true), {
        deadlineMs: d.dueAt,
      });
      this.addDeadline(alarm.id, 'ack', now + esc.overdueRepeatMs);
      this.ctx.counters.inc('alarms.overdue');
      this.ctx.log.warn({ alarmId: updated.id, rev: updated.rev }, 'alarm not acknowledged in time: re-sent to consoles');
      return;
    }
    if (d.kind === 'ring') {
      if (!allowed(SYSTEM_TRANSITIONS.widen, alarm.state) || alarm.shopsEnded || alarm.ring >= esc.maxRings) return;
      const counts = this.repo.replyCounts(alarm.id);
      const answers = counts.coming + counts.seen;
      if (answers >= esc.minAnswers) return;
      const origin = this.ctx.registry.shops.get(alarm.shopId);
      if (!origin) return;
      const ring = alarm.ring + 1;
      let alerted = 0;
      this.change(fx, alarm, 'gateway', 'ring-widened', SYSTEM_TRANSITIONS.widen, (a) => (a.ring = ring), { ring, answers }, (widened) => {
        alerted = this.alertRing(fx, widened, origin, ring, now);
      });
      if (ring < esc.maxRings && alerted > 0) this.addDeadline(alarm.id, 'ring', now + esc.ringIntervalMs);
      this.ctx.counters.inc('alarms.ring-widened');
      this.ctx.log.warn({ alarmId: alarm.id, ring, answers, alerted }, 'too few neighbours answered: ring widened');
    }
  }
}

export { LianfangError };
