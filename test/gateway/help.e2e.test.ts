/**
 * `0#` over MQTT against the gateway as a child process: the request for help (kind `help`) reaches
 * the origin's 10 nearest neighbours and the station at the lowest priority; a 9# from the same shop
 * while it is open is a separate panic alarm at panic priority, alerted to the neighbours again.
 */
import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query, sleep } from '../helpers/gateway.js';

t.test('0# from a keypad: a help alarm to the neighbours and, at the lowest priority, the station', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 14);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const origin = street.shops[7].shopId;
  const expected = nearestShops(data, origin, 10);

  await keypads.get(origin)!.press('0#');
  const help = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  t.match(help, { kind: 'help', priority: 3, duress: false, shopsAlerted: 10, stationId: street.stationId });
  await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === help.alarmId)));
  await sleep(300);
  for (const [shopId, kp] of keypads) {
    const got = kp.alerts.filter((a) => a.alarmId === help.alarmId);
    t.equal(got.length, expected.includes(shopId) ? 1 : 0, `${shopId}: ${expected.includes(shopId) ? 'alerted once' : 'not alerted'}`);
    if (got[0]) t.match(got[0], { kind: 'help', state: 'raised', originShopId: origin });
  }
  t.same(query(data, 'SELECT kind FROM alarms WHERE id = ?', help.alarmId), [{ kind: 'help' }]);

  // Then the same shop presses 9#: a crime is not folded into the help call.
  await keypads.get(origin)!.press('9#');
  const panic = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised' && a.alarmId !== help.alarmId);
  t.match(panic, { kind: 'panic', priority: 2 });
  await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === panic.alarmId && a.kind === 'panic')));
  t.same(query(data, 'SELECT kind FROM alarms ORDER BY raised_at'), [{ kind: 'help' }, { kind: 'panic' }]);
});
