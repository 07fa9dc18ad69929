/**
 * WAL checkpoints off the alarm path. SQLite's automatic checkpoint runs inside the commit that
 * crosses its threshold, so every few hundred alarms one commit would also copy the WAL into the
 * database and fsync it: tens of milliseconds on the path from a keypad's 9# to its ACK. The
 * gateway's connection turns it off, and a worker thread with its own connection runs a PASSIVE
 * checkpoint (it never blocks a writer) every `intervalMs`.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { Logger } from '../logger.js';

/** The worker's code: plain JavaScript, so it runs the same from compiled code and under a TS loader. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
let busy = false;
const checkpoint = () => {
  if (busy) return;
  busy = true;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, log: r.log, checkpointed: r.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message) });
  } finally {
    busy = false;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private worker: Worker | null = null;
  readonly stats = { checkpoints: 0, failures: 0, lastWalPages: 0 };

  constructor(
    private readonly file: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    // No execArgv: the worker needs none of the parent's loaders or flags.
    const worker = new Worker(WORKER, { eval: true, execArgv: [], workerData: { file: this.file, intervalMs: this.intervalMs, sqlite } });
    worker.on('message', (m: { ok: boolean; log?: number; error?: string }) => {
      if (m.ok) {
        this.stats.checkpoints++;
        this.stats.lastWalPages = m.log ?? 0;
      } else {
        this.stats.failures++;
        this.log.warn({ err: m.error }, 'WAL checkpoint failed; retrying at the next interval');
      }
    });
    worker.on('error', (err) => this.log.error({ err }, 'checkpoint worker failed'));
    worker.unref();
    this.worker = worker;
  }

  /** A last checkpoint, then the worker's connection closes. */
  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    worker.ref(); // keep the process alive until the last checkpoint is done
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([exited, timeout]);
    await worker.terminate();
  }
}
