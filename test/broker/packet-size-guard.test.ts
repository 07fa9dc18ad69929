/**
 * The packet-size guard: PacketSizeInspector on its own (fixed headers split across chunks at every
 * byte, several packets per chunk, Remaining Length of 1–4 bytes, a 5-byte one = malformed, the
 * maximum exactly), then PacketSizeGuard over a real TCP socket pair on 127.0.0.1, port 0: bytes
 * both ways, refusals, and the write side (a reader that stopped is never waited for and is cut
 * off without progress for stallTimeoutMs, at maxBufferedBytes, or with a QoS 1 message left
 * unacknowledged; one that keeps up never is).
 */
import t from 'tap';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { PacketSizeInspector, PacketSizeGuard, type GuardOptions, type StallInfo } from '../../broker/packet-size-guard.js';

/** MQTT 3.1.1 §2.2.3 Remaining Length: 7 bits per byte, low bits first, high bit = more follows. */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function header(typeByte: number, remaining: number): Buffer {
  return Buffer.concat([Buffer.from([typeByte]), varint(remaining)]);
}

/** A packet of `remaining` body bytes; the body is a recognisable pattern. */
function packet(typeByte: number, remaining: number, fill = 0x61): Buffer {
  const body = Buffer.alloc(remaining, fill);
  return Buffer.concat([header(typeByte, remaining), body]);
}

const PUBLISH_QOS1 = 0x32;
const PUBACK = 0x40;
const PINGREQ = 0xc0;

function puback(id: number): Buffer {
  return Buffer.from([PUBACK, 2, id >> 8, id & 0xff]);
}

/** Feed `chunks` in order; the first non-null verdict, with the index of the chunk it came on. */
function feed(ins: PacketSizeInspector, chunks: Buffer[]): { verdict: ReturnType<PacketSizeInspector['inspect']>; at: number } {
  for (let i = 0; i < chunks.length; i++) {
    const v = ins.inspect(chunks[i]);
    if (v) return { verdict: v, at: i };
  }
  return { verdict: null, at: -1 };
}

t.test('varint helper agrees with the spec examples', async (t) => {
  // MQTT 3.1.1 Table 2.4: the boundaries of 1..4-byte Remaining Lengths.
  t.same([...varint(0)], [0x00]);
  t.same([...varint(127)], [0x7f]);
  t.same([...varint(128)], [0x80, 0x01]);
  t.same([...varint(16383)], [0xff, 0x7f]);
  t.same([...varint(16384)], [0x80, 0x80, 0x01]);
  t.same([...varint(2097151)], [0xff, 0xff, 0x7f]);
  t.same([...varint(2097152)], [0x80, 0x80, 0x80, 0x01]);
  t.same([...varint(268435455)], [0xff, 0xff, 0xff, 0x7f]);
});

t.test('inspector: a stream of valid packets split at every byte position', async (t) => {
  // Several packets, with Remaining Lengths of 1, 2 and 3 bytes, zero-length ones and PUBACKs.
  const ids = [1, 258, 65535, 4660];
  const stream = Buffer.concat([
    packet(PUBLISH_QOS1, 10),
    puback(ids[0]),
    packet(PINGREQ, 0),
    packet(PUBLISH_QOS1, 200), // 2-byte varint
    puback(ids[1]),
    packet(PUBLISH_QOS1, 127), // largest 1-byte
    packet(PUBLISH_QOS1, 128), // smallest 2-byte
    puback(ids[2]),
    packet(PUBLISH_QOS1, 16384), // smallest 3-byte
    packet(PINGREQ, 0),
    puback(ids[3]),
  ]);
  const max = 16384 + 4;
  let checked = 0;
  for (let split = 0; split <= stream.length; split++) {
    const seen: number[] = [];
    const ins = new PacketSizeInspector(max, (id) => seen.push(id));
    const r = feed(ins, [stream.subarray(0, split), stream.subarray(split)]);
    if (r.verdict !== null) t.fail(`split at ${split}: ${JSON.stringify(r.verdict)}`);
    if (JSON.stringify(seen) !== JSON.stringify(ids)) t.fail(`split at ${split}: PUBACK ids ${JSON.stringify(seen)}`);
    checked++;
  }
  t.equal(checked, stream.length + 1, 'every split position checked');

  // One byte at a time, and everything in one chunk.
  for (const chunks of [[...stream].map((b) => Buffer.from([b])), [stream]]) {
    const seen: number[] = [];
    const ins = new PacketSizeInspector(max, (id) => seen.push(id));
    t.equal(feed(ins, chunks).verdict, null, `${chunks.length} chunk(s): no verdict`);
    t.same(seen, ids, `${chunks.length} chunk(s): every PUBACK id, in order`);
  }
});

t.test('inspector: a too-large packet after valid ones is found wherever the stream is split', async (t) => {
  const max = 1000;
  const good = Buffer.concat([packet(PUBLISH_QOS1, 300), puback(7), packet(PUBLISH_QOS1, 996 - 3)]);
  // 1 + 2 + 998 = 1001 bytes announced: one over the maximum.
  const bad = header(PUBLISH_QOS1, 998);
  const stream = Buffer.concat([good, bad, Buffer.alloc(50, 0x62)]);
  for (let split = 0; split <= stream.length; split++) {
    const ins = new PacketSizeInspector(max);
    const r = feed(ins, [stream.subarray(0, split), stream.subarray(split)]);
    const expectAt = split >= good.length + bad.length ? 0 : 1;
    if (!r.verdict || r.verdict.reason !== 'too-large' || r.verdict.bytes !== 1001 || r.at !== expectAt) {
      t.fail(`split at ${split}: ${JSON.stringify(r)}`);
      return;
    }
  }
  t.pass(`too-large (1001 bytes) found for all ${stream.length + 1} split positions, on the chunk holding the header's end`);
});

t.test('inspector: Remaining Length of 1 to 4 bytes, exactly at the maximum and one over', async (t) => {
  const lengths = [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455];
  for (const remaining of lengths) {
    const h = header(PUBLISH_QOS1, remaining);
    const total = h.length + remaining;
    t.equal(new PacketSizeInspector(total).inspect(h), null, `remaining ${remaining} (${h.length - 1}-byte varint): ${total} bytes = max is accepted`);
    t.same(new PacketSizeInspector(total - 1).inspect(h), { reason: 'too-large', bytes: total }, `remaining ${remaining}: max ${total - 1} refuses it`);
    // Split inside the varint: the verdict waits for the last header byte.
    if (h.length > 2) {
      const ins = new PacketSizeInspector(total - 1);
      t.equal(ins.inspect(h.subarray(0, h.length - 1)), null, `remaining ${remaining}: no verdict before the header is complete`);
      t.same(ins.inspect(h.subarray(h.length - 1)), { reason: 'too-large', bytes: total }, `remaining ${remaining}: verdict on the last header byte`);
    }
  }
});

t.test('inspector: the body of an accepted packet is skipped, whatever bytes it holds', async (t) => {
  // A body full of bytes that would look like headers of huge packets if they were read as headers.
  const body = Buffer.alloc(5000, 0xff);
  const stream = Buffer.concat([header(PUBLISH_QOS1, body.length), body, puback(99)]);
  const seen: number[] = [];
  const ins = new PacketSizeInspector(8192, (id) => seen.push(id));
  for (let i = 0; i < stream.length; i += 333) {
    const v = ins.inspect(stream.subarray(i, i + 333));
    if (v) t.fail(`verdict inside the body: ${JSON.stringify(v)}`);
  }
  t.same(seen, [99], 'the PUBACK after the body is read as a header');
});

t.test('inspector: a 5-byte Remaining Length is malformed', async (t) => {
  const bad = Buffer.from([PUBLISH_QOS1, 0x80, 0x80, 0x80, 0x80, 0x01]);
  t.same(new PacketSizeInspector(268435460).inspect(bad), { reason: 'malformed', bytes: -1 });
  // ... split at every position, after a valid packet
  const stream = Buffer.concat([packet(PUBLISH_QOS1, 5), bad]);
  for (let split = 0; split <= stream.length; split++) {
    const r = feed(new PacketSizeInspector(268435460), [stream.subarray(0, split), stream.subarray(split)]);
    t.same(r.verdict, { reason: 'malformed', bytes: -1 }, `split at ${split}`);
  }
  // Four continuation bytes are already malformed: the fourth byte may not announce a fifth.
  t.same(new PacketSizeInspector(268435460).inspect(Buffer.from([PUBLISH_QOS1, 0xff, 0xff, 0xff, 0xff])), { reason: 'malformed', bytes: -1 });
});

t.test('inspector: a short PUBACK (no packet id) reports nothing and keeps the stream in step', async (t) => {
  const seen: number[] = [];
  const ins = new PacketSizeInspector(8192, (id) => seen.push(id));
  t.equal(ins.inspect(Buffer.concat([Buffer.from([PUBACK, 0]), puback(5), packet(PINGREQ, 0)])), null);
  t.same(seen, [5]);
});

// ------------------------------------------------------------------ over a real TCP socket pair

interface Pair {
  client: Socket;
  /** The guard wrapping the server side of the connection. */
  guard: PacketSizeGuard;
  server: Server;
  downstream: Buffer[];
  rejects: [reason: string, bytes: number][];
  pubacks: number[];
  outbound: Buffer[];
  serverSocket: Socket;
}

/** What pair() needs of a tap test. */
interface Teardown {
  teardown(fn: () => unknown): void;
}

async function pair(t: Teardown, maxPacketBytes: number, opts: { read?: boolean; guard?: Partial<GuardOptions> } = {}): Promise<Pair> {
  const rejects: [string, number][] = [];
  const pubacks: number[] = [];
  const outbound: Buffer[] = [];
  const downstream: Buffer[] = [];
  const server = createServer();
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  client.on('error', () => {}); // a reset after the server cut the socket is expected
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  const [serverSocket] = await accepted;
  t.teardown(() => serverSocket.destroy());
  const guard = new PacketSizeGuard(serverSocket, {
    maxPacketBytes,
    onReject: (reason, bytes) => rejects.push([reason, bytes]),
    onPuback: (id) => pubacks.push(id),
    onOutbound: (chunk) => outbound.push(Buffer.from(chunk)),
    ...opts.guard,
  });
  guard.on('error', () => {});
  t.teardown(() => guard.destroy());
  if (opts.read !== false) guard.on('data', (c: Buffer) => downstream.push(c));
  return { client, guard, server, downstream, rejects, pubacks, outbound, serverSocket };
}


const total = (bufs: Buffer[]) => bufs.reduce((n, b) => n + b.length, 0);

/** Resolves on 'close' (events.once would reject on the ECONNRESET that may come first). */
const closeOf = (s: Socket | PacketSizeGuard) => new Promise<void>((r) => s.once('close', () => r()));

/** Resolve when `cond()` holds, checking after each I/O turn (no wall-clock bound: tap's timeout is the bound). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

t.test('guard: bytes pass through unchanged and in order, both ways', async (t) => {
  const p = await pair(t, 8192);
  const packets: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const n = (i * 37) % 8000;
    const body = Buffer.alloc(n);
    for (let j = 0; j < n; j++) body[j] = (i + j) & 0xff;
    packets.push(Buffer.concat([header(PUBLISH_QOS1, n), body]));
    if (i % 7 === 0) packets.push(puback(i));
  }
  const sent = Buffer.concat(packets);
  // Written in odd-sized pieces so packet boundaries and chunk boundaries do not line up.
  for (let i = 0; i < sent.length; i += 1001) p.client.write(sent.subarray(i, i + 1001));
  p.client.end();
  await once(p.guard, 'end');
  t.equal(total(p.downstream), sent.length, 'every byte arrived');
  t.ok(Buffer.concat(p.downstream).equals(sent), 'the bytes are the same, in the same order');
  t.same(p.rejects, [], 'nothing rejected');
  t.same(
    p.pubacks,
    packets.filter((b) => b[0] === PUBACK).map((b) => b.readUInt16BE(2)),
    'every PUBACK id reported, in order',
  );

  // The other way: what the broker writes reaches the client unchanged, and onOutbound sees it.
  const p2 = await pair(t, 8192);
  const reply = Buffer.concat([puback(1), packet(0x30, 3000, 0x7a), puback(2)]);
  const got: Buffer[] = [];
  p2.client.on('data', (c: Buffer) => got.push(c));
  p2.guard.write(reply.subarray(0, 10));
  p2.guard.write(reply.subarray(10));
  await until(() => total(got) >= reply.length);
  t.ok(Buffer.concat(got).equals(reply), 'outbound bytes unchanged');
  t.ok(Buffer.concat(p2.outbound).equals(reply), 'onOutbound saw every outbound chunk');
});

t.test('guard: a slow reader gets everything (backpressure pauses and resumes the socket)', async (t) => {
  const p = await pair(t, 8192, { read: false });
  const sent = Buffer.concat(Array.from({ length: 512 }, (_, i) => packet(PUBLISH_QOS1, 4000, i & 0xff)));
  p.client.end(sent);
  // Let the socket fill the guard's buffer before anyone reads.
  await until(() => p.guard.readableLength >= p.guard.readableHighWaterMark);
  const got: Buffer[] = [];
  p.guard.on('data', (c: Buffer) => got.push(c));
  await once(p.guard, 'end');
  t.ok(Buffer.concat(got).equals(sent), `${sent.length} bytes arrived unchanged`);
});

t.test('guard: a header announcing 200 MB closes the socket before the body is buffered', async (t) => {
  const p = await pair(t, 8192);
  // A valid packet first, so "nothing of the big packet passed" is measured against a known count.
  const first = packet(PUBLISH_QOS1, 100);
  p.client.write(first);
  await until(() => total(p.downstream) >= first.length);
  t.equal(total(p.downstream), first.length, 'the valid packet passed');

  const announced = 200 * 1024 * 1024;
  const h = header(PUBLISH_QOS1, announced);
  const clientClosed = closeOf(p.client);
  const guardClosed = closeOf(p.guard);
  p.client.write(Buffer.concat([h, Buffer.alloc(64 * 1024, 0x41)]));
  await clientClosed;
  await guardClosed;
  t.same(p.rejects, [['too-large', h.length + announced]], 'onReject called once, with the announced size');
  t.equal(total(p.downstream) - first.length, 0, 'not one byte of the big packet reached the broker');
  t.equal(p.guard.readableLength, 0, 'nothing is buffered in the guard');
  t.ok(p.serverSocket.destroyed, 'the server socket is destroyed');
  // More data cannot arrive on a destroyed socket; give any stray event a turn to show up.
  await new Promise((r) => setImmediate(r));
  t.equal(p.rejects.length, 1, 'still exactly one rejection');
});

t.test('guard: a header split across writes is still refused', async (t) => {
  const p = await pair(t, 8192);
  const h = header(PUBLISH_QOS1, 10_000); // 1 + 2 + 10000 > 8192
  const clientClosed = closeOf(p.client);
  p.client.write(h.subarray(0, 2));
  // wait until the first part was read by the server side before sending the rest
  await until(() => p.serverSocket.bytesRead >= 2);
  t.same(p.rejects, [], 'no verdict on half a header');
  p.client.write(Buffer.concat([h.subarray(2), Buffer.alloc(1000)]));
  await clientClosed;
  t.same(p.rejects, [['too-large', 10_003]]);
  // The two header bytes read before the verdict had passed (a header is never held back);
  // nothing after them did.
  t.equal(total(p.downstream), 2, 'nothing after the incomplete header passed downstream');
});

t.test('guard: a malformed Remaining Length closes the socket', async (t) => {
  const p = await pair(t, 8192);
  const clientClosed = closeOf(p.client);
  p.client.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]));
  await clientClosed;
  t.same(p.rejects, [['malformed', -1]]);
  t.equal(total(p.downstream), 0);
});

t.test("guard: records the peer's address at accept, still known after the socket closed", async (t) => {
  const { client, guard, serverSocket } = await pair(t, 1024);
  t.equal(guard.remoteAddress, '127.0.0.1', 'the TCP peer');
  t.equal(guard.remoteAddress, serverSocket.remoteAddress);
  const closed = closeOf(guard);
  client.destroy();
  await closed;
  t.equal(guard.remoteAddress, '127.0.0.1', 'login throttling still knows who it was');
  // A WebSocket stream carries no address of its own: the listener passes the HTTP socket's.
  const { PassThrough } = await import('node:stream');
  const ws = new PacketSizeGuard(new PassThrough(), { maxPacketBytes: 1024, onReject: () => {}, remoteAddress: '::ffff:10.1.2.3' });
  t.teardown(() => ws.destroy());
  t.equal(ws.remoteAddress, '::ffff:10.1.2.3');
});

/** A pair whose client socket never reads, and the stalls its guard reported. */
async function stalledPair(t: Teardown, guard: Partial<GuardOptions>) {
  const stalls: StallInfo[] = [];
  const p = await pair(t, 8192, { guard: { ...guard, onStall: (info) => stalls.push(info) } });
  p.client.pause();
  const clientClosed = closeOf(p.client);
  // A paused socket sees neither data nor the reset: read again once the guard has cut it off.
  const cutOff = async () => {
    p.client.resume();
    await clientClosed;
  };
  return { ...p, stalls, cutOff };
}

t.test('guard: writes toward a reader that stopped never wait (below the cap); no progress for stallTimeoutMs cuts it off', async (t) => {
  const p = await stalledPair(t, { stallTimeoutMs: 300, maxBufferedBytes: 64 * 1024 * 1024 });
  const chunk = packet(PUBLISH_QOS1, 8000);
  // 16 MB: far more than the kernel buffers of a loopback connection whose reader stopped.
  let refused = 0;
  for (let i = 0; i < 2000; i++) if (!p.guard.write(chunk)) refused++;
  t.equal(refused, 0, 'no write returned false: aedes never waits for this client to drain');
  await until(() => p.stalls.length > 0);
  t.equal(p.stalls.length, 1, 'cut off once');
  t.equal(p.stalls[0]!.reason, 'no-drain');
  t.ok(p.stalls[0]!.stalledMs >= 300, `after ${p.stalls[0]!.stalledMs} ms without progress`);
  t.ok(p.stalls[0]!.bufferedBytes > 0, `${p.stalls[0]!.bufferedBytes} bytes were waiting`);
  await p.cutOff();
  t.ok(p.guard.destroyed, 'the guard (what aedes holds) is destroyed');
});

t.test('guard: one write beyond maxBufferedBytes cuts the reader off at once', async (t) => {
  const p = await stalledPair(t, { stallTimeoutMs: 0, maxBufferedBytes: 256 * 1024 });
  const chunk = packet(PUBLISH_QOS1, 8000);
  let writes = 0;
  while (p.guard.write(chunk)) writes++;
  await until(() => p.stalls.length > 0);
  t.equal(p.stalls[0]!.reason, 'buffer-full');
  t.ok(p.stalls[0]!.bufferedBytes >= 256 * 1024, `${p.stalls[0]!.bufferedBytes} bytes buffered after ${writes} writes`);
  await p.cutOff();
});

t.test('guard: a QoS 1 message not acknowledged within stallTimeoutMs cuts the peer off, though its socket takes the bytes', async (t) => {
  let unackedSince: number | undefined;
  const p = await stalledPair(t, { stallTimeoutMs: 200, unackedSince: () => unackedSince });
  unackedSince = performance.now();
  p.guard.write(packet(PUBLISH_QOS1, 100));
  await until(() => p.stalls.length > 0);
  t.equal(p.stalls[0]!.reason, 'no-puback');
  t.ok(p.stalls[0]!.stalledMs >= 200, `${p.stalls[0]!.stalledMs} ms`);
  await p.cutOff();
});

t.test('guard: a reader that keeps up, and a peer that acknowledges, are never cut off', async (t) => {
  const stalls: StallInfo[] = [];
  let unackedSince: number | undefined;
  // A stall timeout far above a busy machine's pauses; each message is acknowledged within 20 ms.
  const p = await pair(t, 8192, { guard: { stallTimeoutMs: 1000, unackedSince: () => unackedSince, onStall: (i) => stalls.push(i) } });
  let got = 0;
  p.client.on('data', (c: Buffer) => (got += c.length));
  const chunk = packet(PUBLISH_QOS1, 8000);
  const until0 = performance.now() + 2500;
  let sent = 0;
  while (performance.now() < until0) {
    unackedSince = performance.now();
    for (let i = 0; i < 50; i++) sent += chunk.length, p.guard.write(chunk);
    await new Promise((r) => setTimeout(r, 20));
    unackedSince = undefined;
    await new Promise((r) => setTimeout(r, 5));
  }
  await until(() => got >= sent);
  t.same(stalls, [], `${sent} bytes over 2.5 s, nobody cut off`);
  t.notOk(p.guard.destroyed);
});

t.test('guard: a peer working through a backlog is not cut off while its PUBACKs keep coming; when they stop, it is', async (t) => {
  // The oldest message waiting was written long ago (a burst), but the peer acknowledges steadily.
  const p = await stalledPair(t, { stallTimeoutMs: 600, unackedSince: () => 0 });
  p.guard.write(packet(PUBLISH_QOS1, 100));
  let lastAck = 0;
  for (let id = 1; id <= 8; id++) {
    p.client.write(puback(id));
    lastAck = performance.now();
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(p.stalls, [], 'eight PUBACKs 100 ms apart: not cut off');
  await until(() => p.stalls.length > 0);
  t.equal(p.stalls[0]!.reason, 'no-puback', 'no PUBACK for the stall timeout: cut off');
  t.ok(performance.now() - lastAck >= 600, 'not before the stall timeout after the last PUBACK');
  await p.cutOff();
});
