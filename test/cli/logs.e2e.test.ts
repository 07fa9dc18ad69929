/**
 * The gateway's rotating log file and `lianfang logs`: a real gateway process writes the file in
 * its data directory (as well as stdout), `--level warn` shows only warnings and worse,
 * `--follow` prints a line written after it started, and follows the writer into a new file.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, GatewayProcess, cli, oneShopStreet, tempDataDir, until } from '../helpers/gateway.js';
import { adminRequest } from '../../gateway/admin/channel.js';

/** Make the running gateway log a warning naming `tag` (an admin request it refuses). */
async function warnWith(data: string, tag: string): Promise<void> {
  await adminRequest(data, { op: tag }).catch(() => {});
}

const logText = (data: string) =>
  readdirSync(join(data, 'logs'))
    .map((f) => readFileSync(join(data, 'logs', f), 'utf8'))
    .join('');

/** `lianfang logs --follow …` as a child process, its stdout collected. */
function followLogs(t: { teardown(fn: () => unknown): void }, args: string[]) {
  const child = spawn(process.execPath, [CLI, 'logs', '--follow', ...args], { env: { ...process.env, LANG: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  child.stdout.on('data', (d) => (out.text += d));
  child.stderr.on('data', (d) => (out.text += d));
  t.teardown(() => child.kill('SIGKILL'));
  return out;
}

t.test('no log yet is a clear error', async (t) => {
  const data = tempDataDir(t);
  const r = await cli(['logs', '--data', data]);
  t.equal(r.code, 2);
  t.match(r.stderr, /LF_ERR_NO_LOG: there is no gateway log in .*logs yet/);
});

t.test('a running gateway writes its log file; logs filters by level and follows', async (t) => {
  const data = await oneShopStreet(t);
  const gw = await GatewayProcess.start(t, data);
  await warnWith(data, 'doctor-test-warning-1');
  await until('the warning in the log file', async () => logText(data), (s) => s.includes('doctor-test-warning-1'));

  const dir = join(data, 'logs');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the logs directory is private');
  for (const f of readdirSync(dir)) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`);
  t.ok(gw.logs.some((l) => l.msg === 'gateway started'), 'stdout still has the log');

  const all = await cli(['logs', '--data', data]);
  t.equal(all.code, 0, all.stderr);
  t.match(all.stdout, /INFO.*gateway started/, 'pretty-printed');
  t.notMatch(all.stdout, /^\{"level"/m, 'not the raw JSON');
  t.notMatch(all.stdout, /\x1b\[/, 'no colours when stdout is not a terminal');

  const warn = await cli(['logs', '--level', 'warn', '--json', '--data', data]);
  t.equal(warn.code, 0, warn.stderr);
  const lines = warn.stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
  t.ok(lines.length >= 1, 'the warning is shown');
  t.ok(lines.every((l) => l.level >= 40), 'only warnings and worse');
  t.ok(lines.some((l) => JSON.stringify(l).includes('doctor-test-warning-1')));
  t.notOk(lines.some((l) => l.msg === 'gateway started'), 'info lines are left out');

  const last = await cli(['logs', '--lines', '1', '--json', '--data', data]);
  t.equal(last.stdout.trim().split('\n').length, 1, '--lines 1 shows one line');

  const follow = followLogs(t, ['--level', 'warn', '--data', data]);
  await until('the earlier warning', async () => follow.text, (s) => s.includes('doctor-test-warning-1'));
  t.notMatch(follow.text, /gateway started/, 'follow filters too');
  await warnWith(data, 'doctor-test-warning-2');
  await until('the warning written after follow started', async () => follow.text, (s) => s.includes('doctor-test-warning-2'));
  t.pass('--follow printed the new line');
});

t.test('--follow goes on into the next file when the log rotates', async (t) => {
  const data = tempDataDir(t);
  const dir = join(data, 'logs');
  mkdirSync(dir, { recursive: true });
  const line = (msg: string) => JSON.stringify({ level: 30, time: '2026-12-02T10:00:00.000Z', msg }) + '\n';
  const first = join(dir, 'gateway.2026-12-02.1.log');
  writeFileSync(first, line('before-follow'));
  const follow = followLogs(t, ['--data', data]);
  await until('the existing line', async () => follow.text, (s) => s.includes('before-follow'));
  appendFileSync(first, line('last-of-file-1'));
  writeFileSync(join(dir, 'gateway.2026-12-02.2.log'), line('first-of-file-2'));
  await until('both lines across the rotation', async () => follow.text, (s) => s.includes('last-of-file-1') && s.includes('first-of-file-2'));
  t.ok(follow.text.indexOf('last-of-file-1') < follow.text.indexOf('first-of-file-2'), 'in order');
  appendFileSync(join(dir, 'gateway.2026-12-02.2.log'), line('later-in-file-2'));
  await until('a later line of the new file', async () => follow.text, (s) => s.includes('later-in-file-2'));
  t.pass('followed into the new file');
});
