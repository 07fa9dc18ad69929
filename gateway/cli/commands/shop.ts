/** `lianfang shop`. */
import { Option, type Command } from 'commander';
import { loadOrCreateGatewayKey } from '../../secrets.js';
import {
  addShop, getShop, listShops, REQUIRED_SHOP_FIELDS, retireShop, SHOP_FIELDS, SHOP_FLAGS, updateShop, type ShopField, type ShopInput,
} from '../../registry/registry.js';
import { tr } from '../../i18n.js';
import { adminRequest } from '../../admin/channel.js';
import { lfError } from '../../errors.js';
import { note, printJson, printRecords } from '../output.js';
import { userInfo } from 'node:os';
import { clearShopPins, setShopPins, validatePins } from '../../alarm/pins.js';
import { formatSchedule, getArming, listArming, parseSchedule, setArmed, setSchedule, shopTimeZone, type Arming } from '../../alarm/arming.js';
import { cliActor, dataOption, gatewayNote, jsonOption, list, notifyGateway, num, withDb } from '../common.js';
import type { Encoding } from '../bulk/csv.js';
import { importPins, PIN_COLUMN_SPEC } from '../bulk/pins.js';
import { dryRunOption, encodingOption, runBulk, type BulkOptions } from './import.js';

/** The record flags of `shop add` and `shop edit` (value name, help, parser), by field: one table for both. */
const RECORD_OPTIONS: Record<ShopField, { value: string; help: string; parse?: (v: string) => unknown }> = {
  name: { value: '<name>', help: tr('shop name as neighbours see it, e.g. 李记茶行', '邻居看到的店名，例如 李记茶行') },
  address: { value: '<address>', help: tr('street address', '街道地址') },
  stationId: { value: '<stationId>', help: tr('the police station responsible for it', '负责的派出所') },
  lat: { value: '<deg>', help: tr('latitude, WGS-84 (as GPS gives it); in China', '纬度，WGS-84（GPS 给出的）；须在中国境内'), parse: num('--lat') },
  lon: { value: '<deg>', help: tr('longitude, WGS-84', '经度，WGS-84'), parse: num('--lon') },
  neighbours: { value: '<ids>', help: tr('comma-separated neighbour shop ids, used when the shop has no coordinates', '逗号分隔的邻居商铺编号，商铺没有坐标时使用'), parse: list },
  compoundId: { value: '<id>', help: tr('the residential compound (receiving point) it belongs to', '所属小区（接警点）') },
  doorPlate: { value: '<plate>', help: tr('door-plate number, e.g. 23号', '门牌号，例如 23号') },
  poleNumber: { value: '<number>', help: tr('nearest utility-pole number', '最近的电线杆编号') },
  grid: { value: '<grid>', help: tr('grid', '网格') },
  sector: { value: '<sector>', help: tr('sector', '片区') },
  ownerName: { value: '<name>', help: tr('owner name', '店主姓名') },
  ownerPhone: { value: '<phone>', help: tr('owner phone: a mobile (13800138000) or a landline with its area code (020-12345678)', '店主电话：手机（13800138000）或带区号的固定电话（020-12345678）') },
  dutyName: { value: '<name>', help: tr('daily duty contact', '日常值守联系人') },
  dutyPhone: { value: '<phone>', help: tr('daily duty contact phone, as --owner-phone', '日常值守联系人电话，格式同 --owner-phone') },
  cameraIds: { value: '<ids>', help: tr('comma-separated ids of the cameras covering the door', '逗号分隔的覆盖店门的摄像头编号'), parse: list },
};

/** The order the record flags appear in `--help`: the required ones first, as `shop add` needs them. */
const OPTION_ORDER: readonly ShopField[] = [...REQUIRED_SHOP_FIELDS, ...SHOP_FIELDS.filter((f) => !REQUIRED_SHOP_FIELDS.includes(f))];

/** Commander's property for a field's flag (--owner-phone → ownerPhone). */
const attribute = (f: ShopField) => new Option(`--${SHOP_FLAGS[f]}`).attributeName();

/** The record options, for `shop add` (`required`: the fields a shop cannot be without are mandatory) and `shop edit`. */
function recordOptions(required: boolean): Option[] {
  return OPTION_ORDER.map((f) => {
    const d = RECORD_OPTIONS[f];
    const o = new Option(`--${SHOP_FLAGS[f]} ${d.value}`, d.help);
    if (d.parse) o.argParser(d.parse);
    if (required && REQUIRED_SHOP_FIELDS.includes(f)) o.makeOptionMandatory();
    return o;
  });
}

/** The record fields given on the command line. */
function recordFrom(o: Record<string, unknown>): Partial<Omit<ShopInput, 'id'>> {
  const out: Record<string, unknown> = {};
  for (const f of SHOP_FIELDS) if (o[attribute(f)] !== undefined) out[f] = o[attribute(f)];
  return out;
}

/** `--clear FLAG` names a flag of the record (owner-phone, neighbours; with or without the dashes). */
function clearedFields(names: readonly string[], patch: Partial<ShopInput>): ShopField[] {
  const byFlag = new Map(SHOP_FIELDS.map((f) => [SHOP_FLAGS[f] as string, f]));
  return names.map((n) => {
    const f = byFlag.get(n.replace(/^--/, ''));
    if (!f) throw lfError('LF_ERR_INVALID_ARGUMENT', '--clear', tr(`${n} is no field of a shop; one of: ${[...byFlag.keys()].join(', ')}`, `${n} 不是商铺的字段；可选：${[...byFlag.keys()].join(', ')}`));
    if (patch[f] !== undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--clear', tr(`--${SHOP_FLAGS[f]} is both given and cleared`, `--${SHOP_FLAGS[f]} 不能同时设置和清除`));
    return f;
  });
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/** A shop's arming as `shop list` and `shop show` print it. */
function armingView(a: Arming): { armed: boolean; armedChangedAt: string | null; armedChangedBy: string | null; schedule: string; entryDelayUntil: string | null } {
  return {
    armed: a.armed,
    armedChangedAt: a.changedAt,
    armedChangedBy: a.changedBy,
    schedule: formatSchedule(a.schedule),
    entryDelayUntil: a.entry ? new Date(a.entry.dueAt).toISOString() : null,
  };
}

/**
 * `shop arm|disarm`: through the running gateway's admin channel (its writer, its clock, its
 * deadlines), or on the database when none runs (the gateway re-arms the deadlines at its start).
 */
async function armingCommand(o: { data: string; json?: boolean }, shopId: string, change: { armed: boolean } | { schedule: ReturnType<typeof parseSchedule> }): Promise<void> {
  const actor = cliActor();
  const req = 'armed' in change ? { op: 'arming', shopId, armed: change.armed, actor } : { op: 'arming', shopId, schedule: formatSchedule(change.schedule), actor };
  const via = (await adminRequest(o.data, req)) as Arming | null;
  const arming =
    via ??
    withDb(o.data, (db) =>
      db
        .transaction(() => {
          if ('armed' in change) setArmed(db, shopId, change.armed, actor, Date.now());
          else setSchedule(db, shopId, change.schedule, actor, Date.now());
          return getArming(db, shopId);
        })
        .immediate(),
    );
  const view = { shopId, ...armingView(arming), gatewayRunning: via !== null };
  if (o.json) printJson(view);
  else {
    const state = view.armed ? tr('armed', '已布防') : tr('disarmed', '已撤防');
    process.stdout.write(tr(`shop ${shopId}: ${state}; schedule ${view.schedule}\n`, `商户 ${shopId}：${state}；布防计划 ${view.schedule}\n`));
  }
  gatewayNote(via !== null);
}

/** `shop pin --from FILE`: the PINs of many shops, every row checked first (gateway/cli/bulk/pins.ts). */
async function pinsFromFile(file: string, shopId: string | undefined, o: BulkOptions & { pin?: string; duressPin?: string; clear?: boolean }, actor: string): Promise<void> {
  if (shopId !== undefined || o.pin !== undefined || o.duressPin !== undefined || o.clear) {
    throw lfError('LF_ERR_INVALID_ARGUMENT', '--from', tr('give either --from FILE or a shop with its PINs, not both', '请只给出 --from FILE，或只给出店铺及其 PIN'));
  }
  const key = loadOrCreateGatewayKey(o.data);
  const { result: shops } = runBulk(file, PIN_COLUMN_SPEC, o, tr('PINs', '密码'), (records, errors) =>
    withDb(o.data, (db) => importPins(db, key, records, errors, { dryRun: !!o.dryRun, actor })),
  );
  if (o.json) printJson({ file, dryRun: !!o.dryRun, shops });
  else process.stdout.write(tr(`PINs of ${shops.length} shop(s) set (stored as keyed hashes only)\n`, `已设置 ${shops.length} 家店铺的 PIN（只保存带密钥的散列）\n`));
  if (o.dryRun) note(tr('(dry run: nothing was written)', '（试运行：未写入任何内容）'));
  else if (shops.length) await notifyGateway(o.data);
}

export function registerShop(program: Command): void {
  const shop = program.command('shop').description('shops and households on the joint-defence network');
  const add = shop
    .command('add')
    .description('register a shop with its record (docs/concepts.md "Shop records")')
    .requiredOption('--id <id>', 'shop id');
  for (const o of recordOptions(true)) add.addOption(o);
  add
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang shop add --id S01 --name 李记茶行 --address "Changping Rd 23" --lat 23.354 --lon 116.682 --station PS1 --door-plate 23号 --owner "Li Ming" --owner-phone 13800000000')
    .action(async (o: Record<string, unknown> & { id: string; data: string; json?: boolean }) => {
      const input = { id: o.id, ...recordFrom(o) } as ShopInput;
      const s = withDb(o.data, (db) => addShop(db, input));
      if (o.json) printJson(s);
      else process.stdout.write(tr(`shop ${s.id} added (${s.name}, station ${s.stationId})\n`, `已添加商户 ${s.id}（${s.name}，接处警中心 ${s.stationId}）\n`));
      await notifyGateway(o.data);
    });

  const edit = shop
    .command('edit <shopId>')
    .description(tr("change a shop's record: the flags of `shop add`, and --clear FIELD to empty an optional one", '修改商铺记录：参数同 `shop add`，用 --clear 字段 清空可选字段'));
  for (const o of recordOptions(false)) edit.addOption(o);
  edit
    .option('--clear <field>', tr('empty a field, named by its flag (owner-phone, neighbours, …); repeatable', '清空一个字段（以参数名表示：owner-phone、neighbours 等）；可重复'), collect)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang shop edit S01 --owner-phone 13900139000 --duty "Li Hua"\n  $ lianfang shop edit S01 --clear duty --clear duty-phone')
    .action(async (shopId: string, o: Record<string, unknown> & { clear?: string[]; data: string; json?: boolean }) => {
      const patch = recordFrom(o);
      const clear = clearedFields(o.clear ?? [], patch);
      const { shop: s, changed } = withDb(o.data, (db) => updateShop(db, shopId, patch, clear));
      const flags = changed.map((f) => SHOP_FLAGS[f]);
      if (o.json) printJson({ shop: s, changed: flags });
      else if (!changed.length) process.stdout.write(tr(`shop ${s.id}: nothing changed\n`, `商铺 ${s.id}：没有改动\n`));
      else {
        process.stdout.write(tr(`shop ${s.id} changed:\n`, `商铺 ${s.id} 已修改：\n`));
        for (const f of changed) {
          const v = s[f];
          const shown = v === null || (Array.isArray(v) && v.length === 0) ? tr('(cleared)', '（已清空）') : Array.isArray(v) ? v.join(',') : String(v);
          process.stdout.write(`  --${SHOP_FLAGS[f]} ${shown}\n`);
        }
      }
      if (changed.length) await notifyGateway(o.data);
    });

  shop
    .command('remove <shopId>')
    .description(
      tr(
        "retire a shop: its record, alarms and events stay, it is no one's neighbour any more; refused while it has an open alarm, or devices (unless --force)",
        '注销商铺：保留其记录、报警和事件，不再作为任何商铺的邻居；有未关闭的报警时拒绝，有设备时拒绝（除非 --force）'
      ),
    )
    .option('--force', tr('revoke its devices first (the running gateway drops their sessions)', '先吊销其设备（运行中的网关断开它们的连接）'))
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang shop remove S01\n  $ lianfang shop remove S01 --force')
    .action(async (shopId: string, o: { force?: boolean; data: string; json?: boolean }) => {
      const r = withDb(o.data, (db) => retireShop(db, shopId, cliActor(), { force: !!o.force }));
      if (o.json) printJson({ shopId: r.shop.id, retiredAt: r.shop.retiredAt, revokedDevices: r.revokedDevices });
      else {
        process.stdout.write(tr(`shop ${r.shop.id} retired (its alarms and events stay on record)\n`, `商铺 ${r.shop.id} 已注销（其报警和事件仍保留）\n`));
        for (const d of r.revokedDevices) process.stdout.write(tr(`  device ${d} revoked\n`, `  设备 ${d} 已吊销\n`));
      }
      // One request: the gateway reloads once and drops every revoked device's session.
      await notifyGateway(o.data, r.revokedDevices.length ? { op: 'revoke', deviceIds: r.revokedDevices } : { op: 'reload' });
    });
  shop
    .command('list')
    .description('list shops (retired ones marked), all or those of one station')
    .option('--station <id>', 'only the shops of this station')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang shop list --station PS1\n  $ lianfang shop list --json')
    .action((o: { data: string; json?: boolean; station?: string }) => {
      const rows = withDb(o.data, (db) => {
        const arming = listArming(db);
        return listShops(db)
          .filter((s) => !o.station || s.stationId === o.station || s.compoundId === o.station)
          .map((s) => ({ ...s, ...armingView(arming.get(s.id) ?? getArming(db, s.id)) }));
      });
      printRecords(!!o.json, rows as unknown as Record<string, unknown>[], {
        id: tr('ID', '编号'),
        name: tr('NAME', '名称'),
        doorPlate: tr('PLATE', '门牌'),
        address: tr('ADDRESS', '地址'),
        stationId: tr('STATION', '接处警中心'),
        compoundId: tr('COMPOUND', '次级接处警点'),
        lat: tr('LAT', '纬度'),
        lon: tr('LON', '经度'),
        armed: tr('ARMED', '布防'),
        schedule: tr('SCHEDULE', '布防计划'),
        retiredAt: tr('RETIRED', '已注销'),
      });
    });

  shop
    .command('show <shopId>')
    .description('one shop: its record, whether it is armed (since when, by whom), its arming schedule and a running entry delay')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang shop show S01 --json')
    .action((shopId: string, o: { data: string; json?: boolean }) => {
      const row = withDb(o.data, (db) => {
        const s = getShop(db, shopId);
        if (!s) throw lfError('LF_ERR_NOT_FOUND', 'shop', shopId);
        return { ...s, ...armingView(getArming(db, shopId)), timeZone: shopTimeZone(db, shopId) };
      });
      if (o.json) return printJson(row);
      for (const [k, v] of Object.entries(row)) if (v !== null && !(Array.isArray(v) && v.length === 0)) process.stdout.write(`${k}: ${Array.isArray(v) ? v.join(',') : String(v)}\n`);
    });

  shop
    .command('arm <shopId>')
    .description("arm a shop now (it holds until the schedule's next change), or set its daily schedule in the station's time zone (--schedule 23:00-06:00; none removes it)")
    .option('--schedule <ARM-DISARM>', 'armed daily from ARM to DISARM (HH:MM-HH:MM, may cross midnight), or none; it rules from now')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang shop arm S01\n  $ lianfang shop arm S01 --schedule 23:00-06:00\n  $ lianfang shop arm S01 --schedule none')
    .action(async (shopId: string, o: { schedule?: string; data: string; json?: boolean }) => {
      const schedule = o.schedule === undefined ? undefined : parseSchedule(o.schedule);
      await armingCommand(o, shopId, schedule === undefined ? { armed: true } : { schedule });
    });
  shop
    .command('disarm <shopId>')
    .description("disarm a shop now (ends a running entry delay; holds until the schedule's next change)")
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang shop disarm S01')
    .action(async (shopId: string, o: { data: string; json?: boolean }) => {
      await armingCommand(o, shopId, { armed: false });
    });

  shop
    .command('pin [shopId]')
    .description("set the shop's cancel and duress PINs (4–8 digits, different), or --clear them, or set many shops' from a CSV file (--from); stored only as keyed hashes, never printed")
    .option('--from <file>', tr('a CSV file with the columns shop, pin, duress-pin: every row checked first, all set or none', '含 shop、pin、duress-pin 列的 CSV 文件：先检查每一行，全部设置或全部不设置'))
    .addOption(dryRunOption())
    .addOption(encodingOption())
    .option('--pin <digits>', 'the cancel PIN (or env LF_PIN, to keep it out of shell history)')
    .option('--duress-pin <digits>', 'the duress PIN: looks like a cancel at the shop, the console gets a duress alarm (or env LF_DURESS_PIN)')
    .option('--clear', 'remove both PINs (and any wrong-PIN lock-out)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ LF_PIN=2468 LF_DURESS_PIN=1357 lianfang shop pin S01\n  $ lianfang shop pin S01 --clear\n  $ lianfang shop pin --from pins.csv   # columns shop,pin,duress-pin')
    .action(async (shopId: string | undefined, o: { pin?: string; duressPin?: string; clear?: boolean; from?: string; dryRun?: boolean; encoding?: Encoding; data: string; json?: boolean }) => {
      const actor = `user:${userInfo().username}`;
      if (o.from !== undefined) return pinsFromFile(o.from, shopId, o, actor);
      if (shopId === undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', 'shop', tr('name the shop, or give --from FILE', '请指定店铺，或给出 --from FILE'));
      const at = new Date().toISOString();
      const pin = o.pin ?? process.env.LF_PIN;
      const duressPin = o.duressPin ?? process.env.LF_DURESS_PIN;
      if (o.clear) {
        if (o.pin !== undefined || o.duressPin !== undefined) throw lfError('LF_ERR_INVALID_ARGUMENT', '--clear', 'give either --clear or the PINs, not both');
        const had = withDb(o.data, (db) => clearShopPins(db, shopId, actor, at));
        if (o.json) printJson({ shopId, pins: false, had });
        else process.stdout.write(had ? tr(`PINs of shop ${shopId} removed\n`, `商户 ${shopId} 的 PIN 已删除\n`) : tr(`shop ${shopId} had no PINs\n`, `商户 ${shopId} 没有 PIN\n`));
      } else {
        const pins = validatePins(pin, duressPin);
        const key = loadOrCreateGatewayKey(o.data);
        withDb(o.data, (db) => setShopPins(db, key, shopId, pins, actor, at));
        if (o.json) printJson({ shopId, pins: true });
        else process.stdout.write(tr(`PINs of shop ${shopId} set (stored as keyed hashes only)\n`, `商户 ${shopId} 的 PIN 已设置（只保存带密钥的哈希）\n`));
      }
      await notifyGateway(o.data);
    });
}
