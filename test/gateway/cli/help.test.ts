/**
 * Every command of `lianfang`, walked from the registered table: its --help has a description and
 * an example, and every option is explained. (A new command without an example fails here.)
 */
import t from 'tap';
import type { Command } from 'commander';
import { buildProgram } from '../../../gateway/cli/lianfang.js';

function leaves(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return [{ path, cmd }];
  return subs.flatMap((c) => leaves(c, [...path, c.name()]));
}

function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => void (out += s), writeErr: (s) => void (out += s) });
  cmd.outputHelp();
  return out;
}

/** Commands whose output is not records: they run (start, the simulators), or write a file format (CSV, a shell script). */
const NO_JSON = new Set(['start', 'simulate street', 'simulate keypad', 'simulate modbus', 'export shops', 'export devices', 'completion']);

t.test('every command has --help with a description and an example', async (t) => {
  const all = leaves(buildProgram());
  t.ok(all.length >= 30, `${all.length} commands`);
  for (const { path, cmd } of all) {
    const name = path.join(' ');
    const help = helpOf(cmd);
    t.ok(cmd.description().length > 10, `${name}: has a description`);
    t.match(help, /Example|示例/, `${name}: --help has an example`);
    t.match(help, new RegExp(`\\$ (\\S+=('[^']*'|\\S+) )*lianfang ${path[0]}\\b`), `${name}: the example runs lianfang ${path[0]}`);
    for (const o of cmd.options) t.ok(o.description, `${name} ${o.long}: explained`);
    // Every command that touches a gateway's data takes --data (a Modbus simulator and a completion script do not).
    if (name !== 'simulate modbus' && name !== 'completion') t.ok(cmd.options.some((o) => o.long === '--data'), `${name}: takes --data`);
    if (!NO_JSON.has(name)) t.ok(cmd.options.some((o) => o.long === '--json'), `${name}: takes --json, for scripts`);
  }
});
