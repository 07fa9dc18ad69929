/**
 * The Modbus I/O module simulators (simulators/modbus-module.ts) on real wires: an RTU slave on
 * one end of a pty pair with modbus-serial's buffered RTU master on the other, raw bytes for what
 * a library master cannot send, a TCP slave on loopback, and mbpoll (libmodbus) as an independent
 * master over both. Only lower bounds on time are asserted: the machine is shared and slow.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PassThrough } from 'node:stream';
import { connect } from 'node:net';
import modbusSerial from 'modbus-serial';
import { SerialPort } from 'serialport';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { wireTimeMs } from '../../firmware-contracts/wire-timing.js';
import { IoModule, ModbusRtuSlaveSim, ModbusTcpSlaveSim, runModbusSim } from '../../simulators/modbus-module.js';
import { encodeRequest, decodeResponse, expectedResponseLength } from '../../firmware-contracts/modbus/rtu.js';
import { DOOR_LATCH_8IO, latchClearMask } from '../../firmware-contracts/modbus/register-map.js';
import { withCrc } from '../../firmware-contracts/crc16.js';

const run = promisify(execFile);
/** Under NodeNext the default import is module.exports; its typings put the client class on `.default` (which is module.exports itself at run time). */
const ModbusRTU = modbusSerial.default;
const BAUD = 19200;
const TURNAROUND_MS = 5;
/** Generous: only the fault tests wait for it, and a loaded machine must not fail a healthy read. */
const TIMEOUT_MS = 1000;
const LATCH_CLEAR = 1;
const INPUT_STATE = 2;

type Client = InstanceType<typeof ModbusRTU>;

/** modbus-serial rejects a timeout with errno ETIMEDOUT and an exception response with `modbusCode`. */
async function failure(p: Promise<unknown>): Promise<{ errno?: string; modbusCode?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { errno?: string; modbusCode?: number; message: string };
  }
  throw new Error('the request succeeded');
}

async function connectRtu(path: string): Promise<Client> {
  const client = new ModbusRTU();
  await client.connectRTUBuffered(path, { baudRate: BAUD });
  client.setTimeout(TIMEOUT_MS);
  return client;
}

/** Close, waiting for the port's lock to go: an RTU client left open keeps the pty locked. */
function closeClient(client: Client): Promise<void> {
  return new Promise((resolve) => (client.isOpen ? client.close(() => resolve()) : resolve()));
}

/** mbpoll's values by its 1-based reference: "[3]: \t1". */
function parseMbpoll(stdout: string): Map<number, number> {
  return new Map([...stdout.matchAll(/^\[(\d+)\]:\s+(-?\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]));
}

t.test('RTU slave: two unit ids on one bus, read by a modbus-serial master', async (t) => {
  const pty = await openPtyPair();
  t.teardown(() => pty.close());
  const unit3 = new IoModule();
  const unit5 = new IoModule();
  const sim = await new ModbusRtuSlaveSim({ path: pty.a, baud: BAUD, turnaroundMs: TURNAROUND_MS, modules: new Map([[3, unit3], [5, unit5]]) }).start();
  t.teardown(() => sim.close());
  let client = await connectRtu(pty.b);
  t.teardown(() => closeClient(client));
  const readInputs = async (unitId: number) => {
    client.setID(unitId);
    return (await client.readDiscreteInputs(0, 8)).data;
  };

  await t.test('each unit answers with its own inputs', async (t) => {
    unit3.setInput(1, true);
    unit5.setInput(4, true);
    t.same(await readInputs(3), [false, true, false, false, false, false, false, false], 'unit 3: door open');
    t.same(await readInputs(5), [false, false, false, false, true, false, false, false], 'unit 5: input 4 latched');
    unit3.setInput(1, false);
    unit5.setInput(4, false);
    t.same(await readInputs(3), Array(8).fill(false), 'the door is live: closed reads 0 at once');
    client.setID(5);
    await client.writeRegister(LATCH_CLEAR, latchClearMask([4]));
  });

  await t.test('a 50 ms pulse between reads stays latched until its latch-clear bit is written', async (t) => {
    t.equal((await readInputs(3))[0], false, 'panic idle');
    await unit3.pulse(0, 50);
    t.equal(unit3.input(0), false, 'the button is released before the next read');
    t.equal((await readInputs(3))[0], true, 'the next read sees the press');
    t.equal((await readInputs(3))[0], true, 'and the one after: no clear yet');
    client.setID(3);
    t.same((await client.readHoldingRegisters(INPUT_STATE, 1)).data, [0], 'the live state register shows it released');
    t.same((await client.readHoldingRegisters(LATCH_CLEAR, 1)).data, [0], 'latch-clear reads 0');
    await client.writeRegister(LATCH_CLEAR, latchClearMask([0]));
    t.equal((await readInputs(3))[0], false, 'cleared after the commit');
  });

  await t.test('a held button is one activation; the clear names only committed inputs', async (t) => {
    unit5.setInput(0, true);
    await unit5.pulse(2, 50);
    t.same((await readInputs(5)).slice(0, 3), [true, false, true], 'panic and tamper latched');
    // Between the read and the clear, input 3 latches: the clear does not name it.
    await unit5.pulse(3, 50);
    client.setID(5);
    await client.writeRegister(LATCH_CLEAR, latchClearMask([0]));
    t.same((await readInputs(5)).slice(0, 4), [false, false, true, true], 'panic cleared though still held; tamper and input 3 kept');
    t.same((await client.readHoldingRegisters(INPUT_STATE, 1)).data, [0b1], 'the live register: panic still held');
    await client.writeRegisters(LATCH_CLEAR, [latchClearMask([2, 3])]);
    t.same(await readInputs(5), Array(8).fill(false), 'FC10 clears as FC06 does');
    unit5.setInput(0, false);
  });

  await t.test('coil writes are recorded: who switched what, when', async (t) => {
    const before = Date.now();
    client.setID(3);
    await client.writeCoil(0, true);
    t.equal(unit3.coils.get(0), true, 'sounder on');
    t.match(unit3.coilHistory.at(-1), { address: 0, name: 'sounder', on: true, by: 'rtu' });
    t.ok(unit3.coilHistory.at(-1)!.atMs >= before, 'timestamped');
    await client.writeCoils(0, [false, true, true]);
    t.same(
      unit3.coilHistory.slice(-3).map((c) => [c.name, c.on]),
      [['sounder', false], ['strobe', true], ['out3', true]],
      'FC0F: each coil recorded',
    );
    t.same((await client.readCoils(0, 8)).data, [false, true, true, false, false, false, false, false], 'FC01 reads them back');
    t.equal(unit5.coilHistory.length, 0, 'the other unit was not touched');
    t.same((await client.readHoldingRegisters(0, 1)).data, [0x0102], 'firmware version 1.2');
  });

  await t.test('refusals and faults', async (t) => {
    client.setID(3);
    t.equal((await failure(client.readDiscreteInputs(6, 4))).modbusCode, 2, 'inputs 8 and 9 do not exist: exception 2');
    t.equal((await failure(client.writeRegister(0, 1))).modbusCode, 2, 'the firmware register is read-only: exception 2');

    unit3.fault = 'exception';
    t.equal((await failure(client.readDiscreteInputs(0, 8))).modbusCode, 4, 'exception fault: exception 4');
    unit3.fault = 'silent';
    t.equal((await failure(client.readDiscreteInputs(0, 8))).errno, 'ETIMEDOUT', 'silent fault: the master times out');
    unit3.fault = 'none';
    t.equal((await readInputs(5)).length, 8, 'the bus still works for the other unit');

    const otherUnits = sim.stats.otherUnits;
    client.setID(9);
    t.equal((await failure(client.readDiscreteInputs(0, 8))).errno, 'ETIMEDOUT', 'a unit id nobody serves: silence, a timeout');
    t.equal(sim.stats.otherUnits, otherUnits + 1, 'counted as for another unit');

    unit3.fault = 'garbage';
    client.setID(3);
    const err = await failure(client.readDiscreteInputs(0, 8));
    t.ok(err.errno === 'ETIMEDOUT' || /CRC|Data length|Unexpected/.test(err.message), `garbage fault: no valid answer (${err.message})`);
    unit3.fault = 'none';
    // modbus-serial's buffered RTU port keeps unmatched bytes; a master reopens after garbage.
    await closeClient(client);
    client = await connectRtu(pty.b);
    t.equal((await readInputs(3)).length, 8, 'after reopening, unit 3 answers again');
  });

  await t.test('pacing: a round trip takes at least the wire time of both frames plus the turnaround', async (t) => {
    client.setID(3);
    const lowerBound = wireTimeMs(8 + 6, BAUD) + TURNAROUND_MS;
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      await client.readDiscreteInputs(0, 8);
      const took = performance.now() - start;
      t.ok(took >= lowerBound, `round trip ${took.toFixed(2)} ms ≥ ${lowerBound.toFixed(2)} ms`);
    }
  });
});

t.test('door-latch-8io: the door\'s change latch is set at every edge, the level is in inputState', async (t) => {
  const DOOR = 1;
  const pty = await openPtyPair();
  t.teardown(() => pty.close());
  const unit = new IoModule({ map: DOOR_LATCH_8IO });
  const sim = await new ModbusRtuSlaveSim({ path: pty.a, baud: BAUD, turnaroundMs: TURNAROUND_MS, modules: new Map([[4, unit]]) }).start();
  t.teardown(() => sim.close());
  const client = await connectRtu(pty.b);
  t.teardown(() => closeClient(client));
  client.setID(4);
  const door = async () => ({ latch: (await client.readDiscreteInputs(0, 8)).data[DOOR], level: ((await client.readHoldingRegisters(INPUT_STATE, 1)).data[0]! >> DOOR) & 1 });
  const clear = () => client.writeRegister(LATCH_CLEAR, latchClearMask([DOOR]));

  t.same(await door(), { latch: false, level: 0 }, 'closed, nothing latched');
  await unit.pulse(DOOR, 50);
  t.same(await door(), { latch: true, level: 0 }, 'opened and closed between two reads: latched, closed again');
  t.same(await door(), { latch: true, level: 0 }, 'still latched: nothing cleared it');
  await clear();
  t.same(await door(), { latch: false, level: 0 }, 'cleared');

  unit.setInput(DOOR, true);
  t.same(await door(), { latch: true, level: 1 }, 'the opening alone latches');
  await clear();
  t.same(await door(), { latch: false, level: 1 }, 'cleared while it stays open: the level says open, the latch 0');
  unit.setInput(DOOR, true);
  t.equal(unit.latchMask, 0, 'driving it open again is no edge');
  unit.setInput(DOOR, false);
  t.same(await door(), { latch: true, level: 0 }, 'the closing latches too (a plain latched input would not)');
  await clear();

  // The other inputs are as in generic-8io: the panic latches on going active only.
  unit.setInput(0, true);
  unit.setInput(0, false);
  unit.setInput(0, true);
  await client.writeRegister(LATCH_CLEAR, latchClearMask([0]));
  unit.setInput(0, false);
  t.equal((await client.readDiscreteInputs(0, 8)).data[0], false, 'a panic released after its clear does not latch again');
});

t.test('RTU slave on the raw wire: bad CRC, broadcast, golden answers', async (t) => {
  const pty = await openPtyPair();
  t.teardown(() => pty.close());
  const sim = await new ModbusRtuSlaveSim({ path: pty.a, modules: [{ unitId: 3 }, { unitId: 4, map: 'generic-8io' }] }).start();
  t.teardown(() => sim.close());
  const port = new SerialPort({ path: pty.b, baudRate: BAUD, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => port.close(() => resolve())));
  let rx = Buffer.alloc(0);
  port.on('data', (d: Buffer) => (rx = Buffer.concat([rx, d])));
  const quiet = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Wait for one whole response (lengths per the contract); bounded only to fail instead of hanging. */
  const response = async (): Promise<Buffer> => {
    for (let waited = 0; waited < 10_000; waited += 5) {
      const n = expectedResponseLength(rx);
      if (typeof n === 'number' && rx.length >= n) {
        const frame = rx.subarray(0, n);
        rx = rx.subarray(n);
        return frame;
      }
      await quiet(5);
    }
    throw new Error(`no complete response; got ${rx.toString('hex')}`);
  };

  sim.modules.get(3)!.setInput(0, true);
  const poll = encodeRequest({ unitId: 3, fc: 2, address: 0, quantity: 8 });
  const broken = Buffer.from(poll);
  broken[7]! ^= 0xff;
  port.write(broken);
  await quiet(300);
  t.equal(rx.length, 0, 'a request with a bad CRC gets no answer');
  t.equal(sim.stats.badCrc, 1, 'and is counted');

  port.write(poll);
  t.equal((await response()).toString('hex'), '0302010161f0', 'the same request intact: 03 02 01 01 61 F0 (panic latched)');

  port.write(encodeRequest({ unitId: 0, fc: 5, address: 0, value: true }));
  await quiet(300);
  t.equal(rx.length, 0, 'a broadcast is never answered');
  t.equal(sim.stats.broadcasts, 1);
  t.same([sim.modules.get(3)!.coils.get(0), sim.modules.get(4)!.coils.get(0)], [true, true], 'but every module switched its sounder');
  t.equal(sim.modules.get(4)!.coilHistory[0]!.by, 'rtu broadcast');

  // A function the contract does not know, with a good CRC: refused with ILLEGAL FUNCTION.
  port.write(withCrc(Buffer.from('040400000001', 'hex')));
  t.same(decodeResponse(await response()), { unitId: 4, fc: 4, exception: 1 }, 'FC04: exception 1');

  // Two requests written back to back are two frames, each answered in turn.
  port.write(Buffer.concat([encodeRequest({ unitId: 4, fc: 3, address: 0, quantity: 1 }), encodeRequest({ unitId: 3, fc: 1, address: 0, quantity: 2 })]));
  t.same(decodeResponse(await response()), { unitId: 4, fc: 3, registers: [0x0102] });
  t.same(decodeResponse(await response(), 2), { unitId: 3, fc: 1, bits: [true, false] });
  t.ok(sim.stats.requests >= 5 && sim.stats.answered >= 4, `stats ${JSON.stringify(sim.stats)}`);
});

t.test('mbpoll (libmodbus) reads the RTU simulator', async (t) => {
  const pty = await openPtyPair();
  t.teardown(() => pty.close());
  const sim = await new ModbusRtuSlaveSim({ path: pty.a, modules: [{ unitId: 3 }] }).start();
  t.teardown(() => sim.close());
  const m = sim.modules.get(3)!;
  m.setInput(1, true);
  await m.pulse(6, 50);
  // mbpoll numbers references from 1: -r 1 is input address 0.
  const { stdout } = await run('mbpoll', ['-m', 'rtu', '-b', String(BAUD), '-P', 'none', '-a', '3', '-t', '1', '-r', '1', '-c', '8', '-o', '5', '-1', pty.b], {
    timeout: 60_000,
  });
  const values = parseMbpoll(stdout);
  t.same([...values.entries()], [[1, 0], [2, 1], [3, 0], [4, 0], [5, 0], [6, 0], [7, 1], [8, 0]], 'door (ref 2) open, in7 (ref 7) latched');
});

t.test('TCP slave: modbus-serial and mbpoll', async (t) => {
  const unit3 = new IoModule();
  const sim = await new ModbusTcpSlaveSim({ modules: new Map([[3, unit3], [5, new IoModule()]]) }).start();
  t.teardown(() => sim.close());
  t.ok(sim.port > 0 && sim.port !== 502, `listening on a free port (${sim.port})`);
  unit3.setInput(2, true);
  unit3.setInput(2, false);

  const { stdout } = await run('mbpoll', ['-m', 'tcp', '-p', String(sim.port), '-a', '3', '-t', '1', '-r', '1', '-c', '8', '-o', '5', '-1', '127.0.0.1'], { timeout: 60_000 });
  t.same([...parseMbpoll(stdout).entries()].filter(([, v]) => v === 1), [[3, 1]], 'mbpoll sees the latched tamper (ref 3)');

  const client = new ModbusRTU();
  await client.connectTCP('127.0.0.1', { port: sim.port });
  client.setTimeout(TIMEOUT_MS);
  t.teardown(() => closeClient(client));
  client.setID(3);
  t.same((await client.readDiscreteInputs(0, 8)).data.slice(0, 3), [false, false, true]);
  await client.writeRegister(LATCH_CLEAR, latchClearMask([2]));
  t.same((await client.readDiscreteInputs(0, 8)).data, Array(8).fill(false), 'latch cleared over TCP');
  await client.writeCoil(0, true);
  t.match(unit3.coilHistory.at(-1), { name: 'sounder', on: true, by: 'tcp' });
  t.equal((await failure(client.readDiscreteInputs(0, 9))).modbusCode, 2, 'input 8 does not exist: exception 2');
  unit3.fault = 'exception';
  t.equal((await failure(client.readDiscreteInputs(0, 8))).modbusCode, 4, 'exception fault');
  unit3.fault = 'silent';
  t.equal((await failure(client.readDiscreteInputs(0, 8))).errno, 'ETIMEDOUT', 'silent fault: timeout');
  unit3.fault = 'none';
  client.setID(9);
  t.equal((await failure(client.readDiscreteInputs(0, 8))).errno, 'ETIMEDOUT', 'unknown unit id: timeout');
  client.setID(5);
  t.equal((await client.readDiscreteInputs(0, 8)).data.length, 8, 'the other unit still answers');
});

t.test('mbpoll (libmodbus) reads door-latch-8io\'s door latch (FC02) and its level (FC03 inputState) over RTU and TCP', async (t) => {
  const pty = await openPtyPair();
  t.teardown(() => pty.close());
  const rtuUnit = new IoModule({ map: DOOR_LATCH_8IO });
  const rtu = await new ModbusRtuSlaveSim({ path: pty.a, modules: new Map([[3, rtuUnit]]) }).start();
  t.teardown(() => rtu.close());
  const tcpUnit = new IoModule({ map: DOOR_LATCH_8IO });
  const tcp = await new ModbusTcpSlaveSim({ modules: new Map([[3, tcpUnit]]) }).start();
  t.teardown(() => tcp.close());
  // Opened and closed before the reads; in7 pressed and held.
  for (const m of [rtuUnit, tcpUnit]) {
    m.setInput(1, true);
    m.setInput(1, false);
    m.setInput(6, true);
  }
  const wires = [
    ['rtu', ['-m', 'rtu', '-b', String(BAUD), '-P', 'none'], pty.b],
    ['tcp', ['-m', 'tcp', '-p', String(tcp.port)], '127.0.0.1'],
  ] as const;
  for (const [name, how, where] of wires) {
    // mbpoll numbers references from 1: -r 1 is input address 0, -t 4 -r 3 holding register 2 (inputState).
    const inputs = await run('mbpoll', [...how, '-a', '3', '-t', '1', '-r', '1', '-c', '8', '-o', '5', '-1', where], { timeout: 60_000 });
    t.same([...parseMbpoll(inputs.stdout).entries()].filter(([, v]) => v === 1), [[2, 1], [7, 1]], `${name}: the door (ref 2) latched though closed, in7 (ref 7) latched`);
    const state = await run('mbpoll', [...how, '-a', '3', '-t', '4', '-r', '3', '-c', '1', '-o', '5', '-1', where], { timeout: 60_000 });
    t.same([...parseMbpoll(state.stdout).entries()], [[3, 0b0100_0000]], `${name}: inputState: the door closed (bit 1 clear), in7 held (bit 6)`);
  }
});

t.test('TCP slave switched off: its connection goes silent, a connect gets no answer (not refused); on again it serves', async (t) => {
  const unit = new IoModule();
  const sim = await new ModbusTcpSlaveSim({ modules: new Map([[1, unit]]) }).start();
  t.teardown(() => sim.close());
  const client = new ModbusRTU();
  await client.connectTCP('127.0.0.1', { port: sim.port });
  client.setTimeout(300);
  t.teardown(() => closeClient(client));
  client.setID(1);
  t.equal((await client.readDiscreteInputs(0, 8)).data.length, 8, 'served while on');

  await sim.powerOff();
  t.equal((await failure(client.readDiscreteInputs(0, 8))).errno, 'ETIMEDOUT', 'the open connection is silent: no FIN, no RST, no answer');
  t.ok(client.isOpen, 'and still open as far as the master can tell');
  const attempt = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: sim.port });
    s.once('connect', () => resolve('connected'));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    setTimeout(() => resolve('no answer'), 1_500);
    t.teardown(() => s.destroy());
  });
  t.equal(attempt, 'no answer', 'a connect to it is neither accepted nor refused');

  await sim.powerOn();
  for (const until = Date.now() + 10_000; client.isOpen && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  t.notOk(client.isOpen, 'the old connection was reset by the rebooted module');
  const again = new ModbusRTU();
  await again.connectTCP('127.0.0.1', { port: sim.port });
  again.setTimeout(300);
  t.teardown(() => closeClient(again));
  again.setID(1);
  t.equal((await again.readDiscreteInputs(0, 8)).data.length, 8, 'served again after it is switched on');
});

t.test('runModbusSim: commands in, coil changes out', async (t) => {
  const lines: string[] = [];
  const input = new PassThrough();
  const sim = await runModbusSim({ transport: 'rtu', units: [3, 4], input }, (l) => lines.push(l));
  t.teardown(() => sim.close());
  input.write('fault 3 exception\nfault 3 none\n');
  await new Promise((r) => setImmediate(r));
  t.same(lines.slice(1, 3), ['unit 3 fault exception', 'unit 3 fault none'], 'command lines from the input stream are run and answered');
  t.match(lines[0], /modbus rtu: units 3, 4 \(generic-8io\) at 19200 baud, turnaround 5 ms; master port \//);
  t.equal(sim.command('set 3 1 1'), 'unit 3 input 1 active');
  t.equal(sim.command('pulse 4 0 50'), 'unit 4 input 0 pulsed for 50 ms');
  t.equal(sim.command('fault 4 silent'), 'unit 4 fault silent');
  t.match(sim.command('fault 4 loud'), /^error: fault must be one of/);
  t.match(sim.command('set 7 1 1'), /^error: no module with unit id 7/);
  t.match(sim.command('status 3'), /^unit 3 \(generic-8io\) inputs 01000000 latched 00000000 coils 00000000 fault none$/);

  const client = await connectRtu(sim.endpoint);
  t.teardown(() => closeClient(client));
  client.setID(3);
  await client.writeCoil(0, true);
  t.ok(lines.includes('unit 3 coil 0 (sounder) ON'), 'the coil change is printed');
  // modbus-serial hands back whole bytes of bits: 8 values for a read of 2.
  t.same((await client.readDiscreteInputs(0, 2)).data.slice(0, 2), [false, true], 'the master sees what the command set');
});
