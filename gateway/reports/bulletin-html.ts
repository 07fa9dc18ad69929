/**
 * The daily bulletin as a printable page (`GET /api/bulletin?format=html`): the report station
 * leaders expect on paper, in Chinese with English beside it, A4 portrait, nothing loaded from
 * anywhere (its style is inline; the page is served with a CSP that allows nothing else). Every
 * text that comes from the database (a scope's name, a grid, a sector) is escaped: a grid called
 * `<script>` prints as those characters.
 */
import type { Bulletin, BulletinCounts } from '../console/contract-reports.js';
import { localTime } from './console-stats.js';
import { escapeMarkup as escapeHtml } from '../escape.js';


/** The policy the page is served with: its own inline style, nothing else (no script, no image, no request). */
export const BULLETIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

const COLS: { key: keyof BulletinCounts; zh: string; en: string }[] = [
  { key: 'received', zh: '接警', en: 'Received' },
  { key: 'dispatched', zh: '派警', en: 'Dispatched' },
  { key: 'real', zh: '真实警情', en: 'Real' },
  { key: 'false', zh: '误报', en: 'False' },
  { key: 'malicious', zh: '恶意', en: 'Malicious' },
  { key: 'open', zh: '未结', en: 'Open' },
];

const th = (zh: string, en: string) => `<th>${escapeHtml(zh)}<br><span class="en">${escapeHtml(en)}</span></th>`;
const td = (v: string | number) => `<td>${escapeHtml(String(v))}</td>`;

export function bulletinHtml(b: Bulletin): string {
  const t = b.totals;
  const label = (v: string | null) => v ?? '—';
  const summary: [string, string, number][] = [
    ['接警总数', 'Alarms received', t.received],
    ['派警', 'Dispatched', t.dispatched],
    ['真实警情', 'Real incidents', t.real],
    ['误报', 'False alarms', t.false],
    ['恶意报警', 'Malicious', t.malicious],
    ['未结案', 'Not closed yet', t.open],
    ['测试报警（不计入）', 'Test alarms (not counted)', t.test],
    ['新增故障', 'Faults opened', t.faultsOpened],
    ['已修复故障', 'Faults fixed', t.faultsFixed],
    ['日终未修复故障', 'Faults open at the end of the day', t.faultsOpen],
  ];
  const rows = b.byGrid.map((g) => `<tr>${td(label(g.grid))}${td(label(g.sector))}${COLS.map((c) => td(g[c.key])).join('')}</tr>`).join('\n');
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>${escapeHtml(`${b.scope.name} 警情日报 Daily bulletin ${b.day}`)}</title>
<style>
  @page { size: A4 portrait; margin: 15mm; }
  body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif; color: #000; background: #fff; margin: 0 auto; max-width: 180mm; }
  h1 { font-size: 20pt; margin: 0 0 2mm; }
  .en { font-size: 0.8em; color: #444; font-weight: normal; }
  .meta { margin: 0 0 6mm; }
  table { border-collapse: collapse; width: 100%; margin: 0 0 6mm; }
  th, td { border: 1px solid #000; padding: 1.5mm 2mm; text-align: left; }
  td.n, .grid td:nth-child(n+3) { text-align: right; }
  footer { font-size: 9pt; color: #444; }
</style>
</head>
<body>
<h1>${escapeHtml(b.scope.name)} 警情日报 <span class="en">Daily bulletin</span></h1>
<p class="meta">${escapeHtml(b.day)}（${escapeHtml(b.timeZone)}） · ${escapeHtml(localTime(b.timeZone, Date.parse(b.start)))} – ${escapeHtml(localTime(b.timeZone, Date.parse(b.end)))}</p>
<table class="totals">
<tbody>
${summary.map(([zh, en, n]) => `<tr><th>${escapeHtml(zh)} <span class="en">${escapeHtml(en)}</span></th><td class="n">${escapeHtml(String(n))}</td></tr>`).join('\n')}
</tbody>
</table>
<h2>按网格、片区 <span class="en">By grid and sector</span></h2>
<table class="grid">
<thead><tr>${th('网格', 'Grid')}${th('片区', 'Sector')}${COLS.map((c) => th(c.zh, c.en)).join('')}</tr></thead>
<tbody>
${rows || `<tr><td colspan="${COLS.length + 2}">当日无报警 <span class="en">No alarms on the day</span></td></tr>`}
</tbody>
</table>
<footer>生成时间 Made at ${escapeHtml(localTime(b.timeZone, Date.parse(b.at)))} (${escapeHtml(b.timeZone)}) · ${escapeHtml(b.scope.id)}</footer>
</body>
</html>
`;
}
