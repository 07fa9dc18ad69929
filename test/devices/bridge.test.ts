/**
 * The pieces of the wired bridges that decide, without a wire: which alert a device acts on
 * (AlertBook), which keypad event is taken in order (seqOrder), and the reopen backoff.
 */
import t from 'tap';
import { AlertBook, backoffMs } from '../../devices/bridge.js';
import { seqOrder, toDeviceEvent } from '../../devices/serial-bridge.js';

const raised = (alarmId: string, rev: number) => ({ alarmId, rev, state: 'raised' as const });
const ended = (alarmId: string, rev: number) => ({ alarmId, rev, state: 'ended' as const });

t.test('an alert book shows the latest raised alert and ignores what it already has', async (t) => {
  const book = new AlertBook();
  t.equal(book.decide(raised('A', 1)), 'show');
  t.equal(book.decide(raised('A', 1)), 'skip', 'the same rev again (a re-send) while under way');
  book.settle('A', 1, true);
  t.equal(book.decide(raised('A', 1)), 'skip', 'the same rev again once confirmed');
  t.equal(book.decide(raised('A', 2)), 'show', 'a newer rev of the shown alarm is shown again');
  t.equal(book.decide(raised('A', 1)), 'skip', 'an older rev is ignored');
  t.equal(book.decide(raised('B', 1)), 'show', 'another alarm takes the display');
  t.equal(book.showing, 'B');
  t.equal(book.decide(ended('A', 3)), 'confirm', 'an alarm that is no longer shown ends without touching the device');
  t.equal(book.showing, 'B');
  t.equal(book.decide(ended('B', 2)), 'clear', 'the shown alarm ends: clear the device');
  t.equal(book.showing, null);
  t.equal(book.decide(ended('B', 2)), 'skip');
});

t.test('an alert whose delivery failed is tried again when it is re-sent', async (t) => {
  const book = new AlertBook();
  t.equal(book.decide(raised('A', 1)), 'show');
  book.settle('A', 1, false);
  t.equal(book.decide(raised('A', 1)), 'show', 'failed: the re-send is acted on');
  book.settle('A', 2, true);
  t.equal(book.decide(raised('A', 1)), 'skip', 'settling another rev changes nothing');
});

t.test('an alert book remembers a bounded number of alarms', async (t) => {
  const book = new AlertBook();
  for (let i = 0; i < 200; i++) book.decide(raised(`X${i}`, 1));
  t.equal(book.decide(raised('X199', 1)), 'skip', 'a recent alarm is remembered');
  t.equal(book.decide(raised('X0', 1)), 'show', 'a long-gone one is not (and a re-send of it is harmless)');
});

t.test('keypad events are taken in sequence: next, old (already stored), after a gap, or back (a lower boot)', async (t) => {
  const cases: [{ boot: number | null; seq: number }, { boot: number; seq: number }, string][] = [
    [{ boot: null, seq: 0 }, { boot: 5, seq: 1 }, 'next'],
    [{ boot: null, seq: 0 }, { boot: 5, seq: 2 }, 'gap'],
    [{ boot: 5, seq: 3 }, { boot: 5, seq: 4 }, 'next'],
    [{ boot: 5, seq: 3 }, { boot: 5, seq: 3 }, 'old'],
    [{ boot: 5, seq: 3 }, { boot: 5, seq: 1 }, 'old'],
    [{ boot: 5, seq: 3 }, { boot: 4, seq: 9 }, 'back'],
    [{ boot: 5, seq: 3 }, { boot: 0, seq: 1 }, 'back'],
    [{ boot: 0xffff_ffff, seq: 1 }, { boot: 2, seq: 1 }, 'back'],
    [{ boot: 5, seq: 3 }, { boot: 5, seq: 5 }, 'gap'],
    [{ boot: 5, seq: 3 }, { boot: 6, seq: 1 }, 'next'],
    [{ boot: 5, seq: 3 }, { boot: 6, seq: 2 }, 'gap'],
  ];
  for (const [last, f, want] of cases) t.equal(seqOrder(last, f), want, `after ${JSON.stringify(last)}: ${JSON.stringify(f)}`);
});

t.test('every serial event frame becomes the device event MQTT devices send', async (t) => {
  const base = { addr: 3, boot: 2, seq: 7 };
  t.same(toDeviceEvent({ ...base, type: 'KEYS', keys: '9#' }), { boot: 2, seq: 7, type: 'keypad', keys: '9#' });
  t.same(toDeviceEvent({ ...base, type: 'PANIC' }), { boot: 2, seq: 7, type: 'panic' });
  t.same(toDeviceEvent({ ...base, type: 'DOOR', open: true }), { boot: 2, seq: 7, type: 'door', open: true });
  t.same(toDeviceEvent({ ...base, type: 'TAMPER', active: false }), { boot: 2, seq: 7, type: 'tamper', active: false });
  t.same(toDeviceEvent({ ...base, type: 'BATTERY', millivolts: 3300, low: true }), { boot: 2, seq: 7, type: 'battery', low: true, millivolts: 3300 });
  t.same(toDeviceEvent({ ...base, type: 'HEARTBEAT' }), { boot: 2, seq: 7, type: 'heartbeat' });
  t.same(toDeviceEvent({ ...base, type: 'SELFTEST', result: 0 }), { boot: 2, seq: 7, type: 'selftest', result: 0 });
  t.same(toDeviceEvent({ ...base, type: 'SELFTEST', result: 4 }), { boot: 2, seq: 7, type: 'selftest', result: 4 });
});

t.test('reopen backoff doubles from its base up to its maximum', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 50].map((n) => backoffMs(n, 200, 2000)), [200, 400, 800, 1600, 2000, 2000, 2000]);
  t.equal(backoffMs(0, 200, 2000), 200, 'no failure yet: the base');
});
