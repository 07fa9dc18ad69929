/**
 * The demo street over MQTT (`lianfang start --street N`): provisioned through the CLI's import
 * with a credentials file the simulator reads; its keypads' events pass the contract (a `boot`
 * within u32), so its 9# raise alarms, run after run on the same data directory. A simulator is a
 * device: it imports only the contracts and its wire's library, never the gateway.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayProcess, ROOT, tempDataDir, query } from '../helpers/gateway.js';
import { parseCredentials } from '../../firmware-contracts/provisioning/credentials.js';

t.test("the demo street's 9# raise alarms, and again after a restart", async (t) => {
  const data = tempDataDir(t);
  const dir = join(data, 'demo-street');
  for (const run of [1, 2]) {
    const gw = await GatewayProcess.start(t, data, {}, ['--street', '12']);
    const raised = await gw.waitForLog((l) => l.msg === 'alarm raised', 30_000);
    t.ok(raised.alarmId, `run ${run}: an alarm raised from the street's keypads`);
    const h = await gw.health();
    t.notOk(h.counters['refused.LF_ERR_BAD_PAYLOAD'], `run ${run}: no event refused by the schema`);
    await gw.kill('SIGTERM');
  }
  const files = readdirSync(dir).filter((f) => f.startsWith('credentials-')).sort();
  t.ok(files.length >= 1, 'the import wrote a credentials file');
  for (const f of files) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`);
  const issued = files.flatMap((f) => parseCredentials(readFileSync(join(dir, f), 'utf8')));
  t.equal(issued.length, 12, 'credentials issued once per keypad: the second run reused the street');
  t.equal(query<{ n: number }>(data, "SELECT count(*) AS n FROM devices WHERE id LIKE 'DEMO-S%'")[0]!.n, 12, 'and created no device twice');
  t.equal(statSync(join(dir, 'officer.json')).mode & 0o777, 0o600, "the officer's login is private");
});

t.test('simulators import no gateway code', async (t) => {
  const src = join(ROOT, 'simulators');
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  t.ok(files.length > 3);
  for (const f of files) {
    const imports = [...readFileSync(join(src, f), 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    t.same(imports.filter((i) => /(^|\/)gateway\//.test(i) || i.includes('/broker/')), [], `${f} imports only contracts, simulators and libraries`);
  }
});
