/**
 * Limits password guessing without letting an attacker lock the real user out (issue 7: 2,000
 * wrong passwords for an officer in 34 s, each answered at once and logged line by line).
 * One instance serves every login of the gateway (MQTT now, the web console later), so an
 * account is throttled the same way whatever door is knocked on.
 *
 * What it does, per attempt (an address, an account, a check of the credentials):
 * - A correct password is never held: from an address without failures it is checked at once
 *   (ahead of everything queued), and answered as soon as the check succeeds.
 * - A failure is answered only after a delay once its address or its account is past
 *   `freeFailures`: `delayMs`, doubling with each further failure, at most `maxDelayMs`. The
 *   attempt keeps its place while it is held, even when the client hangs up, so closing the
 *   socket does not buy the next guess sooner.
 * - An address has at most `maxPendingPerAddress` attempts checked or held at once; more are
 *   refused at once, unchecked. Parallel connections from one address therefore guess at most
 *   that many per delay.
 * - For an account past its free failures, the attempts from addresses that failed before run
 *   one at a time, each failure held before the next is checked: many addresses together guess
 *   no faster than one. At most `maxQueuedPerAccount` are in line; more are refused unchecked.
 * - At most `maxConcurrentChecks` checks run at once gateway-wide (scrypt for people costs tens
 *   of milliseconds of CPU and 16 MB each): a flood cannot take every core and the libuv pool from
 *   the alarm path. Attempts from addresses without failures go first; a cheap check (a device's
 *   HMAC) does not wait for a slot.
 * - No lock-out: nothing is ever refused for the account alone; a quiet `forgetAfterMs` resets.
 * - Failures are counted (Counters) and logged as one summary line per `summaryIntervalMs`; only
 *   the first failure of a fresh address or account gets a line of its own (a few per interval).
 *
 * Timed by an injected Clock, so tests drive it with a ManualClock, without sockets.
 */
import type { Clock } from '../clock.js';
import type { Counters } from '../metrics.js';
import type { Logger } from '../logger.js';
import type { Config } from '../../config/schema.js';

export type LoginThrottleConfig = Config['login'];

/** How an attempt ended. */
export type LoginOutcome<T> =
  /** The check succeeded; answer at once. */
  | { status: 'ok'; value: T }
  /** The check failed (bad credentials); its answer was held `heldMs`. */
  | { status: 'failed'; heldMs: number }
  /** Refused unchecked: too many attempts pending from the address, or queued for the account. */
  | { status: 'busy'; reason: 'address' | 'account' }
  /** The client went away before its check ran; nothing was checked. */
  | { status: 'abandoned' };

export interface LoginAttempt<T> {
  /** The peer's address as the socket reports it (IPv4, IPv6 or IPv4-mapped IPv6). */
  address: string | undefined;
  /** The login name as presented (a username, a device id, or a placeholder for none). */
  account: string;
  /** Check the credentials; resolve null for bad ones. Not called for a busy or abandoned attempt. */
  check: () => Promise<T | null> | T | null;
  /** True once the client has gone: a check that has not run yet is skipped. */
  abandoned?: () => boolean;
  /** The error code a failure is counted and logged under (default LF_ERR_BAD_CREDENTIALS). */
  code?: string;
  /**
   * False for a check that costs next to nothing (a device token's HMAC): it does not wait for a
   * check slot, so a registered device never waits behind people's scrypt checks. Default true.
   */
  costly?: boolean;
}

export interface LoginThrottleOptions {
  clock: Clock;
  log: Logger;
  counters: Counters;
  config: LoginThrottleConfig;
}

/** Addresses and accounts remembered at most; the quietest are forgotten first. */
const MAX_TRACKED = 10_000;
/** Lines of their own for first failures per summary interval; the rest is in the summary only. */
const MAX_FIRST_FAILURE_LINES = 10;
/** Addresses and accounts named in one summary line (the busiest). */
const SUMMARY_TOP = 10;

interface Entry {
  failures: number;
  lastFailureAt: number;
  /** Attempts in flight (waiting, checked or held) for this address or account. */
  pending: number;
  /** Accounts: serialized attempts in line (waiting for their turn, or having it). */
  queued: number;
  /** Accounts: the end of the last serialized attempt, which the next one waits for. */
  tail: Promise<void>;
}

interface Window {
  failures: number;
  held: number;
  busy: number;
  byAddress: Map<string, number>;
  byAccount: Map<string, number>;
  byCode: Map<string, number>;
  firstLines: number;
}

const newWindow = (): Window => ({ failures: 0, held: 0, busy: 0, byAddress: new Map(), byAccount: new Map(), byCode: new Map(), firstLines: 0 });

/**
 * The key an address is throttled under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64,
 * since one host usually holds a whole /64 and could otherwise pick a fresh address per guess.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0]!.toLowerCase();
  const [head, tail] = bare.includes('::') ? bare.split('::', 2) : [bare, undefined];
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  // An embedded IPv4 tail (::1.2.3.4) counts as two groups; only the first four groups matter.
  const fill = tail === undefined ? [] : Array(Math.max(0, 8 - left.length - right.length)).fill('0');
  const groups = [...left, ...fill, ...right].slice(0, 4).map((g) => (g.replace(/^0+(?=.)/, '') || '0'));
  while (groups.length < 4) groups.push('0');
  return `${groups.join(':')}::/64`;
}

/** Two-level FIFO of waiters for a limited number of check slots. */
class CheckSlots {
  private running = 0;
  private readonly first: (() => void)[] = [];
  private readonly later: (() => void)[] = [];

  constructor(private readonly size: number) {}

  acquire(priority: boolean): Promise<void> {
    if (this.running < this.size) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => (priority ? this.first : this.later).push(resolve));
  }

  release(): void {
    const next = this.first.shift() ?? this.later.shift();
    if (next) next();
    else this.running--;
  }
}

export class LoginThrottle {
  private readonly addresses = new Map<string, Entry>();
  private readonly accounts = new Map<string, Entry>();
  private readonly slots: CheckSlots;
  private window = newWindow();
  private summaryTimer: { cancel(): void } | null = null;
  private stopped = false;

  constructor(private readonly opts: LoginThrottleOptions) {
    this.slots = new CheckSlots(opts.config.maxConcurrentChecks);
  }

  /** Run one login attempt under the throttle. Called once per CONNECT (or console login). */
  async attempt<T>(a: LoginAttempt<T>): Promise<LoginOutcome<T>> {
    const { config, clock, counters } = this.opts;
    const now = clock.now();
    const addrKey = addressKey(a.address);
    const addr = this.entry(this.addresses, addrKey, now);
    // Before the account is looked up: a flood of refused attempts with made-up usernames must not
    // push the accounts under attack out of the table.
    if (addr.pending >= config.maxPendingPerAddress) return this.busy('address', addrKey, a.account);
    const acct = this.entry(this.accounts, a.account, now);
    // "Suspect": this address failed before (within forgetAfterMs). A clean address is never queued.
    const suspect = addr.failures > 0;
    const serialize = suspect && acct.failures >= config.freeFailures;
    if (serialize && acct.queued >= config.maxQueuedPerAccount) return this.busy('account', addrKey, a.account);

    addr.pending++;
    acct.pending++;
    let releaseTurn: (() => void) | null = null;
    try {
      if (serialize) {
        acct.queued++;
        counters.inc('login.queued');
        const previous = acct.tail;
        acct.tail = new Promise<void>((r) => (releaseTurn = r));
        await previous;
      }
      if (a.abandoned?.()) {
        counters.inc('login.abandoned');
        return { status: 'abandoned' };
      }
      const slot = a.costly !== false;
      if (slot) await this.slots.acquire(!suspect);
      let value: T | null;
      try {
        // Skip the check of a client that hung up while it waited for a slot.
        if (a.abandoned?.()) {
          counters.inc('login.abandoned');
          return { status: 'abandoned' };
        }
        value = await a.check();
      } finally {
        if (slot) this.slots.release();
      }
      if (value !== null) return { status: 'ok', value };

      const heldMs = this.recordFailure(addrKey, addr, a.account, acct, a.code ?? 'LF_ERR_BAD_CREDENTIALS');
      if (heldMs > 0) await this.sleep(heldMs);
      return { status: 'failed', heldMs };
    } finally {
      addr.pending--;
      acct.pending--;
      if (serialize) acct.queued--;
      (releaseTurn as (() => void) | null)?.();
      this.dropIfClean(this.addresses, addrKey, addr);
      this.dropIfClean(this.accounts, a.account, acct);
    }
  }

  /** Stop the summary timer (gateway stop), logging what the current interval holds. */
  stop(): void {
    this.stopped = true;
    this.summaryTimer?.cancel();
    this.summaryTimer = null;
    this.flush();
  }

  /** Log the summary of the interval now (also what the interval timer calls). */
  flush(): void {
    const w = this.window;
    this.window = newWindow();
    if (w.failures === 0 && w.busy === 0) return;
    this.opts.log.warn(
      {
        intervalMs: this.opts.config.summaryIntervalMs,
        failures: w.failures,
        held: w.held,
        refusedBusy: w.busy,
        codes: Object.fromEntries(w.byCode),
        addressCount: w.byAddress.size,
        accountCount: w.byAccount.size,
        addresses: top(w.byAddress),
        accounts: top(w.byAccount),
      },
      'failed logins (summary)',
    );
  }

  /** What the throttle holds about an address or account now (for /health and tests). */
  state(kind: 'address' | 'account', key: string): { failures: number; pending: number } | null {
    const e = (kind === 'address' ? this.addresses.get(addressKey(key)) : this.accounts.get(key)) ?? null;
    return e && { failures: e.failures, pending: e.pending };
  }

  /** The delay of the answer to the `failures`-th failure. */
  delayFor(failures: number): number {
    const { freeFailures, delayMs, maxDelayMs } = this.opts.config;
    if (failures <= freeFailures) return 0;
    return Math.min(maxDelayMs, delayMs * 2 ** Math.min(30, failures - freeFailures - 1));
  }

  private recordFailure(addrKey: string, addr: Entry, account: string, acct: Entry, code: string): number {
    const { clock, counters, log } = this.opts;
    const now = clock.now();
    const freshAddress = addr.failures === 0;
    const freshAccount = acct.failures === 0;
    addr.failures++;
    acct.failures++;
    addr.lastFailureAt = acct.lastFailureAt = now;
    this.touch(this.addresses, addrKey, addr);
    this.touch(this.accounts, account, acct);
    const heldMs = Math.max(this.delayFor(addr.failures), this.delayFor(acct.failures));

    counters.inc('login.failed');
    counters.inc(`refused.${code}`);
    if (heldMs > 0) counters.inc('login.held');
    const w = this.noteWindow();
    w.failures++;
    if (heldMs > 0) w.held++;
    bump(w.byAddress, addrKey);
    bump(w.byAccount, account);
    bump(w.byCode, code);
    if ((freshAddress || freshAccount) && w.firstLines < MAX_FIRST_FAILURE_LINES) {
      w.firstLines++;
      log.warn(
        { code, address: addrKey, username: account, first: freshAddress ? 'address' : 'account' },
        'connection refused: bad credentials (further failures are logged in summary)',
      );
    }
    return heldMs;
  }

  private busy(reason: 'address' | 'account', addrKey: string, account: string): LoginOutcome<never> {
    this.opts.counters.inc('refused.LF_ERR_LOGIN_THROTTLED');
    const w = this.noteWindow();
    w.busy++;
    bump(w.byAddress, addrKey);
    bump(w.byAccount, account);
    bump(w.byCode, 'LF_ERR_LOGIN_THROTTLED');
    return { status: 'busy', reason };
  }

  /** The current window, arming the summary timer on its first event. */
  private noteWindow(): Window {
    if (!this.summaryTimer && !this.stopped) {
      this.summaryTimer = this.opts.clock.setTimer(this.opts.config.summaryIntervalMs, () => {
        this.summaryTimer = null;
        this.flush();
      });
    }
    return this.window;
  }

  private entry(map: Map<string, Entry>, key: string, now: number): Entry {
    let e = map.get(key);
    if (!e) {
      e = { failures: 0, lastFailureAt: 0, pending: 0, queued: 0, tail: Promise.resolve() };
      map.set(key, e);
      this.evict(map);
    } else if (e.failures > 0 && now - e.lastFailureAt >= this.opts.config.forgetAfterMs) {
      e.failures = 0;
    }
    return e;
  }

  /** Only addresses and accounts with failures or attempts in flight are remembered. */
  private dropIfClean(map: Map<string, Entry>, key: string, e: Entry): void {
    if (e.failures === 0 && e.pending === 0 && map.get(key) === e) map.delete(key);
  }

  /** Most recently failed last, so eviction takes the quietest first. */
  private touch(map: Map<string, Entry>, key: string, e: Entry): void {
    map.delete(key);
    map.set(key, e);
  }

  private evict(map: Map<string, Entry>): void {
    if (map.size <= MAX_TRACKED) return;
    for (const [key, e] of map) {
      if (map.size <= MAX_TRACKED) break;
      // An entry with attempts in flight is still in use; the next one goes instead.
      if (e.pending === 0) map.delete(key);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.opts.clock.setTimer(ms, resolve));
  }
}

/** Count under `key`; past MAX_TRACKED distinct keys in one interval, under "(others)". */
function bump(m: Map<string, number>, key: string): void {
  const k = m.has(key) || m.size < MAX_TRACKED ? key : '(others)';
  m.set(k, (m.get(k) ?? 0) + 1);
}

function top(m: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).slice(0, SUMMARY_TOP));
}
