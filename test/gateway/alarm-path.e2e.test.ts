/**
 * The whole alarm path over real TCP against the gateway as a child process: a 30-shop street,
 * an alarm from the middle shop reaching exactly its 10 nearest neighbours and the station once,
 * replies, the officer's actions, and the end of the alarm reaching every alerted shop.
 */
import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query, sleep } from '../helpers/gateway.js';

t.test('9# from the middle shop of a 30-shop street reaches its 10 nearest neighbours and the station, once', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 30);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const origin = street.shops[15].shopId;
  const expected = nearestShops(data, origin, 10);
  t.equal(expected.length, 10);

  await keypads.get(origin)!.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  t.equal(alarm.rev, 1);
  t.equal(alarm.stationId, street.stationId);
  t.equal(alarm.shopsAlerted, 10);
  t.match(alarm.raisedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId)));
  // Give any stray deliveries a moment to arrive before checking nobody else got it.
  await sleep(300);
  for (const [shopId, kp] of keypads) {
    const got = kp.alerts.filter((a) => a.alarmId === alarm.alarmId);
    if (expected.includes(shopId)) {
      t.equal(got.length, 1, `${shopId} (a neighbour) has the alert once`);
      t.equal(got[0].originShopId, origin);
      t.equal(got[0].doorPlate, '16号');
      t.equal(got[0].state, 'raised');
    } else {
      t.equal(got.length, 0, `${shopId} (not among the 10 nearest) has no alert`);
    }
  }
  t.equal(officer.updates.filter((a) => a.alarmId === alarm.alarmId).length, 1, 'the station has it once');

  // Neighbours answer; the console sees the counts.
  await keypads.get(expected[0])!.reply(alarm.alarmId, 'coming');
  await keypads.get(expected[1])!.reply(alarm.alarmId, 'seen');
  const counted = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.replies.coming === 1 && a.replies.seen === 1);
  t.ok(counted.rev > 1);

  // The officer acknowledges, dispatches, closes.
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  const acked = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'acknowledged');
  t.equal(acked.takenBy, street.officer.username, 'takenBy comes from the login');
  await officer.act({ alarmId: alarm.alarmId, action: 'dispatch', patrol: 'P-07', note: 'two officers' });
  const dispatched = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'dispatched');
  t.equal(dispatched.patrol, 'P-07');
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'real', note: 'suspect left' });
  const closed = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
  t.equal(closed.disposition, 'real');

  // Every alerted shop is told the alarm ended.
  await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'ended')));
  for (const id of expected) t.equal(keypads.get(id)!.display.size, 0, `${id} display cleared`);

  // Every change is an audit row with a time and who did it.
  const audit = query<{ action: string; actor: string; at: string; rev: number }>(data, 'SELECT action, actor, at, rev FROM audit WHERE alarm_id = ? ORDER BY id', alarm.alarmId);
  t.same(
    audit.map((a) => a.action),
    ['raised', 'reply', 'reply', 'ack', 'dispatch', 'close'],
  );
  t.equal(audit[0].actor, `device:${street.shops[15].deviceId}`);
  t.equal(audit[3].actor, `user:${street.officer.username}`);
  t.same(audit.map((a) => a.rev), [1, 2, 3, 4, 5, 6]);
  // Delivery is tracked: nothing left undelivered for the connected recipients.
  await sleep(200);
  const pending = query<{ n: number }>(data, "SELECT count(*) AS n FROM outbox WHERE alarm_id = ? AND delivered_at IS NULL AND superseded = 0", alarm.alarmId);
  t.equal(pending[0].n, 0, 'every outbox row was delivered');
  if (pending[0].n) console.error(query(data, 'SELECT id, rev, recipient_kind, recipient_id, superseded, delivered_at, payload FROM outbox WHERE alarm_id = ?', alarm.alarmId));
});

t.test('a stray 9, a lone # and 9…# after the entry pause raise nothing; a new 9# after close raises a new alarm', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data, { LF_KEYPAD_ENTRY_TIMEOUT_MS: '400' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const kp = keypads.get(street.shops[0].shopId)!;
  await kp.press('9');
  await sleep(700);
  await kp.press('#');
  await kp.press('#');
  await kp.press('1234');
  await kp.press('*5678#');
  await sleep(300);
  t.equal(officer.updates.length, 0, 'no alarm');
  t.equal(query(data, 'SELECT * FROM alarms').length, 0);
  // Stored events keep what was typed after * out of the database.
  const payloads = query<{ payload: string }>(data, "SELECT payload FROM events WHERE type = 'keypad'").map((r) => r.payload);
  t.ok(payloads.some((p) => p.includes('*xxxx#')), 'the PIN entry is stored masked');
  t.notOk(payloads.some((p) => p.includes('5678')), 'the PIN itself is never stored');
  t.notOk(gw.logs.some((l) => JSON.stringify(l).includes('5678')), 'nor logged');

  // 9 and # in two events inside the pause: an alarm.
  await kp.press('9');
  await kp.press('#');
  const a1 = await officer.waitFor((a) => a.state === 'raised');
  // A hurried 99# while it is open joins it.
  await kp.press('99#');
  await sleep(300);
  t.equal(new Set(officer.updates.map((a) => a.alarmId)).size, 1, 'the second 9# joined the open alarm');
  t.equal(query(data, "SELECT * FROM audit WHERE action = 'joined'").length, 1);
  await officer.act({ alarmId: a1.alarmId, action: 'ack' });
  await officer.act({ alarmId: a1.alarmId, action: 'close', disposition: 'false' });
  await officer.waitFor((a) => a.alarmId === a1.alarmId && a.state === 'closed');
  await kp.press('9#');
  const a2 = await officer.waitFor((a) => a.state === 'raised' && a.alarmId !== a1.alarmId);
  t.ok(a2.alarmId > a1.alarmId, 'alarm ids sort by time');
});

t.test('console actions out of turn are refused on the station errors topic with the requestId', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  await keypads.get(street.shops[3].shopId)!.press('9#');
  const a = await officer.waitFor((x) => x.state === 'raised');
  await officer.act({ alarmId: a.alarmId, action: 'dispatch', requestId: 'r-1' });
  const e1 = await officer.waitForError((e) => e.requestId === 'r-1');
  t.equal(e1.code, 'LF_ERR_BAD_TRANSITION');
  await officer.act({ alarmId: a.alarmId, action: 'close', disposition: 'false', requestId: 'r-2' });
  t.equal((await officer.waitForError((e) => e.requestId === 'r-2')).code, 'LF_ERR_BAD_TRANSITION');
  await officer.act({ alarmId: '0190aaaa-0000-7000-8000-000000000000', action: 'ack', requestId: 'r-3' });
  t.equal((await officer.waitForError((e) => e.requestId === 'r-3')).code, 'LF_ERR_UNKNOWN_ALARM');
  await officer.act({ alarmId: a.alarmId, action: 'ack', requestId: 'r-4' });
  await officer.waitFor((x) => x.alarmId === a.alarmId && x.state === 'acknowledged');
  await officer.act({ alarmId: a.alarmId, action: 'ack', requestId: 'r-5' });
  t.equal((await officer.waitForError((e) => e.requestId === 'r-5')).code, 'LF_ERR_BAD_TRANSITION', 'ack twice');
  await officer.act({ alarmId: a.alarmId, action: 'close', requestId: 'r-6' } as never);
  t.equal((await officer.waitForError((e) => e.requestId === 'r-6')).code, 'LF_ERR_BAD_PAYLOAD', 'close without disposition');
  await officer.act({ alarmId: a.alarmId, action: 'explode', requestId: 'r-7' } as never);
  t.equal((await officer.waitForError((e) => e.requestId === 'r-7')).code, 'LF_ERR_BAD_PAYLOAD', 'unknown action');
  await officer.act({ alarmId: a.alarmId, action: 'take', requestId: 'r-8' });
  const taken = await officer.waitFor((x) => x.alarmId === a.alarmId && x.rev === 3);
  t.equal(taken.state, 'acknowledged');
  t.equal(officer.alarms.get(a.alarmId)!.state, 'acknowledged', 'refusals changed nothing');
  const health = await gw.health();
  t.ok(health.counters['refused.LF_ERR_BAD_TRANSITION'] >= 3, 'refusals are counted');
});

t.test("a compound's receiving point gets its shops' alarms beside the station, and may take them first", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const d = ['--data', data];
  const { cli } = await import('../helpers/gateway.js');
  t.equal((await cli(['station', 'add', '--id', 'C1', '--name', 'Garden Court guard room', '--compound-of', street.stationId, ...d])).code, 0);
  t.equal((await cli(['shop', 'add', '--id', 'GC1', '--name', '花园小区 3栋', '--address', 'Garden Court 3', '--lat', '23.35862', '--lon', '116.68322', '--station', street.stationId, '--compound', 'C1', ...d])).code, 0);
  const dev = JSON.parse((await cli(['device', 'add', '--shop', 'GC1', '--type', 'panic', '--json', ...d])).stdout);
  t.equal((await cli(['user', 'add', '--role', 'officer', '--station', 'C1', '--name', 'guard1', '--password', 'guard-password-1', ...d])).code, 0);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const { SimConsole, SimKeypad } = await import('../../simulators/mqtt-devices.js');
  const guard = await new SimConsole('C1', { username: 'guard1', password: 'guard-password-1' }).connect(gw.mqttUrl);
  t.teardown(() => guard.close());
  const button = await new SimKeypad(dev.deviceId, 'GC1', { username: dev.username, password: dev.password }).connect(gw.mqttUrl);
  t.teardown(() => button.close());
  await button.send({ type: 'panic' } as never);
  const [atStation, atGuard] = await Promise.all([officer.waitFor((a) => a.shopId === 'GC1'), guard.waitFor((a) => a.shopId === 'GC1')]);
  t.equal(atStation.alarmId, atGuard.alarmId);
  t.equal(atGuard.compoundId, 'C1');
  t.equal(atGuard.kind, 'panic');
  await guard.act({ alarmId: atGuard.alarmId, action: 'ack' });
  const acked = await officer.waitFor((a) => a.alarmId === atGuard.alarmId && a.state === 'acknowledged');
  t.equal(acked.takenBy, 'guard1', 'the station sees the guard room took it');
  // The guard holds it: the station's take is refused naming the holder, unless forced.
  await officer.act({ alarmId: acked.alarmId, action: 'take', requestId: 'take-1' });
  const refused = await officer.waitForError((e) => e.requestId === 'take-1');
  t.match(refused, { code: 'LF_ERR_TAKEN', alarmId: acked.alarmId, message: /held by guard1/ });
  await officer.act({ alarmId: acked.alarmId, action: 'take', force: true });
  const taken = await guard.waitFor((a) => a.alarmId === acked.alarmId && a.takenBy === street.officer.username);
  t.equal(taken.state, 'acknowledged');
  // Neighbours are chosen by distance whatever their station or compound.
  t.ok([...keypads.values()].some((k) => k.alerts.some((a) => a.alarmId === acked.alarmId)));
  const take = query<{ detail: string }>(data, "SELECT detail FROM audit WHERE action = 'take'")[0];
  t.same(JSON.parse(take.detail), { from: 'guard1', to: street.officer.username, force: true }, 'who took it from whom, by force');
});
