/**
 * The console's numbers and health over real HTTP (issue 11, "Health and numbers"): an in-process
 * gateway on the seeded street (test/helpers/console-seed.ts) on a manual clock stopped at SEED_NOW,
 * officers signed in through the login route. Every figure of /api/stats and /api/bulletin against
 * the seed's hand-worked ones (the defaults: the last 7 days, yesterday), the CSV's bytes and
 * headers, the printable bulletin, device health, tickets assigned and fixed with their audit rows,
 * and the scope: a compound's guard sees only its shops, another station's officer nothing, no one
 * anything without a session.
 */
import t from 'tap';
import { startGateway, tempDataDir } from '../../helpers/gateway.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { ManualClock } from '../../../gateway/clock.js';
import type { Me } from '../../../gateway/console/contract.js';
import type { Bulletin, DevicesHealth, Stats, Ticket, TicketList } from '../../../gateway/console/contract-reports.js';
import { SEED_EXPECTED, SEED_NOW, SEED_PASSWORD, SEED_PERIOD, SEED_USERS, seedConsoleDir } from '../../helpers/console-seed.js';

const data = tempDataDir(t);
const seed = await seedConsoleDir(data);
const gw = await startGateway(t, data, {}, { clock: new ManualClock(SEED_NOW) });
const base = `http://127.0.0.1:${gw.ports().http}`;
const nameOf = new Map(Object.entries(seed.faults).map(([name, id]) => [id, name]));

interface Officer {
  cookie: string;
  csrf: string;
  get: (path: string) => Promise<Response>;
  post: (path: string, body: unknown) => Promise<Response>;
}

async function signIn(username: string): Promise<Officer> {
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: SEED_PASSWORD }) });
  if (res.status !== 200) throw new Error(`login of ${username}: ${res.status} ${await res.text()}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const me = (await (await fetch(`${base}/api/me`, { headers: { cookie } })).json()) as Me;
  return {
    cookie,
    csrf: me.csrf,
    get: (path) => fetch(base + path, { headers: { cookie } }),
    post: (path, body) => fetch(base + path, { method: 'POST', headers: { cookie, 'x-csrf-token': me.csrf, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  };
}

const station = await signIn(SEED_USERS.station.name);
const guard = await signIn(SEED_USERS.compound.name);
const other = await signIn(SEED_USERS.other.name);
const admin = await signIn(SEED_USERS.admin.name);

async function json<T>(res: Response, status = 200): Promise<T> {
  const body = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${body}`);
  return JSON.parse(body) as T;
}

const dbRows = <T>(sql: string, ...args: unknown[]): T[] => {
  const db = openDatabase(data);
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
};

t.test('nothing of it without a session', async (t) => {
  for (const path of ['/api/stats', '/api/alarms.csv', '/api/bulletin', '/api/bulletin?format=html', '/api/health/devices', '/api/tickets']) {
    t.equal((await fetch(base + path)).status, 401, `GET ${path}`);
  }
  for (const path of [`/api/tickets/${seed.faults.F2}/assign`, `/api/tickets/${seed.faults.F2}/fix`]) {
    t.equal((await fetch(base + path, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status, 401, `POST ${path}`);
  }
});

t.test('/api/stats: the default period is the last 7 days; every figure; the compound\'s only its shops', async (t) => {
  for (const [who, scope] of [
    [station, 'PS1'],
    [guard, 'PS1-C1'],
    [admin, 'PS1-C1'],
  ] as const) {
    const s = await json<Stats>(await who.get(`/api/stats?scope=${scope}`));
    const want = SEED_EXPECTED.stats[scope];
    t.same([s.scope.id, s.timeZone, s.from, s.to], [scope, SEED_EXPECTED.timeZone, SEED_PERIOD.from, SEED_PERIOD.to], `${scope}: the period`);
    t.same(s.perDay, want.perDay, `${scope}: per day`);
    t.same(s.falseShare, want.falseShare, `${scope}: false-alarm share`);
    t.same(s.threshold, { ratePercent: 50, minDecided: 3 }, 'the threshold from the configuration');
    t.same(s.ackSeconds, want.ackSeconds, `${scope}: time to acknowledge`);
    t.same(s.firstReplySeconds, want.firstReplySeconds, `${scope}: time to the first neighbour`);
    t.same(s.faults, want.faults, `${scope}: faults`);
  }
  // Without ?scope= an officer gets their own.
  t.equal((await json<Stats>(await guard.get('/api/stats'))).scope.id, 'PS1-C1');
  const two = await json<Stats>(await station.get('/api/stats?from=2026-11-30&to=2026-12-01'));
  t.same(two.perDay.map((d) => d.day), ['2026-11-30', '2026-12-01']);
});

t.test('refusals: another scope, a bad day', async (t) => {
  const scoped = await other.get('/api/stats?scope=PS1');
  t.equal(scoped.status, 403);
  t.equal(((await scoped.json()) as { code: string }).code, 'LF_ERR_SCOPE');
  t.equal((await guard.get('/api/bulletin?scope=PS1')).status, 403, 'a compound\'s guard may not see the station\'s bulletin');
  t.equal((await other.get('/api/alarms.csv?scope=PS1-C1')).status, 403);
  for (const q of ['from=2026-02-30', 'from=12/01/2026', 'from=2026-12-02&to=2026-12-01', 'from=2020-01-01&to=2026-01-01']) {
    const r = await station.get(`/api/stats?${q}`);
    t.equal(r.status, 400, q);
    t.equal(((await r.json()) as { code: string }).code, 'LF_ERR_INVALID_ARGUMENT');
  }
  t.equal((await station.get('/api/bulletin?day=yesterday')).status, 400);
  t.equal((await station.get('/api/bulletin?format=pdf')).status, 400);
});

t.test('/api/bulletin: yesterday in Shanghai by default; every figure', async (t) => {
  for (const [who, scope] of [
    [station, 'PS1'],
    [guard, 'PS1-C1'],
  ] as const) {
    const b = await json<Bulletin>(await who.get('/api/bulletin'));
    const want = SEED_EXPECTED.bulletin[scope];
    t.same([b.day, b.timeZone, b.scope.id, b.start, b.end], [want.day, SEED_EXPECTED.timeZone, scope, want.start, want.end]);
    t.same(b.totals, want.totals, `${scope}: totals`);
    t.same(b.byGrid, want.byGrid, `${scope}: by grid and sector`);
  }
  const nov30 = await json<Bulletin>(await station.get('/api/bulletin?day=2026-11-30'));
  t.same([nov30.totals.received, nov30.totals.real], [1, 1], '30 Nov local: only A05 (23:30); A06 at 00:30 local is 1 Dec');
});

t.test('the printable bulletin: HTML, its own CSP, bilingual, escaped', async (t) => {
  const res = await station.get('/api/bulletin?format=html&day=2026-12-01');
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/html; charset=utf-8/);
  t.match(res.headers.get('content-security-policy'), /default-src 'none'/, 'nothing but its inline style');
  const html = await res.text();
  t.match(html, /警情日报 <span class="en">Daily bulletin/);
  t.match(html, /接警总数 <span class="en">Alarms received<\/span><\/th><td class="n">4<\/td>/);
  t.match(html, '网格2');
  t.notMatch(html, /<script/);
});

t.test('/api/alarms.csv: an attachment, UTF-8 with BOM, CRLF, the scope\'s alarms', async (t) => {
  const res = await station.get(`/api/alarms.csv?from=${SEED_PERIOD.from}&to=${SEED_PERIOD.to}`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/csv; charset=utf-8/);
  t.equal(res.headers.get('content-disposition'), 'attachment; filename="alarms-PS1-2026-11-26-2026-12-02.csv"');
  const bytes = Buffer.from(await res.arrayBuffer());
  t.same([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the BOM');
  const text = bytes.toString('utf8').slice(1);
  t.ok(text.startsWith('报警编号 Alarm id,'), 'a bilingual header');
  t.equal(text.match(/\r\nA\d\d,/g)?.length, SEED_EXPECTED.csvAlarms.PS1, 'one CRLF-started record per alarm');
  t.match(text, /,"'=HYPERLINK\(""http:\/\/evil\.example"",""x""\)",/, 'the formula is text, quoted');
  const guardCsv = (await (await guard.get('/api/alarms.csv')).text()).slice(1);
  t.equal(guardCsv.match(/\r\nA\d\d,/g)?.length, SEED_EXPECTED.csvAlarms['PS1-C1'], 'the compound: its four');
  t.notMatch(guardCsv, /S01|S02|S05/);
});

t.test('/api/health/devices: problems since when and for how long, last tested; scoped', async (t) => {
  const h = await json<DevicesHealth>(await station.get('/api/health/devices'));
  t.same(h.devices.map((d) => d.deviceId), SEED_EXPECTED.health.PS1.map((d) => d.deviceId));
  for (const [i, want] of SEED_EXPECTED.health.PS1.entries()) {
    const got = h.devices[i]!;
    t.same(
      got.problems.map((p) => [p.kind, p.since, p.forSeconds]),
      want.problems.map((p) => [p.kind, p.since, p.forSeconds]),
      `${want.deviceId}: problems`,
    );
    t.same([got.lastSeen, got.lastTested], [want.lastSeen, want.lastTested], `${want.deviceId}: last heard, last tested`);
  }
  const c = await json<DevicesHealth>(await guard.get('/api/health/devices'));
  t.same(c.devices.map((d) => d.deviceId), SEED_EXPECTED.health['PS1-C1']);
  const o = await json<DevicesHealth>(await other.get('/api/health/devices'));
  t.same(o.devices.map((d) => d.deviceId), ['S09.keypad']);
});

t.test('tickets: listed by scope, assigned and fixed from the page, audited; another scope\'s fault is not found', async (t) => {
  const open = await json<TicketList>(await station.get('/api/tickets?open=1'));
  t.same(open.tickets.map((x) => nameOf.get(x.faultId)), SEED_EXPECTED.openTickets.PS1);
  t.same((await json<TicketList>(await guard.get('/api/tickets?open=1'))).tickets.map((x) => nameOf.get(x.faultId)), SEED_EXPECTED.openTickets['PS1-C1']);
  const all = await json<TicketList>(await station.get('/api/tickets'));
  t.same(all.tickets.map((x) => nameOf.get(x.faultId)), ['F4', 'F1', 'F7', 'F2', 'F3', 'F5'], 'without open=1: closed ones too, oldest first');
  const f2 = open.tickets.find((x) => x.faultId === seed.faults.F2)!;
  t.match(f2, { kind: 'low-battery', shopId: 'S02', deviceId: 'S02.panic', ticket: { state: 'assigned', assignedTo: 'tech Wang' }, text: { zh: '电池电量低' } });

  // Another station's officer, and the compound's guard for a station shop: not found, nothing changes.
  for (const [who, name] of [
    [other, 'F2'],
    [guard, 'F2'],
    [station, 'F6'],
  ] as const) {
    const r = await who.post(`/api/tickets/${seed.faults[name]}/assign`, { to: 'someone' });
    t.equal(r.status, 404, `${name} is out of scope`);
    t.equal(((await r.json()) as { code: string }).code, 'LF_ERR_NOT_FOUND');
  }
  t.equal((await station.post(`/api/tickets/${seed.faults.F2!.slice(0, 8)}/assign`, { to: 'x' })).status, 404, 'a prefix is not an id here');
  t.equal((await station.post(`/api/tickets/${seed.faults.F2}/assign`, { to: '' })).status, 400, 'an empty name is refused');
  const noCsrf = await fetch(`${base}/api/tickets/${seed.faults.F2}/assign`, { method: 'POST', headers: { cookie: station.cookie, 'content-type': 'application/json' }, body: '{"to":"x"}' });
  t.equal(noCsrf.status, 403, 'without the CSRF token');

  const assigned = await json<Ticket>(await station.post(`/api/tickets/${seed.faults.F2}/assign`, { to: '李师傅 Li' }));
  t.match(assigned.ticket, { state: 'assigned', assignedTo: '李师傅 Li', assignedBy: 'user:duty1' });
  t.equal(assigned.rev, f2.rev + 1);
  // The battery is still low: fixing it needs force.
  const active = await station.post(`/api/tickets/${seed.faults.F2}/fix`, { note: 'new battery' });
  t.equal(active.status, 409);
  t.equal(((await active.json()) as { code: string }).code, 'LF_ERR_FAULT_ACTIVE');
  const fixed = await json<Ticket>(await station.post(`/api/tickets/${seed.faults.F2}/fix`, { note: 'new battery, "CR2032"', force: true }));
  t.match(fixed.ticket, { state: 'fixed', fixedBy: 'user:duty1', note: 'new battery, "CR2032"' });
  // The compound's guard fixes its own shop's fault (S04's silent keypad) — by force, it is still silent.
  const g = await json<Ticket>(await guard.post(`/api/tickets/${seed.faults.F4}/fix`, { note: 'cable', force: true }));
  t.match(g.ticket, { state: 'fixed', fixedBy: 'user:guard1' });
  const closed = await station.post(`/api/tickets/${seed.faults.F3}/assign`, { to: 'x' });
  t.equal(closed.status, 409, 'a closed ticket is not assigned');

  const rows = dbRows<{ actor: string; action: string; detail: string }>("SELECT actor, action, detail FROM audit WHERE action LIKE 'fault-%' AND at >= ? ORDER BY id", new Date(SEED_NOW).toISOString());
  t.same(
    rows.map((r) => [r.actor, r.action, (JSON.parse(r.detail) as { faultId: string }).faultId]),
    [
      ['user:duty1', 'fault-assign', seed.faults.F2],
      ['user:duty1', 'fault-fix', seed.faults.F2],
      ['user:guard1', 'fault-fix', seed.faults.F4],
    ],
    'each change is an audit row naming the officer',
  );
  const stored = dbRows<{ ticket: string; fixed_by: string; fix_note: string }>('SELECT ticket, fixed_by, fix_note FROM faults WHERE id = ?', seed.faults.F2)[0]!;
  t.same(stored, { ticket: 'fixed', fixed_by: 'user:duty1', fix_note: 'new battery, "CR2032"' });
  // Each change went to the consoles as a new rev (outbox rows for the station and, for S04, the compound).
  const outbox = dbRows<{ recipient_id: string }>("SELECT recipient_id FROM outbox WHERE recipient_kind = 'fault' AND alarm_id = ? ORDER BY id DESC LIMIT 2", seed.faults.F4);
  t.same(outbox.map((r) => r.recipient_id).sort(), ['PS1', 'PS1-C1']);
  t.same((await json<TicketList>(await station.get('/api/tickets?open=1'))).tickets.map((x) => nameOf.get(x.faultId)), SEED_EXPECTED.openTickets.PS1, 'fixed by force, the faults still hold: still open');
});
