/**
 * The shift: who is on duty in each scope the officer sees, signing on, and handing over to the
 * next shift with a note (the last note is kept and shown). A refusal of the API is shown as such.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Scope, ShiftView } from '../contract.js';
import type { Lang } from './i18n.js';
import { Confirm, Field } from './dialog.js';
import { api, ApiFailure, errorText, fmtTime, type T } from './util.js';

export function failureText(e: unknown, t: T, lang: Lang): { code: string; text: string } {
  if (e instanceof ApiFailure) return { code: e.code, text: e.status === 404 ? t('notAvailable') : errorText(e.code, e.message, lang) };
  return { code: 'LF_ERR_NETWORK', text: t('loadFailed') };
}

export function ErrorLine(props: { error: { code: string; text: string } | null }) {
  if (!props.error) return null;
  return (
    <p class="error" role="alert" data-testid="api-error" data-code={props.error.code}>
      <code>{props.error.code}</code> {props.error.text}
    </p>
  );
}

export function Shifts(props: { scope: Scope; scopes: Scope[]; t: T; lang: Lang; onChange: () => void }) {
  const { t, lang, scope } = props;
  const [views, setViews] = useState<Record<string, ShiftView>>({});
  const [error, setError] = useState<{ code: string; text: string } | null>(null);
  const [dialog, setDialog] = useState(false);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let gone = false;
    const list = [scope, ...props.scopes.filter((s) => s.id !== scope.id)];
    Promise.all(list.map((s) => api<ShiftView>(`/api/shifts?scope=${encodeURIComponent(s.id)}`).then((v) => [s.id, v] as const)))
      .then((pairs) => !gone && (setViews(Object.fromEntries(pairs)), setError(null)))
      .catch((e: unknown) => !gone && setError(failureText(e, t, lang)));
    return () => {
      gone = true;
    };
  }, [scope.id, tick]);
  const post = (path: string, body: Record<string, unknown>) =>
    api(path, body)
      .then(() => {
        setError(null);
        setTick((n) => n + 1);
        props.onChange();
      })
      .catch((e: unknown) => setError(failureText(e, t, lang)));
  const mine = views[scope.id];
  return (
    <section class="panel shifts">
      <ErrorLine error={error} />
      <div class="card">
        <h3>{t('onDuty')}</h3>
        <ul class="on-duty" data-testid="on-duty">
          {props.scopes
            .filter((s) => views[s.id])
            .map((s) => (
              <li key={s.id} data-scope={s.id}>
                <strong>{s.name}</strong>
                {': '}
                <DutyUsers list={views[s.id]!.onDuty} zone={s.timeZone} t={t} lang={lang} />
                {(views[s.id]!.compounds ?? []).length > 0 && (
                  <ul class="on-duty-compounds">
                    {views[s.id]!.compounds!.map((c) => (
                      <li key={c.id} data-scope={c.id}>
                        {c.name}
                        {': '}
                        <DutyUsers list={c.onDuty} zone={s.timeZone} t={t} lang={lang} />
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
        </ul>
        {mine?.mine && <p class="ok-line">{t('youAreOnDuty')}</p>}
        <div class="actions">
          <button data-testid="sign-on" class="primary" onClick={() => void post('/api/shifts/sign-on', { scope: scope.id })}>
            {t('signOn')}
          </button>
          <button data-testid="hand-over" onClick={() => setDialog(true)}>
            {t('handOver')}
          </button>
        </div>
      </div>
      <div class="card" data-testid="last-handover">
        <h3>{t('lastHandover')}</h3>
        {mine?.lastHandover ? (
          <div>
            <p class="muted">
              {mine.lastHandover.from}
              {' → '}
              {mine.lastHandover.to ?? '—'}
              {' · '}
              {fmtTime(mine.lastHandover.at, scope.timeZone, lang)}
            </p>
            <p class="note-text">{mine.lastHandover.note}</p>
          </div>
        ) : (
          <p class="muted">{t('noHandover')}</p>
        )}
      </div>
      {dialog && (
        <Confirm
          title={t('handOver')}
          t={t}
          onCancel={() => setDialog(false)}
          onOk={(v) => {
            setDialog(false);
            void post('/api/shifts/hand-over', { scope: scope.id, note: v.note ?? '' });
          }}
        >
          <Field label={t('handOverNote')}>
            <textarea name="note" rows={5} maxLength={2000} />
          </Field>
        </Confirm>
      )}
    </section>
  );
}

/** Who is on duty in one scope, each since when (or that nobody is). */
function DutyUsers(props: { list: { user: string; since: string }[]; zone: string; t: T; lang: Lang }) {
  const { t } = props;
  if (props.list.length === 0) return <span class="muted">{t('nobodyOnDuty')}</span>;
  return (
    <>
      {props.list.map((d) => (
        <span key={d.user} class="duty-user" data-user={d.user}>
          {d.user}
          {' ('}
          {t('since')}
          {' '}
          {fmtTime(d.since, props.zone, props.lang)}
          {')'}
        </span>
      ))}
    </>
  );
}
