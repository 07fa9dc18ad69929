/** `lianfang simulate`. */
import { type Command, Option } from 'commander';
import { type Db } from '../../store/db.js';
import { decryptSecret, loadOrCreateGatewayKey } from '../../secrets.js';
import { listDevices } from '../../registry/registry.js';
import { listBuses } from '../../registry/buses.js';
import { lfError } from '../../errors.js';
import { dataOption, int, list, withDb } from '../common.js';

/** `--keypad 3:<64 hex digits>` → a simulated keypad's address and key. */
function parseKeypadArg(v: string): { address: number; key: Buffer } {
  const m = /^(\d{1,3}):([0-9a-fA-F]{64})$/.exec(v);
  const address = m ? Number(m[1]) : NaN;
  if (!m || address < 1 || address > 247) throw lfError('LF_ERR_INVALID_ARGUMENT', '--keypad', 'address:key, e.g. 3:<the 64 hex digits device add printed>');
  return { address, key: Buffer.from(m[2]!, 'hex') };
}

/** The keypads registered on a bus, with their MAC keys decrypted (for a simulator on the gateway's machine). */
function keypadsOnBus(db: Db, gatewayKey: Buffer, busId: string): { address: number; key: Buffer }[] {
  if (!listBuses(db).some((b) => b.id === busId)) throw lfError('LF_ERR_NOT_FOUND', 'bus', busId);
  return listDevices(db)
    .filter((d) => d.bus === busId && !d.revokedAt && d.transport === 'serial' && d.macKeyEnc)
    .map((d) => ({ address: d.busAddress!, key: decryptSecret(gatewayKey, d.macKeyEnc!) }));
}

export function registerSimulate(program: Command): void {
  const simulate = program.command('simulate').description('simulated devices on the real wire');
  simulate
    .command('street')
    .description('create (or reuse) a demo street with a station, shops, keypads and an officer, and run it against a gateway')
    .option('--shops <n>', 'number of shops', int('--shops', 11, 500), 30)
    .option('--mqtt-url <url>', 'the gateway\'s MQTT address', 'mqtt://127.0.0.1:1883')
    .option('--interval-ms <ms>', 'time between simulated alarms', int('--interval-ms', 200, 3_600_000), 10_000)
    .option('--count <n>', 'stop after this many alarms (0 = run until Ctrl-C)', int('--count', 0, 1_000_000), 0)
    .addOption(new Option('--wire <wire>', 'keypads on MQTT, or on a simulated RS-485 line (a pty pair under the data directory)').choices(['mqtt', 'serial']).default('mqtt'))
    .addOption(dataOption())
    .addHelpText('after', '\nExamples (with `lianfang start` running on ./data):\n  $ lianfang simulate street --shops 30 --data ./data\n  $ lianfang simulate street --shops 30 --wire serial --data ./data')
    .action(async (o: { shops: number; mqttUrl: string; intervalMs: number; count: number; wire: 'mqtt' | 'serial'; data: string }) => {
      const { runStreet } = await import('../../../simulators/street.js');
      const { provisionDemoStreet } = await import('../demo-street.js');
      const { createLogger } = await import('../../logger.js');
      await provisionDemoStreet(o.data, o.shops, o.wire);
      const street = await runStreet({
        dataDir: o.data,
        mqttUrl: o.mqttUrl,
        intervalMs: o.intervalMs,
        count: o.count,
        wire: o.wire,
        log: createLogger(process.env.LF_LOG_LEVEL ?? 'info').child({ module: 'street' }),
      });
      const stop = async () => {
        await street.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
      await street.done;
      await street.stop();
    });

  simulate
    .command('keypad')
    .description('serial keypads on one RS-485 line (one end of a pty pair, or a real port): answer polls, show what the gateway sends; type "3 9#" to press keys')
    .requiredOption('--port <path>', 'the line\'s serial device (the keypad end)')
    .option('--baud <n>', 'line speed', int('--baud', 1200, 921600), 9600)
    .option('--keypad <address:key>', 'a keypad: bus address and its MAC key in hex (as `device add --transport serial` printed it); repeatable', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--bus <busId>', 'instead of --keypad: serve every keypad registered on this bus, keys read from the data directory (a demo on the gateway\'s own machine)')
    .option('--turnaround-ms <ms>', 'time from a request\'s last byte to the answer', int('--turnaround-ms', 0, 1000), 2)
    .addOption(dataOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang simulate keypad --port /dev/pts/7 --keypad 3:9f2c…e1\n  $ lianfang simulate keypad --port /tmp/line/b --bus line --data ./data\n  then type:  3 9#     (keypad 3 presses 9 and #)')
    .action(async (o: { port: string; baud: number; keypad: string[]; bus?: string; turnaroundMs: number; data: string }) => {
      const keypads = o.bus ? withDb(o.data, (db) => keypadsOnBus(db, loadOrCreateGatewayKey(o.data), o.bus!)) : o.keypad.map(parseKeypadArg);
      if (keypads.length === 0) throw lfError('LF_ERR_INVALID_ARGUMENT', '--keypad', 'give at least one keypad (--keypad 3:<key>) or --bus');
      const { runSerialKeypadSim } = await import('../../../simulators/serial-keypad.js');
      const sim = await runSerialKeypadSim({ path: o.port, baud: o.baud, keypads, turnaroundMs: o.turnaroundMs }, (line) => process.stdout.write(line + '\n'));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        sim.once('closed', resolve);
      });
      await sim.close();
    });
  simulate
    .command('modbus')
    .description('Modbus I/O modules (generic 8-in/8-out): an RTU slave on a serial line or pty, or a TCP slave; type "pulse 3 0 50" to press unit 3\'s panic button for 50 ms')
    .addOption(new Option('--transport <t>', 'rtu or tcp').choices(['rtu', 'tcp']).default('rtu'))
    .option('--port <path>', 'rtu: the serial device (the module end); without it a pty pair is opened and the gateway\'s end printed')
    .option('--baud <n>', 'rtu: line speed', int('--baud', 1200, 921600), 19200)
    .option('--turnaround-ms <ms>', 'rtu: time from a request\'s last byte to the answer', int('--turnaround-ms', 0, 1000), 5)
    .option('--host <host>', 'tcp: address to listen on', '127.0.0.1')
    .option('--tcp-port <n>', 'tcp: port (0 = a free one, printed)', int('--tcp-port', 0, 65535), 0)
    .option('--units <ids>', 'unit ids served, e.g. 1,2,3', (v: string) => list(v).map((x) => int('--units', 1, 247)(x)), [1])
    .option('--model <model>', 'register map: a built-in name or a JSON file', 'generic-8io')
    .addHelpText('after', '\nExamples:\n  $ lianfang simulate modbus --transport rtu --port /tmp/line/b --units 1,2\n  $ lianfang simulate modbus --transport tcp --tcp-port 1502 --units 1\n  then type:  pulse 1 0 50   |   set 1 1 1   |   fault 2 silent   |   status')
    .action(async (o: { transport: 'rtu' | 'tcp'; port?: string; baud: number; turnaroundMs: number; host: string; tcpPort: number; units: number[]; model: string }) => {
      const { runModbusSim } = await import('../../../simulators/modbus-module.js');
      const sim = await runModbusSim(
        { transport: o.transport, path: o.port, baud: o.baud, turnaroundMs: o.turnaroundMs, host: o.host, port: o.tcpPort, units: o.units, map: o.model, input: process.stdin },
        (line) => process.stdout.write(line + '\n'),
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        process.stdin.once('end', resolve);
      });
      await sim.close();
    });
}
