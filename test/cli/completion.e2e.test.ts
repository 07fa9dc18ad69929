/**
 * `lianfang completion bash|zsh`: the script the CLI prints, loaded into a real bash, completes
 * command groups, their sub-commands and their options.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempDataDir } from '../helpers/gateway.js';

t.test('bash completion completes commands, sub-commands and options', async (t) => {
  const r = await cli(['completion', 'bash']);
  t.equal(r.code, 0, r.stderr);
  const file = join(tempDataDir(t), 'lianfang.bash');
  writeFileSync(file, r.stdout);
  const complete = (...words: string[]) =>
    execFileSync('bash', ['-c', `source "$0"; COMP_WORDS=(lianfang ${words.map((w) => `"${w}"`).join(' ')}); COMP_CWORD=${words.length}; _lianfang; echo "\${COMPREPLY[@]}"`, file], { encoding: 'utf8' })
      .trim()
      .split(' ');
  t.same(complete('st').sort(), ['start', 'station', 'status']);
  t.ok(complete('shop', '').includes('arm'), 'sub-commands of shop');
  t.same(complete('shop', 'add', '--s').sort(), ['--sector', '--station']);
  t.ok(complete('device', 'add', '--shop', 'S01', '--t').includes('--transport'), 'an option after another option and its value');
  const zsh = await cli(['completion', 'zsh']);
  t.match(zsh.stdout, /^#compdef lianfang/);
  const bad = await cli(['completion', 'fish']);
  t.not(bad.code, 0, 'an unknown shell is refused');
});
