/**
 * Neighbours by great-circle distance (gateway/geo.ts): distances against known values, the
 * ranking rings are cut from (nearest first, ties by id), and the installer's list for a shop
 * without coordinates.
 */
import t from 'tap';
import { distanceM, rankNeighbours, type Located } from '../../gateway/geo.js';
import { streetPosition } from '../../simulators/street.js';

const within = (actual: number, expected: number, fraction: number) => Math.abs(actual - expected) <= Math.abs(expected) * fraction;

t.test('distanceM against known values', async (t) => {
  t.equal(distanceM(23.3586, 116.6832, 23.3586, 116.6832), 0, 'identical points: 0');
  t.equal(distanceM(0, 0, 0, 0), 0);

  const oneDegLat = distanceM(23, 116, 24, 116);
  t.ok(within(oneDegLat, 111_200, 0.005), `1 degree of latitude ≈ 111.2 km (got ${oneDegLat.toFixed(0)} m)`);
  t.ok(within(distanceM(-45, 10, -44, 10), 111_200, 0.005), 'the same in the southern hemisphere');
  t.ok(within(distanceM(0, 0, 0, 1), 111_200, 0.005), '1 degree of longitude at the equator ≈ 111.2 km');
  const at60 = distanceM(60, 10, 60, 11);
  t.ok(within(at60, 55_600, 0.005), `1 degree of longitude at 60° ≈ 55.6 km (got ${at60.toFixed(0)} m)`);

  // Beijing (Tiananmen) to Shanghai (People's Square): about 1,067 km by great circle.
  const bjSh = distanceM(39.9042, 116.4074, 31.2304, 121.4737);
  t.ok(within(bjSh, 1_067_000, 0.01), `Beijing–Shanghai ≈ 1,067 km (got ${(bjSh / 1000).toFixed(0)} km)`);

  // Antipodes: half the circumference, no NaN from rounding past 1 inside asin.
  const anti = distanceM(23.3586, 116.6832, -23.3586, 116.6832 - 180);
  t.ok(within(anti, Math.PI * 6_371_000, 0.005), `antipodes ≈ 20,015 km (got ${(anti / 1000).toFixed(0)} km)`);

  t.equal(distanceM(23.1, 116.2, 23.4, 116.9), distanceM(23.4, 116.9, 23.1, 116.2), 'symmetric');

  // Street scale: doors 8 m apart along the road, 12 m across it (simulators/street.ts).
  const p0 = streetPosition(0);
  const p1 = streetPosition(1);
  const p2 = streetPosition(2);
  t.ok(within(distanceM(p0.lat, p0.lon, p2.lat, p2.lon), 8, 0.01), 'next door along the street ≈ 8 m');
  t.ok(within(distanceM(p0.lat, p0.lon, p1.lat, p1.lon), 12, 0.01), 'across the street ≈ 12 m');
});

function shop(id: string, lat: number | null, lon: number | null, neighbours: string[] = []): Located {
  return { id, lat, lon, neighbours };
}

/** Offsets in metres from a point near Changping Road, as coordinates. */
const BASE = { lat: 23.3586, lon: 116.6832 };
const M_LAT = 1 / 111_195;
const M_LON = 1 / (111_195 * Math.cos((BASE.lat * Math.PI) / 180));
const at = (id: string, northM: number, eastM: number) => shop(id, BASE.lat + northM * M_LAT, BASE.lon + eastM * M_LON);

t.test('rankNeighbours: nearest first, ties by id, origin and unlocated shops excluded', async (t) => {
  const origin = at('S-origin', 0, 0);
  const shops: Located[] = [
    at('S-far', 0, 500),
    origin,
    at('S-z', 0, 20), // z and a are exactly as far east as west: a tie, broken by id
    at('S-a', 0, -20),
    at('S-near', 5, 0),
    shop('S-nowhere', null, null),
    at('S-mid', 0, 100),
    at('S-m', 0, -100), // another tie
  ];
  const byId = (id: string) => shops.find((s) => s.id === id);
  const ranked = rankNeighbours(origin, shops, byId);
  t.same(
    ranked.map((n) => n.id),
    ['S-near', 'S-a', 'S-z', 'S-m', 'S-mid', 'S-far'],
    'ordered by distance, ties by id',
  );
  t.notOk(ranked.some((n) => n.id === origin.id), 'the origin is not its own neighbour');
  t.notOk(ranked.some((n) => n.id === 'S-nowhere'), 'a shop without coordinates is not ranked');
  for (const n of ranked) {
    const s = byId(n.id)!;
    t.equal(n.distanceM, distanceM(origin.lat!, origin.lon!, s.lat!, s.lon!), `${n.id}: distance given`);
  }
  t.ok(within(ranked[0].distanceM!, 5, 0.01), 'nearest is 5 m away');
  t.equal(ranked[1].distanceM, ranked[2].distanceM, 'the tie is an exact tie');

  // The order does not depend on the order the shops are given in.
  const reversed = rankNeighbours(origin, [...shops].reverse(), byId);
  t.same(reversed, ranked, 'input order does not matter');
});

t.test('rankNeighbours on the simulated street: every other shop, by distance', async (t) => {
  const shops = Array.from({ length: 30 }, (_, i) => shop(`DEMO-S${String(i + 1).padStart(3, '0')}`, streetPosition(i).lat, streetPosition(i).lon));
  const origin = shops[15];
  const ranked = rankNeighbours(origin, shops, (id) => shops.find((s) => s.id === id));
  t.equal(ranked.length, 29);
  for (let i = 1; i < ranked.length; i++) {
    const [a, b] = [ranked[i - 1], ranked[i]];
    if (a.distanceM! > b.distanceM! || (a.distanceM === b.distanceM && a.id > b.id)) t.fail(`out of order at ${i}: ${a.id} ${b.id}`);
  }
  // Shop 16 (index 15) is on the far side; next doors along (8 m) come before the one across (12 m).
  t.same(ranked.slice(0, 2).map((n) => n.id).sort(), ['DEMO-S014', 'DEMO-S018'], 'the doors either side, 8 m');
  t.equal(ranked[2].id, 'DEMO-S015', 'then the shop across the road, 12 m');
  t.same(ranked.slice(3, 5).map((n) => n.id).sort(), ['DEMO-S013', 'DEMO-S017'], 'then the diagonals');
});

t.test('a shop without coordinates uses its installer list, in order', async (t) => {
  const shops: Located[] = [
    shop('H1', null, null, ['H4', 'GHOST', 'H1', 'H2', 'H4', 'H3']),
    shop('H2', 23.1, 116.1),
    shop('H3', null, null),
    shop('H4', 23.2, 116.2),
    shop('H5', 23.3, 116.3),
  ];
  const byId = (id: string) => shops.find((s) => s.id === id);
  const ranked = rankNeighbours(shops[0], shops, byId);
  t.same(
    ranked,
    [
      { id: 'H4', distanceM: null },
      { id: 'H2', distanceM: null },
      { id: 'H3', distanceM: null },
    ],
    'the list order kept; unknown ids, itself and repeats skipped; H5 (not listed) left out',
  );
  t.same(rankNeighbours(shop('H0', null, null), shops, byId), [], 'no coordinates and no list: nobody');
});
