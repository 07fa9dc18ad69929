/**
 * The console page's logic that needs no browser: the queue's order, what sounds, and the
 * gateway's refusals read back and shown in Chinese with the same values (the holder of a taken
 * alarm is what the page offers to take it over from).
 */
import t from 'tap';
import { queueAlarms, queueFaults, soundFor, alarmPriority } from '../../../gateway/console/web/live.js';
import { errorArgs, errorText, fmtDuration, fmtTime, translator } from '../../../gateway/console/web/util.js';
import type { ConsoleAlarm, ConsoleFault } from '../../../gateway/console/contract.js';

function alarm(id: string, over: Partial<ConsoleAlarm>): ConsoleAlarm {
  return {
    alarmId: id, rev: 1, shopId: 'S1', shopName: 'shop', address: 'addr', stationId: 'PS1', state: 'raised', kind: 'panic',
    raisedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', overdue: false, duress: false, test: false,
    takenBy: null, disposition: null, patrol: null, ring: 1, shopsAlerted: 0, replies: { coming: 0, seen: 0, cannot: 0 }, gatewayId: 'gw',
    ...over,
  };
}

t.test('the queue: duress, panic and intrusion, help; oldest first within each; closed and test alarms left out', async (t) => {
  const m = new Map<string, ConsoleAlarm>();
  for (const a of [
    alarm('help-old', { kind: 'help', raisedAt: '2026-01-01T00:00:00.000Z' }),
    alarm('panic-new', { kind: 'panic', raisedAt: '2026-01-01T00:05:00.000Z' }),
    alarm('intrusion-old', { kind: 'intrusion', raisedAt: '2026-01-01T00:01:00.000Z' }),
    alarm('duress-new', { kind: 'panic', duress: true, raisedAt: '2026-01-01T00:09:00.000Z' }),
    alarm('closed', { state: 'closed' }),
    alarm('test', { test: true }),
    alarm('cancelled', { kind: 'help', state: 'cancelled', raisedAt: '2026-01-01T00:02:00.000Z' }),
  ])
    m.set(a.alarmId, a);
  t.same(
    queueAlarms(m).map((a) => a.alarmId),
    ['duress-new', 'intrusion-old', 'panic-new', 'help-old', 'cancelled'],
  );
  t.equal(alarmPriority(alarm('x', { kind: 'help', priority: 1 })), 1, "the gateway's priority wins when given");
});

t.test('faults: open ones oldest first; a cleared fault with a fixed ticket leaves the queue', async (t) => {
  const f = (id: string, raisedAt: string, state: 'raised' | 'cleared', ticket: 'open' | 'fixed'): ConsoleFault => ({
    faultId: id, rev: 1, fault: 'offline', state, at: raisedAt, raisedAt, updatedAt: raisedAt, ticket: { state: ticket }, text: { en: 'e', zh: 'z' },
  });
  const m = new Map([f('b', '2026-01-01T00:02:00Z', 'raised', 'open'), f('a', '2026-01-01T00:01:00Z', 'cleared', 'open'), f('c', '2026-01-01T00:00:00Z', 'cleared', 'fixed')].map((x) => [x.faultId, x]));
  t.same(queueFaults(m).map((x) => x.faultId), ['a', 'b']);
});

t.test('what sounds: a lost feed, a duress alarm nobody took, an alarm nobody took, else nothing', async (t) => {
  t.equal(soundFor(false, []), 'lost');
  t.equal(soundFor(true, []), '');
  t.equal(soundFor(true, [alarm('a', {})]), 'alarm');
  t.equal(soundFor(true, [alarm('a', {}), alarm('d', { duress: true })]), 'duress');
  t.equal(soundFor(true, [alarm('a', { takenBy: 'duty1' })]), '', 'taken: silent');
  t.equal(soundFor(true, [alarm('a', { state: 'acknowledged', takenBy: 'duty1' }), alarm('c', { state: 'cancelled' })]), '', 'acknowledged or cancelled: silent');
  t.equal(soundFor(true, [alarm('d', { duress: true, takenBy: 'duty1' }), alarm('a', {})]), 'alarm', 'a taken duress alarm no longer sounds as duress');
});

t.test("a refusal's values are read back from the English message and shown in Chinese", async (t) => {
  t.same(errorArgs('LF_ERR_TAKEN', 'alarm A1 is held by guard1'), ['A1', 'guard1']);
  t.equal(errorText('LF_ERR_TAKEN', 'alarm A1 is held by guard1', 'zh'), '报警 A1 已由 guard1 接手');
  t.equal(errorText('LF_ERR_TAKEN', 'alarm A1 is held by guard1', 'en'), 'alarm A1 is held by guard1');
  t.equal(
    errorText('LF_ERR_BAD_TRANSITION', 'action ack is not allowed on alarm A1 in state dispatched', 'zh'),
    '报警 A1 处于 dispatched 状态，不允许操作 ack',
    'positional placeholders',
  );
  t.equal(errorText('LF_ERR_NOPE', 'something', 'zh'), 'something', 'an unknown code keeps its message');
  t.equal(errorArgs('LF_ERR_TAKEN', 'unrelated text'), null);
});

t.test("times in the scope's zone, durations in the page's language", async (t) => {
  t.equal(fmtTime('2026-01-01T00:00:05.000Z', 'Asia/Shanghai', 'zh', false), '08:00:05');
  t.equal(fmtTime('2026-01-01T00:00:05.000Z', 'UTC', 'en', false), '00:00:05');
  t.equal(fmtDuration(3725, translator('en')), '1h 2m');
  t.equal(fmtDuration(65, translator('zh')), '1分 5秒');
  t.equal(fmtDuration(7, translator('en')), '7s');
});
