/**
 * Neighbours by great-circle distance (WGS-84 coordinates as GPS gives them, haversine on a sphere:
 * metres of error over a street are irrelevant next to where a shopkeeper stands). Ties by id.
 * A shop with no coordinates uses the neighbour list its installer set.
 */

const EARTH_RADIUS_M = 6_371_008.8;

export function distanceM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

export interface Located {
  id: string;
  lat: number | null;
  lon: number | null;
  /** Installer-set neighbour ids, in order; used when the shop has no coordinates. */
  neighbours: readonly string[];
}

export interface Neighbour {
  id: string;
  /** null when the shop was chosen from the installer's list. */
  distanceM: number | null;
}

/**
 * All candidate neighbours of `origin`, nearest first (ties by id): the ranking rings are cut from.
 * With coordinates, every located shop; without, the installer's list in its order.
 */
export function rankNeighbours(origin: Located, shops: Iterable<Located>, byId: (id: string) => Located | undefined): Neighbour[] {
  if (origin.lat === null || origin.lon === null) {
    const seen = new Set<string>([origin.id]);
    const out: Neighbour[] = [];
    for (const id of origin.neighbours) {
      if (seen.has(id) || !byId(id)) continue;
      seen.add(id);
      out.push({ id, distanceM: null });
    }
    return out;
  }
  const out: Neighbour[] = [];
  for (const s of shops) {
    if (s.id === origin.id || s.lat === null || s.lon === null) continue;
    out.push({ id: s.id, distanceM: distanceM(origin.lat, origin.lon, s.lat, s.lon) });
  }
  out.sort((a, b) => (a.distanceM! - b.distanceM!) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}
