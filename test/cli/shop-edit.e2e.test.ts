/**
 * `lianfang shop add|edit` refuse what an installer mistypes (a phone number that is not one,
 * coordinates outside China, lat and lon swapped) with the coded error and a hint, writing nothing;
 * `shop edit` changes and clears fields (never a required one); `shop remove` retires a shop: refused
 * while an officer has an alarm of it to close and while it has live devices (unless --force, which
 * revokes them and makes the running gateway drop a connected keypad), and a retired shop takes no
 * edits, no devices and no second registration.
 */
import t, { type Test } from 'tap';
import { cli, connectStreet, GatewayProcess, provisionStreet, query, tempDataDir } from '../helpers/gateway.js';
import { SimKeypad } from '../../simulators/mqtt-devices.js';

const SHOP = ['--id', 'S01', '--name', '李记茶行', '--address', 'Changping Rd 23', '--station', 'PS1'];
const FORMS = /13800138000 or 020-12345678/;

async function station(t: Test): Promise<string[]> {
  const data = tempDataDir(t);
  const d = ['--data', data];
  t.equal((await cli(['station', 'add', '--id', 'PS1', '--name', 'PS1', ...d])).code, 0, 'station added');
  return d;
}

const shopRows = (d: string[]) => query<Record<string, unknown>>(d[1]!, 'SELECT * FROM shops ORDER BY id');

t.test('shop add refuses a phone that is not one and coordinates outside China, with the hint, and writes nothing', async (t) => {
  const d = await station(t);
  const refused: [string[], RegExp][] = [
    [['--owner-phone', '555-1234'], /error LF_ERR_INVALID_ARGUMENT: invalid --owner-phone: 555-1234 has no area code/],
    [['--duty-phone', '12345'], /error LF_ERR_INVALID_ARGUMENT: invalid --duty-phone: 12345 is not a mainland mobile or landline number/],
    [['--owner-phone', '12800138000'], /invalid --owner-phone: 12800138000 is no mobile number/],
    [['--lat', '51.5', '--lon', '10'], /invalid --lon: 51.5, 10 is outside China \(latitude 3.8–53.6, longitude 73.5–135.1/],
    [['--lat', '116.68', '--lon', '23.35'], /invalid --lat: did you swap --lat and --lon\? 116.68, 23.35 fits as --lat 23.35 --lon 116.68/],
    [['--compound', 'NOPE'], /error LF_ERR_NOT_FOUND: compound NOPE does not exist/],
  ];
  for (const [args, message] of refused) {
    const r = await cli(['shop', 'add', ...SHOP, ...args, ...d]);
    t.equal(r.code, 2, `${args.join(' ')}: a coded error`);
    t.match(r.stderr, message, args.join(' '));
    if (/phone/.test(args[0]!)) t.match(r.stderr, FORMS, 'the message shows both accepted forms');
  }
  const noStation = await cli(['shop', 'add', ...SHOP.slice(0, -1), 'NOPE', ...d]);
  t.match(noStation.stderr, /error LF_ERR_NOT_FOUND: station NOPE does not exist/);
  t.same(shopRows(d), [], 'nothing was written');

  const zh = await cli(['shop', 'add', ...SHOP, '--lat', '116.68', '--lon', '23.35', ...d], { LANG: 'zh_CN.UTF-8' });
  t.match(zh.stderr, /错误 LF_ERR_INVALID_ARGUMENT: --lat 无效：是否把 --lat 和 --lon 写反了？116.68, 23.35 应写成 --lat 23.35 --lon 116.68/, 'the hint in Chinese');

  const ok = await cli(['shop', 'add', ...SHOP, '--lat', '23.354', '--lon', '116.682', '--owner-phone', '+86 138-0013-8000', '--duty-phone', '(0754) 8888123 ext 12', ...d]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(shopRows(d), [{ id: 'S01', owner_phone: '+86 138-0013-8000', duty_phone: '(0754) 8888123 ext 12' }]);
});

t.test('shop edit changes a field, clears one, refuses to clear a required one, and checks as add does', async (t) => {
  const d = await station(t);
  t.equal((await cli(['shop', 'add', ...SHOP, '--lat', '23.354', '--lon', '116.682', '--owner-phone', '13800138000', '--duty', 'Li Hua', '--duty-phone', '020-12345678', ...d])).code, 0);
  const show = async () => JSON.parse((await cli(['shop', 'show', 'S01', '--json', ...d])).stdout) as Record<string, unknown>;

  const edit = await cli(['shop', 'edit', 'S01', '--owner-phone', '139 0013 9000', '--door-plate', '23号', ...d]);
  t.equal(edit.code, 0, edit.stderr);
  t.match(edit.stdout, /shop S01 changed:\n {2}--door-plate 23号\n {2}--owner-phone 139 0013 9000\n/);
  t.match(await show(), { ownerPhone: '139 0013 9000', doorPlate: '23号', dutyPhone: '020-12345678' });

  const cleared = await cli(['shop', 'edit', 'S01', '--clear', 'duty-phone', '--clear', 'duty', '--json', ...d]);
  t.equal(cleared.code, 0, cleared.stderr);
  t.match(JSON.parse(cleared.stdout), { shop: { id: 'S01', dutyName: null, dutyPhone: null }, changed: ['duty', 'duty-phone'] });

  const same = await cli(['shop', 'edit', 'S01', '--owner-phone', '139 0013 9000', ...d]);
  t.equal(same.code, 0, same.stderr);
  t.equal(same.stdout, 'shop S01: nothing changed\n');

  const before = shopRows(d);
  const refused: [string[], RegExp][] = [
    [['--clear', 'station'], /invalid --clear: a shop cannot be without its --station/],
    [['--clear', 'name'], /invalid --clear: a shop cannot be without its --name/],
    [['--clear', 'colour'], /invalid --clear: colour is no field of a shop; one of: name, address/],
    [['--owner-phone', '13900139000', '--clear', 'owner-phone'], /--owner-phone is both given and cleared/],
    [['--owner-phone', '555-1234'], /invalid --owner-phone: 555-1234 has no area code/],
    [['--lat', '116.682', '--lon', '23.354'], /did you swap --lat and --lon\? 116.682, 23.354 fits as --lat 23.354 --lon 116.682/],
    [['--lon', '23.354'], /invalid --lon: 23.354, 23.354 is outside China/],
    [['--clear', 'lat'], /give both --lat and --lon, or neither/],
    [['--station', 'NOPE'], /LF_ERR_NOT_FOUND: station NOPE does not exist/],
  ];
  for (const [args, message] of refused) {
    const r = await cli(['shop', 'edit', 'S01', ...args, ...d]);
    t.equal(r.code, 2, `${args.join(' ')}: a coded error`);
    t.match(r.stderr, message, args.join(' '));
  }
  t.same(shopRows(d), before, 'no refused edit wrote anything');
  t.match((await cli(['shop', 'edit', 'NOPE', '--name', 'x', ...d])).stderr, /LF_ERR_NOT_FOUND: shop NOPE does not exist/);

  const both = await cli(['shop', 'edit', 'S01', '--clear', 'lat', '--clear', 'lon', ...d]);
  t.equal(both.code, 0, both.stderr);
  t.match(await show(), { lat: null, lon: null });
});

t.test('shop remove: refused with an open alarm and with live devices; --force retires it and the gateway drops its keypad', async (t) => {
  const data = tempDataDir(t);
  const d = ['--data', data];
  const street = await provisionStreet(data, 2);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const [gone, stays] = street.shops as [(typeof street.shops)[0], (typeof street.shops)[0]];
  const kp = keypads.get(gone.shopId)!;

  await kp.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === gone.shopId && a.state === 'raised');
  const busy = await cli(['shop', 'remove', gone.shopId, '--force', ...d]);
  t.equal(busy.code, 2);
  t.match(busy.stderr, `error LF_ERR_SHOP_HAS_OPEN_ALARM: shop ${gone.shopId} has an alarm an officer has not closed yet: ${alarm.alarmId} (raised)`);
  t.match(query(data, 'SELECT retired_at FROM shops WHERE id = ?', gone.shopId), [{ retired_at: null }], 'not retired');
  t.match(query(data, 'SELECT revoked_at FROM devices WHERE id = ?', gone.deviceId), [{ revoked_at: null }], '--force revoked nothing while refused');

  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'false' });
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');

  const live = await cli(['shop', 'remove', gone.shopId, ...d]);
  t.equal(live.code, 2);
  t.match(live.stderr, `error LF_ERR_SHOP_HAS_DEVICES: shop ${gone.shopId} still has devices that are not revoked: ${gone.deviceId} (keypad, mqtt)`);
  t.match(live.stderr, /--force/, 'the remedy names --force');
  t.match(query(data, 'SELECT retired_at FROM shops WHERE id = ?', gone.shopId), [{ retired_at: null }], 'not retired');

  t.ok(kp.client.connected, 'the keypad is connected before the removal');
  const dropped = new Promise<void>((resolve) => kp.client.once('close', () => resolve()));
  const removed = await cli(['shop', 'remove', gone.shopId, '--force', '--json', ...d]);
  t.equal(removed.code, 0, removed.stderr);
  t.match(JSON.parse(removed.stdout), { shopId: gone.shopId, retiredAt: /^\d{4}-/, revokedDevices: [gone.deviceId] });
  t.match(removed.stderr, /the running gateway has taken the change/);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([dropped, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the keypad was not disconnected')), 10_000)))]);
  clearTimeout(timer);
  t.pass('the running gateway dropped the keypad');
  const log = await gw.waitForLog((l) => l.msg === 'device revoked' && (l.deviceIds as string[] | undefined)?.includes(gone.deviceId) === true);
  t.equal(log.disconnected, 1, 'the gateway disconnected one session');
  await t.rejects(new SimKeypad(gone.deviceId, gone.shopId, gone.creds).connect(gw.mqttUrl, { reconnectPeriod: 0 }), 'its credentials no longer log in');
  t.ok(keypads.get(stays.shopId)!.client.connected, "the other shop's keypad stays connected");

  // Retired, not deleted: the record and its alarm stay.
  t.match(query(data, 'SELECT retired_at, retired_by FROM shops WHERE id = ?', gone.shopId), [{ retired_at: /^\d{4}-/, retired_by: /^cli/ }]);
  t.match(query(data, 'SELECT revoked_at FROM devices WHERE id = ?', gone.deviceId), [{ revoked_at: /^\d{4}-/ }]);
  t.match(query(data, 'SELECT id, state FROM alarms WHERE shop_id = ?', gone.shopId), [{ id: alarm.alarmId, state: 'closed' }], 'its alarm stays');
  t.match(query(data, "SELECT actor, detail FROM audit WHERE action = 'shop-retired'"), [{ actor: /^cli/, detail: JSON.stringify({ shopId: gone.shopId, revokedDevices: [gone.deviceId] }) }]);
  const list = JSON.parse((await cli(['shop', 'list', '--json', ...d])).stdout) as { id: string; retiredAt: string | null }[];
  t.match(list, [{ id: gone.shopId, retiredAt: /^\d{4}-/ }, { id: stays.shopId, retiredAt: null }]);
  t.match((await cli(['shop', 'list', ...d])).stdout, /RETIRED/);

  const refused: [string[], RegExp][] = [
    [['device', 'add', '--shop', gone.shopId, '--type', 'keypad'], /LF_ERR_SHOP_RETIRED: shop \S+ was retired on \d{4}-/],
    [['shop', 'edit', gone.shopId, '--name', 'new name'], /LF_ERR_SHOP_RETIRED/],
    [['shop', 'remove', gone.shopId], /LF_ERR_SHOP_RETIRED/],
    [['shop', 'add', '--id', gone.shopId, '--name', 'x', '--address', 'y', '--station', street.stationId], /LF_ERR_ALREADY_EXISTS: shop \S+ \(retired on/],
  ];
  for (const [args, message] of refused) {
    const r = await cli([...args, ...d]);
    t.equal(r.code, 2, `${args.slice(0, 2).join(' ')} of a retired shop: a coded error`);
    t.match(r.stderr, message);
  }
  t.equal(query(data, 'SELECT count(*) AS n FROM devices WHERE shop_id = ?', gone.shopId)[0]!.n, 1, 'no device was added');
});
