/**
 * Embedded Node-RED's files in the data directory (docs/node-red.md "Backups"): `<data>/node-red/`
 * holds the flows and their credentials (encrypted with a secret derived from the gateway key, so
 * a backup's flows are only of use with the key that goes with it). `lianfang backup` carries these
 * two files inside the one backup file; `lianfang restore` puts them back, keeping the current ones
 * aside as it does the database.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const NODE_RED_DIR = 'node-red';
export const FLOW_FILES = ['flows.json', 'flows_cred.json'] as const;
/** The backup's meta keys: `backup.node-red/flows.json`, … */
export const FLOW_META_PREFIX = 'backup.node-red/';

/** The flow files there are, as [name, text]. */
export function readFlowFiles(dataDir: string): [string, string][] {
  return FLOW_FILES.flatMap((name) => {
    const path = join(dataDir, NODE_RED_DIR, name);
    return existsSync(path) ? [[name, readFileSync(path, 'utf8')] as [string, string]] : [];
  });
}

/** Write the flow files back (mode 0600); each current one is renamed `<name>.before-restore-<stamp>`. Returns the names written. */
export function writeFlowFiles(dataDir: string, files: readonly [string, string][], stamp: string): string[] {
  const dir = join(dataDir, NODE_RED_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  for (const [name, text] of files) {
    if (!(FLOW_FILES as readonly string[]).includes(name)) continue;
    const path = join(dir, name);
    if (existsSync(path)) renameSync(path, `${path}.before-restore-${stamp}`);
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
    written.push(name);
  }
  return written;
}
