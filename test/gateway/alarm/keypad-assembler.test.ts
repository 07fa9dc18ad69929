/**
 * Keypad entries (docs/concepts.md "Keypad codes"): assembled per keypad, timed by the gateway's clock;
 * a pause of entryTimeoutMs or a `#` ends an entry; what is typed after `*` is masked.
 */
import t from 'tap';
import { KeypadAssembler } from '../../../gateway/alarm/keypad-assembler.js';

const TIMEOUT = 3000;
const T0 = 1_800_000_000_000;
const KP = 'S1.keypad.aa';

t.test('single-event entries', async (t) => {
  const rows: [keys: string, entries: unknown[], masked: string][] = [
    ['9#', [{ kind: 'panic' }], '9#'],
    ['99#', [{ kind: 'panic' }], '99#'],
    ['19#', [{ kind: 'panic' }], '19#'],
    ['#', [{ kind: 'other' }], '#'],
    ['1#', [{ kind: 'reply', reply: 'coming' }], '1#'],
    ['2#', [{ kind: 'reply', reply: 'cannot' }], '2#'],
    ['3#', [{ kind: 'other' }], '3#'],
    ['11#', [{ kind: 'other' }], '11#'],
    ['91#', [{ kind: 'other' }], '91#'],
    ['9', [], '9'],
    ['*1234#', [{ kind: 'pin', pin: '1234' }], '*xxxx#'],
    ['*9#', [{ kind: 'pin', pin: '9' }], '*x#'],
    ['*99#', [{ kind: 'pin', pin: '99' }], '*xx#'],
    ['*#', [{ kind: 'pin', pin: '' }], '*#'],
    ['9#1#', [{ kind: 'panic' }, { kind: 'reply', reply: 'coming' }], '9#1#'],
    ['*5678#9#', [{ kind: 'pin', pin: '5678' }, { kind: 'panic' }], '*xxxx#9#'],
  ];
  for (const [keys, entries, masked] of rows) {
    const a = new KeypadAssembler(TIMEOUT);
    const r = a.feed(KP, keys, T0);
    t.same(r, { entries, masked, expired: 0 }, JSON.stringify(keys));
  }
});

t.test("'9' then '#' in two events within the timeout raises a panic", async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  t.same(a.feed(KP, '9', T0), { entries: [], masked: '9', expired: 0 });
  t.same(a.feed(KP, '#', T0 + TIMEOUT - 1), { entries: [{ kind: 'panic' }], masked: '#', expired: 0 });
});

t.test("'9' then '#' after the timeout: no panic, the half entry counted as expired", async (t) => {
  for (const pause of [TIMEOUT, TIMEOUT + 1, 10 * TIMEOUT]) {
    const a = new KeypadAssembler(TIMEOUT);
    a.feed(KP, '9', T0);
    t.same(a.feed(KP, '#', T0 + pause), { entries: [{ kind: 'other' }], masked: '#', expired: 1 }, `pause of ${pause} ms`);
  }
});

t.test('the pause is counted from the last key, not the first', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  a.feed(KP, '9', T0);
  a.feed(KP, '9', T0 + 2000);
  a.feed(KP, '9', T0 + 4000);
  t.same(a.feed(KP, '#', T0 + 6000).entries, [{ kind: 'panic' }], 'each key within 3 s of the previous one');
});

t.test('a PIN is masked, in one event and split over events, and never appears in masked', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  const r = a.feed(KP, '*1234#', T0);
  t.same(r.entries, [{ kind: 'pin', pin: '1234' }]);
  t.equal(r.masked, '*xxxx#');
  t.notMatch(r.masked, /[0-9]/, 'no digit of the PIN in masked');

  const b = new KeypadAssembler(TIMEOUT);
  const first = b.feed(KP, '*12', T0);
  const second = b.feed(KP, '34#', T0 + 1000);
  t.same(first, { entries: [], masked: '*xx', expired: 0 }, 'first half masked');
  t.same(second, { entries: [{ kind: 'pin', pin: '1234' }], masked: 'xx#', expired: 0 }, 'second half masked, PIN assembled');
  t.notMatch(first.masked + second.masked, /[0-9]/);

  // key by key
  const c = new KeypadAssembler(TIMEOUT);
  const masked: string[] = [];
  let last;
  for (const [i, k] of [...'*87654321#'].entries()) {
    last = c.feed(KP, k, T0 + i * 500);
    masked.push(last.masked);
  }
  t.equal(masked.join(''), '*xxxxxxxx#');
  t.same(last!.entries, [{ kind: 'pin', pin: '87654321' }]);
});

t.test("'*' starts a new entry: what came before is dropped and counted", async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  t.same(a.feed(KP, '12*34#', T0), { entries: [{ kind: 'pin', pin: '34' }], masked: '12*xx#', expired: 1 });
  // '9' then '*...#' is a PIN entry, not a panic, even though it ends in 9#
  const b = new KeypadAssembler(TIMEOUT);
  b.feed(KP, '9', T0);
  const r = b.feed(KP, '*9#', T0 + 100);
  t.same(r, { entries: [{ kind: 'pin', pin: '9' }], masked: '*x#', expired: 1 });
});

t.test('a PIN entry that times out is forgotten; the next keys are a new entry', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  a.feed(KP, '*12', T0);
  const r = a.feed(KP, '9#', T0 + TIMEOUT);
  t.same(r, { entries: [{ kind: 'panic' }], masked: '9#', expired: 1 });
});

t.test('a long run of 9s then # still raises', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  t.same(a.feed(KP, '9'.repeat(200) + '#', T0).entries, [{ kind: 'panic' }], 'in one event');
  const b = new KeypadAssembler(TIMEOUT);
  for (let i = 0; i < 100; i++) t.same(b.feed(KP, '99', T0 + i * 100).entries, [], `no entry before # (${i})`);
  t.same(b.feed(KP, '#', T0 + 10_000).entries, [{ kind: 'panic' }], 'over 100 events');
  // a long run of other keys that ends in 9#
  const c = new KeypadAssembler(TIMEOUT);
  t.same(c.feed(KP, '1234567890'.repeat(10) + '9#', T0).entries, [{ kind: 'panic' }]);
});

t.test('keypads are assembled separately', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  a.feed('A', '9', T0);
  a.feed('B', '*1', T0);
  t.same(a.feed('B', '#', T0 + 10).entries, [{ kind: 'pin', pin: '1' }], "B's entry is B's");
  t.same(a.feed('A', '#', T0 + 20).entries, [{ kind: 'panic' }], "A's '9' was not touched by B");
});

t.test('reset() forgets a half-typed entry', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  a.feed(KP, '9', T0);
  a.reset(KP);
  t.same(a.feed(KP, '#', T0 + 10), { entries: [{ kind: 'other' }], masked: '#', expired: 0 }, 'no panic after reset');

  const b = new KeypadAssembler(TIMEOUT);
  b.feed(KP, '*12', T0);
  b.reset(KP);
  t.same(b.feed(KP, '9#', T0 + 10).entries, [{ kind: 'panic' }], 'a PIN entry is forgotten too');

  // resetting one keypad leaves the others alone
  const c = new KeypadAssembler(TIMEOUT);
  c.feed('A', '9', T0);
  c.feed('B', '9', T0);
  c.reset('B');
  t.same(c.feed('A', '#', T0 + 1).entries, [{ kind: 'panic' }]);
  t.same(c.feed('B', '#', T0 + 1).entries, [{ kind: 'other' }]);
});

t.test('a second `*` inside a PIN entry separates the PIN from its command: `*` PIN `*1#` arms', async (t) => {
  const a = new KeypadAssembler(TIMEOUT);
  t.same(a.feed(KP, '*1234*1#', T0), { entries: [{ kind: 'pin', pin: '1234', command: 'arm' }], masked: '*xxxx*x#', expired: 0 }, 'in one event, masked');
  const keyByKey = new KeypadAssembler(TIMEOUT);
  let last;
  for (const [i, k] of [...'*87654321*1#'].entries()) last = keyByKey.feed(KP, k, T0 + i * 500);
  t.same(last!.entries, [{ kind: 'pin', pin: '87654321', command: 'arm' }], 'key by key');
  t.same(new KeypadAssembler(TIMEOUT).feed(KP, '*1234*5#', T0).entries, [{ kind: 'other' }], 'an unknown command is nothing (the PIN is not checked)');
  t.same(new KeypadAssembler(TIMEOUT).feed(KP, '*1234*1*2#', T0), { entries: [{ kind: 'pin', pin: '2' }], masked: '*xxxx*x*x#', expired: 1 }, 'a third `*` begins a new entry');
  t.same(new KeypadAssembler(TIMEOUT).feed(KP, '**1234#', T0), { entries: [{ kind: 'pin', pin: '1234' }], masked: '**xxxx#', expired: 1 }, '`**`: the second `*` begins the entry again');
});
