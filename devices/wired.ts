/**
 * The wired side of the gateway: one driver per bus that has devices, kept in step with the
 * registry (a `device add` through the admin channel opens a new bus or polls a new address at
 * once, without a restart), and the alerts of shops with wired devices routed to their drivers.
 * What the registry holds reaches it as ports and device records (`WiredContext.buses`, made by
 * gateway/wired-adapter.ts).
 */
import type { DeviceCommand, ShopAlert } from '../firmware-contracts/mqtt/payloads.js';
import type { BridgeContext, BusDriver, BusPort, PortWatch, ScanHit, ScanOptions, WiredDevice } from './bridge.js';
import { ModbusBusDriver } from './modbus-bridge.js';
import { SerialBusDriver } from './serial-bridge.js';

/** A bus with devices, as the registry holds it now. */
export interface WiredBus {
  id: string;
  port: BusPort;
  /** Where it is, as people say it (for the log): `/dev/ttyUSB0 @ 9600 8N1`, `10.0.0.7:502`. */
  where: string;
  devices: WiredDevice[];
}

export interface WiredContext extends BridgeContext {
  /** The buses that have devices to poll, read at each reconcile. */
  buses(): WiredBus[];
  /** The watch of one bus's port, given to its driver. */
  portWatch?(busId: string, where: string): PortWatch;
  /** A bus is no longer held (removed, or its port changed): what its port watch reported is over. */
  busReleased?(busId: string): void;
}

export class WiredDevices {
  private readonly drivers = new Map<string, BusDriver>();

  constructor(private readonly ctx: WiredContext) {}

  /** Open, update or close drivers to match the registry. */
  async reconcile(): Promise<void> {
    const wanted = new Map(this.ctx.buses().map((b) => [b.id, b]));
    for (const [busId, driver] of this.drivers) {
      const bus = wanted.get(busId);
      if (!bus || !samePort(bus.port, driver.port)) {
        this.drivers.delete(busId);
        await driver.close();
        this.ctx.busReleased?.(busId);
        this.ctx.log.info({ bus: busId }, 'bus closed');
      }
    }
    for (const [busId, { port, where, devices }] of wanted) {
      const driver = this.drivers.get(busId);
      if (driver) {
        driver.setDevices(devices);
        continue;
      }
      const log = this.ctx.log.child({ bus: busId });
      const ctx = { ...this.ctx, log, port: this.ctx.portWatch?.(busId, where) };
      this.drivers.set(busId, port.kind === 'serial' ? new SerialBusDriver(port, ctx, devices) : new ModbusBusDriver(port, ctx, devices));
      log.info({ where, kind: port.kind, devices: devices.length }, 'bus opened');
    }
  }

  /** Every shop alert the outbox sends or re-sends passes here, as the object: to that shop's wired devices. */
  onShopAlert(shopId: string, alert: ShopAlert): void {
    for (const driver of this.drivers.values()) if (driver.servesShop(shopId)) driver.alert(shopId, alert);
  }

  /** A wired keypad's own commands (its answer to an entry), to the driver that holds it. */
  keypadCommand(deviceId: string, commands: readonly DeviceCommand[]): void {
    for (const driver of this.drivers.values()) driver.keypadCommand?.(deviceId, commands);
  }

  /** A shop with a wired device that can take an alert counts as reachable, like a subscribed app. */
  servesShop(shopId: string): boolean {
    for (const driver of this.drivers.values()) if (driver.servesShop(shopId)) return true;
    return false;
  }

  /** Scan a bus this gateway holds (`lianfang bus scan` through the admin channel); null: no such bus is open. */
  scan(busId: string, opts: ScanOptions): Promise<ScanHit[]> | null {
    const driver = this.drivers.get(busId);
    return driver ? driver.scan(opts) : null;
  }

  holds(busId: string): boolean {
    return this.drivers.has(busId);
  }

  async close(): Promise<void> {
    const all = [...this.drivers.values()];
    this.drivers.clear();
    await Promise.all(all.map((d) => d.close()));
  }
}

/** The same line: a bus whose port or settings changed is closed and opened again. */
function samePort(a: BusPort, b: BusPort): boolean {
  if (a.kind === 'modbus-tcp') return b.kind === 'modbus-tcp' && a.host === b.host && a.port === b.port;
  return b.kind !== 'modbus-tcp' && a.kind === b.kind && a.path === b.path && a.baud === b.baud && a.parity === b.parity;
}
