/**
 * The live feed: MQTT over the console's own WebSocket with the session's grant (no password is
 * kept in the browser beyond the page's memory). It keeps the newest `rev` of every alarm and fault
 * of the scope, sends actions with a `requestId` and matches the refusals on the errors topic to
 * them. On every (re)connect it asks the API for the snapshot since the last one and merges it by
 * `rev`: after a gateway restart nothing missed is lost and the page does not reload.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { AlarmList, ConsoleAlarm, ConsoleFault, Me } from '../contract.js';
import type { ConsoleAction, ConsoleError } from '../../../firmware-contracts/mqtt/payloads.js';
import { api } from './util.js';

export interface Refusal {
  requestId: string;
  alarmId: string;
  action: string;
  code: string;
  message: string;
}

export interface LiveState {
  connected: boolean;
  /** Has the feed been up since the page started? */
  everConnected: boolean;
  alarms: Map<string, ConsoleAlarm>;
  faults: Map<string, ConsoleFault>;
  /** Actions sent and not answered by a refusal (the newest few). */
  pending: Map<string, { alarmId: string; action: string; at: number }>;
  refusals: Refusal[];
}

const topic = (scopeId: string, leaf: string) => `lianfang/v1/stations/${scopeId}/${leaf}`;

export class Live {
  state: LiveState = { connected: false, everConnected: false, alarms: new Map(), faults: new Map(), pending: new Map(), refusals: [] };
  private client: MqttClient | null = null;
  private scopeId = '';
  /** The server's time of the last snapshot: the next catch-up asks for alarms closed since then. */
  private snapshotAt: string | null = null;
  private listeners = new Set<() => void>();
  private probedAt = 0;

  constructor(private readonly me: Me) {}

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    this.state = { ...this.state };
    for (const fn of this.listeners) fn();
  }

  start(scopeId: string): void {
    this.scopeId = scopeId;
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const client = mqtt.connect(`${proto}://${location.host}${this.me.live.path}`, {
      username: this.me.live.username,
      password: this.me.live.password,
      clientId: this.me.live.clientIdPrefix + Math.random().toString(36).slice(2, 10),
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      protocolVersion: 4,
      resubscribe: false,
      // The worker timers mqtt.js prefers are made from a blob: URL, which the page's CSP refuses.
      timerVariant: 'native',
    });
    this.client = client;
    client.on('connect', () => {
      this.subscribeScope();
      this.state.connected = true;
      this.state.everConnected = true;
      this.emit();
    });
    const down = () => {
      // A feed closed because the session ended: /api/me answers 401 and api() goes back to the login page.
      if (Date.now() - this.probedAt > 10_000) {
        this.probedAt = Date.now();
        api('/api/me').catch(() => undefined);
      }
      if (!this.state.connected) return;
      this.state.connected = false;
      this.emit();
    };
    client.on('close', down);
    client.on('offline', down);
    client.on('error', () => undefined);
    client.on('message', (t, payload) => this.onMessage(t, payload));
  }

  /** Change the scope: a new set of topics and a fresh snapshot. */
  setScope(scopeId: string): void {
    if (scopeId === this.scopeId) return;
    const old = this.scopeId;
    this.scopeId = scopeId;
    this.snapshotAt = null;
    this.state.alarms = new Map();
    this.state.faults = new Map();
    this.state.refusals = [];
    if (this.client?.connected) {
      this.client.unsubscribe(['alarms', 'faults', 'errors'].map((l) => topic(old, l)));
      this.subscribeScope();
    }
    this.emit();
  }

  private subscribeScope(): void {
    const scopeId = this.scopeId;
    this.client?.subscribe(
      ['alarms', 'faults', 'errors'].map((l) => topic(scopeId, l)),
      { qos: 1 },
      () => void this.catchUp(scopeId),
    );
  }

  /** The snapshot since the last one, merged by rev. */
  async catchUp(scopeId = this.scopeId): Promise<void> {
    const q = new URLSearchParams({ scope: scopeId });
    if (this.snapshotAt) q.set('closedSince', this.snapshotAt);
    try {
      const list = await api<AlarmList>(`/api/alarms?${q}`);
      if (scopeId !== this.scopeId) return;
      for (const a of list.alarms) this.mergeAlarm(a);
      const faults = new Map<string, ConsoleFault>();
      for (const f of list.faults) {
        const mine = this.state.faults.get(f.faultId);
        faults.set(f.faultId, mine && mine.rev > f.rev ? mine : f);
      }
      // A fault not in the snapshot was closed meanwhile, unless it changed after the snapshot.
      for (const [id, f] of this.state.faults) if (!faults.has(id) && f.updatedAt > list.at) faults.set(id, f);
      this.state.faults = faults;
      this.snapshotAt = list.at;
      this.emit();
    } catch {
      /* shown by the connection state; the next reconnect tries again */
    }
  }

  private mergeAlarm(a: ConsoleAlarm): boolean {
    if (a.test) return false;
    const have = this.state.alarms.get(a.alarmId);
    if (have && have.rev >= a.rev) return false;
    this.state.alarms.set(a.alarmId, a);
    return true;
  }

  private onMessage(t: string, payload: Uint8Array): void {
    let msg: unknown;
    try {
      msg = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const prefix = topic(this.scopeId, '');
    if (!t.startsWith(prefix)) return;
    const leaf = t.slice(prefix.length);
    if (leaf === 'alarms') {
      const a = msg as ConsoleAlarm;
      if (typeof a.alarmId === 'string' && typeof a.rev === 'number' && this.mergeAlarm(a)) this.emit();
    } else if (leaf === 'faults') {
      const f = msg as ConsoleFault;
      if (typeof f.faultId !== 'string' || typeof f.rev !== 'number') return;
      const have = this.state.faults.get(f.faultId);
      if (have && have.rev >= f.rev) return;
      this.state.faults = new Map(this.state.faults).set(f.faultId, f);
      this.emit();
    } else if (leaf === 'errors') {
      const e = msg as ConsoleError;
      if (!e.requestId) return;
      const p = this.state.pending.get(e.requestId);
      if (!p) return;
      this.state.pending.delete(e.requestId);
      this.state.refusals = [
        { requestId: e.requestId, alarmId: e.alarmId ?? p.alarmId, action: e.action ?? p.action, code: e.code, message: e.message },
        ...this.state.refusals.filter((r) => r.alarmId !== (e.alarmId ?? p.alarmId)),
      ].slice(0, 10);
      this.emit();
    }
  }

  /** Publish an action; its refusal, if any, comes back on the errors topic with the requestId. */
  act(action: Omit<ConsoleAction, 'requestId'>): string {
    const requestId = crypto.randomUUID();
    const body: ConsoleAction = { ...action, requestId };
    this.state.pending.set(requestId, { alarmId: action.alarmId, action: action.action, at: Date.now() });
    for (const [id, p] of this.state.pending) if (Date.now() - p.at > 60_000) this.state.pending.delete(id);
    this.state.refusals = this.state.refusals.filter((r) => r.alarmId !== action.alarmId);
    this.client?.publish(topic(this.scopeId, 'actions'), JSON.stringify(body), { qos: 1 });
    this.emit();
    return requestId;
  }

  dismiss(requestId: string): void {
    this.state.refusals = this.state.refusals.filter((r) => r.requestId !== requestId);
    this.emit();
  }

  stop(): void {
    this.client?.end(true);
  }
}

/** The queue's order: duress, panic and intrusion, help; within each, oldest first. */
export function alarmPriority(a: ConsoleAlarm): number {
  if (a.duress) return 1;
  if (a.priority) return a.priority;
  return a.kind === 'help' ? 3 : 2;
}

export function queueAlarms(alarms: Map<string, ConsoleAlarm>): ConsoleAlarm[] {
  return [...alarms.values()]
    .filter((a) => a.state !== 'closed' && !a.test)
    .sort((x, y) => alarmPriority(x) - alarmPriority(y) || x.raisedAt.localeCompare(y.raisedAt) || x.alarmId.localeCompare(y.alarmId));
}

export function queueFaults(faults: Map<string, ConsoleFault>): ConsoleFault[] {
  return [...faults.values()]
    .filter((f) => f.state === 'raised' || f.ticket.state !== 'fixed')
    .sort((x, y) => x.raisedAt.localeCompare(y.raisedAt));
}

/** What should sound: lost feed, else duress or alarm while an alarm is raised and nobody took it. */
export function soundFor(connected: boolean, alarms: ConsoleAlarm[]): 'alarm' | 'duress' | 'lost' | '' {
  if (!connected) return 'lost';
  const unhandled = alarms.filter((a) => a.state === 'raised' && !a.takenBy);
  if (unhandled.some((a) => a.duress)) return 'duress';
  return unhandled.length ? 'alarm' : '';
}
