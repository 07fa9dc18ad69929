/** `lianfang start`. */
import { type Command, Option } from 'commander';
import { loadConfig } from '../../../config/load.js';
import type { ConfigInput } from '../../../config/schema.js';
import { dataOption, int } from '../common.js';
import { join } from 'node:path';
import { tr } from '../../i18n.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start the gateway (embedded MQTT broker, SQLite store, HTTP /health, the alarm console and embedded Node-RED) on the data directory')
    .addOption(dataOption())
    .option('--config <file>', 'JSON configuration file (see config/schema.ts); LF_* environment variables override it')
    .option('--mqtt-port <port>', 'MQTT over TCP port (0 = any free port; the chosen port is logged)', int('--mqtt-port', 0, 65535))
    .option('--ws-port <port>', 'MQTT over WebSocket port (0 = any free port)', int('--ws-port', 0, 65535))
    .option('--http-port <port>', 'HTTP port for /health and the alarm console (0 = any free port)', int('--http-port', 0, 65535))
    .option('--street <shops>', 'also create and run a simulated street of this many shops, to see alarms flow', int('--street', 11, 500))
    .addOption(new Option('--street-wire <wire>', 'how the street\'s keypads reach the gateway: MQTT, or a simulated RS-485 line (a pty pair)').choices(['mqtt', 'serial']).default('mqtt'))
    .addHelpText('after', '\nExample:\n  $ LF_ESCALATION_ACK_DEADLINE_MS=60000 lianfang start --data ./data --mqtt-port 1883 --http-port 8080')
    .action(async (o: { data: string; config?: string; mqttPort?: number; wsPort?: number; httpPort?: number; street?: number; streetWire: 'mqtt' | 'serial' }) => {
      const overrides: ConfigInput = { dataDir: o.data };
      const mqtt: Record<string, number> = {};
      if (o.mqttPort !== undefined) mqtt.port = o.mqttPort;
      if (o.wsPort !== undefined) mqtt.wsPort = o.wsPort;
      if (Object.keys(mqtt).length) overrides.mqtt = mqtt;
      if (o.httpPort !== undefined) overrides.http = { port: o.httpPort };
      const config = loadConfig({ file: o.config, overrides });
      const { Gateway } = await import('../../controller.js');
      const gw = await Gateway.start({ config, failpoint: process.env.LF_FAILPOINT });
      let street: { stop(): Promise<void> } | null = null;
      const stop = async (signal: string) => {
        gw.log.info({ signal }, 'stopping');
        await street?.stop().catch(() => {});
        await gw.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
      if (o.street) {
        const { runStreet } = await import('../../../simulators/street.js');
        const { provisionDemoStreet } = await import('../demo-street.js');
        await provisionDemoStreet(config.dataDir, o.street, o.streetWire);
        street = await runStreet({
          dataDir: config.dataDir,
          wire: o.streetWire,
          mqttUrl: `mqtt://127.0.0.1:${gw.ports().mqtt}`,
          log: gw.log.child({ module: 'street' }),
          // Three heartbeats per supervision interval: one lost is no fault.
          heartbeatMs: Math.max(1000, Math.floor(config.supervision.mqttFaultAfterMs / 3)),
        });
        const { streetDir, STREET_FILES } = await import('../../../simulators/street.js');
        const login = join(streetDir(config.dataDir), STREET_FILES.officer);
        process.stderr.write(
          tr(
            `alarm console: http://127.0.0.1:${gw.ports().http}/ (sign in with the username and password in ${login})\n`,
            `接警台：http://127.0.0.1:${gw.ports().http}/（用 ${login} 中的账号和密码登录）\n`,
          ),
        );
      }
      if (config.nodeRed.enabled) {
        const url = `http://127.0.0.1:${gw.ports().http}/flows/`;
        process.stderr.write(
          tr(
            `Node-RED editor: ${url} (starting in its own process; sign in with an installer's account: lianfang user add --role installer …)\n`,
            `Node-RED 编辑器：${url}（在独立进程中启动；用安装人员账号登录：lianfang user add --role installer …）\n`,
          ),
        );
      }
    });
}
