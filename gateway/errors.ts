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
  readonly zh: { readonly message: string; readonly remedy: string };
}

export const ERRORS = {
  LF_ERR_CONFIG_INVALID: {
    message: 'configuration is invalid: %s',
    remedy: 'fix the field named in the message (see `config/schema` and README "Configuration")',
    zh: { message: "配置无效：%s", remedy: "修正消息中指出的字段（见 config/schema 与 README“Configuration”）" },
  },
  LF_ERR_CONFIG_FILE: {
    message: 'cannot read configuration file %s: %s',
    remedy: 'check the path given to --config and that the file is valid JSON',
    zh: { message: "无法读取配置文件 %s：%s", remedy: "检查 --config 给出的路径，并确认文件是有效的 JSON" },
  },
  LF_ERR_DATA_LOCKED: {
    message: 'data directory %s is in use by another gateway (pid %s)',
    remedy: 'stop the other gateway, or start this one with a different --data directory',
    zh: { message: "数据目录 %s 正被另一个网关使用（进程 %s）", remedy: "先停止另一个网关，或用另一个 --data 目录启动本网关" },
  },
  LF_ERR_DATA_DIR_UNSAFE: {
    message: 'data directory %s is writable by its group or by others (mode %s): check that nobody else changed what is in it, then run `chmod 700 %s`',
    remedy: 'the data directory holds password hashes and the gateway key: make it private to the gateway\'s user (`chmod 700 DIR`); the files in it are tightened to 0600 at the next start',
    zh: { message: "数据目录 %s 可被同组或其他用户写入（权限 %s）：确认无人改动其中内容后，运行 `chmod 700 %s`", remedy: "数据目录存有口令散列和网关密钥：只允许网关的用户访问（`chmod 700 DIR`）；下次启动时其中文件收紧为 0600" },
  },
  LF_ERR_SOCKET_PATH_TOO_LONG: {
    message: 'admin socket path %s is %s bytes; a Unix socket path is limited to 107',
    remedy: 'use a shorter --data directory path',
    zh: { message: "管理套接字路径 %s 长 %s 字节；Unix 套接字路径最多 107 字节", remedy: "使用更短的 --data 目录路径" },
  },
  LF_ERR_GATEWAY_NOT_RUNNING: {
    message: 'no gateway is running on data directory %s',
    remedy: 'start it with `lianfang start --data DIR`, or point --data at the running one',
    zh: { message: "数据目录 %s 上没有运行中的网关", remedy: "用 `lianfang start --data DIR` 启动，或把 --data 指向运行中的网关" },
  },
  LF_ERR_ADMIN_REQUEST: {
    message: 'the running gateway refused the admin request: %s',
    remedy: 'see the gateway log for details',
    zh: { message: "运行中的网关拒绝了管理请求：%s", remedy: "详情见网关日志" },
  },
  LF_ERR_INVALID_ARGUMENT: {
    message: 'invalid %s: %s',
    remedy: 'see `lianfang <command> --help` for the accepted values',
    zh: { message: "%s 无效：%s", remedy: "可接受的值见 `lianfang <命令> --help`" },
  },
  LF_ERR_NOT_FOUND: {
    message: '%s %s does not exist',
    remedy: 'list what exists with the matching `list` command',
    zh: { message: "%s %s 不存在", remedy: "用对应的 `list` 命令查看已有的记录" },
  },
  LF_ERR_ALREADY_EXISTS: {
    message: '%s %s already exists',
    remedy: 'choose another id, or list what exists with the matching `list` command',
    zh: { message: "%s %s 已存在", remedy: "换一个编号，或用对应的 `list` 命令查看已有的记录" },
  },
  LF_ERR_SHOP_RETIRED: {
    message: 'shop %s was retired on %s',
    remedy: 'a retired shop keeps only its record (alarms, events); register the premises again under a new shop id',
    zh: { message: "商铺 %s 已于 %s 注销", remedy: "已注销的商铺只保留记录（报警、事件）；请用新的商铺编号重新登记该商铺" },
  },
  LF_ERR_SHOP_HAS_OPEN_ALARM: {
    message: 'shop %s has an alarm an officer has not closed yet: %s',
    remedy: 'an officer closes it at the station console first; then run `lianfang shop remove` again',
    zh: { message: "商铺 %s 还有未被民警关闭的报警：%s", remedy: "请民警先在接警台关闭该报警，再重新运行 `lianfang shop remove`" },
  },
  LF_ERR_SHOP_HAS_DEVICES: {
    message: 'shop %s still has devices that are not revoked: %s',
    remedy: 'revoke them first (`lianfang device revoke ID`), or give --force to revoke them with the shop',
    zh: { message: "商铺 %s 仍有未吊销的设备：%s", remedy: "先吊销这些设备（`lianfang device revoke ID`），或加 --force 随商铺一并吊销" },
  },
  LF_ERR_BAD_SINCE: {
    message: 'invalid --since %s: %s',
    remedy: 'give a duration back from now (7d, 30d, 12h) or an ISO date (2026-11-01 or 2026-11-01T08:00:00Z) not in the future',
    zh: { message: "--since %s 无效：%s", remedy: "给出从现在往回的时长（7d、30d、12h）或不在将来的 ISO 日期（2026-11-01 或 2026-11-01T08:00:00Z）" },
  },
  LF_ERR_MIGRATION: {
    message: 'database migration %s failed: %s',
    remedy: 'restore the database from a backup and report the message; the database was left unchanged',
    zh: { message: "数据库迁移 %s 失败：%s", remedy: "从备份恢复数据库并报告此消息；数据库未被改动" },
  },
  LF_ERR_DB_TOO_NEW: {
    message: 'database schema version %s is newer than this gateway understands (%s)',
    remedy: 'run a gateway at least as new as the one that last wrote this data directory',
    zh: { message: "数据库结构版本 %s 比本网关支持的版本（%s）新", remedy: "运行不低于最后写入此数据目录的网关版本" },
  },
  LF_ERR_NO_LOG: {
    message: 'there is no gateway log in %s yet',
    remedy: 'the gateway writes it once started on this data directory (`lianfang start --data DIR`) with log.file on; check --data',
    zh: { message: "%s 中还没有网关日志", remedy: "网关在此数据目录上启动后（`lianfang start --data DIR`，且 log.file 开启）才会写日志；请检查 --data" },
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
  LF_ERR_IMPORT_ROWS: {
    message: '%s: %s row(s) with errors (listed above); nothing was imported',
    remedy: 'fix every row listed (line, column, what is wrong) and run the import again; nothing is written until every row is right',
    zh: { message: '%s：%s 行有错误（见上方列表）；未导入任何内容', remedy: '修正列出的每一行（行号、列、错误原因）后重新导入；所有行都正确之前不会写入任何内容' },
  },
  // Refusals at the MQTT boundary.
  LF_ERR_BAD_JSON: {
    message: 'payload is not valid UTF-8 JSON',
    remedy: 'send one JSON object per message, UTF-8 encoded',
    zh: { message: "消息不是有效的 UTF-8 JSON", remedy: "每条消息发送一个 UTF-8 编码的 JSON 对象" },
  },
  LF_ERR_BAD_PAYLOAD: {
    message: 'payload does not match the %s schema: %s',
    remedy: 'see firmware-contracts/mqtt for the payload schema of this topic',
    zh: { message: "消息不符合 %s 的格式：%s", remedy: "此主题的消息格式见 firmware-contracts/mqtt" },
  },
  LF_ERR_DUPLICATE: {
    message: 'duplicate event (boot %s, seq %s) from device %s',
    remedy: 'none: a repeated event is acknowledged and dropped by design',
    zh: { message: "设备 %3$s 的重复事件（boot %1$s，seq %2$s）", remedy: "无需处理：重复事件按设计确认后丢弃" },
  },
  LF_ERR_FLOOD: {
    message: 'device %s sends routine events faster than %s per minute',
    remedy: 'find why the device repeats itself (a loose door contact, a firmware loop); its keypad and panic events still pass, the excess is acknowledged and dropped',
    zh: { message: "设备 %s 发送常规事件超过每分钟 %s 条", remedy: "查明设备为何重复发送（门磁松动、固件循环）；其键盘和紧急按钮事件仍会通过，超出部分确认后丢弃" },
  },
  LF_ERR_FORBIDDEN_TOPIC: {
    message: '%s may not %s on %s',
    remedy: 'a device publishes only under its own devices/{id}/ topics; a console acts only for its station',
    zh: { message: "%s 无权在 %3$s 上 %2$s", remedy: "设备只能在自己的 devices/{id}/ 主题下发布；接警台只能代表本站操作" },
  },
  LF_ERR_PACKET_TOO_LARGE: {
    message: 'MQTT packet of %s bytes exceeds the maximum of %s',
    remedy: 'keep payloads small; raise mqtt.maxPacketBytes only if a device really needs it',
    zh: { message: "MQTT 报文 %s 字节，超过上限 %s", remedy: "保持消息短小；确有需要才调大 mqtt.maxPacketBytes" },
  },
  LF_ERR_BAD_CREDENTIALS: {
    message: 'bad username or password',
    remedy: 'use the credentials printed by `lianfang device add` or set by `lianfang user add`',
    zh: { message: "用户名或口令错误", remedy: "使用 `lianfang device add` 打印或 `lianfang user add` 设置的凭据" },
  },
  LF_ERR_BAD_CLIENT_ID: {
    message: 'client id %s refused: %s',
    remedy: 'a device connects with its username as client id, a person with their username or `username:anything`; ids must not contain + # /',
    zh: { message: "客户端标识 %s 被拒绝：%s", remedy: "设备以用户名作客户端标识，人员以用户名或 `用户名:任意` 登录；标识不得含 + # /" },
  },
  LF_ERR_LOGIN_THROTTLED: {
    message: 'too many login attempts from %s at once; refused without checking',
    remedy: 'wait for the pending logins from that address to be answered; check the credentials configured on the devices and consoles there',
    zh: { message: "来自 %s 的登录尝试同时过多；未经校验即拒绝", remedy: "等待该地址的待处理登录得到答复；检查那里的设备和接警台配置的凭据" },
  },
  LF_ERR_TOO_MANY_CONNECTIONS: {
    message: 'connection from %s refused: %s',
    remedy: 'too many sockets are open or not yet logged in (from this address); find what holds idle connections there, or raise mqtt.maxPendingPerAddress / mqtt.maxPendingConnections / mqtt.maxConnections',
    zh: { message: "来自 %s 的连接被拒绝：%s", remedy: "打开或未登录的套接字过多（来自此地址）：查明谁占着空闲连接，或调大 mqtt.maxPendingPerAddress / mqtt.maxPendingConnections / mqtt.maxConnections" },
  },
  // Maintenance tickets (`lianfang fault …`).
  LF_ERR_FAULT_ACTIVE: {
    message: 'fault %s (%s) still holds: its cause has not gone away',
    remedy: 'repair the cause first (the ticket closes itself when the device recovers), or pass --force to record it fixed anyway',
    zh: { message: "故障 %s（%s）仍然存在：原因尚未消除", remedy: "先排除原因（设备恢复后工单自动关闭），或加 --force 仍记为已修复" },
  },
  LF_ERR_TICKET_CLOSED: {
    message: 'the ticket of fault %s is already closed (%s)',
    remedy: 'list the open ones with `lianfang fault list --open`',
    zh: { message: "故障 %s 的工单已关闭（%s）", remedy: "用 `lianfang fault list --open` 查看未关闭的工单" },
  },
  LF_ERR_AMBIGUOUS_ID: {
    message: '%s %s matches more than one: %s',
    remedy: 'give more characters of the id',
    zh: { message: "%s %s 匹配不止一个：%s", remedy: "多给出几位编号" },
  },
  // Refusals of console actions (answered on stations/{id}/errors).
  LF_ERR_BAD_TRANSITION: {
    message: 'action %s is not allowed on alarm %s in state %s',
    remedy: 'refresh the console: the alarm has moved on',
    zh: { message: "报警 %2$s 处于 %3$s 状态，不允许操作 %1$s", remedy: "刷新接警台：报警状态已变化" },
  },
  LF_ERR_UNKNOWN_ALARM: {
    message: 'alarm %s is unknown to this station',
    remedy: 'refresh the console: the alarm id is wrong or belongs to another station',
    zh: { message: "本站没有报警 %s", remedy: "刷新接警台：报警编号有误或属于其他派出所" },
  },
  LF_ERR_TAKEN: {
    message: 'alarm %s is held by %s',
    remedy: 'leave it to them, or take it over with force (audited as taken from them)',
    zh: { message: "报警 %s 已由 %s 接手", remedy: "交由对方处理，或强制接手（审计记录为从对方接手）" },
  },
  // Refusals of the web console (answered as JSON with an HTTP status).
  LF_ERR_NOT_SIGNED_IN: {
    message: 'not signed in, or the session has ended',
    remedy: 'sign in again on the console\'s login page',
    zh: { message: "未登录，或会话已结束", remedy: "在接警台登录页重新登录" },
  },
  LF_ERR_CSRF: {
    message: 'the request lacks this session\'s CSRF token',
    remedy: 'reload the console page; requests from other sites are refused by design',
    zh: { message: "请求缺少本会话的防伪令牌", remedy: "重新加载接警台页面；来自其他网站的请求按设计被拒绝" },
  },
  LF_ERR_SCOPE: {
    message: '%s may not see %s',
    remedy: 'an officer sees only their station\'s (or compound\'s) shops; ask an admin to change the account\'s station',
    zh: { message: "%s 无权查看 %s", remedy: "民警只能查看本所（或本小区）的商户；如需变更请联系管理员修改账号所属单位" },
  },
  LF_ERR_INTERNAL: {
    message: 'the console request failed inside the gateway (the cause is in its log)',
    remedy: 'try again; if it repeats, send the gateway log (`lianfang logs`) to the maintainer',
    zh: { message: "接警台请求在网关内部失败（原因见网关日志）", remedy: "重试；如反复出现，请把网关日志（`lianfang logs`）发给维护人员" },
  },
  LF_ERR_NOT_ON_DUTY: {
    message: '%s is not signed on to a shift in %s',
    remedy: 'sign on to the shift first',
    zh: { message: "%s 未在 %s 签到值班", remedy: "先签到值班" },
  },
  // Embedded Node-RED (docs/node-red.md).
  LF_ERR_NODE_RED_DOWN: {
    message: 'Node-RED is not running (it is starting, restarting, or switched off by nodeRed.enabled)',
    remedy: 'wait a few seconds and reload; if it persists, see the node-red-down fault and `lianfang logs`',
    zh: { message: "Node-RED 未运行（正在启动、重启，或已由 nodeRed.enabled 关闭）", remedy: "稍等几秒后刷新；如持续出现，请查看 node-red-down 故障和 `lianfang logs`" },
  },
  LF_ERR_EDITOR_LOCAL: {
    message: 'the Node-RED editor is open to this machine only (nodeRed.editor "local")',
    remedy: 'open it on the gateway itself (an SSH tunnel to port 8080 will do), or set nodeRed.editor to "network"',
    zh: { message: "Node-RED 编辑器仅允许本机访问（nodeRed.editor 为 \"local\"）", remedy: "在网关本机打开（可用 SSH 隧道转发 8080 端口），或将 nodeRed.editor 设为 \"network\"" },
  },
  LF_ERR_DURESS_SILENT: {
    message: 'shop %s has an open duress alarm: nothing may sound or show there',
    remedy: 'a siren or a display would betray the shopkeeper to the robber; the command waits for a person to close the alarm',
    zh: { message: "商户 %s 有未结束的胁迫报警：该处不得发声或显示", remedy: "警笛或显示会向劫匪暴露店主；须待民警结束报警后再发送" },
  },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

/** Fill `%s` placeholders in order, and `%2$s` by position (a translation may reorder them). */
function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%(?:(\d)\$)?s/g, (whole, pos?: string) => {
    const k = pos ? Number(pos) - 1 : i++;
    return k < args.length ? String(args[k]) : whole;
  });
}

/** An error with a stable `LF_ERR_…` code and a remedy. */
export class LianfangError extends Error {
  readonly code: ErrorCode;
  readonly remedy: string;
  /** The message and remedy in Chinese, for a person whose LANG is zh (logs stay in English). */
  readonly zh: { readonly message: string; readonly remedy: string };

  constructor(code: ErrorCode, ...args: unknown[]) {
    const def: ErrorDefinition = ERRORS[code];
    super(format(def.message, args));
    this.name = 'LianfangError';
    this.code = code;
    this.remedy = def.remedy;
    this.zh = { message: format(def.zh.message, args), remedy: def.zh.remedy };
  }
}

export function lfError(code: ErrorCode, ...args: unknown[]): LianfangError {
  return new LianfangError(code, ...args);
}

export function isLianfangError(err: unknown): err is LianfangError {
  return err instanceof LianfangError;
}
