/**
 * What every command group of the CLI shares: the --data and --json options, argument parsers,
 * the database helper, telling a running gateway, and who the actor is.
 */
import { InvalidArgumentError, Option } from 'commander';
import { withDatabase } from '../store/db.js';
import { adminRequest } from '../admin/channel.js';
import { note } from './output.js';
import { tr } from '../i18n.js';
import { userInfo } from 'node:os';

export const DEFAULT_DATA = process.env.LF_DATA_DIR ?? './data';

export function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

export function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

export const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** The options commander left undefined, dropped (the input schemas allow no undefined fields). */
export const definedOnly = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

export const dataOption = () => new Option('--data <dir>', 'data directory of the gateway').default(DEFAULT_DATA);

export const jsonOption = () => new Option('--json', 'print JSON instead of a table');

export const withDb = withDatabase;

/** Say to the installer whether a running gateway took a change (on stderr, to keep --json clean). */
export function gatewayNote(viaGateway: boolean): void {
  note(
    viaGateway
      ? tr('(the running gateway has taken the change)', '（运行中的网关已生效）')
      : tr('(no gateway is running on this data directory; it will read the change when it starts)', '（此数据目录上没有运行中的网关；网关启动时读取此更改）'),
  );
}

/** Tell a running gateway to reload (or do `req`), and say whether one did. */
export async function notifyGateway(dataDir: string, req: { op: string; [k: string]: unknown } = { op: 'reload' }): Promise<void> {
  gatewayNote((await adminRequest(dataDir, req)) !== null);
}

/** Who runs a command, as the audit trail names it. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}
