/**
 * The one configuration schema. Every field has a default and a description; the defaults alone run
 * a working gateway. The TypeScript type is derived from the schema, never written twice.
 * Any field can be overridden by an `LF_`-prefixed environment variable named after its path
 * (`escalation.ackDeadlineMs` → `LF_ESCALATION_ACK_DEADLINE_MS`); see config/load.ts.
 */
import { Type, type Static } from '@sinclair/typebox';

const Port = (def: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: def, description });
const Bytes = (def: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: def, description });
const Millis = (def: number, description: string, minimum = 1) =>
  Type.Integer({ minimum, maximum: 7 * 24 * 3600 * 1000, default: def, description });

export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({
      minLength: 1,
      default: './data',
      description: 'Directory holding the SQLite database, the gateway key, the lock file and the admin socket.',
    }),
    gatewayId: Type.String({
      default: '',
      pattern: '^[A-Za-z0-9_-]{0,64}$',
      description: 'This gateway\'s id across gateways; empty = generated once and stored in the database.',
    }),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'pino log level.' },
        ),
        file: Type.Boolean({
          default: true,
          description: 'Also write the log (at log.level) to rotating files in <dataDir>/logs/, read with `lianfang logs`; stdout gets it either way.',
        }),
        fileMaxBytes: Type.Integer({
          minimum: 65_536,
          maximum: 1_073_741_824,
          default: 10_485_760,
          description: 'A log file reaching this size is closed and a new one begun (10 MiB: weeks of an idle street, hours of a flood).',
        }),
        fileCount: Type.Integer({
          minimum: 2,
          maximum: 1000,
          default: 8,
          description: 'Log files kept, the one being written included; older ones are removed, so the logs take at most log.fileCount × log.fileMaxBytes of an edge box\'s disk.',
        }),
        fileRotateDaily: Type.Boolean({
          default: true,
          description: 'Also begin a new log file at each local midnight (its name carries the date).',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    mqtt: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0', description: 'Address the MQTT TCP and WebSocket listeners bind to.' }),
        port: Port(1883, 'MQTT over TCP (0 = any free port; the chosen port is logged).'),
        wsPort: Port(8083, 'MQTT over WebSocket (0 = any free port; the chosen port is logged).'),
        maxPacketBytes: Type.Integer({
          minimum: 256,
          maximum: 268435455,
          default: 8192,
          description: 'Largest MQTT packet accepted; a larger one closes the socket before it is buffered.',
        }),
        connectTimeoutMs: Millis(10_000, 'A socket that sends no CONNECT within this time is closed.'),
        stallTimeoutMs: Millis(
          5_000,
          'A client that takes none of the bytes waiting for it, or does not acknowledge a QoS 1 message, for this long is cut off (its messages stay in the outbox; 0 = never); no client ever delays another.',
          0,
        ),
        maxBufferedBytes: Type.Integer({
          minimum: 65_536,
          maximum: 1_073_741_824,
          default: 4_194_304,
          description: 'Bytes the gateway buffers toward one MQTT client that has not taken them; one more cuts the client off.',
        }),
        maxConnections: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 10_000,
          description: 'MQTT sockets (TCP and WebSocket) open at once, logged in or not; lowered to the process descriptor limit less 256 when that is smaller.',
        }),
        maxPendingConnections: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 2_000,
          description: 'Sockets not yet logged in, in total; when full, a newcomer replaces the oldest pending socket of the address holding the most.',
        }),
        maxPendingPerAddress: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 1_000,
          description: 'Sockets not yet logged in from one remote address (a NAT in front of many devices counts as one).',
        }),
        pendingEvictableAfterMs: Millis(2_000, 'A socket not logged in after this long is taken for idle: at a cap, a newcomer from its address may take its place.'),
        limitsLogIntervalMs: Millis(10_000, 'Refused connections, and what the session limits dropped or expired, are logged as one summary line each per this interval.'),
        sessionExpiryMs: Millis(3_600_000, 'A persistent session (clean = false) without a connection for this long is forgotten; the outbox re-sends undelivered alarms on subscribe.'),
        maxQueuedPerSession: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 200,
          description: 'Messages one persistent session holds (queued offline or awaiting PUBACK); beyond this the oldest is dropped.',
        }),
        maxSessions: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 1_000,
          description: 'Persistent sessions kept; beyond this the one without a connection for longest is forgotten.',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    http: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0', description: 'Address the HTTP server binds to.' }),
        port: Port(8080, 'HTTP port serving /health (0 = any free port; the chosen port is logged).'),
        healthDetailFrom: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
          maxItems: 64,
          default: ['127.0.0.1', '::1', '::ffff:127.0.0.1'],
          description:
            'Caller addresses (or CIDR ranges, e.g. 10.0.0.0/24) that /health answers in full; everyone else gets only up and version. In the environment: comma-separated.',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    console: Type.Object(
      {
        sessionIdleMs: Millis(
          3_600_000,
          'A console session without a request for this long ends (an open page asks every minute, so this ends a page that was closed, or a computer left logged in).',
          1_000,
        ),
        sessionMaxAgeMs: Millis(14 * 3_600_000, 'A console session ends this long after its login, however busy (a night shift and its handover).', 1_000),
        secureCookie: Type.Boolean({ default: false, description: 'Mark the session cookie Secure: set it when the console is served over HTTPS (by a reverse proxy).' }),
        nobodyOnDutyFault: Type.Boolean({
          default: true,
          description:
            'An alarm raised while no officer is signed on to a shift in its station or compound also raises a nobody-on-duty fault (to the consoles and Node-RED), cleared when an officer of that scope signs on.',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    nodeRed: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description:
            'Run embedded Node-RED (docs/node-red.md) in its own low-priority child process: the editor under /flows on the HTTP port, flows\' HTTP-in endpoints under /flows-api. Alarms never wait for it.',
        }),
        editor: Type.Union([Type.Literal('local'), Type.Literal('network')], {
          default: 'local',
          description: 'Who may reach the editor and its admin API under /flows: "local" = clients on this machine only (loopback), "network" = any client that logs in.',
        }),
        tokenExpiryMs: Millis(8 * 3_600_000, 'An editor login (a token from /flows/auth/token) expires this long after it was issued (whole seconds).', 1_000),
        queueMax: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 1000,
          description: 'Messages to Node-RED (alarms, events, faults) waiting for it at most; what comes beyond is dropped and counted (nodered.dropped), never held on the alarm path.',
        }),
        batchDelayMs: Millis(
          20,
          'Messages for Node-RED wait this long after the first of them, to go to its process in one batch: fewer wake-ups of Node-RED while alarms are being handled (0 = at once).',
          0,
        ),
        heartbeatIntervalMs: Millis(5_000, 'How often the gateway asks the Node-RED process whether it still answers.', 100),
        unresponsiveAfterMs: Millis(30_000, 'A Node-RED process that has not answered for this long (or has not finished starting in nodeRed.startTimeoutMs) is killed and restarted, and raised as a node-red-down fault.', 500),
        startTimeoutMs: Millis(120_000, 'How long the Node-RED process may take to start before it is killed and started again.', 1_000),
        restartMinMs: Millis(1_000, 'The first wait before restarting a Node-RED process that exited; it doubles at each failure in a row.', 10),
        restartMaxMs: Millis(60_000, 'The longest wait between restarts of the Node-RED process.', 10),
        nice: Type.Integer({ minimum: 0, maximum: 19, default: 19, description: 'Scheduling priority (nice) of the Node-RED process: 19 is the lowest, so a busy flow cannot starve the gateway of a core.' }),
        idle: Type.Boolean({
          default: true,
          description: "Run the Node-RED process under Linux's SCHED_IDLE policy (through chrt --idle 0, where chrt is installed): it gets a core only when the gateway does not want it, and a gateway thread that wakes takes the core from it at once.",
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    store: Type.Object(
      {
        busyTimeoutMs: Millis(5_000, 'How long a writer waits for a lock held by another process (the CLI).', 0),
        checkpointIntervalMs: Millis(1_000, 'How often a worker thread copies the WAL into the database (off the commit path).'),
      },
      { default: {}, additionalProperties: false },
    ),
    keypad: Type.Object(
      {
        entryTimeoutMs: Millis(3_000, 'A pause this long ends a keypad entry (docs/concepts.md "Keypad codes").'),
        pinLockoutMs: Millis(300_000, 'Five wrong PINs in a row lock cancelling for the shop this long (its duress PIN still reaches the console).'),
      },
      { default: {}, additionalProperties: false },
    ),
    doors: Type.Object(
      {
        entryDelayMs: Millis(30_000, 'A door opening while its shop is armed starts an entry delay this long (a stored deadline): a disarm within it raises nothing, otherwise an intrusion alarm goes to the console and the neighbours.'),
        heldOpenMs: Millis(300_000, 'A door open this long while its shop is disarmed is a door-held fault on the console, cleared when it closes.'),
      },
      { default: {}, additionalProperties: false },
    ),
    escalation: Type.Object(
      {
        ackDeadlineMs: Millis(30_000, 'No officer acknowledgement within this time marks the alarm overdue and re-sends it.'),
        overdueRepeatMs: Millis(30_000, 'An overdue alarm is re-sent to its consoles this often until acknowledged.'),
        ringIntervalMs: Millis(60_000, 'Time after which a ring with too few answers is widened to the next ring.'),
        ringSize: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Shops alerted per ring.' }),
        maxRings: Type.Integer({ minimum: 1, maximum: 10, default: 3, description: 'Most rings an alarm widens to.' }),
        minAnswers: Type.Integer({
          minimum: 1,
          maximum: 100,
          default: 3,
          description: '`coming`/`seen` answers across all rings below which the ring widens.',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    delivery: Type.Object(
      {
        retryIntervalMs: Millis(10_000, 'Undelivered outbox rows older than this are re-sent to connected recipients.'),
      },
      { default: {}, additionalProperties: false },
    ),
    serial: Type.Object(
      {
        replyTimeoutMs: Millis(60, 'How long the serial bus master waits for a keypad to start answering, beyond the wire time of its request.'),
        pollPauseMs: Millis(20, 'Pause between two rounds of polls on one serial bus.', 0),
        commandRetries: Type.Integer({ minimum: 0, maximum: 100, default: 5, description: 'Times a command (display, buzzer) is re-sent to a keypad that did not confirm it.' }),
        buzzerSeconds: Type.Integer({ minimum: 1, maximum: 65535, default: 180, description: 'A neighbour keypad\'s buzzer sounds this long at most for one alert.' }),
        reopenBackoffMs: Millis(200, 'First wait before reopening a serial port that closed or would not open; doubles on each failure.'),
        reopenBackoffMaxMs: Millis(10_000, 'Longest wait between two attempts to reopen a serial port.'),
      },
      { default: {}, additionalProperties: false },
    ),
    modbus: Type.Object(
      {
        requestTimeoutMs: Millis(200, 'Timeout of every Modbus request (modbus-serial waits for ever by default).'),
        panicPollMs: Millis(100, 'How often the panic inputs of each I/O module are read.'),
        doorPollMs: Millis(1_000, 'How often all inputs (door contacts, tamper) of each I/O module are read.'),
        reopenBackoffMs: Millis(200, 'First wait before reopening a bus after a timeout; doubles on each failure.'),
        reopenBackoffMaxMs: Millis(10_000, 'Longest wait between two attempts to reopen a bus.'),
        connectTimeoutMs: Millis(2_000, 'Longest wait for a bus to open: a TCP connect to a module that is switched off gets no answer at all.'),
        sounderMaxMs: Millis(180_000, 'A sounder switched on for an alarm is switched off after this long at the latest.'),
      },
      { default: {}, additionalProperties: false },
    ),
    ingest: Type.Object(
      {
        floodEventsPerMinute: Type.Integer({
          minimum: 1,
          maximum: 600_000,
          default: 60,
          description: 'Routine events (door, heartbeat, tamper, battery, fault) one device may send per minute after its burst; the excess is acknowledged, dropped and counted (LF_ERR_FLOOD). Keypad and panic events are never dropped.',
        }),
        floodBurst: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 30,
          description: 'Routine events one device may send at once before ingest.floodEventsPerMinute applies.',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    supervision: Type.Object(
      {
        faultAfterMs: Millis(20_000, 'A wired device that has not answered for this long (a serial keypad: with an authenticated frame, a HEARTBEAT or another event; NOTHING does not count) becomes a fault on the console; it clears when it answers again.'),
        mqttFaultAfterMs: Millis(
          90_000,
          'An MQTT device that has published nothing on its own topics (events, status) for this long becomes a fault on the console (keep-alive pings do not count); it clears when it publishes again. Its last will (status online:false) is a fault at once.',
        ),
        selfTestFaultAfterMs: Millis(
          90_000_000,
          'A device whose model declares a daily self-test (serial and MQTT keypads) and reports none for this long becomes a selftest-missed fault; its next self-test clears it.',
        ),
        lineErrorWindowMs: Millis(
          60_000,
          'A serial keypad with supervision.lineErrorsPerWindow polls with line errors (bad CRC, truncated frames, noise, frames that do not verify) within this long is a line-errors fault; it clears after this long without one.',
        ),
        lineErrorsPerWindow: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 10,
          description: 'Polls with a line error within supervision.lineErrorWindowMs that make a line-errors fault.',
        }),
        checkIntervalMs: Millis(1_000, 'How often silence is checked.'),
      },
      { default: {}, additionalProperties: false },
    ),
    health: Type.Object(
      {
        diskFloorBytes: Bytes(
          536_870_912,
          'Free space on the data directory\'s filesystem below this many bytes is a disk-low fault on the console (512 MiB: days of events on a busy street); 0 = never.',
        ),
        diskClearMarginBytes: Bytes(67_108_864, 'A disk-low fault clears once free space is back above health.diskFloorBytes plus this many bytes, so a disk hovering at the floor does not open a ticket at every check.'),
        diskCheckIntervalMs: Millis(60_000, 'How often the free disk space is checked.'),
        dbProbeIntervalMs: Millis(10_000, 'While a db-error fault is open, a small write is tried this often, so the fault clears when writes work again even with no device event to store.'),
        portFailedAfterAttempts: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 3,
          description: 'Failed attempts in a row to open a bus\'s port (a serial path missing or busy, a Modbus TCP endpoint refusing; retried with the bus\'s backoff) that make a port-failed fault; it clears when the port opens.',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    login: Type.Object(
      {
        freeFailures: Type.Integer({
          minimum: 0,
          maximum: 1000,
          default: 3,
          description: 'Failed logins of one address, or for one account, answered at once; each further failure is answered only after a delay.',
        }),
        delayMs: Millis(500, 'Delay of the first failed login past the free ones; doubles with each further failure of that address or account.', 0),
        maxDelayMs: Millis(30_000, 'Longest delay of a failed login\'s answer.', 0),
        forgetAfterMs: Millis(900_000, 'An address or account without a failed login for this long starts afresh.'),
        maxPendingPerAddress: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 4,
          description: 'Logins from one address being checked or held at once; more are refused at once, unchecked (CONNACK 3, LF_ERR_LOGIN_THROTTLED).',
        }),
        maxQueuedPerAccount: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 8,
          description: 'Logins in line for one account past its free failures (from addresses that failed before; checked one at a time); more are refused at once, unchecked.',
        }),
        maxConcurrentChecks: Type.Integer({
          minimum: 1,
          maximum: 64,
          default: 1,
          description: 'Password checks (scrypt, CPU-heavy; also for unknown usernames) run at once, gateway-wide; the others wait, those from addresses without failures first. A device token check never waits.',
        }),
        summaryIntervalMs: Millis(60_000, 'Failed logins are logged as one summary line per interval (counts, addresses, accounts); only the first failure of an address or account gets a line of its own.'),
      },
      { default: {}, additionalProperties: false },
    ),
    reports: Type.Object(
      {
        falseAlarmRatePercent: Type.Integer({
          minimum: 0,
          maximum: 100,
          default: 50,
          description: '`lianfang report false-alarms` flags a shop for a visit when its false-alarm rate (false over real + false, test alarms excluded) is above this many percent.',
        }),
        falseAlarmMinDecided: Type.Integer({
          minimum: 1,
          maximum: 10000,
          default: 3,
          description: 'A shop is flagged only when at least this many of its alarms in the period were closed real or false (so one mistaken 9# is never a rate of 100 %).',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    timeZone: Type.String({
      default: 'Asia/Shanghai',
      description: 'Time zone in which times are shown to people (they are stored in UTC).',
    }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** A partial configuration as read from a file, the environment or flags. */
export type ConfigInput = { [K in keyof Config]?: Config[K] extends object ? Partial<Config[K]> : Config[K] };
