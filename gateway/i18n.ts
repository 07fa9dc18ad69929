/**
 * The two languages of what installers read: the CLI, and what it reports from the registry's
 * checks and the doctor. Every message a person reads (a line on stdout or stderr, a table
 * heading, an error) is written in English and in Chinese at the place it is written:
 * `tr('device added', '设备已添加')`. `LANG` (or `LC_ALL`, `LC_MESSAGES`) starting with `zh` picks
 * Chinese (zh_CN.UTF-8 on the station's machines); anything else English. --json output is for
 * scripts and stays language-neutral. test/gateway/cli/i18n.test.ts fails when a message lacks
 * either language.
 */

export type Lang = 'en' | 'zh';

/** The language the user's locale asks for. */
export function userLang(env: NodeJS.ProcessEnv = process.env): Lang {
  const locale = env.LC_ALL || env.LC_MESSAGES || env.LANG || '';
  return /^zh/i.test(locale) ? 'zh' : 'en';
}

const lang: Lang = userLang();

export function currentLang(): Lang {
  return lang;
}

/** A message in both languages; the user's is returned. Both must be non-empty. */
export function tr(en: string, zh: string): string {
  return lang === 'zh' ? zh : en;
}

/** A message kept in both languages, for output that carries both (`lianfang doctor --json`). */
export interface Text {
  en: string;
  zh: string;
}

/** Like `tr`, but both texts are kept; both must be non-empty. */
export function both(en: string, zh: string): Text {
  return { en, zh };
}

/** The user's language of a Text. */
export function inUserLang(text: Text): string {
  return lang === 'zh' ? text.zh : text.en;
}
