/**
 * `lianfang fault list|assign|fix`: the maintenance tickets every fault opens (issue 9). A change
 * goes through the running gateway when there is one (admin op `fault-ticket`: the consoles get
 * the new rev at once), else onto the database (gateway/faults/fault-tickets.ts). A fault is named
 * by its id or a unique prefix of it, like a git commit.
 *
 * `fault fix` on a fault whose cause still holds (the device still silent) is refused with
 * LF_ERR_FAULT_ACTIVE unless `--force`: a ticket marked fixed while the device is still dead is the
 * silent failure tickets are there to prevent. A ticket closes itself when the cause recovers.
 */
import { tr } from '../../i18n.js';
import type { Command, Option } from 'commander';
import { withDatabase } from '../../store/db.js';
import { adminRequest } from '../../admin/channel.js';
import { FaultStore, ticketOf, type FaultRecord, type TicketChange } from '../../faults/fault-store.js';
import { changeTicketOffline, ticketRequest } from '../../faults/fault-tickets.js';
import { note, printJson, printRecords } from '../output.js';

export interface FaultCliContext {
  dataOption: () => Option;
  jsonOption: () => Option;
  /** Who runs the command, as the audit names it. */
  actor: () => string;
}

const columns = () => ({
  faultId: tr('ID', '编号'),
  raisedAt: tr('RAISED', '发生时间'),
  what: tr('DEVICE/SUBJECT', '设备/对象'),
  shopId: tr('SHOP', '商户'),
  kind: tr('KIND', '类型'),
  state: tr('FAULT', '故障'),
  ticket: tr('TICKET', '工单'),
  assignedTo: tr('ASSIGNED TO', '指派给'),
});

/** A fault as `fault list --json` and the change commands print it. */
function view(f: FaultRecord): Record<string, unknown> {
  return {
    faultId: f.faultId,
    rev: f.rev,
    kind: f.kind,
    ...(f.deviceId ? { deviceId: f.deviceId } : {}),
    ...(f.subject ? { subject: f.subject } : {}),
    shopId: f.shopId,
    stationId: f.stationId,
    state: f.clearedAt ? 'cleared' : 'raised',
    raisedAt: f.raisedAt,
    clearedAt: f.clearedAt,
    ...(f.detail ? { detail: f.detail } : {}),
    ticket: ticketOf(f),
  };
}

async function change(data: string, faultId: string, c: TicketChange, actor: string, json: boolean | undefined): Promise<void> {
  const req = ticketRequest({ faultId, change: c, actor });
  const viaGateway = (await adminRequest(data, { op: 'fault-ticket', ...req })) as FaultRecord | null;
  const f = viaGateway ?? withDatabase(data, (db) => changeTicketOffline(db, req));
  if (json) printJson({ ...view(f), gatewayRunning: viaGateway !== null });
  else {
    const t = ticketOf(f);
    const noteText = t.note ? ` (${t.note})` : '';
    const what = t.state === 'assigned' ? tr(`assigned to ${t.assignedTo}`, `已指派给 ${t.assignedTo}`) : tr(`fixed by ${t.fixedBy}${noteText}`, `已由 ${t.fixedBy} 修复${noteText}`);
    const subject = `${f.kind}, ${f.deviceId ?? f.subject}`;
    process.stdout.write(
      tr(
        `fault ${f.faultId} (${subject}): ticket ${what}, rev ${f.rev}\n  audit row written (fault-${c.action} by ${actor})\n`,
        `故障 ${f.faultId}（${subject}）：工单${what}，版本 ${f.rev}\n  已记入审计（fault-${c.action}，操作人 ${actor}）\n`,
      ),
    );
  }
  note(
    viaGateway
      ? tr('(the running gateway has published the change to the consoles)', '（运行中的网关已将此更改发布到接警台）')
      : tr('(no gateway is running on this data directory; the consoles get the change when it starts)', '（此数据目录上没有运行中的网关；网关启动时接警台收到此更改）'),
  );
}

export function registerFaultCommands(program: Command, ctx: FaultCliContext): void {
  const fault = program.command('fault').description("faults and their maintenance tickets (open → assigned → fixed); a ticket closes itself when its cause recovers");
  fault
    .command('list')
    .description('list faults with their tickets, oldest first')
    .option('--open', 'only faults still raised or whose ticket is not fixed')
    .option('--station <stationId>', "only this station's (or compound's) faults, and the gateway's own")
    .addOption(ctx.dataOption())
    .addOption(ctx.jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang fault list --open --station PS1')
    .action((o: { open?: boolean; station?: string; data: string; json?: boolean }) => {
      const rows = withDatabase(o.data, (db) => FaultStore.offline(db).list({ open: o.open, station: o.station }));
      if (o.json) return printJson(rows.map(view));
      printRecords(
        false,
        rows.map((f) => ({ faultId: f.faultId, raisedAt: f.raisedAt, what: f.deviceId ?? f.subject, shopId: f.shopId, kind: f.kind, state: f.clearedAt ? 'cleared' : 'raised', ticket: f.ticket, assignedTo: f.assignedTo })),
        columns(),
      );
    });
  fault
    .command('assign <faultId>')
    .description('assign a fault\'s ticket to the person who will repair it (the id or a unique prefix of it)')
    .requiredOption('--to <name>', 'who repairs it')
    .addOption(ctx.dataOption())
    .addOption(ctx.jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang fault assign 019ad9a0-11 --to "Wang Tech"')
    .action((faultId: string, o: { to: string; data: string; json?: boolean }) => change(o.data, faultId, { action: 'assign', to: o.to }, ctx.actor(), o.json));
  fault
    .command('fix <faultId>')
    .description('record the repair and close the ticket; refused while the fault still holds (LF_ERR_FAULT_ACTIVE) unless --force')
    .requiredOption('--note <text>', 'what was done')
    .option('--force', 'close the ticket although the fault still holds')
    .addOption(ctx.dataOption())
    .addOption(ctx.jsonOption())
    .addHelpText('after', '\nExample:\n  $ lianfang fault fix 019ad9a0-11 --note "replaced the battery"')
    .action((faultId: string, o: { note: string; force?: boolean; data: string; json?: boolean }) =>
      change(o.data, faultId, { action: 'fix', note: o.note, ...(o.force ? { force: true } : {}) }, ctx.actor(), o.json),
    );
}
