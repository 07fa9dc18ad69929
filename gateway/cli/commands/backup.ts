/**
 * `lianfang backup FILE` and `lianfang restore FILE`.
 *
 * A backup is `VACUUM INTO` from the CLI's own connection: one read transaction on the live WAL
 * database, so it is a consistent snapshot while the gateway runs and alarms keep committing (WAL
 * readers never block the writer, and the writer never blocks them). The gateway key is never in
 * the backup: the copy records only the key's fingerprint (and its schema version) in its `meta`
 * table, and `--key-to` writes the key to a file apart, so the two can be kept in different places.
 *
 * A restore takes the data directory's lock as a gateway would (gateway/admin/lock.ts), so it is
 * refused while a gateway runs there and no gateway can start halfway through it.
 */
import type { Command } from 'commander';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, constants, copyFileSync, existsSync, linkSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { openDatabase, DB_FILE, setMeta, type Db } from '../../store/db.js';
import { LATEST_VERSION } from '../../store/migrations.js';
import { GATEWAY_KEY_FILE, parseGatewayKey } from '../../secrets.js';
import { acquireLock } from '../../admin/lock.js';
import { secureDataDir, DATA_FILE_MODE } from '../../data-dir.js';
import { lfError, isLianfangError } from '../../errors.js';
import { printJson } from '../output.js';
import { dataOption, jsonOption } from '../common.js';
import { tr } from '../../i18n.js';
import { createPrivateFile } from '../credentials-file.js';
import { FLOW_META_PREFIX, readFlowFiles, writeFlowFiles } from '../../nodered/flow-files.js';

export const META_KEY_FINGERPRINT = 'backup.key_fingerprint';
export const META_SCHEMA_VERSION = 'backup.schema_version';
export const META_CREATED_AT = 'backup.created_at';

/** Names the key without revealing it: sha256 of the 32 key bytes, first 16 hex. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** A key file as loadOrCreateGatewayKey writes it: 32 bytes in hex. Never created here. */
function readKeyFile(file: string, option: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', option, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  const key = parseGatewayKey(text);
  if (!key) throw lfError('LF_ERR_INVALID_ARGUMENT', option, `${file} does not hold a 32-byte hex key`);
  return key;
}

/** Write `text` to a new file, mode 0600; an existing file is refused (a key or backup is never overwritten). */
function writeNewFile(path: string, text: string, option: string): void {
  const fd = createPrivateFile(path, option);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

interface BackupResult {
  file: string;
  schemaVersion: number;
  keyFingerprint: string;
  keyFile: string | null;
  /** Node-RED's flow files carried in the backup (flows.json, flows_cred.json). */
  flowFiles: string[];
}

function backup(dataDir: string, file: string, keyTo: string | undefined): BackupResult {
  if (existsSync(file)) throw lfError('LF_ERR_INVALID_ARGUMENT', 'FILE', `${file} exists: name a new file (a backup is never overwritten)`);
  const keyPath = join(dataDir, GATEWAY_KEY_FILE);
  if (!existsSync(keyPath)) throw lfError('LF_ERR_NOT_FOUND', tr('gateway key', '网关密钥'), keyPath);
  const key = readKeyFile(keyPath, '--data');
  // Written whole under a temporary name beside FILE, then linked into place: link() refuses an
  // existing FILE, and a backup cut short never carries the final name.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.partial`);
  let schemaVersion: number;
  const flowFiles = readFlowFiles(dataDir);
  const db = openDatabase(dataDir);
  try {
    schemaVersion = db.pragma('user_version', { simple: true }) as number;
    db.prepare('VACUUM INTO ?').run(tmp);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  } finally {
    db.close();
  }
  try {
    chmodSync(tmp, DATA_FILE_MODE);
    const copy = new Database(tmp);
    try {
      setMeta(copy, META_KEY_FINGERPRINT, keyFingerprint(key));
      setMeta(copy, META_SCHEMA_VERSION, String(schemaVersion));
      setMeta(copy, META_CREATED_AT, new Date().toISOString());
      for (const [name, text] of flowFiles) setMeta(copy, FLOW_META_PREFIX + name, text);
      // One self-contained file: no -wal beside it to lose on the way to the shelf.
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw lfError('LF_ERR_INVALID_ARGUMENT', 'FILE', `${file} exists: name a new file (a backup is never overwritten)`);
    throw err;
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
  if (keyTo !== undefined) writeNewFile(keyTo, key.toString('hex') + '\n', '--key-to');
  return { file, schemaVersion, keyFingerprint: keyFingerprint(key), keyFile: keyTo ?? null, flowFiles: flowFiles.map(([name]) => name) };
}

interface Checked {
  schemaVersion: number;
  keyFingerprint: string;
  /** Node-RED's flow files the backup carries, as [name, text]. */
  flowFiles: [string, string][];
}

/** The backup whole, not newer than this gateway, and made by `lianfang backup`; read-only. */
function checkBackup(file: string): Checked {
  if (!existsSync(file)) throw lfError('LF_ERR_BACKUP_INVALID', file, tr('no such file', '文件不存在'));
  let db: Db | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    if (integrity !== 'ok') throw lfError('LF_ERR_BACKUP_INVALID', file, `integrity_check: ${integrity}`);
    const schemaVersion = db.pragma('user_version', { simple: true }) as number;
    if (schemaVersion > LATEST_VERSION) throw lfError('LF_ERR_DB_TOO_NEW', schemaVersion, LATEST_VERSION);
    const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(META_KEY_FINGERPRINT) as { value: string } | undefined;
    if (!row) throw lfError('LF_ERR_BACKUP_INVALID', file, tr('it records no key fingerprint (not written by `lianfang backup`)', '没有记录密钥指纹（不是 `lianfang backup` 生成的）'));
    const flows = db.prepare("SELECT substr(key, ?) AS name, value FROM meta WHERE key LIKE ? ORDER BY key").all(FLOW_META_PREFIX.length + 1, `${FLOW_META_PREFIX}%`) as { name: string; value: string }[];
    return { schemaVersion, keyFingerprint: row.value, flowFiles: flows.map((f) => [f.name, f.value]) };
  } catch (err) {
    if (isLianfangError(err)) throw err;
    // "file is not a database", "no such table: meta", …: whatever SQLite says, it is not a backup.
    throw lfError('LF_ERR_BACKUP_INVALID', file, (err as Error).message);
  } finally {
    db?.close();
  }
}

interface RestoreResult {
  file: string;
  schemaVersion: number;
  keyFingerprint: string;
  keyInstalled: boolean;
  keptAside: string | null;
  /** Node-RED's flow files put back (the current ones kept aside beside them). */
  flowFiles: string[];
}

/**
 * The key the restored database will run under: the data directory's own, or `--key` (installed
 * when the directory has none; one that differs from the directory's own is refused, never
 * replaced). Must match the fingerprint the backup recorded.
 */
function chooseKey(dataDir: string, file: string, want: string, keyOpt: string | undefined): { key: Buffer; install: boolean } {
  const keyPath = join(dataDir, GATEWAY_KEY_FILE);
  const own = existsSync(keyPath) ? readKeyFile(keyPath, '--data') : undefined;
  const given = keyOpt !== undefined ? readKeyFile(keyOpt, '--key') : undefined;
  const mismatch = (name: string, key: Buffer) => lfError('LF_ERR_KEY_MISMATCH', name, file, keyFingerprint(key), want);
  if (given) {
    if (keyFingerprint(given) !== want) throw mismatch(keyOpt!, given);
    if (own && !own.equals(given)) throw mismatch(keyPath, own);
    return { key: given, install: !own };
  }
  if (!own) throw lfError('LF_ERR_NOT_FOUND', tr('gateway key', '网关密钥'), `${keyPath} (give --key FILE)`);
  if (keyFingerprint(own) !== want) throw mismatch(keyPath, own);
  return { key: own, install: false };
}

async function restore(dataDir: string, file: string, keyOpt: string | undefined): Promise<RestoreResult> {
  const checked = checkBackup(file);
  secureDataDir(dataDir);
  const { key, install } = chooseKey(dataDir, file, checked.keyFingerprint, keyOpt);
  // The lock a gateway takes: LF_ERR_DATA_LOCKED while one runs here, and none starts meanwhile.
  const lock = await acquireLock(dataDir, key);
  try {
    const dbPath = join(dataDir, DB_FILE);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    let keptAside: string | null = null;
    if (existsSync(dbPath)) {
      keptAside = `${dbPath}.before-restore-${stamp}`;
      renameSync(dbPath, keptAside);
    }
    // A -wal left by a gateway that was killed belongs to the old database: it goes aside with it
    // (SQLite finds it there by name); left in place it would be replayed into the restored one.
    for (const suffix of ['-wal', '-shm']) {
      if (!existsSync(dbPath + suffix)) continue;
      if (keptAside) renameSync(dbPath + suffix, keptAside + suffix);
      else unlinkSync(dbPath + suffix);
    }
    const tmp = `${dbPath}.${process.pid}.restoring`;
    copyFileSync(file, tmp, constants.COPYFILE_EXCL);
    chmodSync(tmp, DATA_FILE_MODE);
    renameSync(tmp, dbPath);
    if (install) writeNewFile(join(dataDir, GATEWAY_KEY_FILE), key.toString('hex') + '\n', '--key');
    const flowFiles = writeFlowFiles(dataDir, checked.flowFiles, stamp);
    return { file, schemaVersion: checked.schemaVersion, keyFingerprint: checked.keyFingerprint, keyInstalled: install, keptAside, flowFiles };
  } finally {
    lock.release();
  }
}

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description(tr('write a consistent copy of the database (safe while the gateway runs); the gateway key is not in it', '生成数据库的一致性副本（网关运行时也可执行）；副本不含网关密钥'))
    .argument('<file>', tr('the backup file to create (never overwritten)', '要创建的备份文件（不会覆盖已有文件）'))
    .addOption(dataOption())
    .option('--key-to <file>', tr('also write the gateway key to this new file (mode 0600), to keep apart from the backup', '同时将网关密钥写入此新文件（权限 0600），与备份分开保管'))
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang backup /mnt/usb/lianfang-2026-12-02.db --key-to /root/lianfang.key --data ./data')
    .action((file: string, o: { data: string; keyTo?: string; json?: boolean }) => {
      const r = backup(o.data, file, o.keyTo);
      if (o.json) printJson(r);
      else {
        console.log(tr(`backup written: ${r.file} (schema ${r.schemaVersion}, key fingerprint ${r.keyFingerprint})`, `备份已写入：${r.file}（架构版本 ${r.schemaVersion}，密钥指纹 ${r.keyFingerprint}）`));
        if (r.flowFiles.length) console.log(tr(`with Node-RED's flows: ${r.flowFiles.join(', ')}`, `含 Node-RED 流程：${r.flowFiles.join('、')}`));
        if (r.keyFile) console.log(tr(`gateway key written: ${r.keyFile} (keep it apart from the backup)`, `网关密钥已写入：${r.keyFile}（请与备份分开保管）`));
        else console.log(tr('the gateway key is not in the backup: keep a copy of it (--key-to FILE)', '备份不含网关密钥：请另行保存一份（--key-to FILE）'));
      }
    });

  program
    .command('restore')
    .description(tr('replace the database with a backup (the gateway must be stopped); the current one is kept aside', '用备份替换数据库（须先停止网关）；当前数据库会被保留'))
    .argument('<file>', tr('a file written by `lianfang backup`', '由 `lianfang backup` 生成的文件'))
    .addOption(dataOption())
    .option('--key <file>', tr("the gateway key saved with the backup, installed when the data directory has none", '与备份一同保存的网关密钥；数据目录没有密钥时安装它'))
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang restore /mnt/usb/lianfang-2026-12-02.db --key /root/lianfang.key --data ./data')
    .action(async (file: string, o: { data: string; key?: string; json?: boolean }) => {
      const r = await restore(o.data, file, o.key);
      if (o.json) printJson(r);
      else {
        console.log(tr(`restored ${r.file} (schema ${r.schemaVersion})`, `已恢复 ${r.file}（架构版本 ${r.schemaVersion}）`));
        if (r.keptAside) console.log(tr(`the previous database was kept as ${r.keptAside}`, `原数据库已保留为 ${r.keptAside}`));
        if (r.keyInstalled) console.log(tr('the gateway key was installed', '网关密钥已安装'));
        if (r.flowFiles.length) console.log(tr(`Node-RED's flows restored: ${r.flowFiles.join(', ')}`, `已恢复 Node-RED 流程：${r.flowFiles.join('、')}`));
      }
    });
}
