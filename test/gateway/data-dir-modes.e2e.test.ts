/**
 * The data directory holds the password hashes and the gateway key (gateway/data-dir.ts): the CLI
 * and `lianfang start` tighten an existing 0755 directory to 0700 and everything in it to 0600,
 * and `start` (like every command) refuses a directory its group or others may write to, naming
 * the fix. The children are spawned under umask 022, the common default that left the files
 * readable before.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess, CLI, cli } from '../helpers/gateway.js';

const mode = (p: string) => statSync(p).mode & 0o777;
const octal = (m: number) => '0' + m.toString(8);

/** The mode of every entry in `dir` and in its subdirectories (the logs), by relative name, and whether it is a directory. */
function modes(dir: string, prefix = ''): Record<string, { mode: string; dir: boolean }> {
  const out: Record<string, { mode: string; dir: boolean }> = {};
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const isDir = statSync(p).isDirectory();
    out[prefix + n] = { mode: octal(mode(p)), dir: isDir };
    if (isDir) Object.assign(out, modes(p, `${prefix}${n}/`));
  }
  return out;
}

function expectPrivate(t: Test, dir: string, mustHave: string[], when: string): void {
  t.equal(octal(mode(dir)), '0700', `${when}: the data directory is 0700`);
  const m = modes(dir);
  for (const name of mustHave) t.ok(name in m, `${when}: ${name} is there`);
  for (const [name, got] of Object.entries(m)) t.equal(got.mode, got.dir ? '0700' : '0600', `${when}: ${name} is ${got.dir ? '0700' : '0600'}`);
}

/** A data directory as an installer creates it by hand: `mkdir -m 755`. */
function openDir(t: Test, permissions: number): string {
  const parent = mkdtempSync(join(tmpdir(), 'lf-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'd');
  mkdirSync(dir);
  chmodSync(dir, permissions);
  return dir;
}

const before = process.umask(0o022);
t.teardown(() => process.umask(before));

t.test('a 0755 data directory and 0644 files end 0700 and 0600 after a CLI command and after start', async (t) => {
  const dir = openDir(t, 0o755);
  const d = ['--data', dir];
  const r = await cli(['station', 'add', '--id', 'PS1', '--name', 'x', ...d]);
  t.equal(r.code, 0, r.stderr);
  expectPrivate(t, dir, ['lianfang.db'], 'after station add');

  // As an older gateway left them: everything readable by every local user.
  chmodSync(dir, 0o755);
  for (const n of readdirSync(dir)) chmodSync(join(dir, n), 0o644);
  const s = await cli(['shop', 'add', '--id', 'S1', '--name', 'x', '--address', 'y', '--station', 'PS1', ...d]);
  t.equal(s.code, 0, s.stderr);
  expectPrivate(t, dir, ['lianfang.db'], 'after shop add');

  chmodSync(dir, 0o755);
  for (const n of readdirSync(dir)) chmodSync(join(dir, n), 0o644);
  const gw = await GatewayProcess.start(t, dir);
  // A write while it runs, so the -wal and -shm exist and are looked at too.
  const u = await cli(['user', 'add', '--role', 'officer', '--station', 'PS1', '--name', 'duty1', ...d], { LF_PASSWORD: 'correct horse battery' });
  t.equal(u.code, 0, u.stderr);
  expectPrivate(t, dir, ['lianfang.db', 'lianfang.db-wal', 'lianfang.db-shm', 'gateway.key', 'gateway.lock', 'admin.sock', 'logs'], 'while the gateway runs');
  await gw.kill('SIGTERM');
});

t.test('a new data directory is created 0700 with 0600 files', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'lf-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'new');
  const gw = await GatewayProcess.start(t, dir);
  expectPrivate(t, dir, ['lianfang.db', 'gateway.key', 'gateway.lock', 'admin.sock', 'logs'], 'a fresh start');
  await gw.kill('SIGTERM');
});

for (const open of [0o777, 0o757, 0o775, 0o1777]) {
  t.test(`start refuses a data directory of mode ${octal(open)} and names the fix`, async (t) => {
    const dir = openDir(t, open);
    const child = spawn(process.execPath, [CLI, 'start', '--data', dir, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0'], {
      env: { ...process.env, LF_MQTT_HOST: '127.0.0.1', LF_HTTP_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let started = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      // A gateway that came up is the failure; stop it rather than hang the test.
      if (String(d).includes('"gateway started"')) {
        started = true;
        child.kill('SIGKILL');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    t.notOk(started, 'the gateway did not start');
    t.equal(code, 2, 'start exits with 2');
    t.match(stderr, /LF_ERR_DATA_DIR_UNSAFE/);
    t.match(stderr, `chmod 700 ${dir}`, 'the message names the fix');
    t.equal(statSync(dir).mode & 0o7777, open, 'the directory was not tightened behind the installer\'s back');
    t.same(readdirSync(dir), [], 'nothing was created in it');

    const list = await cli(['shop', 'list', '--data', dir]);
    t.equal(list.code, 2, 'a CLI command refuses it too');
    t.match(list.stderr, /LF_ERR_DATA_DIR_UNSAFE/);
  });
}
