/**
 * The composition root (STYLE.md 1): builds the logger, store, registry, writer, engine, outbox,
 * broker, scheduler, HTTP server and admin channel, and lists them in one place. Nothing else
 * wires things together. Each module's constructor only stores its dependencies; start() and
 * stop() run in the order listed here.
 */
import type { Config } from '../config/schema.js';
import pino from 'pino';
import { createLogger, type Logger } from './logger.js';
import { openLogFile, type LogFileStream } from './log-files.js';
import { iso, systemClock, type Clock } from './clock.js';
import { openDatabase, getMeta, setMeta, DB_FILE, type Db } from './store/db.js';
import { Checkpointer } from './store/checkpointer.js';
import { join, resolve } from 'node:path';
import { loadOrCreateGatewayKey } from './secrets.js';
import { RegistryCache } from './registry/registry-cache.js';
import { Counters, Latencies } from './metrics.js';
import { GroupCommitWriter } from './ingest/writer.js';
import { deviceIngest } from './ingest/device-ingest.js';
import { FloodGuard } from './ingest/flood.js';
import { resetCounter } from './ingest/counter-reset.js';
import { DeliveryMarks } from './delivery/delivery-marks.js';
import { AlarmEngine } from './alarm/engine.js';
import { Outbox, type RecipientKind } from './delivery/outbox.js';
import { DeviceCommands } from './delivery/device-commands.js';
import { DeadlineScheduler } from './scheduler.js';
import { MqttIngress } from './mqtt-ingress.js';
import { Broker } from '../broker/broker.js';
import { LoginThrottle } from './security/login-throttle.js';
import { HttpServer } from './http/http-server.js';
import { ConsoleHttp } from './console/console-http.js';
import { SessionStore } from './console/sessions.js';
import { AdminServer, adminSocketPath, type AdminRequest } from './admin/channel.js';
import { acquireLock, type Lock } from './admin/lock.js';
import { usePrivateUmask } from './data-dir.js';
import { shortId } from './ids.js';
import { lfError } from './errors.js';
import { gatewayVersion } from './version.js';
import { Supervisor, superviseEvents } from './supervision.js';
import { FaultStore } from './faults/fault-store.js';
import { changeTicket, ticketRequest } from './faults/fault-tickets.js';
import { DiskWatch } from './health/disk-watch.js';
import { DbWatch } from './health/db-watch.js';
import { PortFaults } from './health/port-watch.js';
import { WiredDevices } from '../devices/wired.js';
import { wiredContext } from './wired-adapter.js';
import type { ScanOptions } from '../devices/bridge.js';
import { recordWalkPass, type WalkPass } from './alarm/test-mode.js';
import { DoorHeld } from './alarm/door-held.js';
import { parseSchedule } from './alarm/arming.js';
import type { LiveDeviceStatus } from './registry/device-status.js';
import { activeTestMode } from './alarm/test-mode.js';
import { FlowFeed, flowEvent } from './nodered/flow-feed.js';
import { NodeRedSupervisor } from './nodered/node-red-supervisor.js';
import { NodeRedProxy } from './nodered/node-red-proxy.js';
import { EditorAuth } from './nodered/editor-auth.js';
import { FlowCalls } from './nodered/flow-calls.js';
import { auditRow } from './store/audit.js';
import type { ConsoleAlarm, ConsoleFault, DeviceEvent } from '../firmware-contracts/mqtt/payloads.js';
import type { Device } from './registry/registry.js';

export interface GatewayOptions {
  config: Readonly<Config>;
  /** Defaults to a pino logger on stdout at config.log.level, and to rotating files in <data>/logs/ (config.log.file). */
  log?: Logger;
  /** Defaults to the system clock; tests pass a ManualClock. */
  clock?: Clock;
  /** Fault injection for crash tests (`LF_FAILPOINT`), e.g. `after-store`. */
  failpoint?: string;
}

export class Gateway {
  readonly log: Logger;
  readonly clock: Clock;
  readonly counters = new Counters();
  readonly latencies = new Latencies();
  readonly version = gatewayVersion();
  db!: Db;
  gatewayId = '';
  registry!: RegistryCache;
  writer!: GroupCommitWriter;
  engine!: AlarmEngine;
  outbox!: Outbox;
  /** What keypads are told besides alerts: the pressing keypad's answer, a neighbour MQTT keypad's buzzer and display. */
  commands!: DeviceCommands;
  broker!: Broker;
  /** Every login (MQTT now, the web console later) goes through this one throttle. */
  loginThrottle!: LoginThrottle;
  scheduler!: DeadlineScheduler;
  http!: HttpServer;
  /** The web console's sessions (its live feed logs in to the broker with a session's grant). */
  sessions!: SessionStore;
  admin!: AdminServer;
  supervisor!: Supervisor;
  /**
   * The one fault store: every fault and its ticket, through the outbox to the consoles. It is the
   * GatewayFaultSink of the gateway's own monitors (gateway/health/): `gw.faults.raiseGateway(…)`.
   */
  faults!: FaultStore;
  /** The gateway's own health (gateway/health/): its disk, its database, its buses' ports, each a fault. */
  diskWatch: DiskWatch | null = null;
  dbWatch: DbWatch | null = null;
  portFaults!: PortFaults;
  /** Doors held open while their shop is disarmed: door-held faults of the supervisor. */
  doorHeld!: DoorHeld;
  flood: FloodGuard | null = null;
  wired!: WiredDevices;
  checkpointer: Checkpointer | null = null;
  /** Embedded Node-RED (config nodeRed.enabled): its child process. */
  nodeRed: NodeRedSupervisor | null = null;
  private editorAuth: EditorAuth | null = null;
  private lock: Lock | null = null;
  /** The default logger's streams: stdout from the start, the log file added once the data directory is ours. */
  private readonly logStreams: pino.MultiStreamRes | null = null;
  private logFile: { stream: LogFileStream; id: number } | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  private constructor(readonly opts: GatewayOptions) {
    if (opts.log) this.log = opts.log;
    else {
      // Every line the logger lets through goes to each stream: the level is the logger's alone.
      this.logStreams = pino.multistream([{ level: 'trace', stream: pino.destination({ fd: 1, sync: false }) }]);
      this.log = createLogger(opts.config.log.level, this.logStreams);
    }
    this.clock = opts.clock ?? systemClock;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    try {
      await gw.startModules();
    } catch (err) {
      await gw.stop().catch(() => {});
      throw err;
    }
    return gw;
  }

  private async startModules(): Promise<void> {
    const { config } = this.opts;
    const log = this.log;
    // Before anything is created in the data directory: the db's -wal and -shm, the socket, the lock.
    usePrivateUmask();
    const socketPath = adminSocketPath(config.dataDir);
    const gatewayKey = loadOrCreateGatewayKey(config.dataDir);
    this.lock = await acquireLock(config.dataDir, gatewayKey);
    // Only the lock holder writes the log file: a second gateway refused here leaves it alone.
    await this.attachLogFile();
    this.db = openDatabase(config.dataDir, { busyTimeoutMs: config.store.busyTimeoutMs });
    // Checkpoints run in a worker thread, not inside an alarm's commit.
    this.db.pragma('wal_autocheckpoint = 0');
    this.checkpointer = new Checkpointer(join(config.dataDir, DB_FILE), config.store.checkpointIntervalMs, log.child({ module: 'checkpoint' }));
    this.checkpointer.start();
    this.gatewayId = config.gatewayId || getMeta(this.db, 'gateway_id') || `gw-${shortId(6)}`;
    if (getMeta(this.db, 'gateway_id') !== this.gatewayId) setMeta(this.db, 'gateway_id', this.gatewayId);

    this.registry = new RegistryCache(this.db);
    this.registry.reload();
    this.writer = new GroupCommitWriter({
      db: this.db,
      log: log.child({ module: 'writer' }),
      // A failed commit undoes its items' in-memory changes itself (Effects.onRollback).
      failpoint: this.opts.failpoint,
      // The db watch is made with the fault store, below, before anything is committed.
      watch: { failed: (operation, code) => this.dbWatch?.failed(operation, code), recovered: () => this.dbWatch?.recovered() },
    });
    this.loginThrottle = new LoginThrottle({ clock: this.clock, log: log.child({ module: 'login' }), counters: this.counters, config: config.login });
    this.broker = new Broker({
      log: log.child({ module: 'broker' }),
      counters: this.counters,
      loginThrottle: this.loginThrottle,
      backend: {
        authenticate: (u, p) => ingress.authenticate(u, p),
        isDeviceId: (id) => ingress.isDeviceId(id),
        onPublish: (p, t, b, c) => ingress.onPublish(p, t, b, c),
        onDelivered: (r, p, t, b) => ingress.onDelivered(r, p, t, b),
        onSubscribed: (r) => ingress.onSubscribed(r),
      },
      host: config.mqtt.host,
      port: config.mqtt.port,
      wsPort: config.mqtt.wsPort,
      maxPacketBytes: config.mqtt.maxPacketBytes,
      connectTimeoutMs: config.mqtt.connectTimeoutMs,
      stallTimeoutMs: config.mqtt.stallTimeoutMs,
      maxBufferedBytes: config.mqtt.maxBufferedBytes,
      admission: {
        maxConnections: config.mqtt.maxConnections,
        maxPending: config.mqtt.maxPendingConnections,
        maxPendingPerAddress: config.mqtt.maxPendingPerAddress,
        evictableAfterMs: config.mqtt.pendingEvictableAfterMs,
        logIntervalMs: config.mqtt.limitsLogIntervalMs,
      },
      sessions: {
        sessionExpiryMs: config.mqtt.sessionExpiryMs,
        maxQueuedPerSession: config.mqtt.maxQueuedPerSession,
        maxSessions: config.mqtt.maxSessions,
        logIntervalMs: config.mqtt.limitsLogIntervalMs,
      },
    });
    // What the gateway publishes also reaches the shops' wired keypads and sounders.
    this.outbox = new Outbox(this.db, {
      publish: (msg) => {
        this.broker.publish(msg.topic, msg.payload);
        if (msg.kind !== 'shop') return;
        this.wired.onShopAlert(msg.recipientId, msg.body);
        // The shop's MQTT keypads: the alert rendered as their buzzer, display and LED commands.
        this.commands.alertPublished(msg.recipientId, msg.body);
      },
    });
    // What Node-RED's flows hear, after each commit; bounded, never waited for.
    const feed = config.nodeRed.enabled
      ? new FlowFeed({ counters: this.counters, shops: () => this.registry.shops, max: config.nodeRed.queueMax, batchDelayMs: config.nodeRed.batchDelayMs, wake: () => this.nodeRed?.wake() })
      : null;
    this.faults = new FaultStore({
      ...(feed ? { onMessage: (f: ConsoleFault) => feed.fault(f) } : {}),
      db: this.db,
      outbox: this.outbox,
      registry: this.registry,
      clock: this.clock,
      log: log.child({ module: 'faults' }),
      counters: this.counters,
      gatewayId: this.gatewayId,
      writer: this.writer,
      publish: (topic, payload) => this.broker.publish(topic, payload),
    });
    const healthLog = log.child({ module: 'health' });
    let probes = 0;
    this.dbWatch = new DbWatch({
      clock: this.clock,
      log: healthLog,
      sink: this.faults,
      probeIntervalMs: config.health.dbProbeIntervalMs,
      // A value that changes each time: the row's page is written, not found unchanged.
      probe: () => this.writer.run(() => setMeta(this.db, 'health_probe', `${iso(this.clock.now())} ${++probes}`), 'health-probe'),
    });
    this.diskWatch = new DiskWatch({
      path: resolve(config.dataDir),
      floorBytes: config.health.diskFloorBytes,
      clearMarginBytes: config.health.diskClearMarginBytes,
      checkIntervalMs: config.health.diskCheckIntervalMs,
      clock: this.clock,
      log: healthLog,
      sink: this.faults,
    });
    this.portFaults = new PortFaults({ sink: this.faults, log: healthLog, failAfter: config.health.portFailedAfterAttempts });
    this.commands = new DeviceCommands({
      registry: this.registry,
      outbox: this.outbox,
      buzzerSeconds: config.serial.buzzerSeconds,
      wired: (deviceId, commands) => this.wired.keypadCommand(deviceId, commands),
      publish: (topic, payload) => this.broker.publish(topic, payload),
    });
    this.engine = new AlarmEngine({
      db: this.db,
      config,
      clock: this.clock,
      log: log.child({ module: 'alarm' }),
      registry: this.registry,
      outbox: this.outbox,
      counters: this.counters,
      gatewayId: this.gatewayId,
      gatewayKey,
      faults: this.faults,
      onDeadline: (due) => this.scheduler?.consider(due),
      commands: this.commands,
      onDoor: (device, event) => this.doorHeld.event(device, event),
      ...(feed ? { onConsoleAlarm: (a: ConsoleAlarm) => feed.alarm(a) } : {}),
    });
    this.doorHeld = new DoorHeld({
      clock: this.clock,
      log: log.child({ module: 'doors' }),
      heldOpenMs: config.doors.heldOpenMs,
      // Two door polls: the first full read after the bus opens, with room for a slow start.
      firstReadMs: 2 * config.modbus.doorPollMs,
      isArmed: (shopId) => this.engine.isArmed(shopId),
      condition: (deviceId, active) => this.supervisor.condition(deviceId, 'door-held', active),
    });
    // A device whose counter went back is a fault at once, in the event's own commit.
    // A device flooding routine events has the excess dropped before the writer (gateway/ingest/flood.ts).
    this.flood = new FloodGuard({
      clock: this.clock,
      counters: this.counters,
      log: log.child({ module: 'ingest' }),
      eventsPerMinute: config.ingest.floodEventsPerMinute,
      burst: config.ingest.floodBurst,
      notice: (deviceId, state, fields) => this.supervisor?.floodNotice(deviceId, state, fields),
    });
    const oneIngest = deviceIngest({
      db: this.db,
      writer: this.writer,
      engine: this.engine,
      clock: this.clock,
      counters: this.counters,
      log: log.child({ module: 'ingest' }),
      faults: () => this.supervisor,
      flood: this.flood,
      ...(feed
        ? {
            onStored: (device: Device, event: DeviceEvent, eventId: number, at: string) =>
              feed.event(() => flowEvent(device, event, eventId, at, this.registry.shops.get(device.shopId)?.stationId ?? null, !!activeTestMode(this.db, device.shopId, device.id, this.clock.now()))),
          }
        : {}),
    });
    // What a stored event says about its device (tamper, battery, self-test) goes to supervision.
    const ingest = superviseEvents(oneIngest, () => this.supervisor);
    const marks = new DeliveryMarks({ writer: this.writer, outbox: this.outbox, clock: this.clock, log: log.child({ module: 'delivery' }) });
    const ingress = new MqttIngress({
      log: log.child({ module: 'ingest' }),
      clock: this.clock,
      counters: this.counters,
      registry: this.registry,
      writer: this.writer,
      engine: this.engine,
      outbox: this.outbox,
      commands: this.commands,
      ingest,
      marks,
      gatewayKey,
      publish: (topic, payload) => this.broker.publish(topic, payload),
      supervision: () => this.supervisor,
      consoleGrant: (username, grant) => this.sessions.byGrant(username, grant, this.registry.users)?.idHash ?? null,
    });
    this.supervisor = new Supervisor({
      db: this.db,
      clock: this.clock,
      log: log.child({ module: 'supervision' }),
      counters: this.counters,
      writer: this.writer,
      registry: this.registry,
      faultAfterMs: config.supervision.faultAfterMs,
      mqttFaultAfterMs: config.supervision.mqttFaultAfterMs,
      selfTestFaultAfterMs: config.supervision.selfTestFaultAfterMs,
      lineErrors: { windowMs: config.supervision.lineErrorWindowMs, perWindow: config.supervision.lineErrorsPerWindow },
      checkIntervalMs: config.supervision.checkIntervalMs,
      faults: this.faults,
    });
    // The bridges get ports, device records and narrow services (gateway/wired-adapter.ts).
    this.wired = new WiredDevices(
      wiredContext({
        db: this.db,
        registry: this.registry,
        gatewayKey,
        log: log.child({ module: 'wired' }),
        clock: this.clock,
        counters: this.counters,
        latencies: this.latencies,
        config,
        supervisor: this.supervisor,
        ports: this.portFaults,
        ingest,
        delivered: (shopId, alarmId, rev, deviceId) => marks.mark('shop', shopId, alarmId, rev, `device:${deviceId}`),
      }),
    );
    this.scheduler = new DeadlineScheduler({ clock: this.clock, log: log.child({ module: 'deadlines' }), writer: this.writer, engine: this.engine });
    this.sessions = new SessionStore(this.db, gatewayKey, this.clock, () => ({ idleMs: config.console.sessionIdleMs, maxAgeMs: config.console.sessionMaxAgeMs }));
    const consoleHttp = new ConsoleHttp({
      deps: {
        db: this.db,
        registry: this.registry,
        writer: this.writer,
        engine: this.engine,
        faults: this.faults,
        clock: this.clock,
        config,
        log: log.child({ module: 'console' }),
        counters: this.counters,
        gatewayId: this.gatewayId,
      },
      sessions: this.sessions,
      loginThrottle: this.loginThrottle,
      attachMqtt: (ws, req) => this.broker.attachWebSocket(ws, req, { admit: true }),
      endLive: (idHash) => this.broker.disconnect((p) => p.kind === 'user' && p.session === idHash),
    });
    if (feed) this.nodeRed = this.nodeRedSupervisor(feed, gatewayKey);
    this.http = new HttpServer({
      ...(this.nodeRed ? { nodeRed: this.nodeRedProxy(this.nodeRed) } : {}),
      host: config.http.host,
      port: config.http.port,
      healthDetailFrom: config.http.healthDetailFrom,
      log: log.child({ module: 'http' }),
      health: (detail) => (detail ? this.health() : this.publicHealth()),
      console: consoleHttp,
    });
    this.admin = new AdminServer(socketPath, (req) => this.adminRequest(req), log.child({ module: 'admin' }));

    await this.broker.start();
    this.faults.start();
    this.diskWatch.start();
    this.supervisor.start();
    this.doorHeld.seed(this.db, this.registry.devices.values());
    await this.wired.reconcile();
    this.portFaults.sweep(this.faults.openFaults(), (busId) => this.wired.holds(busId));
    this.scheduler.start();
    await this.http.start();
    // Not awaited: alarms flow whether or not Node-RED ever gets ready.
    this.nodeRed?.start();
    await this.admin.start();
    this.startRetries();
    log.info(
      { gatewayId: this.gatewayId, version: this.version, mqttPort: this.broker.ports.mqtt, wsPort: this.broker.ports.ws, httpPort: this.http.port, dataDir: config.dataDir },
      'gateway started',
    );
  }

  /** Embedded Node-RED's child process: its logins are the gateway's accounts, its nodes' calls FlowCalls, its deploys audit rows. */
  private nodeRedSupervisor(feed: FlowFeed, gatewayKey: Buffer): NodeRedSupervisor {
    const { config } = this.opts;
    const log = this.log.child({ module: 'node-red' });
    const auth = new EditorAuth({ users: () => this.registry.users, throttle: this.loginThrottle, counters: this.counters });
    const calls = new FlowCalls({ db: this.db, writer: this.writer, outbox: this.outbox, registry: this.registry, clock: this.clock, wired: (id, commands) => this.wired.keypadCommand(id, commands) });
    const failStarts = Number(process.env.LF_NODE_RED_FAIL_STARTS ?? 0);
    const actions: Record<string, string> = { 'flows.set': 'flows-deployed', 'auth.login': 'node-red-login', 'auth.logout': 'node-red-logout' };
    this.editorAuth = auth;
    return new NodeRedSupervisor({
      config: config.nodeRed,
      dataDir: config.dataDir,
      gatewayKey,
      logLevel: config.log.level,
      log,
      counters: this.counters,
      feed,
      faults: this.faults,
      authenticate: (name, password) => auth.editorLogin(name, password),
      user: (name) => auth.editorUserNamed(name),
      call: (op, args, flow) => calls.call(op, args, flow),
      audit: (event, user, detail) => {
        const action = actions[event];
        if (!action) return;
        // Logged once the deployed flows have started (tests wait for it before they raise an alarm).
        if (action === 'flows-deployed') log.info({ user, ...detail }, 'node-red flows deployed');
        void this.writer
          .run(() => auditRow(this.db, iso(this.clock.now()), user ? `user:${user}` : 'node-red', action, detail), 'node-red-audit')
          .catch((err: unknown) => log.error({ err }, 'a Node-RED audit row failed'));
      },
      ...(Number.isInteger(failStarts) && failStarts > 0 ? { failStarts } : {}),
    });
  }

  private nodeRedProxy(nodeRed: NodeRedSupervisor): NodeRedProxy {
    return new NodeRedProxy({
      target: () => (nodeRed.state === 'running' && nodeRed.port ? { port: nodeRed.port, secret: nodeRed.proxySecret } : null),
      editor: this.opts.config.nodeRed.editor,
      authorize: (req) => this.editorAuth!.basic(req),
      loginFrom: (name, address) => this.editorAuth!.loginFrom(name, address),
      log: this.log.child({ module: 'node-red' }),
      counters: this.counters,
    });
  }

  /** The rotating log file (gateway/log-files.ts) beside stdout, for `lianfang logs`; a file that fails is dropped, stdout goes on. */
  private async attachLogFile(): Promise<void> {
    const { config } = this.opts;
    if (!this.logStreams || !config.log.file || config.log.level === 'silent') return;
    const file = await openLogFile(config.dataDir, config.log);
    this.logStreams.add({ level: 'trace', stream: file });
    // multistream numbers what it adds (pino's types leave the counter out).
    const id = (this.logStreams as unknown as { lastId: number }).lastId;
    file.on('error', (err) => {
      // A full or read-only disk: the log must not take the gateway down with it.
      this.logStreams?.remove(id);
      this.log.error({ err: err.message, dir: config.dataDir }, 'writing the log file failed; logging to stdout only');
    });
    this.logFile = { stream: file, id };
  }

  /** Periodically re-send what connected recipients have not answered (a lost PUBACK, a stalled client). */
  private startRetries(): void {
    const every = this.opts.config.delivery.retryIntervalMs;
    this.retryTimer = setInterval(() => {
      const now = this.clock.now();
      this.writer
        .run((fx) => this.outbox.resendStale(fx, now, now - every, (k, id) => this.isReachable(k, id)), 'retry')
        .catch((err) => this.log.error({ err }, 'outbox retry failed'));
    }, every);
    this.retryTimer.unref();
  }

  /** Whether a recipient is there to take a re-send: subscribed, or a shop with a wired or an MQTT keypad (its alert commands) there. */
  private isReachable(kind: RecipientKind, id: string): boolean {
    if (this.broker.isLive(kind, id)) return true;
    if (kind !== 'shop') return false;
    if (this.wired.servesShop(id)) return true;
    return (this.registry.devicesByShop.get(id) ?? []).some((d) => d.transport === 'mqtt' && d.type === 'keypad' && !d.revokedAt && this.broker.isLive('device', d.id));
  }

  ports(): { mqtt: number; ws: number; http: number } {
    return { mqtt: this.broker.ports.mqtt, ws: this.broker.ports.ws, http: this.http.port };
  }

  /**
   * What /health tells a caller outside `http.healthDetailFrom`: that the gateway is up, nothing more
   * (open alarms, counters and device ids would tell a robber whether the 9# went through).
   */
  publicHealth(): Record<string, unknown> {
    return { up: true, version: this.version };
  }

  /** The full view: for /health from `http.healthDetailFrom` and the admin socket's `health` op. */
  health(): Record<string, unknown> {
    return {
      up: true,
      version: this.version,
      gatewayId: this.gatewayId,
      counts: {
        stations: this.registry.stations.size,
        shops: this.registry.shops.size,
        devices: this.registry.devices.size,
        users: this.registry.users.size,
        openAlarms: this.engine.countOpenAlarms(),
        outboxPending: this.outbox.countPending(),
        connectedClients: this.broker.connectedClients(),
        buses: this.registry.buses.size,
      },
      faults: this.faults.health(),
      flooding: this.flood?.flooding() ?? [],
      mqtt: this.broker.limits(),
      counters: this.counters.snapshot(),
      latencies: this.latencies.snapshot(),
      writer: this.writer.stats,
      checkpoints: this.checkpointer?.stats,
      nodeRed: this.nodeRed ? this.nodeRed.health() : { state: 'disabled' },
    };
  }

  /** Re-read the registry (in order with the writer's commits) and bring the buses in step. */
  private async reload(): Promise<void> {
    await this.writer.run(() => this.registry.reload(), 'reload');
    await this.wired.reconcile();
  }

  /** What only the running gateway knows of each device: online (a live MQTT session, a wired device answering its polls), last heard. */
  private deviceStatus(): Record<string, LiveDeviceStatus> {
    const connected = new Set(this.broker.principals().flatMap((p) => (p.kind === 'device' ? [p.deviceId] : [])));
    const out: Record<string, LiveDeviceStatus> = {};
    for (const d of this.registry.devices.values()) {
      const heard = this.supervisor.heardAt(d.id);
      out[d.id] = {
        online: !d.revokedAt && (d.transport === 'mqtt' ? connected.has(d.id) : this.supervisor.answering(d.id)),
        lastSeen: heard === undefined ? null : iso(heard),
      };
    }
    return out;
  }

  private async adminRequest(req: AdminRequest): Promise<unknown> {
    switch (req.op) {
      case 'reload':
        await this.reload();
        this.log.info({ devices: this.registry.devices.size, shops: this.registry.shops.size }, 'registry reloaded');
        return { devices: this.registry.devices.size, shops: this.registry.shops.size, users: this.registry.users.size };
      case 'revoke':
      case 'rotate': {
        // Revoked, or issued new credentials (`deviceIds`: one request however many, as `rotate
        // --all` and `shop remove --force` send them): what each typed so far is forgotten, a serial
        // keypad is polled with its new key (or no longer), and each live session ends.
        const ids = new Set(Array.isArray(req.deviceIds) ? req.deviceIds.map(String) : []);
        await this.reload();
        for (const id of ids) this.engine.forgetKeys(id);
        const n = this.broker.disconnect((p) => p.kind === 'device' && ids.has(p.deviceId));
        this.log.info({ deviceIds: [...ids].slice(0, 20), devices: ids.size, disconnected: n }, req.op === 'revoke' ? 'device revoked' : 'device credentials rotated');
        return { disconnected: n };
      }
      case 'user-changed': {
        // A new password or a revoked login: every session it has open ends now.
        const name = String(req.name ?? '');
        await this.reload();
        const n = this.broker.disconnect((p) => p.kind === 'user' && p.name === name);
        this.log.info({ user: name, disconnected: n }, 'user changed');
        return { disconnected: n };
      }
      case 'device-status':
        return { devices: this.deviceStatus() };
      case 'reset-counter':
        return resetCounter(
          { db: this.db, writer: this.writer, registry: this.registry, engine: this.engine, supervisor: this.supervisor, faults: this.faults, clock: this.clock, log: this.log.child({ module: 'admin' }) },
          req.deviceId,
          req.actor,
        );
      case 'test-start':
      case 'test-stop': {
        // The CLI validated these; the socket is the installer's (0600), still checked here.
        const scope = req.scope === 'shop' || req.scope === 'device' ? req.scope : null;
        const targetId = typeof req.targetId === 'string' ? req.targetId : '';
        const actor = typeof req.actor === 'string' ? req.actor : 'cli';
        if (!scope || !targetId) throw lfError('LF_ERR_INVALID_ARGUMENT', 'test', 'scope shop|device and a targetId');
        if (req.op === 'test-stop') return { stopped: await this.writer.run(() => this.engine.stopTest(scope, targetId, actor), 'test-mode') };
        const ms = req.durationMs;
        if (!Number.isInteger(ms) || (ms as number) < 1000 || (ms as number) > 24 * 3600_000) throw lfError('LF_ERR_INVALID_ARGUMENT', 'durationMs', '1 s to 24 h');
        return this.writer.run(() => this.engine.startTest(scope, targetId, ms as number, actor), 'test-mode');
      }
      case 'walk-pass': {
        // A device passed a walk test (`lianfang test walk`): its audit row, in order with the writer's.
        const p = (req.pass ?? {}) as Partial<WalkPass>;
        const str = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 200;
        if (!str(p.deviceId) || !str(p.shopId) || !Number.isInteger(p.eventId) || !str(p.eventType) || !str(p.eventAt) || (p.alarmId !== undefined && !str(p.alarmId))) {
          throw lfError('LF_ERR_INVALID_ARGUMENT', 'pass', 'deviceId, shopId, eventId, eventType, eventAt (alarmId optional)');
        }
        const actor = typeof req.actor === 'string' ? req.actor : 'cli';
        const pass: WalkPass = { deviceId: p.deviceId!, shopId: p.shopId!, eventId: p.eventId!, eventType: p.eventType!, eventAt: p.eventAt!, ...(p.alarmId ? { alarmId: p.alarmId } : {}) };
        return { at: await this.writer.run(() => recordWalkPass(this.db, pass, actor, this.clock.now()), 'walk-test') };
      }
      case 'fault-ticket':
        // `lianfang fault assign|fix`: the new rev goes to the consoles at once.
        return changeTicket(this.faults, this.writer, ticketRequest(req));
      case 'arming': {
        // `lianfang shop arm|disarm`: validated by the CLI, checked again here.
        const shopId = typeof req.shopId === 'string' ? req.shopId : '';
        const actor = typeof req.actor === 'string' ? req.actor : 'cli';
        if (!this.registry.shops.has(shopId)) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        if (typeof req.schedule === 'string') {
          const schedule = parseSchedule(req.schedule);
          return this.writer.run((fx) => this.engine.setSchedule(fx, shopId, schedule, actor), 'arming');
        }
        if (typeof req.armed !== 'boolean') throw lfError('LF_ERR_INVALID_ARGUMENT', 'arming', 'armed true|false, or a schedule');
        const armed = req.armed;
        return this.writer.run((fx) => this.engine.setArmed(fx, shopId, armed, actor), 'arming');
      }
      case 'health':
        return this.health();
      case 'ports':
        // `lianfang doctor`: the ports this gateway holds are in use, and rightly so.
        return this.ports();
      case 'bus-scan': {
        const scan = (req.scan ?? {}) as Partial<ScanOptions>;
        const int = (v: unknown, min: number, max: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
        if (!int(scan.from, 1, 247) || !int(scan.to, scan.from ?? 1, 247) || !int(scan.timeoutMs, 1, 5000)) {
          throw lfError('LF_ERR_INVALID_ARGUMENT', 'scan', 'from/to are addresses 1–247 (from ≤ to), timeoutMs 1–5000');
        }
        const busId = String(req.busId ?? '');
        const hits = this.wired.scan(busId, scan as ScanOptions);
        if (!hits) throw lfError('LF_ERR_NOT_FOUND', 'open bus', busId);
        return { hits: await hits };
      }
      default:
        throw lfError('LF_ERR_INVALID_ARGUMENT', 'admin op', req.op);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.scheduler?.stop();
    this.supervisor?.stop();
    this.faults?.stop();
    this.diskWatch?.stop();
    this.dbWatch?.stop();
    this.doorHeld?.stop();
    this.flood?.stop();
    await this.wired?.close().catch((err) => this.log.error({ err }, 'closing the buses failed'));
    await this.admin?.stop().catch(() => {});
    await this.nodeRed?.stop().catch((err) => this.log.error({ err }, 'stopping Node-RED failed'));
    await this.http?.stop().catch(() => {});
    await this.broker?.stop().catch(() => {});
    this.loginThrottle?.stop();
    this.writer?.close();
    await this.checkpointer?.stop();
    try {
      this.db?.close();
    } catch {
      /* already closed */
    }
    this.lock?.release();
    this.log.info('gateway stopped');
    await this.closeLogFile();
  }

  /** Everything logged is in the file before stop() returns (`lianfang start` exits right after). */
  private async closeLogFile(): Promise<void> {
    if (!this.logFile) return;
    const { stream: file, id } = this.logFile;
    this.logFile = null;
    this.logStreams?.remove(id);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      file.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      file.end();
    });
  }
}
