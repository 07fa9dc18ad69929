/**
 * A GatewayFaultSink that records what the gateway's monitors (gateway/health/) report, and what
 * is open now, for their unit tests.
 */
import type { GatewayFaultKind, GatewayFaultSink, GatewaySubject } from '../../gateway/faults/gateway-faults.js';

export interface SinkCall {
  op: 'raise' | 'clear';
  kind: GatewayFaultKind;
  subject: GatewaySubject;
  detail?: Record<string, unknown>;
}

export class RecordingGatewaySink implements GatewayFaultSink {
  readonly calls: SinkCall[] = [];
  readonly open = new Map<string, Record<string, unknown> | undefined>();

  raiseGateway(kind: GatewayFaultKind, subject: GatewaySubject, detail?: Record<string, unknown>): void {
    this.calls.push({ op: 'raise', kind, subject, ...(detail ? { detail } : {}) });
    this.open.set(`${kind} ${subject}`, detail);
  }

  clearGateway(kind: GatewayFaultKind, subject: GatewaySubject): void {
    this.calls.push({ op: 'clear', kind, subject });
    this.open.delete(`${kind} ${subject}`);
  }

  /** The calls as `raise disk-low disk:/x` strings, for compact assertions. */
  ops(): string[] {
    return this.calls.map((c) => `${c.op} ${c.kind} ${c.subject}`);
  }
}
