/**
 * Two officers cannot both take an alarm (issue 11, "The queue"): a compound's receiving point and
 * its station see a compound alarm at the same moment, and whichever takes it first has it. An
 * officer's `take` or `ack` of an alarm another officer holds is refused with LF_ERR_TAKEN naming
 * the holder, unless it says `"force": true`, audited as taken from whom. The engine in-process on
 * a ManualClock (test/helpers/engine.ts), and once on the real wire: the refusal on the station's
 * errors topic, as a console receives it.
 */
import t, { type Test } from 'tap';
import { STREET_STATION } from '../../../simulators/street.js';
import { ManualClock } from '../../../gateway/clock.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { addStation, addUser, updateShop } from '../../../gateway/registry/registry.js';
import { EngineHarness, streetTemplate } from '../../helpers/engine.js';
import { LianfangError } from '../../../gateway/errors.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import { startGateway } from '../../helpers/gateway.js';
import { SimConsole, SimKeypad } from '../../../simulators/mqtt-devices.js';
import type { ConsoleAction, ConsoleAlarm } from '../../../firmware-contracts/mqtt/payloads.js';

const { street: STREET, copy: streetCopy } = await streetTemplate(t, 6);
const COMPOUND = 'PS1-C1';
const GUARD = 'guard-c1';
const ORIGIN = 2;

/** A street copy whose origin shop is in a compound with its own officer (the guard). */
async function compoundStreet(t: Test): Promise<string> {
  const dir = streetCopy(t);
  const db = openDatabase(dir);
  try {
    addStation(db, { id: COMPOUND, name: '东湖花园', compoundOf: STREET_STATION });
    updateShop(db, STREET.shops[ORIGIN]!.shopId, { compoundId: COMPOUND });
    await addUser(db, { name: GUARD, role: 'officer', stationId: COMPOUND, password: 'guard-password-1' });
  } finally {
    db.close();
  }
  return dir;
}

class Harness extends EngineHarness {
  async raise(): Promise<string> {
    const out = await this.ingest(this.registry.devices.get(STREET.shops[ORIGIN]!.deviceId)!, { seq: 1, boot: 1, type: 'keypad', keys: '9#' });
    if (out.status !== 'stored' || !out.alarmId) throw new Error(`no alarm raised: ${JSON.stringify(out)}`);
    return out.alarmId;
  }

  act(console: string, user: string, action: ConsoleAction) {
    return this.writer.run((fx) => this.engine.consoleAction(fx, console, user, action), 'console-action');
  }

  audit(alarmId: string) {
    return (this.db.prepare('SELECT actor, action, rev, detail FROM audit WHERE alarm_id = ? ORDER BY id').all(alarmId) as { actor: string; action: string; rev: number; detail: string }[]).map(
      (r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }),
    );
  }

  consoleMessages(alarmId: string, console: string): ConsoleAlarm[] {
    return this.published.filter((p) => p.topic === topics.stationAlarms(console) && p.payload.alarmId === alarmId).map((p) => p.payload as unknown as ConsoleAlarm);
  }
}

t.test("a take or ack of an alarm another officer holds is LF_ERR_TAKEN naming the holder; force takes it over, audited from whom", async (t) => {
  const h = new Harness(t, await compoundStreet(t), new ManualClock());
  const officer = STREET.officer.username;
  const alarmId = await h.raise();

  // The guard at the compound's receiving point takes it first.
  const taken = await h.act(COMPOUND, GUARD, { alarmId, action: 'take' });
  t.equal(taken.takenBy, GUARD);
  t.same(h.audit(alarmId).at(-1), { actor: `user:${GUARD}`, action: 'take', rev: 2, detail: { from: null, to: GUARD } }, 'an untaken alarm: a plain take');
  for (const console of [STREET_STATION, COMPOUND]) t.equal(h.consoleMessages(alarmId, console).at(-1)?.takenBy, GUARD, `${console} sees who has it`);

  // The station's officer: take and ack are refused, with or without `force: false`.
  for (const action of [{ action: 'take' }, { action: 'ack' }, { action: 'take', force: false }, { action: 'ack', force: false }] as const) {
    const before = h.repo.get(alarmId);
    const audits = h.audit(alarmId).length;
    const published = h.published.length;
    try {
      await h.act(STREET_STATION, officer, { alarmId, ...action });
      t.fail(`${JSON.stringify(action)} was not refused`);
    } catch (err) {
      t.ok(err instanceof LianfangError, 'a LianfangError');
      t.equal((err as LianfangError).code, 'LF_ERR_TAKEN', `${JSON.stringify(action)}: LF_ERR_TAKEN`);
      t.match((err as LianfangError).message, `alarm ${alarmId} is held by ${GUARD}`, 'the refusal names the holder');
    }
    t.same(h.repo.get(alarmId), before, 'the alarm is unchanged');
    t.equal(h.audit(alarmId).length, audits, 'no audit row');
    t.equal(h.published.length, published, 'nothing published');
  }

  // The holder may take or ack their own alarm again.
  const acked = await h.act(COMPOUND, GUARD, { alarmId, action: 'ack' });
  t.match(acked, { state: 'acknowledged', takenBy: GUARD, rev: 3 });
  t.same(h.audit(alarmId).at(-1)!.detail, {}, "the holder's own ack takes nothing from anyone");

  // Forced: taken over, audited as taken from the guard; both consoles see the new holder.
  const forced = await h.act(STREET_STATION, officer, { alarmId, action: 'take', force: true });
  t.match(forced, { state: 'acknowledged', takenBy: officer, rev: 4 });
  t.same(h.audit(alarmId).at(-1), { actor: `user:${officer}`, action: 'take', rev: 4, detail: { from: GUARD, to: officer, force: true } });
  for (const console of [STREET_STATION, COMPOUND]) t.match(h.consoleMessages(alarmId, console).at(-1), { rev: 4, takenBy: officer }, `${console} sees the new holder`);

  // Now the guard is refused in turn; dispatch and close are not take-overs and stay open to either.
  try {
    await h.act(COMPOUND, GUARD, { alarmId, action: 'take' });
    t.fail('not refused');
  } catch (err) {
    t.match(err, { code: 'LF_ERR_TAKEN', message: new RegExp(`held by ${officer}`) });
  }
  const dispatched = await h.act(COMPOUND, GUARD, { alarmId, action: 'dispatch', patrol: 'P-2' });
  t.match(dispatched, { state: 'dispatched', takenBy: officer }, 'a dispatch by another officer leaves the holder');
});

t.test('a forced ack of a raised alarm held by another officer acknowledges and takes it, audited from whom', async (t) => {
  const h = new Harness(t, await compoundStreet(t), new ManualClock());
  const officer = STREET.officer.username;
  const alarmId = await h.raise();
  await h.act(STREET_STATION, officer, { alarmId, action: 'take' });
  const acked = await h.act(COMPOUND, GUARD, { alarmId, action: 'ack', force: true });
  t.match(acked, { state: 'acknowledged', takenBy: GUARD, overdue: false });
  t.same(h.audit(alarmId).at(-1), { actor: `user:${GUARD}`, action: 'ack', rev: 3, detail: { from: officer, to: GUARD, force: true } });
});

t.test('over MQTT: the refused take is answered on the station\'s errors topic with LF_ERR_TAKEN, naming the holder and the requestId', async (t) => {
  const data = await compoundStreet(t);
  const gw = await startGateway(t, data);
  const url = `mqtt://127.0.0.1:${gw.ports().mqtt}`;
  const s = STREET.shops[ORIGIN]!;
  const kp = await new SimKeypad(s.deviceId, s.shopId, s.creds).connect(url);
  const station = await new SimConsole(STREET_STATION, STREET.officer).connect(url);
  const guard = await new SimConsole(COMPOUND, { username: GUARD, password: 'guard-password-1' }).connect(url);
  t.teardown(async () => {
    await kp.close();
    await station.close();
    await guard.close();
  });

  await kp.press('9#');
  const raised = await station.waitFor((a) => a.shopId === s.shopId && a.state === 'raised', 20_000);
  await guard.waitFor((a) => a.alarmId === raised.alarmId, 20_000);
  await guard.act({ alarmId: raised.alarmId, action: 'take', requestId: 'g-1' });
  await station.waitFor((a) => a.alarmId === raised.alarmId && a.takenBy === GUARD, 20_000);

  await station.act({ alarmId: raised.alarmId, action: 'take', requestId: 's-1' });
  const answer = await station.waitForError((e) => e.requestId === 's-1', 20_000);
  t.match(answer, { code: 'LF_ERR_TAKEN', alarmId: raised.alarmId, action: 'take', requestId: 's-1' });
  t.match(answer.message, `is held by ${GUARD}`, 'the answer names the holder');

  await station.act({ alarmId: raised.alarmId, action: 'ack', requestId: 's-2', force: true });
  const after = await guard.waitFor((a) => a.alarmId === raised.alarmId && a.takenBy === STREET.officer.username, 20_000);
  t.equal(after.state, 'acknowledged', 'forced: acknowledged and taken over, and the guard sees who has it now');
  t.notOk(station.errors.some((e) => e.requestId === 's-2'), 'the forced ack was not refused');
});
