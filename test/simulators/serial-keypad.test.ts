/**
 * The serial keypad simulator (simulators/serial-keypad.ts) on a real pty pair, with the test as
 * the bus master holding a raw SerialPort on the other end: addressing on a shared line, events
 * repeated until ACKed, commands answered with CMD_ACK only when authentic, silence, and answers
 * timed like the wire (lower bounds only: the machine is slow and shared).
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { SerialPort } from 'serialport';
import {
  encodeFrame,
  FrameDecoder,
  parseFrame,
  type CommandFrame,
  type DecodeResult,
  type KeypadFrame,
  type RawFrame,
} from '../../firmware-contracts/serial/codec.js';
import { alertDisplay, renderDisplay } from '../../firmware-contracts/serial/display.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { wireTimeMs } from '../../firmware-contracts/wire-timing.js';
import { runSerialKeypadSim, SerialKeypadSim, type SerialKeypadSimOptions } from '../../simulators/serial-keypad.js';

const key3 = randomBytes(32);
const key5 = randomBytes(32);
/** Long enough for an answer that should come not to be missed; only used to assert silence. */
const QUIET_MS = 400;
/** A guard against hanging when an answer never comes; never a timing assertion. */
const GUARD_MS = 10_000;

interface Received {
  frame: RawFrame;
  at: number;
}

/** The bus master: writes frames, collects what comes back, decoded as it arrives. */
class Master {
  readonly inbox: Received[] = [];
  readonly bad: DecodeResult[] = [];
  private readonly decoder = new FrameDecoder();
  private wake?: () => void;
  /** The gateway's command counter. */
  private counter = { boot: 7, seq: 0 };

  constructor(readonly port: SerialPort) {
    port.on('data', (chunk: Buffer) => {
      const at = performance.now();
      for (const r of this.decoder.push(chunk)) {
        if (r.ok) this.inbox.push({ frame: r.frame, at });
        else this.bad.push(r);
      }
      this.wake?.();
    });
  }

  /** The next gateway counter value. */
  next(): { boot: number; seq: number } {
    this.counter.seq++;
    return { ...this.counter };
  }

  /** Write `frame` (or bytes); returns the time just before the write. */
  send(frame: KeypadFrame | Buffer, key?: Buffer): number {
    const bytes = Buffer.isBuffer(frame) ? frame : encodeFrame(frame, key);
    const at = performance.now();
    this.port.write(bytes);
    return at;
  }

  /** The next `n` frames received. */
  async take(n: number): Promise<Received[]> {
    const deadline = performance.now() + GUARD_MS;
    while (this.inbox.length < n) {
      if (performance.now() > deadline) throw new Error(`expected ${n} frame(s), got ${this.inbox.length}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.inbox.splice(0, n);
  }

  /** Frames received during `ms` (none expected, usually). */
  async quiet(ms = QUIET_MS): Promise<Received[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.inbox.splice(0);
  }
}

function parsed(r: Received, key?: Buffer): KeypadFrame {
  const p = parseFrame(r.frame, key);
  if (!p.ok) throw new Error(`frame refused: ${p.reason}`);
  return p.frame;
}

async function setup(t: Test, opts: Partial<SerialKeypadSimOptions> = {}) {
  const pty = await openPtyPair();
  const baud = opts.baud ?? 9600;
  const sim = new SerialKeypadSim({
    path: pty.a,
    baud,
    keypads: [
      { address: 3, key: key3 },
      { address: 5, key: key5, boot: 4 },
    ],
    ...opts,
  });
  const port = new SerialPort({ path: pty.b, baudRate: baud, autoOpen: false });
  t.teardown(async () => {
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    await sim.close();
    await pty.close();
  });
  await sim.start();
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return { sim, master: new Master(port), pty };
}

t.test('two addresses on one line: each answers its own polls, nobody answers for others', async (t) => {
  const { sim, master } = await setup(t);
  master.send({ type: 'POLL', addr: 3 });
  t.same(parsed((await master.take(1))[0]!), { type: 'NOTHING', addr: 3 }, 'address 3 answers its poll');
  master.send({ type: 'POLL', addr: 5 });
  t.same(parsed((await master.take(1))[0]!), { type: 'NOTHING', addr: 5 }, 'address 5 answers its poll');

  master.send({ type: 'POLL', addr: 9 });
  t.same(await master.quiet(), [], 'a poll for address 9 goes unanswered');
  master.send({ type: 'NOTHING', addr: 3 });
  t.same(await master.quiet(), [], 'a keypad→gateway frame addressed to 3 is not taken for a request');

  master.send({ type: 'POLL', addr: 3 });
  const [next] = await master.take(1);
  t.equal(next!.frame.addr, 3, 'the next frame on the line is the answer to the next poll');
  t.equal(sim.stats.polls, 3, 'polls for served addresses counted');
  t.equal(sim.stats.framesSent, 3);
});

t.test('9#: a KEYS event with boot, seq and MAC, repeated until ACKed', async (t) => {
  const { sim, master } = await setup(t);
  const pressed = sim.press(3, '9#');
  sim.press(5, '1#');
  t.equal(sim.pending(3), 1);

  master.send({ type: 'POLL', addr: 3 });
  const [first] = await master.take(1);
  t.same(parsed(first!, key3), { type: 'KEYS', addr: 3, boot: 1, seq: 1, keys: '9#', more: false }, 'KEYS 9#, boot 1, seq 1');
  t.same(pressed, { type: 'KEYS', addr: 3, boot: 1, seq: 1, keys: '9#' }, 'press returns the queued event');
  t.same(parseFrame(first!.frame, key5), { ok: false, reason: 'mac' }, 'the MAC is the keypad’s own (another key fails)');

  master.send({ type: 'POLL', addr: 3 });
  const [again] = await master.take(1);
  t.same(again!.frame.raw, first!.frame.raw, 'no ACK: the same event again, same seq');

  master.send({ type: 'ACK', addr: 3, ...master.next(), ackBoot: 1, ackSeq: 1 }, key3);
  await sim.waitFor(() => sim.pending(3) === 0);
  master.send({ type: 'POLL', addr: 3 });
  t.same(parsed((await master.take(1))[0]!), { type: 'NOTHING', addr: 3 }, 'after the ACK: NOTHING');
  t.equal(sim.pending(5), 1, 'the ACK for address 3 leaves address 5’s event queued');

  master.send({ type: 'POLL', addr: 5 });
  t.same(parsed((await master.take(1))[0]!, key5), { type: 'KEYS', addr: 5, boot: 4, seq: 1, keys: '1#', more: false }, 'address 5: its own boot');

  master.send({ type: 'ACK', addr: 5, ...master.next(), ackBoot: 4, ackSeq: 1 }, key3);
  t.same(await master.quiet(), []);
  t.equal(sim.pending(5), 1, 'an ACK under the wrong key clears nothing');
  t.equal(sim.stats.badMacs, 1);
});

t.test('up to 4 events an answer, oldest first, MORE_FOLLOWS on all but the last', async (t) => {
  const { sim, master } = await setup(t);
  sim.press(3, '1');
  sim.door(3, true);
  sim.tamper(3, true);
  sim.battery(3, 2950, true);
  sim.heartbeat(3);
  sim.selfTest(3, 7);
  sim.panic(3);

  master.send({ type: 'POLL', addr: 3 });
  const answer = (await master.take(4)).map((r) => parsed(r, key3));
  t.same(
    answer.map((f) => [f.type, 'seq' in f && f.seq, 'more' in f && f.more]),
    [
      ['KEYS', 1, true],
      ['DOOR', 2, true],
      ['TAMPER', 3, true],
      ['BATTERY', 4, false],
    ],
  );
  t.same(answer[3], { type: 'BATTERY', addr: 3, boot: 1, seq: 4, millivolts: 2950, low: true, more: false });

  master.send({ type: 'ACK', addr: 3, ...master.next(), ackBoot: 1, ackSeq: 2 }, key3);
  await sim.waitFor(() => sim.pending(3) === 5);
  master.send({ type: 'POLL', addr: 3 });
  const rest = (await master.take(4)).map((r) => parsed(r, key3));
  t.same(
    rest.map((f) => 'seq' in f && f.seq),
    [3, 4, 5, 6],
    'a cumulative ACK up to 2: the answer starts at 3',
  );
  t.same(rest[3], { type: 'SELFTEST', addr: 3, boot: 1, seq: 6, result: 7, more: false });

  master.send({ type: 'ACK', addr: 3, ...master.next(), ackBoot: 1, ackSeq: 6 }, key3);
  master.send({ type: 'POLL', addr: 3 });
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'PANIC', addr: 3, boot: 1, seq: 7, more: false });
});

t.test('commands: CMD_ACK and state when authentic, nothing when forged or replayed', async (t) => {
  const { sim, master } = await setup(t);
  const alert = alertDisplay('23号', '李记茶行');
  const show: CommandFrame = { type: 'DISPLAY', addr: 3, ...master.next(), lines: alert.lines };
  const showBytes = encodeFrame(show, key3);
  master.send(showBytes);
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'CMD_ACK', addr: 3, boot: 1, seq: 0, cmdBoot: 7, cmdSeq: 1 }, 'CMD_ACK names the command');
  t.same(sim.state(3).display, ['报警 23号', '李记茶行'], 'the display shows the alert');
  t.same(sim.state(3).displayRaw, alert.lines);

  const forged: CommandFrame = { type: 'DISPLAY', addr: 3, ...master.next(), lines: renderDisplay(['hacked', '']).lines };
  master.send(forged, key5);
  t.same(await master.quiet(), [], 'a DISPLAY under the wrong key: no CMD_ACK');
  t.same(sim.state(3).display, ['报警 23号', '李记茶行'], 'display unchanged');
  t.equal(sim.stats.badMacs, 1, 'the forged frame counted');

  master.send({ type: 'BUZZER', addr: 3, ...master.next(), on: true, seconds: 60 }, key3);
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'CMD_ACK', addr: 3, boot: 1, seq: 0, cmdBoot: 7, cmdSeq: 3 });
  t.same(sim.state(3).buzzer, { on: true, seconds: 60 });

  master.send(showBytes);
  t.same(await master.quiet(), [], 'an older command replayed: no CMD_ACK');
  t.equal(sim.stats.replays, 1);

  sim.press(3, '1#');
  master.send({ type: 'LED', addr: 3, ...master.next(), colour: 'red', blink: true }, key3);
  const led = { type: 'LED', addr: 3, boot: 7, seq: 4, colour: 'red', blink: true } as const;
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'CMD_ACK', addr: 3, boot: 1, seq: 1, cmdBoot: 7, cmdSeq: 4 }, 'seq: the latest event’s');
  master.send(led, key3);
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'CMD_ACK', addr: 3, boot: 1, seq: 1, cmdBoot: 7, cmdSeq: 4 }, 'the same command again (its CMD_ACK lost): acknowledged again');
  const st = sim.state(3);
  t.same(st.led, { colour: 'red', blink: true });
  t.same(
    st.commands.map((c) => [c.type, c.seq]),
    [
      ['DISPLAY', 1],
      ['BUZZER', 3],
      ['LED', 4],
    ],
    'each command executed once',
  );
  t.same(sim.state(5).commands, [], 'address 5 saw none of it');
});

t.test('a silent keypad answers nothing, and answers again when it speaks', async (t) => {
  const { sim, master } = await setup(t);
  sim.setSilent(3, true);
  master.send({ type: 'POLL', addr: 3 });
  t.same(await master.quiet(), [], 'no answer');
  master.send({ type: 'BUZZER', addr: 3, ...master.next(), on: true, seconds: 5 }, key3);
  t.same(await master.quiet(), [], 'no CMD_ACK either');
  t.same(sim.state(3).buzzer, { on: false, seconds: 0 }, 'as if unplugged: the command did not arrive');
  t.equal(sim.stats.polls, 1, 'the poll was seen');
  master.send({ type: 'POLL', addr: 5 });
  t.equal((await master.take(1))[0]!.frame.addr, 5, 'the other address still answers');

  sim.setSilent(3, false);
  master.send({ type: 'POLL', addr: 3 });
  t.same(parsed((await master.take(1))[0]!), { type: 'NOTHING', addr: 3 });
});

t.test('noise and broken frames on the line cost only themselves', async (t) => {
  const { sim, master } = await setup(t);
  const poll = encodeFrame({ type: 'POLL', addr: 3 });
  master.send(Buffer.concat([Buffer.from('00ff37a5', 'hex'), poll.subarray(0, 4), poll]));
  t.same(parsed((await master.take(1))[0]!), { type: 'NOTHING', addr: 3 }, 'the poll after the garbage is answered');
  t.equal(sim.stats.badFrames, 2, 'noise and the truncated frame counted');

  sim.sendRaw(Buffer.concat([Buffer.from('5a5a', 'hex'), encodeFrame({ type: 'NOTHING', addr: 5 })]));
  t.same(parsed((await master.take(1))[0]!), { type: 'NOTHING', addr: 5 }, 'sendRaw writes bytes as they are');
  t.same(master.bad, [{ ok: false, reason: 'noise', bytes: 2 }]);
});

t.test('reboot: boot + 1, seq from 1, the queue lost', async (t) => {
  const { sim, master } = await setup(t);
  sim.press(3, '9#');
  sim.reboot(3);
  t.equal(sim.pending(3), 0);
  t.same(sim.press(3, '2#'), { type: 'KEYS', addr: 3, boot: 2, seq: 1, keys: '2#' });
  master.send({ type: 'POLL', addr: 3 });
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'KEYS', addr: 3, boot: 2, seq: 1, keys: '2#', more: false });
  t.throws(() => sim.press(3, '9A'), RangeError, 'keys the contract cannot carry are refused at once');
  t.throws(() => sim.press(4, '9#'), RangeError, 'an address the simulator does not serve');
});

t.test('answers take the wire time of the request and of the answer (lower bound only)', async (t) => {
  const baud = 1200;
  const { sim, master } = await setup(t, { baud, turnaroundMs: 5 });
  const poll = encodeFrame({ type: 'POLL', addr: 3 });

  let sentAt = master.send(poll);
  const [nothing] = await master.take(1);
  const floor = wireTimeMs(poll.length, baud) + 5 + wireTimeMs(nothing!.frame.raw.length, baud);
  t.ok(nothing!.at - sentAt >= floor, `NOTHING after ${(nothing!.at - sentAt).toFixed(1)} ms ≥ ${floor.toFixed(1)} ms`);

  sim.press(3, '9#');
  sim.panic(3);
  sentAt = master.send(poll);
  const [a, b] = await master.take(2);
  const floorA = wireTimeMs(poll.length, baud) + 5 + wireTimeMs(a!.frame.raw.length, baud);
  const floorB = floorA + wireTimeMs(b!.frame.raw.length, baud);
  t.ok(a!.at - sentAt >= floorA, `first event after ${(a!.at - sentAt).toFixed(1)} ms ≥ ${floorA.toFixed(1)} ms`);
  t.ok(b!.at - sentAt >= floorB, `second event after ${(b!.at - sentAt).toFixed(1)} ms ≥ ${floorB.toFixed(1)} ms: back to back, not at once`);
});

t.test('runSerialKeypadSim: key presses from input lines, commands printed as text', async (t) => {
  const pty = await openPtyPair();
  const input = new PassThrough();
  const log: string[] = [];
  const sim = await runSerialKeypadSim({ path: pty.a, keypads: [{ address: 3, key: key3 }] }, (l) => log.push(l), input);
  const port = new SerialPort({ path: pty.b, baudRate: 9600, autoOpen: false });
  t.teardown(async () => {
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    await sim.close();
    await pty.close();
  });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const master = new Master(port);

  input.write('3 9#\n');
  input.write('3 sing\n');
  await sim.waitFor(() => sim.pending(3) === 1);
  master.send({ type: 'POLL', addr: 3 });
  t.same(parsed((await master.take(1))[0]!, key3), { type: 'KEYS', addr: 3, boot: 1, seq: 1, keys: '9#', more: false }, '"3 9#" pressed 9#');

  master.send({ type: 'DISPLAY', addr: 3, ...master.next(), lines: alertDisplay('23号', '李记茶行').lines }, key3);
  master.send({ type: 'BUZZER', addr: 3, ...master.next(), on: true, seconds: 60 }, key3);
  await master.take(2);
  t.ok(log.includes('addr 3 sent KEYS 9# (boot 1, seq 1)'), 'the event sent');
  t.ok(log.includes('addr 3 DISPLAY 报警 23号 / 李记茶行'), 'the display as text');
  t.ok(log.includes('addr 3 BUZZER on 60s'), 'the buzzer');
  t.ok(log.some((l) => l.startsWith('usage: ')), 'a line it does not understand gets the usage');
});
