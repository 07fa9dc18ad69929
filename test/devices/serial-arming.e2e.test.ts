/**
 * Arming from a wired keypad (issue 9 "Door contacts"): the gateway as a child process, master of a
 * real pty line with the serial keypad simulator on the other end. `*` PIN `*1#` arms the shop and
 * the keypad's LCD shows 已布防 / Armed; `*` PIN `#` disarms it and shows 已撤防 / Disarmed, as an
 * MQTT keypad is told (test/gateway/doors.e2e.test.ts); the entries are stored masked.
 */
import t from 'tap';
import { GatewayProcess, cli, query, tempDataDir } from '../helpers/gateway.js';
import { addWiredDevice, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';

const PIN = '24680864';
const DURESS = '13577531';

t.test('a wired keypad arms and disarms its shop and shows it on its display', async (t) => {
  const data = tempDataDir(t);
  const [shop] = await provisionRow(data, 1);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const { key } = addWiredDevice(data, { shopId: shop!.shopId, type: 'keypad', transport: 'serial', port: line.a, busAddress: 1 });
  const r = await cli(['shop', 'pin', shop!.shopId, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS });
  t.equal(r.code, 0, r.stderr);
  const gw = await GatewayProcess.start(t, data, { LF_SERIAL_POLL_PAUSE_MS: '5' });
  const sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: 1, key: key! }] });
  await sim.start();
  t.teardown(() => sim.close());
  const armed = async () => JSON.parse((await cli(['shop', 'show', shop!.shopId, '--json', '--data', data])).stdout).armed as boolean;

  sim.press(1, `*${PIN}*1#`);
  await sim.waitFor(() => sim.state(1).display[0] === '已布防' && sim.state(1).display[1] === 'Armed', 60_000);
  t.pass('the LCD shows 已布防 / Armed');
  t.equal(await armed(), true, 'the shop is armed');

  sim.press(1, `*${PIN}#`);
  await sim.waitFor(() => sim.state(1).display[0] === '已撤防' && sim.state(1).display[1] === 'Disarmed', 60_000);
  t.pass('the LCD shows 已撤防 / Disarmed');
  t.equal(await armed(), false, 'the shop is disarmed');
  t.match(query(data, "SELECT actor, action FROM audit WHERE action IN ('armed', 'disarmed') ORDER BY id"), [{ action: 'armed', actor: /^device:/ }, { action: 'disarmed', actor: /^device:/ }], 'audited with the keypad as who');
  const stored = query<{ payload: string }>(data, "SELECT payload FROM events WHERE via = 'serial' AND type = 'keypad' ORDER BY id").map((e) => JSON.parse(e.payload).keys as string).join('');
  t.notOk(stored.includes(PIN), 'no PIN in clear in the stored keys');
  await gw.kill();
  t.notOk(JSON.stringify(gw.logs).includes(PIN), "nor in the gateway's log");
});
