/**
 * Node-RED embedded in the test's own process with the Lianfang node package
 * (gateway/nodered/lianfang-nodes) and a bridge the test drives: what the gateway's child process
 * gives the nodes as `RED.settings.lianfang`, without the gateway. For the nodes' own behaviour and
 * the example flows' logic; the gateway end to end is test/helpers/node-red.ts.
 *
 * Node-RED is a singleton: one harness per test process. Also here: the example flows with their
 * settings, and a Modbus TCP server that records coil writes (test/helpers/node-red.ts `receiver`
 * takes what flows POST).
 */
import type { Test } from 'tap';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FlowKind, FlowMessage, CallOp, NodeBridge } from '../../gateway/nodered/protocol.js';

const require = createRequire(import.meta.url);
export const NODES_DIR = join(process.cwd(), 'gateway', 'nodered', 'lianfang-nodes');

/** One Node-RED node of a flow file. */
export type FlowNode = Record<string, unknown> & { id: string; type: string };

/** An example flow of the package, by file name (without `.json`). */
export function exampleFlow(name: string): FlowNode[] {
  return JSON.parse(readFileSync(join(NODES_DIR, 'examples', `${name}.json`), 'utf8')) as FlowNode[];
}

/** Sets a tab's environment variables (the example flows' settings). */
export function withEnv(flow: FlowNode[], env: Record<string, string>): FlowNode[] {
  return flow.map((n) => {
    if (n.type !== 'tab') return n;
    const vars = ((n.env as { name: string; value: string; type: string }[] | undefined) ?? []).filter((v) => !(v.name in env));
    return { ...n, env: [...vars, ...Object.entries(env).map(([name, value]) => ({ name, value, type: 'str' }))] };
  });
}

/** A bridge call as a node made it. */
export interface BridgeCall {
  op: CallOp;
  args: Record<string, unknown>;
  flow: string;
}

/** The bridge the nodes see: the test feeds messages and answers calls (by default `{ok: true}`). */
export class TestBridge implements NodeBridge {
  readonly calls: BridgeCall[] = [];
  /** How the gateway answers a call; throw (an Error with `code`) to refuse it. */
  answer: (call: BridgeCall) => unknown = () => ({ ok: true });
  private readonly listeners = new Map<FlowKind, Set<(m: FlowMessage) => void>>();

  on(kind: FlowKind, listener: (m: FlowMessage) => void): () => void {
    const set = this.listeners.get(kind) ?? new Set();
    this.listeners.set(kind, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  async call(op: CallOp, args: Record<string, unknown>, flow: string): Promise<unknown> {
    const call = { op, args, flow };
    this.calls.push(call);
    return this.answer(call);
  }

  /** How many listeners of `kind` the deployed nodes hold (a node gone on redeploy has let go of its own). */
  count(kind: FlowKind): number {
    return this.listeners.get(kind)?.size ?? 0;
  }

  feed(m: FlowMessage): void {
    for (const listener of this.listeners.get(m.kind) ?? []) listener(m);
  }
}

export interface Harness {
  url: string;
  bridge: TestBridge;
  /** Replaces every flow (a full deploy) and resolves once Node-RED has started them. */
  deploy(flow: FlowNode[]): Promise<void>;
  /** Presses an inject node's button (the editor's POST /flows/inject/<id>). */
  inject(id: string): Promise<void>;
  /** A message into a deployed node's input. */
  receive(id: string, msg: Record<string, unknown>): void;
  /** A deployed node's flow context (what an example flow keeps). */
  flowContext(id: string): { get(key: string): unknown };
  /** What function nodes put with `global.get('sink')(key, msg)`, by key. */
  sunk: Map<string, unknown[]>;
  /** GET an admin path (under /flows) as JSON. */
  get(path: string): Promise<unknown>;
}

/** Starts Node-RED with the Lianfang nodes under /flows (admin) and /flows-api (HTTP-in), loopback only. */
export async function startHarness(t: Test): Promise<Harness> {
  const RED = require('node-red');
  const express = require('express');
  const userDir = mkdtempSync(join(tmpdir(), 'lf-nr-'));
  const bridge = new TestBridge();
  const sunk = new Map<string, unknown[]>();
  const sink = (key: string, value: unknown) => sunk.set(key, [...(sunk.get(key) ?? []), value]);
  const app = express();
  const server = createServer(app);
  RED.init(server, {
    userDir,
    nodesDir: [NODES_DIR],
    httpAdminRoot: '/flows',
    httpNodeRoot: '/flows-api',
    functionGlobalContext: { ModbusRTU: require('modbus-serial'), sink },
    lianfang: bridge,
    credentialSecret: 'harness',
    logging: { console: { level: 'warn' } },
    editorTheme: { tours: false },
  });
  app.use('/flows', RED.httpAdmin);
  app.use('/flows-api', RED.httpNode);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await RED.start();
  t.teardown(async () => {
    await RED.stop();
    await new Promise((resolve) => server.close(resolve));
    rmSync(userDir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function admin(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await fetch(`${url}/flows${path}`, {
      method,
      headers: { accept: 'application/json', 'content-type': 'application/json', 'node-red-deployment-type': 'full', 'node-red-api-version': 'v2' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res;
  }
  return {
    url,
    bridge,
    async deploy(flow) {
      const started = new Promise<void>((resolve) => RED.events.once('flows:started', () => resolve()));
      await admin('POST', '/flows', { flows: flow });
      await started;
    },
    async inject(id) {
      await admin('POST', `/inject/${id}`);
    },
    receive(id, msg) {
      RED.nodes.getNode(id).receive(msg);
    },
    flowContext(id) {
      return RED.nodes.getNode(id).context().flow;
    },
    sunk,
    async get(path) {
      return (await admin('GET', path)).json();
    },
  };
}

/** A coil write the Modbus server took. */
export interface CoilWrite {
  addr: number;
  value: boolean;
  unit: number;
}

/** A Modbus TCP server (modbus-serial's ServerTCP) on a loopback port, recording coil writes. */
export async function startModbus(t: Test, unitID = 1, port = 0): Promise<{ port: number; writes: CoilWrite[]; coils: Map<number, boolean> }> {
  const { ServerTCP } = require('modbus-serial');
  const writes: CoilWrite[] = [];
  const coils = new Map<number, boolean>();
  const vector = {
    getCoil: (addr: number) => coils.get(addr) ?? false,
    setCoil: (addr: number, value: boolean, unit: number) => {
      writes.push({ addr, value, unit });
      coils.set(addr, value);
    },
  };
  // ServerTCP reads `options.port || 502`: a string is how to ask for port 0 (any free port).
  const server = new ServerTCP(vector, { host: '127.0.0.1', port: String(port), unitID });
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', resolve);
    server.once('serverError', reject);
  });
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { port: (server._server.address() as AddressInfo).port, writes, coils };
}

/**
 * A tab to deploy last with the flows under test: its inject fires once the flows have started and
 * POSTs to `<url>/ready/<tag>`. Node-RED answers a deploy before it starts the flows, so a test
 * that acts on the answer may act before the nodes listen; this POST says they do (the tabs start
 * in order, this one last, and the inject waits a tenth of a second more).
 *
 * With `closed`, it also POSTs every closed alarm to `<url>/closed/<tag>`: a test that waits for
 * an alarm's close there knows the flows have been given every change of that alarm, so the next
 * deploy's flows cannot be handed a late one (the feed batches, and Node-RED takes an HTTP deploy
 * between two of its messages).
 */
export function readyProbe(url: string, tag: string, opts: { closed?: boolean } = {}): FlowNode[] {
  const z = 'lf7ead0000000000';
  return [
    { id: z, type: 'tab', label: 'ready probe' },
    { id: 'lf7ead0000000001', z, type: 'inject', props: [{ p: 'payload' }], payload: tag, payloadType: 'str', once: true, onceDelay: 0.1, repeat: '', crontab: '', topic: '', wires: [['lf7ead0000000002']] },
    { id: 'lf7ead0000000002', z, type: 'http request', method: 'POST', ret: 'txt', paytoqs: 'ignore', url: `${url}/ready/${tag}`, tls: '', persist: false, proxy: '', authType: '', senderr: false, headers: [], wires: [[]] },
    ...(opts.closed
      ? [
          { id: 'lf7ead0000000003', z, type: 'lianfang-alarm-in', name: 'closed', stations: '', kinds: '', states: 'closed', includeTests: true, wires: [['lf7ead0000000004']] },
          { id: 'lf7ead0000000004', z, type: 'http request', method: 'POST', ret: 'txt', paytoqs: 'ignore', url: `${url}/closed/${tag}`, tls: '', persist: false, proxy: '', authType: '', senderr: false, headers: [], wires: [[]] },
        ]
      : []),
  ];
}
