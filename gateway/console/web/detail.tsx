/**
 * One alarm: the shop's card, who holds it, the action buttons, the neighbours alerted and their
 * answers, the street map and the timeline from the audit trail. The detail is fetched when the
 * alarm is selected and again whenever its rev changes. Dispatch, close and a forced take ask for
 * confirmation; acknowledge does not (speed matters). A refusal from the gateway is shown with
 * its code, and LF_ERR_TAKEN offers to take the alarm over.
 */
import { useEffect, useState } from 'preact/hooks';
import type { AlarmDetail, ConsoleAlarm, Scope } from '../contract.js';
import type { Lang } from './i18n.js';
import type { Live, Refusal } from './live.js';
import { StreetMap } from './map.js';
import { Confirm, Contact, Field, NoteField } from './dialog.js';
import { kindKey } from './queue.js';
import { api, ApiFailure, errorArgs, errorText, fmtDuration, fmtTime, hasText, textOr, type T } from './util.js';

export type DialogKind = 'dispatch' | 'close' | 'force' | null;

export function Detail(props: {
  alarm: ConsoleAlarm;
  scope: Scope;
  live: Live;
  refusal: Refusal | undefined;
  pending: boolean;
  dialog: DialogKind;
  setDialog: (d: DialogKind) => void;
  now: number;
  t: T;
  lang: Lang;
}) {
  const { alarm, t, lang, scope, live } = props;
  const [detail, setDetail] = useState<AlarmDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let gone = false;
    api<AlarmDetail>(`/api/alarms/${encodeURIComponent(alarm.alarmId)}`)
      .then((d) => !gone && (setDetail(d), setError(null)))
      .catch((e: unknown) => !gone && setError(e instanceof ApiFailure ? `${e.code}: ${e.message}` : String(e)));
    return () => {
      gone = true;
    };
  }, [alarm.alarmId, alarm.rev]);
  const act = (action: 'ack' | 'take' | 'dispatch' | 'close', extra: Record<string, unknown> = {}) => live.act({ alarmId: alarm.alarmId, action, ...extra });
  const shop = detail && detail.shop.id === alarm.shopId ? detail.shop : null;
  const refusal = props.refusal;
  const holder = refusal?.code === 'LF_ERR_TAKEN' ? (errorArgs(refusal.code, refusal.message)?.[1] ?? alarm.takenBy) : null;
  const open = alarm.state !== 'closed';
  const names = new Map(detail?.neighbours.map((n) => [n.shopId, n.name]) ?? []);
  return (
    <section
      class={`detail ${alarm.duress ? 'duress' : ''} ${alarm.overdue ? 'overdue' : ''} state-${alarm.state}`}
      data-testid="alarm-detail"
      data-alarm-id={alarm.alarmId}
      data-rev={String(alarm.rev)}
    >
      <header class="detail-head">
        {alarm.duress && <span class="badge badge-duress big">{t('duressBadge')}</span>}
        {kindKey(alarm) && <h2>{textOr(t, kindKey(alarm)!, 'kind_other')}</h2>}
        <span class={`badge state-badge state-${alarm.state}`}>{textOr(t, `state_${alarm.state}`, 'state_raised')}</span>
        {alarm.overdue && <span class="badge badge-overdue">{t('overdue')}</span>}
        <span class="age">
          {t('ageLabel')}
          {' '}
          {fmtDuration((props.now - Date.parse(alarm.raisedAt)) / 1000, t)}
        </span>
        <span class="time">{fmtTime(alarm.raisedAt, scope.timeZone, lang)}</span>
      </header>
      <div class="taken" data-testid="taken-by" data-taken-by={alarm.takenBy ?? ''}>
        {t('takenByLabel')}
        {': '}
        <strong>{alarm.takenBy ?? t('notTaken')}</strong>
        {alarm.patrol && (
          <span class="patrol">
            {' · '}
            {t('patrolLabel')}
            {': '}
            {alarm.patrol}
          </span>
        )}
      </div>
      {open && (
        <div class="actions">
          <button class="act act-ack" data-action="ack" onClick={() => act('ack')} disabled={alarm.state !== 'raised'}>
            {t('actAck')}
          </button>
          <button class="act" data-action="take" onClick={() => act('take')}>
            {t('actTake')}
          </button>
          <button class="act" data-action="dispatch" onClick={() => props.setDialog('dispatch')}>
            {t('actDispatch')}
          </button>
          <button class="act" data-action="close" onClick={() => props.setDialog('close')}>
            {t('actClose')}
          </button>
          {props.pending && <span class="pending">{t('pending')}</span>}
        </div>
      )}
      {refusal && (
        <div class="action-error" role="alert" data-testid="action-error" data-code={refusal.code}>
          <strong>{t('refused')}</strong>
          {' '}
          <code>{refusal.code}</code>
          {' '}
          <span>{errorText(refusal.code, refusal.message, lang)}</span>
          {holder !== null && (
            <button data-testid="force-take" class="danger" onClick={() => props.setDialog('force')}>
              {t('actForceTake')}
            </button>
          )}
          <button onClick={() => live.dismiss(refusal.requestId)}>{t('dismiss')}</button>
        </div>
      )}
      {error && <p class="error">{t('loadFailed')}{': '}{error}</p>}
      <div class="detail-grid">
        <div class="card shop-card" data-testid="shop-card" data-shop-id={alarm.shopId}>
          <h3>{shop?.name ?? alarm.shopName}</h3>
          <dl>
            <dt>{t('address')}</dt>
            <dd>{shop?.address ?? alarm.address}</dd>
            <dt>{t('doorPlate')}</dt>
            <dd>{shop?.doorPlate ?? alarm.doorPlate ?? '—'}</dd>
            <dt>{t('pole')}</dt>
            <dd>{shop?.poleNumber ?? '—'}</dd>
            <dt>{t('owner')}</dt>
            <dd>
              <Contact name={shop?.ownerName} phone={shop?.ownerPhone} />
            </dd>
            <dt>{t('duty')}</dt>
            <dd>
              <Contact name={shop?.dutyName} phone={shop?.dutyPhone} />
            </dd>
            <dt>{t('cameras')}</dt>
            <dd>{shop && shop.cameraIds.length ? shop.cameraIds.join(', ') : '—'}</dd>
            <dt>{t('gridSector')}</dt>
            <dd>
              {shop?.grid ?? '—'}
              {' / '}
              {shop?.sector ?? '—'}
            </dd>
          </dl>
        </div>
        <div class="card">
          <h3>{t('neighbours')}</h3>
          <ul class="neighbours" data-testid="neighbours">
            {detail && detail.neighbours.length === 0 && <li class="muted">{t('noNeighbours')}</li>}
            {detail?.neighbours.map((n) => (
              <li key={n.shopId} data-shop-id={n.shopId} data-reply={n.reply ?? 'none'} class={`reply-row reply-${n.reply ?? 'none'}`}>
                <span class="dot" />
                <span class="n-name">{n.name}</span>
                <span class="n-ring">
                  {t('ring')}
                  {' '}
                  {n.ring}
                </span>
                {n.distanceM !== null && (
                  <span class="n-dist">
                    {n.distanceM}
                    {t('unitMetre')}
                  </span>
                )}
                <span class="n-reply">{t(`reply_${n.reply ?? 'none'}`)}</span>
                {n.repliedAt && <span class="n-time">{fmtTime(n.repliedAt, scope.timeZone, lang, false)}</span>}
              </li>
            ))}
          </ul>
        </div>
        <div class="card map-card">
          <h3>{t('map')}</h3>
          {detail ? <StreetMap detail={detail} t={t} /> : <div class="map" data-testid="map" />}
        </div>
        <div class="card timeline-card">
          <h3>{t('timeline')}</h3>
          <ol class="timeline" data-testid="timeline">
            {detail?.timeline.map((e, i) => (
              <li key={i} data-action={e.action}>
                <time>{fmtTime(e.at, scope.timeZone, lang)}</time>
                <span class="tl-actor">{e.actor}</span>
                <span class="tl-action">{hasText(`action_${e.action}`) ? t(`action_${e.action}` as never) : e.action}</span>
                {e.toState && e.toState !== e.fromState && e.action !== 'raised' && <span class="tl-state">{textOr(t, `state_${e.toState}`, 'state_raised')}</span>}
                <TimelineDetail detail={e.detail} action={e.action} t={t} names={names} />
              </li>
            ))}
          </ol>
        </div>
      </div>
      {props.dialog === 'dispatch' && (
        <Confirm
          title={t('confirmDispatch')}
          t={t}
          onCancel={() => props.setDialog(null)}
          onOk={(v) => {
            props.setDialog(null);
            act('dispatch', { ...(v.patrol ? { patrol: v.patrol } : {}), ...(v.note ? { note: v.note } : {}) });
          }}
        >
          <Field label={t('patrolLabel')}>
            <input name="patrol" maxLength={64} />
          </Field>
          <NoteField t={t} />
        </Confirm>
      )}
      {props.dialog === 'close' && (
        <Confirm
          title={t('confirmClose')}
          t={t}
          onCancel={() => props.setDialog(null)}
          onOk={(v) => {
            props.setDialog(null);
            act('close', { disposition: v.disposition, ...(v.note ? { note: v.note } : {}) });
          }}
        >
          <Field label={t('dispositionLabel')}>
            <select name="disposition">
              {(['real', 'false', 'test', 'malicious'] as const).map((d) => (
                <option key={d} value={d}>
                  {t(`disp_${d}`)}
                </option>
              ))}
            </select>
          </Field>
          <NoteField t={t} />
        </Confirm>
      )}
      {props.dialog === 'force' && (
        <Confirm
          title={t('actForceTake')}
          t={t}
          onCancel={() => props.setDialog(null)}
          onOk={() => {
            props.setDialog(null);
            act('take', { force: true });
          }}
        >
          <p>{t('confirmForce')}</p>
          {holder && (
            <p>
              {t('takenByLabel')}
              {': '}
              <strong>{holder}</strong>
            </p>
          )}
        </Confirm>
      )}
    </section>
  );
}

function TimelineDetail(props: { detail: Record<string, unknown>; action: string; t: T; names: Map<string, string> }) {
  const { detail: d, t } = props;
  const str = (k: string) => (typeof d[k] === 'string' && d[k] ? (d[k] as string) : null);
  const parts: string[] = [];
  if ((props.action === 'take' || props.action === 'ack') && str('from')) parts.push(`${t('takenFrom')}${str('from')}${d.force === true ? ` (${t('forced')})` : ''}`);
  if (props.action === 'delivered' && str('scopeId')) parts.push(`${t('deliveredTo')}: ${str('scopeName') ?? str('scopeId')}`);
  if (props.action === 'handover') parts.push(`${t('handedOver')}: ${str('from') ?? '—'} → ${str('to') ?? '—'}`);
  if (str('patrol')) parts.push(`${t('patrolLabel')}: ${str('patrol')}`);
  if (str('disposition')) parts.push(textOr(t, `disp_${str('disposition')}`, 'disp_real'));
  if (str('reply')) parts.push(`${props.names.get(str('shopId') ?? '') ?? str('shopId') ?? ''} ${textOr(t, `reply_${str('reply')}`, 'reply_none')}`);
  if (typeof d.ring === 'number') parts.push(`${t('ring')} ${d.ring}`);
  if (str('note')) parts.push(`${t('note')}: ${str('note')}`);
  if (parts.length === 0) return null;
  return <span class="tl-detail">{parts.join(' · ')}</span>;
}
