/**
 * Escalation from stored deadlines, across a restart of the gateway (a child process with the
 * deadlines shortened through LF_ environment variables; the real figures are the defaults).
 */
import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query, sleep } from '../helpers/gateway.js';

t.test('no acknowledgement in time: overdue after a restart that spanned the deadline, repeated until ack', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const env = { LF_ESCALATION_ACK_DEADLINE_MS: '1500', LF_ESCALATION_OVERDUE_REPEAT_MS: '600', LF_ESCALATION_RING_INTERVAL_MS: '3600000' };
  const gw1 = await GatewayProcess.start(t, data, env);
  const { keypads, console: officer } = await connectStreet(t, street, gw1.mqttUrl);
  await keypads.get(street.shops[5].shopId)!.press('9#');
  const raised = await officer.waitFor((a) => a.state === 'raised');
  t.equal(raised.overdue, false);
  await gw1.kill('SIGTERM');
  t.equal(query(data, 'SELECT * FROM deadlines WHERE done_at IS NULL AND kind = ?', 'ack').length, 1, 'the deadline is a row');
  await sleep(1600);
  await GatewayProcess.start(t, data, env, ['--mqtt-port', String(gw1.ports.mqtt)]);
  const overdue = await officer.waitFor((a) => a.alarmId === raised.alarmId && a.overdue, 20_000);
  t.equal(overdue.state, 'raised');
  // Re-sent every overdueRepeatMs until an officer acknowledges.
  await officer.waitFor((a) => a.alarmId === raised.alarmId && a.rev >= overdue.rev + 2, 20_000);
  await officer.act({ alarmId: raised.alarmId, action: 'ack' });
  const acked = await officer.waitFor((a) => a.alarmId === raised.alarmId && a.state === 'acknowledged');
  t.equal(acked.overdue, false);
  await sleep(1500);
  const after = officer.alarms.get(raised.alarmId)!;
  t.equal(after.rev, acked.rev, 'no more reminders after the acknowledgement');
  const audit = query<{ action: string; actor: string }>(data, 'SELECT action, actor FROM audit WHERE alarm_id = ? ORDER BY id', raised.alarmId);
  t.equal(audit[1].action, 'overdue');
  t.equal(audit[1].actor, 'gateway');
  t.ok(audit.filter((a) => a.action === 'overdue-repeat').length >= 2);
});

t.test('too few neighbours answering: the ring widens to the next 10, then 20, never further; across a restart', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 40);
  const env = { LF_ESCALATION_RING_INTERVAL_MS: '2500', LF_ESCALATION_ACK_DEADLINE_MS: '3600000' };
  const gw1 = await GatewayProcess.start(t, data, env);
  const { keypads, console: officer } = await connectStreet(t, street, gw1.mqttUrl);
  const origin = street.shops[20].shopId;
  const ranked = nearestShops(data, origin, 39);
  await keypads.get(origin)!.press('9#');
  const alarm = await officer.waitFor((a) => a.state === 'raised');
  await Promise.all(ranked.slice(0, 10).map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId)));
  // Two answers are fewer than three.
  await keypads.get(ranked[0])!.reply(alarm.alarmId, 'coming');
  await keypads.get(ranked[1])!.reply(alarm.alarmId, 'seen');
  await keypads.get(ranked[2])!.reply(alarm.alarmId, 'cannot');
  // Crash in the middle of the ring deadline; the restarted gateway re-arms it from its row.
  gw1.child.kill('SIGKILL');
  await gw1.exited;
  await GatewayProcess.start(t, data, env, ['--mqtt-port', String(gw1.ports.mqtt)]);
  const ring2 = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.ring === 2, 20_000);
  t.equal(ring2.shopsAlerted, 20);
  await Promise.all(ranked.slice(10, 20).map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId && a.ring === 2, 20_000)));
  const ring3 = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.ring === 3, 20_000);
  t.equal(ring3.shopsAlerted, 30);
  await Promise.all(ranked.slice(20, 30).map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId && a.ring === 3, 20_000)));
  await sleep(3500);
  t.equal(officer.alarms.get(alarm.alarmId)!.ring, 3, 'never a fourth ring');
  for (const id of ranked.slice(30)) t.equal(keypads.get(id)!.alerts.length, 0, `${id} beyond the third ring is not alerted`);
  const rings = query<{ ring: number; n: number }>(data, 'SELECT ring, count(*) AS n FROM alarm_recipients WHERE alarm_id = ? GROUP BY ring ORDER BY ring', alarm.alarmId);
  t.same(rings, [{ ring: 1, n: 10 }, { ring: 2, n: 10 }, { ring: 3, n: 10 }]);
});

t.test('three answers stop the ring from widening', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 25);
  // Generous: the three answers must land before the ring deadline even on a slow machine.
  const env = { LF_ESCALATION_RING_INTERVAL_MS: '5000' };
  const gw = await GatewayProcess.start(t, data, env);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const origin = street.shops[12].shopId;
  const ranked = nearestShops(data, origin, 10);
  await keypads.get(origin)!.press('9#');
  const alarm = await officer.waitFor((a) => a.state === 'raised');
  // Two answer on the wire, one on the keypad (1# = coming).
  await keypads.get(ranked[0])!.waitFor((a) => a.alarmId === alarm.alarmId);
  await keypads.get(ranked[0])!.reply(alarm.alarmId, 'coming');
  await keypads.get(ranked[1])!.waitFor((a) => a.alarmId === alarm.alarmId);
  await keypads.get(ranked[1])!.reply(alarm.alarmId, 'seen');
  await keypads.get(ranked[2])!.waitFor((a) => a.alarmId === alarm.alarmId);
  await keypads.get(ranked[2])!.press('1#');
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.replies.coming + a.replies.seen === 3);
  const due = query<{ due_at: number; done_at: number | null }>(data, "SELECT due_at, done_at FROM deadlines WHERE kind = 'ring'")[0];
  await sleep(Math.max(0, due.due_at - Date.now()) + 800);
  t.equal(officer.alarms.get(alarm.alarmId)!.ring, 1, 'no second ring');
  t.ok(query(data, "SELECT done_at FROM deadlines WHERE kind = 'ring'")[0].done_at, 'the ring deadline fired and found enough answers');
  t.equal(query(data, 'SELECT * FROM alarm_recipients WHERE alarm_id = ?', alarm.alarmId).length, 10);
});
