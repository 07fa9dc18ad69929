/**
 * MQTT contract v1: one JSON schema per topic (README "MQTT topic contract v1"). TypeScript types are
 * derived from these schemas; validators are compiled once. More fields may be added by later
 * versions; none is renamed, so unknown fields are allowed on what devices and consoles send.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ID_PATTERN } from './topics.js';

/** `boot` and `seq` are u32, as on the serial wire (firmware-contracts/serial/SPEC.md "Counters"). */
export const U32_MAX = 0xffff_ffff;
const Seq = Type.Integer({ minimum: 0, maximum: U32_MAX, description: 'u32; increases per device within one power-up.' });
const Boot = Type.Integer({
  minimum: 0,
  maximum: U32_MAX,
  description:
    'u32; increases at every power-up and starts a new seq sequence. A lower boot than the last one (a factory reset, a replaced unit) ' +
    'is taken as a new sequence and raises a counter-reset fault on the console.',
});
const Id = Type.String({ pattern: ID_PATTERN });
const AlarmId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const Rev = Type.Integer({ minimum: 1, description: '1 when raised, +1 at each change of the alarm.' });
const IsoTime = Type.String({ description: 'ISO 8601, UTC, milliseconds: 2026-11-23T01:02:03.456Z' });
const Open = { additionalProperties: true } as const;

const base = { seq: Seq, boot: Type.Optional(Boot) };

export const KeypadEvent = Type.Object(
  { ...base, type: Type.Literal('keypad'), keys: Type.String({ pattern: '^[0-9*#]{1,32}$', description: 'One key or several, in the order pressed.' }) },
  Open,
);
export const PanicEvent = Type.Object({ ...base, type: Type.Literal('panic') }, Open);
export const DoorEvent = Type.Object({ ...base, type: Type.Literal('door'), open: Type.Boolean() }, Open);
export const TamperEvent = Type.Object({ ...base, type: Type.Literal('tamper'), active: Type.Optional(Type.Boolean()) }, Open);
export const HeartbeatEvent = Type.Object({ ...base, type: Type.Literal('heartbeat') }, Open);
export const BatteryEvent = Type.Object(
  { ...base, type: Type.Literal('battery'), level: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })), low: Type.Optional(Type.Boolean()) },
  Open,
);
/**
 * A device's daily self-test, as the serial SELFTEST frame (firmware-contracts/serial/SPEC.md):
 * `result` 0 passed, anything else is the firmware's failure code (a fault until one passes).
 */
export const SelfTestEvent = Type.Object(
  { ...base, type: Type.Literal('selftest'), result: Type.Integer({ minimum: 0, maximum: 255, description: '0 passed; else the failure code.' }) },
  Open,
);
export const FaultEvent = Type.Object(
  { ...base, type: Type.Literal('fault'), code: Type.Optional(Type.String({ maxLength: 64 })), active: Type.Optional(Type.Boolean()) },
  Open,
);

/** `lianfang/v1/devices/{deviceId}/events` — device/bridge → gateway. */
export const DeviceEvent = Type.Union([KeypadEvent, PanicEvent, DoorEvent, TamperEvent, HeartbeatEvent, BatteryEvent, SelfTestEvent, FaultEvent]);
export type DeviceEvent = Static<typeof DeviceEvent>;
export type DeviceEventType = DeviceEvent['type'];

/** `lianfang/v1/devices/{deviceId}/status` — retained, also the LWT. */
export const DeviceStatus = Type.Object({ online: Type.Boolean() }, Open);
export type DeviceStatus = Static<typeof DeviceStatus>;

export const CommandKind = Type.Union([Type.Literal('buzzer'), Type.Literal('sounder'), Type.Literal('display'), Type.Literal('led')]);
export type CommandKind = Static<typeof CommandKind>;

/** The LED colours, as on the serial wire (firmware-contracts/serial/codec.ts LED_COLOURS, checked by its test). */
export const LedColour = Type.Union([Type.Literal('off'), Type.Literal('red'), Type.Literal('green'), Type.Literal('amber')]);
export type LedColour = Static<typeof LedColour>;

/**
 * `lianfang/v1/devices/{deviceId}/commands` — gateway → device/bridge. One command per message:
 * `buzzer`/`sounder` with `on` (and `seconds`, the longest it sounds), `display` with `text` (line 1,
 * or the whole text wrapped when there is no `line2`) and `line2` (empty strings clear the LCD),
 * `led` with `colour` and `blink`. Every field but `command` is optional, so a device written for
 * the first version of this payload still understands it.
 *
 * `seq` is the gateway's command counter for this device: it only increases, across restarts too.
 * A re-sent command carries its first `seq`: a device applies a command only when its `seq` is above
 * the last one it applied of the same `command` (a re-send arriving after a newer command must not
 * bring back old text), and acknowledges (PUBACK) every copy. `alarmId` and `rev` say which alarm
 * a command is about (a neighbour's alert); a keypad's own confirmation (after 9#, a PIN) has none.
 */
export const AlertState = Type.Union([Type.Literal('raised'), Type.Literal('ended')]);

export const DeviceCommand = Type.Object(
  {
    command: CommandKind,
    on: Type.Optional(Type.Boolean()),
    text: Type.Optional(Type.String({ maxLength: 64 })),
    line2: Type.Optional(Type.String({ maxLength: 64 })),
    colour: Type.Optional(LedColour),
    blink: Type.Optional(Type.Boolean()),
    seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    seq: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    alarmId: Type.Optional(AlarmId),
    rev: Type.Optional(Rev),
    /** A neighbour's alert command: whether the alert it renders is raised or ended. */
    state: Type.Optional(AlertState),
  },
  Open,
);
export type DeviceCommand = Static<typeof DeviceCommand>;

export const AlarmKind = Type.Union([Type.Literal('panic'), Type.Literal('duress'), Type.Literal('help'), Type.Literal('intrusion')]);

/**
 * Console priority (docs/concepts.md "Alarm kinds and states"), 1 = first: duress, then panic and intrusion, then
 * help (`0#`: someone needs help, no crime); within one priority the oldest first.
 */
export const ALARM_PRIORITY = { duress: 1, panic: 2, intrusion: 2, help: 3 } as const;
export function alarmPriority(kind: string, duress: boolean): number {
  if (duress) return ALARM_PRIORITY.duress;
  return (ALARM_PRIORITY as Record<string, number>)[kind] ?? ALARM_PRIORITY.panic;
}

/** `lianfang/v1/shops/{shopId}/alerts` — gateway → shop: an alarm raised by a neighbour. */
export const ShopAlert = Type.Object(
  {
    alarmId: AlarmId,
    rev: Rev,
    state: AlertState,
    originShopId: Id,
    originName: Type.String(),
    address: Type.String(),
    doorPlate: Type.Optional(Type.String()),
    kind: Type.String(),
    raisedAt: IsoTime,
    ring: Type.Optional(Type.Integer({ minimum: 1 })),
    distanceM: Type.Optional(Type.Number()),
  },
  Open,
);
export type ShopAlert = Static<typeof ShopAlert>;

export const ReplyKind = Type.Union([Type.Literal('coming'), Type.Literal('seen'), Type.Literal('cannot')]);
export type ReplyKind = Static<typeof ReplyKind>;

/** `lianfang/v1/shops/{shopId}/replies` — shop → gateway. */
export const ShopReply = Type.Object({ alarmId: AlarmId, reply: ReplyKind }, Open);
export type ShopReply = Static<typeof ShopReply>;

export const AlarmState = Type.Union([
  Type.Literal('raised'),
  Type.Literal('acknowledged'),
  Type.Literal('dispatched'),
  Type.Literal('cancelled'),
  Type.Literal('closed'),
]);
export type AlarmState = Static<typeof AlarmState>;

export const Disposition = Type.Union([Type.Literal('real'), Type.Literal('false'), Type.Literal('test'), Type.Literal('malicious')]);
export type Disposition = Static<typeof Disposition>;

/** `lianfang/v1/stations/{stationId}/alarms` — gateway → console: created and every change. */
export const ConsoleAlarm = Type.Object(
  {
    alarmId: AlarmId,
    rev: Rev,
    shopId: Id,
    shopName: Type.String(),
    address: Type.String(),
    doorPlate: Type.Optional(Type.String()),
    stationId: Id,
    compoundId: Type.Optional(Id),
    state: AlarmState,
    kind: Type.String(),
    raisedAt: IsoTime,
    updatedAt: IsoTime,
    overdue: Type.Boolean(),
    duress: Type.Boolean(),
    /** 1 = first: duress, 2 = panic and intrusion, 3 = help (alarmPriority). */
    priority: Type.Optional(Type.Integer({ minimum: 1, maximum: 3 })),
    test: Type.Boolean(),
    takenBy: Type.Union([Type.String(), Type.Null()]),
    disposition: Type.Union([Disposition, Type.Null()]),
    patrol: Type.Union([Type.String(), Type.Null()]),
    ring: Type.Integer({ minimum: 1 }),
    shopsAlerted: Type.Integer({ minimum: 0 }),
    replies: Type.Object({ coming: Type.Integer(), seen: Type.Integer(), cannot: Type.Integer() }),
    gatewayId: Type.String(),
  },
  Open,
);
export type ConsoleAlarm = Static<typeof ConsoleAlarm>;

export const ActionKind = Type.Union([Type.Literal('ack'), Type.Literal('take'), Type.Literal('dispatch'), Type.Literal('close')]);
export type ActionKind = Static<typeof ActionKind>;

/** `lianfang/v1/stations/{stationId}/actions` — console → gateway. */
export const ConsoleAction = Type.Object(
  {
    alarmId: AlarmId,
    action: ActionKind,
    requestId: Type.Optional(Type.String({ maxLength: 128 })),
    disposition: Type.Optional(Disposition),
    patrol: Type.Optional(Type.String({ maxLength: 64 })),
    note: Type.Optional(Type.String({ maxLength: 1000 })),
    /** `take` or `ack` of an alarm another officer holds: take it over (audited as taken from them). */
    force: Type.Optional(Type.Boolean()),
  },
  Open,
);
export type ConsoleAction = Static<typeof ConsoleAction>;

/** `lianfang/v1/stations/{stationId}/errors` — gateway → console: a refused action. */
export const ConsoleError = Type.Object(
  {
    code: Type.String({ pattern: '^LF_ERR_[A-Z_]+$' }),
    message: Type.String(),
    requestId: Type.Optional(Type.String()),
    alarmId: Type.Optional(Type.String()),
    action: Type.Optional(Type.String()),
  },
  Open,
);
export type ConsoleError = Static<typeof ConsoleError>;

export const FaultState = Type.Union([Type.Literal('raised'), Type.Literal('cleared')]);
export const TicketState = Type.Union([Type.Literal('open'), Type.Literal('assigned'), Type.Literal('fixed')]);
export type TicketState = Static<typeof TicketState>;

/**
 * A fault's maintenance ticket (open → assigned → fixed). A ticket closes itself when its cause
 * recovers (`recovered: true`, `fixedBy` the device or `gateway`); a revoked or removed device's
 * tickets close as `closedAs: 'revoked' | 'removed'` (nothing was repaired); one fixed by hand
 * (`lianfang fault fix`) has `closedAs: 'fixed'` and the technician's `note`.
 */
export const FaultTicket = Type.Object(
  {
    state: TicketState,
    assignedTo: Type.Optional(Type.String()),
    assignedBy: Type.Optional(Type.String()),
    assignedAt: Type.Optional(IsoTime),
    fixedBy: Type.Optional(Type.String()),
    fixedAt: Type.Optional(IsoTime),
    note: Type.Optional(Type.String()),
    recovered: Type.Optional(Type.Boolean()),
    closedAs: Type.Optional(Type.Union([Type.Literal('recovered'), Type.Literal('fixed'), Type.Literal('revoked'), Type.Literal('removed')])),
  },
  Open,
);
export type FaultTicket = Static<typeof FaultTicket>;

/**
 * `lianfang/v1/stations/{stationId}/faults` — gateway → console: a fault raised, every change of it
 * (cleared, its ticket assigned or fixed) with `faultId` and `rev` like an alarm (receivers keep the
 * highest rev per faultId). A device's fault names `deviceId` and `shopId`; a fault without a device
 * names its `subject` (`shop:S01` for pin-lockout, `bus:B1`, `disk:/path`, `db`) and, when it has a
 * shop, `shopId`. Kind-specific fields: counter-reset `detail` ({old, new, events}), flood `dropped`,
 * selftest-failed `result`, line-errors `errors`, pin-lockout `lockedUntil`, gateway faults `detail`.
 */
export const ConsoleFault = Type.Object(
  {
    faultId: AlarmId,
    rev: Type.Integer({ minimum: 1, description: '1 when raised, +1 at each change of the fault or its ticket.' }),
    fault: Type.String(),
    state: FaultState,
    deviceId: Type.Optional(Id),
    shopId: Type.Optional(Id),
    subject: Type.Optional(Type.String()),
    /** When the device was last heard (silent, raised), when its counter went back (counter-reset), or when this change happened. */
    at: IsoTime,
    raisedAt: IsoTime,
    clearedAt: Type.Optional(IsoTime),
    updatedAt: IsoTime,
    ticket: FaultTicket,
    /** What an officer reads, in English and Chinese. */
    text: Type.Object({ en: Type.String(), zh: Type.String() }),
    detail: Type.Optional(Type.Unknown()),
    dropped: Type.Optional(Type.Integer({ minimum: 0 })),
    result: Type.Optional(Type.Integer()),
    errors: Type.Optional(Type.Integer({ minimum: 0 })),
    lockedUntil: Type.Optional(IsoTime),
    gatewayId: Type.Optional(Type.String()),
  },
  Open,
);
export type ConsoleFault = Static<typeof ConsoleFault>;

/** A compiled validator: `check` is fast; `firstError` explains a failure in one line. */
export interface Validator<T> {
  check(value: unknown): value is T;
  firstError(value: unknown): string;
}

export function compile<S extends TSchema>(schema: S): Validator<Static<S>> {
  const compiled = TypeCompiler.Compile(schema);
  return {
    check: (value: unknown): value is Static<S> => compiled.Check(value),
    firstError(value: unknown): string {
      const first = compiled.Errors(value).First();
      return first ? `${first.path || '/'} ${first.message}` : 'invalid';
    },
  };
}

export const validators = {
  deviceEvent: compile(DeviceEvent),
  deviceStatus: compile(DeviceStatus),
  deviceCommand: compile(DeviceCommand),
  shopAlert: compile(ShopAlert),
  shopReply: compile(ShopReply),
  consoleAlarm: compile(ConsoleAlarm),
  consoleAction: compile(ConsoleAction),
  consoleError: compile(ConsoleError),
  consoleFault: compile(ConsoleFault),
};
