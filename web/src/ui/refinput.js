// refinput.js - a text field (input or textarea) that offers template references at the caret:
// an ARIA combobox with a listbox of suggestions (arrow keys, Enter or Tab to take, Escape).
import { useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { nextId } from './components.js';
import { apply, completions } from '../lib/refs.js';

export function RefInput({ id, value, onInput, ctx, multiline, rows = 3, describedBy, invalid, ...rest }) {
  const [sug, setSug] = useState(null);
  const [active, setActive] = useState(0);
  const el = useRef(null);
  const listId = useRef(nextId('sug')).current;

  const update = (text, caret) => {
    const s = ctx ? completions(text, caret, ctx) : null;
    setSug(s);
    setActive(0);
  };
  const choose = (item) => {
    const r = apply(value || '', sug, item);
    onInput(r.text);
    setSug(null);
    requestAnimationFrame(() => {
      if (!el.current) return;
      el.current.focus();
      el.current.setSelectionRange(r.caret, r.caret);
      update(r.text, r.caret);
    });
  };
  const onKeyDown = (e) => {
    if (!sug) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = sug.items.length;
      setActive((a) => (a + (e.key === 'ArrowDown' ? 1 : n - 1)) % n);
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      choose(sug.items[active]);
    } else if (e.key === 'Escape') {
      e.stopPropagation();
      setSug(null);
    }
  };
  const props = {
    ...rest,
    id,
    ref: el,
    value: value ?? '',
    role: 'combobox',
    'aria-autocomplete': 'list',
    'aria-expanded': sug ? 'true' : 'false',
    'aria-controls': listId,
    'aria-activedescendant': sug ? `${listId}-${active}` : undefined,
    'aria-describedby': describedBy,
    'aria-invalid': invalid ? 'true' : undefined,
    spellcheck: false,
    onInput: (e) => {
      onInput(e.target.value);
      update(e.target.value, e.target.selectionStart);
    },
    onKeyDown,
    onClick: (e) => update(e.target.value, e.target.selectionStart),
    onBlur: () => setTimeout(() => setSug(null), 150),
  };
  return html`<div class="refinput">
    ${multiline ? html`<textarea ...${props} rows=${rows}></textarea>` : html`<input type="text" ...${props} />`}
    <ul id=${listId} role="listbox" class=${'suggestions' + (sug ? '' : ' hidden')} aria-label="References">
      ${sug ? sug.items.map((it, i) => html`<li key=${it.label} id=${`${listId}-${i}`} role="option" aria-selected=${i === active ? 'true' : 'false'} class=${i === active ? 'active' : ''}
          onMouseDown=${(e) => { e.preventDefault(); choose(it); }}><b>${it.label}</b> <span class="muted">${it.detail}</span></li>`) : ''}
    </ul>
  </div>`;
}
