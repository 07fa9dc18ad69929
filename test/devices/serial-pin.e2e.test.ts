/**
 * Shop PINs typed on a wired keypad: the gateway as a child process, master of a real pty line
 * (socat) with the serial keypad simulator on the other end. A cancel and a duress PIN clear every
 * neighbour's display and buzzer alike; the console sees cancelled and duress; the keys after `*`
 * are stored masked and the PINs are in neither the database nor the log.
 */
import t from 'tap';
import { GatewayProcess, cli, nearestShops, query, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';

const PIN = '24680864';
const DURESS = '13577531';

t.test('cancel and duress PINs on a serial keypad end the alarm at every wired neighbour alike; the console tells them apart', async (t) => {
  const data = tempDataDir(t);
  const shops = await provisionRow(data, 13);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const keys = new Map<number, Buffer>();
  for (const [i, s] of shops.entries()) {
    const { key } = addWiredDevice(data, { shopId: s.shopId, type: 'keypad', transport: 'serial', port: line.a, busAddress: i + 1 });
    keys.set(i + 1, key!);
  }
  const addressOf = (shopId: string) => shops.findIndex((s) => s.shopId === shopId) + 1;
  const origin = shops[6]!;
  const r = await cli(['shop', 'pin', origin.shopId, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS });
  t.equal(r.code, 0, r.stderr);
  const gw = await GatewayProcess.start(t, data, { LF_SERIAL_POLL_PAUSE_MS: '5', LF_ESCALATION_RING_INTERVAL_MS: '3600000' });
  const sim = new SerialKeypadSim({ path: line.b, keypads: [...keys].map(([address, key]) => ({ address, key })) });
  await sim.start();
  t.teardown(() => sim.close());
  const officer = await new SimConsole(STATION, OFFICER).connect(gw.mqttUrl);
  t.teardown(() => officer.close());

  const addr = addressOf(origin.shopId);
  const neighbours = nearestShops(data, origin.shopId).map(addressOf);
  const alerting = () => neighbours.every((a) => sim.state(a).display[0] === `报警 ${origin.doorPlate}` && sim.state(a).buzzer.on);
  const quiet = () => neighbours.every((a) => sim.state(a).display[0] === '' && !sim.state(a).buzzer.on);
  const seen = new Set<string>();
  const raise = async () => {
    sim.press(addr, '9#');
    const a = await officer.waitFor((x) => x.shopId === origin.shopId && x.rev === 1 && !seen.has(x.alarmId), 30_000);
    seen.add(a.alarmId);
    await sim.waitFor(alerting, 60_000);
    return a.alarmId;
  };

  const first = await raise();
  sim.press(addr, `*${PIN}#`);
  await sim.waitFor(quiet, 60_000);
  t.pass('cancel: every neighbour display cleared, buzzer off');
  t.match(await officer.waitFor((x) => x.alarmId === first && x.state === 'cancelled', 30_000), { duress: false });

  const second = await raise();
  t.not(second, first, 'a 9# after the cancel raises a new alarm');
  sim.press(addr, `*${DURESS}#`);
  await sim.waitFor(quiet, 60_000);
  t.pass('duress: every neighbour display cleared, buzzer off, as for the cancel');
  t.match(await officer.waitFor((x) => x.alarmId === second && x.duress === true, 30_000), { state: 'raised' });

  const third = await raise();
  t.not(third, second, 'a 9# after the duress raises a new alarm');

  const stored = query<{ payload: string }>(data, "SELECT payload FROM events WHERE via = 'serial' AND type = 'keypad' ORDER BY id").map((e) => JSON.parse(e.payload).keys as string);
  t.ok(stored.includes('*xxxxxxxx#'), 'the PIN entries are stored masked');
  const tables = query<{ name: string }>(data, "SELECT name FROM sqlite_master WHERE type = 'table'");
  const dump = tables.map(({ name }) => JSON.stringify(query(data, `SELECT * FROM "${name}"`), (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v))).join('\n');
  t.notOk(dump.includes(PIN) || dump.includes(DURESS), 'no PIN in clear in any table');
  await gw.kill();
  const log = JSON.stringify(gw.logs);
  t.notOk(log.includes(PIN) || log.includes(DURESS), "no PIN in clear in the gateway's log");
});
