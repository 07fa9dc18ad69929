/**
 * Faults and their maintenance tickets end to end (gateway/faults/fault-store.ts): the gateway in
 * process on the manual clock, its broker on a loopback port, MQTT keypads as the simulator and the
 * station's console as a real MQTT client. A fault opens a ticket and the ticket closes itself when
 * the device recovers; a console that subscribes late gets every open fault and the latest rev of
 * every fault that changed while it was away (a superseded rev is not re-sent, a delivered one not
 * again). The CLI's side is test/cli/fault.e2e.test.ts.
 */
import t from 'tap';
import { tempDataDir, query } from '../../helpers/gateway.js';
import { eventually } from '../../helpers/wired.js';
import { provisionStreet } from '../../helpers/street.js';
import { ManualClock } from '../../../gateway/clock.js';
import { FAULT_AFTER_MS, startGateway as start, url, faultConsole as console_, keypad, of, undelivered } from '../../helpers/faults.js';

t.test('a silent device opens a fault and its ticket; its next publish clears it and the ticket closes as recovered', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 2);
  const clock = new ManualClock(Date.parse('2026-12-02T01:00:00.000Z'));
  const gw = await start(t, data, clock);
  const officer = await console_(t, gw, street);
  const kp = await keypad(street, 0).connect(url(gw));
  t.teardown(() => kp.close());
  await kp.send({ type: 'heartbeat' } as never);
  const id = street.shops[0]!.deviceId;

  clock.advance(FAULT_AFTER_MS + 1_000);
  await eventually(() => of(officer.got, id).length === 1, 'the console hears the silent fault');
  const raised = of(officer.got, id)[0]!;
  t.match(raised, { rev: 1, fault: 'silent', state: 'raised', shopId: street.shops[0]!.shopId, ticket: { state: 'open' }, text: { en: 'Device silent', zh: '设备无响应' } });
  t.match(raised.faultId, /^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'a UUIDv7 faultId');
  t.match(
    (gw.health().faults as { faultId: string }[]).find((f) => f.faultId === raised.faultId),
    { fault: 'silent', deviceId: id, rev: 1, ticket: { state: 'open' } },
    '/health lists it with its faultId',
  );
  await eventually(() => undelivered(data) === 0, "the officer's PUBACK delivered its rows");
  t.match(query(data, "SELECT delivered_by AS by FROM outbox WHERE recipient_kind = 'fault' AND alarm_id = ?", raised.faultId), [{ by: `user:${street.officer.username}` }]);

  await kp.send({ type: 'heartbeat' } as never);
  await eventually(() => of(officer.got, id).length === 2, 'the console hears it clear');
  const cleared = of(officer.got, id)[1]!;
  t.match(cleared, { faultId: raised.faultId, rev: 2, state: 'cleared', clearedAt: String, ticket: { state: 'fixed', recovered: true, closedAs: 'recovered', fixedBy: `device:${id}` } });
  t.same(
    query(data, 'SELECT rev, cleared_how AS how, ticket, recovered, fixed_by AS fixedBy FROM faults WHERE id = ?', raised.faultId),
    [{ rev: 2, how: 'recovered', ticket: 'fixed', recovered: 1, fixedBy: `device:${id}` }],
    'the recovery is recorded: who (the device) and when',
  );
  t.notOk((gw.health().faults as { faultId: string }[]).some((f) => f.faultId === raised.faultId), 'no longer open');
});

t.test('a console that subscribes late gets every open fault and the latest rev of every change it missed, once', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 3);
  const clock = new ManualClock(Date.parse('2026-12-02T02:00:00.000Z'));
  const gw = await start(t, data, clock);
  // No console yet. Three devices never heard: three silent faults after the fault time.
  clock.advance(FAULT_AFTER_MS + 1_000);
  const ids = street.shops.map((s) => s.deviceId);
  await eventually(() => query<{ n: number }>(data, "SELECT count(*) AS n FROM faults WHERE kind = 'silent' AND cleared_at IS NULL")[0]!.n === 3, 'three faults stored');
  // One of them recovers while the console is away: rev 2 supersedes the undelivered rev 1.
  const kp = await keypad(street, 1).connect(url(gw));
  t.teardown(() => kp.close());
  await kp.send({ type: 'heartbeat' } as never);
  await eventually(() => query<{ n: number }>(data, 'SELECT count(*) AS n FROM faults WHERE device_id = ? AND cleared_at IS NOT NULL', ids[1])[0]!.n === 1, 'cleared in the store');
  t.same(
    query(data, "SELECT rev, superseded FROM outbox WHERE recipient_kind = 'fault' AND alarm_id = (SELECT id FROM faults WHERE device_id = ?) ORDER BY id", ids[1]),
    [{ rev: 1, superseded: 1 }, { rev: 2, superseded: 0 }],
    'the older rev is superseded',
  );

  const officer = await console_(t, gw, street);
  await eventually(() => officer.got.length >= 3 && undelivered(data) === 0, 'the late console got what it missed and acknowledged it');
  t.same(
    officer.got.map((f) => [f.deviceId, f.rev, f.state]).sort(),
    [
      [ids[0], 1, 'raised'],
      [ids[1], 2, 'cleared'],
      [ids[2], 1, 'raised'],
    ].sort(),
    'every open fault, and the recovered one at its latest rev only (rev 1 not re-sent)',
  );
  await officer.close();

  // Subscribing again: what was delivered is not sent again; a change made meanwhile is.
  clock.advance(1_000);
  const kp2 = await keypad(street, 2).connect(url(gw));
  t.teardown(() => kp2.close());
  await kp2.send({ type: 'heartbeat' } as never);
  await eventually(() => undelivered(data) === 1, 'the clear waits for the console');
  const again = await console_(t, gw, street, 'faults-2');
  await eventually(() => again.got.length === 1 && undelivered(data) === 0, 'only the change it missed');
  t.match(again.got, [{ deviceId: ids[2], rev: 2, state: 'cleared' }]);
});
