/**
 * The proof of the installer's neighbour rules on a real running gateway (a child process, MQTT
 * keypads and a console over loopback): after `lianfang neighbours --always` of a far shop and
 * `--never` of a near one, the next 9# alerts the far shop and not the near one, exactly the ring 1
 * the CLI shows, and its ring 2 too; after `--reset` the next 9# alerts the ten nearest again.
 */
import t from 'tap';
import { cli, connectStreet, GatewayProcess, nearestShops, provisionStreet, query, sleep, tempDataDir, until } from '../helpers/gateway.js';
import { FAR, NEAR, ORIGIN, neighbourRows, ringOf } from '../helpers/neighbours.js';

t.test('--always and --never change who the next 9# alerts, ring by ring; --reset undoes it', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 30);
  // Rings widen every 2 s while nobody answers, so ring 2 is seen too.
  const gw = await GatewayProcess.start(t, data, { LF_ESCALATION_RING_INTERVAL_MS: '2000' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const byDistance = nearestShops(data, ORIGIN, 10);
  t.ok(byDistance.includes(NEAR) && !byDistance.includes(FAR), 'by distance the near shop is alerted and the far one is not');

  const always = await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  t.match(always.stderr, 'the running gateway has taken the change');
  const shown = await neighbourRows(data, ORIGIN, ['--never', NEAR]);

  /** The alarm's recipients in ring `ring`, as the engine stored them. */
  const recipients = (alarmId: string, ring: number) =>
    query<{ shopId: string }>(data, 'SELECT shop_id AS shopId FROM alarm_recipients WHERE alarm_id = ? AND ring = ?', alarmId, ring).map((r) => r.shopId).sort();

  /** Raise a 9# from the origin, wait for ring 1's alerts (and ring `upTo`'s recipients), then close it. */
  const raise = async (ring1: string[], upTo = 1) => {
    const seen = new Set(officer.updates.map((a) => a.alarmId));
    await keypads.get(ORIGIN)!.press('9#');
    const alarm = await officer.waitFor((a) => a.shopId === ORIGIN && a.state === 'raised' && !seen.has(a.alarmId));
    t.equal(alarm.shopsAlerted, 10, 'ten shops alerted at first');
    await Promise.all(ring1.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId)));
    await until(`ring ${upTo}`, async () => recipients(alarm.alarmId, upTo), (r) => r.length > 0);
    // Give any stray delivery a moment to arrive before checking who else got it.
    await sleep(300);
    const got = (id: string) => keypads.get(id)!.alerts.some((a) => a.alarmId === alarm.alarmId);
    const rings = [1, 2].map((n) => recipients(alarm.alarmId, n));
    await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
    await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'false' });
    await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
    return { got, rings };
  };

  const ruled = await raise(ringOf(shown, 1), 2);
  t.ok(ruled.got(FAR), 'the far shop pinned with --always is alerted');
  t.notOk(ruled.got(NEAR), 'the near shop kept out with --never is not, in any ring');
  t.same(ruled.rings[0], ringOf(shown, 1).sort(), "the engine's ring 1 is the one the CLI shows");
  t.same(ruled.rings[1], ringOf(shown, 2).sort(), 'and so is its ring 2, with the shop the pin pushed out');

  await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  const reset = await cli(['neighbours', ORIGIN, '--reset', NEAR, '--data', data]);
  t.match(reset.stderr, 'the running gateway has taken the change');
  const back = await raise(byDistance);
  t.same(back.rings[0], [...byDistance].sort(), 'after --reset ring 1 is the ten nearest again');
  t.ok(back.got(NEAR), 'the near shop is alerted again');
  t.notOk(back.rings[0].includes(FAR), 'the far shop is not in ring 1 any more');
});
