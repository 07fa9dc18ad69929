/**
 * `lianfang import shops|devices FILE.csv`: a street set up from the spreadsheet the street office
 * sent. Every row is checked before anything stays written; one bad row imports nothing, and every
 * bad row is listed (line, column, what is wrong). Credentials issued for new devices go to the
 * file named by --credentials (mode 0600, never overwritten), never to the terminal.
 */
import { type Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { loadOrCreateGatewayKey } from '../../secrets.js';
import { lfError } from '../../errors.js';
import { note, printJson } from '../output.js';
import { dataOption, jsonOption, notifyGateway, withDb } from '../common.js';
import { tr } from '../../i18n.js';
import { openCredentialsFile, type IssuedCredential } from '../credentials-file.js';
import { ENCODINGS, failOnRowErrors, parseCsv, readText, RowErrors, type ColumnSpec, type CsvRecord, type Encoding } from '../bulk/csv.js';
import { progressBar, type Progress } from '../bulk/progress.js';
import { importShops, SHOP_COLUMN_SPEC } from '../bulk/shops.js';
import { DEVICE_COLUMN_SPEC, importDevices } from '../bulk/devices.js';

export interface BulkOptions {
  data: string;
  json?: boolean;
  dryRun?: boolean;
  encoding?: Encoding;
}

export const encodingOption = () =>
  new Option('--encoding <encoding>', tr('the file\'s encoding (default: detected; UTF-8 with or without a BOM, else GBK)', '文件编码（默认自动识别：带或不带 BOM 的 UTF-8，否则为 GBK）')).choices([...ENCODINGS]);
export const dryRunOption = () => new Option('--dry-run', tr('check every row, write nothing', '检查每一行，不写入任何内容'));

/** The options every import takes: --dry-run, --encoding, --data, --json. */
function withBulkOptions(cmd: Command): Command {
  return cmd.addOption(dryRunOption()).addOption(encodingOption()).addOption(dataOption()).addOption(jsonOption());
}

/**
 * Read and check `file`, then apply its records with `apply` (which rolls back on any bad row);
 * bad rows, from the parse or the registry, are listed and end the command with LF_ERR_IMPORT_ROWS.
 */
export function runBulk<T>(file: string, spec: ColumnSpec, o: BulkOptions, label: string, apply: (records: CsvRecord[], errors: RowErrors, progress: Progress) => T): { result: T; encoding: Encoding; rows: number } {
  const { text, encoding } = readText(file, o.encoding);
  const errors = new RowErrors();
  const { records } = parseCsv(text, spec, errors);
  const progress = progressBar(records.length, label);
  let result: T;
  try {
    result = apply(records, errors, progress);
  } finally {
    progress.stop();
  }
  failOnRowErrors(file, errors, !!o.json);
  return { result, encoding, rows: records.length };
}

/** The summary line of an import, and its --json. */
function summarize(o: BulkOptions, what: { en: string; zh: string }, file: string, encoding: Encoding, counts: { created: number; updated: number; unchanged: number }, extra: Record<string, unknown>): void {
  if (o.json) printJson({ file, encoding, dryRun: !!o.dryRun, ...counts, ...extra });
  else {
    process.stdout.write(
      tr(
        `${what.en}: ${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged (${file}, ${encoding})\n`,
        `${what.zh}：新建 ${counts.created}，更新 ${counts.updated}，未变 ${counts.unchanged}（${file}，${encoding}）\n`
      ),
    );
  }
  if (o.dryRun) note(tr('(dry run: nothing was written)', '（试运行：未写入任何内容）'));
}

async function importShopsCommand(file: string, o: BulkOptions): Promise<void> {
  const { result, encoding } = runBulk(file, SHOP_COLUMN_SPEC, o, tr('shops', '店铺'), (records, errors, progress) =>
    withDb(o.data, (db) => importShops(db, records, errors, { dryRun: !!o.dryRun, progress })),
  );
  const counts = { created: result.created.length, updated: result.updated.length, unchanged: result.unchanged.length };
  summarize(o, { en: 'shops', zh: '店铺' }, file, encoding, counts, { createdIds: result.created, updatedFields: Object.fromEntries(result.updated.map((u) => [u.id, u.fields])) });
  if (!o.dryRun && counts.created + counts.updated > 0) await notifyGateway(o.data);
}

/**
 * Write the issued credentials to a new 0600 file (none when nothing was issued); on any failure
 * the file is removed, and the caller's transaction rolls back.
 */
function writeCredentials(path: string, issued: IssuedCredential[]): void {
  if (!issued.length) return;
  const out = openCredentialsFile(path);
  try {
    for (const c of issued) out.write(c);
    out.close();
  } catch (err) {
    out.discard();
    throw err;
  }
}

async function importDevicesCommand(file: string, o: BulkOptions & { credentials?: string }): Promise<void> {
  if (!o.credentials && !o.dryRun) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--credentials', tr('name the new file that receives the credentials of the devices created (they are never printed)', '请指定接收新设备凭据的新文件（凭据从不打印到终端）'));
  }
  // Checked now, to spare a long check of the rows; the file is created only once every row is good.
  if (o.credentials && existsSync(o.credentials)) throw lfError('LF_ERR_INVALID_ARGUMENT', '--credentials', tr(`${o.credentials} exists: name a new file (it is never overwritten)`, `${o.credentials} 已存在：请指定新文件（不会覆盖）`));
  const gatewayKey = loadOrCreateGatewayKey(o.data);
  const { result, encoding } = runBulk(file, DEVICE_COLUMN_SPEC, o, tr('devices', '设备'), (records, errors, progress) =>
    withDb(o.data, (db) => importDevices(db, records, errors, { dryRun: !!o.dryRun, progress, gatewayKey, issue: (issued) => writeCredentials(o.credentials!, issued) })),
  );
  for (const w of result.warnings) note(tr(`warning, line ${w.line}: ${w.message}`, `警告，第 ${w.line} 行：${w.message}`));
  const counts = { created: result.created.length, updated: result.updated.length, unchanged: result.unchanged.length };
  summarize(o, { en: 'devices', zh: '设备' }, file, encoding, counts, {
    createdIds: result.created,
    updatedFields: Object.fromEntries(result.updated.map((u) => [u.id, u.fields])),
    warnings: result.warnings,
    credentials: o.dryRun || counts.created === 0 ? null : o.credentials,
  });
  if (!o.dryRun && counts.created > 0) note(tr(`credentials of the ${counts.created} new device(s) written to ${o.credentials} (mode 0600)`, `${counts.created} 个新设备的凭据已写入 ${o.credentials}（权限 0600）`));
  if (!o.dryRun && counts.created + counts.updated > 0) await notifyGateway(o.data);
}

export function registerImport(program: Command): void {
  const cmd = program.command('import').description(tr('set up shops or devices from a CSV file (every row checked first; one bad row imports nothing)', '从 CSV 文件批量建立店铺或设备（先检查每一行；有一行出错则不导入任何内容）'));
  withBulkOptions(cmd.command('shops <file>'))
    .description(tr('create or update shops from a CSV file whose columns are the long names of `shop add`\'s flags', '从 CSV 文件新建或更新店铺，列名即 `shop add` 选项的长名'))
    .addHelpText(
      'after',
      tr(
        `
Columns: ${SHOP_COLUMN_SPEC.known.join(', ')} (id, name, address and station required).
A list (cameras, neighbours) is comma-separated inside a quoted cell. Shops are matched by id: a new
one is created, a known one updated; an empty cell clears an optional field, a column left out
leaves it alone. Neighbours may name shops created earlier in the same file.

Example:
  $ cat street.csv
  id,name,address,lat,lon,station,door-plate,owner-phone,neighbours
  S01,李记茶行,长平路23号,23.3540,116.6820,PS1,23号,13800138000,
  S02,阿妹粿条,长平路25号,23.3541,116.6822,PS1,25号,020-12345678,"S01"
  $ lianfang import shops street.csv --dry-run
  $ lianfang import shops street.csv
  shops: 2 created, 0 updated, 0 unchanged (street.csv, utf8)`,
        `
列：${SHOP_COLUMN_SPEC.known.join(', ')}（id、name、address、station 必填）。
列表（cameras、neighbours）在带引号的单元格内以逗号分隔。按 id 匹配店铺：新的新建，已有的更新；
可选字段的空单元格表示清空，缺少的列表示不改动。neighbours 可引用同一文件中前面新建的店铺。

Example（示例）:
  $ lianfang import shops street.csv --dry-run
  $ lianfang import shops street.csv
  店铺：新建 2，更新 0，未变 0（street.csv，utf8）`
      ),
    )
    .action((file: string, o: BulkOptions) => importShopsCommand(file, o));
  withBulkOptions(cmd.command('devices <file>'))
    .description(tr('register or move devices from a CSV file; the credentials of new ones go to --credentials FILE, never to the terminal', '从 CSV 文件登记或调整设备；新设备的凭据写入 --credentials 文件，从不打印到终端'))
    .option('--credentials <file>', tr('the new file (mode 0600, never overwritten) that receives the credentials of the devices created: shop, device id, transport, username, password or MAC key', '接收新设备凭据的新文件（权限 0600，不会覆盖）：店铺、设备编号、传输方式、用户名、口令或 MAC 密钥'))
    .addHelpText(
      'after',
      tr(
        `
Columns: ${DEVICE_COLUMN_SPEC.known.join(', ')} (shop, type and transport required).
A row with the id of a device that exists moves it (bus, bus-address, model; its shop, type and
transport cannot change); a row without an id, or with a new one, registers a device. An empty
cell keeps the device's value. A shop that gets a second device of the same type and transport
is warned about (not an error).

Example:
  $ cat devices.csv
  shop,type,transport,port,bus-address
  S01,keypad,mqtt,,
  S02,keypad,serial,/dev/ttyUSB0,3
  $ lianfang import devices devices.csv --credentials creds.csv
  devices: 2 created, 0 updated, 0 unchanged (devices.csv, utf8)`,
        `
列：${DEVICE_COLUMN_SPEC.known.join(', ')}（shop、type、transport 必填）。
带有已存在设备 id 的行调整该设备（bus、bus-address、model；其店铺、类型和传输方式不能改）；
不带 id 或 id 为新的行登记新设备。空单元格保留设备原值。某店铺将有第二个同类型同传输方式的设备时给出警告（不是错误）。

Example（示例）:
  $ lianfang import devices devices.csv --credentials creds.csv
  设备：新建 2，更新 0，未变 0（devices.csv，utf8）`
      ),
    )
    .action((file: string, o: BulkOptions & { credentials?: string }) => importDevicesCommand(file, o));
}
