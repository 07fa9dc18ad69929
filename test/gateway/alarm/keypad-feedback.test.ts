/**
 * What the engine asks the keypads to show (EngineContext.commands, gateway/delivery/device-
 * commands.ts; docs/concepts.md "Keypad codes", issue 8 "What the pressing keypad shows"), in-process with a
 * sink that records and the ManualClock: the pressing keypad's answer to each entry. (A neighbour's
 * MQTT keypads get each shop alert from the outbox's publisher: test/gateway/delivery/device-commands*.)
 */
import t, { type Test } from 'tap';
import { ManualClock, iso } from '../../../gateway/clock.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { setShopPins, WRONG_PINS_BEFORE_LOCKOUT } from '../../../gateway/alarm/pins.js';
import { EngineHarness, streetTemplate } from '../../helpers/engine.js';
import type { KeypadFeedback } from '../../../gateway/delivery/device-commands.js';

const { street: STREET, copy: streetCopy } = await streetTemplate(t, 30);
const MIDDLE = 15;
const PIN = '24680864';
const DURESS = '13577531';
const T0 = Date.parse('2026-12-01T08:00:00.000Z');

class Harness extends EngineHarness {
  private seq = 0;

  constructor(t: Test, pins = true) {
    super(t, streetCopy(t), new ManualClock(T0));
    if (pins) setShopPins(this.db, loadOrCreateGatewayKey(this.dataDir), STREET.shops[MIDDLE].shopId, { pin: PIN, duressPin: DURESS }, 'user:installer', iso(T0));
  }

  device(i = MIDDLE) {
    return this.registry.devices.get(STREET.shops[i].deviceId)!;
  }

  /** Shop `i`'s keypad sends `keys` a second after the last press; returns the alarm it touched. */
  async press(keys: string, i = MIDDLE): Promise<string | undefined> {
    this.clock.advance(1000);
    const out = await this.ingest(this.device(i), { seq: ++this.seq, boot: 1, type: 'keypad', keys });
    return out.status === 'stored' ? out.alarmId : undefined;
  }

  /** What the keypad of shop `i` was told, in order. */
  shown(i = MIDDLE): KeypadFeedback[] {
    return this.commands.feedbacks.filter((f) => f.deviceId === this.device(i).id).map((f) => f.what);
  }

  /** The answers from the `n`-th on (to look only at what came after a setup). */
  shownSince(n: number): KeypadFeedback[] {
    return this.commands.feedbacks.slice(n).map((f) => f.what);
  }
}

t.test('9# and 0# light the LED of the keypad that typed them, raised or joined, in test mode too', async (t) => {
  const h = new Harness(t);
  const first = await h.press('9#');
  t.same(h.shown(), ['raised'], 'a 9# that raised');
  t.equal(await h.press('99#'), first);
  t.same(h.shown(), ['raised', 'raised'], 'a hurried 99# that joined');
  await h.press('0#');
  t.same(h.shown(), ['raised', 'raised', 'raised'], 'a 0# (joins the panic)');
  t.ok(h.commands.feedbacks.every((f) => f.deviceId === h.device().id), 'only the pressing keypad is answered');
  t.same(h.commands.feedbacks.map((f) => f.at), [T0 + 1000, T0 + 2000, T0 + 3000], 'at the clock of each press');

  const test = new Harness(t);
  await test.writer.run(() => test.engine.startTest('shop', STREET.shops[MIDDLE].shopId, 30 * 60_000, 'cli:installer'), 'test-mode');
  await test.press('9#');
  await test.press('0#');
  t.same(test.shown(), ['raised', 'raised'], 'in test mode the keypad shows what it shows for a real alarm');
});

t.test('replies, other entries, half-typed keys and panic inputs get no answer', async (t) => {
  const h = new Harness(t);
  const alarmId = await h.press('9#', 3);
  const before = h.commands.feedbacks.length;
  t.ok(alarmId);
  await h.press('1#');
  await h.press('2#');
  await h.press('5#');
  await h.press('12');
  t.same(h.shownSince(before), [], '1#, 2#, 5# and keys without a # say nothing');
  await h.ingest(h.device(), { seq: 100, boot: 1, type: 'panic' });
  t.same(h.shownSince(before), [], 'a panic input is not a keypad entry');
});

t.test('the cancel PIN: cancelled when it cancelled, no-alarm when there was nothing to cancel', async (t) => {
  const h = new Harness(t);
  t.equal(await h.press(`*${PIN}#`), undefined);
  t.same(h.shown(), ['no-alarm']);
  const alarmId = await h.press('9#');
  await h.press(`*${PIN}#`);
  t.same(h.shown(), ['no-alarm', 'raised', 'cancelled']);
  t.equal(h.repo.get(alarmId!)!.state, 'cancelled');
  await h.press(`*${PIN}#`);
  t.same(h.shown().at(-1), 'no-alarm', 'a cancelled alarm is not cancelled twice');
});

/** Two streets, the same presses, one typing the cancel PIN where the other types the duress PIN. */
/** The shop alerts the outbox published, in order. */
function shopAlerts(h: Harness) {
  return h.messages.flatMap((m) => (m.kind === 'shop' ? [m] : []));
}

async function cancelAndDuress(t: Test, before: string[], locked = false) {
  const runs = { cancel: new Harness(t), duress: new Harness(t) };
  for (const [mode, h] of Object.entries(runs)) {
    if (locked) for (let i = 0; i < WRONG_PINS_BEFORE_LOCKOUT; i++) await h.press('*0000#');
    for (const keys of before) await h.press(keys);
    await h.press(`*${mode === 'cancel' ? PIN : DURESS}#`);
  }
  return runs;
}

t.test('duress with a joinable alarm: exactly the answer a cancel gives, and the same shop alerts', async (t) => {
  const { cancel, duress } = await cancelAndDuress(t, ['9#']);
  t.same(duress.commands.feedbacks, cancel.commands.feedbacks, 'the same answers at the same times');
  t.same(duress.shown(), ['raised', 'cancelled']);
  const comparable = (h: Harness) => shopAlerts(h).map(({ recipientId, body: { alarmId: _a, raisedAt: _r, ...rest } }) => ({ recipientId, ...rest }));
  t.same(comparable(duress), comparable(cancel), 'the neighbours get the same alerts, field by field');
  t.equal(shopAlerts(duress).filter((m) => m.body.state === 'ended').length, 10);
});

t.test('duress with nothing joinable: what a cancel with no alarm gives', async (t) => {
  const none = await cancelAndDuress(t, []);
  t.same(none.duress.shown(), ['no-alarm'], 'no open alarm: the console-only duress alarm is raised, the keypad shows no-alarm');
  t.same(none.duress.commands.feedbacks, none.cancel.commands.feedbacks);
  t.same(shopAlerts(none.duress), [], 'no neighbour is told anything');

  // The duress alarm already open (console only): the second duress PIN, like a second cancel.
  const again = await cancelAndDuress(t, [`*${DURESS}#`]);
  t.same(again.duress.shown(), ['no-alarm', 'no-alarm']);
  t.same(again.cancel.shown(), ['no-alarm', 'no-alarm'], 'the first entry of the cancel street was the duress PIN too');

  // After a cancel the cancelled alarm is over for the shop: a duress PIN then has nothing to cancel.
  const afterCancel = new Harness(t);
  await afterCancel.press('9#');
  await afterCancel.press(`*${PIN}#`);
  await afterCancel.press(`*${DURESS}#`);
  t.same(afterCancel.shown(), ['raised', 'cancelled', 'no-alarm']);
});

t.test('wrong PINs: wrong-pin, the fifth locked-out; then every PIN, duress included, shows locked-out', async (t) => {
  const h = new Harness(t);
  await h.press('9#');
  for (let i = 0; i < WRONG_PINS_BEFORE_LOCKOUT; i++) await h.press('*0000#');
  t.same(h.shown(), ['raised', 'wrong-pin', 'wrong-pin', 'wrong-pin', 'wrong-pin', 'locked-out'], 'the fifth wrong PIN starts the lock-out');
  const n = h.commands.feedbacks.length;
  await h.press(`*${PIN}#`);
  await h.press(`*${DURESS}#`);
  await h.press('*1111#');
  await h.press('*12#');
  t.same(h.shownSince(n), ['locked-out', 'locked-out', 'locked-out', 'locked-out'], 'cancel, duress, wrong and malformed PINs alike');
  t.equal(shopAlerts(h).filter((m) => m.body.state === 'ended').length, 0, 'the duress PIN changed nothing at any neighbour');

  const locked = await cancelAndDuress(t, ['9#'], true);
  t.same(locked.duress.commands.feedbacks, locked.cancel.commands.feedbacks, 'during a lock-out duress and cancel show the same');

  h.clock.advance(h.config.keypad.pinLockoutMs);
  await h.press('*12#');
  t.same(h.shown().at(-1), 'wrong-pin', 'after the lock-out a malformed entry is a wrong PIN again');
  await h.press(`*${PIN}#`);
  t.same(h.shown().at(-1), 'cancelled', 'and the PIN cancels');
});

t.test('a PIN entry when the shop has no PIN set: wrong-pin', async (t) => {
  const h = new Harness(t, false);
  await h.press('9#');
  await h.press(`*${PIN}#`);
  t.same(h.shown(), ['raised', 'wrong-pin']);
});
