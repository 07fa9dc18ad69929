/**
 * The duty officer's console page: signs in state from /api/me, holds the live feed, and lays out
 * the header (scope, who is on duty, connection, language, sign-out), the tabs, and the queue with
 * the selected alarm beside it. Sound follows the queue: an alarm raised and not taken sounds
 * (duress louder) until someone acknowledges or takes it; a lost feed sounds too. The keyboard
 * works the queue without a mouse: j/k or the arrows move, `a` acknowledges, `t` takes.
 */
import './console.css';
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Me, ShiftView } from '../contract.js';
import { pickLang, type Lang } from './i18n.js';
import { Live, queueAlarms, queueFaults, soundFor, type LiveState } from './live.js';
import { Queue } from './queue.js';
import { Detail, type DialogKind } from './detail.js';
import { Shifts } from './shifts.js';
import { Health } from './health.js';
import { StatsTab } from './stats.js';
import { BulletinTab } from './bulletin.js';
import { api, setCsrf, translator } from './util.js';
import { startSound, stopSound, unlockAudio } from './sound.js';

type Tab = 'queue' | 'health' | 'stats' | 'bulletin' | 'shifts';
const TABS: { id: Tab; key: 'tabQueue' | 'tabHealth' | 'tabStats' | 'tabBulletin' | 'tabShifts' }[] = [
  { id: 'queue', key: 'tabQueue' },
  { id: 'shifts', key: 'tabShifts' },
  { id: 'health', key: 'tabHealth' },
  { id: 'stats', key: 'tabStats' },
  { id: 'bulletin', key: 'tabBulletin' },
];

function initialLang(): Lang {
  const stored = localStorage.getItem('lf-lang');
  return stored === 'en' || stored === 'zh' ? stored : pickLang(navigator.languages);
}

function useLive(live: Live): LiveState {
  const [state, setState] = useState(live.state);
  useEffect(() => live.subscribe(() => setState(live.state)), [live]);
  return state;
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => window.clearInterval(id);
  }, [everyMs]);
  return now;
}

function App(props: { me: Me; live: Live }) {
  const { me, live } = props;
  const [lang, setLang] = useState<Lang>(initialLang);
  const t = useMemo(() => translator(lang), [lang]);
  const [scopeId, setScopeId] = useState(me.scopes[0]?.id ?? '');
  const scope = me.scopes.find((s) => s.id === scopeId) ?? me.scopes[0]!;
  const [tab, setTab] = useState<Tab>('queue');
  const [selected, setSelected] = useState<string | null>(null);
  const [dialog, setDialog] = useState<DialogKind>(null);
  const [onDuty, setOnDuty] = useState<ShiftView | null>(null);
  const [dutyTick, setDutyTick] = useState(0);
  const state = useLive(live);
  const now = useNow(1000);

  const alarms = useMemo(() => queueAlarms(state.alarms), [state.alarms, state]);
  const faults = useMemo(() => queueFaults(state.faults), [state.faults]);
  // The feed is down once it was up, or when it has not come up within a few seconds of the start
  // (not in the moment between loading the page and the first connect).
  const [started] = useState(Date.now());
  const down = !state.connected && (state.everConnected || now - started > 3000);
  const sound = soundFor(!down, alarms);
  const current = alarms.find((a) => a.alarmId === selected) ?? null;

  // A dialog belongs to the alarm it was opened for.
  useEffect(() => setDialog(null), [current?.alarmId]);

  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('appTitle');
  }, [lang]);

  useEffect(() => {
    if (sound) startSound(sound);
    else stopSound();
  }, [sound]);

  useEffect(() => live.setScope(scope.id), [scope.id]);

  // Who is on duty, for the header (the shifts tab refreshes it when it changes something).
  useEffect(() => {
    let gone = false;
    api<ShiftView>(`/api/shifts?scope=${encodeURIComponent(scope.id)}`)
      .then((v) => !gone && setOnDuty(v))
      .catch(() => !gone && setOnDuty(null));
    const id = window.setInterval(() => setDutyTick((n) => n + 1), 60_000);
    return () => {
      gone = true;
      window.clearInterval(id);
    };
  }, [scope.id, dutyTick]);

  // The keyboard: the queue without a mouse (not while typing in a field or in a dialog).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      unlockAudio();
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const el = e.target as HTMLElement | null;
      if (el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable)) return;
      if (dialog || document.querySelector('[data-testid=confirm]')) return;
      if (tab !== 'queue') return;
      const idx = alarms.findIndex((a) => a.alarmId === selected);
      const move = (d: number) => {
        if (alarms.length === 0) return;
        const next = idx < 0 ? (d > 0 ? 0 : alarms.length - 1) : Math.min(alarms.length - 1, Math.max(0, idx + d));
        setSelected(alarms[next]!.alarmId);
        document.querySelector(`[data-alarm-id="${CSS.escape(alarms[next]!.alarmId)}"]`)?.scrollIntoView({ block: 'nearest' });
      };
      const target = current ?? alarms[0] ?? null;
      if (e.key === 'ArrowDown' || e.key === 'j') {
        e.preventDefault();
        move(1);
      } else if (e.key === 'ArrowUp' || e.key === 'k') {
        e.preventDefault();
        move(-1);
      } else if (e.key === 'a' && target) {
        e.preventDefault();
        if (!current) setSelected(target.alarmId);
        live.act({ alarmId: target.alarmId, action: 'ack' });
      } else if (e.key === 't' && target) {
        e.preventDefault();
        if (!current) setSelected(target.alarmId);
        live.act({ alarmId: target.alarmId, action: 'take' });
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [alarms, selected, current, dialog, tab]);

  const switchLang = () => {
    const next = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('lf-lang', next);
    setLang(next);
  };
  const logout = () => {
    fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': me.csrf } })
      .catch(() => undefined)
      .finally(() => location.reload());
  };
  const refusal = current ? state.refusals.find((r) => r.alarmId === current.alarmId) : undefined;
  const pending = current ? [...state.pending.values()].some((p) => p.alarmId === current.alarmId && Date.now() - p.at < 3000) : false;

  return (
    <div class="app" data-testid="app" data-connected={String(state.connected)} data-sound={sound} data-lang={lang} data-user={me.user} onClick={unlockAudio}>
      {down && (
        <div class="offline-banner" data-testid="offline-banner" role="alert">
          {t('offline')}
        </div>
      )}
      <header class="top">
        <h1>{t('appTitle')}</h1>
        <label class="scope-pick">
          <span>{t('scope')}</span>
          <select data-testid="scope" value={scope.id} onChange={(e) => (setScopeId((e.target as HTMLSelectElement).value), setSelected(null))}>
            {me.scopes.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <span class="duty-head" data-testid="duty-header">
          {t('onDutyHeader')}
          {': '}
          {onDuty && onDuty.onDuty.length ? onDuty.onDuty.map((d) => d.user).join(', ') : t('nobodyOnDuty')}
        </span>
        <span class={`conn ${state.connected ? 'up' : 'down'}`}>{state.connected ? t('connected') : t('disconnected')}</span>
        <span class="user">{me.user}</span>
        <button data-testid="lang-switch" onClick={switchLang}>
          {t('language')}
        </button>
        <button data-testid="logout" onClick={logout}>
          {t('logout')}
        </button>
      </header>
      <nav class="tabs" role="tablist">
        {TABS.map((x) => (
          <button key={x.id} role="tab" data-tab={x.id} aria-selected={tab === x.id ? 'true' : 'false'} class={tab === x.id ? 'active' : ''} onClick={() => setTab(x.id)}>
            {t(x.key)}
            {x.id === 'queue' && alarms.length > 0 && <span class="count">{alarms.length}</span>}
          </button>
        ))}
      </nav>
      <main class={`main tab-${tab}`}>
        {tab === 'queue' && (
          <div class="split">
            <aside class="left">
              <Queue alarms={alarms} faults={faults} selected={selected} now={now} t={t} lang={lang} onSelect={setSelected} />
            </aside>
            <div class="right">
              {current ? (
                <Detail key={current.alarmId} alarm={current} scope={scope} live={live} refusal={refusal} pending={pending} dialog={dialog} setDialog={setDialog} now={now} t={t} lang={lang} />
              ) : (
                <p class="muted placeholder">{t('selectAlarm')}</p>
              )}
            </div>
          </div>
        )}
        {tab === 'shifts' && <Shifts scope={scope} scopes={me.scopes} t={t} lang={lang} onChange={() => setDutyTick((n) => n + 1)} />}
        {tab === 'health' && <Health scope={scope} t={t} lang={lang} />}
        {tab === 'stats' && <StatsTab scope={scope} t={t} lang={lang} />}
        {tab === 'bulletin' && <BulletinTab scope={scope} t={t} lang={lang} />}
      </main>
    </div>
  );
}

async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  const me = await api<Me>('/api/me');
  setCsrf(me.csrf);
  const live = new Live(me);
  live.start(me.scopes[0]?.id ?? '');
  render(<App me={me} live={live} />, root);
}

void main();
