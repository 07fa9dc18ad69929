/**
 * The benchmark's baseline: a bare Aedes broker (no store, no rules, no authentication, no
 * delivery tracking) in its own process, on 127.0.0.1 only. It prints one JSON line
 * `{"port": N}` on stdout once listening, and exits when its stdin closes (the benchmark ended or
 * died) or on SIGTERM/SIGINT.
 *
 * Like the gateway's broker it disables Nagle on every socket and allows 1000 packets in flight
 * per client, so the comparison measures what the gateway adds, not a different TCP setting.
 */
import { Aedes } from 'aedes';
import { createServer, type AddressInfo, type Socket } from 'node:net';

const aedes = await Aedes.createBroker({ concurrency: 1000 });
const sockets = new Set<Socket>();
const server = createServer((socket) => {
  socket.setNoDelay(true);
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  aedes.handle(socket);
});

await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve());
});
process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port, pid: process.pid }) + '\n');

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  for (const s of sockets) s.destroy();
  server.close();
  aedes.close(() => process.exit(0));
  // Never outlive the benchmark by more than a moment.
  setTimeout(() => process.exit(0), 2000).unref();
}

process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
