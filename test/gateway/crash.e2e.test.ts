/**
 * Nothing acknowledged is lost. Proved twice: deterministically, with the `after-store` failpoint
 * (the gateway exits right after the commit, before any fan-out and before the PUBACK), and as a
 * user would see it, by SIGKILL right after the keypad's PUBACK. After a restart every neighbour
 * and the console get the alarm, once after de-duplication by alarmId.
 */
import t, { type Test } from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet, nearestShops, query } from '../helpers/gateway.js';
import type { SimConsole, SimKeypad } from '../../simulators/mqtt-devices.js';

async function expectDeliveredOnce(
  t: Test,
  keypads: Map<string, SimKeypad>,
  officer: SimConsole,
  neighbours: string[],
  origin: string,
): Promise<void> {
  const alarm = await officer.waitFor((a) => a.shopId === origin, 30_000);
  await Promise.all(neighbours.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId, 30_000)));
  const alarmIds = new Set(officer.updates.map((a) => a.alarmId));
  t.equal(alarmIds.size, 1, 'the console has exactly one alarm');
  for (const id of neighbours) {
    const got = keypads.get(id)!.alerts.filter((a) => a.state === 'raised');
    t.equal(got.length, 1, `${id} has the alert once after de-duplication`);
    t.equal(got[0].alarmId, alarm.alarmId);
  }
  t.equal(query(data(t), 'SELECT * FROM alarms').length, 1, 'one alarm in the database');
}

const dirs = new WeakMap<object, string>();
const data = (t: object) => dirs.get(t)!;

t.test('failpoint after-store: the committed event raises its alarm after the restart', async (t) => {
  const dir = tempDataDir(t);
  dirs.set(t, dir);
  const street = await provisionStreet(dir, 30);
  const origin = street.shops[15].shopId;
  const neighbours = nearestShops(dir, origin);
  const gw1 = await GatewayProcess.start(t, dir, { LF_FAILPOINT: 'after-store' });
  const { keypads, console: officer } = await connectStreet(t, street, gw1.mqttUrl);

  const acked = keypads.get(origin)!.press('9#');
  await gw1.exited;
  t.equal(gw1.exitCode, 86, 'the gateway exited at the failpoint');
  t.equal(query(dir, "SELECT * FROM events WHERE type = 'keypad'").length, 1, 'the event was committed');
  t.equal(officer.updates.length, 0, 'nothing was fanned out before the exit');

  // Restart: the clients reconnect, the keypad re-sends its unacknowledged 9#.
  // On the same port: the devices reconnect to the address they know.
  await GatewayProcess.start(t, dir, {}, ['--mqtt-port', String(gw1.ports.mqtt)]);
  await acked;
  t.pass('the keypad got its PUBACK after the restart');
  await expectDeliveredOnce(t, keypads, officer, neighbours, origin);
  t.equal(query(dir, "SELECT * FROM events WHERE type = 'keypad'").length, 1, 'the re-sent 9# was recognised as a duplicate');
});

t.test('SIGKILL right after the PUBACK: after the restart every neighbour and the console get the alarm once', async (t) => {
  const dir = tempDataDir(t);
  dirs.set(t, dir);
  const street = await provisionStreet(dir, 30);
  const origin = street.shops[15].shopId;
  const neighbours = nearestShops(dir, origin);
  const gw1 = await GatewayProcess.start(t, dir);
  const { keypads, console: officer } = await connectStreet(t, street, gw1.mqttUrl);

  await keypads.get(origin)!.press('9#');
  gw1.child.kill('SIGKILL');
  await gw1.exited;
  t.equal(gw1.signal, 'SIGKILL');

  await GatewayProcess.start(t, dir, {}, ['--mqtt-port', String(gw1.ports.mqtt)]);
  await expectDeliveredOnce(t, keypads, officer, neighbours, origin);
});
