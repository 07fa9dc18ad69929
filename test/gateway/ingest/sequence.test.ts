/**
 * De-duplication by (device, boot, seq) (gateway/ingest/sequence.ts), on a real database with the
 * group-commit writer: the rule, the mark moved in the database and on the device record together,
 * memory following a rolled-back item back, the installer's reset; and that no other module of the
 * gateway or the bridges writes a device's mark.
 */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeviceSequences, placeInSequence, resetDeviceCounter } from '../../../gateway/ingest/sequence.js';
import { GroupCommitWriter } from '../../../gateway/ingest/writer.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { getDevice } from '../../../gateway/registry/registry.js';
import { Counters } from '../../../gateway/metrics.js';
import { createLogger } from '../../../gateway/logger.js';

const U32 = 0xffff_ffff;

t.test('the sequence rule: a lower boot is never a silent duplicate', async (t) => {
  t.equal(placeInSequence({ boot: null, seq: null }, { boot: 3, seq: 9 }), 'first', 'no mark (new, or reset by the installer): any sequence');
  t.equal(placeInSequence({ boot: 5, seq: 3 }, { boot: 5, seq: 4 }), 'next');
  t.equal(placeInSequence({ boot: 5, seq: 3 }, { boot: 5, seq: 3 }), 'repeat', 'a resend after a lost PUBACK');
  t.equal(placeInSequence({ boot: 5, seq: 3 }, { boot: 5, seq: 1 }), 'repeat', 'an equal boot with a lower seq stays a duplicate');
  t.equal(placeInSequence({ boot: 5, seq: 3 }, { boot: 6, seq: 1 }), 'newer-boot');
  t.equal(placeInSequence({ boot: 5, seq: 3 }, { boot: 4, seq: 1 }), 'lower-boot');
  t.equal(placeInSequence({ boot: 5, seq: 3 }, { boot: 0, seq: 0 }), 'lower-boot');
  t.equal(placeInSequence({ boot: U32, seq: 1 }, { boot: 1, seq: 1 }), 'lower-boot', 'below an absurd mark');
  t.equal(placeInSequence({ boot: Number.MAX_SAFE_INTEGER, seq: 1 }, { boot: U32, seq: 1 }), 'lower-boot', 'below a mark beyond u32 (an older version)');
});

function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'lf-seq-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir);
  t.teardown(() => db.close());
  db.pragma('foreign_keys = OFF');
  db.prepare("INSERT INTO devices (id, shop_id, type, transport, created_at) VALUES ('K1', 'S1', 'keypad', 'mqtt', '2026-12-01T00:00:00.000Z')").run();
  const writer = new GroupCommitWriter({ db, log: createLogger('silent') });
  t.teardown(() => writer.close());
  const counters = new Counters();
  const sequences = new DeviceSequences(db, counters, createLogger('silent'));
  const device = getDevice(db, 'K1')!;
  const stored = () => db.prepare("SELECT last_boot AS boot, last_seq AS seq FROM devices WHERE id = 'K1'").get();
  return { db, writer, counters, sequences, device, stored };
}

t.test('the mark moves in the database and on the device record together, and only for what is taken', async (t) => {
  const { writer, counters, sequences, device, stored } = setup(t);
  const place = (boot: number | undefined, seq: number, via = 'mqtt') =>
    writer.run((fx) => sequences.place(fx, device, { ...(boot === undefined ? {} : { boot }), seq, type: 'heartbeat' }, via));
  t.same(await place(4, 1), { status: 'new', sequence: 'first', newSequence: false });
  t.same([stored(), device.lastBoot, device.lastSeq], [{ boot: 4, seq: 1 }, 4, 1]);
  t.same(await place(4, 1), { status: 'duplicate' });
  t.same(await place(5, 1), { status: 'new', sequence: 'newer-boot', newSequence: true }, 'a new power-up: what was half typed is forgotten');
  t.same(await place(undefined, 1), { status: 'new', newSequence: false }, 'no boot: not placed (the MQTT ingress de-duplicates it per connection)');
  t.same(stored(), { boot: 5, seq: 1 }, 'the mark stays');
  t.same(await place(2, 1, 'serial'), { status: 'refused', reason: 'counter-reset', counterReset: { previousBoot: 5, previousSeq: 1, boot: 2, seq: 1, events: 'refused' } });
  t.same([stored(), device.lastBoot], [{ boot: 5, seq: 1 }, 5], 'refused: the mark stays');
  t.same(await place(2, 1, 'modbus'), { status: 'new', sequence: 'lower-boot', newSequence: true }, "a bridge's own counter that went back: a new sequence, no reset");
  t.same(counters.get('events.duplicate'), 1);
  t.same(counters.get('events.bridge-counter-restarted'), 1);
});

t.test('a rolled-back item leaves no mark in memory; the installer reset forgets both marks', async (t) => {
  const { db, writer, sequences, device, stored } = setup(t);
  await writer.run((fx) => sequences.place(fx, device, { boot: 3, seq: 7, type: 'heartbeat' }, 'mqtt'));
  await t.rejects(
    writer.run((fx) => {
      sequences.place(fx, device, { boot: 3, seq: 8, type: 'heartbeat' }, 'mqtt');
      throw new Error('the store failed');
    }),
    /the store failed/,
  );
  t.same([stored(), device.lastBoot, device.lastSeq], [{ boot: 3, seq: 7 }, 3, 7], 'back at seq 7: the resend of seq 8 is taken');

  const done = await writer.run((fx) => resetDeviceCounter(db, 'K1', 'cli:tester', '2026-12-01T00:00:01.000Z', { fx, device }));
  t.same(done, { deviceId: 'K1', previous: { boot: 3, seq: 7 }, faultsCleared: 0 });
  t.same([stored(), device.lastBoot, device.lastSeq], [{ boot: null, seq: null }, null, null]);
  await t.rejects(
    writer.run((fx) => {
      sequences.place(fx, device, { boot: 1, seq: 1, type: 'heartbeat' }, 'serial');
      throw new Error('again');
    }),
  );
  t.same([device.lastBoot, device.lastSeq], [null, null], 'a rolled-back first event leaves the mark forgotten');
  t.throws(() => resetDeviceCounter(db, 'NOPE', 'cli', '2026-12-01T00:00:02.000Z'), { code: 'LF_ERR_NOT_FOUND' });
});

t.test('no module but gateway/ingest/sequence.ts writes a device high-water mark', async (t) => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const sources = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  const writes = /\.last(Boot|Seq)\s*=[^=]|last_(boot|seq)\s*=\s*[?@:N]/;
  const offenders = ['gateway', 'devices', 'broker', 'simulators']
    .flatMap(sources)
    .filter((f) => f !== join('gateway', 'ingest', 'sequence.ts') && writes.test(readFileSync(join(root, f), 'utf8')));
  t.same(offenders, []);
  t.ok(writes.test(readFileSync(join(root, 'gateway/ingest/sequence.ts'), 'utf8')), 'the pattern finds the owner itself (so it can find anyone else)');
});
