/**
 * What every part of the console page shares: the API call (same-origin cookie, CSRF header on
 * POST, a 401 sends the officer back to the login page), times in the scope's zone, durations and
 * the gateway's refusals in the page's language.
 */
import { TEXT, type Lang, type TextKey } from './i18n.js';
import { ERRORS } from '../../errors.js';

let csrf = '';
export function setCsrf(token: string): void {
  csrf = token;
}

/** A refusal of the API (HTTP 4xx/5xx) with the gateway's code. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(path: string, body?: Record<string, unknown>): Promise<T> {
  const res = await fetch(path, {
    method: body ? 'POST' : 'GET',
    credentials: 'same-origin',
    headers: body ? { 'content-type': 'application/json', 'x-csrf-token': csrf } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401) {
    location.reload();
    throw new ApiFailure(401, 'LF_ERR_NOT_SIGNED_IN', 'not signed in');
  }
  const json = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
  if (!res.ok) throw new ApiFailure(res.status, json.code ?? `HTTP_${res.status}`, json.message ?? res.statusText);
  return json as T;
}

export type T = (key: TextKey) => string;
export const translator = (lang: Lang): T => (key) => TEXT[key][lang];

/** Is `key` a key of the text table (for keys made from data, such as `kind_${kind}`)? */
export function hasText(key: string): key is TextKey {
  return Object.prototype.hasOwnProperty.call(TEXT, key);
}

export function textOr(t: T, key: string, fallback: TextKey): string {
  return hasText(key) ? t(key) : t(fallback);
}

const fmts = new Map<string, Intl.DateTimeFormat>();
/** An ISO time as the scope's clock shows it (with the date when `withDate`). */
export function fmtTime(iso: string | null | undefined, timeZone: string, lang: Lang, withDate = true): string {
  if (!iso) return '';
  const key = `${timeZone}|${lang}|${withDate}`;
  let f = fmts.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', {
        timeZone,
        ...(withDate ? { year: 'numeric', month: '2-digit', day: '2-digit' } : {}),
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hour12: false,
      });
    } catch {
      f = new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'short', timeStyle: 'medium' });
    }
    fmts.set(key, f);
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : f.format(d);
}

/** Today's date (YYYY-MM-DD) in a zone, `offsetDays` added. */
export function dayIn(timeZone: string, offsetDays = 0): string {
  const d = new Date(Date.now() + offsetDays * 86_400_000);
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  } catch {
    return d.toISOString().slice(0, 10);
  }
}

/** A duration in seconds as "1时5分" / "1h 5m". */
export function fmtDuration(seconds: number, t: T): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const parts: string[] = [];
  if (d) parts.push(`${d}${t('unitD')}`);
  if (h) parts.push(`${h}${t('unitH')}`);
  if (m && !d) parts.push(`${m}${t('unitM')}`);
  if (!d && !h) parts.push(`${sec}${t('unitS')}`);
  return parts.join(' ');
}

/** A gateway refusal (code + English message) in the page's language, filled with the same values. */
export function errorText(code: string, message: string, lang: Lang): string {
  const def = (ERRORS as Record<string, { message: string; zh: { message: string } }>)[code];
  if (!def || lang === 'en') return message;
  const args = errorArgs(code, message);
  if (!args) return def.zh.message.replace(/%(\d+\$)?s/g, '…');
  let i = 0;
  return def.zh.message.replace(/%(?:(\d+)\$)?s/g, (_m, n: string | undefined) => args[n ? Number(n) - 1 : i++] ?? '');
}

/** The values of an English message, read back against its template (null: it does not match). */
export function errorArgs(code: string, message: string): string[] | null {
  const def = (ERRORS as Record<string, { message: string }>)[code];
  if (!def) return null;
  const re = new RegExp(`^${def.message.split('%s').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('(.*?)')}$`);
  const m = re.exec(message);
  return m ? m.slice(1) : null;
}
