/**
 * A bridge that cannot open its port (docs/concepts.md "Faults and test mode"): the bus's
 * PortWatch (devices/bridge.ts) as a `port-failed` fault of `bus:<busId>`. The fault is raised once
 * `failAfter` attempts in a row have failed (the bridge retries with backoff between them), so a
 * USB adapter that re-enumerates, or a Modbus TCP reopen after a timeout that fails once, does not
 * open a ticket; it clears when the port opens. While raised, each failed attempt says it again with
 * the same detail (no new rev for a stored fault; stored now if the first raise could not be). The first open of a bus in this run clears too, so
 * a fault left open by the last run does not outlive its cause.
 */
import type { Logger } from '../logger.js';
import type { GatewayFaultSink } from '../faults/gateway-faults.js';
import type { PortWatch } from '../../devices/bridge.js';

export interface PortFaultsOptions {
  sink: GatewayFaultSink;
  log: Logger;
  /** Failed attempts in a row that make the fault (health.portFailedAfterAttempts). */
  failAfter: number;
}

/** One PortWatch per bus, and what the wired side calls when a bus is no longer held. */
export class PortFaults {
  /** Per bus: the detail its fault was raised with in this run, and whether its state is known at all. */
  private readonly buses = new Map<string, { raised: Record<string, unknown> | null; known: boolean }>();

  constructor(private readonly opts: PortFaultsOptions) {}

  watch(busId: string, where: string): PortWatch {
    const state: { raised: Record<string, unknown> | null; known: boolean } = { raised: null, known: false };
    this.buses.set(busId, state);
    const { log, failAfter } = this.opts;
    const sink = this.guardedSink(busId);
    return {
      openFailed: (failures, err) => {
        if (failures < failAfter) return;
        // Said again at each failed attempt with the detail it was raised with: a no-op for a
        // stored fault, and a raise that could not be stored (a full disk) is stored later.
        if (state.raised) return sink.raiseGateway('port-failed', `bus:${busId}`, state.raised);
        const code = (err as Error & { code?: unknown }).code;
        state.raised = { busId, where, failures, error: err.message, ...(typeof code === 'string' ? { code } : {}) };
        state.known = true;
        log.error({ bus: busId, where, failures, err: err.message }, 'the bus port cannot be opened');
        sink.raiseGateway('port-failed', `bus:${busId}`, state.raised);
      },
      opened: () => {
        if (state.known && !state.raised) return;
        if (state.raised) log.info({ bus: busId, where }, 'the bus port is open again');
        state.raised = null;
        state.known = true;
        sink.clearGateway('port-failed', `bus:${busId}`);
      },
    };
  }

  /** The sink as a bridge may call it: a failure here is logged, never thrown into the bus's loop. */
  private guardedSink(busId: string): GatewayFaultSink {
    const { sink, log } = this.opts;
    const guard = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        log.error({ err, bus: busId }, 'reporting the bus port failed');
      }
    };
    return {
      raiseGateway: (kind, subject, detail) => guard(() => sink.raiseGateway(kind, subject, detail)),
      clearGateway: (kind, subject) => guard(() => sink.clearGateway(kind, subject)),
    };
  }

  /**
   * The bus was removed or its port changed: a fault of the old port has no cause left (one raised
   * in this run, or one the last run left that this run has not yet found to be over).
   */
  released(busId: string): void {
    const state = this.buses.get(busId);
    this.buses.delete(busId);
    if (state && (state.raised || !state.known)) this.guardedSink(busId).clearGateway('port-failed', `bus:${busId}`);
  }

  /**
   * At start, once the buses are open: a port-failed fault the last run left for a bus this run
   * does not hold (removed, or without devices now) has no cause left.
   */
  sweep(open: readonly { kind: string; subject: string | null }[], holds: (busId: string) => boolean): void {
    for (const f of open) {
      if (f.kind !== 'port-failed' || !f.subject?.startsWith('bus:')) continue;
      const busId = f.subject.slice('bus:'.length);
      if (!holds(busId)) this.guardedSink(busId).clearGateway('port-failed', `bus:${busId}`);
    }
  }
}
