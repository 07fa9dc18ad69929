/** `lianfang status`. */
import type { Command } from 'commander';
import { adminRequest } from '../../admin/channel.js';
import { lfError } from '../../errors.js';
import { printJson } from '../output.js';
import { dataOption, jsonOption } from '../common.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("ask the running gateway for its health (through the admin channel)")
    .addHelpText('after', '\nExample:\n  $ lianfang status --data ./data\n  → {"ok": true, "counters": {"accepted": 1234, "refused.LF_ERR_BAD_PAYLOAD": 2, …}, …}')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(async (o: { data: string; json?: boolean }) => {
      const h = await adminRequest(o.data, { op: 'health' });
      if (h === null) throw lfError('LF_ERR_GATEWAY_NOT_RUNNING', o.data);
      printJson(h);
    });
}
