/**
 * Coded errors (gateway/errors.ts, after Fastify's lib/errors.js): every code is LF_ERR_… with a
 * message and a remedy, and README.md's "Error codes" table lists exactly the codes of ERRORS.
 */
import t from 'tap';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERRORS, LianfangError, lfError, isLianfangError, type ErrorCode } from '../../gateway/errors.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = join(ROOT, 'README.md');

t.test('every code starts with LF_ERR_ and has a message and a remedy', async (t) => {
  const codes = Object.keys(ERRORS) as ErrorCode[];
  t.ok(codes.length > 0, 'there are codes');
  for (const code of codes) {
    t.match(code, /^LF_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/, `${code}: LF_ERR_ and upper-case words`);
    const def = ERRORS[code];
    t.type(def.message, 'string', `${code}: message`);
    t.ok(def.message.trim().length > 0, `${code}: message not empty`);
    t.type(def.remedy, 'string', `${code}: remedy`);
    t.ok(def.remedy.trim().length > 0, `${code}: remedy not empty`);
    t.notOk(/\n/.test(def.remedy), `${code}: the remedy is one line`);
  }
});

t.test('LianfangError carries the code, the filled-in message and the remedy', async (t) => {
  const err = lfError('LF_ERR_BAD_TRANSITION', 'dispatch', 'A1', 'raised');
  t.ok(err instanceof Error);
  t.ok(err instanceof LianfangError);
  t.ok(isLianfangError(err));
  t.notOk(isLianfangError(new Error('plain')));
  t.equal(err.code, 'LF_ERR_BAD_TRANSITION');
  t.equal(err.name, 'LianfangError');
  t.equal(err.message, 'action dispatch is not allowed on alarm A1 in state raised');
  t.equal(err.remedy, ERRORS.LF_ERR_BAD_TRANSITION.remedy);
  // Missing arguments leave their placeholder; a '%s' inside an argument is not expanded again.
  t.equal(new LianfangError('LF_ERR_NOT_FOUND', 'shop').message, 'shop %s does not exist');
  t.equal(new LianfangError('LF_ERR_NOT_FOUND', '%s', 'X').message, '%s X does not exist');
  // Every code can be constructed with as many arguments as it has placeholders.
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const n = (ERRORS[code].message.match(/%s/g) ?? []).length;
    const args = Array.from({ length: n }, (_, i) => `arg${i}`);
    const e = lfError(code, ...args);
    t.notMatch(e.message, /%s/, `${code}: every placeholder filled`);
    for (const a of args) t.match(e.message, a, `${code}: ${a} appears`);
  }
});

/** The codes listed in the first column of the table under "## Error codes". */
function readmeCodes(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /^##\s+Error codes\s*$/.test(l));
  if (start < 0) throw new Error('README.md has no "## Error codes" section');
  const codes: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2}\s/.test(line)) break; // the next section
    if (!line.startsWith('|')) continue;
    const firstCell = line.split('|')[1] ?? '';
    const m = /^\s*`(LF_ERR_[A-Z0-9_]+)`\s*$/.exec(firstCell);
    if (m) codes.push(m[1]);
  }
  return codes;
}

t.test('README.md "Error codes" lists exactly the codes of ERRORS', async (t) => {
  t.ok(existsSync(README), 'README.md exists');
  if (!existsSync(README)) return;
  const listed = readmeCodes(readFileSync(README, 'utf8'));
  const defined = Object.keys(ERRORS);
  t.ok(listed.length > 0, 'the table lists codes');
  const dupes = listed.filter((c, i) => listed.indexOf(c) !== i);
  t.same(dupes, [], 'no code listed twice');
  t.same(
    defined.filter((c) => !listed.includes(c)),
    [],
    'every code in gateway/errors.ts is in README.md',
  );
  t.same(
    listed.filter((c) => !defined.includes(c)),
    [],
    'every code in README.md is in gateway/errors.ts',
  );
});

t.test('the README parser sees a disagreement (it can fail)', async (t) => {
  const doc = [
    '## Error codes',
    '| code | message | remedy |',
    '|---|---|---|',
    '| `LF_ERR_A` | a | b |',
    '| `LF_ERR_B` | a | b |',
    'some prose mentioning `LF_ERR_C`',
    '## Next',
    '| `LF_ERR_D` | not in the section | |',
  ].join('\n');
  t.same(readmeCodes(doc), ['LF_ERR_A', 'LF_ERR_B'], 'only first-column codes of the section');
  t.throws(() => readmeCodes('# nothing here'), /no "## Error codes" section/);
});
