/**
 * `lianfang shop pin` as a child process (gateway/cli/lianfang.ts, gateway/alarm/pins.ts): PINs from
 * flags or LF_PIN / LF_DURESS_PIN, validated (4–8 digits, different), stored only as keyed hashes,
 * never printed; --clear; a running gateway takes the change through the admin channel.
 */
import t from 'tap';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, oneShopStreet, query, GatewayProcess } from '../helpers/gateway.js';

const json = <T = any>(s: string): T => JSON.parse(s) as T;

/** Every row of every table, as text (BLOBs as latin1): for a PIN in clear. */
function everyRow(data: string): string {
  const tables = query<{ name: string }>(data, "SELECT name FROM sqlite_master WHERE type = 'table'");
  return tables
    .map(({ name }) => JSON.stringify(query(data, `SELECT * FROM "${name}"`), (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v)))
    .join('\n');
}


t.test('set from flags or the environment, never printed, stored as keyed hashes only; --clear', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  let r = await cli(['shop', 'pin', 'S01', '--pin', '2468', '--duress-pin', '1357', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.notMatch(r.stdout + r.stderr, /2468|1357/, 'the PINs are not printed');
  t.match(r.stdout, /S01/);
  const rows = query<{ shop_id: string; pin_hash: Buffer; duress_hash: Buffer }>(data, 'SELECT shop_id, pin_hash, duress_hash FROM shop_pins');
  t.equal(rows.length, 1);
  const key = Buffer.from(readFileSync(join(data, 'gateway.key'), 'utf8').trim(), 'hex');
  const expected = (pin: string) => createHmac('sha256', key).update(`lianfang pin v1\0S01\0${pin}`).digest();
  t.same(Buffer.from(rows[0].pin_hash), expected('2468'), 'the PIN as HMAC-SHA-256 under the gateway key');
  t.same(Buffer.from(rows[0].duress_hash), expected('1357'), 'the duress PIN likewise');
  t.notOk(everyRow(data).includes('2468') || everyRow(data).includes('1357'), 'no PIN in clear in any table');
  t.match(query(data, "SELECT actor, action, detail FROM audit WHERE action = 'pin-set'"), [{ action: 'pin-set', detail: JSON.stringify({ shopId: 'S01' }) }], 'an audit row without the PINs');

  r = await cli(['shop', 'pin', 'S01', '--json', ...d], { LF_PIN: '86420', LF_DURESS_PIN: '97531' });
  t.equal(r.code, 0, r.stderr);
  t.same(json(r.stdout), { shopId: 'S01', pins: true });
  t.same(Buffer.from(query<{ h: Buffer }>(data, 'SELECT pin_hash AS h FROM shop_pins')[0].h), expected('86420'), 'from LF_PIN');
  t.notOk(everyRow(data).includes('86420') || everyRow(data).includes('97531'));

  r = await cli(['shop', 'pin', 'S01', '--clear', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.same(json(r.stdout), { shopId: 'S01', pins: false, had: true });
  t.equal(query(data, 'SELECT * FROM shop_pins').length, 0, 'cleared');
});

t.test('validation: 4–8 digits, both given, different, an existing shop; --clear with PINs is refused', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--pin', '123', '--duress-pin', '1357'], {}, /PIN.*4 to 8 digits/],
    [['--pin', '123456789', '--duress-pin', '1357'], {}, /4 to 8 digits/],
    [['--pin', '12a4', '--duress-pin', '1357'], {}, /4 to 8 digits/],
    [['--pin', '2468', '--duress-pin', '13'], {}, /duress PIN.*4 to 8 digits/],
    [['--pin', '2468', '--duress-pin', '2468'], {}, /must differ/],
    [['--pin', '2468'], {}, /--duress-pin/],
    [[], {}, /--pin/],
    [['--clear', '--pin', '2468'], {}, /either --clear or the PINs/],
  ];
  for (const [args, env, message] of cases) {
    const r = await cli(['shop', 'pin', 'S01', ...args, ...d], { LF_PIN: '', LF_DURESS_PIN: '', ...env });
    t.not(r.code, 0, `${args.join(' ')}: refused`);
    t.match(r.stderr, /LF_ERR_INVALID_ARGUMENT/, `${args.join(' ')}: coded`);
    t.match(r.stderr, message, `${args.join(' ')}: says why`);
    t.notMatch(r.stderr + r.stdout, /2468|1357|12a4|123456789/, 'and never echoes a PIN');
  }
  const r = await cli(['shop', 'pin', 'NOPE', '--pin', '2468', '--duress-pin', '1357', ...d]);
  t.not(r.code, 0);
  t.match(r.stderr, /LF_ERR_NOT_FOUND/);
  t.equal(query(data, 'SELECT * FROM shop_pins').length, 0, 'nothing stored');
});

t.test('a running gateway is told (admin reload) and its log holds no PIN', async (t) => {
  const data = await oneShopStreet(t);
  const gw = await GatewayProcess.start(t, data);
  const r = await cli(['shop', 'pin', 'S01', '--data', data], { LF_PIN: '24682468', LF_DURESS_PIN: '13571357' });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /running gateway has taken the change/);
  await gw.kill();
  const log = JSON.stringify(gw.logs);
  t.ok(gw.logs.length > 0, 'the gateway logged');
  t.notOk(log.includes('24682468') || log.includes('13571357'), 'not in the gateway log');
});
