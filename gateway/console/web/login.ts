/**
 * The login page's script. Without it the form posts and the gateway redirects; with it the form
 * signs in without leaving the page, so the click that signs in also unlocks the alarm sound, and
 * the console's script is then loaded into this same document.
 */
import './login.css';
import { pickLang, text, type Lang, type TextKey } from './i18n.js';
import { unlockAudio } from './sound.js';

const stored = localStorage.getItem('lf-lang');
let lang: Lang = stored === 'en' || stored === 'zh' ? stored : pickLang(navigator.languages);

function render(): void {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = text(lang, 'loginTitle');
  for (const el of document.querySelectorAll<HTMLElement>('[data-t]')) el.textContent = text(lang, el.dataset.t as TextKey);
}

const form = document.getElementById('login-form') as HTMLFormElement | null;
const error = document.getElementById('login-error')!;
const submit = document.getElementById('login-submit') as HTMLButtonElement;

document.getElementById('lang-switch')?.addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('lf-lang', lang);
  render();
});

form?.addEventListener('submit', (ev) => {
  ev.preventDefault();
  unlockAudio();
  const data = new FormData(form);
  submit.disabled = true;
  submit.textContent = text(lang, 'signingIn');
  error.textContent = '';
  fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: data.get('username'), password: data.get('password') }),
    credentials: 'same-origin',
  })
    .then(async (res) => {
      if (res.ok) {
        const css = document.createElement('link');
        css.rel = 'stylesheet';
        css.href = '/app/console.css';
        document.head.append(css);
        const s = document.createElement('script');
        s.type = 'module';
        s.src = '/app/console.js';
        document.body.className = '';
        document.body.innerHTML = '<div id="app"></div>';
        document.head.append(s);
        history.replaceState(null, '', '/');
        return;
      }
      const body = (await res.json().catch(() => ({}))) as { code?: string };
      error.textContent = text(lang, body.code === 'LF_ERR_LOGIN_THROTTLED' ? 'loginThrottled' : body.code === 'LF_ERR_SCOPE' ? 'loginRefused' : 'loginFailed');
    })
    .catch(() => (error.textContent = text(lang, 'loginError')))
    .finally(() => {
      submit.disabled = false;
      submit.textContent = text(lang, 'signIn');
      (document.getElementById('password') as HTMLInputElement | null)?.select();
    });
});

render();
