/**
 * Keeps two gateways off one data directory with a lock the kernel releases when its holder dies,
 * however it dies (SIGKILL, a power cut) and whether or not its parent has reaped it yet. A pid file
 * cannot do that: a killed gateway stays a zombie that `kill(pid, 0)` still finds until its parent
 * waits for it, and after a reboot the pid in the file belongs to some other live process. Node has
 * no flock(), so the lock is a Unix socket bound in Linux's abstract namespace: bind() fails with
 * EADDRINUSE while the holder lives, and the name is freed when its last descriptor closes, which
 * the kernel does at exit, before the process becomes a zombie.
 *
 * Abstract names have no file permissions, so any local user could bind one first and keep the
 * gateway from starting; the name is therefore keyed with the gateway key (readable only by the
 * data directory's owner) and cannot be guessed. Abstract sockets are per network namespace; a
 * live admin socket in the data directory is refused too, which covers a second gateway in another
 * namespace (a container) sharing the directory.
 *
 * Elsewhere than on Linux (a developer's machine) only the admin-socket test runs.
 *
 * `<data>/gateway.lock` is kept for people only (the holder's pid); what it says never blocks a start.
 */
import { createServer, createConnection, type Server } from 'node:net';
import { createHmac } from 'node:crypto';
import { readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lfError } from '../errors.js';
import { adminSocketPath } from './channel.js';

export const LOCK_FILE = 'gateway.lock';
/** How long a connect to a leftover admin socket may take before it counts as nobody listening. */
const ADMIN_PROBE_TIMEOUT_MS = 1000;

/** The abstract socket name guarding `dataDir` (a leading NUL puts it in the abstract namespace). */
export function lockName(dataDir: string, gatewayKey: Buffer): string {
  const mac = createHmac('sha256', gatewayKey).update('lianfang data-directory lock\0').update(realpathSync(dataDir)).digest('hex');
  return `\0lianfang-${mac.slice(0, 40)}`;
}

/** The pid the lock file names, for the message; it proves nothing about who holds the lock. */
function recordedPid(dataDir: string): string {
  try {
    const pid = readFileSync(join(dataDir, LOCK_FILE), 'utf8').trim();
    return /^\d{1,10}$/.test(pid) ? pid : 'unknown';
  } catch {
    return 'unknown';
  }
}

function bindAbstract(name: string): Promise<Server | 'in-use'> {
  return new Promise((resolve, reject) => {
    const server = createServer((sock) => sock.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve('in-use') : reject(err)));
    server.listen({ path: name }, () => {
      server.removeAllListeners('error');
      server.on('error', () => {}); // a listening Unix server reports nothing we could act on
      // The lock must not keep a stopping process alive.
      server.unref();
      resolve(server);
    });
  });
}

/** True when something accepts connections on the data directory's admin socket. */
function adminSocketAnswers(dataDir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(adminSocketPath(dataDir));
    const done = (live: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(false), ADMIN_PROBE_TIMEOUT_MS);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false)); // ENOENT, ECONNREFUSED: left by a gateway that is gone
  });
}

export interface Lock {
  release(): void;
}

/**
 * Take the data directory for this process, or throw LF_ERR_DATA_LOCKED when a live gateway holds
 * it. Called by Gateway.start after the gateway key is loaded and before the database is opened.
 */
export async function acquireLock(dataDir: string, gatewayKey: Buffer): Promise<Lock> {
  const server = process.platform === 'linux' ? await bindAbstract(lockName(dataDir, gatewayKey)) : null;
  if (server === 'in-use') throw lfError('LF_ERR_DATA_LOCKED', dataDir, recordedPid(dataDir));
  if (await adminSocketAnswers(dataDir)) {
    server?.close();
    throw lfError('LF_ERR_DATA_LOCKED', dataDir, recordedPid(dataDir));
  }
  const file = join(dataDir, LOCK_FILE);
  // Overwritten whatever it held: a pid left there by a dead gateway (or reused since) means nothing.
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
      } catch {
        /* already gone */
      }
      server?.close();
    },
  };
}
