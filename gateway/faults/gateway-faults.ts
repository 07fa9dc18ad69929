/**
 * Faults of the gateway itself (docs/concepts.md "Faults and test mode"): free disk below
 * its floor, a database that cannot be written, a bridge that cannot open its port, a Node-RED process that exited or stopped answering. Each is a fault
 * the console sees, never only a log line. Monitors (gateway/health/) report through this sink;
 * the fault store (gateway/faults/) implements it.
 */

export type GatewayFaultKind = 'disk-low' | 'db-error' | 'port-failed' | 'node-red-down';

/** What a gateway fault is about: `disk:<path>`, `db`, `bus:<busId>`, `node-red` (its child process). */
export type GatewaySubject = `disk:${string}` | 'db' | `bus:${string}` | 'node-red';

export interface GatewayFaultSink {
  /** Raise a fault of the gateway itself; a fault already open for (kind, subject) is left as it is (its detail may be updated). */
  raiseGateway(kind: GatewayFaultKind, subject: GatewaySubject, detail?: Record<string, unknown>): void;
  /** Its cause went away: the fault clears and its ticket closes as recovered. */
  clearGateway(kind: GatewayFaultKind, subject: GatewaySubject): void;
}
