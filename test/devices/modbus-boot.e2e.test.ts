/**
 * The boot of the events the Modbus bridge makes for a module (which has no counter of its own) is
 * a stored counter that only increases: a gateway whose clock is now an hour behind the one that
 * last served the module (an edge box without a battery-backed clock, restarted before NTP) still
 * gives its panics a boot above every one given before, so each raises a new alarm instead of
 * being dropped as a repeat. Two gateways one after the other as child processes, master of a
 * Modbus TCP module simulator on loopback.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { GatewayProcess, query, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, eventually, provisionRow } from '../helpers/wired.js';
import { ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';
import { DB_FILE } from '../../gateway/store/db.js';

const PANIC = 0;

t.test('after a restart with the clock set back, a module\'s panic raises a new alarm with a higher boot', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 3);
  const tcp = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }] }).start();
  t.teardown(() => tcp.close());
  const deviceId = addWiredDevice(data, { shopId: 'W01', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId;

  // The gateway that served this module before ran with its clock an hour ahead: its counter and
  // the module's mark (a panic stored at seq 3) are an hour of seconds above this clock.
  const ahead = Math.floor(Date.now() / 1000) + 3600;
  const db = new Database(join(data, DB_FILE));
  db.prepare("INSERT INTO meta (key, value) VALUES ('modbus_module_boot', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(ahead));
  db.prepare('UPDATE devices SET last_boot = ?, last_seq = 3 WHERE id = ?').run(ahead, deviceId);
  db.close();
  const env = { LF_MODBUS_PANIC_POLL_MS: '50', LF_MODBUS_REQUEST_TIMEOUT_MS: '300', LF_SUPERVISION_FAULT_AFTER_MS: '600000' };
  const panics = () => query<{ boot: number; seq: number }>(data, "SELECT boot, seq FROM events WHERE device_id = ? AND type = 'panic' ORDER BY id", deviceId);

  const alarms: string[] = [];
  for (const run of [1, 2]) {
    const gw = await GatewayProcess.start(t, data, env);
    const officer = await new SimConsole(STATION, OFFICER).connect(gw.mqttUrl);
    await tcp.modules.get(1)!.pulse(PANIC, 50);
    const alarm = await officer.waitFor((a) => a.shopId === 'W01' && a.state === 'raised' && !alarms.includes(a.alarmId), 30_000);
    alarms.push(alarm.alarmId);
    t.pass(`start ${run}: the panic raised a new alarm`);
    await eventually(() => tcp.modules.get(1)!.latchMask === 0, 'the latch cleared after the commit');
    t.same(panics().at(-1), { boot: ahead + run, seq: 1 }, `start ${run}: its boot is the stored counter + 1, above the clock and the mark`);
    t.equal(query<{ value: string }>(data, "SELECT value FROM meta WHERE key = 'modbus_module_boot'")[0]!.value, String(ahead + run), 'and stored for the next start');
    t.equal(Number((await gw.health()).counters?.['events.duplicate'] ?? 0), 0, 'no event dropped as a repeat');
    // Closed, so the next start's panic cannot join it.
    await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
    await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
    await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
    await officer.close();
    await gw.kill('SIGTERM');
  }
  t.equal(panics().length, 2, 'both panics stored');
  t.not(alarms[0], alarms[1], 'two alarms');
});
