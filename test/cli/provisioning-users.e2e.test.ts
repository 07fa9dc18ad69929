/**
 * Console logins against a running gateway: `user revoke` ends every session of the user at once
 * and its password no longer works; `user passwd` ends its session, the old password fails and
 * the new one works. And the provisioning commands' --help. Real child processes, real MQTT clients.
 */
import t from 'tap';
import { GatewayProcess, cli, oneShopStreet } from '../helpers/gateway.js';
import { dropAfter, login, refusedCode } from '../helpers/sessions.js';

const json = <T = any>(s: string): T => JSON.parse(s) as T;

t.test('with a running gateway', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const gw = await GatewayProcess.start(t, data);
  const url = gw.mqttUrl;

  await t.test('user revoke ends the console session, and its password no longer works', async (t) => {
    t.equal((await cli(['user', 'add', '--role', 'officer', '--station', 'PS1', '--name', 'leaver', ...d], { LF_PASSWORD: 'leaver-password-1' })).code, 0);
    const console1 = await login(url, 'leaver', 'leaver-password-1', 'leaver:console');
    const console2 = await login(url, 'leaver', 'leaver-password-1', 'leaver:tablet');
    t.teardown(() => Promise.all([console1.endAsync(true), console2.endAsync(true)]));
    const second = new Promise<void>((res) => console2.once('close', () => res()));
    await dropAfter(t, console1, () => cli(['user', 'revoke', 'leaver', ...d]));
    await second;
    t.pass('every session of the user was dropped');
    t.not(await refusedCode(url, 'leaver', 'leaver-password-1', 'leaver:console'), 0, 'a revoked user cannot log in');
    const users = json<any[]>((await cli(['user', 'list', '--json', ...d])).stdout);
    t.match(users.find((u) => u.name === 'leaver'), { revoked: true });
    t.equal((await cli(['user', 'passwd', 'leaver', '--password', 'another-password', ...d])).code, 2, 'a revoked user has no password to change');
  });

  await t.test('user passwd: the old password fails, the new one works', async (t) => {
    t.equal((await cli(['user', 'add', '--role', 'officer', '--station', 'PS1', '--name', 'duty1', '--password', 'first-password-1', ...d])).code, 0);
    const session = await login(url, 'duty1', 'first-password-1', 'duty1:console');
    t.teardown(() => session.endAsync(true));
    await dropAfter(t, session, () => cli(['user', 'passwd', 'duty1', ...d], { LF_PASSWORD: 'second-password-2' }));
    t.equal(await refusedCode(url, 'duty1', 'first-password-1', 'duty1:console'), 4, 'the old password is refused');
    const fresh = await login(url, 'duty1', 'second-password-2', 'duty1:console');
    t.pass('the new password logs in');
    await fresh.endAsync(true);
    const short = await cli(['user', 'passwd', 'duty1', '--password', 'short', ...d]);
    t.equal(short.code, 2);
    t.match(short.stderr, /LF_ERR_INVALID_ARGUMENT: invalid password/, 'the rule of user add: at least 8 characters');
    const none = await cli(['user', 'passwd', 'duty1', ...d], { LF_PASSWORD: '' });
    t.match(none.stderr, /give --password or set LF_PASSWORD/);
  });

});

t.test('--help of the new commands has an example', async (t) => {
  for (const c of [['device', 'rotate'], ['device', 'list'], ['user', 'passwd'], ['user', 'revoke']]) {
    const r = await cli([...c, '--help']);
    t.equal(r.code, 0, c.join(' '));
    t.match(r.stdout, /Example/, `${c.join(' ')} --help has an example`);
  }
  t.match((await cli(['device', 'rotate', '--help'])).stdout, /dead until its new MAC key/, 'rotate --help says what --include-wired costs');
});
