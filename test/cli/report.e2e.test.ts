/**
 * `lianfang report false-alarms` as a child process, over alarms raised for real: MQTT keypads press
 * 9# on a running gateway, an officer's console closes each alarm with a disposition (real, false,
 * malicious, test), and the report, read while the gateway still runs, counts them per shop, leaves
 * the test alarm out, flags the shop above the threshold (not the shop with one false alarm of one),
 * follows the configuration, parses as JSON, and refuses a bad --since with its code.
 */
import t from 'tap';
import { cli, tempDataDir, GatewayProcess, provisionStreet, connectStreet } from '../helpers/gateway.js';
import type { Disposition } from '../../firmware-contracts/mqtt/payloads.js';

t.test('false-alarm report over alarms raised through the gateway and closed by an officer', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data, { LF_KEYPAD_ENTRY_TIMEOUT_MS: '400' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const [a, b, c] = street.shops.map((s) => s.shopId);

  const seen = new Set<string>();
  /** 9# on the shop's keypad; the officer acknowledges and closes the new alarm with `disposition`. */
  const raiseAndClose = async (shopId: string, disposition: Disposition | null) => {
    await keypads.get(shopId)!.press('9#');
    const raised = await officer.waitFor((x) => x.shopId === shopId && x.state === 'raised' && !seen.has(x.alarmId));
    seen.add(raised.alarmId);
    if (!disposition) return;
    await officer.act({ alarmId: raised.alarmId, action: 'ack' });
    await officer.act({ alarmId: raised.alarmId, action: 'close', disposition });
    await officer.waitFor((x) => x.alarmId === raised.alarmId && x.state === 'closed');
  };
  // Shop a: 1 real, 3 false, 1 malicious, 1 test (left out) → 3 of 4, flagged.
  for (const d of ['real', 'false', 'false', 'test', 'false', 'malicious'] as const) await raiseAndClose(a, d);
  // Shop b: one false alarm of one → 100 %, but not flagged. Shop c: one still open.
  await raiseAndClose(b, 'false');
  await raiseAndClose(c, null);

  const r = await cli(['report', 'false-alarms', '--since', '1d', '--json', '--data', data]);
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as { since: string; ratePercent: number; minDecided: number; shops: Record<string, unknown>[] };
  t.equal(rep.ratePercent, 50, 'the default threshold');
  t.equal(rep.minDecided, 3);
  t.same(rep.shops.map((s) => s.shopId), [a, b, c], 'flagged first, then by rate');
  t.match(rep.shops[0], { shopId: a, stationId: street.stationId, alarms: 5, real: 1, false: 3, malicious: 1, open: 0, falseAlarmRate: 0.75, flagged: true });
  t.match(rep.shops[1], { shopId: b, alarms: 1, real: 0, false: 1, falseAlarmRate: 1, flagged: false });
  t.match(rep.shops[2], { shopId: c, alarms: 1, open: 1, falseAlarmRate: null, flagged: false });

  // The table, with its Chinese headings; the running gateway was not disturbed.
  const table = await cli(['report', 'false-alarms', '--data', data]);
  t.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.match(lines[0], /SHOP 商户.*ALARMS 报警.*FALSE 误报.*MALICIOUS 恶意.*FALSE RATE 误报率.*FLAG 标记/);
  t.match(lines[1], new RegExp(`^${a}\\b.*\\b5\\s+1\\s+3\\s+1\\s+0\\s+75%\\s+VISIT 走访$`));
  t.match(lines[2], new RegExp(`^${b}\\b.*100%$`), 'one of one: no flag');
  t.match(table.stderr, 'test alarms left out');
  t.equal(gw.exitCode, null, 'the gateway still runs');

  // The threshold comes from the configuration (here its LF_ variable): a minimum of 1 flags b too.
  const loose = await cli(['report', 'false-alarms', '--json', '--data', data], { LF_REPORTS_FALSE_ALARM_MIN_DECIDED: '1' });
  t.equal(loose.code, 0, loose.stderr);
  t.same((JSON.parse(loose.stdout) as typeof rep).shops.filter((s) => s.flagged).map((s) => s.shopId), [b, a], 'both flagged, the higher rate first');
  // A period that starts after every alarm: nothing.
  const last = Math.max(...officer.updates.map((x) => Date.parse(x.raisedAt)));
  const later = await cli(['report', 'false-alarms', '--since', new Date(last + 1).toISOString(), '--json', '--data', data]);
  t.equal(later.code, 0, later.stderr);
  t.same((JSON.parse(later.stdout) as typeof rep).shops, []);

  // A bad --since: the code, the remedy, a non-zero exit, nothing on stdout.
  for (const bad of ['30', 'last week', '2026-02-31']) {
    const e = await cli(['report', 'false-alarms', '--since', bad, '--data', data]);
    t.equal(e.code, 2, `--since ${bad}: exit 2`);
    t.match(e.stderr, /^error LF_ERR_BAD_SINCE: invalid --since/, `--since ${bad}: the code`);
    t.match(e.stderr, /remedy: give a duration/);
    t.equal(e.stdout, '');
  }
});

t.test('report false-alarms --help explains it with an example', async (t) => {
  const r = await cli(['report', 'false-alarms', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Example/);
  t.match(r.stdout, /--since/);
  t.match(r.stdout, /--data/);
  t.match(r.stdout, /--json/);
});
