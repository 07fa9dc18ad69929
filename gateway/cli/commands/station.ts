/** `lianfang station`. */
import { tr } from '../../i18n.js';
import type { Command } from 'commander';
import { addStation, listStations } from '../../registry/registry.js';
import { printJson, printRecords } from '../output.js';
import { dataOption, jsonOption, list, notifyGateway, withDb } from '../common.js';

export function registerStation(program: Command): void {
  const station = program.command('station').description('police stations (接处警中心) and compound receiving points (次级接处警点)');
  station
    .command('add')
    .description('register a station, or with --compound-of a compound receiving point under a station')
    .requiredOption('--id <id>', 'station id (letters, digits, _ . : -)')
    .requiredOption('--name <name>', 'display name')
    .option('--compound-of <stationId>', 'make this a compound receiving point of that station')
    .option('--time-zone <tz>', 'time zone times are shown in (default Asia/Shanghai)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ lianfang station add --id PS1 --name "Changping Rd Station"\n  $ lianfang station add --id C1 --name "Garden Court guard room" --compound-of PS1')
    .action(async (o: { id: string; name: string; compoundOf?: string; timeZone?: string; data: string; json?: boolean }) => {
      const s = withDb(o.data, (db) => addStation(db, { id: o.id, name: o.name, ...(o.compoundOf ? { compoundOf: o.compoundOf } : {}), ...(o.timeZone ? { timeZone: o.timeZone } : {}) }));
      if (o.json) printJson(s);
      else if (s.compoundOf) process.stdout.write(tr(`station ${s.id} added (compound of ${s.compoundOf})\n`, `已添加次级接处警点 ${s.id}（隶属 ${s.compoundOf}）\n`));
      else process.stdout.write(tr(`station ${s.id} added\n`, `已添加接处警中心 ${s.id}\n`));
      await notifyGateway(o.data);
    });
  station
    .command('list')
    .description('list stations and compound receiving points')
    .addHelpText('after', '\nExample:\n  $ lianfang station list --json')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => listStations(db));
      printRecords(!!o.json, rows as unknown as Record<string, unknown>[], { id: tr('ID', '编号'), name: tr('NAME', '名称'), compoundOf: tr('COMPOUND OF', '隶属'), timeZone: tr('TIME ZONE', '时区') });
    });
}
