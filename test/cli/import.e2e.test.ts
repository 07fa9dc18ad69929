/**
 * Bulk set-up as an installer does it: `lianfang import shops|devices`, `export`, `shop pin --from`,
 * run as child processes on real files. A 300-shop file saved in GBK imports and every shop's ten
 * neighbours are what an independent haversine computation here says; two bad rows import nothing
 * and are both named; a re-import or a dry run changes nothing; device credentials go to a 0600
 * file and work on a real gateway; export → import is a round trip.
 */
import t, { type Test } from 'tap';
import iconv from 'iconv-lite';
import mqtt from 'mqtt';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { cli, GatewayProcess, query, tempDataDir } from '../helpers/gateway.js';

const json = <T>(s: string): T => JSON.parse(s) as T;

/** A CSV cell, quoted when it must be. */
const cell = (v: string | number) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
const csv = (rows: (string | number)[][]) => rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';

async function stationPS1(t: Test): Promise<string> {
  const data = tempDataDir(t);
  const r = await cli(['station', 'add', '--id', 'PS1', '--name', '长平路派出所', '--data', data]);
  t.equal(r.code, 0, r.stderr);
  return data;
}

/** Great-circle distance on the mean Earth sphere, written here independently of gateway/geo.ts. */
function haversineM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const R = 6_371_008.8;
  const toRad = (d: number) => (d * Math.PI) / 180;
  const h = Math.sin(toRad(b.lat - a.lat) / 2) ** 2 + Math.cos(toRad(a.lat)) * Math.cos(toRad(b.lat)) * Math.sin(toRad(b.lon - a.lon) / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

const SURNAMES = ['李', '王', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周'];
const TRADES = ['茶行', '粿条', '五金', '药房', '米铺', '酒家', '布庄', '眼镜', '鞋店', '书局'];

interface Street {
  id: string;
  name: string;
  address: string;
  lat: number;
  lon: number;
  phone: string;
}

/** `n` shops along two facing rows of a street in Shantou, each a little off the line (a seeded walk). */
function street(n: number): Street[] {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: n }, (_, i) => ({
    id: `S${String(i + 1).padStart(3, '0')}`,
    name: `${SURNAMES[i % 10]}记${TRADES[Math.floor(i / 10) % 10]}`,
    address: `汕头市长平路${i + 1}号`,
    lat: Number((23.354 + (i % 2) * 0.00025 + rnd() * 0.00004).toFixed(6)),
    lon: Number((116.682 + Math.floor(i / 2) * 0.00006 + rnd() * 0.00002).toFixed(6)),
    phone: `138${String(i).padStart(8, '0')}`,
  }));
}

const SHOP_HEADER = ['id', 'name', 'address', 'lat', 'lon', 'station', 'door-plate', 'owner-phone'];
const shopRows = (shops: Street[]) => shops.map((s) => [s.id, s.name, s.address, s.lat, s.lon, 'PS1', `${s.id.slice(1)}号`, s.phone]);

t.test('a 300-shop file in GBK imports, and every shop has the right ten neighbours', async (t) => {
  const data = await stationPS1(t);
  const shops = street(300);
  const file = join(data, 'street-gbk.csv');
  writeFileSync(file, iconv.encode(csv([SHOP_HEADER, ...shopRows(shops)]), 'gbk'));
  t.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(file)), 'the file really is not UTF-8');

  const r = await cli(['import', 'shops', file, '--json', '--data', data]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { encoding: 'gbk', created: 300, updated: 0, unchanged: 0 });
  const stored = json<{ id: string; name: string; address: string; doorPlate: string }[]>((await cli(['shop', 'list', '--json', '--data', data])).stdout);
  t.same(
    stored.map((s) => [s.id, s.name, s.address]),
    shops.map((s) => [s.id, s.name, s.address]),
    'the Chinese names and addresses read back as written',
  );

  // Every shop's first ring as the CLI reports it (the ranking the engine cuts its rings from).
  const all = await cli(['neighbours', '--all', '--count', '10', '--json', '--data', data]);
  t.equal(all.code, 0, all.stderr);
  const reported = new Map(json<{ shopId: string; neighbours: { rank: number; shopId: string; distanceM: number }[] }[]>(all.stdout).map((a) => [a.shopId, a.neighbours]));
  t.equal(reported.size, 300, 'every shop is reported');
  const wrong: string[] = [];
  for (const origin of shops) {
    const got = [...(reported.get(origin.id) ?? [])].sort((a, b) => a.rank - b.rank);
    const want = shops
      .filter((o) => o.id !== origin.id)
      .map((o) => ({ shopId: o.id, d: haversineM(origin, o) }))
      .sort((a, b) => a.d - b.d || (a.shopId < b.shopId ? -1 : 1))
      .slice(0, 10);
    const same = got.length === 10 && want.every((w, i) => got[i]!.shopId === w.shopId && Math.abs(got[i]!.distanceM - w.d) <= 0.051);
    if (!same) wrong.push(`${origin.id}: got ${JSON.stringify(got.map((g) => [g.shopId, g.distanceM]))}, want ${JSON.stringify(want.map((w) => [w.shopId, Math.round(w.d * 10) / 10]))}`);
  }
  // And one shop asked on its own says the same.
  const one = json<{ rank: number; shopId: string }[]>((await cli(['neighbours', 'S150', '--json', '--data', data])).stdout).slice(0, 10).map((r) => r.shopId);
  t.same(one, reported.get('S150')!.map((r) => r.shopId), 'neighbours S150 agrees with --all');
  t.same(wrong, [], 'all 300 shops have the ten nearest, at the right distances');
});

t.test('a file with two bad rows imports nothing and names both lines and columns', async (t) => {
  const data = await stationPS1(t);
  const [a, b, c, d] = street(4);
  const rows = shopRows([a!, b!, c!, d!]);
  rows[1]![3] = 'north'; // line 3: lat is not a number
  rows[3]![5] = 'PS9'; // line 5: no such station
  const file = join(data, 'bad.csv');
  writeFileSync(file, csv([SHOP_HEADER, ...rows]));
  const r = await cli(['import', 'shops', file, '--data', data]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /line 3, column lat: "north" is not a number/);
  t.match(r.stderr, /line 5, column station: station PS9 does not exist/);
  t.match(r.stderr, /LF_ERR_IMPORT_ROWS: .*bad\.csv: 2 row\(s\) with errors/);
  t.same(query(data, 'SELECT id FROM shops'), [], 'not even the good rows were written');
  const j = await cli(['import', 'shops', file, '--json', '--data', data]);
  t.same(json<{ errors: { line: number; column: string }[] }>(j.stdout).errors.map((e) => [e.line, e.column]), [[3, 'lat'], [5, 'station']]);

  const unknown = join(data, 'unknown.csv');
  writeFileSync(unknown, csv([[...SHOP_HEADER, 'colour', 'floor'], [...shopRows([a!])[0]!, 'red', '2']]));
  const u = await cli(['import', 'shops', unknown, '--data', data]);
  t.equal(u.code, 2);
  t.match(u.stderr, /unknown column\(s\) "colour", "floor"/);
  t.same(query(data, 'SELECT id FROM shops'), []);
});

t.test('a dry run writes nothing; a re-import changes nothing; an edit changes only what it says', async (t) => {
  const data = await stationPS1(t);
  const shops = street(20);
  const file = join(data, 'street.csv');
  writeFileSync(file, '\ufeff' + csv([SHOP_HEADER, ...shopRows(shops)]));
  const dry = await cli(['import', 'shops', file, '--dry-run', '--json', '--data', data]);
  t.equal(dry.code, 0, dry.stderr);
  t.match(json(dry.stdout), { dryRun: true, created: 20, encoding: 'utf8' });
  t.same(query(data, 'SELECT id FROM shops'), [], 'the dry run wrote nothing');

  t.equal((await cli(['import', 'shops', file, '--data', data])).code, 0);
  const before = query(data, 'SELECT * FROM shops ORDER BY id');
  const again = await cli(['import', 'shops', file, '--json', '--data', data]);
  t.match(json(again.stdout), { created: 0, updated: 0, unchanged: 20 });
  t.same(query(data, 'SELECT * FROM shops ORDER BY id'), before, 'the shops table is as it was');

  // Only id, name, address, station and owner-phone: S02's phone cleared, S03's name changed; lat/lon (absent) stay.
  const edit = join(data, 'edit.csv');
  writeFileSync(edit, csv([['id', 'name', 'address', 'station', 'owner-phone'], ['S002', shops[1]!.name, shops[1]!.address, 'PS1', ''], ['S003', '新名字', shops[2]!.address, 'PS1', shops[2]!.phone]]));
  const e = await cli(['import', 'shops', edit, '--json', '--data', data]);
  t.equal(e.code, 0, e.stderr);
  t.match(json(e.stdout), { created: 0, updated: 2, unchanged: 0, updatedFields: { S002: ['ownerPhone'], S003: ['name'] } });
  const after = query<{ id: string; name: string; owner_phone: string | null; lat: number }>(data, "SELECT * FROM shops WHERE id IN ('S002', 'S003') ORDER BY id");
  t.match(after, [{ owner_phone: null, lat: shops[1]!.lat }, { name: '新名字', lat: shops[2]!.lat }]);
});

t.test('neighbours may name shops created earlier in the same file; export → import is a round trip', async (t) => {
  const data = await stationPS1(t);
  const file = join(data, 'listed.csv');
  writeFileSync(file, csv([['id', 'name', 'address', 'station', 'neighbours', 'cameras'], ['H1', '一号', '巷1号', 'PS1', '', 'cam-1'], ['H2', '二号', '巷2号', 'PS1', 'H1', ''], ['H3', '三号', '巷3号', 'PS1', 'H1,H2', 'cam-2,cam-3']]));
  const r = await cli(['import', 'shops', file, '--data', data]);
  t.equal(r.code, 0, r.stderr);
  t.same(json<{ shopId: string }[]>((await cli(['neighbours', 'H3', '--json', '--data', data])).stdout).map((n) => n.shopId), ['H1', 'H2']);

  const out = join(data, 'export.csv');
  t.equal((await cli(['export', 'shops', out, '--data', data])).code, 0);
  const stdout = (await cli(['export', 'shops', '--data', data])).stdout;
  t.equal(readFileSync(out, 'utf8'), '\ufeff' + stdout, 'the file is stdout with a BOM');
  t.match(stdout, /H3,三号,巷3号,,,PS1,.*"cam-2,cam-3",,"H1,H2"/);
  const before = query(data, 'SELECT * FROM shops ORDER BY id');
  const back = await cli(['import', 'shops', out, '--json', '--data', data]);
  t.match(json(back.stdout), { created: 0, updated: 0, unchanged: 3 });
  t.same(query(data, 'SELECT * FROM shops ORDER BY id'), before);
  writeFileSync(out, readFileSync(out, 'utf8').replace('二号', '二号店'));
  t.match(json((await cli(['import', 'shops', out, '--json', '--data', data])).stdout), { updated: 1, unchanged: 2, updatedFields: { H2: ['name'] } });

  // GBK out, GBK in.
  const gbk = join(data, 'export-gbk.csv');
  t.equal((await cli(['export', 'shops', gbk, '--encoding', 'gbk', '--data', data])).code, 0);
  t.match(iconv.decode(readFileSync(gbk), 'gbk'), /二号店/);
  t.match(json((await cli(['import', 'shops', gbk, '--json', '--data', data])).stdout), { encoding: 'gbk', unchanged: 3 });
});

t.test('import devices: refused without --credentials; the credentials file is 0600 and its password logs in', async (t) => {
  const data = await stationPS1(t);
  const shops = join(data, 'shops.csv');
  writeFileSync(shops, csv([SHOP_HEADER, ...shopRows(street(3))]));
  t.equal((await cli(['import', 'shops', shops, '--data', data])).code, 0);
  const gw = await GatewayProcess.start(t, data);

  const file = join(data, 'devices.csv');
  writeFileSync(file, csv([['shop', 'type', 'transport', 'port', 'bus-address'], ['S001', 'keypad', 'mqtt', '', ''], ['S002', 'keypad', 'mqtt', '', ''], ['S002', 'keypad', 'mqtt', '', ''], ['S003', 'keypad', 'serial', '/dev/ttyLF-test0', '3']]));
  const refused = await cli(['import', 'devices', file, '--data', data]);
  t.equal(refused.code, 2);
  t.match(refused.stderr, /LF_ERR_INVALID_ARGUMENT: invalid --credentials/);
  t.same(query(data, 'SELECT id FROM devices'), [], 'nothing was written');

  const creds = join(data, 'creds.csv');
  const r = await cli(['import', 'devices', file, '--credentials', creds, '--json', '--data', data]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { created: 4, warnings: [{ line: 4 }] });
  t.match(r.stderr, /warning, line 4: shop S002 gets a second keypad over mqtt/);
  t.equal(statSync(creds).mode & 0o777, 0o600, 'the credentials file is 0600');
  const lines = readFileSync(creds, 'utf8').trim().split('\n');
  t.equal(lines[0], 'shop,device-id,transport,username,password,mac-key');
  const rows = lines.slice(1).map((l) => l.split(','));
  t.equal(rows.length, 4);
  for (const [, , transport, , password, macKey] of rows) {
    const secret = transport === 'mqtt' ? password! : macKey!;
    t.ok(secret.length >= 32, `${transport}: a secret was issued`);
    t.notOk(r.stdout.includes(secret) || r.stderr.includes(secret), 'and it is not on the terminal');
  }
  t.match(rows[3], ['S003', /^S003\.keypad\./, 'serial', '', '', /^[0-9a-f]{64}$/]);

  const [shopId, deviceId, , username, password] = rows[0]!;
  t.equal(shopId, 'S001');
  const client = await mqtt.connectAsync(gw.mqttUrl, { clientId: deviceId, username, password, reconnectPeriod: 0 });
  t.teardown(() => client.end(true));
  t.ok(client.connected, 'the MQTT device logs in with the issued password');
  await client.subscribeAsync(`lianfang/v1/shops/${shopId}/alerts`, { qos: 1 });

  // A second run never overwrites the credentials file.
  const again = await cli(['import', 'devices', file, '--credentials', creds, '--data', data]);
  t.equal(again.code, 2);
  t.match(again.stderr, /exists: name a new file/);
  t.equal(query(data, 'SELECT id FROM devices').length, 4);

  // Export → import: unchanged, and no credentials file is created.
  const exported = join(data, 'devices-export.csv');
  t.equal((await cli(['export', 'devices', exported, '--data', data])).code, 0);
  const text = readFileSync(exported, 'utf8');
  for (const [, , , , pw, key] of rows) t.notOk(text.includes(pw || key!), 'the export holds no secret');
  const creds2 = join(data, 'creds2.csv');
  const back = await cli(['import', 'devices', exported, '--credentials', creds2, '--json', '--data', data]);
  t.equal(back.code, 0, back.stderr);
  t.match(json(back.stdout), { created: 0, updated: 0, unchanged: 4 });
  t.notOk(existsSync(creds2), 'nothing issued, no credentials file');

  // Moving the serial keypad to address 4 updates it; changing its transport is an error of its row.
  const serialId = rows[3]![1]!;
  const move = join(data, 'move.csv');
  writeFileSync(move, csv([['id', 'shop', 'type', 'transport', 'bus-address'], [serialId, 'S003', 'keypad', 'serial', '4'], [deviceId!, 'S001', 'keypad', 'modbus-tcp', '']]));
  const bad = await cli(['import', 'devices', move, '--credentials', creds2, '--data', data]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /line 3, column transport: .*is mqtt, not modbus-tcp/);
  writeFileSync(move, csv([['id', 'shop', 'type', 'transport', 'bus-address'], [serialId, 'S003', 'keypad', 'serial', '4']]));
  const moved = await cli(['import', 'devices', move, '--credentials', creds2, '--json', '--data', data]);
  t.equal(moved.code, 0, moved.stderr);
  t.match(json(moved.stdout), { updated: 1, updatedFields: { [serialId]: ['busAddress'] } });
  t.same(query(data, 'SELECT bus_address FROM devices WHERE id = ?', serialId), [{ bus_address: 4 }]);
});

t.test('shop pin --from: all rows checked first, every bad one named, then all set', async (t) => {
  const data = await stationPS1(t);
  const shops = join(data, 'shops.csv');
  writeFileSync(shops, csv([SHOP_HEADER, ...shopRows(street(3))]));
  t.equal((await cli(['import', 'shops', shops, '--data', data])).code, 0);
  const pins = join(data, 'pins.csv');
  writeFileSync(pins, csv([['shop', 'pin', 'duress-pin'], ['S001', '2468', '1357'], ['S002', '12', '1357'], ['S009', '2468', '1357'], ['S003', '5555', '5555']]));
  const bad = await cli(['shop', 'pin', '--from', pins, '--data', data]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /line 3, column pin: invalid PIN: it must be 4 to 8 digits/);
  t.match(bad.stderr, /line 4, column shop: shop S009 does not exist/);
  t.match(bad.stderr, /line 5, column duress-pin: .*must differ from the PIN/);
  t.notOk(/2468|1357|5555/.test(bad.stderr + bad.stdout), 'no PIN is echoed');
  t.same(query(data, 'SELECT shop_id FROM shop_pins'), []);

  writeFileSync(pins, csv([['shop', 'pin', 'duress-pin'], ['S001', '2468', '1357'], ['S002', '0123', '9876'], ['S003', '5555', '6666']]));
  const ok = await cli(['shop', 'pin', '--from', pins, '--json', '--data', data]);
  t.equal(ok.code, 0, ok.stderr);
  t.same(json<{ shops: string[] }>(ok.stdout).shops, ['S001', 'S002', 'S003']);
  t.same(query(data, 'SELECT shop_id FROM shop_pins ORDER BY shop_id').map((r) => r.shop_id), ['S001', 'S002', 'S003']);
});

t.test('--help of the bulk commands has an example', async (t) => {
  for (const c of [['import', 'shops'], ['import', 'devices'], ['export', 'shops'], ['export', 'devices'], ['shop', 'pin']]) {
    const r = await cli([...c, '--help']);
    t.equal(r.code, 0, c.join(' '));
    t.match(r.stdout, /Example/, `${c.join(' ')} --help has an example`);
    t.match(r.stdout, /--data/);
  }
});
