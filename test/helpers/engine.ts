/**
 * The alarm engine in-process, as the Gateway composes it minus broker, HTTP and admin: a real
 * SQLite database in a data directory, a ManualClock, the group-commit writer, the outbox with a
 * publisher that records, a keypad command sink that records, the one ingest (no flood guard) and
 * the deadline scheduler. No sockets, no child processes: time is moved by hand. Test files extend
 * `EngineHarness` with the presses and queries they need.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StreetFile } from '../../simulators/street.js';
import { provisionStreet } from './street.js';
import { loadConfig } from '../../config/load.js';
import type { ConfigInput } from '../../config/schema.js';
import { HELPER_ENV } from './gateway.js';
import type { ManualClock } from '../../gateway/clock.js';
import { openDatabase, type Db } from '../../gateway/store/db.js';
import { RegistryCache } from '../../gateway/registry/registry-cache.js';
import { Outbox, type OutboxMessage } from '../../gateway/delivery/outbox.js';
import type { DeviceCommandSink, KeypadFeedback } from '../../gateway/delivery/device-commands.js';
import { GroupCommitWriter } from '../../gateway/ingest/writer.js';
import { Counters } from '../../gateway/metrics.js';
import { createLogger } from '../../gateway/logger.js';
import { DeadlineScheduler } from '../../gateway/scheduler.js';
import { AlarmEngine } from '../../gateway/alarm/engine.js';
import { FaultStore } from '../../gateway/faults/fault-store.js';
import { AlarmRepo } from '../../gateway/alarm/alarm-repo.js';
import { deviceIngest, type DeviceIngest } from '../../gateway/ingest/device-ingest.js';
import type { Device } from '../../gateway/registry/registry.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface Published {
  topic: string;
  payload: Record<string, unknown>;
}

/** A DeviceCommandSink that records what the engine asks of it, in order, with the clock's time. */
export class RecordingCommands implements DeviceCommandSink {
  readonly feedbacks: { at: number; deviceId: string; what: KeypadFeedback }[] = [];

  feedback(_fx: unknown, now: number, device: { id: string }, what: KeypadFeedback): void {
    this.feedbacks.push({ at: now, deviceId: device.id, what });
  }
}

/**
 * A street of `shops` provisioned once (scrypt and many commits) in a template directory removed
 * when `t` ends; `copy` gives each test its own data directory cloned from it.
 */
export async function streetTemplate(t: Teardown, shops = 30): Promise<{ street: StreetFile; copy: (t: Teardown) => string }> {
  const template = mkdtempSync(join(tmpdir(), 'lf-street-'));
  t.teardown(() => rmSync(template, { recursive: true, force: true }));
  const street = await provisionStreet(template, shops);
  const copy = (tt: Teardown) => {
    const dir = mkdtempSync(join(tmpdir(), 'lf-eng-'));
    tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
    cpSync(template, dir, { recursive: true });
    return dir;
  };
  return { street, copy };
}

/** One engine on a data directory, its scheduler started; closed when `t` ends (or by stop()). */
export class EngineHarness {
  readonly db: Db;
  readonly registry: RegistryCache;
  readonly published: Published[] = [];
  /** Every message the outbox handed its publisher, as it handed it (first sends and re-sends). */
  readonly messages: OutboxMessage[] = [];
  /** What the engine asked of the keypads through EngineContext.commands. */
  readonly commands = new RecordingCommands();
  readonly outbox: Outbox;
  readonly writer: GroupCommitWriter;
  readonly counters = new Counters();
  readonly engine: AlarmEngine;
  /** The fault store the engine raises a PIN lock-out in (its messages go through the outbox, into `published`). */
  faults!: FaultStore;
  /** The alarm tables read directly (a reader of the database, not the engine's own repository). */
  readonly repo: AlarmRepo;
  /** The gateway's one ingest over this engine (gateway/ingest/device-ingest.ts). */
  readonly deviceIngest: DeviceIngest;
  readonly scheduler: DeadlineScheduler;
  readonly config;
  private stopped = false;

  constructor(
    t: Teardown,
    readonly dataDir: string,
    readonly clock: ManualClock,
    gatewayId = 'gw-test',
    overrides: ConfigInput = {},
  ) {
    // No shift is signed on in most engine tests: the nobody-on-duty fault is off unless a test turns it on.
    this.config = loadConfig({ env: HELPER_ENV, overrides: { dataDir, ...overrides } });
    const log = createLogger('silent');
    this.db = openDatabase(dataDir);
    this.registry = new RegistryCache(this.db);
    this.registry.reload();
    const record = (topic: string, payload: string) => this.published.push({ topic, payload: JSON.parse(payload) as Record<string, unknown> });
    this.outbox = new Outbox(this.db, {
      publish: (m) => {
        this.messages.push(m);
        record(m.topic, m.payload);
      },
    });
    this.writer = new GroupCommitWriter({ db: this.db, log, onBatchFailed: () => this.registry.reload() });
    let scheduler: DeadlineScheduler | undefined;
    this.engine = new AlarmEngine({
      db: this.db,
      config: this.config,
      clock,
      log,
      registry: this.registry,
      outbox: this.outbox,
      counters: this.counters,
      gatewayId,
      gatewayKey: loadOrCreateGatewayKey(dataDir),
      faults: (this.faults = new FaultStore({ db: this.db, outbox: this.outbox, registry: this.registry, clock, log, counters: this.counters, gatewayId, writer: this.writer })),
      onDeadline: (due) => scheduler?.consider(due),
      commands: this.commands,
    });
    this.repo = new AlarmRepo(this.db);
    this.deviceIngest = deviceIngest({ db: this.db, writer: this.writer, engine: this.engine, clock, counters: this.counters, log });
    this.scheduler = scheduler = new DeadlineScheduler({ clock, log, writer: this.writer, engine: this.engine });
    this.scheduler.start();
    this.faults.start();
    t.teardown(() => this.stop());
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler.stop();
    this.faults.stop();
    this.writer.close();
    this.db.close();
  }

  /** One device event through the ingest, as a bridge or the MQTT ingress hands it over; resolves with the outcome once committed. */
  async ingest(device: Device, event: DeviceEvent, via: 'mqtt' | 'serial' | 'modbus' = 'mqtt') {
    return (await this.deviceIngest(device, event, via)).outcome;
  }

  /** Let what the clock set off commit: a writer item queued now lands in (or after) the same batch. */
  async settle(): Promise<void> {
    await this.writer.run(() => undefined);
  }

  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await this.settle();
  }
}
