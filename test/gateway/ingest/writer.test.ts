/**
 * Group commit (gateway/ingest/writer.ts) over a real SQLite database in a temp dir: what arrives
 * in one tick commits in one batch; a throwing item is rolled back and rejected alone; effects run
 * only after the commit; callers are answered in order.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { GroupCommitWriter } from '../../../gateway/ingest/writer.js';
import { openDatabase, DB_FILE, type Db } from '../../../gateway/store/db.js';
import { createLogger } from '../../../gateway/logger.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

function setup(t: Teardown, opts: { busyTimeoutMs?: number; onBatchFailed?: (err: unknown) => void; logLines?: string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lf-wr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir, { busyTimeoutMs: opts.busyTimeoutMs });
  t.teardown(() => db.close());
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)');
  const sink = new Writable({
    write(chunk, _enc, cb) {
      opts.logLines?.push(String(chunk));
      cb();
    },
  });
  const log = createLogger(opts.logLines ? 'error' : 'silent', sink);
  const writer = new GroupCommitWriter({ db, log, onBatchFailed: opts.onBatchFailed });
  t.teardown(() => writer.close());
  /** A second connection, to see only what is committed. */
  const reader = new Database(join(dir, DB_FILE), { readonly: true });
  t.teardown(() => reader.close());
  return { dir, db, writer, reader };
}

const insert = (db: Db, label: string) => Number(db.prepare('INSERT INTO items (label) VALUES (?)').run(label).lastInsertRowid);
const labels = (db: Database.Database) => (db.prepare('SELECT label FROM items ORDER BY id').all() as { label: string }[]).map((r) => r.label);

t.test('items queued in the same tick commit in one batch', async (t) => {
  const { db, writer, reader } = setup(t);
  const N = 25;
  const promises = Array.from({ length: N }, (_, i) => writer.run(() => insert(db, `item-${i}`)));
  t.equal(writer.stats.batches, 0, 'nothing committed synchronously');
  t.same(labels(reader), [], 'nothing visible before the batch runs');
  const ids = await Promise.all(promises);
  t.equal(writer.stats.batches, 1, 'one batch');
  t.equal(writer.stats.items, N);
  t.equal(writer.stats.maxBatch, N);
  t.same(ids, Array.from({ length: N }, (_, i) => i + 1), 'each caller gets its own result');
  t.same(labels(reader), Array.from({ length: N }, (_, i) => `item-${i}`), 'all committed, visible to another connection');

  // Items in separate ticks are separate batches.
  await writer.run(() => insert(db, 'later-1'));
  await writer.run(() => insert(db, 'later-2'));
  t.equal(writer.stats.batches, 3);
  t.equal(writer.stats.maxBatch, N);
});

t.test('a throwing item is rolled back and rejected alone; the others commit', async (t) => {
  const { db, writer, reader } = setup(t);
  const ok1 = writer.run(() => insert(db, 'a'));
  const bad = writer.run(() => {
    insert(db, 'doomed-1');
    insert(db, 'doomed-2');
    throw new Error('item failed');
  });
  const ok2 = writer.run(() => insert(db, 'b'));
  const constraint = writer.run(() => {
    insert(db, 'doomed-3');
    db.prepare('INSERT INTO items (id, label) VALUES (1, ?)').run('duplicate id'); // SQLite error
  });
  const ok3 = writer.run(() => insert(db, 'c'));
  await t.rejects(bad, { message: 'item failed' });
  await t.rejects(constraint, { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
  // Row ids are max+1: the rolled-back rows left no trace, so the survivors are 1, 2, 3.
  t.same(await Promise.all([ok1, ok2, ok3]), [1, 2, 3], 'the others resolved with their results');
  t.same(labels(reader), ['a', 'b', 'c'], "the failed items' writes are gone, the others' are there");
  t.equal(writer.stats.batches, 1, 'still one batch');
  t.equal(writer.stats.failedBatches, 0);
});

t.test('afterCommit effects run after the commit, before the caller resolves, never for a failed item', async (t) => {
  const { db, writer, reader } = setup(t);
  const log: string[] = [];
  const seenAtEffect: { label: string; inTransaction: boolean; committed: string[] }[] = [];
  const item = (label: string, fail = false) =>
    writer
      .run((fx) => {
        insert(db, label);
        fx.afterCommit(() => {
          log.push(`effect ${label}`);
          seenAtEffect.push({ label, inTransaction: db.inTransaction, committed: labels(reader) });
        });
        log.push(`run ${label}`);
        if (fail) throw new Error(`fail ${label}`);
        return label;
      })
      .then(
        (v) => log.push(`resolved ${v}`),
        (e: Error) => log.push(`rejected ${e.message}`),
      );
  await Promise.all([item('x'), item('y', true), item('z')]);
  t.same(log.filter((l) => l.startsWith('run')), ['run x', 'run y', 'run z'], 'every item ran inside the batch');
  t.ok(log.indexOf('effect x') > log.indexOf('run z'), 'effects only after every item of the batch ran (the commit)');
  t.notOk(log.includes('effect y'), "the failed item's effect did not run");
  t.ok(log.indexOf('effect x') < log.indexOf('resolved x'), 'effect before its caller resolves');
  t.ok(log.indexOf('effect z') < log.indexOf('resolved z'));
  for (const s of seenAtEffect) {
    t.equal(s.inTransaction, false, `effect ${s.label}: no transaction open`);
    t.same(s.committed, ['x', 'z'], `effect ${s.label}: the batch is committed (seen by another connection)`);
  }
});

t.test('results resolve in the order the items were queued', async (t) => {
  const { db, writer } = setup(t);
  const order: string[] = [];
  const ps: Promise<unknown>[] = [];
  for (let i = 0; i < 20; i++) {
    const fail = i % 3 === 1;
    ps.push(
      writer
        .run(() => {
          insert(db, `i${i}`);
          if (fail) throw new Error(`e${i}`);
          return i;
        })
        .then(
          () => order.push(`ok${i}`),
          () => order.push(`err${i}`),
        ),
    );
  }
  await Promise.all(ps);
  t.same(order, Array.from({ length: 20 }, (_, i) => (i % 3 === 1 ? `err${i}` : `ok${i}`)));
});

t.test('an effect that throws is logged; the item and the others still resolve', async (t) => {
  const logLines: string[] = [];
  const { db, writer } = setup(t, { logLines });
  const ran: string[] = [];
  const a = writer.run((fx) => {
    insert(db, 'a');
    fx.afterCommit(() => {
      throw new Error('effect broke');
    });
    fx.afterCommit(() => ran.push('a2'));
    return 'a';
  });
  const b = writer.run((fx) => {
    fx.afterCommit(() => ran.push('b'));
    return 'b';
  });
  t.same(await Promise.all([a, b]), ['a', 'b']);
  t.same(ran, ['a2', 'b'], 'later effects still ran');
  await new Promise((r) => setImmediate(r));
  t.match(logLines.join(''), /post-commit action failed/);
});

t.test('a batch whose commit fails rejects every item in it and runs no effect', async (t) => {
  const failures: unknown[] = [];
  const { dir, db, writer } = setup(t, { busyTimeoutMs: 1, onBatchFailed: (e) => failures.push(e) });
  // Another connection holds the write lock, so BEGIN IMMEDIATE fails with SQLITE_BUSY.
  const other = new Database(join(dir, DB_FILE));
  t.teardown(() => other.close());
  other.pragma('busy_timeout = 0');
  other.exec('BEGIN IMMEDIATE');
  let effects = 0;
  const ps = [1, 2, 3].map((i) =>
    writer.run((fx) => {
      insert(db, `b${i}`);
      fx.afterCommit(() => effects++);
    }),
  );
  for (const p of ps) await t.rejects(p, { code: 'SQLITE_BUSY' });
  t.equal(effects, 0, 'no effect ran');
  t.equal(writer.stats.failedBatches, 1);
  t.equal(writer.stats.batches, 0);
  t.equal(failures.length, 1, 'onBatchFailed called once');
  other.exec('ROLLBACK');
  t.equal(await writer.run(() => insert(db, 'after')), 1, 'the writer works again once the lock is gone');
  t.same(labels(db), ['after']);
});

t.test('a batch whose commit fails undoes the in-memory changes of its items newest first', async (t) => {
  const { db, writer } = setup(t, { onBatchFailed: () => {} });
  // A deferred foreign key is checked only at the COMMIT: every item has run when the batch fails.
  db.exec('CREATE TABLE parents (id INTEGER PRIMARY KEY); CREATE TABLE children (parent_id INTEGER REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED)');
  // What two events of one device do to its high-water mark in memory (gateway/ingest/sequence.ts).
  let mark = 5;
  const move = (to: number) =>
    writer.run((fx) => {
      const before = mark;
      mark = to;
      fx.onRollback(() => (mark = before));
      insert(db, `seq ${to}`);
    });
  const ps = [move(6), move(7), writer.run(() => db.prepare('INSERT INTO children (parent_id) VALUES (42)').run())];
  for (const p of ps) await t.rejects(p, { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
  t.same(labels(db), [], 'nothing of the batch was stored');
  t.equal(mark, 5, 'the mark is back where the database has it (not at 6: the resend of seq 6 is not a duplicate)');
});

t.test('close() commits what is queued and refuses anything new', async (t) => {
  const { db, writer, reader } = setup(t);
  const p = writer.run(() => insert(db, 'queued'));
  writer.close();
  t.same(labels(reader), ['queued'], 'committed by close(), synchronously');
  t.equal(await p, 1);
  await t.rejects(writer.run(() => insert(db, 'too late')), { message: 'writer is closed' });
  t.same(labels(reader), ['queued']);
});

t.test('a batch of light items only commits without an fsync; any other item makes it a full commit; the setting comes back', async (t) => {
  const { db, writer, reader } = setup(t);
  const FULL = 2;
  const NORMAL = 1;
  const sync = () => db.pragma('synchronous', { simple: true }) as number;
  t.equal(sync(), FULL, 'the gateway commits with synchronous=FULL');
  const alone = await writer.run(() => (db.prepare("INSERT INTO items (label) VALUES ('beat')").run(), sync()), 'device-event', { light: true });
  t.equal(alone, NORMAL, 'a light batch commits with synchronous=NORMAL (no fsync)');
  t.equal(sync(), FULL, 'and the setting is FULL again after it');
  t.equal(writer.stats.lightBatches, 1);
  const [a, b] = await Promise.all([
    writer.run(() => sync(), 'device-event', { light: true }),
    writer.run(() => (db.prepare("INSERT INTO items (label) VALUES ('9#')").run(), sync()), 'device-event'),
  ]);
  t.same([a, b], [FULL, FULL], 'a light item batched with another commits with the fsync');
  t.equal(writer.stats.lightBatches, 1);
  await t.rejects(writer.run(() => { throw new Error('boom'); }, 'x', { light: true }));
  t.equal(sync(), FULL, 'a light batch whose item failed leaves FULL too');
  t.same((reader.prepare('SELECT label FROM items ORDER BY id').all() as { label: string }[]).map((r) => r.label), ['beat', '9#'], 'both committed');
});
