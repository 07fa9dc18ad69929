/**
 * Simulated Modbus I/O modules on the real wire (firmware-contracts/modbus/SPEC.md).
 *
 * - `IoModule` is what one module does, whatever carries its requests: inputs that can be set or
 *   pulsed (latched per the register map), coils that record who switched them, the latch-clear
 *   register, and injected faults.
 * - `ModbusRtuSlaveSim` serves several unit ids on one serial line (a pty end or a device). It does
 *   its own framing with the contract's codec, because modbus-serial's ServerSerial splits frames
 *   on a 30 ms timer, answers every unit id at 255 and never checks the request's CRC. A pty moves
 *   bytes instantly, so the slave accounts for the request's wire time, waits its turnaround, and
 *   sends its answer paced at the baud rate: timing measured through it is the wire's.
 * - `ModbusTcpSlaveSim` serves the same modules with modbus-serial's ServerTCP; it can be switched
 *   off as a module without power is (silent connections, SYNs unanswered) and on again.
 * - `runModbusSim` is the `lianfang simulate modbus` command: modules plus a line-based console.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createInterface, type Interface } from 'node:readline';
import { SerialPort } from 'serialport';
import { ServerTCP, type IServiceVector } from 'modbus-serial';
import { crcOk } from '../firmware-contracts/crc16.js';
import { GENERIC_8IO, coilAt, inputAt, isChangeLatch, loadRegisterMap, type RegisterMap } from '../firmware-contracts/modbus/register-map.js';
import {
  BROADCAST_UNIT_ID,
  ExceptionCode,
  FunctionCode,
  MAX_ADU_BYTES,
  ModbusException,
  decodeRequest,
  encodeResponse,
  expectedRequestLength,
  type ModbusRequest,
  type ModbusResponse,
} from '../firmware-contracts/modbus/rtu.js';
import { interFrameGapMs, waitMs, wireTimeMs } from '../firmware-contracts/wire-timing.js';
import { openPtyPair, type PtyPair } from './wire/pty-pair.js';

/** What a faulty module does with a request addressed to it (it never acts on the request). */
export type ModuleFault = 'none' | 'silent' | 'exception' | 'garbage';
export const MODULE_FAULTS: readonly ModuleFault[] = ['none', 'silent', 'exception', 'garbage'];

export const DEFAULT_BAUD = 19200;
export const DEFAULT_TURNAROUND_MS = 5;
/** 1.2: major in the high byte, minor in the low byte, as the map's firmwareVersion register reads. */
export const DEFAULT_FIRMWARE_VERSION = 0x0102;

export interface CoilChange {
  /** Wall-clock time of the switch (ms since the epoch). */
  atMs: number;
  address: number;
  name: string;
  on: boolean;
  /** Who switched it: 'rtu', 'rtu broadcast', 'tcp' or 'local'. */
  by: string;
}

export interface IoModuleOptions {
  map?: RegisterMap;
  firmwareVersion?: number;
}

/** The behaviour of one I/O module, independent of the transport that carries its requests. */
export class IoModule extends EventEmitter<{ coil: [CoilChange] }> {
  readonly map: RegisterMap;
  firmwareVersion: number;
  fault: ModuleFault = 'none';
  readonly coilHistory: CoilChange[] = [];
  /** Live input state and latches, one bit per input address (the map limits inputs to 0–15). */
  private live = 0;
  private latches = 0;
  private readonly coilState = new Map<number, boolean>();

  constructor(opts: IoModuleOptions = {}) {
    super();
    this.map = opts.map ?? GENERIC_8IO;
    this.firmwareVersion = opts.firmwareVersion ?? DEFAULT_FIRMWARE_VERSION;
    for (const c of this.map.coils) this.coilState.set(c.address, false);
  }

  /**
   * Drive an input active or inactive. A latched input latches on going active, a change latch
   * (`"both-edges"`) on every edge, going active or inactive.
   */
  setInput(address: number, active: boolean): void {
    const def = inputAt(this.map, address);
    if (!def) throw new RangeError(`${this.map.model} has no discrete input ${address}`);
    const bit = 1 << address;
    const edge = active !== ((this.live & bit) !== 0);
    if (edge && (isChangeLatch(def) || (active && def.latched))) this.latches |= bit;
    this.live = active ? this.live | bit : this.live & ~bit;
  }

  /** Active for `ms`, then inactive (a short press, a door opened and closed); the latch, if any, keeps it. */
  pulse(address: number, ms: number): Promise<void> {
    this.setInput(address, true);
    return new Promise((resolve) => {
      setTimeout(() => {
        this.setInput(address, false);
        resolve();
      }, ms).unref();
    });
  }

  /** The live (unlatched) state of an input. */
  input(address: number): boolean {
    return (this.live & (1 << address)) !== 0;
  }

  /** Live state of every input, one bit per input address (what the inputState register reads). */
  get inputMask(): number {
    return this.live;
  }

  /** Latched inputs not yet cleared, one bit per input address. */
  get latchMask(): number {
    return this.latches;
  }

  /**
   * FC02: what the master reads. A latched input reads its latch (1 from going active, or for a
   * change latch from any edge, until its latch-clear bit is written, however short the press),
   * the others their live state.
   */
  readInputs(start: number, count: number): boolean[] {
    return addresses(start, count).map((a) => {
      const def = inputAt(this.map, a);
      if (!def) throw illegalAddress('discrete input', a);
      return ((def.latched ? this.latches : this.live) & (1 << a)) !== 0;
    });
  }

  /** FC01. */
  readCoils(start: number, count: number): boolean[] {
    return addresses(start, count).map((a) => {
      const on = this.coilState.get(a);
      if (on === undefined) throw illegalAddress('coil', a);
      return on;
    });
  }

  get coils(): ReadonlyMap<number, boolean> {
    return this.coilState;
  }

  /** FC05 (and each coil of FC0F). Every write is recorded, even one that changes nothing. */
  writeCoil(address: number, on: boolean, by = 'local'): void {
    const def = coilAt(this.map, address);
    if (!def) throw illegalAddress('coil', address);
    this.coilState.set(address, on);
    const change: CoilChange = { atMs: Date.now(), address, name: def.name, on, by };
    this.coilHistory.push(change);
    this.emit('coil', change);
  }

  /** FC03: firmware version, the live input state, and latch-clear (which reads 0). */
  readHolding(address: number): number {
    const regs = this.map.holdingRegisters;
    if (address === regs.firmwareVersion.address) return this.firmwareVersion;
    if (address === regs.latchClear.address) return 0;
    if (address === regs.inputState?.address) return this.inputMask;
    throw illegalAddress('holding register', address);
  }

  /**
   * FC06 (and each register of FC10). Only latch-clear is writable: each 1 bit clears that
   * input's latch and nothing else, so an input that latched after the master's read stays latched.
   */
  writeHolding(address: number, value: number): void {
    if (address !== this.map.holdingRegisters.latchClear.address) throw illegalAddress('writable holding register', address);
    this.latches &= ~value;
  }

  /**
   * Run a decoded request addressed to this module (the RTU slave calls it once the request is
   * on the wire). Every address of a multiple write is checked before anything changes: a
   * refused FC0F/FC10 has no effect. Throws ModbusException for the exception response.
   */
  execute(req: ModbusRequest, by: string): ModbusResponse {
    const { unitId, address } = req;
    switch (req.fc) {
      case FunctionCode.READ_COILS:
        return { unitId, fc: req.fc, bits: this.readCoils(address, req.quantity) };
      case FunctionCode.READ_DISCRETE_INPUTS:
        return { unitId, fc: req.fc, bits: this.readInputs(address, req.quantity) };
      case FunctionCode.READ_HOLDING_REGISTERS:
        return { unitId, fc: req.fc, registers: addresses(address, req.quantity).map((a) => this.readHolding(a)) };
      case FunctionCode.WRITE_SINGLE_COIL:
        this.writeCoil(address, req.value, by);
        return req;
      case FunctionCode.WRITE_SINGLE_REGISTER:
        this.writeHolding(address, req.value);
        return req;
      case FunctionCode.WRITE_MULTIPLE_COILS:
        this.readCoils(address, req.values.length);
        req.values.forEach((on, i) => this.writeCoil(address + i, on, by));
        return { unitId, fc: req.fc, address, quantity: req.values.length };
      case FunctionCode.WRITE_MULTIPLE_REGISTERS:
        for (const a of addresses(address, req.values.length)) {
          if (a !== this.map.holdingRegisters.latchClear.address) throw illegalAddress('writable holding register', a);
        }
        req.values.forEach((v, i) => this.writeHolding(address + i, v));
        return { unitId, fc: req.fc, address, quantity: req.values.length };
    }
  }
}

function addresses(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

function illegalAddress(what: string, address: number): ModbusException {
  return new ModbusException(ExceptionCode.ILLEGAL_DATA_ADDRESS, `no ${what} at address ${address}`);
}

/** A module to create: its unit id and its register map (a map, a built-in name or a file path). */
export interface ModuleSpec {
  unitId: number;
  map?: RegisterMap | string;
}

function buildModules(modules: Map<number, IoModule> | ModuleSpec[]): Map<number, IoModule> {
  if (modules instanceof Map) return modules;
  return new Map(
    modules.map((s) => [s.unitId, new IoModule({ map: typeof s.map === 'string' ? loadRegisterMap(s.map) : s.map })] as const),
  );
}

/** Random bytes that are certainly not a valid frame (their CRC is wrong). */
function garbage(): Buffer {
  const bytes = randomBytes(5 + Math.floor(Math.random() * 8));
  if (crcOk(bytes)) bytes[bytes.length - 1]! ^= 0xff;
  return bytes;
}

export interface RtuSlaveOptions {
  /** Serial device or pty end the slave listens on. */
  path: string;
  baud?: number;
  /** From the last bit of a request to the first of the answer; never less than the 3.5-character gap. */
  turnaroundMs?: number;
  modules: Map<number, IoModule> | ModuleSpec[];
}

export interface RtuSlaveStats {
  /** Frames with a good CRC, for any unit id. */
  requests: number;
  answered: number;
  /** Frames of the right length with a bad CRC: ignored, as a real slave does. */
  badCrc: number;
  /** Requests for a unit id this bus segment does not serve: silence. */
  otherUnits: number;
  /** Requests to unit 0: writes executed, never answered. */
  broadcasts: number;
  /** Bursts of bytes that never became a frame (noise, an unknown function), dropped at the next silence. */
  dropped: number;
}

interface ReceivedFrame {
  frame: Buffer;
  /** performance.now() when the frame's first and last bytes arrived. */
  firstAt: number;
  lastAt: number;
}

/**
 * Silence after which bytes that never completed a frame are dropped. The line's own rule is 3.5
 * characters; a pty and a busy machine add jitter, so allow more before declaring noise.
 */
const MIN_RESYNC_SILENCE_MS = 20;

/** A Modbus RTU slave serving several unit ids on one serial line. */
export class ModbusRtuSlaveSim {
  readonly modules: Map<number, IoModule>;
  readonly stats: RtuSlaveStats = { requests: 0, answered: 0, badCrc: 0, otherUnits: 0, broadcasts: 0, dropped: 0 };
  readonly path: string;
  readonly baud: number;
  readonly turnaroundMs: number;
  private readonly gapMs: number;
  private readonly resyncSilenceMs: number;
  private port: SerialPort | null = null;
  private rx = Buffer.alloc(0);
  private rxFirstAt = 0;
  private rxLastAt = 0;
  private readonly queue: ReceivedFrame[] = [];
  private serving = false;
  /** When the line is next free for a request: after our last answer (or the last request) plus the gap. */
  private lineFreeAt = 0;
  private closed = false;
  /** The last error of the port or of serving a request, for a console or a test to show. */
  lastError: Error | null = null;

  constructor(opts: RtuSlaveOptions) {
    this.path = opts.path;
    this.baud = opts.baud ?? DEFAULT_BAUD;
    this.turnaroundMs = opts.turnaroundMs ?? DEFAULT_TURNAROUND_MS;
    this.modules = buildModules(opts.modules);
    this.gapMs = interFrameGapMs(this.baud);
    this.resyncSilenceMs = Math.max(this.gapMs, MIN_RESYNC_SILENCE_MS);
  }

  /** Open the port and start answering. */
  async start(): Promise<this> {
    const port = new SerialPort({ path: this.path, baudRate: this.baud, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    // A port error (the pty's other end vanished) ends this slave's service; close() still works.
    port.on('error', (err) => (this.lastError = err));
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    this.port = port;
    return this;
  }

  async close(): Promise<void> {
    this.closed = true;
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    if (this.rx.length && now - this.rxLastAt > this.resyncSilenceMs) this.dropRx();
    if (!this.rx.length) this.rxFirstAt = now;
    this.rx = Buffer.concat([this.rx, chunk]);
    this.rxLastAt = now;
    this.frameRequests();
    void this.serveQueue();
  }

  private dropRx(): void {
    this.rx = Buffer.alloc(0);
    this.stats.dropped++;
  }

  /** Cut complete requests off the receive buffer as soon as their last byte is in. */
  private frameRequests(): void {
    while (this.rx.length) {
      const n = expectedRequestLength(this.rx);
      if (n === undefined) return;
      if (n === null) {
        // An unknown function: its length is unknowable, so a burst with a good CRC is taken as one
        // frame (to be refused with ILLEGAL_FUNCTION); anything else waits for more bytes or silence.
        if (crcOk(this.rx)) this.takeFrame(this.rx.length);
        else if (this.rx.length >= MAX_ADU_BYTES) this.dropRx();
        return;
      }
      if (n > MAX_ADU_BYTES) {
        this.dropRx();
        return;
      }
      if (this.rx.length < n) return;
      if (!crcOk(this.rx, 0, n)) {
        // The rest of this burst belongs to the broken frame as far as the line can tell.
        this.stats.badCrc++;
        this.rx = Buffer.alloc(0);
        return;
      }
      this.takeFrame(n);
    }
  }

  private takeFrame(n: number): void {
    this.queue.push({ frame: Buffer.from(this.rx.subarray(0, n)), firstAt: this.rxFirstAt, lastAt: this.rxLastAt });
    this.rx = this.rx.subarray(n);
  }

  /** One request at a time, as on a half-duplex bus. */
  private async serveQueue(): Promise<void> {
    if (this.serving) return;
    this.serving = true;
    try {
      while (this.queue.length && !this.closed) {
        try {
          await this.serve(this.queue.shift()!);
        } catch (err) {
          // One bad request (say, a firmware version set beyond 16 bits) must not stop the bus.
          this.lastError = err as Error;
        }
      }
    } finally {
      this.serving = false;
    }
  }

  private async serve({ frame, firstAt, lastAt }: ReceivedFrame): Promise<void> {
    // The master could not have started before the line was free; its last byte is then on the
    // wire one frame-time later (or later still, if it really arrived later).
    const requestEnd = Math.max(Math.max(firstAt, this.lineFreeAt) + wireTimeMs(frame.length, this.baud), lastAt);
    await waitUntil(requestEnd);
    this.stats.requests++;
    const answer = this.answer(frame);
    if (!answer || this.closed) {
      this.lineFreeAt = requestEnd + this.gapMs;
      return;
    }
    await waitUntil(requestEnd + Math.max(this.turnaroundMs, this.gapMs));
    if (this.closed) return;
    await this.sendPaced(answer);
    this.stats.answered++;
    this.lineFreeAt = performance.now() + this.gapMs;
  }

  /** The bytes to send for a request, or undefined for silence. */
  private answer(frame: Buffer): Buffer | undefined {
    const unitId = frame[0]!;
    if (unitId === BROADCAST_UNIT_ID) {
      this.stats.broadcasts++;
      this.executeBroadcast(frame);
      return undefined;
    }
    const module = this.modules.get(unitId);
    if (!module) {
      this.stats.otherUnits++;
      return undefined;
    }
    switch (module.fault) {
      case 'silent':
        return undefined;
      case 'exception':
        return encodeResponse({ unitId, fc: frame[1]! & 0x7f, exception: ExceptionCode.SERVER_DEVICE_FAILURE });
      case 'garbage':
        return garbage();
      case 'none':
        try {
          return encodeResponse(module.execute(decodeRequest(frame), 'rtu'));
        } catch (err) {
          if (err instanceof ModbusException) return encodeResponse({ unitId, fc: frame[1]! & 0x7f, exception: err.code });
          return undefined;
        }
    }
  }

  /** Serial line §2.2: a broadcast write is executed by every (healthy) module; reads make no sense. */
  private executeBroadcast(frame: Buffer): void {
    let req: ModbusRequest;
    try {
      req = decodeRequest(frame);
    } catch {
      return;
    }
    if (req.fc === FunctionCode.READ_COILS || req.fc === FunctionCode.READ_DISCRETE_INPUTS || req.fc === FunctionCode.READ_HOLDING_REGISTERS) return;
    for (const module of this.modules.values()) {
      if (module.fault !== 'none') continue;
      try {
        module.execute(req, 'rtu broadcast');
      } catch {
        // A module without that point ignores it; there is nobody to tell.
      }
    }
  }

  /**
   * Send `frame` one character every 11 bits: each byte reaches the pty when its last bit would
   * have left the wire, so the master sees the answer's end at the true time (writing it all at
   * once and then waiting would hand the master the answer a frame-time early).
   */
  private async sendPaced(frame: Buffer): Promise<void> {
    const charMs = wireTimeMs(1, this.baud);
    const start = performance.now();
    let sent = 0;
    while (sent < frame.length && this.port) {
      await waitUntil(start + (sent + 1) * charMs);
      // At least the next byte: its time has come, whatever the float rounding of the division says.
      const due = Math.min(frame.length, Math.max(sent + 1, Math.floor((performance.now() - start) / charMs)));
      this.port.write(frame.subarray(sent, due));
      sent = due;
    }
  }
}

function waitUntil(t: number): Promise<void> {
  return waitMs(t - performance.now());
}

export interface TcpSlaveOptions {
  host?: string;
  /** 0 (the default) picks a free port; read it from `port` after start(). */
  port?: number;
  modules: Map<number, IoModule> | ModuleSpec[];
}

/** A ServerTCP vector callback. ServerTCP picks the callback style by arity (`fn.length`), so every vector function declares its callback last. */
type Reply<T> = (err: Error | null, value: T) => void;

/** ServerTCP reads `err.modbusErrorCode` to choose the exception code (4 otherwise). */
function tcpException(code: number, message: string): Error {
  return Object.assign(new Error(message), { modbusErrorCode: code });
}

/** A free TCP port on `host`. ServerTCP treats port 0 as "use 502" (`options.port || 502`), so ask the OS first. */
async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, host, () => resolve());
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * A Modbus TCP slave (modbus-serial's ServerTCP) serving several unit ids. A unit id it does not
 * serve, or a silent module, gets no answer at all: the master times out. Garbage is approximated:
 * TCP gives the vector no socket, so random bytes go to every connected master instead of the
 * answer (exact when one master is connected, as a gateway is).
 */
export class ModbusTcpSlaveSim {
  readonly modules: Map<number, IoModule>;
  readonly host: string;
  port: number;
  /** Point reads and writes addressed to a served unit id (ServerTCP calls the vector once per point). */
  readonly stats = { requests: 0 };
  private server: ServerTCP | null = null;
  private garbagePending = false;
  private powered = true;
  /** While switched off: the connections it had (silent) and the process holding its port. */
  private silentSockets: Socket[] = [];
  private holder: PortHolder | null = null;

  constructor(opts: TcpSlaveOptions) {
    this.modules = buildModules(opts.modules);
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
  }

  /** Listen; a port picked here can be taken by someone else before ServerTCP binds it, so retry. */
  async start(): Promise<this> {
    for (let attempt = 1; ; attempt++) {
      const port = this.port || (await freePort(this.host));
      const server = new ServerTCP(this.vector(), { host: this.host, port });
      try {
        await new Promise<void>((resolve, reject) => {
          server.on('initialized', () => resolve());
          server.on('serverError', (err) => reject(err));
        });
        this.server = server;
        this.port = port;
        server.on('socketError', () => undefined);
        return this;
      } catch (err) {
        if (this.port || attempt >= 3) throw err;
      }
    }
  }

  /**
   * Switch the module off as the network sees it. A module without power answers nothing: its
   * open connections go silent (no FIN, no RST: the master's requests time out) and a SYN to its
   * address gets no answer, so a master's connect waits for its own timeout, or for the kernel's
   * SYN retries (about two minutes) if it has none. Closing the listener would instead refuse
   * connections, as a module that is on but not serving does; `close()` does that.
   */
  async powerOff(): Promise<void> {
    const server = this.server;
    if (!server || !this.powered) return;
    this.powered = false;
    this.server = null;
    // ServerTCP keeps its net.Server and its connections in these (untyped) fields.
    const inner = server as unknown as { _server: Server; socks: Map<Socket, number> };
    this.silentSockets = [...inner.socks.keys()];
    inner._server.close();
    this.holder = await holdPortSilently(this.host, this.port);
  }

  /**
   * Switch it on again: the connections it had are reset (the module rebooted and does not know
   * them), connections are refused for `bootMs` (its stack is up, its server not yet), then served.
   */
  async powerOn(bootMs = 0): Promise<void> {
    if (this.powered) return;
    await this.holder?.release();
    this.holder = null;
    for (const sock of this.silentSockets) sock.resetAndDestroy();
    this.silentSockets = [];
    if (bootMs > 0) await waitMs(bootMs);
    this.powered = true;
    await this.start();
  }

  get isOn(): boolean {
    return this.powered;
  }

  async close(): Promise<void> {
    await this.holder?.release();
    this.holder = null;
    for (const sock of this.silentSockets) sock.destroy();
    this.silentSockets = [];
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * ServerTCP calls the vector once per point (a FC02 read of 8 inputs is 8 calls), with the unit
   * id of the request; a callback never called means no answer.
   */
  private vector(): IServiceVector {
    const serve = <T>(unitId: number, reply: Reply<T>, act: (m: IoModule) => T): void => {
      const module = this.modules.get(unitId);
      if (!module || !this.powered) return;
      this.stats.requests++;
      if (module.fault === 'silent') return;
      // ServerTCP ignores the value when there is an error.
      const refuse = (err: Error) => reply(err, undefined as T);
      if (module.fault === 'exception') return refuse(tcpException(ExceptionCode.SERVER_DEVICE_FAILURE, 'module fault'));
      if (module.fault === 'garbage') return this.sendGarbage();
      let value: T;
      try {
        value = act(module);
      } catch (err) {
        return refuse(err instanceof ModbusException ? tcpException(err.code, err.message) : (err as Error));
      }
      reply(null, value);
    };
    return {
      getCoil: (addr: number, unitId: number, cb: Reply<boolean>) => serve(unitId, cb, (m) => m.readCoils(addr, 1)[0]!),
      getDiscreteInput: (addr: number, unitId: number, cb: Reply<boolean>) => serve(unitId, cb, (m) => m.readInputs(addr, 1)[0]!),
      getHoldingRegister: (addr: number, unitId: number, cb: Reply<number>) => serve(unitId, cb, (m) => m.readHolding(addr)),
      getInputRegister: (_addr: number, unitId: number, cb: Reply<number>) =>
        serve(unitId, cb, () => {
          throw new ModbusException(ExceptionCode.ILLEGAL_FUNCTION, 'no input registers');
        }),
      setCoil: (addr: number, value: boolean, unitId: number, cb: Reply<void>) => serve(unitId, cb, (m) => m.writeCoil(addr, value, 'tcp')),
      setRegister: (addr: number, value: number, unitId: number, cb: Reply<void>) => serve(unitId, cb, (m) => m.writeHolding(addr, value)),
    };
  }

  /** Once per request: the vector's per-point calls for one request all run in the same tick. */
  private sendGarbage(): void {
    if (this.garbagePending) return;
    this.garbagePending = true;
    setImmediate(() => {
      this.garbagePending = false;
      for (const sock of this.server?.socks.keys() ?? []) sock.write(garbage());
    });
  }
}

/** A TCP port held so that nothing answers on it; `release()` frees it. */
interface PortHolder {
  release(): Promise<void>;
}

/**
 * The port holder, run as `node -e`: it listens with a backlog of one and then blocks its own event
 * loop, so it never accepts; it ends when released (killed), when its parent is gone, or after ten
 * minutes, so a test that dies leaves nothing behind for long.
 */
const PORT_HOLDER = `
const net = require('node:net');
const fs = require('node:fs');
const [port, host] = process.argv.slice(1);
const parent = process.ppid;
const server = net.createServer();
server.on('error', (err) => { fs.writeSync(2, String(err)); process.exit(1); });
server.listen({ port: Number(port), host, backlog: 1 }, () => {
  fs.writeSync(1, 'holding\\n');
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const until = Date.now() + 600000;
  while (process.ppid === parent && Date.now() < until) Atomics.wait(cell, 0, 0, 200);
  process.exit(0);
});
`;

/**
 * Hold `host:port` so that a SYN to it gets no answer, as the address of a module without power:
 * a listener that never accepts, whose accept queue (a backlog of one holds two) is filled by two
 * connections of ours; Linux then drops further SYNs (a full queue is not refused, it is ignored).
 */
async function holdPortSilently(host: string, port: number): Promise<PortHolder> {
  const child: ChildProcess = spawn(process.execPath, ['-e', PORT_HOLDER, String(port), host], { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const fillers: Socket[] = [];
  const release = async () => {
    process.removeListener('exit', kill);
    for (const f of fillers) f.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      kill();
      await exited;
    }
  };
  const holding = await Promise.race([
    new Promise<boolean>((resolve) => child.stdout!.on('data', (d) => String(d).includes('holding') && resolve(true))),
    exited.then(() => false),
    waitMs(10_000).then(() => false),
  ]);
  if (!holding) {
    await release();
    throw new Error(`could not hold port ${port} silently: ${stderr.trim() || 'no answer from the holder'}`);
  }
  for (let i = 0; i < 2; i++) {
    const f = connect({ host, port });
    f.on('error', () => undefined);
    fillers.push(f);
    // A master's own SYN may take the slot first: the queue is full either way.
    await Promise.race([new Promise((resolve) => f.once('connect', resolve)), waitMs(1_000)]);
  }
  return { release };
}

export interface ModbusSimOptions {
  transport: 'rtu' | 'tcp';
  /** RTU: the serial device or pty end to serve on; without one, a pty pair is opened and its other end printed. */
  path?: string;
  baud?: number;
  turnaroundMs?: number;
  /** TCP: where to listen (127.0.0.1, a free port by default). */
  host?: string;
  port?: number;
  units: number[];
  /** Register map: a built-in model name or a file path (generic-8io by default). */
  map?: string;
  /** Command lines ("pulse 3 0 50", "set 3 1 1", "fault 3 silent", "status 3", "help"); the CLI passes stdin. */
  input?: NodeJS.ReadableStream;
}

export interface RunningModbusSim {
  readonly modules: Map<number, IoModule>;
  /** Where a master connects: the pty or device path, or host:port. */
  readonly endpoint: string;
  /** Run one command line; returns the reply that is also logged. */
  command(line: string): string;
  close(): Promise<void>;
}

export const MODBUS_SIM_HELP = [
  'pulse <unit> <input> <ms>   input active for ms, then inactive (a latched input stays latched)',
  'set <unit> <input> <0|1>    drive an input',
  'fault <unit> <none|silent|exception|garbage>',
  'status [unit]               inputs, latches and coils',
].join('\n');

function describeModule(unitId: number, m: IoModule): string {
  const bits = (mask: number) => m.map.discreteInputs.map((i) => ((mask >> i.address) & 1 ? '1' : '0')).join('');
  const coils = m.map.coils.map((c) => (m.coils.get(c.address) ? '1' : '0')).join('');
  return `unit ${unitId} (${m.map.model}) inputs ${bits(m.inputMask)} latched ${bits(m.latchMask)} coils ${coils} fault ${m.fault}`;
}

/** Parse and run one console command against the modules. */
function runCommand(modules: Map<number, IoModule>, line: string): string {
  const [verb, ...args] = line.trim().split(/\s+/);
  if (!verb) return '';
  const moduleOf = (arg: string | undefined): [number, IoModule] => {
    const unitId = Number(arg);
    const m = modules.get(unitId);
    if (!m) throw new Error(`no module with unit id ${arg ?? '(missing)'} (serving ${[...modules.keys()].join(', ')})`);
    return [unitId, m];
  };
  const int = (arg: string | undefined, what: string): number => {
    const n = Number(arg);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a whole number, got ${arg ?? '(missing)'}`);
    return n;
  };
  try {
    switch (verb) {
      case 'pulse': {
        const [unitId, m] = moduleOf(args[0]);
        const input = int(args[1], 'input');
        const ms = int(args[2], 'ms');
        void m.pulse(input, ms);
        return `unit ${unitId} input ${input} pulsed for ${ms} ms`;
      }
      case 'set': {
        const [unitId, m] = moduleOf(args[0]);
        const input = int(args[1], 'input');
        if (args[2] !== '0' && args[2] !== '1') throw new Error(`state must be 0 or 1, got ${args[2] ?? '(missing)'}`);
        m.setInput(input, args[2] === '1');
        return `unit ${unitId} input ${input} ${args[2] === '1' ? 'active' : 'inactive'}`;
      }
      case 'fault': {
        const [unitId, m] = moduleOf(args[0]);
        const fault = args[1] as ModuleFault;
        if (!MODULE_FAULTS.includes(fault)) throw new Error(`fault must be one of ${MODULE_FAULTS.join(', ')}`);
        m.fault = fault;
        return `unit ${unitId} fault ${fault}`;
      }
      case 'status':
        return args[0] ? describeModule(...moduleOf(args[0])) : [...modules].map(([u, m]) => describeModule(u, m)).join('\n');
      case 'help':
        return MODBUS_SIM_HELP;
      default:
        return `unknown command "${verb}"\n${MODBUS_SIM_HELP}`;
    }
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

/**
 * Serve simulated modules over RTU or TCP until closed, printing every coil switch
 * ("unit 3 coil 0 (sounder) ON") and running command lines from `opts.input`.
 */
export async function runModbusSim(opts: ModbusSimOptions, log: (line: string) => void): Promise<RunningModbusSim> {
  const map = loadRegisterMap(opts.map ?? GENERIC_8IO.model);
  const modules = new Map(opts.units.map((u) => [u, new IoModule({ map })] as const));
  for (const [unitId, m] of modules) {
    m.on('coil', (c) => log(`unit ${unitId} coil ${c.address} (${c.name}) ${c.on ? 'ON' : 'OFF'}`));
  }
  let pty: PtyPair | null = null;
  let slave: ModbusRtuSlaveSim | ModbusTcpSlaveSim;
  let endpoint: string;
  if (opts.transport === 'rtu') {
    let path = opts.path;
    if (!path) {
      pty = await openPtyPair();
      path = pty.a;
    }
    const rtu = await new ModbusRtuSlaveSim({ path, baud: opts.baud, turnaroundMs: opts.turnaroundMs, modules }).start();
    slave = rtu;
    endpoint = pty ? pty.b : path;
    log(`modbus rtu: units ${opts.units.join(', ')} (${map.model}) at ${rtu.baud} baud, turnaround ${rtu.turnaroundMs} ms; master port ${endpoint}`);
  } else {
    const tcp = await new ModbusTcpSlaveSim({ host: opts.host, port: opts.port, modules }).start();
    slave = tcp;
    endpoint = `${tcp.host}:${tcp.port}`;
    log(`modbus tcp: units ${opts.units.join(', ')} (${map.model}) on ${endpoint}`);
  }
  let rl: Interface | null = null;
  if (opts.input) {
    rl = createInterface({ input: opts.input });
    rl.on('line', (line) => {
      const reply = runCommand(modules, line);
      if (reply) log(reply);
    });
  }
  return {
    modules,
    endpoint,
    command: (line) => runCommand(modules, line),
    async close() {
      rl?.close();
      await slave.close();
      await pty?.close();
    },
  };
}
