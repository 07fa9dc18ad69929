/**
 * gateway/registry/device-status.ts: a device's newest stored event is its last seen, and its
 * open faults are those not cleared or whose ticket is not fixed (as `fault list --open`).
 */
import t from 'tap';
import { openDatabase } from '../../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../../gateway/secrets.js';
import { addDevice, addShop, addStation } from '../../../gateway/registry/registry.js';
import { lastSeenByDevice, newer, openFaultsByDevice } from '../../../gateway/registry/device-status.js';
import { tempDataDir } from '../../helpers/gateway.js';

t.test('last seen and open faults by device', async (t) => {
  const data = tempDataDir(t);
  const db = openDatabase(data);
  t.teardown(() => db.close());
  const key = loadOrCreateGatewayKey(data);
  addStation(db, { id: 'PS1', name: 'x' });
  addShop(db, { id: 'S1', name: 'x', address: 'y', stationId: 'PS1' });
  for (const id of ['A', 'B', 'C']) addDevice(db, key, { shopId: 'S1', type: 'keypad', transport: 'mqtt', id });
  const event = db.prepare("INSERT INTO events (device_id, seq, type, payload, via, received_at) VALUES (?, ?, 'heartbeat', '{}', 'mqtt', ?)");
  event.run('A', 1, '2026-01-01T00:00:00.000Z');
  event.run('B', 1, '2026-01-02T00:00:00.000Z');
  event.run('A', 2, '2026-01-03T00:00:00.000Z');
  t.same([...lastSeenByDevice(db)].sort(), [['A', '2026-01-03T00:00:00.000Z'], ['B', '2026-01-02T00:00:00.000Z']], 'the newest event of each; none for C');

  const fault = db.prepare("INSERT INTO faults (id, kind, device_id, rev, raised_at, cleared_at, ticket, updated_at) VALUES (?, 'tamper', ?, 1, '2026-01-01T00:00:00.000Z', ?, ?, '2026-01-01T00:00:00.000Z')");
  fault.run('f1', 'A', null, 'open'); // raised
  fault.run('f2', 'A', '2026-01-02T00:00:00.000Z', 'assigned'); // cleared, ticket still to fix
  fault.run('f3', 'B', '2026-01-02T00:00:00.000Z', 'fixed'); // over
  fault.run('f4', 'C', null, 'fixed'); // fixed by hand, still raised
  fault.run('f5', null, null, 'open'); // the gateway's own
  t.same([...openFaultsByDevice(db)].sort(), [['A', 2], ['C', 1]]);

  t.equal(newer(null, undefined), null);
  t.equal(newer('2026-01-01T00:00:00.000Z', null), '2026-01-01T00:00:00.000Z');
  t.equal(newer('2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'), '2026-01-02T00:00:00.000Z');
});
