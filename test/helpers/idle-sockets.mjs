// Opens many idle TCP sockets to an MQTT port from one local address and sends nothing on them,
// as a misbehaving or hostile process would (test/broker/connection-caps.e2e.test.ts).
// usage: node idle-sockets.mjs PORT LOCAL_ADDRESS COUNT
// Prints one JSON line once every socket has connected or failed and no socket has closed for a second:
// { opened, closed } (closed = closed by the other end). Keeps the rest open until killed.
import { connect } from 'node:net';

const [port, localAddress, count] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
let settled = 0;
let opened = 0;
let closed = 0;
const sockets = [];
// Report once the gateway has been quiet for a second: on a loaded machine it may still be
// accepting (and closing) sockets the kernel already connected.
let quietTimer = null;
let reported = false;
const quiet = () => {
  if (settled < count || reported) return;
  clearTimeout(quietTimer);
  quietTimer = setTimeout(() => {
    reported = true;
    process.stdout.write(JSON.stringify({ opened, closed }) + '\n');
  }, 1000);
};
const done = () => {
  settled++;
  quiet();
};
for (let i = 0; i < count; i++) {
  const s = connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(s);
  let open = false;
  s.once('connect', () => {
    open = true;
    opened++;
    done();
  });
  s.on('error', () => {});
  s.once('close', () => {
    if (!open) return done();
    closed++;
    quiet();
  });
}
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
