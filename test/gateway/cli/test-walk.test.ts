/**
 * The walk test's rules in-process (gateway/cli/test-walk.ts, gateway/alarm/test-mode.ts), on a
 * real SQLite database: what each device must do (a module's panic and door inputs from its
 * register map), which stored event proves which step (a keypad only by the test alarm of a plain
 * 9#, not a 0#, a duress or a real alarm; a door only opening, on its own input), that events up to
 * the walk's start are not read, and the audit row of a pass and `device list`'s last-tested time.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { addDevice, addShop, addStation, listDevices, revokeDevice, type DeviceInput } from '../../../gateway/registry/registry.js';
import { applyEvent, eventsAfter, walkPlan, type SeenEvent } from '../../../gateway/cli/test-walk.js';
import { lastWalkTests, recordWalkPass } from '../../../gateway/alarm/test-mode.js';
import { GENERIC_8IO } from '../../../firmware-contracts/modbus/register-map.js';

function setup(t: { teardown(fn: () => unknown): void }): { db: Db; dir: string; add: (input: Omit<DeviceInput, 'shopId'> & { shopId?: string }) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'lf-walk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir);
  t.teardown(() => db.close());
  addStation(db, { id: 'PS1', name: 'PS1' });
  for (const id of ['S01', 'S02']) addShop(db, { id, name: id, address: id, stationId: 'PS1' });
  const key = loadOrCreateGatewayKey(dir);
  const add = (input: Omit<DeviceInput, 'shopId'> & { shopId?: string }) => addDevice(db, key, { shopId: 'S01', ...input } as DeviceInput).device.id;
  return { db, dir, add };
}

let seq = 0;
function event(db: Db, deviceId: string, type: string, payload: Record<string, unknown> = {}): number {
  return Number(
    db.prepare("INSERT INTO events (device_id, boot, seq, type, payload, via, received_at) VALUES (?, 1, ?, ?, ?, 'mqtt', ?)").run(deviceId, ++seq, type, JSON.stringify({ type, ...payload }), new Date().toISOString())
      .lastInsertRowid,
  );
}
function alarm(db: Db, originEventId: number, o: { kind?: string; test?: number; duress?: number }): string {
  const id = `A${originEventId}`;
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO alarms (id, gateway_id, shop_id, station_id, state, kind, rev, duress, test, origin_event_id, raised_at, updated_at) VALUES (?, 'gw', 'S01', 'PS1', 'closed', ?, 2, ?, ?, ?, ?, ?)`,
  ).run(id, o.kind ?? 'panic', o.duress ?? 0, o.test ?? 1, originEventId, now, now);
  return id;
}

t.test('the plan: what each device must do', async (t) => {
  const { db, dir, add } = setup(t);
  const keypad = add({ type: 'keypad', transport: 'mqtt' });
  const panic = add({ type: 'panic', transport: 'mqtt' });
  const mqttModule = add({ type: 'io-module', transport: 'mqtt' });
  const module = add({ type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: 1 });
  const mapFile = join(dir, 'only-inputs.json');
  writeFileSync(mapFile, JSON.stringify({ ...GENERIC_8IO, model: 'only-inputs', discreteInputs: GENERIC_8IO.discreteInputs.map((i) => ({ ...i, role: 'input' })) }));
  const bare = add({ type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: 2 });
  db.prepare('UPDATE devices SET model = ? WHERE id = ?').run(mapFile, bare); // a map file, as the bridge loads one
  const unknown = add({ type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: 3 });
  db.prepare('UPDATE devices SET model = ? WHERE id = ?').run(join(dir, 'gone.json'), unknown); // a map file since removed
  const revoked = add({ type: 'keypad', transport: 'mqtt' });
  revokeDevice(db, revoked);
  const plan = new Map(walkPlan(listDevices(db, 'S01')).map((d) => [d.deviceId, d]));
  t.notOk(plan.has(revoked), 'a revoked device is not walked');
  t.match(plan.get(keypad), { status: 'not-passed', steps: [{ check: '9#', input: null, todo: { en: 'press 9#', zh: '按 9#' } }] });
  t.match(plan.get(panic)!.steps, [{ check: 'panic', todo: { en: 'press the panic button', zh: '按下紧急按钮' } }]);
  t.same(plan.get(mqttModule)!.steps.map((s) => s.check), ['panic', 'door']);
  t.same(plan.get(module)!.steps.map((s) => [s.check, s.input, s.todo.zh]), [['panic', 'panic', '按下紧急按钮'], ['door', 'door', '打开门']], 'the generic-8io panic and door inputs');
  t.match(plan.get(bare), { status: 'nothing-to-test', steps: [], note: /no panic or door input/ }, 'a map without panic or door inputs: nothing to test');
  t.match(plan.get(unknown), { status: 'nothing-to-test', steps: [], note: /cannot be read/ }, 'an unknown map: nothing to test, and why');
});

t.test('which event proves which step; nothing up to the walk start is read', async (t) => {
  const { db, add } = setup(t);
  const keypad = add({ type: 'keypad', transport: 'mqtt' });
  const module = add({ type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: 1 });
  const other = add({ type: 'panic', transport: 'mqtt', shopId: 'S02' });
  const before = event(db, keypad, 'keypad', { keys: '9#' });
  alarm(db, before, {});
  event(db, module, 'door', { open: true, input: 'door' });
  const start = event(db, module, 'heartbeat');

  const plan = walkPlan(listDevices(db, 'S01'));
  const help = event(db, keypad, 'keypad', { keys: '0#' });
  alarm(db, help, { kind: 'help' });
  const duress = event(db, keypad, 'keypad', { keys: '*1357#' });
  alarm(db, duress, { duress: 1 });
  const real = event(db, keypad, 'keypad', { keys: '9#' });
  alarm(db, real, { test: 0 });
  event(db, other, 'panic');
  event(db, module, 'door', { open: false, input: 'door' });
  event(db, module, 'door', { open: true, input: 'in4' });
  const panicEv = event(db, module, 'panic', { input: 'panic' });
  const nineHash = event(db, keypad, 'keypad', { keys: '9#' });
  const testAlarm = alarm(db, nineHash, {});
  const doorEv = event(db, module, 'door', { open: true, input: 'door' });
  event(db, module, 'panic', { input: 'panic' });

  const seen = eventsAfter(db, 'S01', start);
  t.ok(seen.every((e) => e.id > start), 'only events after the start are read');
  t.notOk(seen.some((e) => e.deviceId === other), "another shop's events are not read");
  const hits = seen.map((e: SeenEvent) => applyEvent(plan, e)).flatMap((h, i) => (h ? [{ id: seen[i]!.id, device: h.device.deviceId, check: h.step.check }] : []));
  t.same(
    hits,
    [
      { id: panicEv, device: module, check: 'panic' },
      { id: nineHash, device: keypad, check: '9#' },
      { id: doorEv, device: module, check: 'door' },
    ],
    'a 0#, a duress, a real alarm, a door closing, another input and a second press prove nothing',
  );
  t.match(plan.find((d) => d.deviceId === keypad), { status: 'passed', eventId: nineHash, eventType: 'keypad', steps: [{ alarmId: testAlarm }] });
  t.match(plan.find((d) => d.deviceId === module), { status: 'passed', eventId: doorEv, eventType: 'door' }, 'the module passes on its last step');
});

t.test('a pass is an audit row; device list reads the newest; a pass names an event of its device', async (t) => {
  const { db, add } = setup(t);
  const keypad = add({ type: 'keypad', transport: 'mqtt' });
  const panic = add({ type: 'panic', transport: 'mqtt' });
  const e1 = event(db, keypad, 'keypad');
  const e2 = event(db, keypad, 'keypad');
  const base = { deviceId: keypad, shopId: 'S01', eventType: 'keypad', eventAt: new Date().toISOString() };
  const at1 = recordWalkPass(db, { ...base, eventId: e1 }, 'cli:installer', Date.parse('2026-12-01T10:00:00.000Z'));
  const at2 = recordWalkPass(db, { ...base, eventId: e2, alarmId: 'A1' }, 'cli:installer', Date.parse('2026-12-02T10:00:00.000Z'));
  t.same(lastWalkTests(db), new Map([[keypad, at2]]), 'the newest pass of each device; none for one never passed');
  t.not(at1, at2);
  t.match(JSON.parse((db.prepare("SELECT detail FROM audit WHERE action = 'walk-test-passed' ORDER BY id DESC LIMIT 1").get() as { detail: string }).detail), { ...base, eventId: e2, alarmId: 'A1' });
  t.throws(() => recordWalkPass(db, { ...base, deviceId: panic, eventId: e1 }, 'cli', Date.now()), { code: 'LF_ERR_INVALID_ARGUMENT' }, "an event of another device is refused");
  t.throws(() => recordWalkPass(db, { ...base, shopId: 'S02', eventId: e1 }, 'cli', Date.now()), { code: 'LF_ERR_INVALID_ARGUMENT' }, 'so is another shop');
  t.equal(lastWalkTests(db).has(panic), false);
});
