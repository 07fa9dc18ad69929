/**
 * Schema migrations, from the first commit. `PRAGMA user_version` holds the schema version; each
 * migration runs in its own transaction, so a failing one leaves the database as it was.
 * A released version is never edited: add a new entry instead, and add a fixture database of the
 * version it upgrades from to test/fixtures/db/ (test/gateway/store/migrations.test.ts upgrades each).
 */
import type { Database } from 'better-sqlite3';
import { lfError } from '../errors.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- A police station's alarm-receiving centre, or (compound_of set) a residential compound's
-- receiving point under that station. Both are addressed as stations/{id}/… on MQTT.
CREATE TABLE stations (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  compound_of TEXT REFERENCES stations(id),
  time_zone   TEXT,
  created_at  TEXT NOT NULL
);

CREATE TABLE shops (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  address      TEXT NOT NULL,
  lat          REAL,
  lon          REAL,
  station_id   TEXT NOT NULL REFERENCES stations(id),
  compound_id  TEXT REFERENCES stations(id),
  door_plate   TEXT,
  pole_number  TEXT,
  grid         TEXT,
  sector       TEXT,
  owner_name   TEXT,
  owner_phone  TEXT,
  duty_name    TEXT,
  duty_phone   TEXT,
  camera_ids   TEXT NOT NULL DEFAULT '[]',  -- JSON array of camera ids covering the door
  neighbours   TEXT NOT NULL DEFAULT '[]',  -- JSON array of shop ids, used when there are no coordinates
  created_at   TEXT NOT NULL,
  CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE INDEX shops_station ON shops(station_id);

CREATE TABLE devices (
  id           TEXT PRIMARY KEY,            -- also its MQTT username and client id
  shop_id      TEXT NOT NULL REFERENCES shops(id),
  type         TEXT NOT NULL,               -- keypad | panic | io-module
  transport    TEXT NOT NULL,               -- mqtt | serial | modbus-rtu | modbus-tcp
  secret_hash  BLOB,                        -- HMAC-SHA-256 of the MQTT password under the gateway key
  mac_key_enc  BLOB,                        -- a wired device's MAC key, encrypted under the gateway key
  bus          TEXT,
  bus_address  INTEGER,
  last_boot    INTEGER,                     -- de-duplication high-water mark (boot, seq)
  last_seq     INTEGER,
  revoked_at   TEXT,
  created_at   TEXT NOT NULL
);
CREATE INDEX devices_shop ON devices(shop_id);

CREATE TABLE users (
  name          TEXT PRIMARY KEY,           -- MQTT username and console login
  role          TEXT NOT NULL,              -- officer | installer | admin
  station_id    TEXT REFERENCES stations(id),
  password_hash TEXT NOT NULL,              -- scrypt$N$r$p$salt$hash
  revoked_at    TEXT,
  created_at    TEXT NOT NULL
);

-- Every device event, committed before the device is told "got it". Keys typed after '*' are masked.
CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  device_id   TEXT NOT NULL,
  boot        INTEGER,
  seq         INTEGER NOT NULL,
  type        TEXT NOT NULL,
  payload     TEXT NOT NULL,
  via         TEXT NOT NULL,                -- mqtt | serial | modbus
  received_at TEXT NOT NULL
);
CREATE INDEX events_device ON events(device_id, id);

CREATE TABLE alarms (
  id              TEXT PRIMARY KEY,         -- UUIDv7: unique across gateways, sortable by time
  gateway_id      TEXT NOT NULL,
  shop_id         TEXT NOT NULL REFERENCES shops(id),
  station_id      TEXT NOT NULL,
  compound_id     TEXT,
  state           TEXT NOT NULL,
  kind            TEXT NOT NULL,
  rev             INTEGER NOT NULL,
  overdue         INTEGER NOT NULL DEFAULT 0,
  duress          INTEGER NOT NULL DEFAULT 0,
  test            INTEGER NOT NULL DEFAULT 0,
  taken_by        TEXT,
  disposition     TEXT,
  patrol          TEXT,
  ring            INTEGER NOT NULL DEFAULT 1,
  origin_event_id INTEGER,
  raised_at       TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  closed_at       TEXT
);
CREATE INDEX alarms_open ON alarms(shop_id) WHERE state NOT IN ('closed', 'cancelled');
CREATE INDEX alarms_station ON alarms(station_id, raised_at);

CREATE TABLE alarm_recipients (
  alarm_id    TEXT NOT NULL REFERENCES alarms(id),
  shop_id     TEXT NOT NULL,
  ring        INTEGER NOT NULL,
  distance_m  REAL,
  alerted_at  TEXT NOT NULL,
  PRIMARY KEY (alarm_id, shop_id)
) WITHOUT ROWID;
CREATE INDEX alarm_recipients_shop ON alarm_recipients(shop_id);

CREATE TABLE alarm_replies (
  id        INTEGER PRIMARY KEY,
  alarm_id  TEXT NOT NULL REFERENCES alarms(id),
  shop_id   TEXT NOT NULL,
  reply     TEXT NOT NULL,                  -- coming | seen | cannot
  actor     TEXT NOT NULL,
  at        TEXT NOT NULL
);
CREATE INDEX alarm_replies_alarm ON alarm_replies(alarm_id);

-- Every change of an alarm, with who did it and when.
CREATE TABLE audit (
  id         INTEGER PRIMARY KEY,
  alarm_id   TEXT,
  at         TEXT NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  from_state TEXT,
  to_state   TEXT,
  rev        INTEGER,
  detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_alarm ON audit(alarm_id, id);

-- One row per recipient of a message about an alarm, until delivered (docs/concepts.md "Delivered means answered").
CREATE TABLE outbox (
  id             INTEGER PRIMARY KEY,
  alarm_id       TEXT NOT NULL,
  rev            INTEGER NOT NULL,
  recipient_kind TEXT NOT NULL,             -- shop | station | upstream
  recipient_id   TEXT NOT NULL,
  topic          TEXT NOT NULL,
  payload        TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  sent_count     INTEGER NOT NULL DEFAULT 0,
  last_sent_at   INTEGER,
  delivered_at   TEXT,
  delivered_by   TEXT,
  superseded     INTEGER NOT NULL DEFAULT 0  -- a newer rev for the same recipient replaced it
);
CREATE INDEX outbox_pending ON outbox(recipient_kind, recipient_id) WHERE delivered_at IS NULL AND superseded = 0;
CREATE INDEX outbox_alarm ON outbox(alarm_id, recipient_kind, recipient_id);

-- Every timer that matters is a row (docs/concepts.md "Deadlines are rows").
CREATE TABLE deadlines (
  id        INTEGER PRIMARY KEY,
  alarm_id  TEXT,
  kind      TEXT NOT NULL,                  -- ack | ring
  due_at    INTEGER NOT NULL,               -- ms since the epoch
  done_at   INTEGER
);
CREATE INDEX deadlines_due ON deadlines(due_at) WHERE done_at IS NULL;
`,
  },
  {
    version: 2,
    name: 'wired buses, device models and faults',
    sql: `
CREATE TABLE buses (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,                 -- serial | modbus-rtu | modbus-tcp
  path       TEXT,                          -- serial device (serial, modbus-rtu)
  baud       INTEGER,
  parity     TEXT,                          -- none | even | odd
  host       TEXT,                          -- modbus-tcp
  port       INTEGER,
  created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX buses_path ON buses(path) WHERE path IS NOT NULL;
CREATE UNIQUE INDEX buses_endpoint ON buses(host, port) WHERE host IS NOT NULL;

ALTER TABLE devices ADD COLUMN model TEXT;  -- Modbus register map (e.g. generic-8io)
CREATE UNIQUE INDEX devices_bus_address ON devices(bus, bus_address) WHERE bus IS NOT NULL AND revoked_at IS NULL;

-- Supervision: last-seen times live in memory; only fault changes are stored.
CREATE TABLE device_faults (
  id         INTEGER PRIMARY KEY,
  device_id  TEXT NOT NULL REFERENCES devices(id),
  fault      TEXT NOT NULL,                 -- silent
  raised_at  TEXT NOT NULL,
  cleared_at TEXT
);
CREATE INDEX device_faults_open ON device_faults(device_id) WHERE cleared_at IS NULL;
`,
  },
  {
    version: 3,
    name: 'fault details',
    sql: `
-- What a fault says beyond its kind, as JSON (a counter-reset fault: the old and the new boot).
ALTER TABLE device_faults ADD COLUMN detail TEXT;
`,
  },
  {
    version: 4,
    name: 'shop PINs',
    sql: `
-- A shop's cancel and duress PINs, only as keyed hashes (HMAC-SHA-256 under the gateway key, over
-- the shop id and the PIN: the same PIN in two shops has two hashes). The wrong-PIN count and the
-- lock-out's end (ms since the epoch) are rows, so a restart does not lift a lock-out.
CREATE TABLE shop_pins (
  shop_id        TEXT PRIMARY KEY REFERENCES shops(id),
  pin_hash       BLOB NOT NULL,
  duress_hash    BLOB NOT NULL,
  set_at         TEXT NOT NULL,
  wrong_in_a_row INTEGER NOT NULL DEFAULT 0,
  locked_until   INTEGER
);
-- Cancelled or duress: the shops were told the alarm ended; on their side it is over (no ring
-- widening, nothing more when it is closed, not joinable), whatever state the console sees.
ALTER TABLE alarms ADD COLUMN shops_ended INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 5,
    name: 'test mode',
    sql: `
-- A shop or a device in test mode until until_ms (ms since the epoch); its expiry is also a row in
-- deadlines (kind test-expiry). ended_how: stopped (lianfang test stop), expired, replaced (a new
-- test start for the same target).
CREATE TABLE test_modes (
  id         INTEGER PRIMARY KEY,
  scope      TEXT NOT NULL,                 -- shop | device
  target_id  TEXT NOT NULL,
  started_at TEXT NOT NULL,
  started_by TEXT NOT NULL,
  until_ms   INTEGER NOT NULL,
  ended_at   TEXT,
  ended_how  TEXT
);
CREATE INDEX test_modes_active ON test_modes(scope, target_id) WHERE ended_at IS NULL;
ALTER TABLE deadlines ADD COLUMN test_mode_id INTEGER REFERENCES test_modes(id);
-- The test mode a test alarm was raised in.
ALTER TABLE alarms ADD COLUMN test_mode_id INTEGER REFERENCES test_modes(id);
`,
  },
  {
    version: 6,
    name: 'device commands in the outbox',
    sql: `
-- An MQTT keypad's buzzer, display and LED commands are outbox rows like alerts (issue 8, "What the
-- pressing keypad shows"). A device row names its command (a newer one of the same command to the
-- same device supersedes an undelivered older one) and carries the device's command counter seq,
-- which is in its payload: what the device de-duplicates by and what its PUBACK marks delivered.
-- A device command need not be about an alarm (the answer to a wrong PIN), so alarm_id and rev may
-- be NULL for device rows only. SQLite cannot drop a NOT NULL in place: the table is rebuilt, with
-- its rows, ids (re-sends go oldest first by id) and indexes.
-- The table has no CHECK constraints and no index of its own for device rows, as in v1: every row
-- and every delivery of every alert goes through this table on the alarm path, and measured here
-- CHECKs made an insert about 1.5x and a partial index on (recipient_id, seq) made a delivery
-- about 2.4x as costly (SQLite updates a partial index on every UPDATE of its table). The outbox
-- (gateway/delivery/outbox.ts), its only writer, keeps the rules: a device row names its command
-- and its seq (unique per device: device_command_seq below numbers them), any other row its alarm
-- and rev; a device's PUBACK finds its row through outbox_pending.
CREATE TABLE outbox_v6 (
  id             INTEGER PRIMARY KEY,
  alarm_id       TEXT,
  rev            INTEGER,
  recipient_kind TEXT NOT NULL,             -- shop | station | device | upstream
  recipient_id   TEXT NOT NULL,
  command        TEXT,                      -- device rows: buzzer | sounder | display | led
  seq            INTEGER,
  topic          TEXT NOT NULL,
  payload        TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  sent_count     INTEGER NOT NULL DEFAULT 0,
  last_sent_at   INTEGER,
  delivered_at   TEXT,
  delivered_by   TEXT,
  superseded     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO outbox_v6 (id, alarm_id, rev, recipient_kind, recipient_id, topic, payload, created_at, sent_count, last_sent_at, delivered_at, delivered_by, superseded)
  SELECT id, alarm_id, rev, recipient_kind, recipient_id, topic, payload, created_at, sent_count, last_sent_at, delivered_at, delivered_by, superseded FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v6 RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox(recipient_kind, recipient_id) WHERE delivered_at IS NULL AND superseded = 0;
CREATE INDEX outbox_alarm ON outbox(alarm_id, recipient_kind, recipient_id);
-- The last command counter given to each device, so it only increases across restarts whatever
-- becomes of old outbox rows.
CREATE TABLE device_command_seq (
  device_id TEXT PRIMARY KEY REFERENCES devices(id),
  seq       INTEGER NOT NULL
);
`,
  },
  {
    version: 7,
    name: 'faults and maintenance tickets',
    sql: `
-- Every fault, of a device or not (issue 9, "Faults and maintenance tickets"): id is a UUIDv7 like
-- an alarm's, rev 1 when raised and +1 at every change (cleared, ticket assigned, ticket fixed).
-- A device's fault names device_id; a fault without a device names its subject: shop:<id>
-- (pin-lockout), bus:<id> (port-failed), disk:<path> (disk-low), db (db-error). station_id and
-- compound_id are its scope when it has a shop (the consoles it went to); NULL: every station
-- console of the gateway. detail is the kind's own JSON (a counter-reset's old and new boot, a
-- failed self-test's result, a pin-lockout's lockedUntil). cleared_how: recovered (its cause went
-- away), revoked or removed (the device is no longer supervised), reset (the installer's
-- reset-counter). The ticket: open → assigned (assigned_to, by whom, when) → fixed (fixed_by, when,
-- the note); recovered = 1 when it closed itself because the cause recovered.
-- Each change reaches the consoles as outbox rows with recipient_kind 'fault', recipient_id the
-- station (or compound) id, and the fault's id in alarm_id (fault ids and alarm ids are both
-- UUIDv7: no collision), so the outbox's statements and indexes serve them unchanged.
CREATE TABLE faults (
  id           TEXT PRIMARY KEY,
  kind         TEXT NOT NULL,
  device_id    TEXT,
  subject      TEXT,
  shop_id      TEXT,
  station_id   TEXT,
  compound_id  TEXT,
  rev          INTEGER NOT NULL,
  detail       TEXT,
  raised_at    TEXT NOT NULL,
  cleared_at   TEXT,
  cleared_how  TEXT,
  ticket       TEXT NOT NULL DEFAULT 'open',
  assigned_to  TEXT,
  assigned_by  TEXT,
  assigned_at  TEXT,
  fixed_by     TEXT,
  fixed_at     TEXT,
  fix_note     TEXT,
  recovered    INTEGER NOT NULL DEFAULT 0,
  closed_as    TEXT,                        -- recovered | fixed | revoked | removed
  updated_at   TEXT NOT NULL
);
CREATE INDEX faults_open ON faults(kind, device_id, subject) WHERE cleared_at IS NULL;
CREATE INDEX faults_raised ON faults(raised_at);
-- The device faults of migrations 2 and 3 move here as history, with new ids made from their
-- raise time (UUIDv7: 48 bits of ms, version 7, variant 10, random bits). A cleared one was a
-- recovery, but for a counter-reset (the installer's reset-counter, or an MQTT device going on in
-- its new sequence: the old rows do not say which, so both count as fixed by the installer).
INSERT INTO faults (id, kind, device_id, shop_id, station_id, compound_id, rev, detail, raised_at, cleared_at, cleared_how, ticket, fixed_by, fixed_at, recovered, closed_as, updated_at)
  SELECT lower(printf('%08x-%04x-7%03x-%04x-%012x', ms >> 16, ms & 65535, abs(random()) % 4096, 32768 + abs(random()) % 16384, abs(random()) % 281474976710656)),
         f.fault, f.device_id, d.shop_id, s.station_id, s.compound_id, CASE WHEN f.cleared_at IS NULL THEN 1 ELSE 2 END, f.detail, f.raised_at, f.cleared_at,
         CASE WHEN f.cleared_at IS NULL THEN NULL WHEN f.fault = 'counter-reset' THEN 'reset' ELSE 'recovered' END,
         CASE WHEN f.cleared_at IS NULL THEN 'open' ELSE 'fixed' END,
         CASE WHEN f.cleared_at IS NULL THEN NULL WHEN f.fault = 'counter-reset' THEN 'installer' ELSE 'device:' || f.device_id END,
         f.cleared_at, CASE WHEN f.cleared_at IS NULL OR f.fault = 'counter-reset' THEN 0 ELSE 1 END,
         CASE WHEN f.cleared_at IS NULL THEN NULL WHEN f.fault = 'counter-reset' THEN 'fixed' ELSE 'recovered' END, coalesce(f.cleared_at, f.raised_at)
  FROM (SELECT *, CAST(round((julianday(raised_at) - 2440587.5) * 86400000) AS INTEGER) AS ms FROM device_faults) f
  LEFT JOIN devices d ON d.id = f.device_id
  LEFT JOIN shops s ON s.id = d.shop_id
  ORDER BY f.id;
DROP TABLE device_faults;
`,
  },
  {
    version: 8,
    name: 'arming and entry delays',
    sql: `
-- A shop's arming (issue 9 "Door contacts"): armed or not, by whom and how (a keypad, a CLI user,
-- the schedule), and its optional daily schedule, two wall-clock times (HH:MM) in its station's
-- time zone, arm_at then disarm_at (23:00 and 06:00 crosses midnight). A manual change holds until
-- the schedule's next change, which is a row in deadlines (kind schedule). A door opening while
-- armed starts an entry delay: a row in deadlines (kind entry-delay) and, here, the event and the
-- device that started it (the intrusion alarm's origin). No row: disarmed, no schedule.
CREATE TABLE shop_arming (
  shop_id          TEXT PRIMARY KEY REFERENCES shops(id),
  armed            INTEGER NOT NULL DEFAULT 0,
  changed_at       TEXT,
  changed_by       TEXT,
  arm_at           TEXT,
  disarm_at        TEXT,
  entry_event_id   INTEGER,
  entry_device_id  TEXT
);
-- The shop a schedule or entry-delay deadline belongs to.
ALTER TABLE deadlines ADD COLUMN shop_id TEXT REFERENCES shops(id);
`,
  },
  {
    version: 9,
    name: 'retired shops and neighbour rules',
    sql: `
-- A shop is retired, never deleted (issue 10 "shop remove"): its alarms and events stay for the
-- record; a retired shop is no one's neighbour and raises nothing.
ALTER TABLE shops ADD COLUMN retired_at TEXT;
ALTER TABLE shops ADD COLUMN retired_by TEXT;
-- The installer's neighbour rules (\`lianfang neighbours S01 --always S07 | --never S12\`): always puts
-- other_id in shop_id's first ring; never keeps the two apart both ways (a six-lane road between
-- them). One row per ordered pair; a never rule is stored once and read both ways.
CREATE TABLE neighbour_rules (
  shop_id     TEXT NOT NULL REFERENCES shops(id),
  other_id    TEXT NOT NULL REFERENCES shops(id),
  rule        TEXT NOT NULL CHECK (rule IN ('always', 'never')),
  created_at  TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  PRIMARY KEY (shop_id, other_id),
  CHECK (shop_id <> other_id)
);
CREATE INDEX neighbour_rules_other ON neighbour_rules(other_id);
`,
  },
  {
    version: 10,
    name: 'console sessions and shifts',
    sql: `
-- The web console's sessions (issue 11). The cookie holds a random session id; only its keyed hash
-- is stored (as device tokens are), so a copy of the database opens no console. The page's live
-- feed logs in to the broker with a grant derived from the session (never the officer's password);
-- its keyed hash is stored to find the session again. ended_at set: logged out or expired.
CREATE TABLE console_sessions (
  id_hash      TEXT PRIMARY KEY,
  grant_hash   TEXT NOT NULL UNIQUE,
  user_name    TEXT NOT NULL REFERENCES users(name),
  address      TEXT,
  user_agent   TEXT,
  created_at   TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  ended_at     TEXT,
  end_reason   TEXT
);
CREATE INDEX console_sessions_user ON console_sessions(user_name) WHERE ended_at IS NULL;
-- Officers on duty: one row per officer per shift in a scope (a station's or a compound's id).
-- signed_off_at set: the shift is over; handover_note is what the officer left for the next one.
CREATE TABLE shifts (
  id            INTEGER PRIMARY KEY,
  scope_id      TEXT NOT NULL REFERENCES stations(id),
  user_name     TEXT NOT NULL REFERENCES users(name),
  signed_on_at  TEXT NOT NULL,
  signed_off_at TEXT,
  handover_note TEXT,
  handed_to     TEXT
);
CREATE INDEX shifts_on_duty ON shifts(scope_id) WHERE signed_off_at IS NULL;
`,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Bring the database up to LATEST_VERSION. Returns the versions applied. */
export function migrate(db: Database): number[] {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > LATEST_VERSION) throw lfError('LF_ERR_DB_TOO_NEW', current, LATEST_VERSION);
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    try {
      db.transaction(() => {
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    } catch (err) {
      throw lfError('LF_ERR_MIGRATION', `${m.version} (${m.name})`, (err as Error).message);
    }
    applied.push(m.version);
  }
  return applied;
}
