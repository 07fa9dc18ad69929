/**
 * A door closed while the gateway was down is reported when it starts again (SPEC.md "The first
 * read after a start"), through the composition root: two gateways one after the other as child
 * processes, master of a Modbus TCP simulator on loopback serving a generic-8io module (unit 1)
 * and a door-latch-8io one (unit 2). The second gateway's bridge starts each door from the first
 * one's stored event (gateway/wired-adapter.ts).
 */
import t from 'tap';
import { GatewayProcess, query, sleep, tempDataDir } from '../helpers/gateway.js';
import { addWiredDevice, eventually, provisionRow } from '../helpers/wired.js';
import { ModbusTcpSlaveSim } from '../../simulators/modbus-module.js';

const DOOR = 1;

t.test('a door closed while the gateway was down: its closing stored at the next start, once', async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 2);
  const tcp = await new ModbusTcpSlaveSim({ modules: [{ unitId: 1 }, { unitId: 2, map: 'door-latch-8io' }] }).start();
  t.teardown(() => tcp.close());
  const ids = [
    addWiredDevice(data, { shopId: 'W00', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 1 }).deviceId,
    addWiredDevice(data, { shopId: 'W01', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: tcp.port, busAddress: 2, model: 'door-latch-8io' }).deviceId,
  ];
  const env = { LF_MODBUS_PANIC_POLL_MS: '50', LF_MODBUS_DOOR_POLL_MS: '200', LF_MODBUS_REQUEST_TIMEOUT_MS: '300', LF_SUPERVISION_FAULT_AFTER_MS: '600000', LF_DOORS_HELD_OPEN_MS: '1500' };
  const doors = (id: string) => query<{ payload: string }>(data, "SELECT payload FROM events WHERE device_id = ? AND type = 'door' ORDER BY id", id).map((e) => (JSON.parse(e.payload) as { open: boolean }).open);
  const setDoors = (open: boolean) => {
    for (const unit of [1, 2]) tcp.modules.get(unit)!.setInput(DOOR, open);
  };
  const stored = (n: number) => eventually(() => ids.every((id) => doors(id).length >= n), `${n} door events of each module`);

  const first = await GatewayProcess.start(t, data, env);
  // The generic module's baseline is its first read (the first poll of each module is a full
  // read): open the doors once both modules have been polled several times.
  const before = tcp.stats.requests;
  await eventually(() => tcp.stats.requests >= before + 10, 'both modules polled');
  setDoors(true);
  await stored(1);
  await first.kill('SIGTERM');

  setDoors(false);
  // Down for longer than doors.heldOpenMs since the stored opening: the door-held timer seeded from
  // it falls due at once, and must wait for the first full read, which stores the closing.
  await sleep(1700);
  const secondStart = new Date().toISOString();
  await GatewayProcess.start(t, data, env);
  await stored(2);
  await sleep(500);
  t.same(
    query(data, "SELECT device_id FROM faults WHERE kind = 'door-held' AND raised_at >= ?", secondStart),
    [],
    'no door-held fault for a door that closed while the gateway was down (its seeded timer waited for the first read)',
  );
  // A change after the first read: stored after anything that read reported.
  setDoors(true);
  await stored(3);
  for (const id of ids) t.same(doors(id), [true, false, true], `${id}: the opening, the closing made while down (once), the next opening`);
});
