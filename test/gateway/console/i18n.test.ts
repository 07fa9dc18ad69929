/**
 * The console page's text: every entry of the text table has both languages, and the page's
 * components show no literal text of their own (every visible string goes through t(...)) and
 * never write HTML (shop names and notes are text, so `<img src=x onerror=…>` shows as text).
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEXT, pickLang } from '../../../gateway/console/web/i18n.js';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'gateway', 'console', 'web');

/** Literal text between JSX tags: `>text<` with a letter or a CJK character, no expression in it. */
export function literalTexts(source: string): string[] {
  const found: string[] = [];
  const re = /(?<![=-])>([^<>{}()=;`'"]*[A-Za-z\u3400-\u9fff][^<>{}()=;`'"]*)<\/?[A-Za-z]/g;
  for (const m of source.matchAll(re)) found.push(m[1]!.trim());
  return found;
}

t.test('every text has a non-empty Chinese and English version', async (t) => {
  const keys = Object.keys(TEXT);
  t.ok(keys.length > 50, 'the console has its texts in the table');
  for (const [key, v] of Object.entries(TEXT) as [string, { zh: string; en: string }][]) {
    t.ok(v.zh.trim().length > 0, `${key}: zh`);
    t.ok(v.en.trim().length > 0, `${key}: en`);
  }
  t.equal(TEXT.duressBadge.zh, '胁迫报警');
  t.equal(TEXT.state_cancelled.zh, '已撤销');
});

t.test('the scan finds literal text where there is some', async (t) => {
  t.same(literalTexts('<p class="x">hello</p>'), ['hello']);
  t.same(literalTexts('<span>\n  报警\n</span>'), ['报警']);
  t.same(literalTexts('<p>{t("ok")}</p><b>{" · "}</b>'), []);
  t.same(literalTexts('xs.map((s) => api<Shift>(s))'), [], 'an arrow is not a tag');
});

t.test("the page's components show no literal text and write no HTML", async (t) => {
  const files = readdirSync(WEB).filter((f) => f.endsWith('.tsx'));
  t.ok(files.includes('app.tsx') && files.length >= 5, 'the components are there');
  for (const f of files) {
    const src = readFileSync(join(WEB, f), 'utf8');
    t.same(literalTexts(src), [], `${f}: no text outside t(...)`);
    t.notMatch(src, /dangerouslySetInnerHTML|innerHTML|outerHTML|insertAdjacentHTML|document\.write/, `${f}: no HTML written`);
  }
  for (const f of readdirSync(WEB).filter((f) => f.endsWith('.ts') && f !== 'login.ts')) {
    t.notMatch(readFileSync(join(WEB, f), 'utf8'), /dangerouslySetInnerHTML|\.innerHTML|outerHTML|insertAdjacentHTML/, `${f}: no HTML written`);
  }
});

t.test('the language follows the browser, Chinese by default', async (t) => {
  t.equal(pickLang(['en-US', 'zh-CN']), 'en');
  t.equal(pickLang(['fr-FR']), 'zh');
  t.equal(pickLang(undefined), 'zh');
});
