/**
 * The street as `lianfang neighbours` draws it: every shop placed by an equirectangular projection
 * of its coordinates (metres east and north of the street's south-west corner: over a street the
 * projection's error is far below a GPS fix's), marked by what it is to the origin (its rings,
 * pinned, excluded). Two renderings of the same map: an SVG file for a browser, and a small
 * character sketch for the terminal.
 */
import type { Shop } from '../registry/registry.js';
import type { NeighbourRanking } from '../registry/neighbour-rules.js';
import { escapeMarkup as escapeXml } from '../escape.js';

export type MapKind = 'origin' | 'ring1' | 'ring2' | 'ring3' | 'other' | 'excluded' | 'retired';

export interface MapShop {
  id: string;
  /** Its door plate, else its id: what a person finds on the street. */
  label: string;
  name: string;
  /** Metres east and north of the map's south-west corner. */
  x: number;
  y: number;
  kind: MapKind;
  pinned: boolean;
  distanceM: number | null;
}

export interface StreetMap {
  shops: MapShop[];
  /** Extent in metres (at least 1, so a map of one shop still scales). */
  widthM: number;
  heightM: number;
  /** Shops without coordinates: not on the map. */
  unplaced: string[];
}

const M_PER_DEG = 111_320;

/** What each shop is to the origin, in `rings` rings. */
function kindOf(shop: Shop, origin: Shop, ring: Map<string, number>, excluded: Set<string>, rings: number): MapKind {
  if (shop.id === origin.id) return 'origin';
  if (shop.retiredAt) return 'retired';
  if (excluded.has(shop.id)) return 'excluded';
  const r = ring.get(shop.id);
  if (r === undefined || r > rings) return 'other';
  return (['ring1', 'ring2', 'ring3'] as const)[Math.min(r, 3) - 1];
}

export function streetMap(origin: Shop, shops: readonly Shop[], ranking: NeighbourRanking, rings: number): StreetMap {
  const ring = new Map(ranking.ranked.map((n) => [n.id, n.ring]));
  const pinned = new Set(ranking.ranked.filter((n) => n.pinned).map((n) => n.id));
  const distance = new Map([...ranking.ranked, ...ranking.excluded].map((n) => [n.id, n.distanceM]));
  const excluded = new Set(ranking.excluded.map((n) => n.id));
  const placed = shops.filter((s) => s.lat !== null && s.lon !== null);
  const lat0 = Math.min(...placed.map((s) => s.lat!));
  const lon0 = Math.min(...placed.map((s) => s.lon!));
  const midLat = placed.length ? (lat0 + Math.max(...placed.map((s) => s.lat!))) / 2 : 0;
  const mPerDegLon = M_PER_DEG * Math.cos((midLat * Math.PI) / 180);
  const mapped = placed.map((s) => ({
    id: s.id,
    label: s.doorPlate ?? s.id,
    name: s.name,
    x: (s.lon! - lon0) * mPerDegLon,
    y: (s.lat! - lat0) * M_PER_DEG,
    kind: kindOf(s, origin, ring, excluded, rings),
    pinned: pinned.has(s.id) && (ring.get(s.id) ?? Infinity) <= rings,
    distanceM: distance.get(s.id) ?? null,
  }));
  return {
    shops: mapped,
    widthM: Math.max(1, ...mapped.map((s) => s.x)),
    heightM: Math.max(1, ...mapped.map((s) => s.y)),
    unplaced: shops.filter((s) => s.lat === null || s.lon === null).map((s) => s.id),
  };
}

/** Colours by kind: the rings hot to cool, the rest grey. */
const COLOURS: Record<MapKind, string> = {
  origin: '#111111',
  ring1: '#d62728',
  ring2: '#ff7f0e',
  ring3: '#1f77b4',
  other: '#b0b0b0',
  excluded: '#6b6b6b',
  retired: '#dddddd',
};

/** The legend, in both languages whatever the locale: the file is shared with others. */
const LEGEND: { kind: MapKind | 'pinned'; text: string }[] = [
  { kind: 'origin', text: 'Alarm shop 报警店铺' },
  { kind: 'ring1', text: 'Ring 1 第一圈' },
  { kind: 'ring2', text: 'Ring 2 第二圈' },
  { kind: 'ring3', text: 'Ring 3 第三圈' },
  { kind: 'pinned', text: 'Pinned (--always) 固定邻居' },
  { kind: 'excluded', text: 'Excluded (--never) 排除' },
  { kind: 'other', text: 'Other shop 其他店铺' },
  { kind: 'retired', text: 'Retired 已撤销' },
];


/** A round length for a scale bar of about `aboutM` metres: 1, 2 or 5 × 10^k. */
export function niceLength(aboutM: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(aboutM, 1e-3)));
  return [5, 2, 1].map((m) => m * p).find((l) => l <= aboutM) ?? p;
}

const fmt = (n: number) => String(Math.round(n * 10) / 10);

/** One shop: its dot, its pin and exclusion marks, its label, and a tooltip. */
function svgShop(s: MapShop, px: (x: number) => number, py: (y: number) => number, rings: number): string {
  const cx = fmt(px(s.x));
  const cy = fmt(py(s.y));
  const r = s.kind === 'origin' ? 9 : 6;
  const ring = s.kind.startsWith('ring') ? `ring ${s.kind.slice(4)}` : s.kind;
  const tip = `${s.id} ${s.name}${s.distanceM !== null && s.kind !== 'origin' ? ` — ${fmt(s.distanceM)} m` : ''} (${ring}${s.pinned ? ', pinned' : ''}; rings 1–${rings})`;
  const parts = [`<g class="shop ${s.kind}${s.pinned ? ' pinned' : ''}" data-shop="${escapeXml(s.id)}">`, `<title>${escapeXml(tip)}</title>`];
  if (s.kind === 'origin') parts.push(`<circle class="halo" cx="${cx}" cy="${cy}" r="15" fill="#ffd700" opacity="0.6"/>`);
  if (s.pinned) parts.push(`<circle class="pin-mark" cx="${cx}" cy="${cy}" r="11" fill="none" stroke="${COLOURS.ring1}" stroke-width="2" stroke-dasharray="3 2"/>`);
  parts.push(`<circle class="dot" cx="${cx}" cy="${cy}" r="${r}" fill="${COLOURS[s.kind]}" stroke="#ffffff" stroke-width="1"/>`);
  if (s.kind === 'excluded') {
    const [a, b, c, d] = [px(s.x) - 8, py(s.y) - 8, px(s.x) + 8, py(s.y) + 8].map(fmt);
    parts.push(`<path class="excluded-mark" d="M${a} ${b}L${c} ${d}M${a} ${d}L${c} ${b}" stroke="#000000" stroke-width="2"/>`);
  }
  const weight = s.kind === 'origin' ? ' font-weight="bold"' : '';
  parts.push(`<text x="${cx}" y="${fmt(py(s.y) - r - 5)}" text-anchor="middle"${weight}>${escapeXml(s.label + (s.pinned ? ' *' : ''))}</text>`, '</g>');
  return parts.join('');
}

/**
 * The usual gap between a shop and its nearest one, in metres: the median over the shops of the
 * nearest among the few next to it in east-west and in north-south order (exact on a street,
 * close enough on a grid, and O(n log n) for a city of them).
 */
export function typicalGapM(shops: readonly MapShop[]): number {
  if (shops.length < 2) return 0;
  const nearest = new Map<MapShop, number>();
  const WINDOW = 8;
  for (const axis of ['x', 'y'] as const) {
    const sorted = [...shops].sort((a, b) => a[axis] - b[axis]);
    sorted.forEach((a, i) => {
      for (let j = i + 1; j < Math.min(sorted.length, i + 1 + WINDOW); j++) {
        const b = sorted[j];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        if (d === 0) continue;
        if (d < (nearest.get(a) ?? Infinity)) nearest.set(a, d);
        if (d < (nearest.get(b) ?? Infinity)) nearest.set(b, d);
      }
    });
  }
  const gaps = [...nearest.values()].sort((a, b) => a - b);
  return gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
}

/** Pixels between two neighbouring dots, so that their door plates do not overlap. */
const MIN_GAP_PX = 40;
/** The largest drawing: past it a city's shops crowd again rather than the file growing on. */
const MAX_PX = 16_000;

/**
 * The map as a self-contained SVG document: at least `width` pixels wide, and wider where the
 * shops are so dense that their door plates would overlap (a browser scrolls).
 */
export function renderSvg(map: StreetMap, origin: Shop, rings: number, minWidth = 1000): string {
  const margin = 50;
  const legendRowH = 24;
  const perRow = 4;
  const legendH = Math.ceil(LEGEND.length / perRow) * legendRowH + 20;
  const fit = Math.min((minWidth - 2 * margin) / map.widthM, 700 / map.heightM);
  const gap = typicalGapM(map.shops);
  const readable = gap > 0 ? Math.min(MIN_GAP_PX / gap, (MAX_PX - 2 * margin) / map.widthM, MAX_PX / map.heightM) : fit;
  const scale = Math.max(fit, readable);
  const width = Math.max(minWidth, Math.ceil(map.widthM * scale + 2 * margin));
  const drawH = map.heightM * scale;
  const titleH = 40;
  const scaleBarH = 40;
  const height = Math.ceil(titleH + drawH + 2 * margin + scaleBarH + legendH);
  const px = (x: number) => margin + x * scale;
  const py = (y: number) => titleH + margin + drawH - y * scale;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif" font-size="12">`,
    `<title>${escapeXml(`Neighbours of ${origin.id} ${origin.name} 邻居`)}</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${margin}" y="28" font-size="18" font-weight="bold">${escapeXml(`Neighbours of ${origin.id} ${origin.doorPlate ?? ''} ${origin.name} · ${origin.id} 的邻居（第 1–${rings} 圈）`)}</text>`,
  ];
  // Others first, the origin last: the shops that matter are drawn on top.
  const order: MapKind[] = ['retired', 'other', 'ring3', 'ring2', 'ring1', 'excluded', 'origin'];
  const sorted = [...map.shops].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const s of sorted) out.push(svgShop(s, px, py, rings));
  out.push(...svgScaleBar(margin, titleH + drawH + 2 * margin, scale, width), ...svgLegend(margin, height - legendH + 10, perRow, (minWidth - 2 * margin) / perRow, legendRowH));
  if (map.unplaced.length) {
    out.push(`<text x="${width - margin}" y="${height - 8}" text-anchor="end" fill="#6b6b6b">${escapeXml(`Not on the map (no coordinates) 无坐标未画出: ${map.unplaced.join(', ')}`)}</text>`);
  }
  out.push('</svg>', '');
  return out.join('\n');
}

/** A scale bar of a round number of metres (up to 200 px long) and a north arrow at the right. */
function svgScaleBar(x: number, y: number, scale: number, width: number): string[] {
  const metres = niceLength(200 / scale);
  const len = metres * scale;
  return [
    `<g class="scale-bar" data-metres="${metres}">`,
    `<path d="M${x} ${y}v-6M${x} ${y}h${fmt(len)}M${fmt(x + len)} ${y}v-6" stroke="#000000" stroke-width="2" fill="none"/>`,
    `<text x="${fmt(x + len / 2)}" y="${y + 16}" text-anchor="middle">${metres} m 米</text>`,
    `</g>`,
    `<g class="north"><path d="M${width - 40} ${y}v-24l-5 8M${width - 40} ${y - 24}l5 8" stroke="#000000" stroke-width="2" fill="none"/><text x="${width - 40}" y="${y + 16}" text-anchor="middle">N 北</text></g>`,
  ];
}

function svgLegend(x: number, y: number, perRow: number, colW: number, rowH: number): string[] {
  const out = ['<g class="legend">'];
  LEGEND.forEach((item, i) => {
    const lx = x + (i % perRow) * colW;
    const ly = y + Math.floor(i / perRow) * rowH;
    if (item.kind === 'pinned') out.push(`<circle cx="${lx + 6}" cy="${ly}" r="6" fill="none" stroke="${COLOURS.ring1}" stroke-width="2" stroke-dasharray="3 2"/>`);
    else out.push(`<circle cx="${lx + 6}" cy="${ly}" r="${item.kind === 'origin' ? 7 : 5}" fill="${COLOURS[item.kind]}"/>`);
    if (item.kind === 'excluded') out.push(`<path d="M${lx} ${ly - 6}l12 12M${lx} ${ly + 6}l12 -12" stroke="#000000" stroke-width="2"/>`);
    out.push(`<text x="${lx + 18}" y="${ly + 4}">${escapeXml(item.text)}</text>`);
  });
  out.push('</g>');
  return out;
}

/** Characters and terminal colours of the sketch. */
const SKETCH: Record<MapKind, { ch: string; ansi: string }> = {
  origin: { ch: '@', ansi: '\x1b[1;97;41m' },
  ring1: { ch: '1', ansi: '\x1b[1;31m' },
  ring2: { ch: '2', ansi: '\x1b[33m' },
  ring3: { ch: '3', ansi: '\x1b[36m' },
  other: { ch: '.', ansi: '\x1b[2m' },
  excluded: { ch: 'x', ansi: '\x1b[1;35m' },
  retired: { ch: '-', ansi: '\x1b[2m' },
};
const PRIORITY: MapKind[] = ['origin', 'excluded', 'ring1', 'ring2', 'ring3', 'other', 'retired'];

/**
 * The map in characters, `cols` wide: a terminal cell is about twice as tall as wide, so a row
 * stands for twice a column's metres. Where shops share a cell the one that matters most shows.
 */
export function renderSketch(map: StreetMap, colour: boolean, cols = 64): string[] {
  const mPerCol = map.widthM / (cols - 1);
  const rows = Math.max(1, Math.min(20, Math.round(map.heightM / (2 * Math.max(mPerCol, 1e-9))) + 1));
  const mPerRow = map.heightM / Math.max(1, rows - 1);
  const grid: (MapShop | undefined)[][] = Array.from({ length: rows }, () => Array<MapShop | undefined>(cols));
  const rank = (s: MapShop) => (s.pinned ? -1 : PRIORITY.indexOf(s.kind));
  for (const s of map.shops) {
    const c = Math.round(s.x / Math.max(mPerCol, 1e-9));
    const r = rows - 1 - Math.round(s.y / Math.max(mPerRow, 1e-9));
    const cell = grid[Math.min(rows - 1, Math.max(0, r))];
    const here = cell[Math.min(cols - 1, c)];
    if (!here || rank(s) < rank(here) || (s.kind === 'origin')) cell[Math.min(cols - 1, c)] = s;
  }
  const paint = (s: MapShop) => {
    const ch = s.pinned && s.kind !== 'origin' ? '*' : SKETCH[s.kind].ch;
    return colour ? `${SKETCH[s.kind].ansi}${ch}\x1b[0m` : ch;
  };
  return grid.map((row) => Array.from(row, (s) => (s ? paint(s) : ' ')).join('').trimEnd());
}
