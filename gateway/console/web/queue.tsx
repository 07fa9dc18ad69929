/**
 * The queue: open alarms by priority then age (duress, panic and intrusion, help), then the open
 * faults. Every item says what it is, where, how long ago and who has it; duress, overdue and
 * cancelled alarms look different at a glance.
 */
import type { ConsoleAlarm, ConsoleFault } from '../contract.js';
import type { Lang } from './i18n.js';
import { fmtDuration, textOr, type T } from './util.js';

/** The kind's label key; a duress alarm shows its badge, and its kind only when that says more. */
export function kindKey(a: ConsoleAlarm): string | null {
  if (a.duress && (a.kind === 'duress' || a.kind === 'panic')) return null;
  return `kind_${a.kind}`;
}

export function Queue(props: {
  alarms: ConsoleAlarm[];
  faults: ConsoleFault[];
  selected: string | null;
  now: number;
  t: T;
  lang: Lang;
  onSelect: (id: string) => void;
}) {
  const { t, now } = props;
  return (
    <ul class="queue" data-testid="queue" role="listbox">
      {props.alarms.length === 0 && props.faults.length === 0 && <li class="queue-empty">{t('queueEmpty')}</li>}
      {props.alarms.map((a) => {
        const cls = ['queue-item', `state-${a.state}`, a.duress ? 'duress' : '', a.overdue ? 'overdue' : '', a.state === 'raised' && !a.takenBy ? 'unhandled' : ''].join(' ');
        return (
          <li
            key={a.alarmId}
            class={cls}
            role="option"
            tabIndex={-1}
            data-testid="queue-item"
            data-alarm-id={a.alarmId}
            data-state={a.state}
            data-kind={a.kind}
            data-duress={String(a.duress)}
            data-overdue={String(a.overdue)}
            data-taken-by={a.takenBy ?? ''}
            data-rev={String(a.rev)}
            aria-selected={props.selected === a.alarmId ? 'true' : 'false'}
            onClick={() => props.onSelect(a.alarmId)}
          >
            <div class="qi-top">
              {a.duress && <span class="badge badge-duress">{t('duressBadge')}</span>}
              {kindKey(a) && <span class="kind">{textOr(t, kindKey(a)!, 'kind_other')}</span>}
              <span class={`badge state-badge state-${a.state}`}>{textOr(t, `state_${a.state}`, 'state_raised')}</span>
              {a.overdue && <span class="badge badge-overdue">{t('overdue')}</span>}
              <span class="age">{fmtDuration((now - Date.parse(a.raisedAt)) / 1000, t)}</span>
            </div>
            <div class="qi-shop">{a.shopName}</div>
            <div class="qi-addr">
              {a.address}
              {a.doorPlate ? ` · ${a.doorPlate}` : ''}
            </div>
            <div class="qi-taken">
              {t('takenByLabel')}
              {': '}
              {a.takenBy ?? t('notTaken')}
            </div>
          </li>
        );
      })}
      {props.faults.map((f) => (
        <li key={f.faultId} class="queue-fault" data-testid="queue-fault" data-fault-id={f.faultId} data-fault={f.fault}>
          <div class="qi-top">
            <span class="badge badge-fault">{t('faultLabel')}</span>
            <span class="kind">{props.lang === 'zh' ? f.text.zh : f.text.en}</span>
            <span class="badge">{textOr(t, `ticket_${f.ticket.state}`, 'ticket_open')}</span>
            <span class="age">{fmtDuration((now - Date.parse(f.raisedAt)) / 1000, t)}</span>
          </div>
          {f.subject && <div class="qi-addr">{f.subject}</div>}
        </li>
      ))}
    </ul>
  );
}
