/** `lianfang shop`. */
import type { Command } from 'commander';
import { loadOrCreateGatewayKey } from '../../secrets.js';
import { addShop, getShop, listShops, type ShopInput } from '../../registry/registry.js';
import { adminRequest } from '../../admin/channel.js';
import { lfError } from '../../errors.js';
import { note, printJson, printRecords } from '../output.js';
import { userInfo } from 'node:os';
import { clearShopPins, setShopPins, validatePins } from '../../alarm/pins.js';
import { formatSchedule, getArming, listArming, parseSchedule, setArmed, setSchedule, shopTimeZone, type Arming } from '../../alarm/arming.js';
import { cliActor, dataOption, jsonOption, list, notifyGateway, num, withDb } from '../common.js';
import { tr } from '../i18n.js';
import type { Encoding } from '../bulk/csv.js';
import { importPins, PIN_COLUMN_SPEC } from '../bulk/pins.js';
import { dryRunOption, encodingOption, runBulk, type BulkOptions } from './import.js';

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
  else process.stdout.write(`shop ${shopId}: ${view.armed ? 'armed 已布防' : 'disarmed 已撤防'}; schedule ${view.schedule}\n`);
  note(via ? '(the running gateway has taken the change)' : '(no gateway is running on this data directory; it will read the change when it starts)');
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
  shop
    .command('add')
    .description('register a shop with its record (DESIGN.md "Shop records")')
    .requiredOption('--id <id>', 'shop id')
    .requiredOption('--name <name>', 'shop name as neighbours see it, e.g. 李记茶行')
    .requiredOption('--address <address>', 'street address')
    .requiredOption('--station <stationId>', 'the police station responsible for it')
    .option('--lat <deg>', 'latitude, WGS-84 (as GPS gives it)', num('--lat'))
    .option('--lon <deg>', 'longitude, WGS-84', num('--lon'))
    .option('--neighbours <ids>', 'comma-separated neighbour shop ids, used when the shop has no coordinates', list)
    .option('--compound <id>', 'the residential compound (receiving point) it belongs to')
    .option('--door-plate <plate>', 'door-plate number, e.g. 23号')
    .option('--pole <number>', 'nearest utility-pole number')
    .option('--grid <grid>', 'grid')
    .option('--sector <sector>', 'sector')
    .option('--owner <name>', 'owner name')
    .option('--owner-phone <phone>', 'owner phone')
    .option('--duty <name>', 'daily duty contact')
    .option('--duty-phone <phone>', 'daily duty contact phone')
    .option('--cameras <ids>', 'comma-separated ids of the cameras covering the door', list)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang shop add --id S01 --name 李记茶行 --address "Changping Rd 23" --lat 23.354 --lon 116.682 --station PS1 --door-plate 23号 --owner "Li Ming" --owner-phone 13800000000')
    .action(async (o: Record<string, unknown> & { data: string; json?: boolean }) => {
      const input: ShopInput = {
        id: o.id as string,
        name: o.name as string,
        address: o.address as string,
        stationId: o.station as string,
      };
      const optional: [keyof ShopInput, string][] = [
        ['lat', 'lat'],
        ['lon', 'lon'],
        ['neighbours', 'neighbours'],
        ['compoundId', 'compound'],
        ['doorPlate', 'doorPlate'],
        ['poleNumber', 'pole'],
        ['grid', 'grid'],
        ['sector', 'sector'],
        ['ownerName', 'owner'],
        ['ownerPhone', 'ownerPhone'],
        ['dutyName', 'duty'],
        ['dutyPhone', 'dutyPhone'],
        ['cameraIds', 'cameras'],
      ];
      for (const [field, opt] of optional) if (o[opt] !== undefined) (input as Record<string, unknown>)[field] = o[opt];
      const s = withDb(o.data, (db) => addShop(db, input));
      if (o.json) printJson(s);
      else process.stdout.write(`shop ${s.id} added (${s.name}, station ${s.stationId})\n`);
      await notifyGateway(o.data);
    });
  shop
    .command('list')
    .description('list shops')
    .option('--station <id>', 'only the shops of this station')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { data: string; json?: boolean; station?: string }) => {
      const rows = withDb(o.data, (db) => {
        const arming = listArming(db);
        return listShops(db)
          .filter((s) => !o.station || s.stationId === o.station || s.compoundId === o.station)
          .map((s) => ({ ...s, ...armingView(arming.get(s.id) ?? getArming(db, s.id)) }));
      });
      printRecords(!!o.json, rows as unknown as Record<string, unknown>[], {
        id: 'ID',
        name: 'NAME',
        doorPlate: 'PLATE',
        address: 'ADDRESS',
        stationId: 'STATION',
        compoundId: 'COMPOUND',
        lat: 'LAT',
        lon: 'LON',
        armed: 'ARMED',
        schedule: 'SCHEDULE',
      });
    });

  shop
    .command('show <shopId>')
    .description('one shop: its record, whether it is armed (since when, by whom), its arming schedule and a running entry delay')
    .addOption(dataOption())
    .addOption(jsonOption())
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
        else process.stdout.write(had ? `PINs of shop ${shopId} removed\n` : `shop ${shopId} had no PINs\n`);
      } else {
        const pins = validatePins(pin, duressPin);
        const key = loadOrCreateGatewayKey(o.data);
        withDb(o.data, (db) => setShopPins(db, key, shopId, pins, actor, at));
        if (o.json) printJson({ shopId, pins: true });
        else process.stdout.write(`PINs of shop ${shopId} set (stored as keyed hashes only)\n`);
      }
      await notifyGateway(o.data);
    });
}
