/** `lianfang user`. */
import { type Command, Option } from 'commander';
import { openDatabase } from '../../store/db.js';
import { addUser, listUsers, ROLES } from '../../registry/registry.js';
import { lfError } from '../../errors.js';
import { printJson, printRecords } from '../output.js';
import { dataOption, jsonOption, list, notifyGateway, withDb } from '../common.js';

export function registerUser(program: Command): void {
  const user = program.command('user').description('console logins (officers) and installers');
  user
    .command('add')
    .description('add a login; its password is stored with scrypt')
    .addOption(new Option('--role <role>', 'role').choices([...ROLES]).makeOptionMandatory())
    .requiredOption('--name <name>', 'login name (also the MQTT username of the console)')
    .option('--station <stationId>', 'station (or compound receiving point) an officer works for')
    .option('--password <password>', 'password, at least 8 characters (or LF_PASSWORD in the environment, which stays out of shell history)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', "\nExample:\n  $ LF_PASSWORD='correct horse battery' lianfang user add --role officer --station PS1 --name duty1")
    .action(async (o: { role: (typeof ROLES)[number]; name: string; station?: string; password?: string; data: string; json?: boolean }) => {
      const password = o.password ?? process.env.LF_PASSWORD;
      if (!password) throw lfError('LF_ERR_INVALID_ARGUMENT', '--password', 'give --password or set LF_PASSWORD');
      const db = openDatabase(o.data);
      try {
        const u = await addUser(db, { name: o.name, role: o.role, password, ...(o.station ? { stationId: o.station } : {}) });
        if (o.json) printJson({ name: u.name, role: u.role, stationId: u.stationId, createdAt: u.createdAt });
        else process.stdout.write(`user ${u.name} added (${u.role}${u.stationId ? `, station ${u.stationId}` : ''})\n`);
      } finally {
        db.close();
      }
      await notifyGateway(o.data);
    });
  user
    .command('list')
    .description('list logins (never their passwords)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => listUsers(db)).map((u) => ({ name: u.name, role: u.role, stationId: u.stationId, revoked: u.revokedAt !== null, createdAt: u.createdAt }));
      printRecords(!!o.json, rows, { name: 'NAME', role: 'ROLE', stationId: 'STATION', revoked: 'REVOKED', createdAt: 'CREATED' });
    });
}
