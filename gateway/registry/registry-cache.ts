/**
 * What a running gateway keeps of the registry in memory: rebuilt from the database on start and
 * on reload (the admin channel's `reload` after a CLI change), read on every event.
 */
import type { Db } from '../store/db.js';
import { listDevices, listShops, listStations, listUsers, type Device, type Shop, type Station, type User } from './registry.js';
import { listBuses, type Bus } from './buses.js';
import { listNeighbourRules, rankWithRules, type NeighbourRanking, type NeighbourRule } from './neighbour-rules.js';

/** What a running gateway keeps in memory, rebuilt from the database on start and on reload. */
export class RegistryCache {
  stations = new Map<string, Station>();
  shops = new Map<string, Shop>();
  devices = new Map<string, Device>();
  users = new Map<string, User>();
  buses = new Map<string, Bus>();
  /** Devices of each shop, for delivery by shop. */
  devicesByShop = new Map<string, Device[]>();
  /** The installer's always/never rules (`lianfang neighbours`). */
  neighbourRules: NeighbourRule[] = [];

  constructor(private readonly db: Db) {}

  reload(): void {
    this.stations = new Map(listStations(this.db).map((s) => [s.id, s]));
    this.shops = new Map(listShops(this.db).map((s) => [s.id, s]));
    this.devices = new Map(listDevices(this.db).map((d) => [d.id, d]));
    this.users = new Map(listUsers(this.db).map((u) => [u.name, u]));
    this.buses = new Map(listBuses(this.db).map((b) => [b.id, b]));
    this.neighbourRules = listNeighbourRules(this.db);
    this.devicesByShop = new Map();
    for (const d of this.devices.values()) {
      const list = this.devicesByShop.get(d.shopId) ?? [];
      list.push(d);
      this.devicesByShop.set(d.shopId, list);
    }
  }

  /** A shop's neighbours in rings of `ringSize`, the installer's rules and retired shops applied. */
  neighboursOf(origin: Shop, ringSize: number): NeighbourRanking {
    return rankWithRules(origin, this.shops.values(), this.neighbourRules, ringSize);
  }

  /** The consoles whose scope covers a shop: its station and, when it has one, its compound. */
  consolesFor(shop: Shop): string[] {
    return shop.compoundId ? [shop.stationId, shop.compoundId] : [shop.stationId];
  }
}
