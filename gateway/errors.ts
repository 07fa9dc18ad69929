/**
 * Every error the gateway reports has a stable code, a message template and a one-line remedy,
 * in this one module (after Fastify's lib/errors.js). The CLI prints the code and the remedy;
 * the MQTT boundary answers a refused console action with the code on the station's errors topic;
 * a refused device message is counted under its code. README.md lists the same codes, and a test
 * fails when the two lists disagree.
 */

export interface ErrorDefinition {
  /** Message template; `%s` placeholders are filled in order. */
  readonly message: string;
  /** What the person who sees it should do next, in one line. */
  readonly remedy: string;
  /** The same in Chinese (the CLI follows LANG): message template with the same `%s` placeholders, and remedy. */
  readonly zh?: { readonly message: string; readonly remedy: string };
}

export const ERRORS = {
  LF_ERR_CONFIG_INVALID: {
    message: 'configuration is invalid: %s',
    remedy: 'fix the field named in the message (see `config/schema` and README "Configuration")',
  },
  LF_ERR_CONFIG_FILE: {
    message: 'cannot read configuration file %s: %s',
    remedy: 'check the path given to --config and that the file is valid JSON',
  },
  LF_ERR_DATA_LOCKED: {
    message: 'data directory %s is in use by another gateway (pid %s)',
    remedy: 'stop the other gateway, or start this one with a different --data directory',
  },
  LF_ERR_DATA_DIR_UNSAFE: {
    message: 'data directory %s is writable by its group or by others (mode %s): check that nobody else changed what is in it, then run `chmod 700 %s`',
    remedy: 'the data directory holds password hashes and the gateway key: make it private to the gateway\'s user (`chmod 700 DIR`); the files in it are tightened to 0600 at the next start',
  },
  LF_ERR_SOCKET_PATH_TOO_LONG: {
    message: 'admin socket path %s is %s bytes; a Unix socket path is limited to 107',
    remedy: 'use a shorter --data directory path',
  },
  LF_ERR_GATEWAY_NOT_RUNNING: {
    message: 'no gateway is running on data directory %s',
    remedy: 'start it with `lianfang start --data DIR`, or point --data at the running one',
  },
  LF_ERR_ADMIN_REQUEST: {
    message: 'the running gateway refused the admin request: %s',
    remedy: 'see the gateway log for details',
  },
  LF_ERR_INVALID_ARGUMENT: {
    message: 'invalid %s: %s',
    remedy: 'see `lianfang <command> --help` for the accepted values',
  },
  LF_ERR_NOT_FOUND: {
    message: '%s %s does not exist',
    remedy: 'list what exists with the matching `list` command',
  },
  LF_ERR_ALREADY_EXISTS: {
    message: '%s %s already exists',
    remedy: 'choose another id, or list what exists with the matching `list` command',
  },
  LF_ERR_BAD_SINCE: {
    message: 'invalid --since %s: %s',
    remedy: 'give a duration back from now (7d, 30d, 12h) or an ISO date (2026-11-01 or 2026-11-01T08:00:00Z) not in the future',
  },
  LF_ERR_MIGRATION: {
    message: 'database migration %s failed: %s',
    remedy: 'restore the database from a backup and report the message; the database was left unchanged',
  },
  LF_ERR_DB_TOO_NEW: {
    message: 'database schema version %s is newer than this gateway understands (%s)',
    remedy: 'run a gateway at least as new as the one that last wrote this data directory',
  },
  LF_ERR_BACKUP_INVALID: {
    message: 'backup %s cannot be used: %s',
    remedy: 'name a file written by `lianfang backup`, whole and unchanged, and a gateway at least as new as the one that wrote it',
    zh: { message: '备份 %s 无法使用：%s', remedy: '请指定由 `lianfang backup` 生成且未被改动的完整文件，并使用不低于生成该备份的网关版本' },
  },
  LF_ERR_KEY_MISMATCH: {
    message: 'gateway key %s does not belong to backup %s (key fingerprint %s, the backup was made under %s)',
    remedy: 'give the key saved with the backup (`lianfang restore FILE --key KEYFILE`); without it the backup\'s device tokens and PINs cannot be checked',
    zh: { message: '网关密钥 %s 与备份 %s 不匹配（密钥指纹 %s，备份所用密钥指纹 %s）', remedy: '请提供与备份一同保存的密钥（`lianfang restore FILE --key KEYFILE`）；否则备份中的设备令牌和 PIN 无法校验' },
  },
  // Refusals at the MQTT boundary.
  LF_ERR_BAD_JSON: {
    message: 'payload is not valid UTF-8 JSON',
    remedy: 'send one JSON object per message, UTF-8 encoded',
  },
  LF_ERR_BAD_PAYLOAD: {
    message: 'payload does not match the %s schema: %s',
    remedy: 'see firmware-contracts/mqtt for the payload schema of this topic',
  },
  LF_ERR_DUPLICATE: {
    message: 'duplicate event (boot %s, seq %s) from device %s',
    remedy: 'none: a repeated event is acknowledged and dropped by design',
  },
  LF_ERR_FLOOD: {
    message: 'device %s sends routine events faster than %s per minute',
    remedy: 'find why the device repeats itself (a loose door contact, a firmware loop); its keypad and panic events still pass, the excess is acknowledged and dropped',
  },
  LF_ERR_FORBIDDEN_TOPIC: {
    message: '%s may not %s on %s',
    remedy: 'a device publishes only under its own devices/{id}/ topics; a console acts only for its station',
  },
  LF_ERR_PACKET_TOO_LARGE: {
    message: 'MQTT packet of %s bytes exceeds the maximum of %s',
    remedy: 'keep payloads small; raise mqtt.maxPacketBytes only if a device really needs it',
  },
  LF_ERR_BAD_CREDENTIALS: {
    message: 'bad username or password',
    remedy: 'use the credentials printed by `lianfang device add` or set by `lianfang user add`',
  },
  LF_ERR_BAD_CLIENT_ID: {
    message: 'client id %s refused: %s',
    remedy: 'a device connects with its username as client id, a person with their username or `username:anything`; ids must not contain + # /',
  },
  LF_ERR_LOGIN_THROTTLED: {
    message: 'too many login attempts from %s at once; refused without checking',
    remedy: 'wait for the pending logins from that address to be answered; check the credentials configured on the devices and consoles there',
  },
  LF_ERR_TOO_MANY_CONNECTIONS: {
    message: 'connection from %s refused: %s',
    remedy: 'too many sockets are open or not yet logged in (from this address); find what holds idle connections there, or raise mqtt.maxPendingPerAddress / mqtt.maxPendingConnections / mqtt.maxConnections',
  },
  // Maintenance tickets (`lianfang fault …`).
  LF_ERR_FAULT_ACTIVE: {
    message: 'fault %s (%s) still holds: its cause has not gone away',
    remedy: 'repair the cause first (the ticket closes itself when the device recovers), or pass --force to record it fixed anyway',
  },
  LF_ERR_TICKET_CLOSED: {
    message: 'the ticket of fault %s is already closed (%s)',
    remedy: 'list the open ones with `lianfang fault list --open`',
  },
  LF_ERR_AMBIGUOUS_ID: {
    message: '%s %s matches more than one: %s',
    remedy: 'give more characters of the id',
  },
  // Refusals of console actions (answered on stations/{id}/errors).
  LF_ERR_BAD_TRANSITION: {
    message: 'action %s is not allowed on alarm %s in state %s',
    remedy: 'refresh the console: the alarm has moved on',
  },
  LF_ERR_UNKNOWN_ALARM: {
    message: 'alarm %s is unknown to this station',
    remedy: 'refresh the console: the alarm id is wrong or belongs to another station',
  },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

/** Fill `%s` placeholders in order. */
function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : '%s'));
}

/** An error with a stable `LF_ERR_…` code and a remedy. */
export class LianfangError extends Error {
  readonly code: ErrorCode;
  readonly remedy: string;

  constructor(code: ErrorCode, ...args: unknown[]) {
    const def: ErrorDefinition = ERRORS[code];
    super(format(def.message, args));
    this.name = 'LianfangError';
    this.code = code;
    this.remedy = def.remedy;
  }
}

export function lfError(code: ErrorCode, ...args: unknown[]): LianfangError {
  return new LianfangError(code, ...args);
}

export function isLianfangError(err: unknown): err is LianfangError {
  return err instanceof LianfangError;
}
