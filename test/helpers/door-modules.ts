/**
 * Two shops' door contacts on Modbus, for the tests that drive the Modbus bus driver directly on a
 * ManualClock through the gateway's one ingest: shop W00's door-latch-8io module (unit 1) and W01's
 * generic-8io module (unit 2), registered on one Modbus TCP bus, with the engine, their bridge
 * records (gateway/wired-adapter.ts wiredDevice) and their stored door events.
 */
import type { Test } from 'tap';
import { ManualClock } from '../../gateway/clock.js';
import { wiredDevice } from '../../gateway/wired-adapter.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import type { WiredDevice } from '../../devices/bridge.js';
import { EngineHarness } from './engine.js';
import { fakes } from './bridge.js';
import { query, tempDataDir } from './gateway.js';
import { addWiredDevice, provisionRow } from './wired.js';

export const LATCHING = 1;
export const GENERIC = 2;
export const DOOR = 1;
export const DOOR_BIT = 1 << DOOR;
export const DOOR_POLL_MS = 1000;

export async function doorModuleShops(t: Test) {
  const data = tempDataDir(t);
  await provisionRow(data, 2);
  const ids = {
    latching: addWiredDevice(data, { shopId: 'W00', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: LATCHING, model: 'door-latch-8io' }).deviceId,
    generic: addWiredDevice(data, { shopId: 'W01', type: 'io-module', transport: 'modbus-tcp', host: '127.0.0.1', tcpPort: 1502, busAddress: GENERIC }).deviceId,
  };
  const clock = new ManualClock();
  const engine = new EngineHarness(t, data, clock);
  const key = loadOrCreateGatewayKey(data);
  return {
    data,
    ids,
    clock,
    engine,
    /** The bridge's fakes, polling fast (100 ms) and full (DOOR_POLL_MS), its ingest the engine's unless replaced. */
    fakes() {
      const f = fakes(clock, { overrides: { modbus: { panicPollMs: 100, doorPollMs: DOOR_POLL_MS, requestTimeoutMs: 2000 } } });
      f.ctx.ingest = (deviceId, event, via) => engine.deviceIngest(engine.registry.devices.get(deviceId)!, event, via);
      return f;
    },
    /** Fresh bridge records of both modules, as the adapter makes them at a (re)start. */
    records: (): WiredDevice[] => [ids.latching, ids.generic].map((id) => wiredDevice(engine.registry.devices.get(id)!, key, engine.db)),
    /** A module's stored door events, in order. */
    doors: (id: string) =>
      query<{ seq: number; payload: string }>(data, "SELECT seq, payload FROM events WHERE device_id = ? AND type = 'door' ORDER BY id", id).map((e) => ({
        seq: e.seq,
        open: (JSON.parse(e.payload) as { open: boolean }).open,
      })),
  };
}
