/**
 * The demo street over MQTT (`lianfang start --street N`): its keypads' events pass the contract
 * (a `boot` within u32), so its 9# raise alarms, run after run on the same data directory.
 */
import t from 'tap';
import { GatewayProcess, tempDataDir } from '../helpers/gateway.js';

t.test("the demo street's 9# raise alarms, and again after a restart", async (t) => {
  const data = tempDataDir(t);
  for (const run of [1, 2]) {
    const gw = await GatewayProcess.start(t, data, {}, ['--street', '12']);
    const raised = await gw.waitForLog((l) => l.msg === 'alarm raised', 30_000);
    t.ok(raised.alarmId, `run ${run}: an alarm raised from the street's keypads`);
    const h = await gw.health();
    t.notOk(h.counters['refused.LF_ERR_BAD_PAYLOAD'], `run ${run}: no event refused by the schema`);
    await gw.kill('SIGTERM');
  }
});
