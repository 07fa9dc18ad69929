/**
 * The demo street provisioned the way an installer does it: a shop sheet and a device sheet in CSV,
 * `lianfang import shops`, `lianfang import devices --credentials`, `lianfang user add` for the
 * duty officer, each a child process of this CLI. The simulated devices then read what an installer
 * hands a device (simulators/street.ts loadStreet): the sheets and the credentials file. Run again,
 * it reuses what exists: the imports change nothing and issue credentials only for new devices.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, existsSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { stringify } from 'csv-stringify/sync';
import { createPrivateFile } from './credentials-file.js';
import { closeSync, writeSync } from 'node:fs';
import {
  STREET_FILES, STREET_LINE, STREET_OFFICER, STREET_STATION, streetDir, streetLineDir, streetPosition, streetShop, type StreetWire,
} from '../../simulators/street.js';

const CLI = fileURLToPath(new URL('./lianfang.js', import.meta.url));

/** Run this CLI as an installer would; resolves with its stdout, rejects with its stderr. */
function lianfang(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args, '--data', dataDir], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`lianfang ${args.slice(0, 2).join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Create (or reuse) a demo street of `shops` shops in dataDir; returns the directory of its files. */
export async function provisionDemoStreet(dataDir: string, shops: number, wire: StreetWire = 'mqtt'): Promise<string> {
  if (wire === 'serial' && shops > 247) throw new Error('one RS-485 line carries at most 247 keypads');
  const dir = streetDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const stations = JSON.parse(await lianfang(dataDir, ['station', 'list', '--json'])) as { id: string }[];
  if (!stations.some((s) => s.id === STREET_STATION)) {
    await lianfang(dataDir, ['station', 'add', '--id', STREET_STATION, '--name', 'Changping Road Police Station 长平路派出所']);
  }

  const layout = Array.from({ length: shops }, (_, i) => ({ i, ...streetShop(i) }));
  const shopSheet = layout.map((s) => {
    const { lat, lon } = streetPosition(s.i);
    return { id: s.shopId, name: s.name, address: s.address, lat, lon, station: STREET_STATION, 'door-plate': s.doorPlate };
  });
  writeFileSync(join(dir, STREET_FILES.shops), stringify(shopSheet, { header: true }));
  await lianfang(dataDir, ['import', 'shops', join(dir, STREET_FILES.shops)]);

  const deviceSheet = layout.flatMap((s) => [
    { shop: s.shopId, type: 'keypad', transport: 'mqtt', id: s.mqttKeypad, port: '', baud: '', bus: '', 'bus-address': '' },
    ...(wire === 'serial'
      ? [{ shop: s.shopId, type: 'keypad', transport: 'serial', id: s.serialKeypad, port: join(streetLineDir(dataDir), 'a'), baud: '19200', bus: STREET_LINE, 'bus-address': String(s.address485) }]
      : []),
  ]);
  writeFileSync(join(dir, STREET_FILES.devices), stringify(deviceSheet, { header: true }));
  // One credentials file per import (never overwritten); the simulator reads them all, newest last.
  const seq = readdirSync(dir).filter((f) => f.startsWith(STREET_FILES.credentialsPrefix)).length;
  const credentials = join(dir, `${STREET_FILES.credentialsPrefix}${String(seq + 1).padStart(4, '0')}.csv`);
  await lianfang(dataDir, ['import', 'devices', join(dir, STREET_FILES.devices), '--credentials', credentials]);

  // The duty officer's login, handed over in a private file (as an installer gives it to the officer).
  const officerFile = join(dir, STREET_FILES.officer);
  if (!existsSync(officerFile)) {
    const users = JSON.parse(await lianfang(dataDir, ['user', 'list', '--json'])) as { name: string }[];
    const name = users.some((u) => u.name === STREET_OFFICER) ? `${STREET_OFFICER}-${randomBytes(3).toString('hex')}` : STREET_OFFICER;
    const password = randomBytes(18).toString('base64url');
    const fd = createPrivateFile(officerFile, 'officer file');
    try {
      writeSync(fd, JSON.stringify({ stationId: STREET_STATION, username: name, password }, null, 2) + '\n');
    } finally {
      closeSync(fd);
    }
    await lianfang(dataDir, ['user', 'add', '--role', 'officer', '--station', STREET_STATION, '--name', name], { LF_PASSWORD: password });
  }
  return dir;
}
