/** `lianfang report`. */
import { tr } from '../../i18n.js';
import type { Command } from 'commander';
import { loadConfig } from '../../../config/load.js';
import { note, printJson, printTable } from '../output.js';
import { dataOption, jsonOption } from '../common.js';

export function registerReport(program: Command): void {
  const report = program.command('report').description('reports read from the database (read-only; a running gateway is not disturbed)');
  report
    .command('false-alarms')
    .description('per shop: alarms, closed real / false / malicious, the false-alarm rate (false over real + false; test alarms left out), flagged for a visit above reports.falseAlarmRatePercent')
    .option('--since <when>', 'alarms raised since: a duration back from now (7d, 30d, 12h) or an ISO date (2026-11-01)', '30d')
    .option('--station <id>', 'only the shops of this station or compound')
    .option('--config <file>', 'JSON configuration file, for reports.falseAlarmRatePercent and reports.falseAlarmMinDecided (LF_* variables override it)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang report false-alarms --since 30d\n  $ LF_REPORTS_FALSE_ALARM_RATE_PERCENT=40 lianfang report false-alarms --since 2026-11-01 --json')
    .action(async (o: { since: string; station?: string; config?: string; data: string; json?: boolean }) => {
      const { parseSince, falseAlarmReport, openDatabaseForReport } = await import('../../reports/false-alarms.js');
      const since = parseSince(o.since, new Date());
      const { reports } = loadConfig({ file: o.config, overrides: { dataDir: o.data } });
      const db = openDatabaseForReport(o.data);
      let rows;
      try {
        rows = falseAlarmReport(db, { since, ratePercent: reports.falseAlarmRatePercent, minDecided: reports.falseAlarmMinDecided, ...(o.station ? { stationId: o.station } : {}) });
      } finally {
        db.close();
      }
      if (o.json) {
        printJson({ since: since.toISOString(), ratePercent: reports.falseAlarmRatePercent, minDecided: reports.falseAlarmMinDecided, shops: rows });
        return;
      }
      printTable(
        rows.map((r) => ({ ...r, rate: r.falseAlarmRate === null ? '-' : `${Math.round(r.falseAlarmRate * 100)}%`, flag: r.flagged ? 'VISIT 走访' : '' })),
        {
          shopId: 'SHOP 商户',
          name: 'NAME 名称',
          alarms: 'ALARMS 报警',
          real: 'REAL 真警',
          false: 'FALSE 误报',
          malicious: 'MALICIOUS 恶意',
          open: 'OPEN 未结',
          rate: 'FALSE RATE 误报率',
          flag: 'FLAG 标记',
        },
      );
      const from = since.toISOString();
      const rate = reports.falseAlarmRatePercent;
      const min = reports.falseAlarmMinDecided;
      note(
        tr(
          `alarms raised since ${from}, test alarms left out; flagged: false-alarm rate above ${rate}% with at least ${min} alarms closed real or false`,
          `自 ${from} 起的报警，不含测试报警；标记：误报率高于 ${rate}%，且至少 ${min} 起报警已按真实或误报结案`,
        ),
      );
    });
}
