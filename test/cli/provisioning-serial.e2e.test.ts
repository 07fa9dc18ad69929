/**
 * A serial keypad re-keyed with `device rotate --all --include-wired`: the running gateway polls it
 * with its new MAC key at once, so the keypad still holding the old key is no longer heard, and
 * once the new key is loaded it is. A real gateway process, the keypad simulator on a real pty.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayProcess, cli, oneShopStreet, query, sleep, tempDataDir, until } from '../helpers/gateway.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';

const json = <T = any>(s: string): T => JSON.parse(s) as T;

t.test('a serial keypad re-keyed with --include-wired is polled with its new key only', async (t) => {
  const data = await oneShopStreet(t);
  const d = ['--data', data];
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const add = await cli(['device', 'add', '--shop', 'S01', '--type', 'keypad', '--transport', 'serial', '--port', line.a, '--bus-address', '3', '--id', 'S01.keypad.w', '--json', ...d]);
  t.equal(add.code, 0, add.stderr);
  const oldKey = Buffer.from(json(add.stdout).macKey as string, 'hex');
  const gw = await GatewayProcess.start(t, data, { LF_SERIAL_POLL_PAUSE_MS: '5' });
  t.ok(gw.ports.mqtt > 0);
  const listed = async () => JSON.parse((await cli(['device', 'list', '--json', ...d])).stdout)[0];
  const keypadEvents = () => query<{ n: number }>(data, "SELECT COUNT(*) AS n FROM events WHERE device_id = 'S01.keypad.w' AND type = 'keypad'")[0]!.n;

  let sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: 3, key: oldKey }] });
  await sim.start();
  t.teardown(() => sim.close());
  sim.press(3, '0#');
  await until('the old key works before the rotation', async () => keypadEvents(), (n) => n === 1);
  t.match(await listed(), { online: true, lastSeen: /^\d{4}-/ }, 'device list: the keypad answering is online');

  const out = tempDataDir(t);
  const mqttOnly = await cli(['device', 'rotate', '--all', '--credentials', join(out, 'mqtt.csv'), '--json', ...d]);
  t.equal(json(mqttOnly.stdout).rotated, 0, 'without --include-wired a serial keypad is left alone');
  const file = join(out, 'wired.csv');
  const r = await cli(['device', 'rotate', '--all', '--include-wired', '--credentials', file, ...d]);
  t.equal(r.code, 0, r.stderr);
  const row = readFileSync(file, 'utf8').trim().split('\n')[1]!.split(',');
  t.same(row.slice(0, 3), ['S01', 'S01.keypad.w', 'serial']);
  const newKey = Buffer.from(row[5]!, 'hex');
  t.equal(newKey.length, 32);
  t.notOk(newKey.equals(oldKey));

  // The keypad still holding the old key: its answers, signed with it, fail the gateway's MAC check
  // (POLL itself is not authenticated, so it keeps answering), and what it presses is not stored.
  const wrongMac = (l: { msg: string; deviceId?: unknown }) => l.deviceId === 'S01.keypad.w' && /wrong MAC/.test(l.msg);
  t.notOk(gw.logs.some(wrongMac), 'no wrong MAC before the rotation');
  sim.press(3, '0#');
  await gw.waitForLog(wrongMac, 20_000);
  t.pass('a frame signed with the old key is refused');
  await sleep(1500);
  t.equal(keypadEvents(), 1, 'nothing from the keypad on its old key is stored');
  t.match(await listed(), { online: false }, 'device list: not online until it is heard on its new key');

  // The new key loaded into the keypad (which restarts it: a new boot): it is heard again.
  const { boot } = sim.counter(3);
  const lastAccepted = sim.gatewayCounter(3);
  await sim.close();
  sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: 3, key: newKey, boot: boot + 1, lastAccepted }] });
  await sim.start();
  sim.press(3, '0#');
  await until('the new key works', async () => keypadEvents(), (n) => n === 2);
  t.pass('the keypad on its new key is heard');
  await until('online again', listed, (x) => x.online === true);
});
