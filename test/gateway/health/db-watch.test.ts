/**
 * Database errors as a fault (gateway/health/db-watch.ts with the group-commit writer's CommitWatch),
 * over a real SQLite database made full for real (`PRAGMA max_page_count`): an item that fails with
 * SQLITE_FULL and a batch whose commit fails raise db-error (code and operation, no data); only a
 * probe write that commits clears it (tried at once when a batch commits again, and every interval
 * on the manual clock), since a batch that writes nothing commits on a full store too; a
 * constraint error is not a fault of the store; the first commit of a run clears (by its probe) a
 * fault left by the last one.
 */
import t from 'tap';
import { tempDataDir } from '../../helpers/gateway.js';
import { GroupCommitWriter } from '../../../gateway/ingest/writer.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { createLogger } from '../../../gateway/logger.js';
import { ManualClock } from '../../../gateway/clock.js';
import { DbWatch, storageErrorCode } from '../../../gateway/health/db-watch.js';
import { RecordingGatewaySink } from '../../helpers/gateway-faults.js';

function setup(t: { teardown(fn: () => unknown): void }) {
  const db = openDatabase(tempDataDir(t));
  t.teardown(() => db.close());
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)');
  const big = (label: string) => () => db.prepare('INSERT INTO items (label) VALUES (?)').run(label + 'x'.repeat(20_000));
  const clock = new ManualClock();
  const sink = new RecordingGatewaySink();
  const log = createLogger('silent');
  let probes = 0;
  const watch = new DbWatch({
    clock,
    log,
    sink,
    probeIntervalMs: 10_000,
    // A probe as large as the writes that failed (the gateway's is one meta row): a full store refuses it.
    probe: () => {
      probes++;
      return writer.run(big(`probe-${probes}`), 'health-probe');
    },
  });
  const writer: GroupCommitWriter = new GroupCommitWriter({ db, log, watch });
  t.teardown(() => writer.close());
  /** Fill the database up to its page limit: the next insert that needs a page fails with SQLITE_FULL. */
  const fill = () => {
    const pages = Number(db.pragma('page_count', { simple: true }));
    db.pragma(`max_page_count = ${pages}`);
  };
  const unfill = () => db.pragma('max_page_count = 1073741823');
  return { db, clock, sink, writer, watch, fill, unfill, big, probes: () => probes };
}

t.test('storageErrorCode: store codes and their extended codes; not constraints or other errors', async (t) => {
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'SQLITE_FULL' })), 'SQLITE_FULL');
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'SQLITE_IOERR_WRITE' })), 'SQLITE_IOERR_WRITE');
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'SQLITE_READONLY_DBMOVED' })), 'SQLITE_READONLY_DBMOVED');
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'SQLITE_CORRUPT' })), 'SQLITE_CORRUPT');
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'SQLITE_CONSTRAINT_UNIQUE' })), null);
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'SQLITE_FULLISH' })), null, 'a prefix only at an underscore');
  t.equal(storageErrorCode(Object.assign(new Error('x'), { code: 'LF_ERR_NOT_FOUND' })), null);
  t.equal(storageErrorCode(new Error('plain')), null);
  t.equal(storageErrorCode(null), null);
});

/** Let queued writer batches (a probe) commit and their promises settle. */
async function turns(n = 4): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

t.test('the first commit of a run is followed by one probe, whose commit clears (a fault left by the last run); later commits tell nothing', async (t) => {
  const { sink, writer, big, probes } = setup(t);
  await writer.run(big('a'));
  await turns();
  t.equal(probes(), 1);
  t.same(sink.ops(), ['clear db-error db']);
  await writer.run(big('b'));
  await turns();
  t.equal(probes(), 1, 'no probe after a good commit');
  t.equal(sink.calls.length, 1);
});

t.test('an item failing with SQLITE_FULL raises db-error with its code and operation; a commit that writes nothing does not clear it; the probe clears once writes work', async (t) => {
  const { db, clock, sink, writer, fill, unfill, big, probes } = setup(t);
  await writer.run(big('warm-up'));
  await turns();
  t.equal(probes(), 1, 'the start\'s probe');
  fill();
  const err = await writer.run(big('secret-data'), 'device-event').then(() => null, (e: unknown) => e);
  t.equal((err as { code?: string } | null)?.code, 'SQLITE_FULL', 'the caller is rejected: nothing is acknowledged');
  t.same(sink.calls.slice(1), [{ op: 'raise', kind: 'db-error', subject: 'db', detail: { code: 'SQLITE_FULL', operation: 'device-event' } }]);
  t.notMatch(JSON.stringify(sink.calls), /secret-data/, 'never the data');
  t.equal(db.prepare('SELECT count(*) AS n FROM items').get().n, 2, 'the failed item is not stored (the warm-up and the start\'s probe are)');
  // A batch that changes nothing commits on a full store: it triggers a probe, which fails.
  await writer.run(() => db.prepare('SELECT 1').get(), 'read');
  await turns();
  t.equal(probes(), 2, 'a commit after the failure: probed at once');
  t.equal(sink.calls.length, 2, 'the probe failed (still full): not cleared, not raised again');
  clock.advance(9_999);
  t.equal(probes(), 2);
  clock.advance(1);
  t.equal(probes(), 3, 'while failing, a probe every interval');
  await turns();
  t.equal(sink.calls.length, 2, 'still full');
  unfill();
  clock.advance(10_000);
  t.equal(probes(), 4);
  await turns();
  t.same(sink.ops().slice(2), ['clear db-error db'], 'a committed probe clears it');
  clock.advance(100_000);
  t.equal(probes(), 4, 'no probe while the store is writable');
  await writer.run(big('after'));
  await turns();
  t.equal(sink.calls.length, 3, 'a good commit after a good commit tells nothing');
});

t.test('SQLITE_FULL in one item: SQLite ends the whole transaction, so the whole batch fails and nothing after it commits on its own', async (t) => {
  const { db, sink, writer, fill, unfill, big } = setup(t);
  await writer.run(big('warm-up'));
  await turns();
  fill();
  const settle = (p: Promise<unknown>) => p.then(() => 'committed', (e: { code?: string }) => e.code);
  // One batch: a small write before, the one that does not fit, a small write after.
  const before = settle(writer.run(() => db.prepare('INSERT INTO items (label) VALUES (?)').run('before'), 'reload'));
  const full = settle(writer.run(big('z'), 'device-event'));
  const after = settle(writer.run(() => db.prepare('INSERT INTO items (label) VALUES (?)').run('after'), 'retry'));
  t.same([await before, await full, await after], ['SQLITE_FULL', 'SQLITE_FULL', 'SQLITE_FULL'], 'every item of the batch rejected with the store\'s code');
  const labels = (db.prepare("SELECT label FROM items WHERE label IN ('before', 'after')").all() as { label: string }[]).map((r) => r.label);
  t.same(labels, [], 'nothing of the batch is stored: no item ran outside the transaction');
  t.same(sink.calls.slice(1), [{ op: 'raise', kind: 'db-error', subject: 'db', detail: { code: 'SQLITE_FULL', operation: 'device-event' } }], 'the operation that did not fit');
  unfill();
  t.equal(await settle(writer.run(big('y'))), 'committed');
  await turns();
  t.same(sink.ops().slice(2), ['clear db-error db'], 'the next commit probes, the probe commits: cleared');
});

t.test('a constraint error is the caller\'s, not the store\'s: no fault', async (t) => {
  const { sink, writer, big } = setup(t);
  await writer.run(big('same'));
  const err = await writer.run(big('same')).catch((e: unknown) => e);
  t.match((err as { code?: string }).code, /^SQLITE_CONSTRAINT/);
  await turns();
  t.same(sink.ops(), ['clear db-error db'], 'only the start\'s clear');
});

t.test('a batch whose COMMIT fails (a read-only store) raises with operation commit', async (t) => {
  const { sink, writer, big } = setup(t);
  await writer.run(big('warm-up'));
  // A COMMIT that fails by itself (the file made read-only under a running gateway): a stand-in
  // database whose transaction throws as better-sqlite3 does at that COMMIT.
  const failing = new GroupCommitWriter({
    db: { pragma: () => 2, transaction: () => Object.assign(() => undefined, { immediate: () => { throw Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' }); } }) } as never,
    log: createLogger('silent'),
    watch: { failed: (operation, code) => sink.raiseGateway('db-error', 'db', { code, operation }), recovered: () => sink.clearGateway('db-error', 'db') },
  });
  const err = await failing.run(() => 1, 'device-event').catch((e: unknown) => e);
  t.equal((err as { code?: string }).code, 'SQLITE_READONLY');
  t.same(sink.calls.slice(1), [{ op: 'raise', kind: 'db-error', subject: 'db', detail: { code: 'SQLITE_READONLY', operation: 'commit' } }]);
  t.equal(failing.stats.failedBatches, 1);
  await writer.run(big('ok'));
});
