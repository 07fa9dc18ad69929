/**
 * The demo street as a test fixture: created straight in the database through the registry (fast:
 * most tests need a street, not an installer). The demo itself is provisioned through the CLI's
 * import (gateway/cli/demo-street.ts); both lay the street out with simulators/street.ts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { addDevice, addShop, addStation, addUser, getShop, getStation, getUser, getDevice } from '../../gateway/registry/registry.js';
import { adminRequest } from '../../gateway/admin/channel.js';
import { STREET_LINE, STREET_OFFICER, STREET_STATION, streetLineDir, streetPosition, streetShop, type StreetFile, type StreetShop, type StreetWire } from '../../simulators/street.js';

/** What the fixture issued, kept so that a second call on the same directory reuses it. */
const FIXTURE_FILE = 'street-fixture.json';

/** Create (or reuse) the street in `dataDir`. Tells a running gateway to reload. */
export async function provisionStreet(dataDir: string, shops: number, wire: StreetWire = 'mqtt'): Promise<StreetFile> {
  const file = join(dataDir, FIXTURE_FILE);
  let saved: StreetFile | null = null;
  if (existsSync(file)) saved = JSON.parse(readFileSync(file, 'utf8')) as StreetFile;
  const key = loadOrCreateGatewayKey(dataDir);
  const db = openDatabase(dataDir);
  try {
    if (!getStation(db, STREET_STATION)) addStation(db, { id: STREET_STATION, name: 'Changping Road Police Station 长平路派出所' });
    let officer = saved?.officer;
    if (!officer || !getUser(db, officer.username)) {
      const password = randomBytes(18).toString('base64url');
      const name = getUser(db, STREET_OFFICER) ? `${STREET_OFFICER}-${randomBytes(3).toString('hex')}` : STREET_OFFICER;
      await addUser(db, { name, role: 'officer', stationId: STREET_STATION, password });
      officer = { username: name, password };
    }
    const byShop = new Map((saved?.shops ?? []).map((s) => [s.shopId, s]));
    const out: StreetShop[] = [];
    for (let i = 0; i < shops; i++) {
      const layout = streetShop(i);
      const shopId = layout.shopId;
      if (!getShop(db, shopId)) {
        addShop(db, { id: shopId, name: layout.name, address: layout.address, ...streetPosition(i), stationId: STREET_STATION, doorPlate: layout.doorPlate });
      }
      const alive = (id: string | undefined) => id !== undefined && getDevice(db, id) !== undefined && !getDevice(db, id)!.revokedAt;
      let shop = byShop.get(shopId);
      if (!shop || !alive(shop.deviceId)) {
        const issued = addDevice(db, key, { shopId, type: 'keypad', transport: 'mqtt' });
        shop = { shopId, name: getShop(db, shopId)!.name, deviceId: issued.device.id, creds: { username: issued.username!, password: issued.password! } };
      }
      if (wire === 'serial' && !alive(shop.serial?.deviceId)) {
        const address = layout.address485;
        const issued = addDevice(db, key, { shopId, type: 'keypad', transport: 'serial', busId: STREET_LINE, port: join(streetLineDir(dataDir), 'a'), busAddress: address, baud: 19200 });
        shop = { ...shop, serial: { deviceId: issued.device.id, address, key: issued.macKey! } };
      }
      out.push(shop);
    }
    const street: StreetFile = { stationId: STREET_STATION, officer, shops: out };
    writeFileSync(file, JSON.stringify(street, null, 2) + '\n', { mode: 0o600 });
    return street;
  } finally {
    db.close();
    await adminRequest(dataDir, { op: 'reload' }).catch(() => null);
  }
}
