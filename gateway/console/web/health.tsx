/**
 * Device health and maintenance tickets: every supervised device of the scope with its problems
 * and how long each has lasted, when it was last heard and tested; the open tickets with assign
 * and fix.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Scope } from '../contract.js';
import type { DevicesHealth, Ticket, TicketList } from '../contract-reports.js';
import type { Lang } from './i18n.js';
import { Confirm, Field, Thead } from './dialog.js';
import { ErrorLine, failureText } from './shifts.js';
import { api, ApiFailure, fmtDuration, fmtTime, textOr, type T } from './util.js';

export function Health(props: { scope: Scope; t: T; lang: Lang }) {
  const { t, lang, scope } = props;
  const [health, setHealth] = useState<DevicesHealth | null>(null);
  const [tickets, setTickets] = useState<Ticket[] | null>(null);
  const [error, setError] = useState<{ code: string; text: string } | null>(null);
  const [dialog, setDialog] = useState<{ kind: 'assign' | 'fix'; faultId: string } | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let gone = false;
    const q = encodeURIComponent(scope.id);
    api<DevicesHealth>(`/api/health/devices?scope=${q}`)
      .then((h) => !gone && setHealth(h))
      .catch((e: unknown) => !gone && setError(failureText(e, t, lang)));
    api<TicketList>(`/api/tickets?scope=${q}&open=1`)
      .then((l) => !gone && setTickets(l.tickets))
      .catch((e: unknown) => !gone && setError(failureText(e, t, lang)));
    const id = window.setInterval(() => setTick((n) => n + 1), 30_000);
    return () => {
      gone = true;
      window.clearInterval(id);
    };
  }, [scope.id, tick]);
  const tz = scope.timeZone;
  // A fix refused because the fault still holds (LF_ERR_FAULT_ACTIVE) may be confirmed anyway.
  const [stillHolds, setStillHolds] = useState<{ faultId: string; note: string } | null>(null);
  const send = (kind: 'assign' | 'fix', faultId: string, body: Record<string, unknown>) => {
    setStillHolds(null);
    api(`/api/tickets/${encodeURIComponent(faultId)}/${kind}`, body)
      .then(() => (setError(null), setTick((n) => n + 1)))
      .catch((e: unknown) => {
        setError(failureText(e, t, lang));
        if (kind === 'fix' && e instanceof ApiFailure && e.code === 'LF_ERR_FAULT_ACTIVE') setStillHolds({ faultId, note: String(body.note ?? '') });
      });
  };
  const submit = (v: Record<string, string>) => {
    const d = dialog!;
    setDialog(null);
    send(d.kind, d.faultId, d.kind === 'assign' ? { to: v.to ?? '' } : { note: v.note ?? '' });
  };
  return (
    <section class="panel health">
      <ErrorLine error={error} />
      {stillHolds && (
        <p class="actions">
          <button class="danger" data-ticket-action="fix-force" onClick={() => send('fix', stillHolds.faultId, { note: stillHolds.note, force: true })}>
            {t('fixAnyway')}
          </button>
        </p>
      )}
      <div class="card">
        <h3>
          {t('deviceHealth')}
          {health && (
            <span class="muted">
              {' · '}
              {t('withProblems')}
              {': '}
              {health.withProblems}
            </span>
          )}
        </h3>
        {!health && !error && <p class="muted">{t('loading')}</p>}
        <div class="table-wrap">
          <table data-testid="device-health">
            <Thead t={t} keys={['device', 'shop', 'type', 'problems', 'lastSeen', 'lastTested']} />
            <tbody>
              {health?.devices.map((d) => (
                <tr key={d.deviceId} data-device-id={d.deviceId} data-problem={d.problems.map((p) => p.kind).join(' ')} class={d.problems.length ? 'has-problem' : ''}>
                  <td>{d.deviceId}</td>
                  <td>{d.shopName}</td>
                  <td>
                    {d.type}
                    {' / '}
                    {d.transport}
                  </td>
                  <td>
                    {d.problems.length === 0 && <span class="ok-line">{t('healthy')}</span>}
                    {d.problems.map((p) => (
                      <div key={p.faultId} class="problem" data-kind={p.kind}>
                        {lang === 'zh' ? p.text.zh : p.text.en}
                        {' · '}
                        {fmtDuration(p.forSeconds, t)}
                      </div>
                    ))}
                  </td>
                  <td>{d.lastSeen ? fmtTime(d.lastSeen, tz, lang) : t('never')}</td>
                  <td>{d.lastTested ? fmtTime(d.lastTested, tz, lang) : t('never')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <div class="card">
        <h3>{t('tickets')}</h3>
        {tickets && tickets.length === 0 && <p class="muted">{t('noTickets')}</p>}
        <div class="table-wrap">
          <table data-testid="tickets">
            <Thead t={t} keys={['faultLabel', 'shop', 'raisedAt', 'ticketState', '']} />
            <tbody>
              {tickets?.map((k) => (
                <tr key={k.faultId} data-fault-id={k.faultId} data-ticket={k.ticket.state}>
                  <td>{lang === 'zh' ? k.text.zh : k.text.en}</td>
                  <td>{k.shopName ?? k.subject ?? k.deviceId ?? '—'}</td>
                  <td>{fmtTime(k.raisedAt, tz, lang)}</td>
                  <td>
                    {textOr(t, `ticket_${k.ticket.state}`, 'ticket_open')}
                    {k.ticket.assignedTo ? ` · ${k.ticket.assignedTo}` : ''}
                  </td>
                  <td class="row-actions">
                    {k.ticket.state !== 'fixed' && (
                      <>
                        <button data-ticket-action="assign" onClick={() => setDialog({ kind: 'assign', faultId: k.faultId })}>
                          {t('assign')}
                        </button>
                        <button data-ticket-action="fix" onClick={() => setDialog({ kind: 'fix', faultId: k.faultId })}>
                          {t('fix')}
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      {dialog && (
        <Confirm title={dialog.kind === 'assign' ? t('assign') : t('fix')} t={t} onCancel={() => setDialog(null)} onOk={submit}>
          {dialog.kind === 'assign' ? (
            <Field label={t('assignTo')}>
              <input name="to" maxLength={64} required />
            </Field>
          ) : (
            <Field label={t('fixNote')}>
              <textarea name="note" rows={3} maxLength={1000} required />
            </Field>
          )}
        </Confirm>
      )}
    </section>
  );
}
