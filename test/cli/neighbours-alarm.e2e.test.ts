/**
 * The proof of the installer's neighbour rules on a real running gateway (a child process, MQTT
 * keypads and a console over loopback): after `lianfang neighbours --always` of a far shop and
 * `--never` of a near one, the next 9# alerts the far shop and not the near one, exactly the ring 1
 * the CLI shows; after `--reset` the next 9# alerts the ten nearest again.
 */
import t from 'tap';
import { cli, connectStreet, GatewayProcess, nearestShops, provisionStreet, query, sleep, tempDataDir } from '../helpers/gateway.js';
import { FAR, NEAR, ORIGIN, neighbourRows, ringOf } from '../helpers/neighbours.js';

t.test('--always and --never change who the next 9# alerts; --reset undoes it', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 30);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const byDistance = nearestShops(data, ORIGIN, 10);
  t.ok(byDistance.includes(NEAR) && !byDistance.includes(FAR), 'by distance the near shop is alerted and the far one is not');

  const always = await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  t.match(always.stderr, 'the running gateway has taken the change');
  const shown = ringOf(await neighbourRows(data, ORIGIN, ['--never', NEAR]), 1);

  /** Raise a 9# from the origin; the shops it alerted and its recipients' rings; then close it. */
  const alarmAlerting = async (expected: string[]) => {
    const seen = new Set(officer.updates.map((a) => a.alarmId));
    await keypads.get(ORIGIN)!.press('9#');
    const alarm = await officer.waitFor((a) => a.shopId === ORIGIN && a.state === 'raised' && !seen.has(a.alarmId));
    t.equal(alarm.shopsAlerted, 10, 'ten shops alerted');
    await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId)));
    // Give any stray delivery a moment to arrive before checking who else got it.
    await sleep(300);
    const alerted = [...keypads].filter(([, kp]) => kp.alerts.some((a) => a.alarmId === alarm.alarmId)).map(([id]) => id);
    const rings = query<{ ring: number }>(data, 'SELECT ring FROM alarm_recipients WHERE alarm_id = ?', alarm.alarmId).map((r) => r.ring);
    await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
    await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'false' });
    await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
    return { alerted: alerted.sort(), rings };
  };

  const ruled = await alarmAlerting(shown);
  t.ok(ruled.alerted.includes(FAR), 'the far shop pinned with --always is alerted');
  t.notOk(ruled.alerted.includes(NEAR), 'the near shop kept out with --never is not');
  t.same(ruled.alerted, [...shown].sort(), 'the engine alerts exactly the ring 1 the CLI shows');
  t.ok(ruled.rings.every((r) => r === 1), 'all in ring 1');

  await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  const reset = await cli(['neighbours', ORIGIN, '--reset', NEAR, '--data', data]);
  t.match(reset.stderr, 'the running gateway has taken the change');
  const back = await alarmAlerting(byDistance);
  t.same(back.alerted, [...byDistance].sort(), 'after --reset the ten nearest again');
  t.ok(back.alerted.includes(NEAR) && !back.alerted.includes(FAR));
});
