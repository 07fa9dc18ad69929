/**
 * Every message a person reads from the CLI is in English and in Chinese: each error code has a
 * Chinese message and remedy with the same placeholders, each `tr(en, zh)` in the CLI's source has
 * both texts (the Chinese one in Chinese), and LANG picks the language of a real child process.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS } from '../../../gateway/errors.js';
import { userLang } from '../../../gateway/i18n.js';
import { cli, tempDataDir } from '../../helpers/gateway.js';

const CJK = /[\u3400-\u9fff]/;
const placeholders = (s: string) => (s.match(/%(?:\d\$)?s/g) ?? []).length;

t.test('every error code has a Chinese message and remedy with the same placeholders', async (t) => {
  for (const [code, def] of Object.entries(ERRORS)) {
    t.ok(CJK.test(def.zh.message), `${code}: the Chinese message is Chinese`);
    t.ok(CJK.test(def.zh.remedy) || def.zh.remedy === def.remedy, `${code}: the Chinese remedy is Chinese`);
    t.equal(placeholders(def.zh.message), placeholders(def.message), `${code}: as many placeholders in both languages`);
  }
});

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

t.test('every tr() and both() in the CLI and the doctor has an English and a Chinese text', async (t) => {
  const lit = String.raw`(?:'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|` + '`' + String.raw`(?:\\.|[^` + '`' + String.raw`\\])*` + '`)';
  const call = new RegExp(String.raw`\b(?:tr|both)\(\s*(${lit})\s*,\s*(${lit})\s*,?\s*\)`, 'g');
  let calls = 0;
  // Every source of the gateway: the CLI, and what it reports from the registry and the doctor's checks.
  const files = sources(join(import.meta.dirname, '../../../gateway'));
  for (const file of files) {
    const src = readFileSync(file, 'utf8').replace(/export function (?:tr|both)\(/g, '');
    const all = (src.match(/\b(?:tr|both)\(/g) ?? []).length;
    const matched = [...src.matchAll(call)];
    t.equal(matched.length, all, `${file}: every tr() takes two literal texts`);
    for (const m of matched) {
      t.ok(m[1]!.length > 2, `${file}: English text of ${m[0].slice(0, 60)}`);
      t.ok(CJK.test(m[2]!), `${file}: Chinese text of ${m[0].slice(0, 60)}`);
    }
    calls += matched.length;
  }
  t.ok(calls > 0, 'the CLI has translated messages');
});

t.test('LANG picks the language', async (t) => {
  t.equal(userLang({ LANG: 'zh_CN.UTF-8' }), 'zh');
  t.equal(userLang({ LANG: 'en_US.UTF-8' }), 'en');
  t.equal(userLang({ LANG: 'zh_CN.UTF-8', LC_ALL: 'C' }), 'en', 'LC_ALL wins');
  t.equal(userLang({}), 'en');
  const data = tempDataDir(t);
  const zh = await cli(['shop', 'show', 'NOPE', '--data', data], { LANG: 'zh_CN.UTF-8' });
  t.equal(zh.code, 2);
  t.match(zh.stderr, /^错误 LF_ERR_NOT_FOUND: shop NOPE 不存在 — 处理: \S.*\n$/);
  const en = await cli(['shop', 'show', 'NOPE', '--data', data], { LANG: 'en_US.UTF-8' });
  t.match(en.stderr, /^error LF_ERR_NOT_FOUND: shop NOPE does not exist — remedy: \S.*\n$/);
});

/** The argument text of a call whose '(' is just before `i`, strings and templates kept whole. */
function argumentAt(src: string, i: number): string {
  let depth = 1;
  let out = '';
  while (i < src.length && depth > 0) {
    const c = src[i]!;
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (depth > 0) out += c;
    i++;
  }
  return out;
}

/** `text` without its tr()/both() calls and without the ${…} of its templates. */
function untranslatedPart(text: string): string {
  let out = '';
  let i = 0;
  const call = /\b(?:tr|both)\(/g;
  for (let m = call.exec(text); m; m = call.exec(text)) {
    out += text.slice(i, m.index);
    i = m.index + m[0].length + argumentAt(text, m.index + m[0].length).length + 1;
    call.lastIndex = i;
  }
  out += text.slice(i);
  // Drop ${…} (balanced), then comparisons with a literal (a value, not a message).
  let flat = '';
  for (let k = 0, depth = 0; k < out.length; k++) {
    if (depth === 0 && out[k] === '$' && out[k + 1] === '{') {
      depth = 1;
      k++;
      continue;
    }
    if (depth > 0) {
      if (out[k] === '{') depth++;
      if (out[k] === '}') depth--;
      continue;
    }
    flat += out[k];
  }
  return flat.replace(/[!=]==\s*(['"`])(?:\\.|(?!\1).)*\1/g, '');
}

t.test('what the CLI writes for a person to read goes through tr()', async (t) => {
  let writes = 0;
  for (const file of sources(join(import.meta.dirname, '../../../gateway/cli'))) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:process\.(?:stdout|stderr)\.write|\bnote|\bwarn)\(/g)) {
      writes++;
      const rest = untranslatedPart(argumentAt(src, m.index + m[0].length));
      const words = [...rest.matchAll(/'((?:\\.|[^'\\])*)'|"((?:\\.|[^"\\])*)"|`((?:\\.|[^`\\])*)`/g)]
        .map((l) => (l[1] ?? l[2] ?? l[3])!.replace(/\\n/g, ' '))
        // Words for a person; a lone lowercase token ('gbk', 'utf8') is a value handed on, not a message.
        .filter((l) => /[A-Za-z]{3,}/.test(l) && !/^[a-z0-9._-]+$/.test(l.trim()));
      const line = src.slice(0, m.index).split('\n').length;
      t.same(words, [], `${file}:${line}: English-only text written (wrap it in tr(en, zh))`);
    }
  }
  t.ok(writes > 50, `${writes} writes checked`);
});
