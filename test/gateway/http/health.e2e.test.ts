/**
 * `/health` (gateway/http/http-server.ts) tells an anonymous caller only that the gateway is up and
 * its version: no open alarms (a robber could check whether the 9# went through), no counters, no
 * faults, no device ids, no gateway id. Callers in `http.healthDetailFrom` (loopback by default)
 * and the admin socket's `health` op get the full view. The gateway listens on 127.0.0.1 and the
 * anonymous caller connects from 127.0.0.2, another loopback address that is not in the list.
 */
import t from 'tap';
import { request } from 'node:http';
import { adminRequest } from '../../../gateway/admin/channel.js';
import { tempDataDir, GatewayProcess, provisionStreet, connectStreet } from '../../helpers/gateway.js';

// Among the suite's longest files (30-75 s here): a slower machine must not reach tap's 120 s.
t.setTimeout(300_000);

interface Answer {
  status: number;
  body: Record<string, any>;
  text: string;
}

function getHealth(port: number, from: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', localAddress: from, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, any>, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('an anonymous caller gets up and version only; loopback and the admin socket get the details', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 11);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const origin = street.shops[0]!;
  await keypads.get(origin.shopId)!.press('9#');
  await officer.waitFor((a) => a.shopId === origin.shopId, 30_000);

  const full = await getHealth(gw.ports.http, '127.0.0.1');
  t.equal(full.status, 200);
  t.equal(full.body.counts.openAlarms, 1, '127.0.0.1 sees the open alarm');
  t.equal(full.body.counts.devices, street.shops.length);
  t.type(full.body.gatewayId, 'string');
  t.type(full.body.counters, 'object');
  t.ok(Array.isArray(full.body.faults));

  const anon = await getHealth(gw.ports.http, '127.0.0.2');
  t.equal(anon.status, 200);
  t.same(anon.body, { up: true, version: full.body.version }, 'only up and the version');
  t.notMatch(anon.text, full.body.gatewayId, 'no gateway id');
  for (const s of street.shops) t.notMatch(anon.text, s.deviceId, `no device id (${s.deviceId})`);

  // Only the connection's address counts, never a header the caller writes.
  const spoofed = await getHealth(gw.ports.http, '127.0.0.2', { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1' });
  t.same(Object.keys(spoofed.body).sort(), ['up', 'version'], 'forwarding headers unlock nothing');

  const viaAdmin = (await adminRequest(data, { op: 'health' })) as Record<string, any>;
  t.equal(viaAdmin.counts.openAlarms, 1, 'the admin socket keeps the full view');
  t.equal(viaAdmin.gatewayId, full.body.gatewayId);
});

t.test('http.healthDetailFrom chooses who gets the details', async (t) => {
  const data = tempDataDir(t);
  const gw = await GatewayProcess.start(t, data, { LF_HTTP_HEALTH_DETAIL_FROM: '127.0.0.2/32, 10.0.0.0/8' });
  const two = await getHealth(gw.ports.http, '127.0.0.2');
  t.type(two.body.counts, 'object', '127.0.0.2 is listed: details');
  t.type(two.body.gatewayId, 'string');
  const one = await getHealth(gw.ports.http, '127.0.0.1');
  t.same(Object.keys(one.body).sort(), ['up', 'version'], '127.0.0.1 is not listed: up and version only');
});

t.test('an entry that is not an address or range refuses the start, naming the field', async (t) => {
  const data = tempDataDir(t);
  await t.rejects(GatewayProcess.start(t, data, { LF_HTTP_HEALTH_DETAIL_FROM: '127.0.0.1,localhost' }), /LF_ERR_CONFIG_INVALID.*http\.healthDetailFrom.*localhost/s);
});
