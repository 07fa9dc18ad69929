/**
 * The one confirmation dialog of the page: a form with the fields an action needs, OK and Cancel.
 * Escape and Cancel close it; OK hands the fields' values to the caller.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { T } from './util.js';

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
