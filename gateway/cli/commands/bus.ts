/** `lianfang bus`. */
import { tr } from '../../i18n.js';
import type { Command } from 'commander';
import { listDevices } from '../../registry/registry.js';
import { describeBus, listBuses } from '../../registry/buses.js';
import type { ScanHit } from '../../../devices/bridge.js';
import { adminRequest } from '../../admin/channel.js';
import { lfError } from '../../errors.js';
import { note, printRecords } from '../output.js';
import { dataOption, int, jsonOption, list, withDb } from '../common.js';

export function registerBus(program: Command): void {
  const busCmd = program.command('bus').description('wired buses: RS-485 keypad lines and Modbus RTU/TCP links');
  busCmd
    .command('list')
    .description('list the buses and how many devices each carries')
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang bus list\n  BUS      KIND    WHERE                       DEVICES\n  ttyUSB0  serial  /dev/ttyUSB0 @ 9600 8N1     12')
    .action((o: { data: string; json?: boolean }) => {
      const rows = withDb(o.data, (db) => {
        const devices = listDevices(db).filter((d) => d.bus && !d.revokedAt);
        return listBuses(db).map((b) => ({ busId: b.id, kind: b.kind, where: describeBus(b), devices: devices.filter((d) => d.bus === b.id).length }));
      });
      printRecords(!!o.json, rows, { busId: tr('BUS', '总线'), kind: tr('KIND', '类型'), where: tr('WHERE', '位置'), devices: tr('DEVICES', '设备数') });
    });
  busCmd
    .command('scan <busId>')
    .description('list the keypad addresses or Modbus unit ids that answer on a bus (through the running gateway when it holds the port)')
    .option('--from <n>', 'first address', int('--from', 1, 247), 1)
    .option('--to <n>', 'last address', int('--to', 1, 247), 247)
    .option('--timeout-ms <ms>', 'how long to wait for each address', int('--timeout-ms', 5, 5000), 100)
    .addOption(dataOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang bus scan ttyUSB0 --from 1 --to 32\n  ADDRESS  DEVICE             ANSWER\n  3        S01.keypad.d4e5f6  answers (nothing new)')
    .action(async (busId: string, o: { from: number; to: number; timeoutMs: number; data: string; json?: boolean }) => {
      if (o.from > o.to) throw lfError('LF_ERR_INVALID_ARGUMENT', '--from/--to', 'the first address comes before the last');
      const { bus, known } = withDb(o.data, (db) => {
        const b = listBuses(db).find((x) => x.id === busId);
        if (!b) throw lfError('LF_ERR_NOT_FOUND', 'bus', busId);
        return { bus: b, known: new Map(listDevices(db).filter((d) => d.bus === busId && !d.revokedAt).map((d) => [d.busAddress!, d.id])) };
      });
      const scan = { from: o.from, to: o.to, timeoutMs: o.timeoutMs };
      // Generous: every address may cost its timeout plus the wire time of a poll and its answer.
      const budget = 10_000 + (o.to - o.from + 1) * (o.timeoutMs + 200);
      const viaGateway = (await adminRequest(o.data, { op: 'bus-scan', busId, scan }, budget)) as { hits: ScanHit[] } | null;
      let hits: ScanHit[];
      if (viaGateway) hits = viaGateway.hits;
      else {
        const { scanFreeBus } = await import('../../wired-adapter.js');
        hits = await scanFreeBus(bus, scan, known);
      }
      printRecords(
        !!o.json,
        hits.map((h) => ({ address: h.address, deviceId: h.deviceId ?? '', answer: h.detail })),
        { address: tr('ADDRESS', '地址'), deviceId: tr('DEVICE', '设备'), answer: tr('ANSWER', '应答') },
      );
      const n = o.to - o.from + 1;
      const via = viaGateway ? tr(', through the running gateway', '，经运行中的网关') : '';
      if (!o.json) note(tr(`${hits.length} of ${n} addresses answered on ${bus.id} (${describeBus(bus)})${via}`, `总线 ${bus.id}（${describeBus(bus)}）上 ${n} 个地址中有 ${hits.length} 个应答${via}`));
    });
}
