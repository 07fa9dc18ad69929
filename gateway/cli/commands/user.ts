/** `lianfang user`. */
import { type Command, Option } from 'commander';
import { openDatabase } from '../../store/db.js';
import { addUser, listUsers, revokeUser, ROLES, setUserPassword } from '../../registry/registry.js';
import { lfError } from '../../errors.js';
import { printJson, printRecords } from '../output.js';
import { dataOption, jsonOption, list, notifyGateway, withDb } from '../common.js';
import { tr } from '../../i18n.js';

export function registerUser(program: Command): void {
  const user = program.command('user').description('console logins (officers) and installers');
  user
    .command('add')
    .description('add a login; its password is stored with scrypt')
    .addOption(new Option('--role <role>', 'role').choices([...ROLES]).makeOptionMandatory())
    .requiredOption('--name <name>', 'login name (also the MQTT username of the console)')
    .option('--station <stationId>', 'station (or compound receiving point) an officer works for')
    .addOption(passwordOption())
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', "\nExample:\n  $ LF_PASSWORD='correct horse battery' lianfang user add --role officer --station PS1 --name duty1")
    .action(async (o: { role: (typeof ROLES)[number]; name: string; station?: string; password?: string; data: string; json?: boolean }) => {
      const password = givenPassword(o);
      const db = openDatabase(o.data);
      try {
        const u = await addUser(db, { name: o.name, role: o.role, password, ...(o.station ? { stationId: o.station } : {}) });
        if (o.json) printJson({ name: u.name, role: u.role, stationId: u.stationId, createdAt: u.createdAt });
        else if (u.stationId) process.stdout.write(tr(`user ${u.name} added (${u.role}, station ${u.stationId})\n`, `已添加用户 ${u.name}（${u.role}，接处警中心 ${u.stationId}）\n`));
        else process.stdout.write(tr(`user ${u.name} added (${u.role})\n`, `已添加用户 ${u.name}（${u.role}）\n`));
      } finally {
        db.close();
      }
      await notifyGateway(o.data);
    });
  user
    .command('passwd <name>')
    .description(tr("set a login's new password (stored with scrypt); its open console sessions end at once", '为登录账号设置新密码（以 scrypt 保存）；其已打开的接警台会话立即断开'))
    .addOption(passwordOption())
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', tr("\nExample:\n  $ LF_PASSWORD='a new long passphrase' lianfang user passwd duty1", "\n示例：\n  $ LF_PASSWORD='新的长密码短语' lianfang user passwd duty1"))
    .action(async (name: string, o: { password?: string; data: string; json?: boolean }) => {
      const password = givenPassword(o);
      const db = openDatabase(o.data);
      try {
        const u = await setUserPassword(db, name, password);
        if (o.json) printJson({ name: u.name, passwordChanged: true });
        else process.stdout.write(tr(`user ${u.name}: password changed\n`, `用户 ${u.name}：密码已更改\n`));
      } finally {
        db.close();
      }
      await notifyGateway(o.data, { op: 'user-changed', name });
    });
  user
    .command('revoke <name>')
    .description(tr('revoke a login (an officer who leaves): its live sessions end at once and it can no longer log in', '吊销登录账号（如民警离职）：其在线会话立即断开，且不能再登录'))
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', tr('\nExample:\n  $ lianfang user revoke duty1', '\n示例：\n  $ lianfang user revoke duty1'))
    .action(async (name: string, o: { data: string; json?: boolean }) => {
      const u = withDb(o.data, (db) => revokeUser(db, name));
      if (o.json) printJson({ name: u.name, revokedAt: u.revokedAt });
      else process.stdout.write(tr(`user ${u.name} revoked\n`, `用户 ${u.name} 已吊销\n`));
      await notifyGateway(o.data, { op: 'user-changed', name });
    });
  user
    .command('list')
    .description('list logins (never their passwords)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang user list --json')
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => listUsers(db)).map((u) => ({ name: u.name, role: u.role, stationId: u.stationId, revoked: u.revokedAt !== null, createdAt: u.createdAt }));
      printRecords(!!o.json, rows, { name: tr('NAME', '名称'), role: tr('ROLE', '角色'), stationId: tr('STATION', '接处警中心'), revoked: tr('REVOKED', '已吊销'), createdAt: tr('CREATED', '创建时间') });
    });
}

const passwordOption = () =>
  new Option('--password <password>', tr('password, at least 8 characters (or LF_PASSWORD in the environment, which stays out of shell history)', '密码，至少 8 个字符（也可用环境变量 LF_PASSWORD，不留在 shell 历史中）'));

/** The password of `user add` and `user passwd`: --password, or LF_PASSWORD. */
function givenPassword(o: { password?: string }): string {
  const password = o.password ?? process.env.LF_PASSWORD;
  if (!password) throw lfError('LF_ERR_INVALID_ARGUMENT', '--password', tr('give --password or set LF_PASSWORD', '请给出 --password 或设置 LF_PASSWORD'));
  return password;
}
