/**
 * Arming and the entry delay (issue 9 "Door contacts"; gateway/alarm/arming.ts, the engine's door
 * and PIN handling), in the engine in-process on a ManualClock with a real SQLite database: an
 * armed door with a disarm inside the entry delay raises nothing; without one, an intrusion alarm
 * reaches the console and the 10 nearest neighbours; across a restart in the middle of the delay
 * the deadline survives (it still raises, and a disarm after the restart still stops it). A
 * schedule 23:00-06:00 arms and disarms at station time; a manual change holds until its next
 * change. `*` PIN `*1#` arms; `*` PIN `#` disarms (and cancels the open alarm); the duress PIN
 * disarms as the PIN does at the keypad while the console gets a duress alarm and no neighbour
 * anything; a lock-out blocks disarming. Test mode applies to intrusion as to a 9#.
 */
import t from 'tap';
import { STREET_STATION } from '../../../simulators/street.js';
import { ManualClock } from '../../../gateway/clock.js';
import { EngineHarness, streetTemplate, type Teardown } from '../../helpers/engine.js';
import { rankNeighbours } from '../../../gateway/geo.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import type { ConsoleAlarm } from '../../../firmware-contracts/mqtt/payloads.js';
import { setShopPins } from '../../../gateway/alarm/pins.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { nextChange, parseSchedule, scheduledArmed } from '../../../gateway/alarm/arming.js';
import { startTestMode } from '../../../gateway/alarm/test-mode.js';
import { LianfangError } from '../../../gateway/errors.js';

const { street: STREET, copy: streetCopy } = await streetTemplate(t, 30);
const MIDDLE = 15;
const SHOP = STREET.shops[MIDDLE].shopId;
const PIN = '2468';
const DURESS = '1357';
const ENTRY_DELAY_MS = 30_000;

class Harness extends EngineHarness {
  private seq: number;

  constructor(t: Teardown, clock: ManualClock, dataDir = streetCopy(t), seq = 0) {
    super(t, dataDir, clock);
    this.seq = seq;
  }

  get nextSeq(): number {
    return this.seq;
  }

  private device() {
    return this.registry.devices.get(STREET.shops[MIDDLE].deviceId)!;
  }

  /** The shop's keypad sends `keys` (a second later than anything before). */
  async press(keys: string): Promise<void> {
    await this.advance(1000);
    await this.ingest(this.device(), { seq: ++this.seq, boot: 1, type: 'keypad', keys }, 'mqtt');
  }

  async door(open: boolean): Promise<void> {
    await this.ingest(this.device(), { seq: ++this.seq, boot: 1, type: 'door', open }, 'mqtt');
  }

  pins(): void {
    setShopPins(this.db, loadOrCreateGatewayKey(this.dataDir), SHOP, { pin: PIN, duressPin: DURESS }, 'test', '2026-11-23T00:00:00.000Z');
  }

  async arm(armed: boolean, actor = 'cli:test'): Promise<void> {
    await this.writer.run((fx) => this.engine.setArmed(fx, SHOP, armed, actor));
  }

  /** Move the clock to `ms` in steps of at most a minute, letting each due deadline commit. */
  async advanceTo(ms: number): Promise<void> {
    while (this.clock.now() < ms) await this.advance(Math.min(60_000, ms - this.clock.now()));
  }

  alarms(): { id: string; kind: string; duress: number; test: number; state: string }[] {
    return this.db.prepare('SELECT id, kind, duress, test, state FROM alarms WHERE shop_id = ? ORDER BY raised_at, id').all(SHOP) as never;
  }

  console(alarmId: string): ConsoleAlarm[] {
    return this.published.filter((p) => p.topic === topics.stationAlarms(STREET_STATION) && p.payload.alarmId === alarmId).map((p) => p.payload as unknown as ConsoleAlarm);
  }

  alertedShops(alarmId: string): string[] {
    return this.published.filter((p) => p.topic.endsWith('/alerts') && p.payload.alarmId === alarmId).map((p) => p.topic.split('/')[3]!);
  }

  shows(): string[] {
    return this.commands.feedbacks.map((f) => f.what);
  }

  audit(action: string): { actor: string; detail: string }[] {
    return this.db.prepare('SELECT actor, detail FROM audit WHERE action = ? ORDER BY id').all(action) as never;
  }
}

function nearest(h: EngineHarness, n = 10): string[] {
  const origin = h.registry.shops.get(SHOP)!;
  return rankNeighbours(origin, h.registry.shops.values(), (id) => h.registry.shops.get(id))
    .slice(0, n)
    .map((x) => x.id)
    .sort();
}

t.test('schedules: parsing, a schedule crossing midnight, the next change, in the station time zone', async (t) => {
  t.same(parseSchedule('23:00-06:00'), { armAt: '23:00', disarmAt: '06:00' });
  t.equal(parseSchedule('none'), null);
  for (const bad of ['23:00', '24:00-06:00', '23:00-23:00', '2300-0600', '23:00-06:00-07:00', '']) {
    t.throws(() => parseSchedule(bad), LianfangError, `${JSON.stringify(bad)} refused`);
  }
  const s = parseSchedule('23:00-06:00')!;
  const tz = 'Asia/Shanghai'; // UTC+8
  t.equal(scheduledArmed(s, tz, Date.parse('2026-11-23T14:59:59.999Z')), false, '22:59:59 local: disarmed');
  t.equal(scheduledArmed(s, tz, Date.parse('2026-11-23T15:00:00.000Z')), true, '23:00 local: armed');
  t.equal(scheduledArmed(s, tz, Date.parse('2026-11-23T21:59:00.000Z')), true, '05:59 local, the next day: armed');
  t.equal(scheduledArmed(s, tz, Date.parse('2026-11-23T22:00:00.000Z')), false, '06:00 local: disarmed');
  t.same(nextChange(s, tz, Date.parse('2026-11-23T01:00:00.000Z')), { atMs: Date.parse('2026-11-23T15:00:00.000Z'), armed: true }, 'from 09:00 local: arms at 23:00');
  t.same(nextChange(s, tz, Date.parse('2026-11-23T15:00:00.000Z')), { atMs: Date.parse('2026-11-23T22:00:00.000Z'), armed: false }, 'from 23:00: disarms at 06:00 the next day');
  t.same(nextChange(s, 'Europe/Berlin', Date.parse('2026-11-23T01:00:00.000Z')), { atMs: Date.parse('2026-11-23T05:00:00.000Z'), armed: false }, 'another zone: 02:00 in Berlin (UTC+1 in November) disarms at 06:00 there');
  t.same(nextChange(s, 'Europe/Berlin', Date.parse('2026-03-28T23:00:00.000Z')), { atMs: Date.parse('2026-03-29T04:00:00.000Z'), armed: false }, 'across the night the clocks go forward (06:00 CEST is 04:00 UTC)');
  t.equal(scheduledArmed(parseSchedule('08:00-20:00')!, tz, Date.parse('2026-11-23T01:00:00.000Z')), true, 'a daytime schedule: 09:00 local is armed');
});

t.test('an armed door with a disarm inside the entry delay raises nothing', async (t) => {
  const h = new Harness(t, new ManualClock());
  h.pins();
  await h.arm(true);
  await h.door(true);
  t.ok(h.engine.arming(SHOP).entry, 'an entry delay runs');
  await h.advance(ENTRY_DELAY_MS - 5000);
  await h.press(`*${PIN}#`);
  t.same(h.shows(), ['disarmed'], 'the keypad shows 已撤防');
  t.equal(h.engine.arming(SHOP).armed, false);
  t.equal(h.engine.arming(SHOP).entry, null, 'the entry delay ended');
  await h.advance(10 * ENTRY_DELAY_MS);
  t.same(h.alarms(), [], 'no alarm');
  t.same(h.published.filter((p) => p.topic.includes('/alarms') || p.topic.endsWith('/alerts')), [], 'nothing to the console or a neighbour');
  t.match(h.audit('disarmed'), [{ actor: `device:${STREET.shops[MIDDLE].deviceId}`, detail: /"entryDelayEnded":true/ }], 'the disarm is audited with the keypad as who');
  await h.door(false);
});

t.test('an armed door without a disarm: intrusion to the console and the 10 nearest neighbours; a door opening meanwhile joins', async (t) => {
  const h = new Harness(t, new ManualClock());
  await h.arm(true);
  await h.door(true);
  await h.advance(10_000);
  await h.door(false);
  await h.door(true);
  t.match(h.audit('entry-delay-joined'), [{}], 'the second opening joined the delay');
  await h.advance(ENTRY_DELAY_MS - 10_000 - 1);
  t.same(h.alarms(), [], 'nothing before the delay ends');
  await h.advance(1);
  const [alarm] = h.alarms();
  t.match(alarm, { kind: 'intrusion', duress: 0, test: 0, state: 'raised' }, 'an intrusion alarm');
  t.match(h.console(alarm!.id), [{ kind: 'intrusion', priority: 2, state: 'raised' }], 'to the console, at panic priority');
  t.same(h.alertedShops(alarm!.id).sort(), nearest(h), 'to the 10 nearest neighbours');
  await h.door(true);
  t.equal(h.alarms().length, 1, 'a door opening while the intrusion is open joins it');
  t.equal(h.engine.arming(SHOP).entry, null, 'and starts no new delay');
});

t.test('a restart in the middle of the entry delay: the deadline survives; it raises, or a disarm after the restart stops it', async (t) => {
  for (const disarmAfter of [false, true]) {
    const clock = new ManualClock();
    const h1 = new Harness(t, clock);
    h1.pins();
    await h1.arm(true);
    await h1.door(true);
    await h1.advance(ENTRY_DELAY_MS / 2);
    h1.stop();
    clock.advance(5000); // the gateway is down for a while
    const h2 = new Harness(t, clock, h1.dataDir, h1.nextSeq);
    t.ok(h2.engine.arming(SHOP).entry, 'the entry delay is still running after the restart');
    if (disarmAfter) await h2.press(`*${PIN}#`);
    await h2.advance(ENTRY_DELAY_MS);
    if (disarmAfter) t.same(h2.alarms(), [], 'disarmed after the restart: nothing raised');
    else t.match(h2.alarms(), [{ kind: 'intrusion', state: 'raised' }], 'not disarmed: the intrusion is raised after the restart');
  }
});

t.test('a schedule 23:00-06:00 arms and disarms at station time; a manual change holds until its next change', async (t) => {
  // 22:00 in Shanghai.
  const clock = new ManualClock(Date.parse('2026-11-23T14:00:00.000Z'));
  const h = new Harness(t, clock);
  const armed = () => h.engine.arming(SHOP).armed;
  await h.writer.run((fx) => h.engine.setSchedule(fx, SHOP, parseSchedule('23:00-06:00'), 'cli:test'));
  t.equal(armed(), false, '22:00: the schedule says disarmed');
  await h.advanceTo(Date.parse('2026-11-23T14:59:59.000Z'));
  t.equal(armed(), false, '22:59:59 still disarmed');
  await h.advanceTo(Date.parse('2026-11-23T15:00:00.000Z'));
  t.equal(armed(), true, '23:00: armed by the schedule');
  t.match(h.audit('armed'), [{ actor: 'schedule' }], 'audited: the schedule armed it');

  await h.advanceTo(Date.parse('2026-11-23T15:30:00.000Z'));
  await h.arm(false, 'cli:night-guard');
  await h.advanceTo(Date.parse('2026-11-23T18:00:00.000Z')); // 02:00
  t.equal(armed(), false, 'a manual disarm at 23:30 holds through the night');
  await h.door(true);
  t.equal(h.engine.arming(SHOP).entry, null, 'a door opening while disarmed starts no entry delay');
  await h.door(false);
  await h.advanceTo(Date.parse('2026-11-23T22:00:00.000Z'));
  t.equal(armed(), false, '06:00: disarmed (the schedule rules again)');
  await h.arm(true, 'cli:owner');
  await h.advanceTo(Date.parse('2026-11-24T14:59:00.000Z'));
  t.equal(armed(), true, 'a manual arm at 06:00 holds until 23:00');
  await h.advanceTo(Date.parse('2026-11-24T22:00:00.000Z'));
  t.equal(armed(), false, 'and the 06:00 after it disarms');
  await h.advanceTo(Date.parse('2026-11-25T15:00:00.000Z'));
  t.equal(armed(), true, 'the next 23:00 arms again');

  await h.writer.run((fx) => h.engine.setSchedule(fx, SHOP, null, 'cli:test'));
  await h.advanceTo(Date.parse('2026-11-25T22:30:00.000Z'));
  t.equal(armed(), true, 'with the schedule removed nothing changes at 06:00');
  t.equal(h.engine.arming(SHOP).schedule, null);
});

t.test('a schedule set before a restart: its change is re-armed from the table; one missed while down is applied at the start', async (t) => {
  const clock = new ManualClock(Date.parse('2026-11-23T14:00:00.000Z')); // 22:00 in Shanghai
  const h1 = new Harness(t, clock);
  await h1.writer.run((fx) => h1.engine.setSchedule(fx, SHOP, parseSchedule('23:00-06:00'), 'cli:test'));
  h1.stop();
  clock.advance(30 * 60_000);
  const h2 = new Harness(t, clock, h1.dataDir);
  await h2.advanceTo(Date.parse('2026-11-23T15:00:00.000Z'));
  t.equal(h2.engine.arming(SHOP).armed, true, '23:00: armed by the schedule after a restart');
  h2.stop();
  // Down from 05:00 to 07:00: the 06:00 change is applied when the gateway starts.
  clock.advance(Date.parse('2026-11-23T23:00:00.000Z') - clock.now());
  const h3 = new Harness(t, clock, h1.dataDir);
  await h3.advance(0);
  t.equal(h3.engine.arming(SHOP).armed, false, 'the missed 06:00 disarms at the start');
  t.equal(h3.db.prepare("SELECT count(*) AS n FROM deadlines WHERE kind = 'schedule' AND done_at IS NULL").pluck().get(), 1, 'and the next change is written');
});

t.test("the schedule's disarm does not end a running entry delay: a door opened at 05:59:50 still raises", async (t) => {
  const clock = new ManualClock(Date.parse('2026-11-23T14:00:00.000Z'));
  const h = new Harness(t, clock);
  await h.writer.run((fx) => h.engine.setSchedule(fx, SHOP, parseSchedule('23:00-06:00'), 'cli:test'));
  await h.advanceTo(Date.parse('2026-11-23T21:59:50.000Z'));
  t.equal(h.engine.arming(SHOP).armed, true, '05:59:50 armed');
  await h.door(true);
  await h.advanceTo(Date.parse('2026-11-23T22:00:00.000Z'));
  t.equal(h.engine.arming(SHOP).armed, false, '06:00 disarmed by the schedule');
  t.ok(h.engine.arming(SHOP).entry, 'the entry delay still runs');
  await h.advance(ENTRY_DELAY_MS);
  t.match(h.alarms(), [{ kind: 'intrusion', state: 'raised' }], 'and ends in an intrusion');

});

t.test('a shopkeeper who opens the door just before the scheduled disarm disarms with the PIN just after', async (t) => {
  const h = new Harness(t, new ManualClock(Date.parse('2026-11-23T21:00:00.000Z'))); // 05:00 in Shanghai
  h.pins();
  await h.writer.run((fx) => h.engine.setSchedule(fx, SHOP, parseSchedule('23:00-06:00'), 'cli:test'));
  await h.advanceTo(Date.parse('2026-11-23T21:59:55.000Z'));
  await h.door(true);
  await h.advanceTo(Date.parse('2026-11-23T22:00:05.000Z'));
  t.equal(h.engine.arming(SHOP).armed, false, 'the schedule disarmed at 06:00');
  await h.press(`*${PIN}#`);
  t.same(h.shows(), ['disarmed'], 'the PIN disarms what the schedule left running');
  t.equal(h.engine.arming(SHOP).entry, null, 'the entry delay ended');
  await h.advance(ENTRY_DELAY_MS);
  t.same(h.alarms(), [], 'no intrusion');
});

t.test('the keypad: * PIN *1# arms, * PIN # disarms and cancels the open alarm', async (t) => {
  const h = new Harness(t, new ManualClock());
  h.pins();
  await h.press(`*${PIN}*1#`);
  t.equal(h.engine.arming(SHOP).armed, true, 'armed');
  await h.press('9#');
  const [panic] = h.alarms();
  await h.press(`*${PIN}#`);
  t.equal(h.engine.arming(SHOP).armed, false, 'disarmed');
  t.match(h.alarms(), [{ id: panic!.id, state: 'cancelled' }], 'its open alarm cancelled');
  t.same(h.shows(), ['armed', 'raised', 'disarmed']);
  await h.press('*9999*1#');
  t.equal(h.engine.arming(SHOP).armed, false, 'a wrong PIN does not arm');
  await h.press(`*${PIN}*5#`);
  t.equal(h.engine.arming(SHOP).armed, false, 'an unknown command after the PIN does nothing');
  t.same(h.shows(), ['armed', 'raised', 'disarmed', 'wrong-pin'], 'the unknown command is answered with nothing');
  const keys = (h.db.prepare("SELECT payload FROM events WHERE type = 'keypad' ORDER BY id").all() as { payload: string }[]).map((e) => JSON.parse(e.payload).keys as string);
  t.ok(keys.includes('*xxxx*x#'), 'the arming entry is stored masked');
  t.notOk(keys.some((k) => k.includes(PIN)), 'no PIN in clear');
});

t.test('a duress disarm: the keypad sees a disarm; the console gets a duress alarm; no neighbour', async (t) => {
  const h = new Harness(t, new ManualClock());
  h.pins();
  await h.arm(true);
  await h.door(true);
  await h.press(`*${DURESS}#`);
  t.same(h.shows(), ['disarmed'], 'the keypad shows what a disarm shows');
  t.equal(h.engine.arming(SHOP).armed, false, 'disarmed');
  await h.advance(2 * ENTRY_DELAY_MS);
  const alarms = h.alarms();
  t.match(alarms, [{ kind: 'panic', duress: 1, state: 'raised' }], 'one alarm: duress, no intrusion');
  t.match(h.console(alarms[0]!.id), [{ duress: true, priority: 1 }], 'the console gets it');
  t.same(h.alertedShops(alarms[0]!.id), [], 'no neighbour');

  // The normal PIN on an armed shop shows the very same.
  const n = new Harness(t, new ManualClock());
  n.pins();
  await n.arm(true);
  await n.door(true);
  await n.press(`*${PIN}#`);
  t.same(n.shows(), h.shows(), 'a real disarm looks the same at the keypad');
  t.same(n.alarms(), []);
});

t.test('a lock-out blocks disarming: the entry delay runs out into an intrusion', async (t) => {
  const h = new Harness(t, new ManualClock());
  h.pins();
  await h.arm(true);
  for (let i = 0; i < 5; i++) await h.press('*0000#');
  await h.door(true);
  await h.press(`*${PIN}#`);
  t.equal(h.shows().at(-1), 'locked-out', 'the keypad says locked');
  t.equal(h.engine.arming(SHOP).armed, true, 'still armed');
  await h.advance(ENTRY_DELAY_MS);
  t.match(h.alarms(), [{ kind: 'intrusion', state: 'raised' }], 'intrusion');
});

t.test('test mode applies to an intrusion as to a 9#: audit trail only', async (t) => {
  const h = new Harness(t, new ManualClock());
  h.db.transaction(() => startTestMode(h.db, 'shop', SHOP, 3600_000, 'test', h.clock.now()))();
  await h.arm(true);
  await h.door(true);
  await h.advance(ENTRY_DELAY_MS);
  const [alarm] = h.alarms();
  t.match(alarm, { kind: 'intrusion', test: 1, state: 'closed' }, 'a test alarm, closed at once');
  t.same(h.console(alarm!.id), [], 'no console');
  t.same(h.alertedShops(alarm!.id), [], 'no neighbour');
});
