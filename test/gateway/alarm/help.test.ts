/**
 * `0#`, the request for help that is not a crime (docs/concepts.md "Keypad codes", "Kinds, priority"), in the
 * engine in-process: a real SQLite database, a ManualClock, the group-commit writer and an outbox
 * whose publisher records. A help alarm reaches the 10 nearest neighbours and the station as kind
 * `help` at the lowest priority (3; a panic is 2); a 0# while it is open joins it; a 9# while it is
 * open raises its own panic alarm (a crime is never hidden at help priority), and a 0# while a panic
 * is open joins the panic. The assembler classifies `0#` as help and nothing else.
 */
import t from 'tap';
import { STREET_STATION } from '../../../simulators/street.js';
import { ManualClock, iso } from '../../../gateway/clock.js';
import { classifyEntry } from '../../../gateway/alarm/keypad-assembler.js';
import { EngineHarness, streetTemplate, type Teardown } from '../../helpers/engine.js';
import { rankNeighbours } from '../../../gateway/geo.js';
import { topics } from '../../../firmware-contracts/mqtt/topics.js';
import type { ConsoleAlarm, ShopAlert } from '../../../firmware-contracts/mqtt/payloads.js';

const { street: STREET, copy: streetCopy } = await streetTemplate(t, 30);
const MIDDLE = 15;

class Harness extends EngineHarness {
  private seq = 0;

  constructor(t: Teardown, clock: ManualClock) {
    super(t, streetCopy(t), clock);
  }

  /** The keypad of shop `i` sends `keys`; returns the alarm the event raised or joined. */
  async press(i: number, keys: string): Promise<string | undefined> {
    this.clock.advance(1000); // a person's next key press comes later
    const device = this.registry.devices.get(STREET.shops[i].deviceId)!;
    const out = await this.ingest(device, { seq: ++this.seq, boot: 1, type: 'keypad', keys }, 'mqtt');
    return out.status === 'stored' ? out.alarmId : undefined;
  }

  console(alarmId: string): ConsoleAlarm[] {
    return this.published.filter((p) => p.topic === topics.stationAlarms(STREET_STATION) && p.payload.alarmId === alarmId).map((p) => p.payload as unknown as ConsoleAlarm);
  }

  alerts(alarmId: string): (ShopAlert & { shopId: string })[] {
    return this.published
      .filter((p) => p.topic.endsWith('/alerts') && p.payload.alarmId === alarmId)
      .map((p) => ({ ...(p.payload as unknown as ShopAlert), shopId: p.topic.split('/')[3] }));
  }
}

t.test('the assembler: 0# is help; 00#, 10#, *0# and 0 alone are not', async (t) => {
  t.same(classifyEntry('0#', false), { kind: 'help' });
  for (const e of ['00#', '10#', '#']) t.notSame(classifyEntry(e, false), { kind: 'help' }, `${e} is not help`);
  t.equal(classifyEntry('*0#', true).kind, 'pin', '*0# is a PIN entry');
  t.equal(classifyEntry('09#', false).kind, 'panic', '09# ends in 9#: panic');
});

t.test('0# raises a help alarm: the 10 nearest neighbours and the station, kind help, lowest priority', async (t) => {
  const clock = new ManualClock();
  const h = new Harness(t, clock);
  const origin = STREET.shops[MIDDLE];
  const alarmId = await h.press(MIDDLE, '0#');
  t.ok(alarmId, 'an alarm was raised');
  const row = h.db.prepare('SELECT kind, state, duress, test FROM alarms WHERE id = ?').get(alarmId) as Record<string, unknown>;
  t.same(row, { kind: 'help', state: 'raised', duress: 0, test: 0 }, 'stored as kind help');

  const shops = h.registry.shops;
  const expected = rankNeighbours(shops.get(origin.shopId)!, shops.values(), (id) => shops.get(id)).slice(0, 10).map((n) => n.id);
  const alerts = h.alerts(alarmId!);
  t.same(alerts.map((a) => a.shopId).sort(), [...expected].sort(), 'the 10 nearest neighbours');
  const raisedAt = iso(clock.now());
  for (const a of alerts) t.match(a, { alarmId, state: 'raised', kind: 'help', originShopId: origin.shopId, raisedAt });
  const c = h.console(alarmId!);
  t.equal(c.length, 1, 'the station once');
  t.match(c[0], { alarmId, kind: 'help', priority: 3, duress: false, state: 'raised', shopsAlerted: 10 });

  // Another 0# while it is open joins it: nothing new goes out.
  const before = h.published.length;
  t.equal(await h.press(MIDDLE, '0#'), alarmId, 'a second 0# joins the help alarm');
  t.equal(h.published.length, before, 'and sends nothing');
  t.equal((h.db.prepare("SELECT count(*) AS n FROM audit WHERE alarm_id = ? AND action = 'joined'").get(alarmId) as { n: number }).n, 1);
});

t.test('9# while a help alarm is open raises its own panic alarm; 0# while a panic is open joins the panic', async (t) => {
  const h = new Harness(t, new ManualClock());
  const help = await h.press(MIDDLE, '0#');
  const panic = await h.press(MIDDLE, '9#');
  t.ok(panic && panic !== help, 'a new alarm, not joined to the help call');
  t.match(h.console(panic!)[0], { kind: 'panic', priority: 2 }, 'at panic priority');
  t.equal(h.alerts(panic!).length, 10, 'the neighbours are alerted of the panic too');
  t.equal(await h.press(MIDDLE, '99#'), panic, 'a further 9# joins the panic');
  t.equal(await h.press(MIDDLE, '0#'), panic, 'a 0# while the panic is open joins the panic');
  t.equal(h.console(help!).length, 1, 'the help alarm is unchanged');
  // Priority is the panic's whatever the order of arrival: a panic first, then help, joins.
  const other = await h.press(3, '9#');
  t.equal(await h.press(3, '0#'), other);
  t.match(h.console(other!)[0], { kind: 'panic', priority: 2 });
});
