/**
 * What MQTT keypads show, end to end: the gateway as a child process, the street's keypads as the
 * MQTT simulator on the real wire, entries typed on the keypad (gateway/alarm/engine.ts decides the
 * answer, gateway/delivery/device-commands.ts turns it into commands on devices/{id}/commands).
 * After 9# the pressing keypad's LED blinks and nothing sounds at the counter; every neighbour's
 * keypad sounds and shows the alert, and is silenced and cleared when the alarm is cancelled; a
 * wrong PIN shows its text. A neighbour keypad away at the alarm gets the alert's commands when it
 * comes back, across a gateway restart too (they render the shop's alert row). A wired keypad (the serial simulator on a pty) shows the same
 * answers, from the frames it confirmed on the wire.
 */
import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query, cli } from '../../helpers/gateway.js';
import { addWiredDevice, eventually, provisionRow } from '../../helpers/wired.js';
import { openPtyPair } from '../../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../../simulators/serial-keypad.js';
import { SimKeypad } from '../../../simulators/mqtt-devices.js';
import { alertDisplay } from '../../../firmware-contracts/serial/display.js';

const PIN = '24680864';
const DURESS = '13577531';

const undeliveredCommands = (data: string) =>
  query<{ n: number }>(data, "SELECT count(*) AS n FROM outbox WHERE recipient_kind = 'device' AND delivered_at IS NULL AND superseded = 0")[0]!.n;

t.test("9#: the presser's LED only; neighbours' keypads sound and show the alert; a wrong PIN and a cancel show their texts and silence the street", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const originShop = street.shops[5]!;
  const origin = originShop.shopId;
  t.equal((await cli(['shop', 'pin', origin, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS })).code, 0);
  const gw = await GatewayProcess.start(t, data, { LF_ESCALATION_RING_INTERVAL_MS: '3600000', LF_SERIAL_BUZZER_SECONDS: '90' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const kp = keypads.get(origin)!;
  const expected = nearestShops(data, origin, 10);

  await kp.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  await kp.waitForCommand((c) => c.command === 'led');
  t.same(kp.shows, { display: ['', ''], led: { colour: 'green', blink: true }, buzzer: { on: false, seconds: 0 } }, 'the pressing keypad: a green blink, no sound, no text');
  for (const id of expected) {
    const k = keypads.get(id)!;
    await k.waitForCommand((c) => c.command === 'led' && c.alarmId === alarm.alarmId);
    t.same(k.shows, { display: alertDisplay('6号', originShop.name).text, led: { colour: 'red', blink: true }, buzzer: { on: true, seconds: 90 } }, `${id}: sounds and shows who is in trouble`);
  }
  t.equal(alertDisplay('6号', originShop.name).text[0], '报警 6号');
  const bystanders = [...keypads.keys()].filter((id) => id !== origin && !expected.includes(id));
  t.ok(bystanders.length > 0, 'a shop outside the ring');

  await kp.press('*11113333#');
  await kp.waitForCommand((c) => c.command === 'display' && c.line2 === 'Wrong PIN');
  t.same(kp.shows.display, ['密码错误', 'Wrong PIN'], 'a wrong PIN: its text');

  for (const k of `*${PIN}#`) await kp.press(k);
  await kp.waitForCommand((c) => c.command === 'display' && c.line2 === 'Cancelled');
  await kp.waitForCommand((c) => c.command === 'led' && c.colour === 'off');
  t.same(kp.shows, { display: ['已取消', 'Cancelled'], led: { colour: 'off', blink: false }, buzzer: { on: false, seconds: 0 } }, 'the cancel: its text, the LED off');
  for (const id of expected) {
    const k = keypads.get(id)!;
    await k.waitForCommand((c) => c.command === 'led' && c.alarmId === alarm.alarmId && c.colour === 'off');
    t.same(k.shows, { display: ['', ''], led: { colour: 'off', blink: false }, buzzer: { on: false, seconds: 0 } }, `${id}: silenced and cleared`);
  }
  for (const id of bystanders) t.same(keypads.get(id)!.commandsReceived, [], `${id}: never told anything`);
  t.notOk(kp.commandsReceived.some((c) => c.command === 'buzzer'), 'the pressing keypad never got a buzzer command');
  await eventually(() => undeliveredCommands(data) === 0, 'every command acknowledged by its keypad');
});

t.test('a neighbour keypad away when the alarm was raised gets its commands when it comes back, after a gateway restart too', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 4);
  const origin = street.shops[0]!;
  const away = street.shops[1]!;
  const env = { LF_ESCALATION_RING_INTERVAL_MS: '3600000' };
  const gw1 = await GatewayProcess.start(t, data, env);
  const kp = await new SimKeypad(origin.deviceId, origin.shopId, origin.creds).connect(gw1.mqttUrl);
  t.teardown(() => kp.close());
  await kp.press('9#');
  await kp.waitForCommand((c) => c.command === 'led');
  const alertRow = () =>
    query<{ deliveredBy: string | null }>(data, "SELECT delivered_by AS deliveredBy FROM outbox WHERE recipient_kind = 'shop' AND recipient_id = ? AND superseded = 0", away.shopId);
  await eventually(() => alertRow().length === 1, "the away shop's alert row stored");
  t.equal(alertRow()[0]!.deliveredBy, null, 'not delivered');
  t.same(query(data, "SELECT id FROM outbox WHERE recipient_kind = 'device' AND recipient_id = ?", away.deviceId), [], 'its keypad has no rows of its own: its commands render the shop row');
  await gw1.kill('SIGTERM');

  const gw2 = await GatewayProcess.start(t, data, env);
  const back = await new SimKeypad(away.deviceId, away.shopId, away.creds).connect(gw2.mqttUrl);
  t.teardown(() => back.close());
  await back.waitForCommand((c) => c.command === 'led');
  t.same(back.shows.buzzer.on, true, 'its buzzer sounds');
  t.same(back.shows.display[1], origin.name, "it shows the origin's name");
  t.match(back.commands, [{ command: 'buzzer', alarmId: String }, { command: 'display' }, { command: 'led' }], 'buzzer, display, LED, once each (repeats ignored)');
  t.equal(back.commands.length, 3);
  await eventually(() => alertRow()[0]?.deliveredBy === `device:${away.deviceId}`, "the shop's alert delivered by its keypad after the restart");
});

t.test('a serial keypad: the LED after 9#, the wrong-PIN text, the cancel text with the LED off; never a buzzer', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 3);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const keys = new Map<number, Buffer>();
  for (const [i, shopId] of ['W00', 'W01', 'W02'].entries()) keys.set(i + 1, addWiredDevice(data, { shopId, type: 'keypad', transport: 'serial', port: line.a, busAddress: i + 1 }).key!);
  t.equal((await cli(['shop', 'pin', 'W00', '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS })).code, 0);
  const gw = await GatewayProcess.start(t, data, { LF_SERIAL_POLL_PAUSE_MS: '5', LF_ESCALATION_RING_INTERVAL_MS: '3600000' });
  t.ok(gw.ports.mqtt > 0);
  const sim = new SerialKeypadSim({ path: line.b, keypads: [...keys].map(([address, key]) => ({ address, key })) });
  await sim.start();
  t.teardown(() => sim.close());

  sim.press(1, '9#');
  await sim.waitFor(() => sim.state(1).led.colour === 'green', 30_000);
  t.same(sim.state(1).led, { colour: 'green', blink: true }, 'the LED blinks green');
  await sim.waitFor(() => sim.state(2).buzzer.on, 30_000);
  t.same(sim.state(1).display, ['', ''], 'no text at the counter while the neighbour sounds');

  sim.press(1, '*11113333#');
  await sim.waitFor(() => sim.state(1).display[1] === 'Wrong PIN', 30_000);
  t.same(sim.state(1).display, ['密码错误', 'Wrong PIN']);

  sim.press(1, `*${PIN}#`);
  await sim.waitFor(() => sim.state(1).display[1] === 'Cancelled' && sim.state(1).led.colour === 'off', 30_000);
  t.same(sim.state(1).display, ['已取消', 'Cancelled']);
  await sim.waitFor(() => !sim.state(2).buzzer.on && sim.state(2).display[0] === '', 30_000);
  t.notOk(sim.state(1).commands.some((c) => c.type === 'BUZZER'), 'the pressing keypad never got a BUZZER frame');
});
