/**
 * `lianfang export shops|devices [FILE]`: the same CSV format `import` reads (devices without
 * secrets), so export → edit → import is a round trip: re-importing an unedited export changes
 * nothing.
 */
import { type Command, Option } from 'commander';
import { note } from '../output.js';
import { dataOption, withDb } from '../common.js';
import { tr } from '../../i18n.js';
import { ENCODINGS, toCsv, writeCsvOut, type Encoding } from '../bulk/csv.js';
import { exportShops } from '../bulk/shops.js';
import { exportDevices } from '../bulk/devices.js';
import type { Db } from '../../store/db.js';

const encodingOut = () =>
  new Option('--encoding <encoding>', tr('utf8 (the default; a file gets a BOM so Excel reads its Chinese) or gbk', 'utf8（默认；写入文件时带 BOM，Excel 可正确显示中文）或 gbk')).choices([...ENCODINGS]).default('utf8');

function exportCommand(what: (db: Db) => { columns: string[]; rows: string[][] }, file: string | undefined, o: { data: string; encoding: Encoding }): void {
  const { columns, rows } = withDb(o.data, what);
  writeCsvOut(toCsv(columns, rows), file, o.encoding);
  if (file) note(tr(`${rows.length} row(s) written to ${file}`, `已写入 ${rows.length} 行到 ${file}`));
}

export function registerExport(program: Command): void {
  const cmd = program.command('export').description(tr('write shops or devices as CSV, in the format `import` reads (devices without secrets)', '以 `import` 读取的 CSV 格式导出店铺或设备（设备不含密钥）'));
  cmd
    .command('shops [file]')
    .description(tr('every shop in service, one row each (stdout without FILE)', '每个在用店铺一行（不给 FILE 时输出到标准输出）'))
    .addOption(encodingOut())
    .addOption(dataOption())
    .addHelpText('after', tr('\nExample:\n  $ lianfang export shops street.csv\n  $ lianfang import shops street.csv   # after editing it: only what changed is updated', '\nExample（示例）:\n  $ lianfang export shops street.csv\n  $ lianfang import shops street.csv   # 编辑后导入：只更新改动的部分'))
    .action((file: string | undefined, o: { data: string; encoding: Encoding }) => exportCommand(exportShops, file, o));
  cmd
    .command('devices [file]')
    .description(tr('every device in service with its wiring, one row each, never its secrets (stdout without FILE)', '每个在用设备及其接线一行，不含密钥（不给 FILE 时输出到标准输出）'))
    .addOption(encodingOut())
    .addOption(dataOption())
    .addHelpText('after', tr('\nExample:\n  $ lianfang export devices devices.csv', '\nExample（示例）:\n  $ lianfang export devices devices.csv'))
    .action((file: string | undefined, o: { data: string; encoding: Encoding }) => exportCommand(exportDevices, file, o));
}
