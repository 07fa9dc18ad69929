/**
 * The street around an alarm, drawn locally (no tiles: stations often have no internet): an
 * equirectangular projection centred on the shop in trouble, scaled to fit about 500 m. The shop is
 * the big red mark, alerted neighbours are coloured by their answer, other open alarms nearby are
 * orange, and the other shops of the street are small grey dots. Names are SVG text nodes.
 */
import type { AlarmDetail } from '../contract.js';
import type { T } from './util.js';

const SIZE = 400;
const RADIUS_M = 500;
const M_PER_DEG = 111_320;

export function StreetMap(props: { detail: AlarmDetail; t: T }) {
  const { shop, neighbours, nearby, street } = props.detail;
  const { t } = props;
  if (shop.lat === null || shop.lon === null) {
    return (
      <div class="map" data-testid="map">
        <svg viewBox={`0 0 ${SIZE} 40`} class="map-svg" role="img">
          <circle cx="20" cy="20" r="8" class="m-origin" data-shop-id={shop.id} data-role="origin" />
          <text x="36" y="25" class="m-label">
            {t('noCoords')}
          </text>
        </svg>
      </div>
    );
  }
  const lat0 = shop.lat;
  const lon0 = shop.lon;
  const cos = Math.cos((lat0 * Math.PI) / 180);
  // Fit the farthest point drawn (at least 25 m, at most the map's radius).
  let far = 25;
  const pts: { lat: number | null; lon: number | null }[] = [...neighbours, ...nearby, ...street];
  for (const p of pts) {
    if (p.lat === null || p.lon === null) continue;
    const dx = (p.lon - lon0) * M_PER_DEG * cos;
    const dy = (p.lat - lat0) * M_PER_DEG;
    far = Math.max(far, Math.min(RADIUS_M, Math.hypot(dx, dy)));
  }
  const scale = (SIZE / 2 - 44) / far;
  const xy = (lat: number, lon: number) => ({
    x: SIZE / 2 + (lon - lon0) * M_PER_DEG * cos * scale,
    y: SIZE / 2 - (lat - lat0) * M_PER_DEG * scale,
  });
  const inView = (p: { x: number; y: number }) => p.x >= 0 && p.x <= SIZE && p.y >= 0 && p.y <= SIZE;
  const alerted = new Set(neighbours.map((n) => n.shopId));
  const nearbyShops = new Set(nearby.map((n) => n.alarm.shopId));
  const step = far <= 50 ? 10 : far <= 150 ? 25 : far <= 300 ? 50 : 100;
  const ringR = Array.from({ length: Math.floor(far / step) }, (_, i) => (i + 1) * step);
  return (
    <div class="map" data-testid="map">
      <svg viewBox={`0 0 ${SIZE} ${SIZE}`} class="map-svg" role="img" aria-label={t('map')}>
        <rect x="0" y="0" width={SIZE} height={SIZE} class="m-bg" />
        {ringR.map((r) => (
          <circle key={r} cx={SIZE / 2} cy={SIZE / 2} r={r * scale} class="m-ring" />
        ))}
        {street
          .filter((s) => !alerted.has(s.id) && !nearbyShops.has(s.id))
          .map((s) => {
            const p = xy(s.lat, s.lon);
            return inView(p) ? <circle key={s.id} cx={p.x} cy={p.y} r="3" class="m-street" data-shop-id={s.id} data-role="street" /> : null;
          })}
        {neighbours.map((n, i) => {
          if (n.lat === null || n.lon === null) return null;
          const p = xy(n.lat, n.lon);
          const reply = n.reply ?? 'none';
          // Shops along a street sit close together: slanted labels, alternately above and below.
          const up = i % 2 === 0;
          const lx = p.x + (up ? 6 : -6);
          const ly = p.y + (up ? -9 : 17);
          return (
            <g key={n.shopId} data-shop-id={n.shopId} data-role="neighbour" data-reply={reply}>
              <circle cx={p.x} cy={p.y} r="7" class={`m-neighbour reply-${reply}`} />
              <text x={lx} y={ly} class="m-label" text-anchor={up ? 'start' : 'end'} transform={`rotate(-35 ${lx} ${ly})`}>
                {n.name}
              </text>
            </g>
          );
        })}
        {nearby.map((n) => {
          if (n.lat === null || n.lon === null) return null;
          const p = xy(n.lat, n.lon);
          return (
            <g key={n.alarm.alarmId} data-shop-id={n.alarm.shopId} data-alarm-id={n.alarm.alarmId} data-role="nearby">
              <rect x={p.x - 7} y={p.y - 7} width="14" height="14" class="m-nearby" />
              <text x={p.x + 10} y={p.y + 4} class="m-label">
                {n.alarm.shopName}
              </text>
            </g>
          );
        })}
        <g data-shop-id={shop.id} data-role="origin">
          <circle cx={SIZE / 2} cy={SIZE / 2} r="12" class="m-origin" />
          <text x={SIZE / 2 + 15} y={SIZE / 2 + 5} class="m-label m-label-origin">
            {shop.name}
          </text>
        </g>
      </svg>
      <div class="map-legend">
        <span class="lg lg-origin">{t('legendOrigin')}</span>
        <span class="lg reply-coming">{t('reply_coming')}</span>
        <span class="lg reply-seen">{t('reply_seen')}</span>
        <span class="lg reply-cannot">{t('reply_cannot')}</span>
        <span class="lg reply-none">{t('reply_none')}</span>
        <span class="lg lg-nearby">{t('legendNearby')}</span>
        <span class="lg lg-street">{t('legendStreet')}</span>
      </div>
    </div>
  );
}
