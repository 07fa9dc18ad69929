/**
 * The wired side of the gateway: one driver per registered bus that has devices, kept in step with
 * the registry (a `device add` through the admin channel opens a new bus or polls a new address
 * at once, without a restart), and the alerts of shops with wired devices routed to their drivers.
 */
import type { Device } from '../gateway/registry/registry.js';
import type { Bus } from '../gateway/registry/buses.js';
import { describeBus } from '../gateway/registry/buses.js';
import type { ShopAlert } from '../firmware-contracts/mqtt/payloads.js';
import { lfError } from '../gateway/errors.js';
import type { BridgeContext, BusDriver, ScanHit, ScanOptions } from './bridge.js';
import { ModbusBusDriver } from './modbus-bridge.js';
import { SerialBusDriver } from './serial-bridge.js';

export class WiredDevices {
  private readonly drivers = new Map<string, BusDriver>();

  constructor(private readonly ctx: BridgeContext) {}

  /** Open, update or close drivers to match the registry. */
  async reconcile(): Promise<void> {
    const byBus = new Map<string, Device[]>();
    for (const d of this.ctx.registry.devices.values()) {
      if (!d.bus || d.revokedAt || d.transport === 'mqtt') continue;
      const list = byBus.get(d.bus) ?? [];
      list.push(d);
      byBus.set(d.bus, list);
    }
    for (const [busId, driver] of this.drivers) {
      const bus = this.ctx.registry.buses.get(busId);
      if (!byBus.has(busId) || !bus || !sameLine(bus, driver.bus)) {
        this.drivers.delete(busId);
        await driver.close();
        this.ctx.log.info({ bus: busId }, 'bus closed');
      }
    }
    for (const [busId, devices] of byBus) {
      const bus = this.ctx.registry.buses.get(busId);
      if (!bus) continue;
      const driver = this.drivers.get(busId);
      if (driver) {
        driver.setDevices(devices);
        continue;
      }
      const log = this.ctx.log.child({ bus: busId });
      const ctx = { ...this.ctx, log };
      this.drivers.set(busId, bus.kind === 'serial' ? new SerialBusDriver(bus, ctx, devices) : new ModbusBusDriver(bus, ctx, devices));
      log.info({ where: describeBus(bus), kind: bus.kind, devices: devices.length }, 'bus opened');
    }
  }

  /** Every shop alert the outbox sends or re-sends passes here, as the object: to that shop's wired devices. */
  onShopAlert(shopId: string, alert: ShopAlert): void {
    for (const driver of this.drivers.values()) if (driver.servesShop(shopId)) driver.alert(shopId, alert);
  }

  /** A shop with a wired device that can take an alert counts as reachable, like a subscribed app. */
  servesShop(shopId: string): boolean {
    for (const driver of this.drivers.values()) if (driver.servesShop(shopId)) return true;
    return false;
  }

  /** Scan a bus this gateway holds (`lianfang bus scan` through the admin channel). */
  scan(busId: string, opts: ScanOptions): Promise<ScanHit[]> {
    const driver = this.drivers.get(busId);
    if (!driver) throw lfError('LF_ERR_NOT_FOUND', 'open bus', busId);
    return driver.scan(opts);
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

function sameLine(a: Bus, b: Bus): boolean {
  return a.kind === b.kind && a.path === b.path && a.baud === b.baud && a.parity === b.parity && a.host === b.host && a.port === b.port;
}
