/**
 * The bounded session store (broker/session-limits.ts) without sockets: it passes aedes-persistence's
 * shared abstract suite (every persistence backend must), and its bounds hold: the queue cap drops
 * the oldest, the session cap evicts the longest idle offline session, idle sessions expire, and a
 * subscription authorizeSubscribe did not grant is not stored.
 */
import t from 'tap';
import assert from 'node:assert';
import { createRequire } from 'node:module';
import type { Subscription } from 'aedes';
import { BoundedPersistence, type SessionLimitsOptions } from '../../broker/session-limits.js';
import { Counters } from '../../gateway/metrics.js';
import { createLogger } from '../../gateway/logger.js';

const require = createRequire(import.meta.url);
const abstractSuite = require('aedes-persistence/abstract.js') as (opts: {
  test: (name: string, fn: (t: unknown) => Promise<void>) => void;
  persistence: () => unknown;
  testAsync: boolean;
}) => void;

const log = createLogger('silent');

function store(over: Partial<SessionLimitsOptions> = {}, connected = new Set<string>()): BoundedPersistence {
  const p = new BoundedPersistence({ log, counters: new Counters(), maxQueuedPerSession: 1000, maxSessions: 1000, sessionExpiryMs: 60_000, logIntervalMs: 1000, ...over });
  void p.setup({ id: 'b', clients: new Proxy({}, { has: (_t, id) => connected.has(String(id)) }) } as never);
  return p;
}

t.test("aedes-persistence's abstract suite", async (t) => {
  abstractSuite({
    // The suite is written for node:test (t.assert, t.plan, t.diagnostic); node:assert throws, which fails the tap subtest.
    test: (name, fn) => void t.test(name, (tt) => fn({ assert, plan: () => {}, diagnostic: (m: string) => tt.comment(m) })),
    testAsync: true,
    persistence: () => {
      const p = store();
      // The suite stores subscriptions directly; in the broker only what authorizeSubscribe granted is stored.
      const add = p.addSubscriptions.bind(p);
      p.addSubscriptions = (client, subs) => {
        for (const s of subs) p.grant(s);
        return add(client, subs);
      };
      return p;
    },
  });
});

const packet = (n: number) => ({ cmd: 'publish', topic: 'a/b', payload: Buffer.from(String(n)), qos: 1, retain: false, dup: false, brokerId: 'b', brokerCounter: n }) as never;
const sub = (topic: string) => ({ topic, qos: 1 }) as Subscription;

async function queued(p: BoundedPersistence, id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const x of p.outgoingStream({ id })) out.push((x as { payload: Buffer }).payload.toString());
  return out;
}

t.test('the queue of a session keeps the newest messages up to its cap', async (t) => {
  const p = store({ maxQueuedPerSession: 3 });
  for (let n = 1; n <= 5; n++) await p.outgoingEnqueueCombi([{ clientId: 'c' }], packet(n));
  t.same(await queued(p, 'c'), ['3', '4', '5']);
  t.equal(p.stats().queuedMessages, 3);
  t.equal(p.tally.dropped, 2);
  // A packet the cap dropped is still sent when its delivery comes: no error that would close the client.
  await p.outgoingUpdate({ id: 'c' }, { ...(packet(1) as object), messageId: 7 } as never);
  await p.outgoingClearMessageId({ id: 'c' }, { messageId: 7 });
  t.equal(p.stats().queuedMessages, 3);
});

t.test('beyond maxSessions the longest idle offline session is forgotten', async (t) => {
  const connected = new Set(['old-but-online']);
  const p = store({ maxSessions: 2 }, connected);
  const granted = (topic: string) => {
    const s = sub(topic);
    p.grant(s);
    return [s];
  };
  await p.addSubscriptions({ id: 'old-but-online' }, granted('x/1'));
  await p.addSubscriptions({ id: 'idle' }, granted('x/2'));
  await p.addSubscriptions({ id: 'new' }, granted('x/3'));
  t.equal(p.stats().persistentSessions, 2);
  t.same(await p.subscriptionsByClient({ id: 'idle' }), [], 'the idle offline one went');
  t.equal((await p.subscriptionsByClient({ id: 'old-but-online' })).length, 1, 'a connected one stays');
  t.equal(p.tally.evicted, 1);
});

t.test('a session without a connection expires; a connected one does not', async (t) => {
  let now = 0;
  const connected = new Set(['on']);
  const p = store({ sessionExpiryMs: 1000, now: () => now }, connected);
  for (const id of ['on', 'off']) {
    const s = sub('x/y');
    p.grant(s);
    await p.addSubscriptions({ id }, [s]);
    await p.outgoingEnqueue({ clientId: id }, packet(1));
  }
  now = 999;
  t.equal(await p.expire(), 0, 'not before the expiry');
  now = 1000;
  t.equal(await p.expire(), 1);
  t.same(await queued(p, 'off'), []);
  t.same(await p.subscriptionsByClient({ id: 'off' }), []);
  t.same(await p.subscriptionsByTopic('x/y'), [{ clientId: 'on', topic: 'x/y', qos: 1, rh: undefined, rap: undefined, nl: undefined }]);
  t.equal(p.stats().persistentSessions, 1);
});

t.test('a subscription that was not granted is not stored', async (t) => {
  const p = store();
  const ok = sub('mine');
  const refused = sub('theirs');
  p.grant(ok);
  await p.addSubscriptions({ id: 'c' }, [ok, refused]);
  t.same((await p.subscriptionsByClient({ id: 'c' })).map((s) => s.topic), ['mine']);
  t.same(await p.subscriptionsByTopic('theirs'), []);
});
