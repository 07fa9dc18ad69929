/**
 * The way into embedded Node-RED (gateway/nodered/node-red-proxy.ts), on a real HTTP server: which
 * paths are Node-RED's, `nodeRed.editor: "local"` against a caller that is not on this machine
 * (the peer address of the connection decides, never a header), and Node-RED not running.
 */
import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeRedProxy } from '../../../gateway/nodered/node-red-proxy.js';
import { nodeRedRoot } from '../../../gateway/nodered/node-red-root.js';
import { createLogger } from '../../../gateway/logger.js';
import { Counters } from '../../../gateway/metrics.js';

t.test('the two roots, and nothing that only starts like them', async (t) => {
  t.equal(nodeRedRoot('/flows'), 'admin');
  t.equal(nodeRedRoot('/flows/auth/token'), 'admin');
  t.equal(nodeRedRoot('/flows-api'), 'node');
  t.equal(nodeRedRoot('/flows-api/hook'), 'node');
  t.equal(nodeRedRoot('/flowsx'), null);
  t.equal(nodeRedRoot('/api/alarms'), null);
  t.equal(nodeRedRoot('/'), null);
});

/** A proxy in front of a fake Node-RED; `peer` is what the proxy is told the caller's address is. */
async function proxyServer(t: { teardown(fn: () => unknown): void }, o: { editor: 'local' | 'network'; running: boolean; peer: string }) {
  const upstream = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url, secret: req.headers['x-lianfang-proxy'] ?? null })));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const counters = new Counters();
  const proxy = new NodeRedProxy({
    target: () => (o.running ? { port: (upstream.address() as AddressInfo).port, secret: 's3cret' } : null),
    editor: o.editor,
    authorize: async () => null,
    loginFrom: () => {},
    log: createLogger('silent'),
    counters,
  });
  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    // What a caller on another machine looks like to the proxy: the socket's peer address.
    Object.defineProperty(req.socket, 'remoteAddress', { value: o.peer, configurable: true });
    void proxy.handle(req, res, nodeRedRoot(new URL(req.url!, 'http://x').pathname)!);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    front.close();
    upstream.close();
  });
  return { url: `http://127.0.0.1:${(front.address() as AddressInfo).port}`, counters };
}

t.test('editor "local": a caller on another machine gets 403, whatever its headers say', async (t) => {
  const { url, counters } = await proxyServer(t, { editor: 'local', running: true, peer: '192.0.2.7' });
  const res = await fetch(`${url}/flows/flows`, { headers: { 'x-forwarded-for': '127.0.0.1' } });
  t.equal(res.status, 403);
  t.match(await res.json(), { code: 'LF_ERR_EDITOR_LOCAL', zh: { message: String } }, 'with the code and the Chinese text');
  t.equal(counters.get('nodered.http.refused.LF_ERR_EDITOR_LOCAL'), 1, 'counted');
  const api = await fetch(`${url}/flows-api/hook`);
  t.equal(api.status, 401, 'HTTP-in endpoints are not the editor, but still need a login');
});

t.test('editor "local": a loopback caller is forwarded, with the secret added and a forged one dropped', async (t) => {
  const { url } = await proxyServer(t, { editor: 'local', running: true, peer: '127.0.0.1' });
  const res = await fetch(`${url}/flows/settings?x=1`, { headers: { 'x-lianfang-proxy': 'forged' } });
  t.equal(res.status, 200);
  t.same(await res.json(), { url: '/flows/settings?x=1', secret: 's3cret' }, 'the path as it was, the proxy\'s own secret');
});

t.test('editor "network": any address reaches the editor\'s login', async (t) => {
  const { url } = await proxyServer(t, { editor: 'network', running: true, peer: '192.0.2.7' });
  t.equal((await fetch(`${url}/flows/flows`)).status, 200);
});

t.test('Node-RED not running: 503 with a reason and Retry-After', async (t) => {
  const { url } = await proxyServer(t, { editor: 'local', running: false, peer: '127.0.0.1' });
  const res = await fetch(`${url}/flows/`);
  t.equal(res.status, 503);
  t.equal(res.headers.get('retry-after'), '5');
  t.match(await res.json(), { code: 'LF_ERR_NODE_RED_DOWN' });
});
