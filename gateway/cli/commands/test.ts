/** `lianfang test`. */
import { tr } from '../../i18n.js';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type Db } from '../../store/db.js';
import { getShop } from '../../registry/registry.js';
import { lfError } from '../../errors.js';
import { printJson, printTable } from '../output.js';
import { getDevice } from '../../registry/registry.js';
import { testStatus, type TestScope } from '../../alarm/test-mode.js';
import { reportRows, runWalk, startTestVia, stopTestVia, walkExitCode, WALK_EXIT } from '../test-walk.js';
import { cliActor, dataOption, gatewayNote, jsonOption, list, withDb } from '../common.js';

export function registerTest(program: Command): void {
  const testCmd = program.command('test').description('test mode: what a shop or a device raises reaches only the audit trail and the installer');
  /** --shop or --device, exactly one, registered. */
  const testTarget = (db: Db, o: { shop?: string; device?: string }): { scope: TestScope; targetId: string } => {
    if (!o.shop === !o.device) throw lfError('LF_ERR_INVALID_ARGUMENT', '--shop/--device', 'give exactly one of --shop S01 or --device ID');
    if (o.shop && !getShop(db, o.shop)) throw lfError('LF_ERR_NOT_FOUND', 'shop', o.shop);
    if (o.device && !getDevice(db, o.device)) throw lfError('LF_ERR_NOT_FOUND', 'device', o.device);
    return o.shop ? { scope: 'shop', targetId: o.shop } : { scope: 'device', targetId: o.device! };
  };
  const duration = (name: string, max: number) => (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name}: a whole number from 1 to ${max}`);
    return n;
  };
  /** --minutes (default 30) or --seconds, not both. */
  const testDurationMs = (o: { minutes?: number; seconds?: number }): number => {
    if (o.minutes !== undefined && o.seconds !== undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--minutes/--seconds', 'give one of them');
    return o.seconds !== undefined ? o.seconds * 1000 : (o.minutes ?? 30) * 60_000;
  };
  testCmd
    .command('start')
    .description('put a shop or a device in test mode for a while (a running one is replaced)')
    .option('--shop <shopId>', 'the shop')
    .option('--device <deviceId>', 'the device')
    .option('--minutes <n>', 'how long, 1 to 1440 (default 30)', duration('--minutes', 1440))
    .option('--seconds <n>', 'how long in seconds instead, 1 to 86400', duration('--seconds', 86400))
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang test start --shop S01 --minutes 30')
    .action(async (o: { shop?: string; device?: string; minutes?: number; seconds?: number; data: string; json?: boolean }) => {
      const { scope, targetId } = withDb(o.data, (db) => testTarget(db, o));
      const durationMs = testDurationMs(o);
      const actor = cliActor();
      const { row, viaGateway } = await startTestVia(o.data, scope, targetId, durationMs, actor);
      if (o.json) printJson({ ...row, until: new Date(row.untilMs).toISOString(), gatewayRunning: viaGateway });
      else {
        const until = new Date(row.untilMs).toISOString();
        process.stdout.write(tr(`${scope} ${targetId}: in test mode until ${until}; its alarms reach no neighbour and no console\n`, `${scope} ${targetId}：测试模式至 ${until}；其报警不发给邻居和接警台\n`));
      }
      gatewayNote(!!viaGateway);
    });
  testCmd
    .command('stop')
    .description('end the test mode of a shop or a device: its next 9# raises a real alarm')
    .option('--shop <shopId>', 'the shop')
    .option('--device <deviceId>', 'the device')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang test stop --shop S01')
    .action(async (o: { shop?: string; device?: string; data: string; json?: boolean }) => {
      const { scope, targetId } = withDb(o.data, (db) => testTarget(db, o));
      const actor = cliActor();
      const { stopped, viaGateway } = await stopTestVia(o.data, scope, targetId, actor);
      if (o.json) printJson({ scope, targetId, stopped, gatewayRunning: viaGateway });
      else process.stdout.write(stopped ? tr(`${scope} ${targetId}: test mode ended; its alarms are real again\n`, `${scope} ${targetId}：测试模式已结束，其报警恢复为真实报警\n`) : tr(`${scope} ${targetId}: was not in test mode\n`, `${scope} ${targetId}：不在测试模式\n`));
    });
  testCmd
    .command('status')
    .description('what is in test mode, until when, and the test alarms raised in it (read from the database)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang test status --json')
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => testStatus(db, Date.now()));
      if (o.json) return printJson(rows);
      printTable(
        rows.map((r) => ({ ...r, alarms: r.alarms.map((a) => `${a.alarmId} (${a.kind} ${a.raisedAt})`) })),
        { scope: tr('SCOPE', '范围'), targetId: tr('ID', '编号'), until: tr('UNTIL', '截止'), startedBy: tr('BY', '操作人'), alarms: tr('TEST ALARMS', '测试报警') },
      );
    });
  testCmd
    .command('walk')
    .description(
      'walk test a shop: puts it in test mode, tells you what to do at each device (press 9#, press the panic button, open the door), ' +
        'shows each device as it passes, records the passes (audit walk-test-passed; `device list` shows LAST TESTED) and prints a report. ' +
        `Exit status 0: every device passed; ${WALK_EXIT.notAllPassed}: the time limit came first; ${WALK_EXIT.interrupted}: Ctrl-C came first`,
    )
    .requiredOption('--shop <shopId>', 'the shop')
    .option('--minutes <n>', 'time limit, 1 to 1440 (default 30, as test mode); the test mode lasts as long', duration('--minutes', 1440))
    .option('--seconds <n>', 'time limit in seconds instead, 1 to 86400', duration('--seconds', 86400))
    .addOption(dataOption())
    .addOption(new Option('--json', 'print the report as one JSON object on stdout (the plan and progress lines go to stderr)'))
    .addHelpText(
      'after',
      `
Example:
  $ lianfang test walk --shop S01 --minutes 20
  walk test of shop S01: 2 device(s) to test, until 2026-12-02T10:20:00.000Z; Ctrl-C ends it early
  巡检测试 商户 S01：2 台设备待测，截止 2026-12-02T10:20:00.000Z；按 Ctrl-C 提前结束
  (the shop is in test mode: its alarms reach no neighbour and no console)
    S01.keypad.a1b2c3  keypad (serial): press 9# / 按 9#
    S01.io-module.d4e5f6  io-module (modbus-tcp): input panic: press the panic button / 按下紧急按钮; input door: open the door / 打开门
  2026-12-02T10:01:07.120Z  PASS 通过  S01.keypad.a1b2c3  keypad 9#, test alarm 0193… (event 812)  [1/2]
  …
Exit status: 0 every device passed, ${WALK_EXIT.notAllPassed} the time limit came first, ${WALK_EXIT.interrupted} interrupted (Ctrl-C); the report and the end of test mode come in every case.`,
    )
    .action(async (o: { shop: string; minutes?: number; seconds?: number; data: string; json?: boolean }) => {
      const limitMs = testDurationMs(o);
      const write = (stream: NodeJS.WriteStream) => (line: string) => stream.write(line + '\n');
      // Ctrl-C, a TERM or a lost terminal (HUP) ends the walk early: the report is still printed and
      // the test mode ended. Kept for the whole walk, so a second Ctrl-C does not kill it before the
      // test mode is ended (left running, the shop's next real 9# would be a test alarm).
      const interrupt = new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => resolve());
      });
      const report = await runWalk({ data: o.data, shopId: o.shop, limitMs, actor: cliActor(), progress: write(o.json ? process.stderr : process.stdout), warn: write(process.stderr), interrupt });
      if (o.json) printJson(report);
      else {
        process.stdout.write(tr(`\nreport: shop ${report.shopId}, ${report.passed} of ${report.total} device(s) passed (${report.ended})\n`, `\n报告：商户 ${report.shopId}，${report.total} 台设备中 ${report.passed} 台通过（${report.ended}）\n`));
        printTable(reportRows(report), { deviceId: 'DEVICE 设备', type: 'TYPE 类型', result: 'RESULT 结果', at: 'AT 时间', by: 'BY / TO DO 事件/待测' });
        process.stdout.write(
          report.testMode.endedByWalk
            ? tr("test mode ended: the shop's alarms are real again\n", '测试模式已结束：该商户的报警恢复为真实报警\n')
            : tr(`the shop stays in test mode until ${report.testMode.until}\n`, `该商户保持测试模式至 ${report.testMode.until}\n`),
        );
      }
      process.exitCode = walkExitCode(report);
    });
}
