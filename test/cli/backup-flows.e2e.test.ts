/**
 * Node-RED's flows in `lianfang backup` and `lianfang restore`: a flow an installer deployed (with
 * an encrypted credential) is carried in the one backup file and, restored with the gateway key
 * into a fresh data directory, runs there again with its credential readable; the current flow
 * files are kept aside on a restore over them.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempDataDir } from '../helpers/gateway.js';
import { INSTALLER, adminGet, deploy, provisionNodeRedStreet, startWithNodeRed, token } from '../helpers/node-red.js';

const TAB = 'Kept in the backup';
const NODE = 'lf80000000000002';

t.test('the flows and their credentials travel in the backup and run after a restore', async (t) => {
  const { data } = await provisionNodeRedStreet(t, 1);
  const out = tempDataDir(t);
  let gw = await startWithNodeRed(t, data);
  const flows = [
    { id: 'lf80000000000001', type: 'tab', label: TAB },
    { id: NODE, type: 'http request', z: 'lf80000000000001', method: 'GET', url: 'http://127.0.0.1:9/', authType: 'basic', credentials: { user: 'city', password: 'city-secret-4242' }, wires: [[]] },
  ];
  const first = await token(gw, INSTALLER);
  t.equal((await deploy(gw, first, flows)).status, 204, 'deployed');
  // What the editor asks to show a node's credentials (the type dashed).
  const creds = async (bearer: string) => (await (await adminGet(gw, `/credentials/http-request/${NODE}`, bearer)).json()) as { user?: string; has_password?: boolean };
  t.match(await creds(first), { user: 'city', has_password: true }, 'the credential was taken');
  await gw.kill('SIGTERM');

  const file = join(out, 'backup.db');
  const keyFile = join(out, 'gateway.key');
  const b = await cli(['backup', file, '--key-to', keyFile, '--data', data, '--json']);
  t.equal(b.code, 0, b.stderr);
  t.same(JSON.parse(b.stdout).flowFiles, ['flows.json', 'flows_cred.json'], 'both flow files are in the backup');
  t.notMatch(readFileSync(file).toString('latin1'), 'city-secret-4242', 'the credential is in it encrypted only');

  const fresh = tempDataDir(t);
  const r = await cli(['restore', file, '--key', keyFile, '--data', fresh, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout).flowFiles, ['flows.json', 'flows_cred.json'], 'and restored');
  t.equal(statSync(join(fresh, 'node-red', 'flows_cred.json')).mode & 0o777, 0o600, 'private');

  gw = await startWithNodeRed(t, fresh);
  const bearer = await token(gw, INSTALLER);
  const got = (await (await adminGet(gw, '/flows', bearer)).json()) as { id: string; label?: string }[];
  t.ok(got.some((n) => n.label === TAB), 'the restored gateway runs the flow');
  t.match(await creds(bearer), { user: 'city', has_password: true }, 'its credential decrypts with the restored key');
  await gw.kill('SIGTERM');

  const again = await cli(['restore', file, '--data', fresh]);
  t.equal(again.code, 0, again.stderr);
  t.ok(readdirSync(join(fresh, 'node-red')).some((f) => f.startsWith('flows.json.before-restore-')), 'the current flows were kept aside');
  t.ok(existsSync(join(fresh, 'node-red', 'flows.json')));
});
