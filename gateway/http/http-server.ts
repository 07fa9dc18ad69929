/**
 * The gateway's HTTP server. It serves `/health`: to anyone, that the gateway is up and its
 * version; in full (counts, open alarms, faults, counters, device ids) only to callers whose address
 * is in `http.healthDetailFrom` (loopback by default), since the listener is on the street's network
 * and open alarms tell a robber whether the 9# went through. Everything else is the web console's
 * (gateway/console/console-http.ts), behind its login, but /flows… and /flows-api…: embedded
 * Node-RED's (gateway/nodered/node-red-proxy.ts).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { BlockList, isIP, type AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import type { Duplex } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { lfError } from '../errors.js';
import { nodeRedRoot } from '../nodered/node-red-root.js';

/** `::ffff:127.0.0.1` (an IPv4 caller on a dual-stack listener) → `127.0.0.1`. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1]! : address;
}

/**
 * The set of caller addresses given the details: plain addresses and CIDR ranges, IPv4 or IPv6.
 * Validated once at start; an IPv4 entry also covers its IPv4-mapped IPv6 form.
 */
export function addressSet(entries: readonly string[], field = 'http.healthDetailFrom'): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits, extra] = unmapped(entry.trim()).split('/');
    const family = isIP(addr ?? '');
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!family || extra !== undefined || !(prefix >= 0 && prefix <= (family === 4 ? 32 : 128))) {
      throw lfError('LF_ERR_CONFIG_INVALID', `${field}: ${JSON.stringify(entry)} is not an IP address or CIDR range`);
    }
    list.addSubnet(addr!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return (address) => {
    if (!address) return false;
    const a = unmapped(address);
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}

export class HttpServer {
  private server: Server | null = null;
  port = 0;

  constructor(
    private readonly opts: {
      host: string;
      port: number;
      /** Caller addresses that get the full /health (config `http.healthDetailFrom`). */
      healthDetailFrom: readonly string[];
      log: Logger;
      /** Called per /health request; `detail` is false for an anonymous caller. */
      health: (detail: boolean) => Record<string, unknown>;
      /** The web console: every other request, and WebSocket upgrades. */
      console?: {
        handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
        upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
        stop(): void;
      };
      /** Embedded Node-RED (gateway/nodered/node-red-proxy.ts): /flows… and /flows-api…, requests and WebSocket upgrades. */
      nodeRed?: {
        handle(req: IncomingMessage, res: ServerResponse, root: 'admin' | 'node'): Promise<void>;
        upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
      };
    },
  ) {}

  async start(): Promise<void> {
    const detailFor = addressSet(this.opts.healthDetailFrom);
    // The peer address of the TCP connection, never a header a caller can write (X-Forwarded-For).
    const detailed = (req: IncomingMessage) => detailFor(req.socket.remoteAddress);
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'GET' && url.pathname === '/health') {
        let body: string;
        try {
          body = JSON.stringify(this.opts.health(detailed(req)));
        } catch (err) {
          this.opts.log.error({ err }, 'health failed');
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"up":false}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
        return;
      }
      const flowsRoot = this.opts.nodeRed && nodeRedRoot(url.pathname);
      if (flowsRoot) {
        this.opts.nodeRed!.handle(req, res, flowsRoot).catch((err: unknown) => {
          this.opts.log.error({ err }, 'a Node-RED request failed');
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
          res.end();
        });
        return;
      }
      if (this.opts.console) {
        this.opts.console.handle(req, res).catch((err: unknown) => {
          this.opts.log.error({ err }, 'console request failed');
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end();
        });
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
    this.server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      if (this.opts.nodeRed && nodeRedRoot(new URL(req.url ?? '/', 'http://localhost').pathname)) this.opts.nodeRed.upgrade(req, socket, head);
      else if (this.opts.console) this.opts.console.upgrade(req, socket, head);
      else socket.destroy();
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, () => {
        this.port = (this.server!.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.opts.console?.stop();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
