/**
 * Statistics, the alarms CSV and the daily bulletin (issue 11, "Health and numbers"), each for one
 * scope the caller may see (`?scope=`, else their first). The figures are gateway/reports/'s pure
 * functions over the database; days are in the scope's time zone.
 */
import { RawReply, requireScope, type Route } from './api.js';
import type { Bulletin, Stats } from './contract-reports.js';
import { bulletinDay, consoleStats, dailyBulletin, requestedPeriod, zoneOf } from '../reports/console-stats.js';
import { alarmsCsv, alarmsCsvName } from '../reports/alarms-csv.js';
import { BULLETIN_CSP, bulletinHtml } from '../reports/bulletin-html.js';
import { lfError } from '../errors.js';

export const REPORT_ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/api/stats',
    summary: 'statistics of a period (?scope=&from=&to=, days in the station\'s zone): alarms per day by kind, false-alarm share by shop, time to acknowledge and to the first neighbour, faults',
    handler: (deps, req): Stats => {
      const scope = requireScope(req);
      const period = requestedPeriod(zoneOf(scope), deps.clock.now(), req.query.get('from'), req.query.get('to'));
      return consoleStats(deps.db, scope, period, { ratePercent: deps.config.reports.falseAlarmRatePercent, minDecided: deps.config.reports.falseAlarmMinDecided });
    },
  },
  {
    method: 'GET',
    path: '/api/alarms.csv',
    summary: 'the alarms of a period as CSV for Excel (?scope=&from=&to=; UTF-8 with BOM)',
    handler: (deps, req) => {
      const scope = requireScope(req);
      const period = requestedPeriod(zoneOf(scope), deps.clock.now(), req.query.get('from'), req.query.get('to'));
      return new RawReply(alarmsCsv(deps.db, scope, period), 'text/csv; charset=utf-8', {
        'content-disposition': `attachment; filename="${alarmsCsvName(scope, period)}"`,
        'cache-control': 'no-store',
      });
    },
  },
  {
    method: 'GET',
    path: '/api/bulletin',
    summary: 'the daily bulletin (?scope=&day=, default yesterday in the station\'s zone; &format=html: the printable page)',
    handler: (deps, req): Bulletin | RawReply => {
      const scope = requireScope(req);
      const tz = zoneOf(scope);
      const now = deps.clock.now();
      const format = req.query.get('format') ?? 'json';
      if (format !== 'json' && format !== 'html') throw lfError('LF_ERR_INVALID_ARGUMENT', 'format', 'json or html');
      const b = dailyBulletin(deps.db, scope, tz, bulletinDay(tz, now, req.query.get('day')), now);
      if (format === 'json') return b;
      return new RawReply(bulletinHtml(b), 'text/html; charset=utf-8', { 'content-security-policy': BULLETIN_CSP, 'cache-control': 'no-store' });
    },
  },
];
