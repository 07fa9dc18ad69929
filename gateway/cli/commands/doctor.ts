/**
 * `lianfang doctor [--json]`: runs the checks of gateway/health/doctor.ts on the data directory
 * and prints each problem with its fix. Exit status 3 when something is wrong (0 when all is
 * well; 1 and 2 keep their meaning for every command: a bad option, a coded error).
 */
import type { Command } from 'commander';
import { loadConfig } from '../../../config/load.js';
import { adminRequest } from '../../admin/channel.js';
import { runDoctor, type Finding, type RunningGateway, type UnitProbe } from '../../health/doctor.js';
import type { ScanHit } from '../../../devices/bridge.js';
import { isLianfangError } from '../../errors.js';
import { printJson } from '../output.js';
import { dataOption, int, jsonOption } from '../common.js';
import { inUserLang, tr } from '../../i18n.js';

/** `lianfang doctor`'s exit status when a check found a problem. */
export const DOCTOR_PROBLEM_EXIT = 3;

/** The gateway on `dataDir`, if one answers on its admin socket. */
async function runningGateway(dataDir: string): Promise<RunningGateway | null> {
  try {
    const ports = (await adminRequest(dataDir, { op: 'ports' })) as RunningGateway['ports'] | null;
    return ports ? { ports } : null;
  } catch (err) {
    // An older gateway without the op still runs here; its ports are unknown, so they are probed.
    if (isLianfangError(err) && err.code === 'LF_ERR_INVALID_ARGUMENT') return { ports: { mqtt: -1, ws: -1, http: -1 } };
    throw err;
  }
}

/**
 * Asking a Modbus unit: through the running gateway, which holds the line (one master per line), as
 * `lianfang bus scan` does; otherwise by opening the bus for the moment of the question.
 */
function unitProbe(dataDir: string, gateway: RunningGateway | null): UnitProbe {
  return async (bus, address, timeoutMs) => {
    const scan = { from: address, to: address, timeoutMs };
    if (gateway) {
      try {
        const r = (await adminRequest(dataDir, { op: 'bus-scan', busId: bus.id, scan }, 10_000 + timeoutMs)) as { hits: ScanHit[] } | null;
        if (r) return r.hits;
      } catch (err) {
        // The gateway has not got the bus open (it cannot open it): opening it here says why.
        if (!(isLianfangError(err) && err.code === 'LF_ERR_NOT_FOUND')) throw err;
      }
    }
    const { scanFreeBus } = await import('../../wired-adapter.js');
    return scanFreeBus(bus, scan, new Map());
  };
}

/** `label` padded to the column the text starts at (a Chinese character takes two columns). */
const INDENT = 9;
const pad = (label: string) => label + ' '.repeat(Math.max(1, INDENT - [...label].reduce((w, ch) => w + (ch.charCodeAt(0) > 0x2e80 ? 2 : 1), 0)));

function printFindings(findings: Finding[]): void {
  for (const f of findings) {
    const what = f.subject ? `${f.check} ${f.subject}` : f.check;
    if (f.ok) {
      process.stdout.write(`${pad(tr('ok', '正常'))}${what}${f.note ? `: ${inUserLang(f.note)}` : ''}\n`);
      continue;
    }
    process.stdout.write(`${pad(tr('PROBLEM', '问题'))}${what}: ${inUserLang(f.problem!)}\n`);
    process.stdout.write(`${' '.repeat(INDENT)}${tr('fix', '处理')}: ${inUserLang(f.fix!)}\n`);
  }
  const problems = findings.filter((f) => !f.ok).length;
  process.stdout.write(problems === 0 ? tr('no problems found\n', '未发现问题\n') : tr(`${problems} problems found\n`, `发现 ${problems} 个问题\n`));
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      tr(
        'check the data directory and the machine for what stops a gateway working: the database, its schema, the disk, the clock, the ports, the serial lines, the Modbus units, the key, devices never heard, shops without a PIN',
        '检查数据目录和本机上使网关无法工作的问题：数据库、结构版本、磁盘、时钟、端口、串口、Modbus 从站、密钥、从未上报的设备、没有 PIN 的店铺'
      ),
    )
    .addOption(dataOption())
    .option('--config <file>', tr('the JSON configuration file the gateway is started with (its ports, its disk floor); LF_* variables override it', '网关启动时使用的 JSON 配置文件（端口、磁盘下限）；LF_* 环境变量优先'))
    .option('--timeout-ms <ms>', tr('how long each Modbus unit may take to answer', '每个 Modbus 从站的应答超时'), int('--timeout-ms', 5, 5000), 300)
    .addOption(jsonOption())
    .addHelpText('after', `\nExit status: 0 all is well, ${DOCTOR_PROBLEM_EXIT} a problem was found.\n\nExample:\n  $ lianfang doctor --data /var/lib/lianfang\n  PROBLEM  gateway-key: the gateway key /var/lib/lianfang/gateway.key has mode 0644: others on this machine can read it\n           fix: \`chmod 600 /var/lib/lianfang/gateway.key\``)
    .action(async (o: { data: string; config?: string; timeoutMs: number; json?: boolean }) => {
      const config = loadConfig({ file: o.config, overrides: { dataDir: o.data } });
      const gateway = await runningGateway(o.data);
      const findings = await runDoctor({ dataDir: o.data, config, gateway, probe: unitProbe(o.data, gateway), probeTimeoutMs: o.timeoutMs, nowMs: Date.now });
      const healthy = findings.every((f) => f.ok);
      if (o.json) printJson({ ok: healthy, gatewayRunning: gateway !== null, findings });
      else printFindings(findings);
      if (!healthy) process.exitCode = DOCTOR_PROBLEM_EXIT;
    });
}
