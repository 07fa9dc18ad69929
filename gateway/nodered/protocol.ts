/**
 * What the gateway and its Node-RED child process say to each other over their IPC channel
 * (docs/node-red.md). The child is a separate process so that no flow runs on the gateway's event
 * loop; this channel is the only way between them: a flow never logs in to the broker.
 *
 * Gateway → child: `init` once (the settings, secrets included: never in argv or the environment),
 * then `feed` (a batch of flow messages, numbered), `ping`, and the answers to the child's requests.
 * Child → gateway: `ready` (its loopback port), `ack` (the last batch it took), `pong`, and
 * requests: `auth` (adminAuth against the gateway's accounts), `call` (what a Lianfang node does),
 * `audit` (Node-RED's own audit events: a deploy and who made it), `log`.
 */
import type { ConsoleAlarm, ConsoleFault } from '../../firmware-contracts/mqtt/payloads.js';

/** The header the gateway's proxy sets on every request it forwards to the child's listener (its per-start secret). */
export const PROXY_HEADER = 'x-lianfang-proxy';

/** The shop an alarm or event is about, as a flow needs it (a grid-per-day count, a webhook's text). */
export interface FlowShop {
  shopId: string;
  name: string;
  address: string;
  doorPlate: string | null;
  grid: string | null;
  sector: string | null;
  stationId: string;
  compoundId: string | null;
  lat: number | null;
  lon: number | null;
}

/** What a device reported, without what must never leave the gateway (a keypad's keys: PINs). */
export interface FlowEvent {
  eventId: number;
  deviceId: string;
  deviceType: string;
  shopId: string;
  stationId: string | null;
  type: string;
  at: string;
  /** Whether the device or its shop is in test mode. */
  test: boolean;
  /** The event's own fields besides seq/boot/keys (door `open`, battery `level`, selftest `result`…). */
  fields: Record<string, unknown>;
}

/** One message to the flows: an alarm's new rev, a device event, a fault's or its ticket's change. */
export type FlowMessage =
  | { kind: 'alarm'; alarm: ConsoleAlarm; shop: FlowShop | null }
  | { kind: 'event'; event: FlowEvent; shop: FlowShop | null }
  | { kind: 'fault'; fault: ConsoleFault };

export type FlowKind = FlowMessage['kind'];

/** What a Lianfang node asks of the gateway (`lianfang-command-out`, `lianfang-alarm-note`). */
export type CallOp = 'command' | 'note';

/** A gateway user as Node-RED's adminAuth sees it: `*` may edit and deploy, `read` may only look. */
export interface EditorUser {
  username: string;
  permissions: '*' | 'read';
}

/** The settings the child starts Node-RED with (built by the gateway, see node-red-supervisor.ts). */
export interface ChildInit {
  userDir: string;
  /** Derived from the gateway key: flow credentials are encrypted with it (never stored in clear). */
  credentialSecret: string;
  /** A per-start secret the gateway's proxy sends in `x-lianfang-proxy`: the only way into the child's listener. */
  proxySecret: string;
  /** The node package in the repository (gateway/nodered/lianfang-nodes), loaded without an install. */
  nodesDir: string;
  /** In seconds, as Node-RED's adminAuth.sessionExpiryTime. */
  tokenExpirySeconds: number;
  httpAdminRoot: string;
  httpNodeRoot: string;
  logLevel: string;
  /** Test hook: the first N starts of a data directory exit at once (a child that keeps failing). */
  failStarts?: number;
}

export type ToChild =
  | { t: 'init'; init: ChildInit }
  | { t: 'feed'; seq: number; messages: FlowMessage[] }
  | { t: 'ping'; n: number }
  | { t: 'auth-reply'; id: number; user: EditorUser | null }
  | { t: 'call-reply'; id: number; ok: true; result: unknown }
  | { t: 'call-reply'; id: number; ok: false; code: string; message: string }
  | { t: 'stop' };

export type FromChild =
  | { t: 'ready'; port: number }
  | { t: 'ack'; seq: number }
  | { t: 'pong'; n: number }
  | { t: 'auth'; id: number; op: 'users'; username: string }
  | { t: 'auth'; id: number; op: 'authenticate'; username: string; password: string }
  | { t: 'call'; id: number; op: CallOp; flow: string; args: Record<string, unknown> }
  | { t: 'audit'; event: string; user: string | null; detail: Record<string, unknown> }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string };

/**
 * What the Lianfang nodes find as `RED.settings.lianfang` inside the child (lianfang-nodes/lianfang.js).
 * `on` returns the function that removes the listener; `call` rejects with an Error whose `code`
 * is the gateway's LF_ERR_… code.
 */
export interface NodeBridge {
  on(kind: FlowKind, listener: (m: FlowMessage) => void): () => void;
  call(op: CallOp, args: Record<string, unknown>, flow: string): Promise<unknown>;
}
