/**
 * Shifts over real HTTP on loopback against an in-process gateway (its broker on a loopback port):
 * the officer logs in, signs on and hands over through /api/shifts with the session's CSRF token;
 * refusals come back with the gateway's code and status; an alarm raised while nobody is on duty
 * reaches the station's faults topic as a `nobody-on-duty` fault over MQTT (as Node-RED or a
 * console receives it), and the officer's sign-on clears it there.
 */
import t, { type Test } from 'tap';
import { startGateway, tempDataDir, provisionStreet, query } from '../../helpers/gateway.js';
import { faultConsole } from '../../helpers/faults.js';
import { SimConsole, SimKeypad } from '../../../simulators/mqtt-devices.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { addStation, addUser } from '../../../gateway/registry/registry.js';
import type { Me, ShiftView } from '../../../gateway/console/contract.js';
import { eventually } from '../../helpers/wired.js';

async function setup(t: Test, dutyFault: boolean) {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 4);
  const db = openDatabase(data);
  addStation(db, { id: 'PS9', name: 'Other station 其他派出所' });
  await addUser(db, { name: 'other9', role: 'officer', stationId: 'PS9', password: 'other-pass-9' });
  await addUser(db, { name: 'officer-b', role: 'officer', stationId: street.stationId, password: 'officer-pass-b' });
  db.close();
  const gw = await startGateway(t, data, { console: { nobodyOnDutyFault: dutyFault } });
  return { data, street, gw, base: `http://127.0.0.1:${gw.ports().http}`, mqttUrl: `mqtt://127.0.0.1:${gw.ports().mqtt}` };
}

/** A logged-in session: GET and POST with its cookie and CSRF token; answers as { status, body }. */
async function session(base: string, username: string, password: string) {
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`login of ${username}: ${res.status}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const me = (await (await fetch(`${base}/api/me`, { headers: { cookie } })).json()) as Me;
  const answer = async (r: Response) => ({ status: r.status, body: (await r.json()) as any });
  return {
    get: (path: string) => fetch(`${base}${path}`, { headers: { cookie } }).then(answer),
    post: (path: string, body: unknown, csrf = me.csrf) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify(body) }).then(answer),
  };
}

t.test('sign on and hand over over HTTP; refusals with their codes', async (t) => {
  const { base, street, data } = await setup(t, false);
  const a = await session(base, street.officer.username, street.officer.password);
  const b = await session(base, 'officer-b', 'officer-pass-b');
  const other = await session(base, 'other9', 'other-pass-9');

  t.equal((await fetch(`${base}/api/shifts`)).status, 401, 'no session: 401');
  const empty = await a.get('/api/shifts');
  t.equal(empty.status, 200);
  t.match(empty.body as ShiftView, { scope: { id: street.stationId }, onDuty: [], lastHandover: null, mine: false });

  t.equal((await a.post('/api/shifts/sign-on', {}, 'not-the-token')).status, 403, 'without the CSRF token: 403');
  const on = await a.post('/api/shifts/sign-on', { scope: street.stationId });
  t.equal(on.status, 200);
  t.match(on.body, { onDuty: [{ user: street.officer.username }], mine: true, already: false });

  const noNote = await a.post('/api/shifts/hand-over', {});
  t.match(noNote, { status: 400, body: { code: 'LF_ERR_INVALID_ARGUMENT' } }, 'a hand-over without a note: 400');
  t.match(await a.post('/api/shifts/hand-over', { note: 'x'.repeat(1001) }), { status: 400, body: { code: 'LF_ERR_INVALID_ARGUMENT' } }, 'a note over 1000 characters: 400');
  t.match(await b.post('/api/shifts/hand-over', { note: 'not on duty' }), { status: 403, body: { code: 'LF_ERR_NOT_ON_DUTY' } }, 'not signed on: 403');
  const scope = await other.get(`/api/shifts?scope=${street.stationId}`);
  t.match(scope, { status: 403, body: { code: 'LF_ERR_SCOPE' } }, "another station's officer sees none of it");
  t.match(await other.post('/api/shifts/sign-on', { scope: street.stationId }), { status: 403, body: { code: 'LF_ERR_SCOPE' } });
  t.match((await other.get('/api/shifts')).body, { scope: { id: 'PS9' }, onDuty: [] }, "and sees their own station's shift");

  const off = await a.post('/api/shifts/hand-over', { note: '交班：一切正常 all quiet' });
  t.match(off, { status: 200, body: { onDuty: [], handedTo: null, lastHandover: { from: street.officer.username, note: '交班：一切正常 all quiet' } } });
  const next = await b.post('/api/shifts/sign-on', {});
  t.match(next.body, { onDuty: [{ user: 'officer-b' }], lastHandover: { from: street.officer.username, to: 'officer-b' } });
  t.match((await a.get('/api/shifts')).body, { onDuty: [{ user: 'officer-b' }], mine: false }, 'the officer who left sees who is on duty now');
  t.same(
    query<{ actor: string; action: string }>(data, "SELECT actor, action FROM audit WHERE action LIKE 'shift-%' ORDER BY id"),
    [
      { actor: `user:${street.officer.username}`, action: 'shift-sign-on' },
      { actor: `user:${street.officer.username}`, action: 'shift-hand-over' },
      { actor: 'user:officer-b', action: 'shift-sign-on' },
    ],
    'every sign-on and hand-over is an audit row; the refused ones are not',
  );
});

t.test('an alarm with nobody on duty is a nobody-on-duty fault on the faults topic; the sign-on clears it; the alarm passes on at the next sign-on', async (t) => {
  const { base, street, gw, mqttUrl } = await setup(t, true);
  const faults = await faultConsole(t, gw, street, 'duty');
  const officer = await new SimConsole(street.stationId, street.officer).connect(mqttUrl);
  const s = street.shops[1]!;
  const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds).connect(mqttUrl);
  t.teardown(async () => {
    await kp.close();
    await officer.close();
  });

  await kp.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === s.shopId, 20_000);
  await eventually(() => faults.got.some((f) => f.fault === 'nobody-on-duty'), 'the nobody-on-duty fault on the faults topic');
  const raised = faults.got.find((f) => f.fault === 'nobody-on-duty')!;
  t.match(raised, { state: 'raised', subject: `station:${street.stationId}`, text: { zh: '报警时无人值班' }, detail: { stationId: street.stationId } });
  t.match(
    gw.faults.openFaults().filter((f) => f.kind === 'nobody-on-duty'),
    [{ faultId: raised.faultId, stationId: street.stationId, compoundId: null }],
    "open in the fault store with the station's scope (what the console's queue lists)",
  );

  const a = await session(base, street.officer.username, street.officer.password);
  t.equal((await a.post('/api/shifts/sign-on', {})).status, 200);
  await eventually(() => faults.got.some((f) => f.faultId === raised.faultId && f.state === 'cleared'), 'the fault cleared on the faults topic');
  t.match(faults.got.find((f) => f.faultId === raised.faultId && f.state === 'cleared'), { rev: 2, ticket: { state: 'fixed', recovered: true, fixedBy: `user:${street.officer.username}` } });

  // The officer takes the alarm and hands over; the next officer's sign-on passes it on, live.
  await officer.act({ alarmId: alarm.alarmId, action: 'take' });
  await officer.waitFor((x) => x.alarmId === alarm.alarmId && x.takenBy === street.officer.username, 20_000);
  t.match((await a.post('/api/shifts/hand-over', { note: 'S02 open, I hold it' })).body, { handedTo: null });
  const b = await session(base, 'officer-b', 'officer-pass-b');
  t.match((await b.post('/api/shifts/sign-on', {})).body, { alarmsPassed: 1 });
  const passed = await officer.waitFor((x) => x.alarmId === alarm.alarmId && x.takenBy === 'officer-b', 20_000);
  t.equal(passed.state, 'raised', 'passed to the new shift, state unchanged, on the consoles at once');
});

t.test("a station's officer sees who is on duty at its compounds' receiving points", async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 4);
  const db = openDatabase(data);
  addStation(db, { id: 'C7', name: 'Garden Court 花园小区', compoundOf: street.stationId });
  await addUser(db, { name: 'guard7', role: 'officer', stationId: 'C7', password: 'guard-pass-7' });
  db.close();
  const gw = await startGateway(t, data);
  const base = `http://127.0.0.1:${gw.ports().http}`;
  const station = await session(base, street.officer.username, street.officer.password);
  const guard = await session(base, 'guard7', 'guard-pass-7');
  t.match((await station.get('/api/shifts')).body, { compounds: [{ id: 'C7', onDuty: [] }] }, 'nobody at the compound yet');
  t.equal((await guard.post('/api/shifts/sign-on', { scope: 'C7' })).status, 200, 'the guard signs on at the compound');
  const view = (await station.get('/api/shifts')).body as ShiftView;
  t.same(view.compounds?.map((c) => [c.id, c.onDuty.map((d) => d.user)]), [['C7', ['guard7']]], 'the station sees the guard on duty there');
  t.same(view.onDuty, [], "and nobody at the station's own centre");
  const own = (await guard.get('/api/shifts?scope=C7')).body as ShiftView;
  t.equal(own.compounds, undefined, "a compound's view has no compounds of its own");
  t.equal((await guard.get(`/api/shifts?scope=${street.stationId}`)).status, 403, "the guard may not look at the station's shift");
});
