/**
 * MQTT-native simulated devices, on the real wire (TCP to the broker): a keypad that presses keys,
 * shows the alerts of its shop (a neighbour that answers) and obeys its commands (buzzer, display,
 * LED), and a station console client.
 * Used by `lianfang simulate street`, the tests and the benchmark.
 */
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { EventEmitter } from 'node:events';
import { topics } from '../firmware-contracts/mqtt/topics.js';
import { validators, type CommandKind, type ConsoleAction, type ConsoleAlarm, type ConsoleError, type DeviceCommand, type DeviceEvent, type LedColour, type ReplyKind, type ShopAlert } from '../firmware-contracts/mqtt/payloads.js';
import { RevTracker } from '../firmware-contracts/mqtt/dedupe.js';
import { AlertBook } from '../devices/bridge.js';

export interface Credentials {
  username: string;
  password: string;
}

function connect(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 200, connectTimeout: 5000, ...opts });
    const onError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('connect', () => {
      client.off('error', onError);
      resolve(client);
    });
    client.once('error', onError);
  });
}

function publish(client: MqttClient, topic: string, payload: unknown): Promise<void> {
  return new Promise((resolve, reject) =>
    client.publish(topic, JSON.stringify(payload), { qos: 1 }, (err) => (err ? reject(err) : resolve())),
  );
}

function subscribe(client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve, reject) =>
    client.subscribe(topic, { qos: 1 }, (err, granted) => (err ? reject(err) : resolve(granted?.[0]?.qos ?? 128))),
  );
}

/** What a keypad shows and sounds, as its commands left it. */
export interface KeypadShows {
  /** The LCD's two lines ('' when clear). */
  display: [string, string];
  led: { colour: LedColour; blink: boolean };
  buzzer: { on: boolean; seconds: number };
}

/**
 * A shop's keypad. `press('9#')` publishes a keypad event and resolves on its PUBACK (the
 * gateway's "got it"). Alerts for its shop are de-duplicated by (alarmId, rev) and emitted as
 * 'alert'; every copy on the wire is counted in `received`. Its commands (QoS 1, acknowledged by
 * the client) are applied as firmware would: its own (numbered) only with a `seq` above the last
 * one applied of the same command, so a late re-send never brings back old text; a neighbour's
 * alert commands (alarmId, rev, state, no seq) as a wired keypad's bridge applies an alert
 * (devices/bridge.ts AlertBook, one per command kind): the latest raised alert shows, a lower or
 * repeated rev is ignored, an `ended` for an alarm it does not show changes nothing. Applied ones
 * are emitted as 'command'.
 */
export class SimKeypad extends EventEmitter {
  client!: MqttClient;
  seq = 0;
  readonly revs = new RevTracker();
  /** Every alert message on the wire, repeats included. */
  readonly received: ShopAlert[] = [];
  /** Alerts after de-duplication, in arrival order. */
  readonly alerts: ShopAlert[] = [];
  /** What the display shows: the open alerts by alarm id. */
  readonly display = new Map<string, ShopAlert>();
  /** Every command message on the wire, repeats and stale ones included. */
  readonly commandsReceived: DeviceCommand[] = [];
  /** Commands applied, in order. */
  readonly commands: DeviceCommand[] = [];
  /** What its LCD, LED and buzzer show now. */
  readonly shows: KeypadShows = { display: ['', ''], led: { colour: 'off', blink: false }, buzzer: { on: false, seconds: 0 } };
  private readonly appliedSeq = new Map<CommandKind, number>();
  private readonly alertBooks = new Map<CommandKind, AlertBook>();

  constructor(
    readonly deviceId: string,
    readonly shopId: string,
    private readonly creds: Credentials,
    /** Power-up counter; undefined = a keypad that sends no boot. */
    public boot: number | undefined = 1,
  ) {
    super();
  }

  async connect(url: string, extra: IClientOptions = {}): Promise<this> {
    this.client = await connect(url, { clientId: this.deviceId, username: this.creds.username, password: this.creds.password, ...extra });
    this.client.on('message', (topic, payload) => {
      if (topic === topics.deviceCommands(this.deviceId)) return this.onCommand(payload);
      if (topic !== topics.shopAlerts(this.shopId)) return;
      let alert: ShopAlert;
      try {
        alert = JSON.parse(payload.toString('utf8')) as ShopAlert;
      } catch {
        return;
      }
      this.received.push(alert);
      if (!this.revs.accept(alert.alarmId, alert.rev)) return;
      this.alerts.push(alert);
      if (alert.state === 'ended') this.display.delete(alert.alarmId);
      else this.display.set(alert.alarmId, alert);
      this.emit('alert', alert);
    });
    const granted = await subscribe(this.client, topics.shopAlerts(this.shopId));
    if (granted === 128) throw new Error(`subscription to ${this.shopId} alerts refused`);
    if ((await subscribe(this.client, topics.deviceCommands(this.deviceId))) === 128) throw new Error(`subscription to ${this.deviceId} commands refused`);
    return this;
  }

  private onCommand(payload: Buffer): void {
    let cmd: unknown;
    try {
      cmd = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (!validators.deviceCommand.check(cmd)) return;
    this.commandsReceived.push(cmd);
    if (cmd.seq !== undefined) {
      if (cmd.seq <= (this.appliedSeq.get(cmd.command) ?? 0)) return;
      this.appliedSeq.set(cmd.command, cmd.seq);
    } else if (cmd.alarmId !== undefined && cmd.rev !== undefined) {
      let book = this.alertBooks.get(cmd.command);
      if (!book) this.alertBooks.set(cmd.command, (book = new AlertBook()));
      const alert = { alarmId: cmd.alarmId, rev: cmd.rev, state: cmd.state ?? 'raised' };
      const action = book.decide(alert);
      book.settle(alert.alarmId, alert.rev, true);
      if (action === 'skip' || action === 'confirm') return;
    }
    if (cmd.command === 'display') this.shows.display = cmd.line2 === undefined ? [cmd.text ?? '', ''] : [cmd.text ?? '', cmd.line2];
    else if (cmd.command === 'led') this.shows.led = { colour: cmd.colour ?? (cmd.on ? 'red' : 'off'), blink: cmd.blink ?? false };
    else if (cmd.command === 'buzzer') this.shows.buzzer = { on: cmd.on ?? false, seconds: cmd.seconds ?? 0 };
    this.commands.push(cmd);
    this.emit('command', cmd);
  }

  /** Resolve with the first applied command matching `pred`. */
  waitForCommand(pred: (c: DeviceCommand) => boolean, timeoutMs = 10_000): Promise<DeviceCommand> {
    return waitForEvent(this, 'command', this.commands, pred, timeoutMs, `${this.deviceId} command`);
  }

  /** Publish one event; resolves when the gateway acknowledged it (PUBACK). */
  send(event: Omit<DeviceEvent, 'seq' | 'boot'> & { seq?: number; boot?: number }): Promise<void> {
    const seq = event.seq ?? ++this.seq;
    if (event.seq !== undefined) this.seq = Math.max(this.seq, event.seq);
    const body = { ...event, seq, ...(this.boot !== undefined && event.boot === undefined ? { boot: this.boot } : {}) };
    return publish(this.client, topics.deviceEvents(this.deviceId), body);
  }

  press(keys: string): Promise<void> {
    return this.send({ type: 'keypad', keys } as DeviceEvent);
  }

  private beats: NodeJS.Timeout[] = [];

  /**
   * Supervision (gateway/supervision.ts): a `heartbeat` event every `everyMs` (below the gateway's
   * `supervision.mqttFaultAfterMs`), and a passing `selftest` now and every `selfTestMs` (a keypad
   * declares a daily self-test). Off until started, so a test's own sequence numbers stay its own.
   */
  startHeartbeats(everyMs: number, selfTestMs = 24 * 3600_000): void {
    this.stopHeartbeats();
    // A beat the gateway did not acknowledge (reconnecting) is simply the next one's job.
    const beat = (event: Pick<DeviceEvent, 'type'> & Record<string, unknown>) => void this.send(event as DeviceEvent).catch(() => {});
    beat({ type: 'selftest', result: 0 });
    this.beats = [setInterval(() => beat({ type: 'heartbeat' }), everyMs), setInterval(() => beat({ type: 'selftest', result: 0 }), selfTestMs)];
    for (const t of this.beats) t.unref();
  }

  stopHeartbeats(): void {
    for (const t of this.beats) clearInterval(t);
    this.beats = [];
  }

  /** Power-cycle: a new boot, seq from 1. */
  reboot(): void {
    this.boot = (this.boot ?? 0) + 1;
    this.seq = 0;
  }

  reply(alarmId: string, reply: ReplyKind): Promise<void> {
    return publish(this.client, topics.shopReplies(this.shopId), { alarmId, reply });
  }

  /** Resolve with the first de-duplicated alert matching `pred`. */
  waitFor(pred: (a: ShopAlert) => boolean, timeoutMs = 10_000): Promise<ShopAlert> {
    return waitForEvent(this, 'alert', this.alerts, pred, timeoutMs, `${this.shopId} alert`);
  }

  async close(): Promise<void> {
    this.stopHeartbeats();
    await this.client?.endAsync(true).catch(() => {});
  }
}

/**
 * An MQTT door contact (a reed switch on a shop's door): `setOpen(true)` when the door opens,
 * `setOpen(false)` when it closes, each a `door` event that resolves on the gateway's PUBACK.
 * A power-up numbers its events from 1 again under a new `boot`.
 */
export class SimDoorContact {
  client!: MqttClient;
  private seq = 0;

  constructor(
    readonly deviceId: string,
    private readonly creds: Credentials,
    private readonly boot = 1,
  ) {}

  async connect(url: string, extra: IClientOptions = {}): Promise<this> {
    this.client = await connect(url, { clientId: this.deviceId, username: this.creds.username, password: this.creds.password, ...extra });
    return this;
  }

  setOpen(open: boolean): Promise<void> {
    return publish(this.client, topics.deviceEvents(this.deviceId), { seq: ++this.seq, boot: this.boot, type: 'door', open });
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true).catch(() => {});
  }
}

/** A station console client: receives alarms (de-duplicated), acts, and collects refusals. */
export class SimConsole extends EventEmitter {
  client!: MqttClient;
  readonly revs = new RevTracker();
  readonly received: ConsoleAlarm[] = [];
  readonly alarms = new Map<string, ConsoleAlarm>();
  readonly updates: ConsoleAlarm[] = [];
  readonly errors: ConsoleError[] = [];

  constructor(
    readonly stationId: string,
    private readonly creds: Credentials,
    // A person's client id is their username or `username:…` (broker/policy.ts checkClientId).
    readonly clientId = `${creds.username}:console`,
  ) {
    super();
  }

  async connect(url: string, extra: IClientOptions = {}): Promise<this> {
    this.client = await connect(url, { clientId: this.clientId, username: this.creds.username, password: this.creds.password, ...extra });
    this.client.on('message', (topic, payload) => {
      let msg: unknown;
      try {
        msg = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      if (topic === topics.stationErrors(this.stationId)) {
        this.errors.push(msg as ConsoleError);
        this.emit('error-answer', msg);
        return;
      }
      const alarm = msg as ConsoleAlarm;
      this.received.push(alarm);
      if (!this.revs.accept(alarm.alarmId, alarm.rev)) return;
      this.alarms.set(alarm.alarmId, alarm);
      this.updates.push(alarm);
      this.emit('alarm', alarm);
    });
    for (const t of [topics.stationAlarms(this.stationId), topics.stationErrors(this.stationId)]) {
      if ((await subscribe(this.client, t)) === 128) throw new Error(`subscription to ${t} refused`);
    }
    return this;
  }

  act(action: ConsoleAction): Promise<void> {
    return publish(this.client, topics.stationActions(this.stationId), action);
  }

  waitFor(pred: (a: ConsoleAlarm) => boolean, timeoutMs = 10_000): Promise<ConsoleAlarm> {
    return waitForEvent(this, 'alarm', this.updates, pred, timeoutMs, `${this.stationId} alarm`);
  }

  waitForError(pred: (e: ConsoleError) => boolean, timeoutMs = 10_000): Promise<ConsoleError> {
    return waitForEvent(this, 'error-answer', this.errors, pred, timeoutMs, `${this.stationId} error`);
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true).catch(() => {});
  }
}

function waitForEvent<T>(em: EventEmitter, event: string, seen: T[], pred: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const found = seen.find(pred);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      em.off(event, on);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const on = (v: T) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      em.off(event, on);
      resolve(v);
    };
    em.on(event, on);
  });
}
