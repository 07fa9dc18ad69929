/**
 * `lianfang fault list|assign|fix` as a child process (gateway/cli/fault.ts): with the gateway
 * running (in process on the manual clock, a real MQTT console) each change is published to the
 * console at once; a fix while the fault holds is refused unless --force; ids by a unique prefix;
 * every change an audit row with the CLI's OS user; on a stopped gateway's database the change is
 * stored with its outbox rows and reaches the console when the gateway starts.
 */
import t from 'tap';
import { userInfo } from 'node:os';
import { tempDataDir, query, cli } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import { provisionStreet } from '../helpers/street.js';
import { ManualClock } from '../../gateway/clock.js';
import { FAULT_AFTER_MS, startGateway as start, url, faultConsole as console_, keypad } from '../helpers/faults.js';

const ACTOR = `cli:${userInfo().username}`;

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
  t.match(table.stdout, /^ID\s+RAISED\s+DEVICE\/SUBJECT\s+SHOP\s+KIND\s+FAULT\s+TICKET\s+ASSIGNED TO/);
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
