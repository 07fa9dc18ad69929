/**
 * What the flows hear of the gateway (docs/node-red.md "What flows receive"): each committed change
 * of an alarm (the console's view of it, once per rev however many consoles it goes to), each stored
 * device event but heartbeats, each change of a fault or its ticket.
 *
 * The alarm path only ever calls `push`, after its commit: it copies nothing from the database,
 * never waits, and the sending to the child happens in a later turn of the event loop. The queue is bounded (config nodeRed.queueMax): a message beyond it is dropped and
 * counted (`nodered.dropped`), never held, whether Node-RED is slow, restarting or not there yet.
 * The supervisor takes batches from it for the child process.
 */
import type { ConsoleAlarm, ConsoleFault, DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';
import type { Counters } from '../metrics.js';
import type { Device, Shop } from '../registry/registry.js';
import type { FlowEvent, FlowMessage, FlowShop } from './protocol.js';

/** Fields of a device event a flow never sees: its counters, and a keypad's keys (PINs). */
const KEPT_BACK = new Set(['seq', 'boot', 'keys', 'type']);

export function flowShop(shop: Shop | undefined): FlowShop | null {
  if (!shop) return null;
  const { id, name, address, doorPlate, grid, sector, stationId, compoundId, lat, lon } = shop;
  return { shopId: id, name, address, doorPlate, grid, sector, stationId, compoundId, lat, lon };
}

/** A stored device event as a flow sees it (a keypad's keys never leave the gateway). */
export function flowEvent(device: Device, event: DeviceEvent, eventId: number, at: string, stationId: string | null, test: boolean): FlowEvent {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event)) if (!KEPT_BACK.has(k)) fields[k] = v;
  return { eventId, deviceId: device.id, deviceType: device.type, shopId: device.shopId, stationId, type: event.type, at, test, fields };
}

export interface FlowFeedContext {
  counters: Counters;
  /** The registry's shops, read when a message is made (in memory). */
  shops: () => ReadonlyMap<string, Shop>;
  /** config nodeRed.queueMax. */
  max: number;
  /** config nodeRed.batchDelayMs: what comes within this long of the first message goes to Node-RED with it. */
  batchDelayMs: number;
  /** Something was queued: the supervisor sends it when the child can take it (called in a later turn, never on the alarm's). */
  wake: () => void;
}

export class FlowFeed {
  /** Each message is made when it is taken, in a later turn: nothing of it is built on the alarm's. */
  private queue: (() => FlowMessage)[] = [];
  private waking = false;

  constructor(private readonly ctx: FlowFeedContext) {}

  /** An alarm's new rev, after its commit. */
  alarm(alarm: ConsoleAlarm): void {
    this.push(() => ({ kind: 'alarm', alarm, shop: flowShop(this.ctx.shops().get(alarm.shopId)) }));
  }

  /** A stored device event, after its commit (`make` reads what else the flow is told: its test mode). */
  event(make: () => FlowEvent): void {
    this.push(() => {
      const event = make();
      return { kind: 'event', event, shop: flowShop(this.ctx.shops().get(event.shopId)) };
    });
  }

  /** A fault's or its ticket's change, after its commit. */
  fault(fault: ConsoleFault): void {
    this.push(() => ({ kind: 'fault', fault }));
  }

  push(m: () => FlowMessage): void {
    if (this.queue.length >= this.ctx.max) {
      this.ctx.counters.inc('nodered.dropped');
      return;
    }
    this.queue.push(m);
    this.ctx.counters.inc('nodered.queued');
    // After this turn: the alarm's own messages to the consoles and shops go out first, and what
    // one commit queued goes to the child in one batch.
    if (this.waking) return;
    this.waking = true;
    setTimeout(() => {
      this.waking = false;
      this.ctx.wake();
    }, this.ctx.batchDelayMs).unref();
  }

  /** The oldest `n` messages, taken off the queue. */
  take(n: number): FlowMessage[] {
    return this.queue.splice(0, n).flatMap((make) => {
      try {
        return [make()];
      } catch {
        // The gateway is stopping (its database closed): the message is lost, and counted.
        this.ctx.counters.inc('nodered.lost');
        return [];
      }
    });
  }

  get length(): number {
    return this.queue.length;
  }
}
