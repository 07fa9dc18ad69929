/**
 * gateway/delivery/device-commands.ts with the outbox on a real database (no sockets): what the
 * pressing keypad is told for each answer, what a neighbour's MQTT keypads are told for an alert,
 * device rows numbered, superseded and delivered by their command counter, a wired keypad's
 * answer handed over only after the commit, nothing for a device with no keypad.
 */
import t, { type Test } from 'tap';
import { tempDataDir } from '../../helpers/gateway.js';
import { provisionRow, addWiredDevice } from '../../helpers/wired.js';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { RegistryCache, type Device } from '../../../gateway/registry/registry.js';
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
  const sink = new DeviceCommands({ registry, outbox, buzzerSeconds: BUZZER_SECONDS, wired: (deviceId, commands) => wired.push({ deviceId, commands }) });
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
  return { db, registry, outbox, writer, sink, published, wired, run, rows, close };
}

const alert = (alarmId: string, rev: number, state: ShopAlert['state']): ShopAlert => ({
  alarmId,
  rev,
  state,
  originShopId: 'W00',
  originName: '李记茶行',
  address: '1 Test Road',
  doorPlate: '1号',
  kind: 'panic',
  raisedAt: '2026-12-02T00:00:00.000Z',
});

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

t.test("an alert: each of the shop's MQTT keypads gets the wired neighbour's buzzer, display and LED; the end turns them off", async (t) => {
  const s = await setup(t);
  await s.run((fx, now) => s.sink.shopAlert(fx, now, 'W01', alert('A1', 1, 'raised')));
  const [line1, line2] = alertDisplay('1号', '李记茶行').text;
  const expected = [
    { command: 'buzzer', on: true, seconds: BUZZER_SECONDS, alarmId: 'A1', rev: 1 },
    { command: 'display', text: line1, line2, alarmId: 'A1', rev: 1 },
    { command: 'led', colour: 'red', blink: true, alarmId: 'A1', rev: 1 },
  ];
  for (const id of [s.neighbourA, s.neighbourB]) {
    t.same(s.rows(id).map((r) => ({ ...JSON.parse(r.payload), seq: undefined })), expected.map((e) => ({ ...e, seq: undefined })), `${id}: buzzer, display, LED`);
    t.same(s.rows(id).map((r) => [r.alarmId, r.rev]), [['A1', 1], ['A1', 1], ['A1', 1]], `${id}: rows about the alarm`);
  }
  t.equal(line1, '报警 1号', "the wired display's words");
  t.same(s.rows(s.panicButton), [], 'a panic button has no display');
  t.same(s.rows(s.presser), [], "another shop's keypad gets nothing");

  await s.run((fx, now) => s.sink.shopAlert(fx, now, 'W01', alert('A1', 2, 'ended')));
  const live = s.rows(s.neighbourA).filter((r) => !r.superseded).map((r) => JSON.parse(r.payload));
  t.match(live, [
    { command: 'buzzer', on: false, alarmId: 'A1', rev: 2 },
    { command: 'display', text: '', line2: '', alarmId: 'A1', rev: 2 },
    { command: 'led', colour: 'off', blink: false, alarmId: 'A1', rev: 2 },
  ], 'buzzer off, display cleared, LED off; the undelivered raised commands superseded');
  t.equal(s.rows(s.neighbourA).filter((r) => r.superseded).length, 3);
});

t.test("an alarm that ends while the keypad shows another alarm's alert changes nothing on it", async (t) => {
  const s = await setup(t);
  await s.run((fx, now) => s.sink.shopAlert(fx, now, 'W01', alert('A1', 1, 'raised')));
  await s.run((fx, now) => s.sink.shopAlert(fx, now, 'W01', alert('B2', 1, 'raised')));
  const before = s.rows(s.neighbourA).length;
  await s.run((fx, now) => s.sink.shopAlert(fx, now, 'W01', alert('A1', 2, 'ended')));
  t.equal(s.rows(s.neighbourA).length, before, 'nothing for A1: the keypad shows B2');
  await s.run((fx, now) => s.sink.shopAlert(fx, now, 'W01', alert('B2', 2, 'ended')));
  t.match(s.rows(s.neighbourA).slice(-3).map((r) => JSON.parse(r.payload)), [{ command: 'buzzer', on: false, alarmId: 'B2' }, { command: 'display', text: '' }, { command: 'led', colour: 'off' }]);
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
