import t from 'tap';
import { tempDataDir, GatewayProcess, provisionStreet } from './helpers/gateway.js';
import { SimKeypad, SimConsole } from '../simulators/mqtt-devices.js';

t.test('smoke', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const gw = await GatewayProcess.start(t, data);
  const kp = await new SimKeypad(street.shops[0].deviceId, street.shops[0].shopId, street.shops[0].creds).connect(gw.mqttUrl);
  t.teardown(() => kp.close());
  const c = await new SimConsole(street.stationId, street.officer).connect(gw.mqttUrl);
  t.teardown(() => c.close());
  await kp.press('9#');
  const a = await c.waitFor((a) => a.state === 'raised');
  t.equal(a.shopId, street.shops[0].shopId);
});
