/**
 * The login throttle (gateway/security/login-throttle.ts) without sockets, on a ManualClock:
 * growing delays for failures, no lock-out of a correct password from a clean address, bounded
 * parallel attempts per address and per account, a bounded number of checks at once, and failures
 * logged in summary.
 */
import t from 'tap';
import { ManualClock } from '../../../gateway/clock.js';
import { Counters } from '../../../gateway/metrics.js';
import { createLogger } from '../../../gateway/logger.js';
import { LoginThrottle, addressKey, type LoginThrottleConfig, type LoginOutcome } from '../../../gateway/security/login-throttle.js';

const CONFIG: LoginThrottleConfig = {
  freeFailures: 3,
  delayMs: 100,
  maxDelayMs: 800,
  forgetAfterMs: 60_000,
  maxPendingPerAddress: 2,
  maxQueuedPerAccount: 3,
  maxConcurrentChecks: 1,
  summaryIntervalMs: 10_000,
};

function setup(over: Partial<LoginThrottleConfig> = {}) {
  const clock = new ManualClock();
  const counters = new Counters();
  const lines: Record<string, any>[] = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s)) });
  const throttle = new LoginThrottle({ clock, counters, log, config: { ...CONFIG, ...over } });
  return { clock, counters, lines, throttle };
}

/** Let promise callbacks run (the throttle is asynchronous even when nothing waits). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

/** Advance the clock in steps, letting each held answer's successor start and arm its timer. */
async function drain(clock: ManualClock, rounds = 10, stepMs = 10_000) {
  for (let i = 0; i < rounds; i++) {
    clock.advance(stepMs);
    await settle();
  }
}

/** An attempt whose outcome can be inspected before it resolves. */
function track<T>(p: Promise<LoginOutcome<T>>) {
  const s: { done: boolean; outcome?: LoginOutcome<T> } = { done: false };
  void p.then((o) => {
    s.done = true;
    s.outcome = o;
  });
  return s;
}

const wrong = (address: string, account = 'duty1') => ({ address, account, check: () => null });
const right = (address: string, account = 'duty1') => ({ address, account, check: async () => ({ name: account }) });

t.test('failures past the free ones are answered after a delay that doubles up to the maximum', async (t) => {
  const { clock, throttle, counters } = setup();
  const held: number[] = [];
  for (let i = 0; i < 8; i++) {
    const a = track(throttle.attempt(wrong('10.0.0.9')));
    await settle();
    const expected = [0, 0, 0, 100, 200, 400, 800, 800][i]!;
    if (expected > 0) {
      t.notOk(a.done, `failure ${i + 1} is not answered before its delay`);
      clock.advance(expected - 1);
      await settle();
      t.notOk(a.done, `failure ${i + 1} still held 1 ms before its delay`);
      clock.advance(1);
      await settle();
    }
    t.ok(a.done, `failure ${i + 1} answered`);
    t.equal(a.outcome?.status, 'failed');
    held.push(a.outcome?.status === 'failed' ? a.outcome.heldMs : -1);
  }
  t.same(held, [0, 0, 0, 100, 200, 400, 800, 800]);
  t.equal(counters.get('login.failed'), 8);
  t.equal(counters.get('login.held'), 5);
  t.equal(counters.get('refused.LF_ERR_BAD_CREDENTIALS'), 8);
});

t.test('a correct password from a clean address gets in at once while the account is attacked', async (t) => {
  const { throttle, clock } = setup({ maxPendingPerAddress: 10, maxQueuedPerAccount: 10 });
  // The attacker fails past the free ones, then keeps several attempts queued and held.
  for (let i = 0; i < 3; i++) await throttle.attempt(wrong('10.0.0.66'));
  const attacks = Array.from({ length: 5 }, () => track(throttle.attempt(wrong('10.0.0.66'))));
  await settle();
  t.equal(attacks.filter((a) => a.done).length, 0, "the attacker's attempts are held");
  const officer = track(throttle.attempt(right('10.0.0.2')));
  await settle();
  t.ok(officer.done, 'answered without any clock advance');
  t.same(officer.outcome, { status: 'ok', value: { name: 'duty1' } });
  // A wrong password from a clean address is answered after the account's delay, not at once.
  const typo = track(throttle.attempt(wrong('10.0.0.3')));
  await settle();
  t.notOk(typo.done, "the account's delay holds a failure from a clean address");
  clock.advance(60_000);
  await settle();
  t.ok(typo.done);
});

t.test('an account past its free failures checks attempts from failed addresses one at a time', async (t) => {
  const { throttle, clock } = setup({ maxPendingPerAddress: 10, maxQueuedPerAccount: 10 });
  // Two addresses fail, so both are suspect and the account is hot.
  await throttle.attempt(wrong('10.0.1.1'));
  await throttle.attempt(wrong('10.0.1.2'));
  await throttle.attempt(wrong('10.0.1.1'));
  let checks = 0;
  const counting = (address: string) => ({ address, account: 'duty1', check: () => (checks++, null) });
  const a = track(throttle.attempt(counting('10.0.1.1')));
  const b = track(throttle.attempt(counting('10.0.1.2')));
  const c = track(throttle.attempt(counting('10.0.1.1')));
  await settle();
  t.equal(checks, 1, 'one check runs; the others wait their turn');
  clock.advance(100); // the 4th failure of the account is held 100 ms
  await settle();
  t.ok(a.done);
  t.equal(checks, 2, 'the next check runs only after the previous failure was answered');
  t.notOk(b.done);
  clock.advance(200);
  await settle();
  t.ok(b.done);
  t.equal(checks, 3);
  clock.advance(400);
  await settle();
  t.ok(c.done);
});

t.test('parallel attempts from one address are bounded; hanging up does not free the slot', async (t) => {
  const { throttle, clock, counters, lines } = setup();
  for (let i = 0; i < 3; i++) await throttle.attempt(wrong('10.0.2.1', `acct${i}`));
  let gone = false;
  let checks = 0;
  const attempt = (account: string) => track(throttle.attempt({ address: '10.0.2.1', account, check: () => (checks++, null), abandoned: () => gone }));
  // Different accounts, so only the address bounds them: at most 2 pending.
  const a = attempt('x1');
  const b = attempt('x2');
  const c = attempt('x3');
  await settle();
  t.same(c.outcome, { status: 'busy', reason: 'address' }, 'the third at once is refused');
  t.equal(checks, 2, 'a refused attempt is not checked');
  t.notOk(a.done || b.done, 'the two failures are held');
  gone = true; // the attacker hangs up at once to try again sooner
  const d = attempt('x4');
  await settle();
  t.equal(d.outcome?.status, 'busy', 'a held failure keeps its slot after its client left');
  clock.advance(800);
  await settle();
  t.ok(a.done && b.done);
  gone = false;
  const e = attempt('x5');
  await settle();
  t.equal(checks, 3, 'after the holds, the address may try again');
  clock.advance(800);
  await settle();
  t.ok(e.done);
  t.equal(counters.get('refused.LF_ERR_LOGIN_THROTTLED'), 2);
  t.notOk(lines.some((l) => /busy|throttled/i.test(l.msg)), 'busy refusals have no lines of their own');
});

t.test('the queue of an attacked account is bounded; a clean address is never queued', async (t) => {
  const { throttle, clock } = setup({ maxPendingPerAddress: 100, maxQueuedPerAccount: 2 });
  for (let i = 0; i < 3; i++) await throttle.attempt(wrong(`10.0.3.${i}`));
  const queued = [0, 1, 2, 0, 1].map((i) => track(throttle.attempt(wrong(`10.0.3.${i}`))));
  await settle();
  // One runs (held), one waits, the rest are refused.
  t.same(
    queued.map((q) => q.outcome?.status ?? 'pending'),
    ['pending', 'pending', 'busy', 'busy', 'busy'],
  );
  const clean = track(throttle.attempt(right('10.0.3.200')));
  await settle();
  t.same(clean.outcome?.status, 'ok', 'a clean address bypasses the queue');
  await drain(clock);
  t.ok(queued.every((q) => q.done));
});

t.test('checks run at most maxConcurrentChecks at once, clean addresses first', async (t) => {
  const { throttle } = setup({ maxPendingPerAddress: 100, maxQueuedPerAccount: 100, freeFailures: 100 });
  await throttle.attempt(wrong('10.0.4.1', 'other')); // 10.0.4.1 is now suspect
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<null>((r) => (release = () => r(null)));
  let running = 0;
  let most = 0;
  const slow = (label: string, address: string, result: () => Promise<unknown>) =>
    throttle.attempt({
      address,
      account: label,
      check: async () => {
        running++;
        most = Math.max(most, running);
        order.push(label);
        const v = await result();
        running--;
        return v;
      },
    });
  const first = slow('first', '10.0.4.9', () => gate);
  const suspect = slow('suspect', '10.0.4.1', async () => null);
  const clean = slow('clean', '10.0.4.2', async () => ({ ok: true }));
  // A cheap check (a device's HMAC) does not wait for the slot.
  const device = track(throttle.attempt({ address: '10.0.4.3', account: 'S01.keypad.aa', costly: false, check: () => ({ device: true }) }));
  await settle();
  t.same(device.outcome, { status: 'ok', value: { device: true } }, 'a cheap check is not queued behind a costly one');
  t.same(order, ['first'], 'one costly check at a time');
  release();
  await Promise.all([first, suspect, clean]);
  t.same(order, ['first', 'clean', 'suspect'], 'a clean address is checked before a suspect one');
  t.equal(most, 1);
});

t.test('a client that hung up while waiting is not checked', async (t) => {
  const { throttle, clock, counters } = setup({ maxPendingPerAddress: 10 });
  for (let i = 0; i < 3; i++) await throttle.attempt(wrong('10.0.5.1'));
  const first = track(throttle.attempt(wrong('10.0.5.1')));
  let checked = false;
  let gone = false;
  const second = track(throttle.attempt({ address: '10.0.5.1', account: 'duty1', check: () => ((checked = true), null), abandoned: () => gone }));
  await settle();
  gone = true;
  clock.advance(100);
  await settle();
  t.ok(first.done);
  t.same(second.outcome, { status: 'abandoned' });
  t.notOk(checked);
  t.equal(counters.get('login.abandoned'), 1);
});

t.test('an address and an account quiet for forgetAfterMs start afresh', async (t) => {
  const { throttle, clock } = setup();
  for (let i = 0; i < 3; i++) await throttle.attempt(wrong('10.0.6.1'));
  const held = track(throttle.attempt(wrong('10.0.6.1')));
  await settle();
  t.notOk(held.done);
  clock.advance(100);
  await settle();
  clock.advance(60_000);
  t.same(await throttle.attempt(wrong('10.0.6.1')), { status: 'failed', heldMs: 0 }, 'answered at once again');
  t.equal(throttle.state('address', '10.0.6.1')?.failures, 1);
});

t.test('failures are logged as a first line per address or account and one summary per interval', async (t) => {
  const { throttle, clock, lines } = setup({ maxDelayMs: 0, delayMs: 0, maxPendingPerAddress: 100 });
  for (let i = 0; i < 500; i++) await throttle.attempt(wrong('10.0.7.1', 'duty1'));
  for (let i = 0; i < 300; i++) await throttle.attempt(wrong('10.0.7.2', 'S01.keypad.aa'));
  const firsts = lines.filter((l) => l.msg.startsWith('connection refused: bad credentials'));
  t.equal(firsts.length, 2, 'one line for the first failure of each fresh address/account');
  t.same(
    firsts.map((l) => [l.address, l.username]),
    [
      ['10.0.7.1', 'duty1'],
      ['10.0.7.2', 'S01.keypad.aa'],
    ],
  );
  t.equal(lines.filter((l) => l.msg === 'failed logins (summary)').length, 0, 'no summary before the interval ends');
  clock.advance(10_000);
  const summaries = lines.filter((l) => l.msg === 'failed logins (summary)');
  t.equal(summaries.length, 1, 'one summary line for 800 failures');
  const s = summaries[0]!;
  t.equal(s.failures, 800);
  t.same(s.addresses, { '10.0.7.1': 500, '10.0.7.2': 300 });
  t.same(s.accounts, { duty1: 500, 'S01.keypad.aa': 300 });
  t.same(s.codes, { LF_ERR_BAD_CREDENTIALS: 800 });
  t.equal(lines.length, 3, '800 failures, 3 lines');
  clock.advance(10_000);
  t.equal(lines.length, 3, 'a quiet interval logs nothing');
  // A spray of fresh usernames gets at most a few first lines per interval.
  for (let i = 0; i < 100; i++) await throttle.attempt(wrong('10.0.7.3', `guess${i}`));
  t.ok(lines.filter((l) => l.msg.startsWith('connection refused: bad credentials')).length <= 2 + 10, 'first-failure lines are capped per interval');
  throttle.stop();
  t.equal(lines.filter((l) => l.msg === 'failed logins (summary)').length, 2, 'stop logs what the interval holds');
});

t.test('addressKey: IPv4 as is, IPv4-mapped unwrapped, IPv6 by /64', async (t) => {
  t.equal(addressKey('127.0.0.2'), '127.0.0.2');
  t.equal(addressKey('::ffff:127.0.0.2'), '127.0.0.2');
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64', 'one /64, one key');
  t.equal(addressKey('2001:0db8:0001:0002::'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey(undefined), 'unknown');
});

t.test('what is remembered is bounded', async (t) => {
  const { throttle, clock } = setup({ maxPendingPerAddress: 100_000, delayMs: 0, maxDelayMs: 0 });
  await throttle.attempt(right('10.0.8.9', 'ok-user'));
  t.equal(throttle.state('account', 'ok-user'), null, 'a successful login leaves nothing behind');
  t.equal(throttle.state('address', '10.0.8.9'), null);
  await throttle.attempt(wrong('10.0.8.1', 'first-account'));
  for (let i = 0; i < 10_050; i++) await throttle.attempt(wrong('10.0.8.2', `spray${i}`));
  t.equal(throttle.state('account', 'first-account'), null, 'the quietest account was forgotten');
  t.ok(throttle.state('account', 'spray10049'), 'the latest is known');
  t.equal(throttle.state('address', '10.0.8.2')?.failures, 10_050, 'the spraying address is still known');
  clock.advance(10_000);
});
