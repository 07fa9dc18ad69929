/**
 * The one confirmation dialog of the page: a form with the fields an action needs, OK and Cancel.
 * Escape and Cancel close it; OK hands the fields' values to the caller.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { T } from './util.js';
import type { TextKey } from './i18n.js';

export function Confirm(props: { title: string; t: T; onOk: (values: Record<string, string>) => void; onCancel: () => void; children?: ComponentChildren }) {
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => {
    const first = form.current?.querySelector<HTMLElement>('input, select, textarea, button');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        props.onCancel();
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => document.removeEventListener('keydown', onKey, true);
  }, []);
  const submit = (e: Event) => {
    e.preventDefault();
    const values: Record<string, string> = {};
    for (const [k, v] of new FormData(form.current!)) values[k] = String(v);
    props.onOk(values);
  };
  return (
    <div class="overlay">
      <form class="dialog" role="dialog" aria-modal="true" data-testid="confirm" ref={form} onSubmit={submit}>
        <h2>{props.title}</h2>
        {props.children}
        <div class="dialog-buttons">
          <button type="submit" class="primary" data-testid="confirm-ok">
            {props.t('ok')}
          </button>
          <button type="button" data-testid="confirm-cancel" onClick={props.onCancel}>
            {props.t('cancel')}
          </button>
        </div>
      </form>
    </div>
  );
}

export function Field(props: { label: string; children: ComponentChildren }) {
  return (
    <label class="field">
      <span>{props.label}</span>
      {props.children}
    </label>
  );
}

/** A table's heading row: one column per text key (an empty key: a column without a heading). */
export function Thead(props: { t: T; keys: (TextKey | '')[] }) {
  return (
    <thead>
      <tr>
        {props.keys.map((k, i) => (
          <th key={i}>{k ? props.t(k) : null}</th>
        ))}
      </tr>
    </thead>
  );
}

/** A person and their phone (a tel: link), or a dash. */
export function Contact(props: { name: string | null | undefined; phone: string | null | undefined }) {
  return (
    <>
      {props.name ?? '—'}
      {props.phone && (
        <>
          {' '}
          <a href={`tel:${props.phone}`}>{props.phone}</a>
        </>
      )}
    </>
  );
}

/** A day picker (YYYY-MM-DD) with its label, for a period or a bulletin's day. */
export function DayInput(props: { label: string; name: string; value: string; onChange: (day: string) => void }) {
  return (
    <label>
      <span>{props.label}</span>
      <input type="date" name={props.name} value={props.value} onChange={(e) => props.onChange((e.target as HTMLInputElement).value)} />
    </label>
  );
}

/** The optional note of an action's dialog. */
export function NoteField(props: { t: T }) {
  return (
    <Field label={props.t('note')}>
      <textarea name="note" maxLength={1000} rows={3} />
    </Field>
  );
}
