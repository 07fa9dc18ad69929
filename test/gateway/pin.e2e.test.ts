/**
 * Shop PINs over real MQTT against the gateway as a child process (gateway/alarm/engine.ts,
 * gateway/alarm/pins.ts): a cancel ends the alarm at every neighbour; a duress PIN puts on every
 * neighbour's alerts topic, and on every keypad's commands topic (the origin's own answer, the
 * neighbours' buzzer, display and LED), exactly what a cancel puts there (also after the officer closes each)
 * while the console sees duress; a 9# after a cancel and after a duress raises a new alarm; no PIN
 * in clear in any table or in the gateway's log.
 */
import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query, sleep, cli } from '../helpers/gateway.js';
import type { DeviceCommand, ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';
import { eventually } from '../helpers/wired.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import { connectAsync } from 'mqtt';

const PIN = '24680864';
const DURESS = '13577531';
const RING_INTERVAL_MS = 1_500;

t.test('cancel and duress look the same on every neighbour topic; the console sees duress; 9# after either raises a new alarm', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 30);
  const origin = street.shops[15].shopId;
  const r = await cli(['shop', 'pin', origin, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS });
  t.equal(r.code, 0, r.stderr);
  // A short ring interval: an alarm that was not ended on the shops' side would widen while we wait.
  const gw = await GatewayProcess.start(t, data, { LF_ESCALATION_RING_INTERVAL_MS: String(RING_INTERVAL_MS) });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const kp = keypads.get(origin)!;
  const expected = nearestShops(data, origin, 10);

  const seen = new Set<string>();
  /** 9# at the origin; the new alarm (the console's history holds the earlier ones too). */
  const raise = async () => {
    await kp.press('9#');
    const a = await officer.waitFor((x) => x.shopId === origin && x.state === 'raised' && !seen.has(x.alarmId) && x.rev === 1);
    seen.add(a.alarmId);
    await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((x) => x.alarmId === a.alarmId && x.state === 'raised')));
    return a.alarmId;
  };
  const endedEverywhere = (alarmId: string) => Promise.all(expected.map((id) => keypads.get(id)!.waitFor((x) => x.alarmId === alarmId && x.state === 'ended')));

  // Every keypad command sent so far acknowledged by its keypad (so it has been applied).
  const commandsSettled = () =>
    eventually(() => query<{ n: number }>(data, "SELECT count(*) AS n FROM outbox WHERE recipient_kind = 'device' AND delivered_at IS NULL AND superseded = 0")[0]!.n === 0, 'keypad commands acknowledged');

  // A cancel, typed one key per event as a keypad sends them.
  let from = kp.commands.length;
  const cancelled = await raise();
  for (const k of `*${PIN}#`) await kp.press(k);
  await endedEverywhere(cancelled);
  await commandsSettled();
  // What the origin keypad was told from its 9# to the end of the cancel (its answers carry no alarm id).
  const originAfterCancel = kp.commands.slice(from);
  from = kp.commands.length;
  t.match(await officer.waitFor((x) => x.alarmId === cancelled && x.state === 'cancelled'), { duress: false, rev: 2 }, 'the console sees cancelled');

  const duress = await raise();
  t.not(duress, cancelled, 'a 9# after a cancel raises a new alarm');
  await kp.press(`*${DURESS}#`);
  await endedEverywhere(duress);
  await commandsSettled();
  const originAfterDuress = kp.commands.slice(from);
  t.match(await officer.waitFor((x) => x.alarmId === duress && x.duress === true), { state: 'raised', rev: 2 }, 'the console sees duress, in its open state');

  const after = await raise();
  t.not(after, duress, 'a 9# after a duress raises a new alarm');
  t.equal(new Set([cancelled, duress, after]).size, 3, 'three alarms');

  // The officer closes both; then time passes beyond several ring intervals.
  await officer.act({ alarmId: cancelled, action: 'close', disposition: 'false' });
  await officer.waitFor((x) => x.alarmId === cancelled && x.state === 'closed');
  await officer.act({ alarmId: duress, action: 'ack' });
  await officer.waitFor((x) => x.alarmId === duress && x.state === 'acknowledged');
  await officer.act({ alarmId: duress, action: 'close', disposition: 'real' });
  await officer.waitFor((x) => x.alarmId === duress && x.state === 'closed');
  await sleep(RING_INTERVAL_MS * 3);

  const strip = (alerts: ShopAlert[]) => alerts.map(({ alarmId: _a, raisedAt: _r, ...rest }) => rest);
  const stripCommands = (commands: DeviceCommand[]) => commands.map(({ alarmId: _a, seq: _s, ...rest }) => rest);
  t.match(stripCommands(originAfterCancel), [{ command: 'led', colour: 'green' }, { command: 'display', text: '已取消', line2: 'Cancelled' }, { command: 'led', colour: 'off' }], "the origin keypad: the 9#'s LED, then the cancel's text and the LED off");
  t.same(stripCommands(originAfterDuress), stripCommands(originAfterCancel), 'the origin keypad is told exactly the same for the duress PIN as for the cancel');
  for (const [shopId, k] of keypads) {
    const c = k.alerts.filter((x) => x.alarmId === cancelled);
    const d = k.alerts.filter((x) => x.alarmId === duress);
    t.same(strip(d), strip(c), `${shopId}: the same messages for the duress alarm as for the cancelled one`);
    const cc = k.commands.filter((x) => x.alarmId === cancelled);
    const dc = k.commands.filter((x) => x.alarmId === duress);
    t.same(stripCommands(dc), stripCommands(cc), `${shopId}: the same keypad commands for the duress alarm as for the cancelled one`);
    if (expected.includes(shopId)) t.same(cc.map((x) => [x.command, x.rev, x.on ?? x.text ?? x.colour]), [['buzzer', 1, true], ['display', 1, cc[1]?.text], ['led', 1, 'red'], ['buzzer', 2, false], ['display', 2, ''], ['led', 2, 'off']], `${shopId}: sounded and shown, then silenced and cleared, nothing more`);
    if (expected.includes(shopId)) t.same(c.map((x) => [x.rev, x.state]), [[1, 'raised'], [2, 'ended']], `${shopId}: raised, then ended, nothing more`);
    else t.equal(c.length, 0, `${shopId}: never alerted`);
  }
  t.notOk(
    officer.updates.some((x) => x.alarmId === duress && x.state === 'cancelled'),
    'the console never saw the duress alarm as cancelled',
  );
  const widened = query<{ alarmId: string; n: number }>(data, 'SELECT alarm_id AS alarmId, count(*) AS n FROM alarm_recipients WHERE alarm_id IN (?, ?) GROUP BY alarm_id', cancelled, duress);
  t.same(widened.map((w) => w.n), [10, 10], 'neither widened beyond ring 1');
  const stillOpen = query<{ ring: number }>(data, 'SELECT ring FROM alarms WHERE id = ?', after);
  t.ok(stillOpen[0].ring >= 2, 'the alarm left open did widen (so the interval was long enough to see it)');

  // No PIN in clear anywhere.
  const tables = query<{ name: string }>(data, "SELECT name FROM sqlite_master WHERE type = 'table'");
  const dump = tables.map(({ name }) => JSON.stringify(query(data, `SELECT * FROM "${name}"`), (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v))).join('\n');
  const keys = query<{ payload: string }>(data, "SELECT payload FROM events WHERE type = 'keypad' ORDER BY id").map((e) => JSON.parse(e.payload).keys as string);
  t.ok(keys.includes('*xxxxxxxx#') && keys.includes('x'), 'the PIN keys are stored masked');
  t.notOk(dump.includes(PIN) || dump.includes(DURESS), 'no PIN in clear in any table');
  await gw.kill();
  const log = JSON.stringify(gw.logs);
  t.notOk(log.includes(PIN) || log.includes(DURESS), "no PIN in clear in the gateway's log");
});

t.test('five wrong PINs: a pin-lockout notice on the faults topic; the lock-out survives a restart; duress then reaches only the console', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const origin = street.shops[5].shopId;
  t.equal((await cli(['shop', 'pin', origin, '--pin', PIN, '--duress-pin', DURESS, '--data', data])).code, 0);
  const env = { LF_ESCALATION_RING_INTERVAL_MS: '3600000' };
  const gw1 = await GatewayProcess.start(t, data, env);
  const { keypads, console: officer } = await connectStreet(t, street, gw1.mqttUrl);
  const watcher = await connectAsync(gw1.mqttUrl, { clientId: `${street.officer.username}:faults`, username: street.officer.username, password: street.officer.password });
  t.teardown(() => watcher.endAsync());
  const faults: Record<string, unknown>[] = [];
  watcher.on('message', (_topic, payload) => faults.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  await watcher.subscribeAsync(topics.stationFaults(street.stationId), { qos: 1 });
  const kp = keypads.get(origin)!;
  const expected = nearestShops(data, origin, 10);

  await kp.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  for (let i = 0; i < 5; i++) await kp.press('*90807060#');
  const until = Date.now() + 10_000;
  while (!faults.some((f) => f.fault === 'pin-lockout') && Date.now() < until) await sleep(50);
  t.match(faults, [{ fault: 'pin-lockout', shopId: origin, deviceId: street.shops[5].deviceId, state: 'raised', lockedUntil: String }], 'one pin-lockout notice to the console');
  t.equal(faults.length, 1);

  await gw1.kill('SIGTERM');
  const gw2 = await GatewayProcess.start(t, data, env, ['--mqtt-port', String(gw1.ports.mqtt)]);
  await kp.press(`*${PIN}#`);
  await kp.press(`*${DURESS}#`);
  const flagged = await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.duress === true, 20_000);
  t.equal(flagged.state, 'raised', 'the cancel PIN after the restart did not cancel: still locked; the duress reached the console');
  await sleep(300);
  for (const id of expected) t.notOk(keypads.get(id)!.alerts.some((a) => a.alarmId === alarm.alarmId && a.state === 'ended'), `${id}: nothing changed at the neighbour`);
  t.equal(query<{ shopsEnded: number }>(data, 'SELECT shops_ended AS shopsEnded FROM alarms WHERE id = ?', alarm.alarmId)[0].shopsEnded, 0);
  await gw2.kill();
  const log = JSON.stringify([...gw1.logs, ...gw2.logs]);
  t.notOk(log.includes(PIN) || log.includes(DURESS) || log.includes('90807060'), "no PIN, right or wrong, in the gateway's log");
});
