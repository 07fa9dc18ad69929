/**
 * The two HTML documents the console serves: the login page (to anyone; it works without script,
 * and with it signs in without leaving the page so that the click also unlocks the alarm sound)
 * and the page's shell (to a session). Both are static apart from the language; every text is
 * escaped, and the Content-Security-Policy allows only this gateway's own scripts.
 */
import { pickLang, text, type Lang, type TextKey } from './web/i18n.js';
import { escapeMarkup as escapeHtml } from '../escape.js';


/**
 * The tab's icon, inline (the CSP's img-src allows data:): a red shield with 联. Without one the
 * browser asks for /favicon.ico, which the console does not serve.
 */
const ICON =
  'data:image/svg+xml,' +
  encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M16 1 3 6v9c0 8 5.5 13.5 13 16 7.5-2.5 13-8 13-16V6z" fill="#c62828"/><text x="16" y="22" font-size="15" text-anchor="middle" fill="#fff" font-family="sans-serif">联</text></svg>',
  );

function head(lang: Lang, title: TextKey, assets: string): string {
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}" data-theme="dark">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark light">
<title>${escapeHtml(text(lang, title))}</title>
<link rel="icon" href="${ICON}">
${assets}
</head>`;
}

/** The login form: fields `username` and `password`, posted to /login. */
export function loginPage(acceptLanguage: string | undefined, error?: 'failed'): string {
  const lang = pickLang(acceptLanguage);
  const t = (k: TextKey) => escapeHtml(text(lang, k));
  return `${head(lang, 'loginTitle', '<link rel="stylesheet" href="/app/login.css"><script type="module" src="/app/login.js"></script>')}
<body class="login">
<main class="login-box">
<h1 data-t="appTitle">${t('appTitle')}</h1>
<form method="post" action="/login" id="login-form" autocomplete="on">
<label><span data-t="username">${t('username')}</span><input name="username" id="username" autocomplete="username" required maxlength="64" autofocus></label>
<label><span data-t="password">${t('password')}</span><input name="password" id="password" type="password" autocomplete="current-password" required maxlength="256"></label>
<p class="login-error" id="login-error" role="alert">${error ? t('loginFailed') : ''}</p>
<button type="submit" id="login-submit" data-t="signIn">${t('signIn')}</button>
</form>
<p class="login-hint" data-t="loginHint">${t('loginHint')}</p>
<button type="button" class="lang-switch" id="lang-switch" data-t="language">${t('language')}</button>
</main>
</body>
</html>
`;
}

/** The console's shell: the page's script builds everything inside #app. */
export function appPage(acceptLanguage: string | undefined): string {
  const lang = pickLang(acceptLanguage);
  return `${head(lang, 'appTitle', '<link rel="stylesheet" href="/app/console.css"><script type="module" src="/app/console.js"></script>')}
<body><div id="app"></div></body>
</html>
`;
}
