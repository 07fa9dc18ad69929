/**
 * The console's CSV export of a scope's alarms (issue 11, "Health and numbers"): what a station
 * opens in Excel. So it is UTF-8 with a BOM (without one Excel reads Chinese as GBK and shows
 * mojibake), CRLF line ends, a header naming each column in Chinese and English, times as the
 * station's wall clock (the zone in the header), and every cell that a spreadsheet would take for a
 * formula (`=`, `+`, `-`, `@`, a tab or a carriage return first: a shop called `=HYPERLINK(…)`) made
 * text with a leading apostrophe, which Excel hides. Quoting of commas, quotes and line breaks is
 * csv-stringify's (told to quote a lone LF too: it quotes only its own record delimiter, CRLF). Test alarms are in it, marked: an export is the record, not a statistic.
 */
import { stringify } from 'csv-stringify/sync';
import type { Db } from '../store/db.js';
import type { Scope } from '../console/contract.js';
import { alarmFacts, localTime, type AlarmFacts, type Period } from './console-stats.js';
import { labelOf, DISPOSITION_TEXT, KIND_TEXT, STATE_TEXT } from './report-text.js';

const BOM = '\uFEFF';

/** A cell Excel, LibreOffice or Sheets would read as a formula: made text. */
export function safeCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/** The columns, in order: the header's words and how each alarm fills it. */
function columns(timeZone: string): { zh: string; en: string; cell: (a: AlarmFacts) => string }[] {
  const at = (t: string | null) => (t ? localTime(timeZone, Date.parse(t)) : '');
  const text = (v: string | null) => v ?? '';
  return [
    { zh: '报警编号', en: 'Alarm id', cell: (a) => a.id },
    { zh: '报警时间', en: `Raised (${timeZone})`, cell: (a) => at(a.raisedAt) },
    { zh: '类型', en: 'Kind', cell: (a) => labelOf(KIND_TEXT, a.duress ? 'duress' : a.kind) },
    { zh: '测试', en: 'Test', cell: (a) => (a.test ? '是 yes' : '否 no') },
    { zh: '状态', en: 'State', cell: (a) => labelOf(STATE_TEXT, a.state) },
    { zh: '处置结果', en: 'Disposition', cell: (a) => labelOf(DISPOSITION_TEXT, a.disposition) },
    { zh: '商户编号', en: 'Shop id', cell: (a) => a.shopId },
    { zh: '商户名称', en: 'Shop name', cell: (a) => text(a.shopName) },
    { zh: '地址', en: 'Address', cell: (a) => text(a.address) },
    { zh: '网格', en: 'Grid', cell: (a) => text(a.grid) },
    { zh: '片区', en: 'Sector', cell: (a) => text(a.sector) },
    { zh: '派出所', en: 'Station', cell: (a) => a.stationId },
    { zh: '小区', en: 'Compound', cell: (a) => text(a.compoundId) },
    { zh: '接警人', en: 'Taken by', cell: (a) => text(a.takenBy) },
    { zh: '确认时间', en: `Acknowledged (${timeZone})`, cell: (a) => at(a.ackAt) },
    { zh: '派警时间', en: `Dispatched (${timeZone})`, cell: (a) => at(a.dispatchedAt) },
    { zh: '出警单位', en: 'Patrol', cell: (a) => text(a.patrol) },
    { zh: '派警备注', en: 'Dispatch note', cell: (a) => text(a.dispatchNote) },
    { zh: '已通知邻居', en: 'Neighbours alerted', cell: (a) => String(a.alerted) },
    { zh: '首个邻居回复', en: `First neighbour reply (${timeZone})`, cell: (a) => at(a.firstReplyAt) },
    { zh: '结案时间', en: `Closed (${timeZone})`, cell: (a) => at(a.closedAt) },
    { zh: '结案备注', en: 'Close note', cell: (a) => text(a.closeNote) },
  ];
}

/** The CSV text (BOM first) of the scope's alarms raised in the period, oldest first. */
export function alarmsCsv(db: Db, scope: Scope, period: Period): string {
  const cols = columns(period.timeZone);
  const rows = alarmFacts(db, scope, period.startMs, period.endMs).map((a) => cols.map((c) => safeCell(c.cell(a))));
  return BOM + stringify([cols.map((c) => `${c.zh} ${c.en}`), ...rows], { record_delimiter: 'windows', quoted_match: /[\r\n]/ });
}

/** The file name the browser saves it as: only ASCII letters, digits and `._-`. */
export function alarmsCsvName(scope: Scope, period: Period): string {
  return `alarms-${scope.id}-${period.from}-${period.to}.csv`.replace(/[^A-Za-z0-9._-]/g, '_');
}
