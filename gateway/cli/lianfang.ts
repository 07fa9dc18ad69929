#!/usr/bin/env node
/**
 * `lianfang`: the installer's command line. Provisioning commands write the database directly and
 * then tell a running gateway through the admin channel, so a change takes effect at once.
 * Every command takes --data DIR; every command that prints records takes --json.
 *
 * One file per command group under commands/, registered from COMMANDS below; a command's body
 * calls the registry and admin functions the gateway itself uses.
 */
import { Command } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { reportError } from './output.js';
import { gatewayVersion } from '../version.js';
import { usePrivateUmask } from '../data-dir.js';
import { cliActor, dataOption, jsonOption } from './common.js';
import { registerFaultCommands } from './commands/fault.js';
import { registerStart } from './commands/start.js';
import { registerStation } from './commands/station.js';
import { registerShop } from './commands/shop.js';
import { registerDevice } from './commands/device.js';
import { registerUser } from './commands/user.js';
import { registerNeighbours } from './commands/neighbours.js';
import { registerStatus } from './commands/status.js';
import { registerTest } from './commands/test.js';
import { registerReport } from './commands/report.js';
import { registerBus } from './commands/bus.js';
import { registerSimulate } from './commands/simulate.js';
import { registerCompletion } from './commands/completion.js';
import { registerBackup } from './commands/backup.js';
import { registerLogs } from './commands/logs.js';
import { registerDoctor } from './commands/doctor.js';
import { registerImport } from './commands/import.js';
import { registerExport } from './commands/export.js';

/** The command groups, in the order `lianfang --help` lists them. */
export const COMMANDS: readonly ((program: Command) => void)[] = [
  registerStart,
  registerStation,
  registerShop,
  registerDevice,
  registerUser,
  registerNeighbours,
  registerStatus,
  registerTest,
  registerReport,
  registerBus,
  registerSimulate,
  registerImport,
  registerExport,
  registerBackup,
  registerLogs,
  registerDoctor,
  (program) => registerFaultCommands(program, { dataOption, jsonOption, actor: cliActor }),
  registerCompletion,
];

/** The whole command line, every group registered (also what the help test walks). */
export function buildProgram(): Command {
  const program = new Command('lianfang')
    .description('Lianfang (联防) joint-defence alarm gateway: provision stations, shops, devices and users; run the gateway.')
    .version(gatewayVersion())
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Examples:
  $ lianfang start --data ./data
  $ lianfang station add --id PS1 --name "Changping Road Police Station"
  $ lianfang shop add --id S01 --name "李记茶行" --address "Changping Rd 23" --lat 23.3540 --lon 116.6820 --station PS1 --door-plate 23号
  $ lianfang device add --shop S01 --type keypad --transport mqtt --json
  $ lianfang device add --shop S01 --type keypad --transport serial --port /dev/ttyUSB0 --bus-address 3 --json
  $ lianfang bus scan ttyUSB0 --from 1 --to 32
  $ lianfang user add --role officer --station PS1 --name duty1 --password '…'
  $ lianfang import shops street.csv
  $ lianfang import devices devices.csv --credentials creds.csv
  $ lianfang neighbours S01
  $ lianfang simulate street --shops 30`,
    );
  program.configureOutput({ outputError: (str, write) => write(str) });

  for (const register of COMMANDS) register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  // Whatever a command creates in the data directory (the database, its -wal, the key) is private.
  usePrivateUmask();
  await buildProgram().parseAsync(argv);
}

// Run when executed (node dist/gateway/cli/lianfang.js, the npm bin link), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).catch((err) => {
    process.exitCode = reportError(err);
  });
}
