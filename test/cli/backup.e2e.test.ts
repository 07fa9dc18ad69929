/**
 * `lianfang backup` while a real gateway runs and alarms keep flowing over MQTT, and `lianfang
 * restore` into a fresh data directory: the copy is whole and holds every alarm event the gateway
 * had acknowledged (PUBACK) to its device before the backup began. Restore is refused while a
 * gateway runs, with the wrong key, and for a file that is not a database.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { statSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, cli, sleep } from '../helpers/gateway.js';

t.test('backup under alarm load, restore into a fresh data directory', async (t) => {
  const data = tempDataDir(t);
  const out = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const { keypads } = await connectStreet(t, street, gw.mqttUrl);

  // Every shop's keypad raises 9# over and over; what the gateway acknowledged is recorded.
  const acked: { deviceId: string; shopId: string; seq: number }[] = [];
  let flowing = true;
  const loops = street.shops.map(async (s) => {
    const kp = keypads.get(s.shopId)!;
    while (flowing) {
      await kp.press('9#');
      acked.push({ deviceId: s.deviceId, shopId: s.shopId, seq: (kp as unknown as { seq: number }).seq });
      await sleep(20);
    }
  });
  await sleep(1000);
  const before = acked.slice();
  t.ok(before.length > 0, 'alarms were flowing before the backup');
  const file = join(out, 'backup.db');
  const keyFile = join(out, 'gateway.key');
  const b = await cli(['backup', file, '--key-to', keyFile, '--data', data, '--json']);
  t.equal(b.code, 0, b.stderr);
  t.ok(acked.length > before.length, 'alarms kept flowing during the backup');
  const again = await cli(['backup', file, '--data', data]);
  t.not(again.code, 0, 'an existing backup file is never overwritten');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal(statSync(keyFile).mode & 0o777, 0o600);

  // Restore is refused while the gateway runs on the data directory.
  const busy = await cli(['restore', file, '--data', data]);
  t.match(busy.stderr, /LF_ERR_DATA_LOCKED/);
  flowing = false;
  await Promise.all(loops);
  await gw.kill('SIGTERM');
  await gw.exited;

  // A key that is not the backup's, and a file that is not a database, are refused.
  const fresh = tempDataDir(t);
  const wrongKey = join(out, 'wrong.key');
  writeFileSync(wrongKey, 'ab'.repeat(32) + '\n', { mode: 0o600 });
  t.match((await cli(['restore', file, '--key', wrongKey, '--data', fresh])).stderr, /LF_ERR_KEY_MISMATCH/);
  const junk = join(out, 'junk.db');
  writeFileSync(junk, 'not a database at all, just text '.repeat(200));
  t.match((await cli(['restore', junk, '--key', keyFile, '--data', fresh])).stderr, /LF_ERR_BACKUP_INVALID/);

  const r = await cli(['restore', file, '--key', keyFile, '--data', fresh, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(statSync(join(fresh, 'lianfang.db')).mode & 0o777, 0o600);
  t.equal(statSync(join(fresh, 'gateway.key')).mode & 0o777, 0o600);
  const db = new Database(join(fresh, 'lianfang.db'), { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  const hasEvent = db.prepare("SELECT 1 FROM events WHERE device_id = ? AND seq = ? AND type = 'keypad'");
  const hasAlarm = db.prepare('SELECT 1 FROM alarms WHERE shop_id = ?');
  const missing = before.filter((a) => !hasEvent.get(a.deviceId, a.seq) || !hasAlarm.get(a.shopId));
  t.same(missing, [], `all ${before.length} events acknowledged before the backup are in it`);

  // Restoring over an existing database keeps it aside.
  const r2 = await cli(['restore', file, '--data', fresh]);
  t.equal(r2.code, 0, r2.stderr);
  t.ok(readdirSync(fresh).some((f) => f.startsWith('lianfang.db.before-restore-')), 'the previous database was kept aside');
});
