/**
 * Connection admission (broker/connection-admission.ts) without sockets: the per-address cap, the
 * total pending cap making room at the busiest address (never at the newcomer's own), the total
 * cap, release on login and on close, and the descriptor limit lowering maxConnections.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ConnectionAdmission, FD_RESERVE, processFdLimit, type AdmissionOptions } from '../../broker/connection-admission.js';
import { Counters } from '../../gateway/metrics.js';
import { createLogger } from '../../gateway/logger.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    setImmediate(() => this.emit('close'));
    return this;
  }
}

function admission(over: Partial<AdmissionOptions> = {}) {
  const counters = new Counters();
  const clock = { ms: 0 };
  const a = new ConnectionAdmission({
    log: createLogger('silent'),
    counters,
    maxConnections: 100,
    maxPending: 10,
    maxPendingPerAddress: 4,
    logIntervalMs: 1000,
    evictableAfterMs: 1000,
    now: () => clock.ms,
    fdLimit: null,
    ...over,
  });
  const open = (addr: string) => {
    const s = new FakeSocket(addr);
    const ok = a.admit(s as unknown as Socket);
    return { s, ok };
  };
  return { a, counters, open, clock };
}

t.test('per address: the socket past the cap is destroyed at once and counted', async (t) => {
  const { a, counters, open } = admission();
  const four = [1, 2, 3, 4].map(() => open('10.0.0.1'));
  t.ok(four.every((x) => x.ok));
  const fifth = open('::ffff:10.0.0.1');
  t.equal(fifth.ok, false, 'an IPv4-mapped address is the same address');
  t.equal(fifth.s.destroyed, true);
  t.equal(counters.get('refused.connection.per-address'), 1);
  t.equal(open('10.0.0.2').ok, true, 'another address is not affected');
  t.same(a.stats(), { open: 5, pending: 5, maxConnections: 100 });
});

t.test('per address: a socket pending longer than evictableAfterMs gives its place to a newcomer', async (t) => {
  const { counters, open, clock } = admission();
  const idle = [1, 2, 3, 4].map(() => open('10.0.0.1'));
  clock.ms = 999;
  t.equal(open('10.0.0.1').ok, false, 'not yet: a handshake may still be under way');
  clock.ms = 1000;
  const device = open('10.0.0.1');
  t.equal(device.ok, true, 'a newcomer behind the same address gets in');
  t.equal(idle[0].s.destroyed, true, 'in place of the oldest');
  t.equal(idle[1].s.destroyed, false);
  t.equal(counters.get('refused.connection.evicted'), 1);
});

t.test('total pending full: a newcomer takes the place of the oldest socket of the busiest address', async (t) => {
  const { a, counters, open } = admission();
  const first = open('10.0.0.1');
  for (let i = 0; i < 3; i++) open('10.0.0.1');
  for (let i = 0; i < 4; i++) open('10.0.0.2');
  open('10.0.0.3');
  open('10.0.0.3');
  t.equal(a.stats().pending, 10);
  const device = open('192.168.1.9');
  t.equal(device.ok, true, 'the newcomer is let in');
  t.equal(first.s.destroyed, true, 'the oldest pending socket of the busiest address made room');
  t.equal(counters.get('refused.connection.evicted'), 1);
  t.equal(a.stats().pending, 10);
  // An address that already holds as many as the busiest is refused instead of evicting.
  const { open: open2, counters: c2 } = admission({ maxPending: 4 });
  open2('10.0.0.1');
  open2('10.0.0.1');
  open2('10.0.0.2');
  open2('10.0.0.2');
  t.equal(open2('10.0.0.2').ok, false);
  t.equal(c2.get('refused.connection.pending-total'), 1);
});

t.test('total pending full, newcomer from the busiest address: its own oldest gives way once idle', async (t) => {
  const { open, clock } = admission({ maxPending: 4 });
  const first = open('10.0.0.1');
  open('10.0.0.1');
  open('10.0.0.2');
  open('10.0.0.2');
  t.equal(open('10.0.0.1').ok, false, 'refused while the others may be handshakes under way');
  clock.ms = 1000;
  t.equal(open('10.0.0.1').ok, true, 'admitted once its oldest is idle');
  t.equal(first.s.destroyed, true);
});

t.test('a login or a close releases the pending place; a close releases the connection', async (t) => {
  const { a, open } = admission({ maxConnections: 3 });
  const x = open('10.0.0.1');
  const y = open('10.0.0.1');
  const z = open('10.0.0.1');
  const stream = {};
  a.bind(stream, x.s as unknown as Socket);
  a.loggedIn(stream);
  t.same(a.stats(), { open: 3, pending: 2, maxConnections: 3 });
  t.equal(open('10.0.0.4').ok, false, 'all connections in use: refused');
  y.s.destroy();
  z.s.destroy();
  await new Promise((r) => setImmediate(r));
  t.same(a.stats(), { open: 1, pending: 0, maxConnections: 3 });
  t.equal(open('10.0.0.4').ok, true, 'room again');
});

t.test('maxConnections stays below the descriptor limit', async (t) => {
  const { a } = admission({ maxConnections: 10_000, fdLimit: 1024 });
  t.equal(a.maxConnections, 1024 - FD_RESERVE);
  const limit = processFdLimit();
  if (process.platform === 'linux') t.ok(limit && limit > 0, `read from /proc (${limit})`);
});
