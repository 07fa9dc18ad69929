/**
 * Faults and their maintenance tickets end to end (gateway/faults/fault-store.ts): the gateway in
 * process on the manual clock (supervision's checks run on it), its broker on a loopback port, MQTT
 * keypads as the simulator and the station's console as a real MQTT client, the CLI as a child
 * process. A fault opens a ticket and the ticket closes itself when the device recovers; a console
 * that subscribes late gets every open fault and the latest rev of every fault that changed while it
 * was away (a superseded rev is not re-sent, a delivered one not again); `lianfang fault assign|fix`
 * with the gateway running is published at once, and on a stopped gateway's database it is stored
 * with its outbox rows and reaches the console when the gateway starts.
 */
import t, { type Test } from 'tap';
import mqtt from 'mqtt';
import { userInfo } from 'node:os';
import { tempDataDir, query, cli } from '../../helpers/gateway.js';
import { eventually } from '../../helpers/wired.js';
import { provisionStreet, type StreetFile } from '../../../simulators/street.js';
import { SimKeypad } from '../../../simulators/mqtt-devices.js';
import { Gateway } from '../../../gateway/controller.js';
import { loadConfig } from '../../../config/load.js';
import { createLogger } from '../../../gateway/logger.js';
import { ManualClock } from '../../../gateway/clock.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { validators, type ConsoleFault } from '../../../firmware-contracts/mqtt/payloads.js';

const FAULT_AFTER_MS = 90_000;
const ACTOR = `cli:${userInfo().username}`;

async function start(t: Test, data: string, clock: ManualClock): Promise<Gateway> {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: data,
      log: { level: 'silent' },
      mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 },
      http: { host: '127.0.0.1', port: 0 },
      supervision: { mqttFaultAfterMs: FAULT_AFTER_MS, checkIntervalMs: 1_000 },
    },
  });
  const gw = await Gateway.start({ config, clock, log: createLogger('silent') });
  t.teardown(() => gw.stop());
  return gw;
}

const url = (gw: Gateway) => `mqtt://127.0.0.1:${gw.ports().mqtt}`;

/** The station's officer console, subscribed to its faults topic; every message checked against the contract. */
async function console_(t: Test, gw: Gateway, street: StreetFile, name = 'faults'): Promise<{ got: ConsoleFault[]; close: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url(gw), { clientId: `${street.officer.username}:${name}`, username: street.officer.username, password: street.officer.password, reconnectPeriod: 0 });
  const got: ConsoleFault[] = [];
  client.on('message', (_topic, payload) => {
    const msg = JSON.parse(payload.toString('utf8')) as unknown;
    if (!validators.consoleFault.check(msg)) t.fail(`a fault message outside the contract: ${validators.consoleFault.firstError(msg)}`);
    got.push(msg as ConsoleFault);
  });
  await client.subscribeAsync(topics.stationFaults(street.stationId), { qos: 1 });
  const close = () => client.endAsync(true);
  t.teardown(close);
  return { got, close };
}

const keypad = (street: StreetFile, i: number) => new SimKeypad(street.shops[i]!.deviceId, street.shops[i]!.shopId, street.shops[i]!.creds);
const of = (got: ConsoleFault[], deviceId: string) => got.filter((f) => f.deviceId === deviceId);
const undelivered = (data: string) =>
  query<{ n: number }>(data, "SELECT count(*) AS n FROM outbox WHERE recipient_kind = 'fault' AND delivered_at IS NULL AND superseded = 0")[0]!.n;

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

t.test('lianfang fault list / assign / fix: with the gateway running each change is published at once; on a stopped gateway it waits in the outbox', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 1);
  const clock = new ManualClock(Date.parse('2026-12-02T03:00:00.000Z'));
  let gw = await start(t, data, clock);
  const officer = await console_(t, gw, street);
  const id = street.shops[0]!.deviceId;
  clock.advance(FAULT_AFTER_MS + 1_000);
  await eventually(() => officer.got.length === 1, 'the silent fault');
  const faultId = officer.got[0]!.faultId;

  const listed = await cli(['fault', 'list', '--open', '--station', street.stationId, '--data', data, '--json']);
  t.equal(listed.code, 0, listed.stderr);
  t.match(JSON.parse(listed.stdout), [{ faultId, kind: 'silent', deviceId: id, state: 'raised', ticket: { state: 'open' } }]);
  const table = await cli(['fault', 'list', '--data', data]);
  t.match(table.stdout, /^id\s+raised\s+device\/subject\s+shop\s+kind\s+fault\s+ticket\s+assigned to/);
  t.match(table.stdout, new RegExp(`${faultId}\\s+\\S+\\s+${id.replace(/\./g, '\\.')}\\s+${street.shops[0]!.shopId}\\s+silent\\s+raised\\s+open`));

  // By a unique prefix, like git.
  const assigned = await cli(['fault', 'assign', faultId.slice(0, 13), '--to', 'Wang Tech', '--data', data]);
  t.equal(assigned.code, 0, assigned.stderr);
  t.match(assigned.stderr, /running gateway has published/);
  await eventually(() => officer.got.length === 2, 'the console hears the assignment at once');
  t.match(officer.got[1], { faultId, rev: 2, state: 'raised', ticket: { state: 'assigned', assignedTo: 'Wang Tech', assignedBy: ACTOR } });

  const refused = await cli(['fault', 'fix', faultId, '--note', 'looked at it', '--data', data]);
  t.equal(refused.code, 2, 'fixing a fault that still holds is refused');
  t.match(refused.stderr, /LF_ERR_FAULT_ACTIVE/);
  t.equal(query<{ rev: number }>(data, 'SELECT rev FROM faults WHERE id = ?', faultId)[0]!.rev, 2, 'nothing changed');
  const ambiguous = await cli(['fault', 'fix', 'zzzz', '--note', 'x', '--data', data]);
  t.equal(ambiguous.code, 2);
  t.match(ambiguous.stderr, /LF_ERR_INVALID_ARGUMENT/);
  const unknown = await cli(['fault', 'assign', 'ffff0000', '--to', 'x', '--data', data]);
  t.match(unknown.stderr, /LF_ERR_NOT_FOUND/);

  // The device comes back: the ticket closes itself; the technician then records what was done.
  const kp = await keypad(street, 0).connect(url(gw));
  t.teardown(() => kp.close());
  await kp.send({ type: 'heartbeat' } as never);
  await eventually(() => officer.got.length === 3, 'cleared');
  t.match(officer.got[2], { rev: 3, state: 'cleared', ticket: { state: 'fixed', recovered: true, assignedTo: 'Wang Tech' } });
  const fixed = await cli(['fault', 'fix', faultId, '--note', 'replaced the cable', '--data', data, '--json']);
  t.equal(fixed.code, 0, fixed.stderr);
  t.match(JSON.parse(fixed.stdout), { faultId, rev: 4, gatewayRunning: true, ticket: { state: 'fixed', fixedBy: ACTOR, note: 'replaced the cable', recovered: true } });
  await eventually(() => officer.got.length === 4, 'the fix note is published');
  t.match(officer.got[3], { rev: 4, ticket: { note: 'replaced the cable' } });
  t.same(
    query(data, "SELECT actor, action, rev, json_extract(detail, '$.faultId') AS faultId FROM audit WHERE action LIKE 'fault-%' ORDER BY id"),
    [
      { actor: ACTOR, action: 'fault-assign', rev: 2, faultId },
      { actor: ACTOR, action: 'fault-fix', rev: 4, faultId },
    ],
    'every ticket change is an audit row with the CLI user',
  );

  // A stopped gateway: the CLI works on the database; the change reaches the console at the next start.
  await kp.close();
  clock.advance(FAULT_AFTER_MS + 1_000);
  await eventually(() => officer.got.length === 5, 'a second silence: a new fault');
  const second = officer.got[4]!;
  t.not(second.faultId, faultId, 'a new fault, a new id');
  await officer.close();
  await gw.stop();
  const offline = await cli(['fault', 'fix', second.faultId, '--note', 'unit removed for repair', '--force', '--data', data, '--json']);
  t.equal(offline.code, 0, offline.stderr);
  t.match(JSON.parse(offline.stdout), { faultId: second.faultId, rev: 2, state: 'raised', gatewayRunning: false, ticket: { state: 'fixed', closedAs: 'fixed', recovered: false } });
  t.match(offline.stderr, /no gateway is running/);
  t.same(query(data, "SELECT rev FROM outbox WHERE recipient_kind = 'fault' AND alarm_id = ? AND delivered_at IS NULL AND superseded = 0", second.faultId), [{ rev: 2 }], 'its outbox row waits');
  gw = await start(t, data, clock);
  const back = await console_(t, gw, street, 'faults-back');
  await eventually(() => back.got.some((f) => f.faultId === second.faultId), 'the console gets it after the start');
  t.match(back.got.find((f) => f.faultId === second.faultId), { rev: 2, state: 'raised', ticket: { state: 'fixed', fixedBy: ACTOR, note: 'unit removed for repair' } });
  t.equal(query<{ n: number }>(data, "SELECT count(*) AS n FROM audit WHERE action = 'fault-fix' AND json_extract(detail, '$.force') = 1")[0]!.n, 1, 'the forced fix is audited as such');
});
