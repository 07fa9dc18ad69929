/**
 * `lianfang shop arm|disarm|show` as child processes (gateway/cli/lianfang.ts, gateway/alarm/
 * arming.ts): on a stopped gateway's database and through a running gateway (the admin channel);
 * a schedule in the station's time zone, removed with `none`; every change an audit row naming the
 * CLI user; bad input refused with its code. With the gateway running, a door opening while armed
 * starts an entry delay that `shop disarm` ends, raising nothing.
 */
import t from 'tap';
import { cli, oneShopStreet, query, GatewayProcess } from '../helpers/gateway.js';
import { SimDoorContact } from '../../simulators/mqtt-devices.js';
import { DEFAULT_TIME_ZONE, parseSchedule, scheduledArmed } from '../../gateway/alarm/arming.js';

const json = <T = any>(s: string): T => JSON.parse(s) as T;

t.test('on a stopped gateway: arm, show, list, schedule, none, disarm; bad input refused', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  let r = await cli(['shop', 'arm', 'S01', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { shopId: 'S01', armed: true, schedule: 'none', gatewayRunning: false });
  t.match(r.stderr, /no gateway is running/);

  r = await cli(['shop', 'show', 'S01', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { id: 'S01', armed: true, armedChangedBy: /^cli/, schedule: 'none', timeZone: DEFAULT_TIME_ZONE, entryDelayUntil: null });

  r = await cli(['shop', 'arm', 'S01', '--schedule', '23:00-06:00', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  const expectArmed = scheduledArmed(parseSchedule('23:00-06:00')!, DEFAULT_TIME_ZONE, Date.now());
  t.match(json(r.stdout), { schedule: '23:00-06:00', armed: expectArmed }, 'the schedule rules from now, in Asia/Shanghai');
  t.match(query(data, "SELECT kind, shop_id FROM deadlines WHERE done_at IS NULL"), [{ kind: 'schedule', shop_id: 'S01' }], 'its next change is a stored deadline');

  r = await cli(['shop', 'list', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /ARMED\s+SCHEDULE/);
  t.match(r.stdout, new RegExp(`S01.*${expectArmed}\\s+23:00-06:00`));

  r = await cli(['shop', 'arm', 'S01', '--schedule', 'none', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { schedule: 'none', armed: expectArmed }, 'removing the schedule leaves the state');
  t.same(query(data, 'SELECT count(*) AS n FROM deadlines WHERE done_at IS NULL'), [{ n: 0 }], 'and its deadline');

  r = await cli(['shop', 'disarm', 'S01', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { armed: false });

  for (const bad of ['25:00-06:00', '23:00', 'soon']) {
    r = await cli(['shop', 'arm', 'S01', '--schedule', bad, ...d]);
    t.equal(r.code, 2, `${bad} refused`);
    t.match(r.stderr, /LF_ERR_INVALID_ARGUMENT/);
  }
  r = await cli(['shop', 'arm', 'S99', ...d]);
  t.equal(r.code, 2);
  t.match(r.stderr, /LF_ERR_NOT_FOUND/);

  const audit = query<{ actor: string; action: string }>(data, "SELECT actor, action FROM audit WHERE action IN ('armed', 'disarmed', 'arming-schedule-set', 'arming-schedule-removed') ORDER BY id");
  t.match(audit.map((a) => a.action), ['armed', 'arming-schedule-set', ...(expectArmed ? [] : ['disarmed']), 'arming-schedule-removed', 'disarmed'], 'every change audited');
  t.ok(audit.every((a) => a.actor.startsWith('cli') || a.actor === 'schedule'), 'by the CLI user (or the schedule it set)');
});

t.test('through a running gateway: arm, a door opening starts the entry delay, disarm ends it and nothing is raised', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const added = await cli(['device', 'add', '--shop', 'S01', '--type', 'io-module', '--transport', 'mqtt', '--id', 'S01.door', '--json', ...d]);
  t.equal(added.code, 0, added.stderr);
  const creds = json(added.stdout);
  // An entry delay far longer than the test: only the disarm can end it.
  const gw = await GatewayProcess.start(t, data, { LF_DOORS_ENTRY_DELAY_MS: '3600000' });
  const door = await new SimDoorContact('S01.door', { username: creds.username, password: creds.password }).connect(gw.mqttUrl);
  t.teardown(() => door.close());

  let r = await cli(['shop', 'arm', 'S01', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { armed: true, gatewayRunning: true });
  t.match(r.stderr, /the running gateway has taken the change/);

  await door.setOpen(true);
  r = await cli(['shop', 'show', 'S01', '--json', ...d]);
  t.match(json(r.stdout), { armed: true, entryDelayUntil: String }, 'the entry delay runs');

  r = await cli(['shop', 'disarm', 'S01', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r.stdout), { armed: false, entryDelayUntil: null, gatewayRunning: true }, 'disarmed, the delay ended');
  t.same(query(data, "SELECT count(*) AS n FROM deadlines WHERE kind = 'entry-delay' AND done_at IS NULL"), [{ n: 0 }]);
  t.same(query(data, 'SELECT count(*) AS n FROM alarms'), [{ n: 0 }], 'nothing raised');
  t.match(query(data, "SELECT detail FROM audit WHERE action = 'disarmed'"), [{ detail: /"entryDelayEnded":true/ }]);
});
