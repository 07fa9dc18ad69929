/**
 * A subscriber that stops reading its socket: a hung keypad, a half-dead link. Used by the
 * benchmark (fan-out latency with one stalled subscriber present) and by
 * test/broker/stalled-subscriber.e2e.test.ts.
 *
 * Node cannot set SO_RCVBUF on a TCP socket, and with the default receive buffer (128 KiB and
 * more on loopback) a stalled reader absorbs minutes of alerts before the broker notices. So the
 * socket lives in a small python3 child: it sets a tiny SO_RCVBUF before connecting, sends the
 * MQTT CONNECT and SUBSCRIBE written here with mqtt-packet, reads exactly the CONNACK and the
 * SUBACK, reports them, and never reads again. It watches SO_ERROR (which does not consume the
 * receive queue) to report when the broker resets the connection, and exits when its stdin
 * closes, so it never outlives its parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import mqttPacket from 'mqtt-packet';

const PY = String.raw`
import os, select, socket, sys, time
host, port, rcvbuf, hexbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Before connect(): the window scale is fixed in the SYN.
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
s.connect((host, port))
s.sendall(bytes.fromhex(hexbytes))
def readn(n):
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            print('closed', flush=True)
            sys.exit(0)
        buf += chunk
    return buf
connack = readn(4)
suback = readn(5)
print('ready %d %d %d' % (connack[3], suback[4], s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)), flush=True)
while True:
    r, _, _ = select.select([sys.stdin], [], [], 0.05)
    if r and not os.read(sys.stdin.fileno(), 1024):
        sys.exit(0)
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        print('reset %d' % err, flush=True)
        sys.exit(0)
`;

export interface StalledSubscriberOptions {
  host: string;
  port: number;
  clientId: string;
  username: string;
  password: string;
  /** The topic it subscribes to (QoS 1) before it stops reading. */
  topic: string;
  /** SO_RCVBUF asked for (Linux doubles it and applies a floor of about 2.3 KiB). */
  receiveBufferBytes?: number;
}

export class StalledSubscriber {
  /** The receive buffer the kernel granted, as getsockopt reports it. */
  receiveBufferBytes = 0;
  /** Resolves when the broker reset the connection (or the child ended for another reason). */
  readonly cut: Promise<'reset' | 'closed' | 'exited'>;
  cutAt: number | null = null;
  private resolveCut!: (how: 'reset' | 'closed' | 'exited') => void;

  private constructor(private readonly child: ChildProcess) {
    this.cut = new Promise((resolve) => (this.resolveCut = resolve));
    child.on('exit', () => this.settle('exited'));
  }

  private settle(how: 'reset' | 'closed' | 'exited'): void {
    if (this.cutAt === null) this.cutAt = performance.now();
    this.resolveCut(how);
  }

  /** Connect, subscribe, and stop reading. Rejects if the login or the subscription is refused. */
  static start(o: StalledSubscriberOptions, timeoutMs = 10_000): Promise<StalledSubscriber> {
    const connect = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      // No keepalive: only the broker's own stall detection may end this connection.
      keepalive: 0,
      clientId: o.clientId,
      username: o.username,
      password: Buffer.from(o.password),
    });
    const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: o.topic, qos: 1 }] });
    const bytes = Buffer.concat([connect, subscribe]).toString('hex');
    const child = spawn('python3', ['-c', PY, o.host, String(o.port), String(o.receiveBufferBytes ?? 1024), bytes], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const sub = new StalledSubscriber(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.stop();
        reject(new Error(`stalled subscriber: no SUBACK within ${timeoutMs} ms ${stderr}`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`stalled subscriber ended before its SUBACK: ${stderr.trim()}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const [word, a, b, c] = line.split(' ');
        if (word === 'ready') {
          clearTimeout(timer);
          if (a !== '0') return reject(new Error(`stalled subscriber: CONNACK return code ${a}`));
          if (b === '128') return reject(new Error('stalled subscriber: subscription refused'));
          sub.receiveBufferBytes = Number(c);
          resolve(sub);
        } else if (word === 'reset') sub.settle('reset');
        else if (word === 'closed') sub.settle('closed');
      });
    });
  }

  /** End the child (closing its stdin is enough; the kill is for a child stuck elsewhere). */
  stop(): void {
    this.child.stdin?.end();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
