// components.js - the small building blocks every page uses: fields with their errors, buttons,
// state badges, times, dialogs, notices, loading and error boxes, and the data-loading hook.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import { html } from './html.js';
import { fmtInZone, fmtLocal, utcTitle } from '../lib/time.js';
import { del } from '../lib/api.js';

let uid = 0;
export const nextId = (p = 'f') => `${p}-${++uid}`;

/** A time in the browser's zone (or `zone`), the UTC instant on hover. */
export function Time({ iso, zone }) {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime=${iso} title=${utcTitle(iso)}>${zone ? fmtInZone(iso, zone) : fmtLocal(iso)}</time>`;
}

export function State({ state }) {
  return html`<span class=${'state state-' + (state || 'unknown')}>${(state || 'unknown').replace('_', ' ')}</span>`;
}

/** A labelled control with its help text and error, wired for screen readers. */
export function Field({ label, error, help, children, id, required }) {
  const ids = useRef(id || nextId()).current;
  const child = typeof children === 'function' ? children({ id: ids, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': error || help ? ids + '-d' : undefined }) : children;
  return html`<div class=${'field' + (error ? ' has-error' : '')}>
    <label for=${ids}>${label}${required ? html`<span class="req" aria-hidden="true"> *</span>` : ''}</label>
    ${child}
    ${error || help ? html`<div id=${ids + '-d'} class=${error ? 'error-text' : 'help'}>${error || help}</div>` : ''}
  </div>`;
}

export function Input({ label, value, onInput, error, help, type = 'text', required, ...rest }) {
  return html`<${Field} label=${label} error=${error} help=${help} required=${required}>
    ${(a) => html`<input ...${a} ...${rest} type=${type} value=${value ?? ''} required=${required} onInput=${(e) => onInput(e.target.value)} />`}
  </${Field}>`;
}

export function TextArea({ label, value, onInput, error, help, rows = 4, required, ...rest }) {
  return html`<${Field} label=${label} error=${error} help=${help} required=${required}>
    ${(a) => html`<textarea ...${a} ...${rest} rows=${rows} required=${required} onInput=${(e) => onInput(e.target.value)}>${value ?? ''}</textarea>`}
  </${Field}>`;
}

export function Select({ label, value, onChange, options, error, help, required, ...rest }) {
  return html`<${Field} label=${label} error=${error} help=${help} required=${required}>
    ${(a) => html`<select ...${a} ...${rest} value=${value ?? ''} onChange=${(e) => onChange(e.target.value)}>
      ${options.map((o) => (typeof o === 'string' ? html`<option value=${o}>${o || '—'}</option>` : html`<option value=${o.value}>${o.label}</option>`))}
    </select>`}
  </${Field}>`;
}

export function Check({ label, checked, onChange, help }) {
  const id = useRef(nextId('c')).current;
  return html`<div class="field check">
    <input id=${id} type="checkbox" checked=${!!checked} onChange=${(e) => onChange(e.target.checked)} />
    <label for=${id}>${label}</label>
    ${help ? html`<div class="help">${help}</div>` : ''}
  </div>`;
}

export function Btn({ kind = 'secondary', children, busy, ...rest }) {
  return html`<button type="button" class=${'btn btn-' + kind} disabled=${busy || rest.disabled} aria-busy=${busy ? 'true' : undefined} ...${rest}>${children}</button>`;
}

export function PageHead({ title, children, sub }) {
  return html`<div class="page-head">
    <div><h1>${title}</h1>${sub ? html`<p class="muted">${sub}</p>` : ''}</div>
    <div class="actions">${children}</div>
  </div>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="alert alert-error" role="alert">${error.message || String(error)}</div>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

/** A modal dialog (the native <dialog>: focus stays inside, Escape closes). */
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const onCancel = (e) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener('cancel', onCancel);
    return () => d.removeEventListener('cancel', onCancel);
  }, []);
  const titleId = useRef(nextId('dlg')).current;
  return html`<dialog ref=${ref} class=${wide ? 'wide' : ''} aria-labelledby=${titleId}>
    <div class="dialog-head"><h2 id=${titleId}>${title}</h2><button type="button" class="btn btn-ghost" aria-label="Close" onClick=${onClose}>×</button></div>
    ${children}
  </dialog>`;
}

// ---- notices --------------------------------------------------------------------------------

export const toasts = signal([]);

export function notify(text, kind = 'ok') {
  const t = { id: ++uid, text, kind };
  toasts.value = [...toasts.value, t];
  setTimeout(() => {
    toasts.value = toasts.value.filter((x) => x !== t);
  }, kind === 'error' ? 8000 : 4000);
}

export function Toasts() {
  return html`<div class="toasts" role="status" aria-live="polite">
    ${toasts.value.map((t) => html`<div key=${t.id} class=${'toast toast-' + t.kind}>${t.text}</div>`)}
  </div>`;
}

// ---- data -------------------------------------------------------------------------------------

/** Load with `fn` whenever `deps` change: {data, error, loading, reload, set}. */
export function useLoad(fn, deps = []) {
  const [st, setSt] = useState({ data: null, error: null, loading: true });
  const gen = useRef(0);
  const load = useCallback(() => {
    const g = ++gen.current;
    setSt((s) => ({ ...s, loading: true }));
    Promise.resolve()
      .then(fn)
      .then(
        (data) => g === gen.current && setSt({ data, error: null, loading: false }),
        (error) => g === gen.current && setSt({ data: null, error, loading: false }),
      );
  }, deps);
  useEffect(load, deps);
  return { ...st, reload: load, set: (data) => setSt({ data, error: null, loading: false }) };
}

/** Run an async action with busy state and error capture: [run, busy, error, setError]. */
export function useAction(fn) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (...args) => {
    setBusy(true);
    setError(null);
    try {
      return await fn(...args);
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return [run, busy, error, setError];
}

/** Download text as a file (a blob link; nothing leaves the browser). */
export function download(name, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Labels({ labels }) {
  const e = Object.entries(labels || {});
  if (!e.length) return html`<span class="muted">—</span>`;
  return html`<span class="labels">${e.map(([k, v]) => html`<span class="label" key=${k}>${k}=${v}</span>`)}</span>`;
}

/** Delete a record of `collection` once the user confirms: [remove(rec), error]. */
export function useRemove(what, collection, onDone) {
  const [run, , error] = useAction(async (rec) => {
    if (!confirm(`Delete ${what} ${rec.name}?`)) return;
    await del(collection + '/' + rec.id);
    notify(`${what[0].toUpperCase()}${what.slice(1)} ${rec.name} deleted`);
    onDone();
  });
  return [run, error];
}
