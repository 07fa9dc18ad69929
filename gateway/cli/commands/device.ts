/** `lianfang device`. */
import { type Command, Option } from 'commander';
import { loadOrCreateGatewayKey } from '../../secrets.js';
import { addDevice, DEVICE_TYPES, listDevices, revokeDevice, TRANSPORTS, type DeviceInput } from '../../registry/registry.js';
import { describeBus, PARITIES } from '../../registry/buses.js';
import { adminRequest } from '../../admin/channel.js';
import { lfError } from '../../errors.js';
import { note, printJson, printRecords } from '../output.js';
import { getDevice } from '../../registry/registry.js';
import { resetDeviceCounter, type CounterResetDone } from '../../ingest/sequence.js';
import { lastWalkTests } from '../../alarm/test-mode.js';
import { cliActor, dataOption, definedOnly, int, jsonOption, list, notifyGateway, withDb } from '../common.js';

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
        const d = issued.device;
        const out = issued.bus
          ? { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, bus: issued.bus.id, busAddress: d.busAddress, ...(d.model ? { model: d.model } : {}), ...(issued.macKey ? { macKey: issued.macKey } : {}) }
          : { deviceId: d.id, shopId: d.shopId, type: d.type, transport: d.transport, username: issued.username, password: issued.password };
        if (o.json) printJson(out);
        else if (issued.bus) {
          process.stdout.write(
            `device ${d.id} added to shop ${d.shopId}\n  bus ${issued.bus.id} (${describeBus(issued.bus)}), address ${d.busAddress}\n` +
              (issued.macKey ? `  MAC key: ${issued.macKey}\n  (shown once: load it into the keypad; the gateway keeps it encrypted)\n` : ''),
          );
        } else {
          process.stdout.write(
            `device ${d.id} added to shop ${d.shopId}\n  MQTT username (and client id): ${issued.username}\n  MQTT password: ${issued.password}\n` +
              `  (shown once: the gateway stores only a keyed hash of it)\n`,
          );
        }
        await notifyGateway(o.data);
      },
    );
  device
    .command('list')
    .description('list devices (never their secrets), with when each last passed a walk test (`test walk`)')
    .option('--shop <shopId>', 'only the devices of this shop')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { shop?: string; data: string; json?: boolean }) => {
      const { devices, tested } = withDb(o.data, (db) => ({ devices: listDevices(db, o.shop), tested: lastWalkTests(db) }));
      const rows = devices.map((d) => ({
        deviceId: d.id,
        shopId: d.shopId,
        type: d.type,
        transport: d.transport,
        bus: d.bus,
        busAddress: d.busAddress,
        revoked: d.revokedAt !== null,
        createdAt: d.createdAt,
        // The newest walk-test pass (`lianfang test walk`), or null when it never passed one.
        lastTested: tested.get(d.id) ?? null,
      }));
      printRecords(!!o.json, rows, {
        deviceId: 'DEVICE',
        shopId: 'SHOP',
        type: 'TYPE',
        transport: 'TRANSPORT',
        bus: 'BUS',
        busAddress: 'ADDR',
        revoked: 'REVOKED',
        createdAt: 'CREATED',
        lastTested: 'LAST TESTED 上次测试',
      });
    });
  device
    .command('revoke <deviceId>')
    .description('revoke a device: it is disconnected at once and can no longer log in')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(async (deviceId: string, o: { data: string; json?: boolean }) => {
      const d = withDb(o.data, (db) => revokeDevice(db, deviceId));
      if (o.json) printJson({ deviceId: d.id, revokedAt: d.revokedAt });
      else process.stdout.write(`device ${d.id} revoked\n`);
      await notifyGateway(o.data, { op: 'revoke', deviceId });
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
        const was = done.previous ? `it was boot ${done.previous.boot}, seq ${done.previous.seq ?? '-'}` : 'it had no counter yet';
        process.stdout.write(
          `device ${done.deviceId}: counter reset (${was}); its next event is accepted in any sequence\n` +
            (done.faultsCleared ? `  counter-reset fault cleared\n` : '') +
            `  audit row written (reset-counter by ${who})\n`,
        );
      }
      note(viaGateway ? '(the running gateway has taken the change)' : '(no gateway is running on this data directory; it will read the change when it starts)');
    });
}
