/**
 * `lianfang logs [--follow] [--level warn] [--lines N] [--json]`: the gateway's log from its
 * rotating files in the data directory (gateway/log-files.ts), pretty-printed by pino-pretty, or
 * the JSON lines as written (`--json`). `--follow` goes on printing what is written, across
 * rotations, until interrupted.
 */
import { type Command, Option } from 'commander';
import PinoPretty from 'pino-pretty';
import { lastLogLines, logDir, readLogSince, type LogPosition } from '../../log-files.js';
import { lfError } from '../../errors.js';
import { dataOption, int, jsonOption } from '../common.js';
import { colourWanted } from '../output.js';
import { tr } from '../../i18n.js';

/** pino's level numbers. */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type LevelName = keyof typeof LEVELS;

/** How often `--follow` looks for new lines: quick enough for a person watching. */
const FOLLOW_POLL_MS = 250;

/** Whether a log line is at `min` or above; a line that is not pino's JSON is kept only when no level is asked for. */
function levelFilter(min: number | null): (line: string) => boolean {
  if (min === null) return () => true;
  return (line) => {
    try {
      const level = (JSON.parse(line) as { level?: unknown }).level;
      return typeof level === 'number' && level >= min;
    } catch {
      return false;
    }
  };
}

function printer(json: boolean): (line: string) => void {
  if (json) return (line) => process.stdout.write(line + '\n');
  const pretty = PinoPretty.prettyFactory({ colorize: colourWanted(), translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname,name' });
  return (line) => {
    let out: string;
    try {
      out = pretty(line);
    } catch {
      out = line + '\n';
    }
    process.stdout.write(out.endsWith('\n') ? out : out + '\n');
  };
}

function follow(dataDir: string, from: LogPosition, keep: (line: string) => boolean, print: (line: string) => void): Promise<never> {
  let pos = from;
  // Runs until the process is interrupted (Ctrl-C): following has no natural end, only a failure.
  return new Promise<never>((_, reject) => {
    const timer = setInterval(() => {
      try {
        const next = readLogSince(dataDir, pos);
        pos = next.pos;
        for (const line of next.lines) if (keep(line)) print(line);
      } catch (err) {
        clearInterval(timer);
        reject(err);
      }
    }, FOLLOW_POLL_MS);
  });
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description(tr("show the gateway's log (its rotating files in the data directory), pretty-printed", '显示网关日志（数据目录中的滚动日志文件），格式化输出'))
    .addOption(dataOption())
    .option('-f, --follow', tr('keep printing new lines as the gateway writes them, across file rotations (Ctrl-C ends)', '持续输出网关新写入的日志行，跨越文件滚动（Ctrl-C 结束）'))
    .addOption(new Option('--level <level>', tr('only lines at this level or above', '只显示此级别及以上的日志')).choices(Object.keys(LEVELS)))
    .option('--lines <n>', tr('how many of the latest lines to show first', '先显示最近的多少行'), int('--lines', 0, 1_000_000), 100)
    .addOption(jsonOption().default(false))
    .addHelpText('after', '\nExample:\n  $ lianfang logs --level warn --lines 50\n  $ lianfang logs --follow --data /var/lib/lianfang')
    .action(async (o: { data: string; follow?: boolean; level?: LevelName; lines: number; json: boolean }) => {
      const keep = levelFilter(o.level ? LEVELS[o.level] : null);
      const last = lastLogLines(o.data, o.lines, keep);
      if (!last) throw lfError('LF_ERR_NO_LOG', logDir(o.data));
      const print = printer(o.json);
      for (const line of last.lines) print(line);
      if (o.follow) await follow(o.data, last.end, keep, print);
    });
}
