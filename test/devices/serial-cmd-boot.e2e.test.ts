/**
 * The serial bridge's own command counter (boot, seq of every gateway frame: ACK, DISPLAY, BUZZER,
 * LED) only increases across gateway restarts, even when the clock went back: an edge box without
 * a battery-backed clock that served its keypads with the clock an hour ahead, then restarted
 * before NTP. The keypad (simulators/serial-keypad.ts) ignores gateway frames whose (boot, seq) is
 * lower than the last it accepted (firmware-contracts/serial/SPEC.md) and counts them as replays;
 * with a boot taken from the clock alone its events would never be acknowledged again.
 * Two gateways one after the other over a real pty line, as child processes.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { GatewayProcess, query, tempDataDir } from '../helpers/gateway.js';
import { addWiredDevice, provisionRow } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';
import { DB_FILE } from '../../gateway/store/db.js';

const ADDR = 3;

t.test('a keypad served by a gateway whose clock was ahead still takes the frames of the next starts', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 3);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const { deviceId, key } = addWiredDevice(data, { shopId: 'W01', type: 'keypad', transport: 'serial', port: line.a, busAddress: ADDR });

  // The gateway that served this keypad before ran with its clock an hour ahead, and stored its
  // command boot; the keypad keeps the last (boot, seq) it accepted from it.
  const ahead = Math.floor(Date.now() / 1000) + 3600;
  const db = new Database(join(data, DB_FILE));
  db.prepare("INSERT INTO meta (key, value) VALUES ('serial_command_boot', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(ahead));
  db.close();
  const sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: ADDR, key: key!, boot: 4, lastAccepted: { boot: ahead, seq: 50 } }] });
  await sim.start();
  t.teardown(() => sim.close());
  const storedBoot = () => Number(query<{ value: string }>(data, "SELECT value FROM meta WHERE key = 'serial_command_boot'")[0]!.value);
  const env = { LF_SERIAL_POLL_PAUSE_MS: '5', LF_SUPERVISION_FAULT_AFTER_MS: '600000' };

  let events = 0;
  for (const run of [1, 2]) {
    // The second start follows the first at once (well within the same second of the hour ahead).
    const gw = await GatewayProcess.start(t, data, env);
    sim.heartbeat(ADDR);
    events++;
    await sim.waitFor(() => sim.pending(ADDR) === 0, 30_000);
    t.pass(`start ${run}: the keypad took the gateway's ACK (its event is no longer queued)`);
    t.equal(sim.stats.replays, 0, `start ${run}: no gateway frame taken for a replay`);
    t.equal(sim.gatewayCounter(ADDR).boot, ahead + run, `start ${run}: the command boot is the stored one + 1, above the clock`);
    t.equal(storedBoot(), ahead + run, `start ${run}: and stored for the next start`);
    t.equal(query(data, 'SELECT count(*) AS n FROM events WHERE device_id = ?', deviceId)[0]!.n, events, 'its events are stored');
    await gw.kill('SIGTERM');
  }
});
