/**
 * The data-directory lock (gateway/admin/lock.ts) is released by the kernel when its holder dies:
 * a gateway killed while its parent has not reaped it (a zombie) and a live unrelated pid left in
 * `gateway.lock` never block a start; two live gateways on one data directory are still refused,
 * whatever the lock file says and by whatever path the directory is named.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDataDir, GatewayProcess, CLI, sleep } from '../../helpers/gateway.js';

const GATEWAY_ENV = { LF_MQTT_HOST: '127.0.0.1', LF_HTTP_HOST: '127.0.0.1', LF_LOG_LEVEL: 'info' };
const startArgs = (data: string) => ['start', '--data', data, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0'];

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const procState = (pid: number) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];

/**
 * `lianfang start` run to its end: its exit code and stderr, or `started` (then it is stopped) when
 * it came up instead of refusing, so a wrong outcome fails the test rather than hanging it.
 */
function startOnce(data: string): Promise<{ code: number | 'started' | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...startArgs(data)], { env: { ...process.env, ...GATEWAY_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let started = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      if (!started && String(d).includes('"gateway started"')) {
        started = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: started ? 'started' : code, stderr }));
  });
}

function killOnTeardown(t: { teardown(fn: () => unknown): void }, child: ChildProcess): void {
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

t.test('a gateway killed while its parent does not reap it (a zombie) does not block the next start', async (t) => {
  const data = tempDataDir(t);
  const log = join(data, '..', `${data.split('/').pop()}-zombie.log`);
  t.teardown(() => existsSync(log) && unlinkSync(log));
  // The parent starts the gateway and never wait()s for it, as a supervisor that is busy or broken.
  const parent = spawn(
    'python3',
    [
      '-c',
      'import subprocess, sys, time\n' +
        'p = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1], "w"), stderr=subprocess.STDOUT)\n' +
        'print(p.pid, flush=True)\n' +
        'time.sleep(600)\n',
      log,
      process.execPath,
      CLI,
      ...startArgs(data),
    ],
    { env: { ...process.env, ...GATEWAY_ENV }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  killOnTeardown(t, parent);
  let out = '';
  parent.stdout!.on('data', (d) => (out += d));
  const pid = await until('the gateway pid', () => /^(\d+)\n/.exec(out) && Number(/^(\d+)\n/.exec(out)![1]));
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  await until('the first gateway to start', () => existsSync(log) && readFileSync(log, 'utf8').includes('"gateway started"'));
  t.equal(readFileSync(join(data, 'gateway.lock'), 'utf8').trim(), String(pid), 'the lock file names the first gateway');

  process.kill(pid, 'SIGKILL');
  await until('the killed gateway to be a zombie', () => procState(pid) === 'Z', 10_000);
  t.equal(readFileSync(join(data, 'gateway.lock'), 'utf8').trim(), String(pid), 'its pid is still in the lock file');

  const gw = await GatewayProcess.start(t, data);
  t.pass('a new gateway on the same data directory started');
  t.equal(procState(pid), 'Z', 'while the killed one was still an unreaped zombie');
  t.equal((await gw.health()).up, true);
  t.equal(readFileSync(join(data, 'gateway.lock'), 'utf8').trim(), String(gw.child.pid), 'the lock file now names the new gateway');
});

t.test('a live unrelated pid in gateway.lock (reused after a reboot) does not block a start', async (t) => {
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  killOnTeardown(t, sleeper);
  for (const [what, pid] of [
    ['a live process of ours', String(sleeper.pid)],
    ['pid 1', '1'],
  ] as const) {
    const data = tempDataDir(t);
    writeFileSync(join(data, 'gateway.lock'), `${pid}\n`);
    const gw = await GatewayProcess.start(t, data);
    t.pass(`started with ${what} (${pid}) in gateway.lock`);
    t.equal(readFileSync(join(data, 'gateway.lock'), 'utf8').trim(), String(gw.child.pid));
    await gw.kill('SIGTERM');
    t.notOk(existsSync(join(data, 'gateway.lock')), 'a gateway that stops removes its lock file');
  }
  t.equal(sleeper.exitCode, null, 'the unrelated process was left alone');
});

t.test('two live gateways on one data directory are refused, whatever the lock file says', async (t) => {
  const data = tempDataDir(t);
  const gw = await GatewayProcess.start(t, data);
  const refused = async (why: string, dir = data) => {
    const r = await startOnce(dir);
    t.equal(r.code, 2, `${why}: the second gateway exits with 2`);
    t.match(r.stderr, /LF_ERR_DATA_LOCKED/, why);
  };
  const first = await startOnce(data);
  t.equal(first.code, 2);
  t.match(first.stderr, new RegExp(`LF_ERR_DATA_LOCKED.*\\(pid ${gw.child.pid}\\)`), 'the message names the holder');

  const link = `${data}-link`;
  symlinkSync(data, link);
  t.teardown(() => unlinkSync(link));
  await refused('the same directory through a symlink', link);

  unlinkSync(join(data, 'gateway.lock'));
  await refused('with the lock file deleted');

  // With the admin socket gone too, the kernel's lock alone refuses it.
  unlinkSync(join(data, 'admin.sock'));
  await refused('with the lock file and the admin socket deleted');

  t.equal((await gw.health()).up, true, 'the first gateway runs on');
  await gw.kill('SIGTERM');
  await GatewayProcess.start(t, data);
  t.pass('once it stopped, a new gateway starts');
});

t.test('a live admin socket in the data directory (a gateway in another network namespace) is refused', async (t) => {
  const data = tempDataDir(t);
  const other = createServer((s) => s.destroy());
  await new Promise<void>((r) => other.listen(join(data, 'admin.sock'), r));
  t.teardown(() => new Promise<void>((r) => other.close(() => r())));
  const r = await startOnce(data);
  t.equal(r.code, 2);
  t.match(r.stderr, /LF_ERR_DATA_LOCKED/);
  t.ok(existsSync(join(data, 'admin.sock')), 'the other socket was left in place');
});
