/**
 * gateway/delivery/device-commands.ts with the outbox on a real database (no sockets): what the
 * pressing keypad is told for each answer, what a neighbour's MQTT keypads are told for an alert
 * (a rendering of the shop's alert row, no row of its own, no SQL) and what one that subscribes has
 * missed of them, device rows numbered, superseded and delivered by their command counter, a wired
 * keypad's answer handed over only after the commit, nothing for a device with no keypad.
 */
import t, { type Test } from 'tap';
import { tempDataDir } from '../../helpers/gateway.js';
import { provisionRow, addWiredDevice, rowAlert } from '../../helpers/wired.js';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { type Device } from '../../../gateway/registry/registry.js';
import { RegistryCache } from '../../../gateway/registry/registry-cache.js';
import { GroupCommitWriter, type Effects } from '../../../gateway/ingest/writer.js';
import { Outbox, type OutboxMessage, type NewDeviceCommand } from '../../../gateway/delivery/outbox.js';
import { DeviceCommands, FEEDBACK_TEXT, type KeypadFeedback } from '../../../gateway/delivery/device-commands.js';
import { createLogger } from '../../../gateway/logger.js';
import { alertDisplay, renderDisplay } from '../../../firmware-contracts/serial/display.js';
import { validators, type ShopAlert } from '../../../firmware-contracts/mqtt/payloads.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';

const BUZZER_SECONDS = 42;

async function setup(t: Test) {
  const data = tempDataDir(t);
  const shops = await provisionRow(data, 3);
  const presser = addWiredDevice(data, { shopId: 'W00', type: 'keypad', transport: 'mqtt' }).deviceId;
  const neighbourA = addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'mqtt' }).deviceId;
  const neighbourB = addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'mqtt' }).deviceId;
  const panicButton = addWiredDevice(data, { shopId: 'W01', type: 'panic', transport: 'mqtt' }).deviceId;
  return { data, shops, presser, neighbourA, neighbourB, panicButton, ...open(t, data) };
}

function open(t: Test, data: string) {
  const db: Db = openDatabase(data);
  const registry = new RegistryCache(db);
  registry.reload();
  const published: OutboxMessage[] = [];
  const outbox = new Outbox(db, { publish: (m) => published.push(m) });
  const writer = new GroupCommitWriter({ db, log: createLogger('silent') });
  const wired: { deviceId: string; commands: readonly NewDeviceCommand[] }[] = [];
  const sent: { topic: string; payload: string }[] = [];
  const sink = new DeviceCommands({ registry, outbox, buzzerSeconds: BUZZER_SECONDS, wired: (deviceId, commands) => wired.push({ deviceId, commands }), publish: (topic, payload) => sent.push({ topic, payload }) });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    writer.close();
    db.close();
  };
  t.teardown(close);
  const run = (fn: (fx: Effects, now: number) => void) => writer.run((fx) => fn(fx, Date.now()));
  const rows = (deviceId: string) =>
    db
      .prepare("SELECT command, seq, alarm_id AS alarmId, rev, superseded, delivered_at AS deliveredAt, payload FROM outbox WHERE recipient_kind = 'device' AND recipient_id = ? ORDER BY seq")
      .all(deviceId) as { command: string; seq: number; alarmId: string | null; rev: number | null; superseded: number; deliveredAt: string | null; payload: string }[];
  return { db, registry, outbox, writer, sink, published, wired, sent, run, rows, close };
}

const alert = (alarmId: string, rev: number, state: ShopAlert['state']) => rowAlert(alarmId, rev, state, '2026-12-02T00:00:00.000Z');

t.test("9#: the pressing keypad's LED blinks green, and nothing else (no buzzer, no text)", async (t) => {
  const s = await setup(t);
  const device = s.registry.devices.get(s.presser)!;
  await s.run((fx, now) => {
    s.sink.feedback(fx, now, device, 'raised');
    t.equal(s.published.length, 0, 'nothing is published inside the transaction');
  });
  t.same(s.published.map((m) => m.body), [{ command: 'led', colour: 'green', blink: true, seq: 1 }]);
  t.equal(s.published[0]!.topic, topics.deviceCommands(s.presser));
  t.ok(validators.deviceCommand.check(JSON.parse(s.published[0]!.payload)), 'the payload passes the contract');
  t.same(s.rows(s.presser).map((r) => [r.command, r.seq, r.alarmId, r.rev]), [['led', 1, null, null]], 'one outbox row, about no alarm');
  t.same(s.wired, []);
});

t.test('each PIN answer: its text in Chinese and English, whole on the 2×16 LCD; cancel also stops the LED', async (t) => {
  const s = await setup(t);
  const device = s.registry.devices.get(s.presser)!;
  const answers: KeypadFeedback[] = ['cancelled', 'no-alarm', 'wrong-pin', 'locked-out'];
  for (const what of answers) {
    s.published.length = 0;
    await s.run((fx, now) => s.sink.feedback(fx, now, device, what));
    const display = s.published.find((m) => m.kind === 'device' && m.body.command === 'display')!;
    t.ok(display, `${what}: a display command`);
    const { text, line2 } = display.body as { text: string; line2: string };
    t.same([text, line2], FEEDBACK_TEXT[what as keyof typeof FEEDBACK_TEXT]);
    t.match(text, /^[\u4e00-\u9fff]+$/, `${what}: line 1 in Chinese`);
    t.match(line2, /^[A-Za-z ,.]+$/, `${what}: line 2 in English`);
    t.same(renderDisplay([text, line2]).text, [text, line2], `${what}: fits the LCD uncut`);
    t.notOk(s.published.some((m) => m.kind === 'device' && m.body.command === 'buzzer'), `${what}: no buzzer`);
    const led = s.published.filter((m) => m.kind === 'device' && m.body.command === 'led').map((m) => m.body);
    t.same(led.map((b) => [b.colour, b.blink]), what === 'cancelled' ? [['off', false]] : [], `${what}: LED`);
  }
  const rows = s.rows(s.presser);
  t.same(rows.map((r) => r.seq), [1, 2, 3, 4, 5], 'the command counter only increases');
  t.same(rows.filter((r) => !r.superseded).map((r) => [r.command, r.seq]), [['led', 2], ['display', 5]], 'a newer command of the same kind supersedes the undelivered older one');
  t.same(s.outbox.pending('device', s.presser).map((m) => (m.kind === 'device' ? m.seq : 0)), [2, 5]);
});

t.test('a wired serial keypad gets its answer through its bus driver, only after the commit; a device without a keypad gets nothing', async (t) => {
  const s = await setup(t);
  const serial: Device = { ...s.registry.devices.get(s.presser)!, id: 'W00.keypad.serial', transport: 'serial' };
  await s.run((fx, now) => {
    s.sink.feedback(fx, now, serial, 'wrong-pin');
    t.same(s.wired, [], 'not before the commit');
  });
  t.same(s.wired, [{ deviceId: 'W00.keypad.serial', commands: [{ command: 'display', text: '密码错误', line2: 'Wrong PIN' }] }]);
  // A failed transaction tells the keypad nothing.
  await t.rejects(s.run((fx, now) => {
    s.sink.feedback(fx, now, serial, 'raised');
    throw new Error('rolled back');
  }));
  t.equal(s.wired.length, 1, 'nothing sent for a rolled-back entry');
  const modbus: Device = { ...serial, id: 'W00.io-module.m1', type: 'io-module', transport: 'modbus-tcp' };
  const panic = s.registry.devices.get(s.panicButton)!;
  await s.run((fx, now) => {
    s.sink.feedback(fx, now, modbus, 'raised');
    s.sink.feedback(fx, now, panic, 'raised');
  });
  t.equal(s.wired.length, 1);
  t.same(s.published, [], 'no MQTT command either');
  t.equal((s.db.prepare("SELECT count(*) AS n FROM outbox WHERE recipient_kind = 'device'").get() as { n: number }).n, 0);
});

t.test("an alert: each of the shop's MQTT keypads gets the wired neighbour's buzzer, display and LED, as messages and no rows; the end turns them off", async (t) => {
  const s = await setup(t);
  const raised = s.sink.alertMessages('W01', alert('A1', 1, 'raised'));
  const [line1, line2] = alertDisplay('1号', '李记茶行').text;
  const expected = [
    { command: 'buzzer', on: true, seconds: BUZZER_SECONDS, alarmId: 'A1', rev: 1, state: 'raised' },
    { command: 'display', text: line1, line2, alarmId: 'A1', rev: 1, state: 'raised' },
    { command: 'led', colour: 'red', blink: true, alarmId: 'A1', rev: 1, state: 'raised' },
  ];
  for (const id of [s.neighbourA, s.neighbourB]) {
    const mine = raised.filter((m) => m.topic === topics.deviceCommands(id));
    t.same(mine.map((m) => JSON.parse(m.payload)), expected, `${id}: buzzer, display, LED, about the alarm, no seq`);
    t.ok(mine.every((m) => validators.deviceCommand.check(JSON.parse(m.payload))), `${id}: the payloads pass the contract`);
    t.same(s.rows(id), [], `${id}: no outbox row of its own`);
  }
  t.equal(raised.length, 6, 'the two keypads only: a panic button has no display');
  t.equal(line1, '报警 1号', "the wired display's words");
  t.same(s.sink.alertMessages('W02', alert('A1', 1, 'raised')), [], 'a shop without MQTT keypads: nothing');

  const ended = s.sink.alertMessages('W01', alert('A1', 2, 'ended'));
  t.same(ended.filter((m) => m.topic === topics.deviceCommands(s.neighbourA)).map((m) => JSON.parse(m.payload)), [
    { command: 'buzzer', on: false, seconds: 0, alarmId: 'A1', rev: 2, state: 'ended' },
    { command: 'display', text: '', line2: '', alarmId: 'A1', rev: 2, state: 'ended' },
    { command: 'led', colour: 'off', blink: false, alarmId: 'A1', rev: 2, state: 'ended' },
  ], 'buzzer off, display cleared, LED off');

  s.db.prepare("UPDATE devices SET revoked_at = ? WHERE id = ?").run(new Date().toISOString(), s.neighbourB);
  s.registry.reload();
  t.same([...new Set(s.sink.alertMessages('W01', alert('A1', 1, 'raised')).map((m) => m.topic))], [topics.deviceCommands(s.neighbourA)], 'a revoked keypad gets nothing');

  // No SQL on the alarm path: with the database closed (any statement would throw) it still renders.
  s.close();
  t.equal(s.sink.alertMessages('W01', alert('C3', 1, 'raised')).length, 3, 'rendered from the in-memory registry alone');
});

t.test('alert commands go out after the alerts published in the same turn, in order', async (t) => {
  const s = await setup(t);
  s.sink.alertPublished('W01', alert('A1', 1, 'raised'));
  s.sink.alertPublished('W02', alert('A1', 1, 'raised'));
  s.sink.alertPublished('W01', alert('A1', 2, 'ended'));
  t.same(s.sent, [], 'not while the publisher is still publishing alerts');
  await Promise.resolve();
  t.same(s.sent, [...s.sink.alertMessages('W01', alert('A1', 1, 'raised')), ...s.sink.alertMessages('W01', alert('A1', 2, 'ended'))], "then all of them, in the alerts' order");
});

t.test("a keypad that subscribes gets its shop's undelivered alert rows as commands, and no more once the shop has them", async (t) => {
  const s = await setup(t);
  const row = (a: ShopAlert) => s.run((fx, now) => s.outbox.enqueue(fx, now, { alarmId: a.alarmId, rev: a.rev, kind: 'shop', recipientId: 'W01', topic: topics.shopAlerts('W01'), body: a }));
  await row(alert('A1', 1, 'raised'));
  await row(alert('B2', 1, 'raised'));
  await row(alert('A1', 2, 'ended'));
  const missed = s.sink.pendingAlertMessages(s.neighbourA);
  t.ok(missed.every((m) => m.topic === topics.deviceCommands(s.neighbourA)), 'on its own commands topic');
  t.same(missed.map((m) => JSON.parse(m.payload)).map((c) => [c.command, c.alarmId, c.rev, c.state]), [
    ['buzzer', 'B2', 1, 'raised'], ['display', 'B2', 1, 'raised'], ['led', 'B2', 1, 'raised'],
    ['buzzer', 'A1', 2, 'ended'], ['display', 'A1', 2, 'ended'], ['led', 'A1', 2, 'ended'],
  ], "each pending alert row in order (A1's raised superseded by its end); the keypad sorts out what to show");
  t.same(s.sink.pendingAlertMessages(s.panicButton), [], 'a panic button: nothing');
  t.same(s.sink.pendingAlertMessages(s.presser), [], 'a keypad of a shop with nothing pending: nothing');
  await s.run((fx, now) => {
    s.outbox.markDelivered(now, 'shop', 'W01', 'A1', 2, `device:${s.neighbourB}`);
    s.outbox.markDelivered(now, 'shop', 'W01', 'B2', 1, `device:${s.neighbourB}`);
  });
  t.same(s.sink.pendingAlertMessages(s.neighbourA), [], 'the shop has them (another keypad of it answered): nothing to re-send');
});

t.test("a device's PUBACK marks its command by seq; the counter survives a restart", async (t) => {
  const s = await setup(t);
  const device = s.registry.devices.get(s.presser)!;
  await s.run((fx, now) => {
    s.sink.feedback(fx, now, device, 'raised');
    s.sink.feedback(fx, now, device, 'wrong-pin');
  });
  t.equal(s.outbox.markCommandDelivered(Date.now(), s.presser, 2, `device:${s.presser}`), 1, 'seq 2 delivered');
  t.equal(s.outbox.markCommandDelivered(Date.now(), s.presser, 2, `device:${s.presser}`), 0, 'once');
  t.equal(s.outbox.markCommandDelivered(Date.now(), s.neighbourA, 1, `device:${s.neighbourA}`), 0, "another device's seq 1 is not this one's");
  t.same(s.rows(s.presser).map((r) => [r.seq, r.deliveredAt !== null]), [[1, false], [2, true]]);
  t.same(s.outbox.pending('device', s.presser).map((m) => m.kind === 'device' && m.body), [{ command: 'led', colour: 'green', blink: true, seq: 1 }], 'read back from the row with its object');
  s.close();

  const again = open(t, s.data);
  await again.run((fx, now) => again.sink.feedback(fx, now, again.registry.devices.get(s.presser)!, 'no-alarm'));
  t.same(again.published.map((m) => m.kind === 'device' && m.seq), [3], 'numbering goes on after a restart');
  // Each device has its own counter.
  await again.run((fx, now) => again.sink.feedback(fx, now, again.registry.devices.get(s.neighbourA)!, 'raised'));
  t.same(again.published.map((m) => m.kind === 'device' && m.seq), [3, 1]);
});
