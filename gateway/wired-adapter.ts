/**
 * The gateway side of the wired bridges (devices/): the bridges know ports and the devices on them
 * (devices/bridge.ts), and this file maps what the gateway holds onto those narrow types: the
 * registry's buses and devices (MAC keys decrypted here), the supervisor as the link watch, the one
 * ingest by device id, the stored boot counters of the gateway's own frames and of the events
 * made for Modbus modules, and each module's door levels as its stored door events left them.
 */
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from './logger.js';
import { systemClock, type Clock } from './clock.js';
import type { Counters, Latencies } from './metrics.js';
import type { Device } from './registry/registry.js';
import type { RegistryCache } from './registry/registry-cache.js';
import { DEFAULT_BAUD, describeBus, type Bus } from './registry/buses.js';
import { decryptSecret } from './secrets.js';
import { nextBridgeBoot, type DeviceIngest } from './ingest/device-ingest.js';
import type { Supervisor } from './supervision.js';
import type { PortFaults } from './health/port-watch.js';
import { getMeta, setMeta, type Db } from './store/db.js';
import { latestDoorEvents } from './store/door-events.js';
import { U32_MAX } from '../firmware-contracts/mqtt/payloads.js';
import type { BusPort, ScanHit, ScanOptions, WiredDevice } from '../devices/bridge.js';
import type { WiredBus, WiredContext } from '../devices/wired.js';

/** Meta keys of the stored boot counters (nextStoredBoot). */
export const SERIAL_COMMAND_BOOT = 'serial_command_boot';
export const MODBUS_MODULE_BOOT = 'modbus_module_boot';

export interface WiredAdapterDeps {
  db: Db;
  registry: RegistryCache;
  gatewayKey: Buffer;
  log: Logger;
  clock: Clock;
  counters: Counters;
  latencies: Latencies;
  config: Readonly<Config>;
  supervisor: Supervisor;
  /** Each bus's port as a port-failed fault of the gateway. */
  ports: PortFaults;
  ingest: DeviceIngest;
  /** A shop's wired device has the alert. */
  delivered(shopId: string, alarmId: string, rev: number, deviceId: string): void;
}

/** What devices/wired.ts and its drivers get from the gateway. */
export function wiredContext(deps: WiredAdapterDeps): WiredContext {
  const { db, registry, gatewayKey, clock } = deps;
  // The registry record behind each device record given to a bridge (the last one given, as the
  // bridge holds it until the next reconcile): the ingest takes the registry's Device.
  const given = new Map<string, Device>();
  return {
    log: deps.log,
    clock,
    counters: deps.counters,
    latencies: deps.latencies,
    config: deps.config,
    link: deps.supervisor,
    portWatch: (busId, where) => deps.ports.watch(busId, where),
    busReleased: (busId) => deps.ports.released(busId),
    ingest: (deviceId, event, via) => {
      const device = given.get(deviceId);
      return device ? deps.ingest(device, event, via) : Promise.reject(new Error(`no wired device ${deviceId}`));
    },
    nextCommandBoot: () => nextStoredBoot(db, SERIAL_COMMAND_BOOT, clock.now()),
    nextModuleBoot: (mark) => nextStoredBoot(db, MODBUS_MODULE_BOOT, clock.now(), mark),
    delivered: deps.delivered,
    buses: () => {
      const byBus = new Map<string, WiredDevice[]>();
      for (const d of registry.devices.values()) {
        if (!d.bus || d.revokedAt || d.transport === 'mqtt') continue;
        given.set(d.id, d);
        const list = byBus.get(d.bus) ?? [];
        list.push(wiredDevice(d, gatewayKey, db));
        byBus.set(d.bus, list);
      }
      const buses: WiredBus[] = [];
      for (const [busId, devices] of byBus) {
        const bus = registry.buses.get(busId);
        if (bus) buses.push({ id: busId, port: busPort(bus), where: describeBus(bus), devices });
      }
      return buses;
    },
  };
}

/**
 * A registry device as its bus sees it: its MAC key decrypted, its counter mark read live, its door
 * levels read from `db` when the bridge asks (once, as it starts polling the module).
 */
export function wiredDevice(d: Device, gatewayKey: Buffer, db: Db): WiredDevice {
  let macKey: Buffer | null = null;
  let macKeyMissing: string | undefined;
  if (!d.macKeyEnc) macKeyMissing = 'serial keypad without a MAC key: not polled';
  else {
    try {
      macKey = decryptSecret(gatewayKey, d.macKeyEnc);
    } catch {
      // A database restored without its gateway.key: the keypad must be issued a new key.
      macKeyMissing = `the MAC key does not decrypt under this gateway key: keypad not polled (issue a new one: lianfang device rotate ${d.id})`;
    }
  }
  return {
    id: d.id,
    shopId: d.shopId,
    type: d.type,
    address: d.busAddress!,
    model: d.model,
    macKey,
    ...(macKeyMissing ? { macKeyMissing } : {}),
    // The ingest moves the registry record's mark (in memory with the commit): read it when asked.
    mark: () => ({ boot: d.lastBoot, seq: d.lastSeq }),
    doorLevels: () => storedDoorLevels(db, d.id),
  };
}

/** Each door input's level by its latest stored door event (a Modbus module's events name their input). */
export function storedDoorLevels(db: Db, deviceId: string): Record<string, boolean> {
  const levels: Record<string, boolean> = {};
  for (const [input, door] of latestDoorEvents(db, deviceId)) if (input !== undefined) levels[input] = door.open;
  return levels;
}

/** A registered bus as a port, its defaults filled in (keypads at 9600 baud, Modbus RTU at 19200, no parity). */
export function busPort(bus: Bus): BusPort {
  if (bus.kind === 'modbus-tcp') return { kind: 'modbus-tcp', host: bus.host ?? '', port: bus.port ?? 0 };
  return { kind: bus.kind, path: bus.path ?? '', baud: bus.baud ?? DEFAULT_BAUD[bus.kind], parity: bus.parity ?? 'none' };
}

/**
 * A new `boot` from the counter stored under meta `key`, stored before it is used: above every one
 * it gave before and above `mark` (a device's stored boot), and never taken from the wall clock
 * again once one is stored, so neither a clock set back across a restart (an edge box without a
 * battery-backed clock, before NTP) nor a restart within the same second reuses a boot or makes
 * one go back. The first is seconds since the epoch (nextBridgeBoot: above the marks of versions
 * that took every boot from the clock). A mark beyond u32 (an older version used milliseconds) is
 * left behind: the ingest takes the lower boot as a new sequence.
 * Serves the serial command counter (one boot per start of a serial bus) and the boot of the
 * events the Modbus bridge makes (one per module polled).
 */
export function nextStoredBoot(db: Db, key: string, nowMs: number, mark: number | null = null): number {
  const stored = Number(getMeta(db, key));
  const usableMark = mark !== null && mark < U32_MAX ? mark : null;
  const boot = Number.isInteger(stored) && stored > 0 ? Math.max(stored, usableMark ?? 0) + 1 : nextBridgeBoot(usableMark, nowMs);
  setMeta(db, key, String(boot));
  return boot;
}

/** `lianfang bus scan` on a port no running gateway holds (devices/scan.ts), on the system clock. */
export async function scanFreeBus(bus: Bus, opts: ScanOptions, known: Map<number, string>): Promise<ScanHit[]> {
  const { scanBusDirect } = await import('../devices/scan.js');
  return scanBusDirect(busPort(bus), opts, known, { clock: systemClock, log: createLogger(process.env.LF_LOG_LEVEL ?? 'warn') });
}
