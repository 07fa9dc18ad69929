/**
 * The gateway's HTTP server. For now it serves `/health` (up, version, gatewayId, counts); the
 * console and Node-RED come with their own issues and will sit behind a login.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';

export class HttpServer {
  private server: Server | null = null;
  port = 0;

  constructor(
    private readonly opts: { host: string; port: number; log: Logger; health: () => Record<string, unknown> },
  ) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'GET' && url.pathname === '/health') {
        let body: string;
        try {
          body = JSON.stringify(this.opts.health());
        } catch (err) {
          this.opts.log.error({ err }, 'health failed');
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"up":false}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
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
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
