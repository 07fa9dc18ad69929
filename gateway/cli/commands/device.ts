/** `lianfang device`. */
import { type Command, Option } from 'commander';
import { loadOrCreateGatewayKey } from '../../secrets.js';
import { addDevice, DEVICE_TYPES, listDevices, revokeDevice, rotateDevice, TRANSPORTS, type Device, type DeviceInput, type IssuedDevice } from '../../registry/registry.js';
import { describeBus, PARITIES } from '../../registry/buses.js';
import { adminRequest } from '../../admin/channel.js';
import { lfError } from '../../errors.js';
import { note, printJson, printRecords } from '../output.js';
import { getDevice, getShop } from '../../registry/registry.js';
import { resetDeviceCounter, type CounterResetDone } from '../../ingest/sequence.js';
import { lastWalkTests } from '../../alarm/test-mode.js';
import { cliActor, dataOption, definedOnly, gatewayNote, int, jsonOption, list, notifyGateway, withDb } from '../common.js';
import { lastSeenByDevice, newer, openFaultsByDevice, type LiveDeviceStatus } from '../../registry/device-status.js';
import { openCredentialsFile } from '../credentials-file.js';
import { tr } from '../../i18n.js';
import type { Db } from '../../store/db.js';

export function registerDevice(program: Command): void {
  const device = program.command('device').description('keypads, panic buttons and I/O modules');
  device
    .command('add')
    .description('register a device and issue its credentials (printed once: the gateway keeps only a keyed hash or, for a MAC key, an encrypted copy)')
    .requiredOption('--shop <shopId>', 'the shop it belongs to')
    .addOption(new Option('--type <type>', 'device type').choices([...DEVICE_TYPES]).makeOptionMandatory())
    .addOption(new Option('--transport <transport>', 'how it reaches the gateway').choices([...TRANSPORTS]).default('mqtt'))
    .option('--id <id>', 'device id (default: <shop>.<type>.<random>)')
    .option('--port <path>', 'serial, modbus-rtu: the serial port of its bus, e.g. /dev/ttyUSB0')
    .option('--baud <n>', 'serial, modbus-rtu: line speed when the bus is new (default 9600 for keypads, 19200 for Modbus)', int('--baud', 1200, 921600))
    .addOption(new Option('--parity <parity>', 'serial, modbus-rtu: parity when the bus is new (default none)').choices([...PARITIES]))
    .option('--host <host>', 'modbus-tcp: the module\'s (or gateway\'s) address')
    .option('--tcp-port <n>', 'modbus-tcp: its TCP port (502 on most modules)', int('--tcp-port', 1, 65535))
    .option('--bus-address <n>', 'wired: the keypad\'s address on the line, or the module\'s Modbus unit id (1–247)', int('--bus-address', 1, 247))
    .option('--bus <busId>', 'wired: name of the bus (default: from the port, e.g. ttyUSB0)')
    .option('--model <model>', 'modbus: the module\'s register map: generic-8io (the default; its door is a live input) or door-latch-8io (its door latches both edges)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Examples:
  $ lianfang device add --shop S01 --type keypad --transport mqtt --json
  → {"deviceId": "S01.keypad.a1b2c3", "username": "S01.keypad.a1b2c3", "password": "…"}
  The device connects with username = client id = deviceId.
  $ lianfang device add --shop S01 --type keypad --transport serial --port /dev/ttyUSB0 --bus-address 3 --json
  → {"deviceId": "S01.keypad.d4e5f6", "macKey": "…64 hex digits…", "bus": "ttyUSB0", …}
  Load the MAC key into the keypad; it is not shown again.
  $ lianfang device add --shop S01 --type io-module --transport modbus-rtu --port /dev/ttyUSB1 --bus-address 7
  $ lianfang device add --shop S01 --type io-module --transport modbus-tcp --host 10.0.0.7 --tcp-port 502 --bus-address 1
A running gateway opens a new bus and polls a new device at once.`,
    )
    .action(
      async (o: {
        shop: string;
        type: (typeof DEVICE_TYPES)[number];
        transport: (typeof TRANSPORTS)[number];
        id?: string;
        port?: string;
        baud?: number;
        parity?: (typeof PARITIES)[number];
        host?: string;
        tcpPort?: number;
        busAddress?: number;
        bus?: string;
        model?: string;
        data: string;
        json?: boolean;
      }) => {
        const key = loadOrCreateGatewayKey(o.data);
        const input = definedOnly({
          shopId: o.shop,
          type: o.type,
          transport: o.transport,
          id: o.id,
          busId: o.bus,
          port: o.port,
          baud: o.baud,
          parity: o.parity,
          host: o.host,
          tcpPort: o.tcpPort,
          busAddress: o.busAddress,
          model: o.model,
        }) as DeviceInput;
        const issued = withDb(o.data, (db) => addDevice(db, key, input));
        printIssued(issued, !!o.json, tr(`device ${issued.device.id} added to shop ${issued.device.shopId}`, `设备 ${issued.device.id} 已添加到商户 ${issued.device.shopId}`));
        await notifyGateway(o.data);
      },
    );
  device
    .command('list')
    .description(
      tr(
        'list devices (never their secrets): online now (asked of the running gateway; - when none runs), last seen, when each last passed a walk test (`test walk`), open faults',
        '列出设备（不显示密钥）：当前是否在线（询问运行中的网关；网关未运行时显示 -）、最后联系时间、最近一次通过巡检测试（`test walk`）的时间、未结故障数'
      ),
    )
    .option('--shop <shopId>', 'only the devices of this shop')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', tr('\nExample:\n  $ lianfang device list --shop S01 --json', '\n示例：\n  $ lianfang device list --shop S01 --json'))
    .action(async (o: { shop?: string; data: string; json?: boolean }) => {
      const live = await liveStatus(o.data);
      const { devices, tested, seen, faults } = withDb(o.data, (db) => ({
        devices: listDevices(db, o.shop),
        tested: lastWalkTests(db),
        seen: lastSeenByDevice(db),
        faults: openFaultsByDevice(db),
      }));
      const rows = devices.map((d) => ({
        deviceId: d.id,
        shopId: d.shopId,
        type: d.type,
        transport: d.transport,
        bus: d.bus,
        busAddress: d.busAddress,
        revoked: d.revokedAt !== null,
        createdAt: d.createdAt,
        // Online: null when no gateway runs to say (shown as '-').
        online: live ? (live[d.id]?.online ?? false) : null,
        // Heard by the running gateway (a heartbeat, a poll answered) or its newest stored event.
        lastSeen: newer(live?.[d.id]?.lastSeen, seen.get(d.id)),
        // The newest walk-test pass (`lianfang test walk`), or null when it never passed one.
        lastTested: tested.get(d.id) ?? null,
        openFaults: faults.get(d.id) ?? 0,
      }));
      const shown = o.json ? rows : rows.map((r) => ({ ...r, online: r.online === null ? '-' : r.online ? tr('yes', '是') : tr('no', '否') }));
      printRecords(!!o.json, shown, {
        deviceId: tr('DEVICE', '设备'),
        shopId: tr('SHOP', '商户'),
        type: tr('TYPE', '类型'),
        transport: tr('TRANSPORT', '接入方式'),
        bus: tr('BUS', '总线'),
        busAddress: tr('ADDR', '地址'),
        revoked: tr('REVOKED', '已吊销'),
        createdAt: tr('CREATED', '创建时间'),
        online: tr('ONLINE', '在线'),
        lastSeen: tr('LAST SEEN', '最后联系'),
        lastTested: tr('LAST TESTED', '上次测试'),
        openFaults: tr('OPEN FAULTS', '未结故障'),
      });
    });
  device
    .command('revoke <deviceId>')
    .description('revoke a device: it is disconnected at once and can no longer log in')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang device revoke S01.keypad.a1b2c3')
    .action(async (deviceId: string, o: { data: string; json?: boolean }) => {
      const d = withDb(o.data, (db) => revokeDevice(db, deviceId));
      if (o.json) printJson({ deviceId: d.id, revokedAt: d.revokedAt });
      else process.stdout.write(tr(`device ${d.id} revoked\n`, `设备 ${d.id} 已吊销\n`));
      await notifyGateway(o.data, { op: 'revoke', deviceIds: [deviceId] });
    });
  device
    .command('rotate [deviceId]')
    .description(
      tr(
        'issue a device new credentials (an MQTT password, a serial keypad\'s MAC key): the old ones stop working at once and its live session is dropped',
        '为设备签发新凭据（MQTT 密码，或串口键盘的 MAC 密钥）：旧凭据立即失效，其在线会话被断开'
      ),
    )
    .option('--all', tr('every device that is not revoked (MQTT devices; serial keypads too with --include-wired)', '所有未吊销的设备（MQTT 设备；加 --include-wired 时包括串口键盘）'))
    .option('--credentials <file>', tr('with --all: the new CSV file (mode 0600, never overwritten) the new credentials go to; they are never printed', '与 --all 同用：写入新凭据的新 CSV 文件（权限 0600，绝不覆盖）；凭据不会打印出来'))
    .option('--include-wired', tr('with --all: serial keypads too; a re-keyed keypad is dead until its new MAC key is loaded into it', '与 --all 同用：也包括串口键盘；换了密钥的键盘在装入新 MAC 密钥之前无法工作'))
    .option('--shop <shopId>', tr('with --all: only the devices of this shop', '与 --all 同用：只处理该商铺的设备'))
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      tr(
        `
Examples:
  $ lianfang device rotate S01.keypad.a1b2c3 --json
  → {"deviceId": "S01.keypad.a1b2c3", "username": "S01.keypad.a1b2c3", "password": "…"}
  The new password is shown once; give it to the device. A serial keypad gets a new MAC key instead.
  $ lianfang device rotate --all --credentials new-creds.csv
  Every MQTT device's new password goes to new-creds.csv (mode 0600), never to the terminal.
  $ lianfang device rotate --all --include-wired --shop S01 --credentials s01.csv
  Serial keypads too: each is dead until its new MAC key (in s01.csv) is loaded into it.
Modbus modules have no credentials to rotate.`,
        `
示例：
  $ lianfang device rotate S01.keypad.a1b2c3 --json
  → {"deviceId": "S01.keypad.a1b2c3", "username": "S01.keypad.a1b2c3", "password": "…"}
  新密码只显示一次，请配置到设备中。串口键盘得到的是新的 MAC 密钥。
  $ lianfang device rotate --all --credentials new-creds.csv
  所有 MQTT 设备的新密码写入 new-creds.csv（权限 0600），不会显示在终端上。
  $ lianfang device rotate --all --include-wired --shop S01 --credentials s01.csv
  也包括串口键盘：每个键盘在装入新的 MAC 密钥（见 s01.csv）之前无法工作。
Modbus 模块没有可更换的凭据。`
      ),
    )
    .action(async (deviceId: string | undefined, o: { all?: boolean; credentials?: string; includeWired?: boolean; shop?: string; data: string; json?: boolean }) => {
      if (o.all) return rotateAll(deviceId, o);
      if (!deviceId) throw lfError('LF_ERR_INVALID_ARGUMENT', 'device', tr('name the device to rotate, or give --all', '请给出要更换凭据的设备，或使用 --all'));
      const misplaced = (['credentials', 'includeWired', 'shop'] as const).find((k) => o[k] !== undefined);
      if (misplaced) throw lfError('LF_ERR_INVALID_ARGUMENT', `--${misplaced === 'includeWired' ? 'include-wired' : misplaced}`, tr('only with --all', '只能与 --all 同用'));
      const key = loadOrCreateGatewayKey(o.data);
      const issued = withDb(o.data, (db) => rotateDevice(db, key, deviceId));
      printIssued(issued, !!o.json, tr(`device ${issued.device.id}: new credentials issued; the old ones no longer work`, `设备 ${issued.device.id}：已签发新凭据，旧凭据已失效`));
      await notifyGateway(o.data, { op: 'rotate', deviceIds: [deviceId] });
    });
  device
    .command('reset-counter <deviceId>')
    .description(
      "forget a device's event counter (boot, seq) so its next event is accepted in any sequence, and clear its counter-reset fault " +
        '(a keypad factory-reset or replaced: a serial keypad\'s events are refused until this is run)',
    )
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang device reset-counter S01.keypad.d4e5f6\n  device S01.keypad.d4e5f6: counter reset (it was boot 7, seq 12); its next event is accepted in any sequence')
    .action(async (deviceId: string, o: { data: string; json?: boolean }) => {
      withDb(o.data, (db) => {
        if (!getDevice(db, deviceId)) throw lfError('LF_ERR_NOT_FOUND', 'device', deviceId);
      });
      const who = cliActor();
      // The running gateway holds the counter in memory too: it resets both, in order with the
      // device's events. Without one, the database is all there is.
      const viaGateway = (await adminRequest(o.data, { op: 'reset-counter', deviceId, actor: who })) as CounterResetDone | null;
      const done = viaGateway ?? withDb(o.data, (db) => db.transaction(() => resetDeviceCounter(db, deviceId, who, new Date().toISOString())).immediate());
      if (o.json) printJson({ ...done, gatewayRunning: viaGateway !== null });
      else {
        const boot = done.previous?.boot;
        const seq = done.previous?.seq ?? '-';
        const was = done.previous ? tr(`it was boot ${boot}, seq ${seq}`, `原为 boot ${boot}，seq ${seq}`) : tr('it had no counter yet', '此前尚无计数');
        process.stdout.write(
          tr(`device ${done.deviceId}: counter reset (${was}); its next event is accepted in any sequence\n`, `设备 ${done.deviceId}：计数已重置（${was}）；其下一条事件按任意序号接收\n`) +
            (done.faultsCleared ? tr('  counter-reset fault cleared\n', '  计数重置故障已清除\n') : '') +
            tr(`  audit row written (reset-counter by ${who})\n`, `  已记入审计（reset-counter，操作人 ${who}）\n`),
        );
      }
      gatewayNote(viaGateway !== null);
    });
}

/** A device's credentials as they are shown once (`device add`, `device rotate ID`): JSON, or lines under `headline`. */
function printIssued(issued: IssuedDevice, json: boolean, headline: string): void {
  const d = issued.device;
  const out = issued.bus
    ? { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, bus: issued.bus.id, busAddress: d.busAddress, ...(d.model ? { model: d.model } : {}), ...(issued.macKey ? { macKey: issued.macKey } : {}) }
    : { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, username: issued.username, password: issued.password };
  if (json) printJson(out);
  else if (issued.bus) {
    const bus = `${issued.bus.id} (${describeBus(issued.bus)})`;
    process.stdout.write(
      `${headline}\n` +
        tr(`  bus ${bus}, address ${d.busAddress}\n`, `  总线 ${bus}，地址 ${d.busAddress}\n`) +
        (issued.macKey
          ? tr(`  MAC key: ${issued.macKey}\n  (shown once: load it into the keypad; the gateway keeps it encrypted)\n`, `  MAC 密钥：${issued.macKey}\n  （仅显示一次：请载入键盘；网关只保存其加密副本）\n`)
          : ''),
    );
  } else {
    process.stdout.write(
      `${headline}\n` +
        tr(
          `  MQTT username (and client id): ${issued.username}\n  MQTT password: ${issued.password}\n  (shown once: the gateway stores only a keyed hash of it)\n`,
          `  MQTT 用户名（即客户端 ID）：${issued.username}\n  MQTT 口令：${issued.password}\n  （仅显示一次：网关只保存其带密钥的哈希）\n`,
        ),
    );
  }
}

/** The devices `rotate --all` re-keys: not revoked, MQTT, and serial keypads only when asked (they are dead until re-loaded). */
function rotatable(db: Db, shopId: string | undefined, includeWired: boolean): Device[] {
  return listDevices(db, shopId).filter((d) => !d.revokedAt && (d.transport === 'mqtt' || (includeWired && d.transport === 'serial')));
}

/**
 * `device rotate --all`: every new credential goes to the installer's new file, never the terminal.
 * One transaction: the file is written and closed before the commit, so a failure leaves the old
 * credentials working (and no file), never new ones that nobody has.
 */
async function rotateAll(deviceId: string | undefined, o: { credentials?: string; includeWired?: boolean; shop?: string; data: string; json?: boolean }): Promise<void> {
  if (deviceId) throw lfError('LF_ERR_INVALID_ARGUMENT', '--all', tr(`give a device id or --all, not both (${deviceId})`, `设备编号与 --all 只能给出其一（${deviceId}）`));
  if (!o.credentials) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--credentials', tr('rotate --all writes the new credentials to a file, never to the terminal: give --credentials OUT.csv', 'rotate --all 把新凭据写入文件，绝不显示在终端上：请给出 --credentials OUT.csv'));
  }
  const file = o.credentials;
  const key = loadOrCreateGatewayKey(o.data);
  const rotated = withDb(o.data, (db) => {
    if (o.shop && !getShop(db, o.shop)) throw lfError('LF_ERR_NOT_FOUND', 'shop', o.shop);
    const out = openCredentialsFile(file);
    try {
      return db.transaction(() => {
        const ids: string[] = [];
        for (const d of rotatable(db, o.shop, !!o.includeWired)) {
          const issued = rotateDevice(db, key, d.id);
          out.write({ shopId: d.shopId, deviceId: d.id, transport: d.transport, username: issued.username ?? undefined, password: issued.password ?? undefined, macKey: issued.macKey ?? undefined });
          ids.push(d.id);
        }
        out.close();
        return ids;
      }).immediate();
    } catch (err) {
      out.discard();
      throw err;
    }
  });
  if (o.json) printJson({ rotated: rotated.length, credentials: file, deviceIds: rotated });
  else process.stdout.write(tr(`${rotated.length} devices issued new credentials, written to ${file} (mode 0600)\n`, `已为 ${rotated.length} 台设备签发新凭据，已写入 ${file}（权限 0600）\n`));
  if (rotated.length) await notifyGateway(o.data, { op: 'rotate', deviceIds: rotated });
}

/** What the running gateway says of each device now; null when none runs (or it cannot say). */
async function liveStatus(dataDir: string): Promise<Record<string, LiveDeviceStatus> | null> {
  try {
    const r = (await adminRequest(dataDir, { op: 'device-status' })) as { devices: Record<string, LiveDeviceStatus> } | null;
    return r?.devices ?? null;
  } catch (err) {
    note(tr(`(the running gateway did not say which devices are online: ${(err as Error).message})`, `（运行中的网关未能答复设备在线情况：${(err as Error).message}）`));
    return null;
  }
}
