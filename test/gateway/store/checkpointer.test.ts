/**
 * The WAL checkpointer (gateway/store/checkpointer.ts): with automatic checkpoints off on the
 * writing connection, its worker thread copies the WAL into the database while the writer goes on.
 */
import t from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, DB_FILE } from '../../../gateway/store/db.js';
import { Checkpointer } from '../../../gateway/store/checkpointer.js';
import { createLogger } from '../../../gateway/logger.js';

t.test('a worker thread checkpoints the WAL; the writer never waits for it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lf-ckpt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir);
  t.teardown(() => db.close());
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO filler (body) VALUES (?)');
  for (let i = 0; i < 2000; i++) insert.run('x'.repeat(500));
  const dbBytesBefore = statSync(join(dir, DB_FILE)).size;
  t.ok(statSync(join(dir, `${DB_FILE}-wal`)).size > 500_000, 'with autocheckpoint off, the writes sit in the WAL');

  const ckpt = new Checkpointer(join(dir, DB_FILE), 20, createLogger('silent'));
  ckpt.start();
  t.teardown(() => ckpt.stop());
  const until = Date.now() + 30_000;
  while (ckpt.stats.checkpoints < 2 && Date.now() < until) {
    insert.run('y'); // the writer goes on meanwhile
    await new Promise((r) => setTimeout(r, 10));
  }
  t.ok(ckpt.stats.checkpoints >= 2, 'checkpoints ran');
  t.equal(ckpt.stats.failures, 0);
  t.ok(statSync(join(dir, DB_FILE)).size > dbBytesBefore + 500_000, 'the WAL was copied into the database file');
  const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
  t.ok(r!.log - r!.checkpointed < 50, 'little is left for a checkpoint to do');
  await ckpt.stop();
  t.equal((db.prepare('SELECT count(*) AS n FROM filler').get() as { n: number }).n >= 2001, true, 'nothing lost');
});
