/**
 * Every string the console shows a person, in Chinese (the default) and English. The type makes a
 * string without either language a compile error; a test also checks that none is empty and that
 * the page's components show no literal text outside this table.
 */
export type Lang = 'zh' | 'en';

export const TEXT = {
  appTitle: { zh: '联防接警台', en: 'Lianfang alarm console' },
  loginTitle: { zh: '接警台登录', en: 'Sign in to the alarm console' },
  username: { zh: '账号', en: 'Username' },
  password: { zh: '密码', en: 'Password' },
  signIn: { zh: '登录', en: 'Sign in' },
  signingIn: { zh: '正在登录…', en: 'Signing in…' },
  loginFailed: { zh: '账号或密码错误', en: 'Wrong username or password' },
  loginThrottled: { zh: '尝试次数过多，请稍后再试', en: 'Too many attempts; try again shortly' },
  loginRefused: { zh: '此账号不能使用接警台', en: 'This account may not use the alarm console' },
  loginError: { zh: '无法连接网关', en: 'Cannot reach the gateway' },
  loginHint: { zh: '账号由管理员用 lianfang user add 创建', en: 'Accounts are created by an admin with lianfang user add' },
  language: { zh: 'English', en: '中文' },
} as const satisfies Record<string, Record<Lang, string>>;

export type TextKey = keyof typeof TEXT;

/** The language an Accept-Language header (or navigator.languages) asks for: zh unless English comes first. */
export function pickLang(accept: string | readonly string[] | undefined): Lang {
  const list = typeof accept === 'string' ? accept.split(',').map((s) => s.split(';')[0]!.trim()) : (accept ?? []);
  for (const l of list) {
    const low = l.toLowerCase();
    if (low.startsWith('zh')) return 'zh';
    if (low.startsWith('en')) return 'en';
  }
  return 'zh';
}

export function text(lang: Lang, key: TextKey): string {
  return TEXT[key][lang];
}
