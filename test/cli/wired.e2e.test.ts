/**
 * The CLI for wired devices, as real child processes: registering serial and Modbus devices and
 * their buses, the errors an installer gets for wire options that do not fit, and the simulators
 * run from the command line, driven from the other end of a real pty or TCP socket.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SerialPort } from 'serialport';
import { CLI, cli, tempDataDir } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import { openPtyPair } from '../../simulators/wire/pty-pair.js';
import { encodeFrame, FrameDecoder, parseFrame, type KeypadFrame } from '../../firmware-contracts/serial/codec.js';

const json = <T = any>(s: string): T => JSON.parse(s) as T;
const run = promisify(execFile);

async function street(t: Test): Promise<string[]> {
  const data = tempDataDir(t);
  const d = ['--data', data];
  t.equal((await cli(['station', 'add', '--id', 'PS1', '--name', 'Station', ...d])).code, 0);
  for (const id of ['S1', 'S2']) t.equal((await cli(['shop', 'add', '--id', id, '--name', id, '--address', 'Road', '--station', 'PS1', '--lat', '23.1', '--lon', '116.1', ...d])).code, 0);
  return d;
}

t.test('serial and Modbus devices, their buses, and what a misfit wire option gets', async (t) => {
  const d = await street(t);
  let r = await cli(['device', 'add', '--shop', 'S1', '--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB0', '--bus-address', '3', '--json', ...d]);
  t.equal(r.code, 0, r.stderr);
  const kp = json(r.stdout);
  t.match(kp, { shopId: 'S1', type: 'keypad', transport: 'serial', bus: 'ttyUSB0', busAddress: 3, macKey: /^[0-9a-f]{64}$/ });
  t.notOk('password' in kp, 'no MQTT password for a wired keypad');
  r = await cli(['device', 'add', '--shop', 'S2', '--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB0', '--bus-address', '4', '--json', ...d]);
  t.equal(json(r.stdout).bus, 'ttyUSB0', 'a second keypad on the same port shares the bus');
  r = await cli(['device', 'add', '--shop', 'S2', '--type', 'io-module', '--transport', 'modbus-rtu', '--port', '/dev/ttyUSB1', '--bus-address', '7', '--json', ...d]);
  t.match(json(r.stdout), { bus: 'ttyUSB1', busAddress: 7, model: 'generic-8io' });
  t.notOk('macKey' in json(r.stdout), 'Modbus has no MAC key');
  r = await cli(['device', 'add', '--shop', 'S2', '--type', 'io-module', '--transport', 'modbus-tcp', '--host', '10.0.0.7', '--tcp-port', '502', '--bus-address', '1', '--json', ...d]);
  t.match(json(r.stdout), { bus: 'tcp-10.0.0.7-502', busAddress: 1 });

  const buses = json<any[]>((await cli(['bus', 'list', '--json', ...d])).stdout);
  t.same(
    buses.map((b) => [b.busId, b.kind, b.where, b.devices]),
    [
      ['tcp-10.0.0.7-502', 'modbus-tcp', '10.0.0.7:502', 1],
      ['ttyUSB0', 'serial', '/dev/ttyUSB0 @ 9600 8N1', 2],
      ['ttyUSB1', 'modbus-rtu', '/dev/ttyUSB1 @ 19200 8N1', 1],
    ],
  );
  const devices = json<any[]>((await cli(['device', 'list', '--json', ...d])).stdout);
  t.notOk(JSON.stringify(devices).includes(kp.macKey), 'device list never shows the MAC key');
  t.same(devices.filter((x) => x.bus === 'ttyUSB0').map((x) => x.busAddress).sort(), [3, 4]);

  const refused: [string[], RegExp][] = [
    [['--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB0', '--bus-address', '3'], /LF_ERR_ALREADY_EXISTS: address 3 on bus ttyUSB0/],
    [['--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB0'], /--bus-address/],
    [['--type', 'keypad', '--transport', 'serial', '--bus-address', '5'], /needs the serial port/],
    [['--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB0', '--bus-address', '5', '--baud', '19200'], /already uses 9600/],
    [['--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB1', '--bus-address', '5'], /is a modbus-rtu bus/],
    [['--type', 'io-module', '--transport', 'serial', '--port', '/dev/ttyUSB2', '--bus-address', '5'], /a serial device is one of: keypad/],
    [['--type', 'keypad', '--transport', 'mqtt', '--port', '/dev/ttyUSB0'], /an MQTT device has no bus/],
    [['--type', 'io-module', '--transport', 'modbus-tcp', '--host', '10.0.0.8', '--bus-address', '1'], /host and TCP port/],
    [['--type', 'io-module', '--transport', 'modbus-tcp', '--host', '10.0.0.8', '--tcp-port', '502', '--port', '/dev/x', '--bus-address', '1'], /--port.*not an option of a modbus-tcp device/],
    [['--type', 'io-module', '--transport', 'modbus-rtu', '--port', '/dev/ttyUSB3', '--bus-address', '1', '--model', 'no-such-map'], /LF_ERR_NOT_FOUND: register map no-such-map/],
  ];
  for (const [args, want] of refused) {
    r = await cli(['device', 'add', '--shop', 'S1', ...args, ...d]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, want, args.join(' '));
  }
  r = await cli(['device', 'add', '--shop', 'S1', '--type', 'keypad', '--transport', 'serial', '--port', '/dev/ttyUSB0', '--bus-address', '300', ...d]);
  t.not(r.code, 0);
  t.match(r.stderr, /--bus-address must be an integer from 1 to 247/);
  t.equal(json<any[]>((await cli(['device', 'list', '--json', ...d])).stdout).length, 4, 'nothing half-written by the refusals');
  r = await cli(['device', 'add', '--shop', 'S1', '--type', 'io-module', '--transport', 'modbus-rtu', '--port', '/dev/ttyUSB1', '--bus-address', '8', '--model', 'door-latch-8io', '--json', ...d]);
  t.match(json(r.stdout), { bus: 'ttyUSB1', busAddress: 8, model: 'door-latch-8io' }, 'the module model whose door latches both edges');
  t.equal(json<any[]>((await cli(['bus', 'list', '--json', ...d])).stdout).length, 3, 'and no stray bus');
  r = await cli(['bus', 'scan', 'nope', ...d]);
  t.match(r.stderr, /LF_ERR_NOT_FOUND: bus nope/);
});

t.test('simulate keypad: answers polls on its line, presses what is typed, obeys only its own key', async (t) => {
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const key = Buffer.alloc(32, 0x42);
  const child = spawn(process.execPath, [CLI, 'simulate', 'keypad', '--port', line.b, '--baud', '19200', '--keypad', `3:${key.toString('hex')}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const out: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => out.push(l));
  await eventually(() => out.some((l) => l.includes('serial keypads 3')), 'the simulator is up');

  const master = new SerialPort({ path: line.a, baudRate: 19200, autoOpen: false });
  await new Promise<void>((res, rej) => master.open((e) => (e ? rej(e) : res())));
  t.teardown(() => new Promise<void>((res) => master.close(() => res())));
  const heard: KeypadFrame[] = [];
  const decoder = new FrameDecoder();
  master.on('data', (chunk: Buffer) => {
    for (const r of decoder.push(chunk)) if (r.ok) heard.push(...[parseFrame(r.frame, key)].flatMap((p) => (p.ok ? [p.frame] : [])));
  });
  const poll = async (addr: number) => {
    const n = heard.length;
    master.write(encodeFrame({ type: 'POLL', addr }));
    await new Promise((r) => setTimeout(r, 300));
    return heard.slice(n);
  };
  t.same((await poll(3)).map((f) => f.type), ['NOTHING'], 'an idle keypad answers NOTHING');
  t.same(await poll(4), [], 'another address: silence');
  child.stdin!.write('3 9#\n');
  await eventually(() => out.some((l) => l.includes('sent KEYS 9#')), 'the press is queued and sent', 10_000).catch(() => {});
  const answer = await poll(3);
  t.match(answer, [{ type: 'KEYS', keys: '9#', seq: 1 }], 'the typed keys come in its answer, signed with its key');
  master.write(encodeFrame({ type: 'DISPLAY', addr: 3, boot: 9, seq: 1, lines: [Buffer.from('HELLO           '), Buffer.from('WORLD           ')] }, Buffer.alloc(32, 1)));
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(out.some((l) => l.includes('HELLO')), 'a command signed with another key is not shown');
  t.ok(out.some((l) => l.includes('rejected: mac')), 'and it says so');
  master.write(encodeFrame({ type: 'DISPLAY', addr: 3, boot: 9, seq: 2, lines: [Buffer.from('HELLO           '), Buffer.from('WORLD           ')] }, key));
  await eventually(() => out.some((l) => l.includes('HELLO')), 'the signed display shown', 10_000);
});

t.test('simulate modbus over TCP: mbpoll reads the input a pulse latched', async (t) => {
  const child = spawn(process.execPath, [CLI, 'simulate', 'modbus', '--transport', 'tcp', '--tcp-port', '0', '--units', '3'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const out: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => out.push(l));
  await eventually(() => out.some((l) => /127\.0\.0\.1:\d+/.test(l)), 'the simulator prints where it listens');
  const port = /127\.0\.0\.1:(\d+)/.exec(out.find((l) => /127\.0\.0\.1:\d+/.test(l))!)![1]!;
  child.stdin!.write('pulse 3 0 50\n');
  await eventually(() => out.some((l) => l.includes('pulsed')), 'the pulse taken');
  const { stdout } = await run('mbpoll', ['-m', 'tcp', '-p', port, '-a', '3', '-t', '1', '-r', '1', '-c', '2', '-1', '127.0.0.1'], { timeout: 20_000 });
  t.match(stdout, /\[1\]:\s+1/, 'input 1 (the panic button, reference 1) reads 1: latched although released');
  t.match(stdout, /\[2\]:\s+0/, 'input 2 (the door) reads 0');
});
