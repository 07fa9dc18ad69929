/**
 * A bridge that cannot open its port (DESIGN "Kinds, priority, faults and test mode"): the bus's
 * PortWatch (devices/bridge.ts) as a `port-failed` fault of `bus:<busId>`. The fault is raised once
 * `failAfter` attempts in a row have failed (the bridge retries with backoff between them), so a
 * USB adapter that re-enumerates, or a Modbus TCP reopen after a timeout that fails once, does not
 * open a ticket; it clears when the port opens. The first open of a bus in this run clears too, so
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
  /** Per bus: whether its fault is raised in this run, and whether its state is known at all. */
  private readonly buses = new Map<string, { raised: boolean; known: boolean }>();

  constructor(private readonly opts: PortFaultsOptions) {}

  watch(busId: string, where: string): PortWatch {
    const state = { raised: false, known: false };
    this.buses.set(busId, state);
    const { sink, log, failAfter } = this.opts;
    return {
      openFailed: (failures, err) => {
        if (state.raised || failures < failAfter) return;
        state.raised = true;
        state.known = true;
        const code = (err as Error & { code?: unknown }).code;
        log.error({ bus: busId, where, failures, err: err.message }, 'the bus port cannot be opened');
        sink.raiseGateway('port-failed', `bus:${busId}`, { busId, where, failures, error: err.message, ...(typeof code === 'string' ? { code } : {}) });
      },
      opened: () => {
        if (state.known && !state.raised) return;
        if (state.raised) log.info({ bus: busId, where }, 'the bus port is open again');
        state.raised = false;
        state.known = true;
        sink.clearGateway('port-failed', `bus:${busId}`);
      },
    };
  }

  /** The bus was removed or its port changed: a fault of the old port has no cause left. */
  released(busId: string): void {
    const state = this.buses.get(busId);
    this.buses.delete(busId);
    if (state?.raised) this.opts.sink.clearGateway('port-failed', `bus:${busId}`);
  }
}
