/**
 * A pseudo-terminal pair made by socat (`pty,raw,echo=0` on both ends), for putting a simulated
 * device on one end of a "serial line" and a bridge on the other. Bytes cross a pty instantly
 * whatever baud rate is set: senders pace themselves (see wire-timing.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  /** Stable symlinks to the two ends (e.g. /tmp/lf-pty-xxxx/a); `realA`/`realB` are the /dev/pts paths. */
  a: string;
  b: string;
  realA: string;
  realB: string;
  /** Kill socat (both ends close, as when a cable is pulled) and remove the links. */
  close(): Promise<void>;
}

export interface PtyPairOptions {
  /**
   * Put the links in this directory (made if missing), so a pair closed and opened again appears
   * at the same paths: a cable pulled and plugged back in. Default: a new temporary directory.
   */
  dir?: string;
  timeoutMs?: number;
}

export async function openPtyPair(opts: PtyPairOptions = {}): Promise<PtyPair> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'lf-pty-'));
  mkdirSync(dir, { recursive: true });
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const child: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + timeoutMs;
  // socat logs "starting data transfer loop" once both ends exist.
  while (!(existsSync(a) && existsSync(b) && stderr.includes('starting data transfer loop'))) {
    if (child.exitCode !== null) throw new Error(`socat exited: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`socat did not open a pty pair within ${timeoutMs} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const realA = realpathSync(a);
  const realB = realpathSync(b);
  return {
    a,
    b,
    realA,
    realB,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      else for (const link of [a, b]) rmSync(link, { force: true });
    },
  };
}
