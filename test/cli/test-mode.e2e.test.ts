/**
 * `lianfang test` as a child process without a gateway (gateway/cli/lianfang.ts,
 * gateway/alarm/test-mode.ts): the arguments are checked at the boundary (exactly one of --shop or
 * --device, registered, a whole duration in range) with a coded error and nothing written; start,
 * status and stop write and read the database, with audit rows; every subcommand has an example.
 */
import t from 'tap';
import { cli, oneShopStreet, query } from '../helpers/gateway.js';


t.test('bad arguments are refused with a coded error and write nothing', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  for (const [args, code] of [
    [['test', 'start', ...d], /LF_ERR_INVALID_ARGUMENT/],
    [['test', 'start', '--shop', 'S01', '--device', 'X', ...d], /LF_ERR_INVALID_ARGUMENT/],
    [['test', 'start', '--shop', 'S99', ...d], /LF_ERR_NOT_FOUND/],
    [['test', 'start', '--device', 'S01.keypad.nope', ...d], /LF_ERR_NOT_FOUND/],
    [['test', 'start', '--shop', 'S01', '--minutes', '0', ...d], /--minutes/],
    [['test', 'start', '--shop', 'S01', '--minutes', '1441', ...d], /--minutes/],
    [['test', 'start', '--shop', 'S01', '--seconds', '1.5', ...d], /--seconds/],
    [['test', 'start', '--shop', 'S01', '--seconds', '5', '--minutes', '5', ...d], /LF_ERR_INVALID_ARGUMENT/],
    [['test', 'stop', ...d], /LF_ERR_INVALID_ARGUMENT/],
  ] as const) {
    const r = await cli([...args]);
    t.not(r.code, 0, args.join(' '));
    t.match(r.stderr, code, `${args.join(' ')}: ${code}`);
  }
  t.same(query(data, 'SELECT count(*) AS n FROM test_modes'), [{ n: 0 }], 'nothing written');
});

t.test('start, status and stop on the database; audit rows', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const before = Date.now();
  const s = await cli(['test', 'start', '--shop', 'S01', '--minutes', '45', ...d, '--json']);
  t.equal(s.code, 0, s.stderr);
  const row = JSON.parse(s.stdout);
  t.match(row, { scope: 'shop', targetId: 'S01', gatewayRunning: false });
  t.ok(row.untilMs >= before + 45 * 60_000 && row.untilMs <= Date.now() + 45 * 60_000, '45 minutes from now');
  t.match(s.stderr, /no gateway is running/);
  const status = JSON.parse((await cli(['test', 'status', ...d, '--json'])).stdout);
  t.match(status, [{ scope: 'shop', targetId: 'S01', until: new Date(row.untilMs).toISOString(), alarms: [] }]);
  t.same(query(data, "SELECT kind, due_at AS dueAt FROM deadlines WHERE done_at IS NULL"), [{ kind: 'test-expiry', dueAt: row.untilMs }], 'the expiry is a deadline row');
  const stop = await cli(['test', 'stop', '--shop', 'S01', ...d]);
  t.equal(stop.code, 0, stop.stderr);
  t.match(stop.stdout, /test mode ended/);
  t.match((await cli(['test', 'stop', '--shop', 'S01', ...d])).stdout, /was not in test mode/);
  t.same(JSON.parse((await cli(['test', 'status', ...d, '--json'])).stdout), []);
  t.same(query(data, 'SELECT count(*) AS n FROM deadlines WHERE done_at IS NULL'), [{ n: 0 }], 'its deadline is done');
  t.same(query(data, "SELECT action FROM audit WHERE action LIKE 'test-%' ORDER BY id").map((r) => (r as { action: string }).action), ['test-start', 'test-stopped']);
});

t.test('every test subcommand has an example and takes --data', async (t) => {
  for (const c of ['start', 'stop', 'status']) {
    const r = await cli(['test', c, '--help']);
    t.equal(r.code, 0);
    t.match(r.stdout, /Example/, `test ${c}`);
    t.match(r.stdout, /--data/);
  }
});
