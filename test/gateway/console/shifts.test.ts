/**
 * Shifts (issue 11, "The tiers and the shift"; gateway/console/shifts.ts and routes-shifts.ts),
 * run through the route table's handlers in-process on the engine harness (a real database, the
 * writer, the outbox, a ManualClock): sign on, hand over with a note, who is on duty; a handover's
 * open alarms pass to the next officer as alarm changes; the nobody-on-duty fault with an alarm no
 * signed-on officer covers, cleared when an officer of a covering scope signs on. The same over
 * real HTTP is in shifts.http.test.ts.
 */
import t, { type Test } from 'tap';
import { STREET_STATION } from '../../../simulators/street.js';
import { ManualClock, iso } from '../../../gateway/clock.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { addStation, addUser, getUser, updateShop } from '../../../gateway/registry/registry.js';
import { EngineHarness, streetTemplate } from '../../helpers/engine.js';
import { SHIFT_ROUTES } from '../../../gateway/console/routes-shifts.js';
import { scopesOf, type ApiRequest, type ConsoleDeps } from '../../../gateway/console/api.js';
import type { ConsoleSession } from '../../../gateway/console/sessions.js';
import type { ShiftView } from '../../../gateway/console/contract.js';
import { createLogger } from '../../../gateway/logger.js';
import { LianfangError } from '../../../gateway/errors.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { startTestMode } from '../../../gateway/alarm/test-mode.js';
import { setShopPins } from '../../../gateway/alarm/pins.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import type { ConsoleAlarm, ConsoleFault } from '../../../firmware-contracts/mqtt/payloads.js';

const { street: STREET, copy: streetCopy } = await streetTemplate(t, 8);
const COMPOUND = 'PS1-C1';
const A = STREET.officer.username; // the station's officer of the street
const B = 'officer-b';
const C = 'officer-c';
const GUARD = 'guard-c1';
const ADMIN = 'admin-1';
/** Shops 0–3 are the station's own; 4–7 are in the compound. */
const IN_COMPOUND = [4, 5, 6, 7];
const DURESS = '13577531';

/** A street copy with a compound (shops 4–7), two more station officers, the compound's guard and an admin. */
async function street(t: Test): Promise<string> {
  const dir = streetCopy(t);
  const db = openDatabase(dir);
  try {
    addStation(db, { id: COMPOUND, name: '东湖花园 Donghu Garden', compoundOf: STREET_STATION });
    for (const i of IN_COMPOUND) updateShop(db, STREET.shops[i]!.shopId, { compoundId: COMPOUND });
    for (const name of [B, C]) await addUser(db, { name, role: 'officer', stationId: STREET_STATION, password: 'password-123' });
    await addUser(db, { name: GUARD, role: 'officer', stationId: COMPOUND, password: 'password-123' });
    await addUser(db, { name: ADMIN, role: 'admin', password: 'password-123' });
  } finally {
    db.close();
  }
  return dir;
}

class Harness extends EngineHarness {
  private seq = new Map<string, number>();

  constructor(t: Test, dir: string, clock: ManualClock, dutyFault = false) {
    // No deadline falls due while a test moves the clock by minutes: the alarms change only as the test says.
    super(t, dir, clock, 'gw-test', { console: { nobodyOnDutyFault: dutyFault }, escalation: { ringIntervalMs: 24 * 3600_000, ackDeadlineMs: 24 * 3600_000 } });
  }

  /** The gateway's parts a route handler uses, from this harness. */
  deps(): ConsoleDeps {
    const { db, registry, writer, engine, faults, clock, config, counters } = this;
    return { db, registry, writer, engine, faults, clock, config, counters, log: createLogger('silent'), gatewayId: 'gw-test' };
  }

  /** Call a shift route as `user` (its session is not looked at by these handlers). */
  async call(method: 'GET' | 'POST', path: string, user: string, input: { query?: Record<string, string>; body?: Record<string, unknown> } = {}): Promise<any> {
    const route = SHIFT_ROUTES.find((r) => r.method === method && r.path === path);
    if (!route) throw new Error(`no route ${method} ${path}`);
    const u = getUser(this.db, user)!;
    const req: ApiRequest = {
      method,
      params: {},
      query: new URLSearchParams(input.query ?? {}),
      body: input.body ?? {},
      session: {} as ConsoleSession,
      user: u,
      scopes: scopesOf(u, this.registry, this.config.timeZone),
      actor: `user:${user}`,
    };
    return await route.handler(this.deps(), req);
  }

  signOn = (user: string, scope?: string) => this.call('POST', '/api/shifts/sign-on', user, { body: scope ? { scope } : {} });
  handOver = (user: string, note: unknown, scope?: string) => this.call('POST', '/api/shifts/hand-over', user, { body: { note, ...(scope ? { scope } : {}) } });
  view = (user: string, scope?: string): Promise<ShiftView> => this.call('GET', '/api/shifts', user, { query: scope ? { scope } : {} });

  async raise(i: number, keys = '9#'): Promise<string> {
    const device = this.registry.devices.get(STREET.shops[i]!.deviceId)!;
    const s = (this.seq.get(device.id) ?? 0) + 1;
    this.seq.set(device.id, s);
    const out = await this.ingest(device, { seq: s, boot: 1, type: 'keypad', keys });
    if (out.status !== 'stored' || !out.alarmId) throw new Error(`no alarm: ${JSON.stringify(out)}`);
    return out.alarmId;
  }

  act(console: string, user: string, alarmId: string, action: 'take' | 'ack' | 'close') {
    return this.writer.run((fx) => this.engine.consoleAction(fx, console, user, { alarmId, action, ...(action === 'close' ? { disposition: 'false' as const } : {}) }));
  }

  auditOf(action: string) {
    return (this.db.prepare('SELECT alarm_id AS alarmId, actor, rev, detail FROM audit WHERE action = ? ORDER BY id').all(action) as { alarmId: string | null; actor: string; rev: number | null; detail: string }[]).map((r) => ({
      ...r,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }

  alarmMessages(alarmId: string, console = STREET_STATION): ConsoleAlarm[] {
    return this.published.filter((p) => p.topic === topics.stationAlarms(console) && p.payload.alarmId === alarmId).map((p) => p.payload as unknown as ConsoleAlarm);
  }

  faultMessages(console = STREET_STATION): ConsoleFault[] {
    return this.published.filter((p) => p.topic === topics.stationFaults(console)).map((p) => p.payload as unknown as ConsoleFault);
  }

  dutyFaults() {
    return this.faults.openFaults().filter((f) => f.kind === 'nobody-on-duty');
  }
}

async function refused(t: Test, p: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: not refused`);
  } catch (err) {
    t.ok(err instanceof LianfangError, `${what}: a LianfangError`);
    t.equal((err as LianfangError).code, code, `${what}: ${code}`);
  }
}

t.test('sign on, hand over with a note, who is on duty; every sign-on and hand-over is an audit row', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, await street(t), clock);
  const empty = await h.view(A);
  t.match(empty, { scope: { id: STREET_STATION, kind: 'station' }, onDuty: [], lastHandover: null, mine: false }, "nobody on duty; the caller's own scope by default");

  const on = await h.signOn(A);
  t.match(on, { already: false, alarmsPassed: 0, mine: true, onDuty: [{ user: A, since: iso(clock.now()) }] });
  const again = await h.signOn(A);
  t.match(again, { already: true, onDuty: [{ user: A }] }, 'signing on twice is one shift');
  t.equal(again.onDuty.length, 1);
  t.same(h.auditOf('shift-sign-on').map((r) => [r.alarmId, r.actor, r.detail]), [[null, `user:${A}`, { scopeId: STREET_STATION, note: null }]], 'one audit row for the sign-on');
  t.match(await h.view(B), { onDuty: [{ user: A }], mine: false }, 'another officer of the station sees who is on duty');

  // The note: required, text, at most 1000 characters.
  for (const [note, what] of [[undefined, 'no note'], ['   ', 'a blank note'], [42, 'a number'], ['字'.repeat(1001), '1001 characters']] as const) {
    await refused(t, h.handOver(A, note), 'LF_ERR_INVALID_ARGUMENT', what);
  }
  t.match(await h.view(A), { onDuty: [{ user: A }], lastHandover: null }, 'a refused hand-over changes nothing');
  await refused(t, h.handOver(B, 'not mine'), 'LF_ERR_NOT_ON_DUTY', 'an officer not signed on');

  clock.advance(8 * 3600_000);
  const note = '夜班无事。S03 卷帘门坏了 — S03 shutter broken, owner called. '.padEnd(1000, '.');
  const off = await h.handOver(A, note);
  t.match(off, { handedTo: null, alarmsPassed: 0, onDuty: [], mine: false, lastHandover: { from: A, to: null, note, at: iso(clock.now()) } }, 'nobody to hand to yet: the note waits');
  t.same(h.auditOf('shift-hand-over').map((r) => [r.alarmId, r.actor, r.detail]), [[null, `user:${A}`, { scopeId: STREET_STATION, note, to: null, alarmsPassed: 0 }]]);

  clock.advance(60_000);
  const next = await h.signOn(B);
  t.match(next, { onDuty: [{ user: B }], lastHandover: { from: A, to: B, note }, mine: true }, 'the next officer is handed the note');
  t.match(h.auditOf('shift-sign-on').at(-1), { actor: `user:${B}`, detail: { scopeId: STREET_STATION, note: null, handedOverBy: [A], alarmsPassed: 0 } });
  const row = h.db.prepare('SELECT user_name AS user, handover_note AS note, handed_to AS handedTo FROM shifts WHERE user_name = ?').get(A);
  t.same(row, { user: A, note, handedTo: B }, 'the handover note is kept');
});

t.test('only the scope\'s officers and admins: LF_ERR_SCOPE otherwise', async (t) => {
  const h = new Harness(t, await street(t), new ManualClock());
  await refused(t, h.view(GUARD, STREET_STATION), 'LF_ERR_SCOPE', "the compound's guard asks for the station's shift");
  await refused(t, h.signOn(GUARD, STREET_STATION), 'LF_ERR_SCOPE', "the compound's guard signs on at the station");
  await refused(t, h.signOn(A, COMPOUND), 'LF_ERR_SCOPE', "the station's officer signs on at the compound (an officer has one scope)");
  await refused(t, h.handOver(A, 'note', 'PS-NONE'), 'LF_ERR_SCOPE', 'a scope that does not exist');
  t.match(await h.view(GUARD), { scope: { id: COMPOUND, kind: 'compound', stationId: STREET_STATION } }, "the guard's own scope is the compound");
  t.match(await h.signOn(GUARD), { onDuty: [{ user: GUARD }] });
  t.match(await h.view(ADMIN, COMPOUND), { onDuty: [{ user: GUARD }], mine: false }, 'an admin may look at any scope');
  t.match(await h.view(A), { onDuty: [] }, "the compound's guard is not on duty at the station");
  t.same(h.auditOf('shift-sign-on').length, 1, 'refusals leave no audit row');
});

t.test('open alarms pass to the new shift: those the officer who handed over holds, as alarm changes', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, await street(t), clock);
  await h.signOn(A);
  const held = [await h.raise(0), await h.raise(1)];
  await h.act(STREET_STATION, A, held[0]!, 'take');
  await h.act(STREET_STATION, A, held[1]!, 'ack');
  const closed = await h.raise(2);
  await h.act(STREET_STATION, A, closed, 'ack');
  await h.act(STREET_STATION, A, closed, 'close');
  const others = await h.raise(3);
  await h.act(STREET_STATION, C, others, 'take');
  const untaken = await h.raise(4);

  const note = 'two alarms open, S01 and S02; patrol P-3 on the way';
  const off = await h.handOver(A, note);
  t.match(off, { handedTo: null, alarmsPassed: 0 });
  for (const id of held) t.equal(h.repo.get(id)!.takenBy, A, 'until someone signs on, the alarms stay with the officer who handed over');

  clock.advance(120_000);
  const before = new Map(held.map((id) => [id, h.repo.get(id)!]));
  const published = h.published.length;
  const on = await h.signOn(B);
  t.equal(on.alarmsPassed, 2, 'two open alarms passed');
  for (const id of held) {
    const was = before.get(id)!;
    const now = h.repo.get(id)!;
    t.match(now, { takenBy: B, state: was.state, rev: was.rev + 1, updatedAt: iso(clock.now()) }, `${id}: taken by the new officer, same state, rev + 1`);
    t.match(h.auditOf('handover').find((r) => r.alarmId === id), { actor: `user:${B}`, rev: was.rev + 1, detail: { from: A, to: B, note } }, 'audited as a handover from whom to whom, with the note');
    for (const console of [STREET_STATION]) t.match(h.alarmMessages(id, console).at(-1), { rev: was.rev + 1, takenBy: B }, 'published to the consoles like any change');
  }
  t.equal(h.repo.get(closed)!.takenBy, A, 'a closed alarm stays as it was');
  t.equal(h.repo.get(others)!.takenBy, C, "another officer's alarm stays theirs");
  t.equal(h.repo.get(untaken)!.takenBy, null, 'an untaken alarm stays untaken');
  t.equal(h.published.length - published, 2, 'one console message per alarm passed (the shops are told nothing)');
  await refused(t, h.act(STREET_STATION, A, held[0]!, 'take'), 'LF_ERR_TAKEN', 'the officer who left now needs force');
});

t.test('an overlapping handover: the officer already on duty gets the alarms at once', async (t) => {
  const h = new Harness(t, await street(t), new ManualClock());
  await h.signOn(A);
  const id = await h.raise(1);
  await h.act(STREET_STATION, A, id, 'take');
  await h.signOn(B);
  const off = await h.handOver(A, 'S02 is yours');
  t.match(off, { handedTo: B, alarmsPassed: 1, onDuty: [{ user: B }], lastHandover: { from: A, to: B, note: 'S02 is yours' } });
  t.match(h.repo.get(id), { takenBy: B });
  t.match(h.auditOf('handover'), [{ alarmId: id, actor: `user:${A}`, detail: { from: A, to: B, note: 'S02 is yours' } }]);
  t.match(h.auditOf('shift-hand-over').at(-1)!.detail, { to: B, alarmsPassed: 1 });
  // The next officer to sign on finds no waiting handover: it went to B.
  const on = await h.signOn(C);
  t.match(on, { alarmsPassed: 0 });
  t.notOk('handedOverBy' in h.auditOf('shift-sign-on').at(-1)!.detail);
});

t.test("a compound's handover passes only the compound's alarms, to the compound's next officer", async (t) => {
  const h = new Harness(t, await street(t), new ManualClock());
  const db = h.db;
  await h.signOn(GUARD);
  await h.signOn(A);
  const inCompound = await h.raise(5);
  await h.act(COMPOUND, GUARD, inCompound, 'take');
  await h.handOver(GUARD, 'gate 2 camera down');
  await addUser(db, { name: 'guard-2', role: 'officer', stationId: COMPOUND, password: 'password-123' });
  h.registry.reload();
  // The station's officer signing on or off does not take the compound's handover.
  await h.handOver(A, 'quiet');
  await h.signOn(B);
  t.equal(h.repo.get(inCompound)!.takenBy, GUARD, "the station's sign-on does not take the compound's handover");
  const on = await h.signOn('guard-2');
  t.match(on, { alarmsPassed: 1, lastHandover: { from: GUARD, to: 'guard-2', note: 'gate 2 camera down' } });
  t.match(h.repo.get(inCompound), { takenBy: 'guard-2' });
  for (const console of [STREET_STATION, COMPOUND]) t.match(h.alarmMessages(inCompound, console).at(-1), { takenBy: 'guard-2' }, `${console} sees the alarm passed`);
});

t.test('nobody-on-duty: an alarm no signed-on officer covers raises the fault once per scope; a sign-on in a covering scope clears it', async (t) => {
  const h = new Harness(t, await street(t), new ManualClock(), true);
  const first = await h.raise(0);
  t.match(h.dutyFaults(), [{ kind: 'nobody-on-duty', subject: `station:${STREET_STATION}`, stationId: STREET_STATION, compoundId: null, shopId: null, deviceId: null, ticket: 'open' }], 'an alarm with nobody on duty: the fault, with its station');
  const msgs = h.faultMessages();
  t.match(msgs, [{ fault: 'nobody-on-duty', state: 'raised', rev: 1, subject: `station:${STREET_STATION}`, text: { en: 'Alarm raised with nobody on duty', zh: '报警时无人值班' } }], "on the station's faults topic");
  t.ok(h.alarmMessages(first).length > 0, 'the alarm itself reached the console as always');
  await h.raise(1);
  t.equal(h.dutyFaults().length, 1, 'a second alarm: still one fault');
  t.equal(h.faultMessages().length, 1, 'and no new message');

  // A compound's alarm: a fault of its own, to the station and the compound.
  await h.raise(5);
  const compound = h.dutyFaults().find((f) => f.compoundId === COMPOUND);
  t.match(compound, { subject: `station:${COMPOUND}`, stationId: STREET_STATION, compoundId: COMPOUND });
  t.match(h.faultMessages(COMPOUND), [{ fault: 'nobody-on-duty', state: 'raised', subject: `station:${COMPOUND}` }], "the compound's receiving point gets it");

  // The guard signs on: the compound's fault clears, the station's stays.
  await h.signOn(GUARD);
  t.same(h.dutyFaults().map((f) => f.subject), [`station:${STREET_STATION}`]);
  t.match(h.faultMessages(COMPOUND).at(-1), { state: 'cleared', subject: `station:${COMPOUND}`, ticket: { state: 'fixed', recovered: true, closedAs: 'recovered', fixedBy: `user:${GUARD}` } });
  t.same(h.faults.list().find((f) => f.subject === `station:${COMPOUND}`)?.clearedHow, 'recovered');
  await h.raise(6);
  t.equal(h.dutyFaults().length, 1, 'the guard covers the compound: no fault');

  // The station's officer signs on: the station's clears; alarms anywhere in the station are covered.
  await h.signOn(A);
  t.same(h.dutyFaults(), []);
  t.match(h.faultMessages().at(-1), { state: 'cleared', subject: `station:${STREET_STATION}` });
  await h.raise(2);
  t.same(h.dutyFaults(), [], 'covered: no fault');
  await h.handOver(GUARD, 'off');
  await h.raise(7);
  t.same(h.dutyFaults(), [], "the station's officer covers the compound's shops too");

  // Everyone gone: a console-only duress alarm raises it too; a test alarm does not.
  await h.handOver(A, 'off');
  startTestMode(h.db, 'shop', STREET.shops[3]!.shopId, 600_000, 'cli:installer', h.clock.now());
  await h.raise(3);
  t.same(h.dutyFaults(), [], 'a test alarm (test mode) raises no fault');
  t.equal(await h.raise(0), first, "a 9# while the shop's alarm is open joins it");
  t.same(h.dutyFaults(), [], 'joining an open alarm raises no fault');
  const before = h.faults.list().filter((f) => f.kind === 'nobody-on-duty').length;
  await h.raise(4);
  t.equal(h.faults.list().filter((f) => f.kind === 'nobody-on-duty').length, before + 1, 'a new alarm with nobody on duty again: a new fault');
  t.match(h.dutyFaults(), [{ subject: `station:${COMPOUND}`, rev: 1 }]);
});

t.test('nobody-on-duty: a console-only duress alarm with nobody on duty raises it', async (t) => {
  const h = new Harness(t, await street(t), new ManualClock(), true);
  setShopPins(h.db, loadOrCreateGatewayKey(h.dataDir), STREET.shops[1]!.shopId, { pin: '24680864', duressPin: DURESS }, 'user:installer', iso(h.clock.now()));
  const id = await h.raise(1, `*${DURESS}#`);
  t.match(h.repo.get(id), { duress: true });
  t.match(h.dutyFaults(), [{ subject: `station:${STREET_STATION}` }]);
});

t.test('nobody-on-duty off (console.nobodyOnDutyFault false): no fault', async (t) => {
  const h = new Harness(t, await street(t), new ManualClock(), false);
  await h.raise(0);
  t.same(h.dutyFaults(), []);
  t.same(h.faultMessages(), []);
});
