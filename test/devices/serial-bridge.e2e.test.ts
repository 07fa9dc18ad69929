/**
 * The serial bridge end to end: the gateway as a child process, master of real pty lines (socat),
 * with the keypad simulator on the other end of one line and a raw, hand-driven "keypad" on another.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { SerialPort } from 'serialport';
import { GatewayProcess, cli, nearestShops, query, tempDataDir } from '../helpers/gateway.js';
import { OFFICER, STATION, addWiredDevice, eventually, faultWatcher, provisionRow } from '../helpers/wired.js';
import { openPtyPair, type PtyPair } from '../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../simulators/serial-keypad.js';
import { SimConsole } from '../../simulators/mqtt-devices.js';
import { encodeFrame, FrameDecoder, parseFrame, type KeypadFrame } from '../../firmware-contracts/serial/codec.js';

const data = tempDataDir(t);
const shops = await provisionRow(data, 13);
const lineA = await openPtyPair();
const lineBDir = mkdtempSync(join(tmpdir(), 'lf-line-b-'));
let lineB: PtyPair = await openPtyPair({ dir: lineBDir });
const lineC = await openPtyPair();
t.teardown(async () => {
  await Promise.all([lineA.close(), lineB.close(), lineC.close()]);
});

// Line A: a keypad for each of the 13 shops, at addresses 1…13, all served by one simulator.
const keys = new Map<number, Buffer>();
for (const [i, s] of shops.entries()) {
  const { key } = addWiredDevice(data, { shopId: s.shopId, type: 'keypad', transport: 'serial', port: lineA.a, busAddress: i + 1 });
  keys.set(i + 1, key!);
}
const addressOf = (shopId: string) => shops.findIndex((s) => s.shopId === shopId) + 1;

// Line B: one keypad of shop W12 at address 5, played by the test itself, byte by byte.
const raw = addWiredDevice(data, { shopId: 'W12', type: 'keypad', transport: 'serial', port: lineB.a, busAddress: 5, baud: 19200 });

const gw = await GatewayProcess.start(t, data, {
  LF_SUPERVISION_FAULT_AFTER_MS: '3000',
  LF_SUPERVISION_CHECK_INTERVAL_MS: '100',
  LF_SERIAL_POLL_PAUSE_MS: '5',
  LF_SERIAL_REOPEN_BACKOFF_MS: '50',
  LF_SERIAL_REOPEN_BACKOFF_MAX_MS: '300',
});

const sim = new SerialKeypadSim({ path: lineA.b, keypads: [...keys].map(([address, key]) => ({ address, key })) });
await sim.start();
t.teardown(() => sim.close());

const officer = await new SimConsole(STATION, OFFICER).connect(gw.mqttUrl);
t.teardown(() => officer.close());

/** A hand-driven keypad on line B: answers NOTHING and confirms commands, unless told otherwise. */
class RawKeypad {
  port!: SerialPort;
  readonly heard: KeypadFrame[] = [];
  /** Bytes to send in answer to the next POLL instead of NOTHING. */
  nextAnswer: Buffer | null = null;
  private readonly decoder = new FrameDecoder();

  constructor(
    readonly path: string,
    readonly addr: number,
    readonly key: Buffer,
  ) {}

  async open(): Promise<void> {
    this.port = new SerialPort({ path: this.path, baudRate: 19200, autoOpen: false });
    await new Promise<void>((res, rej) => this.port.open((e) => (e ? rej(e) : res())));
    this.port.on('error', () => {});
    this.port.on('data', (chunk: Buffer) => {
      for (const r of this.decoder.push(chunk)) {
        if (!r.ok || r.frame.addr !== this.addr) continue;
        const p = parseFrame(r.frame, this.key);
        if (!p.ok) continue;
        this.heard.push(p.frame);
        if (p.frame.type === 'POLL') {
          const answer = this.nextAnswer ?? encodeFrame({ type: 'NOTHING', addr: this.addr });
          this.nextAnswer = null;
          this.port.write(answer);
        } else if (p.frame.type === 'BUZZER' || p.frame.type === 'DISPLAY' || p.frame.type === 'LED') {
          this.port.write(encodeFrame({ type: 'CMD_ACK', addr: this.addr, boot: 1, seq: 1000 + this.heard.length, cmdBoot: p.frame.boot, cmdSeq: p.frame.seq }, this.key));
        }
      }
    });
  }

  close(): Promise<void> {
    return new Promise((res) => (this.port.isOpen ? this.port.close(() => res()) : res()));
  }

  acks(): number[] {
    return this.heard.flatMap((f) => (f.type === 'ACK' ? [f.ackSeq] : []));
  }
}

const rawKeypad = new RawKeypad(lineB.b, 5, raw.key!);
await rawKeypad.open();
t.teardown(() => rawKeypad.close());

const counter = async (name: string) => Number((await gw.health()).counters?.[name] ?? 0);
const droppedTotal = async () => {
  const c = (await gw.health()).counters as Record<string, number>;
  return Object.entries(c)
    .filter(([k]) => k.startsWith('serial.frames.dropped.'))
    .reduce((n, [, v]) => n + v, 0);
};

t.test('9# on a wired keypad reaches the ten nearest keypads (buzzer and display) and the console', async (t) => {
  const origin = shops[6]!;
  const addr = addressOf(origin.shopId);
  sim.press(addr, '9#');
  const alarm = await officer.waitFor((a) => a.shopId === origin.shopId, 30_000);
  t.equal(alarm.kind, 'panic');
  await sim.waitFor(() => sim.pending(addr) === 0, 30_000);
  t.pass('the keypad got its ACK: its event is no longer queued');

  const neighbours = nearestShops(data, origin.shopId);
  t.equal(neighbours.length, 10);
  const shown = (a: number) => sim.state(a).display;
  await sim.waitFor(() => neighbours.every((id) => shown(addressOf(id))[0] === `报警 ${origin.doorPlate}` && sim.state(addressOf(id)).buzzer.on), 60_000);
  for (const id of neighbours) {
    const st = sim.state(addressOf(id));
    t.same(st.display, [`报警 ${origin.doorPlate}`, origin.name], `${id} shows who is in trouble`);
    t.ok(st.buzzer.on, `${id} buzzes`);
  }
  for (const s of shops.filter((s) => !neighbours.includes(s.shopId))) {
    const st = sim.state(addressOf(s.shopId));
    t.same(st.display, ['', ''], `${s.shopId} (${s.shopId === origin.shopId ? 'the origin' : 'not among the ten'}) shows nothing`);
    t.notOk(st.buzzer.on);
  }
  // Delivered means the keypad confirmed the display: every neighbour's outbox row is marked.
  await eventually(
    () => query(data, "SELECT count(*) AS n FROM outbox WHERE alarm_id = ? AND recipient_kind = 'shop' AND delivered_by LIKE 'device:%'", alarm.alarmId)[0]!.n === 10,
    'ten shop deliveries confirmed by keypads',
  );
  const events = query<{ n: number }>(data, "SELECT count(*) AS n FROM events WHERE via = 'serial' AND type = 'keypad'");
  t.ok(events[0]!.n >= 1, 'the key presses were stored as serial events');

  // The officer closes it: every alerted keypad is told it is over (display cleared, buzzer off).
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'acknowledged');
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
  await sim.waitFor(() => neighbours.every((id) => shown(addressOf(id))[0] === '' && !sim.state(addressOf(id)).buzzer.on), 60_000);
  t.pass('alarm closed: the neighbours\' displays are cleared and buzzers off');
});

t.test('the ACK reaches the keypad only after its event is committed', async (t) => {
  const origin = shops[3]!;
  const addr = addressOf(origin.shopId);
  const deviceId = query<{ id: string }>(data, 'SELECT id FROM devices WHERE shop_id = ? AND bus_address = ?', origin.shopId, addr)[0]!.id;
  // Hold the commit: a trigger (in the database file, so the gateway's connection sees it) fails
  // every insert of this keypad's events.
  const db = new Database(join(data, 'lianfang.db'));
  t.teardown(() => db.close());
  db.exec(`CREATE TRIGGER hold_commit BEFORE INSERT ON events WHEN NEW.device_id = '${deviceId}' BEGIN SELECT RAISE(ABORT, 'commit held by the test'); END`);
  let acks = 0;
  let sent = 0;
  const onAck = (a: number) => a === addr && acks++;
  const onSent = (a: number, f: KeypadFrame) => a === addr && f.type === 'KEYS' && sent++;
  sim.on('ack', onAck);
  sim.on('sent', onSent);
  t.teardown(() => {
    sim.off('ack', onAck);
    sim.off('sent', onSent);
  });
  sim.press(addr, '9#');
  await sim.waitFor(() => sent >= 3, 30_000);
  t.equal(acks, 0, 'no ACK while the commit fails: the keypad repeated its event at every poll');
  t.equal(sim.pending(addr), 1, 'the event is still queued in the keypad');
  t.equal(query(data, 'SELECT count(*) AS n FROM alarms WHERE shop_id = ?', origin.shopId)[0]!.n, 0, 'no alarm from an event that is not stored');

  db.exec('DROP TRIGGER hold_commit');
  await sim.waitFor(() => acks > 0, 30_000);
  t.equal(sim.pending(addr), 0, 'committed, then acknowledged');
  const alarm = await officer.waitFor((a) => a.shopId === origin.shopId, 30_000);
  t.equal(query(data, 'SELECT count(*) AS n FROM alarms WHERE shop_id = ?', origin.shopId)[0]!.n, 1, 'the repeats made one alarm');
  t.equal(query(data, "SELECT count(*) AS n FROM events WHERE device_id = ? AND type = 'keypad'", deviceId)[0]!.n, 1, 'and one stored event');
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
});

t.test('a forged frame (wrong MAC) raises nothing and is not acknowledged', async (t) => {
  const wrongKey = Buffer.alloc(32, 7);
  const before = await counter('serial.frames.rejected.mac');
  rawKeypad.nextAnswer = encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 1, keys: '9#' }, wrongKey);
  await eventually(async () => (await counter('serial.frames.rejected.mac')) > before, 'the forged frame rejected');
  t.same(rawKeypad.acks(), [], 'no ACK for it');
  t.equal(query(data, "SELECT count(*) AS n FROM alarms WHERE shop_id = 'W12'")[0]!.n, 0, 'no alarm');
  t.equal(query(data, 'SELECT count(*) AS n FROM events WHERE device_id = ?', raw.deviceId)[0]!.n, 0, 'no event stored');
});

t.test('noise, a bad CRC and a truncated frame are dropped and counted; the good frame glued after them still raises', async (t) => {
  const good = encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 1, keys: '9#' }, raw.key!);
  const badCrc = Buffer.from(encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 2, keys: '1#' }, raw.key!));
  badCrc[badCrc.length - 1] ^= 0xff;
  const truncated = encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 3, keys: '2#' }, raw.key!).subarray(0, 9);
  const noise = Buffer.from([0x00, 0xff, 0x13, 0xa5, 0x37, 0x5a, 0x99]);
  const droppedBefore = await droppedTotal();
  rawKeypad.nextAnswer = Buffer.concat([noise, badCrc, truncated, good]);
  const alarm = await officer.waitFor((a) => a.shopId === 'W12', 30_000);
  t.equal(alarm.kind, 'panic', 'the good frame raised the alarm');
  await eventually(() => rawKeypad.acks().includes(1), 'the ACK of the good frame');
  t.ok((await droppedTotal()) >= droppedBefore + 3, 'the bad bytes were dropped and counted');
  const stored = query<{ seq: number }>(data, 'SELECT seq FROM events WHERE device_id = ?', raw.deviceId);
  t.same(stored.map((r) => r.seq), [1], 'only the good frame was stored');
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
});

t.test('two event frames glued in one answer are both taken, in order, and acknowledged together', async (t) => {
  const first = encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 2, keys: '4', more: true }, raw.key!);
  const second = encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 3, keys: '#' }, raw.key!);
  rawKeypad.nextAnswer = Buffer.concat([first, second]);
  await eventually(() => rawKeypad.acks().includes(3), 'one cumulative ACK up to seq 3');
  t.notOk(rawKeypad.acks().includes(2), 'no separate ACK for the first');
  const stored = query<{ seq: number; payload: string }>(data, 'SELECT seq, payload FROM events WHERE device_id = ? ORDER BY id', raw.deviceId);
  t.same(stored.map((r) => [r.seq, JSON.parse(r.payload).keys]), [[1, '9#'], [2, '4'], [3, '#']]);
});

t.test('a frame after a lost one waits for the resend: no event is taken out of order', async (t) => {
  const lost = Buffer.from(encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 4, keys: '5', more: true }, raw.key!));
  lost[lost.length - 1] ^= 0x55;
  const after = encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 5, keys: '#' }, raw.key!);
  const acksBefore = rawKeypad.acks().length;
  const gapsBefore = await counter('serial.events.after-gap');
  rawKeypad.nextAnswer = Buffer.concat([lost, after]);
  await eventually(async () => (await counter('serial.events.after-gap')) > gapsBefore, 'the frame after the gap held back');
  t.equal(rawKeypad.acks().length, acksBefore, 'nothing acknowledged');
  t.equal(query(data, 'SELECT count(*) AS n FROM events WHERE device_id = ? AND seq >= 4', raw.deviceId)[0]!.n, 0, 'nothing stored');
  // The keypad resends both, intact this time.
  rawKeypad.nextAnswer = Buffer.concat([encodeFrame({ type: 'KEYS', addr: 5, boot: 1, seq: 4, keys: '5', more: true }, raw.key!), after]);
  await eventually(() => rawKeypad.acks().includes(5), 'both taken on the resend');
  t.same(query<{ seq: number }>(data, 'SELECT seq FROM events WHERE device_id = ? AND seq >= 4 ORDER BY id', raw.deviceId).map((r) => r.seq), [4, 5]);
});

t.test('a keypad line that goes silent becomes a fault, and clears itself when it answers again', async (t) => {
  const watch = await faultWatcher(gw.mqttUrl);
  t.teardown(() => watch.client.endAsync(true));
  // Only an authenticated frame proves the keypad alive (its NOTHING does not): a HEARTBEAT next in its sequence.
  const heartbeat = () => {
    const last = query<{ seq: number }>(data, 'SELECT max(seq) AS seq FROM events WHERE device_id = ? AND boot = 1', raw.deviceId)[0]!.seq;
    return { seq: last + 1, frame: encodeFrame({ type: 'HEARTBEAT', addr: 5, boot: 1, seq: last + 1 }, raw.key!) };
  };
  const beat = heartbeat();
  rawKeypad.nextAnswer = beat.frame;
  await eventually(() => rawKeypad.acks().includes(beat.seq), 'the heartbeat acknowledged');
  const from = watch.faults.length;
  // Pull the cable: the pty pair goes away.
  await rawKeypad.close();
  await lineB.close();
  await eventually(() => watch.faults.slice(from).some((f) => f.deviceId === raw.deviceId && f.state === 'raised'), 'fault raised on the console');
  t.ok((await gw.health()).faults.some((f: { deviceId: string }) => f.deviceId === raw.deviceId), '/health lists the fault');
  t.equal(query(data, 'SELECT count(*) AS n FROM faults WHERE device_id = ? AND cleared_at IS NULL', raw.deviceId)[0]!.n, 1, 'the fault is stored');
  // Plug it back in at the same place; the gateway reopens the port without a restart.
  lineB = await openPtyPair({ dir: lineBDir });
  rawKeypad.heard.length = 0;
  const again = new RawKeypad(lineB.b, 5, raw.key!);
  again.nextAnswer = heartbeat().frame;
  await again.open();
  t.teardown(() => again.close());
  // From the raise on: a console that subscribes also gets the fault changes it missed before.
  await eventually(() => watch.faults.slice(from).some((f) => f.deviceId === raw.deviceId && f.state === 'cleared'), 'fault cleared on the console');
  t.equal(query(data, 'SELECT count(*) AS n FROM faults WHERE device_id = ? AND cleared_at IS NULL', raw.deviceId)[0]!.n, 0, 'and in the store');
  t.equal(gw.exitCode, null, 'the gateway kept running');
});

t.test('a keypad added with the CLI to a running gateway is polled at once; bus scan goes through the gateway', async (t) => {
  const added = await cli(['device', 'add', '--shop', 'W09', '--type', 'keypad', '--transport', 'serial', '--port', lineC.a, '--bus-address', '2', '--json', '--data', data]);
  t.equal(added.code, 0, added.stderr);
  const out = JSON.parse(added.stdout) as { deviceId: string; macKey: string; bus: string; busAddress: number };
  t.match(out.macKey, /^[0-9a-f]{64}$/, 'the MAC key is printed once, as 64 hex digits');
  t.equal(out.busAddress, 2);
  t.notMatch(JSON.stringify(query(data, 'SELECT * FROM devices WHERE id = ?', out.deviceId)), out.macKey, 'the database does not hold the key in clear');
  const simC = new SerialKeypadSim({ path: lineC.b, keypads: [{ address: 2, key: Buffer.from(out.macKey, 'hex') }] });
  await simC.start();
  t.teardown(() => simC.close());
  simC.press(2, '9#');
  const alarm = await officer.waitFor((a) => a.shopId === 'W09', 30_000);
  t.ok(alarm.alarmId, 'its 9# raised an alarm without a restart');

  const scan = await cli(['bus', 'scan', out.bus, '--from', '1', '--to', '3', '--timeout-ms', '100', '--json', '--data', data]);
  t.equal(scan.code, 0, scan.stderr);
  const hits = JSON.parse(scan.stdout) as { address: number; deviceId: string }[];
  t.same(hits.map((h) => [h.address, h.deviceId]), [[2, out.deviceId]], 'only address 2 answers, and it is the registered keypad');
  await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
  await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'test' });
});

t.test('the gateway never crashed', async (t) => {
  t.equal(gw.exitCode, null);
  t.equal((await gw.health()).up, true);
});
