/**
 * Statistics of a chosen period: alarms per day by kind, the false-alarm share by shop with those
 * over the threshold flagged, time to acknowledge, time to the first neighbour's answer, faults
 * opened and fixed; each chart with its figures in a table, and the alarms as CSV.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Scope } from '../contract.js';
import type { DurationStats, Stats } from '../contract-reports.js';
import type { Lang } from './i18n.js';
import { BarChart, COLORS } from './chart.js';
import { ErrorLine, failureText } from './shifts.js';
import { DayInput, Thead } from './dialog.js';
import { api, dayIn, type T } from './util.js';

export function StatsTab(props: { scope: Scope; t: T; lang: Lang }) {
  const { t, lang, scope } = props;
  const [from, setFrom] = useState(dayIn(scope.timeZone, -6));
  const [to, setTo] = useState(dayIn(scope.timeZone));
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<{ code: string; text: string } | null>(null);
  useEffect(() => {
    let gone = false;
    const q = new URLSearchParams({ scope: scope.id, from, to });
    api<Stats>(`/api/stats?${q}`)
      .then((s) => !gone && (setStats(s), setError(null)))
      .catch((e: unknown) => !gone && setError(failureText(e, t, lang)));
    return () => {
      gone = true;
    };
  }, [scope.id, from, to]);
  const csv = `/api/alarms.csv?${new URLSearchParams({ scope: scope.id, from, to })}`;
  const kinds = ['duress', 'panic', 'intrusion', 'help'] as const;
  const kindText = { duress: t('kind_duress'), panic: t('kind_panic'), intrusion: t('kind_intrusion'), help: t('kind_help') };
  return (
    <section class="panel stats" data-testid="stats">
      <form class="period" onSubmit={(e) => e.preventDefault()}>
        <DayInput label={t('from')} name="from" value={from} onChange={setFrom} />
        <DayInput label={t('to')} name="to" value={to} onChange={setTo} />
        <a class="button" data-testid="csv-export" href={csv} download>
          {t('csvExport')}
        </a>
      </form>
      <ErrorLine error={error} />
      {!stats && !error && <p class="muted">{t('loading')}</p>}
      {stats && (
        <div class="stats-grid">
          <div class="card" data-chart="per-day">
            <h3>{t('chartPerDay')}</h3>
            <BarChart
              name="per-day"
              stacked
              labels={stats.perDay.map((d) => d.day)}
              datasets={kinds.map((k) => ({ label: kindText[k], data: stats.perDay.map((d) => d[k]), backgroundColor: COLORS[k] }))}
            />
            <div class="table-wrap">
              <table data-testid="stats-table-per-day">
                <Thead t={t} keys={['day', 'kind_duress', 'kind_panic', 'kind_intrusion', 'kind_help', 'total']} />
                <tbody>
                  {stats.perDay.map((d) => (
                    <tr key={d.day} data-day={d.day}>
                      <td data-field="day">{d.day}</td>
                      {kinds.map((k) => (
                        <td key={k} data-field={k}>
                          {d[k]}
                        </td>
                      ))}
                      <td data-field="total">{d.panic + d.intrusion + d.help + d.duress}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
          <div class="card" data-chart="false-share">
            <h3>
              {t('chartFalseShare')}
              <span class="muted">
                {' · '}
                {t('threshold')}
                {' '}
                {stats.threshold.ratePercent}
                {'%'}
              </span>
            </h3>
            <BarChart
              name="false-share"
              horizontal
              labels={stats.falseShare.map((s) => s.name ?? s.shopId)}
              datasets={[
                {
                  label: t('share'),
                  data: stats.falseShare.map((s) => s.sharePercent ?? 0),
                  backgroundColor: stats.falseShare.map((s) => (s.flagged ? COLORS.flag : COLORS.grey)),
                },
              ]}
            />
            <div class="table-wrap">
              <table data-testid="stats-table-false-share">
                <Thead t={t} keys={['shop', 'total', 'realCount', 'falseCount', 'malicious', 'share', 'flagged']} />
                <tbody>
                  {stats.falseShare.map((s) => (
                    <tr key={s.shopId} data-shop-id={s.shopId} data-flagged={String(s.flagged)} class={s.flagged ? 'flagged' : ''}>
                      <td data-field="name">{s.name ?? s.shopId}</td>
                      <td data-field="total">{s.total}</td>
                      <td data-field="real">{s.real}</td>
                      <td data-field="false">{s.false}</td>
                      <td data-field="malicious">{s.malicious}</td>
                      <td data-field="sharePercent">{s.sharePercent ?? '—'}</td>
                      <td data-field="flagged">{s.flagged ? t('yes') : t('no')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
          <DurationCard name="ack-time" title={t('chartAck')} d={stats.ackSeconds} t={t} />
          <DurationCard name="first-reply" title={t('chartFirstReply')} d={stats.firstReplySeconds} t={t} />
          <div class="card" data-chart="faults">
            <h3>{t('chartFaults')}</h3>
            <BarChart
              name="faults"
              labels={stats.faults.perDay.map((d) => d.day)}
              datasets={[
                { label: t('opened'), data: stats.faults.perDay.map((d) => d.opened), backgroundColor: COLORS.intrusion },
                { label: t('fixed'), data: stats.faults.perDay.map((d) => d.fixed), backgroundColor: COLORS.ok },
              ]}
            />
            <div class="table-wrap">
              <table data-testid="stats-table-faults">
                <Thead t={t} keys={['day', 'opened', 'fixed']} />
                <tbody>
                  {stats.faults.perDay.map((d) => (
                    <tr key={d.day} data-day={d.day}>
                      <td data-field="day">{d.day}</td>
                      <td data-field="opened">{d.opened}</td>
                      <td data-field="fixed">{d.fixed}</td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  <tr data-day="total">
                    <th>{t('total')}</th>
                    <td data-field="openedTotal">{stats.faults.opened}</td>
                    <td data-field="fixedTotal">{stats.faults.fixed}</td>
                  </tr>
                </tfoot>
              </table>
            </div>
          </div>
        </div>
      )}
    </section>
  );
}

function DurationCard(props: { name: string; title: string; d: DurationStats; t: T }) {
  const { d, t } = props;
  const cell = (v: number | null) => (v === null ? '—' : String(v));
  return (
    <div class="card" data-chart={props.name}>
      <h3>{props.title}</h3>
      <BarChart
        name={props.name}
        labels={[t('p50'), t('p90'), t('max')]}
        datasets={[{ label: props.title, data: [d.p50 ?? 0, d.p90 ?? 0, d.max ?? 0], backgroundColor: [COLORS.ok, COLORS.intrusion, COLORS.panic] }]}
      />
      <div class="table-wrap">
        <table data-testid={`stats-table-${props.name}`}>
          <Thead t={t} keys={['count', 'p50', 'p90', 'max']} />
          <tbody>
            <tr>
              <td data-field="n">{d.n}</td>
              <td data-field="p50">{cell(d.p50)}</td>
              <td data-field="p90">{cell(d.p90)}</td>
              <td data-field="max">{cell(d.max)}</td>
            </tr>
          </tbody>
        </table>
      </div>
    </div>
  );
}
