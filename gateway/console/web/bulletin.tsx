/**
 * The daily bulletin station leaders expect: the day's alarms received, dispatched, real and
 * false, faults opened, fixed and still open, by grid and sector; printable (the print style
 * shows only the bulletin, on white).
 */
import { useEffect, useState } from 'preact/hooks';
import type { Scope } from '../contract.js';
import type { Bulletin } from '../contract-reports.js';
import type { Lang } from './i18n.js';
import { ErrorLine, failureText } from './shifts.js';
import { DayInput, Thead } from './dialog.js';
import { api, dayIn, fmtTime, type T } from './util.js';

export function BulletinTab(props: { scope: Scope; t: T; lang: Lang }) {
  const { t, lang, scope } = props;
  const [day, setDay] = useState(dayIn(scope.timeZone, -1));
  const [b, setB] = useState<Bulletin | null>(null);
  const [error, setError] = useState<{ code: string; text: string } | null>(null);
  useEffect(() => {
    let gone = false;
    api<Bulletin>(`/api/bulletin?${new URLSearchParams({ scope: scope.id, day })}`)
      .then((x) => !gone && (setB(x), setError(null)))
      .catch((e: unknown) => !gone && setError(failureText(e, t, lang)));
    return () => {
      gone = true;
    };
  }, [scope.id, day]);
  const figures = [
    ['received', 'received'],
    ['dispatched', 'dispatched'],
    ['real', 'real'],
    ['false', 'falseAlarms'],
    ['malicious', 'malicious'],
    ['open', 'openAlarms'],
    ['faultsOpened', 'faultsOpened'],
    ['faultsFixed', 'faultsFixed'],
    ['faultsOpen', 'faultsOpen'],
  ] as const;
  return (
    <section class="panel bulletin" data-testid="bulletin">
      <form class="period no-print" onSubmit={(e) => e.preventDefault()}>
        <DayInput label={t('day')} name="day" value={day} onChange={setDay} />
        <button type="button" data-testid="print" onClick={() => window.print()}>
          {t('print')}
        </button>
      </form>
      <ErrorLine error={error} />
      {b && (
        <article class="bulletin-sheet">
          <h2>
            {t('bulletin')}
            {' · '}
            {b.scope.name}
            {' · '}
            {b.day}
          </h2>
          <dl class="figures">
            {figures.map(([field, key]) => (
              <div key={field} class="figure">
                <dt>{t(key)}</dt>
                <dd data-field={field}>{b.totals[field]}</dd>
              </div>
            ))}
          </dl>
          <table class="by-grid" data-testid="by-grid">
            <Thead t={t} keys={['grid', 'sector', 'received', 'dispatched', 'real', 'falseAlarms', 'malicious', 'openAlarms']} />
            <tbody>
              {b.byGrid.length === 0 && (
                <tr>
                  <td colSpan={8} class="muted">
                    {t('none')}
                  </td>
                </tr>
              )}
              {b.byGrid.map((g) => (
                <tr key={`${g.grid}|${g.sector}`} data-grid={g.grid ?? ''} data-sector={g.sector ?? ''}>
                  <td>{g.grid ?? '—'}</td>
                  <td>{g.sector ?? '—'}</td>
                  <td data-field="received">{g.received}</td>
                  <td data-field="dispatched">{g.dispatched}</td>
                  <td data-field="real">{g.real}</td>
                  <td data-field="false">{g.false}</td>
                  <td data-field="malicious">{g.malicious}</td>
                  <td data-field="open">{g.open}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="muted small">
            {t('generatedAt')}
            {' '}
            {fmtTime(b.at, b.timeZone, lang)}
          </p>
        </article>
      )}
    </section>
  );
}
