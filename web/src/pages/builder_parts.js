// builder_parts.js - the pieces of the job builder: the palette of step types, the step list
// (drag and drop with SortableJS, or the keyboard), the step editor with its schema-generated
// form and reference autocompletion, the parameters editor and the targets editor.
import { useEffect, useRef, useState } from 'preact/hooks';
import Sortable from 'sortablejs';
import { html } from '../ui/html.js';
import { Btn, Check, Field, Input, Select } from '../ui/components.js';
import { RefInput } from '../ui/refinput.js';
import { fieldsFor } from '../lib/schemaform.js';
import { contextFor } from '../lib/refs.js';
import { Picker, SelectorPreview } from './groups.js';

export const baseType = (t) => (t || '').split('@')[0];

/** Step types of the latest version of every library, grouped by library. */
export function paletteOf(libs) {
  return libs.map((l) => {
    const v = l.versions.find((x) => x.version === l.latest) || l.versions[0];
    return { name: l.name, version: v.version, summary: v.summary, steps: v.steps };
  });
}

export function Palette({ libs, onAdd, canEdit }) {
  const [q, setQ] = useState('');
  const ref = useRef(null);
  useEffect(() => {
    if (!canEdit) return undefined;
    const s = Sortable.create(ref.current, {
      group: { name: 'job-steps', pull: 'clone', put: false },
      sort: false,
      draggable: '.palette-item',
      filter: 'button',
      preventOnFilter: false,
      forceFallback: true,
      fallbackOnBody: true,
    });
    return () => s.destroy();
  }, [canEdit]);
  const needle = q.trim().toLowerCase();
  const match = (s) => !needle || s.type.toLowerCase().includes(needle) || (s.summary || '').toLowerCase().includes(needle);
  return html`<aside class="palette card" aria-labelledby="h-palette">
    <h2 id="h-palette">Step types</h2>
    <${Input} label="Search steps" value=${q} onInput=${setQ} type="search" placeholder="service, file, http…" />
    <div ref=${ref} class="palette-list">
      ${libs.map((lib) => {
        const steps = lib.steps.filter(match);
        return steps.length ? [
          html`<h3 key=${'h-' + lib.name} class="palette-lib">${lib.name} <span class="muted">${lib.version}</span></h3>`,
          ...steps.map((s) => html`<div key=${s.type} class="palette-item" data-type=${s.type}>
            <div><b>${s.type}</b> <span class="os">${(s.os_families || []).join(' · ')}</span></div>
            <div class="muted small">${s.summary}</div>
            ${canEdit ? html`<button type="button" class="btn btn-small" aria-label=${'Add ' + s.type} onClick=${() => onAdd(s.type)}>Add</button>` : ''}
          </div>`),
        ] : null;
      })}
    </div>
  </aside>`;
}

/** The job's steps in order; drop a palette item in to add, drag a card to reorder. */
export function StepList({ steps, types, selected, onSelect, onInsert, onMove, onRemove, errors, canEdit }) {
  const ref = useRef(null);
  const handlers = useRef({});
  handlers.current = { onInsert, onMove };
  useEffect(() => {
    if (!canEdit) return undefined;
    const s = Sortable.create(ref.current, {
      group: { name: 'job-steps', pull: false, put: true },
      draggable: '.step-card',
      handle: '.drag-handle',
      animation: 120,
      forceFallback: true,
      fallbackOnBody: true,
      onAdd: (evt) => {
        const type = evt.item.dataset.type;
        let at = 0; // the step cards before the dropped item
        for (let el = evt.item.previousElementSibling; el; el = el.previousElementSibling) if (el.classList.contains('step-card')) at++;
        // Preact owns both lists: the dragged palette item goes back in place of the clone
        // Sortable left there, and the new step card comes from state.
        if (evt.clone && evt.clone.parentNode) evt.clone.parentNode.replaceChild(evt.item, evt.clone);
        else evt.item.remove();
        handlers.current.onInsert(type, at);
      },
      onUpdate: (evt) => {
        // Put the node back where Preact left it, then reorder the state.
        const { item, from, oldIndex } = evt;
        from.removeChild(item);
        from.insertBefore(item, from.children[oldIndex] || null);
        handlers.current.onMove(evt.oldDraggableIndex, evt.newDraggableIndex);
      },
    });
    return () => s.destroy();
  }, [canEdit]);
  return html`<ol ref=${ref} class="steps" aria-label="Steps of the job" data-empty=${canEdit ? 'Drag step types here, or use Add' : 'No steps'}>
    ${steps.map((s, i) => {
      const t = types[baseType(s.type)];
      const n = errors[s.id] ? Object.keys(errors[s.id]).length : 0;
      return html`<li key=${s._uid} class=${'step-card' + (selected === s._uid ? ' selected' : '') + (n ? ' has-error' : '')} data-step=${s.id}>
        ${canEdit ? html`<span class="drag-handle" title="Drag to reorder" aria-hidden="true">⠿</span>` : ''}
        <button type="button" class="step-main" aria-pressed=${selected === s._uid} onClick=${() => onSelect(s._uid)}>
          <span class="step-no">${i + 1}</span> <b>${s.id || '(no id)'}</b> <span class="muted">${s.type}</span>
          ${t ? html`<span class="small muted block">${t.summary}</span>` : html`<span class="error-text block">unknown step type</span>`}
          ${n ? html`<span class="error-text block">${n} problem${n > 1 ? 's' : ''}</span>` : ''}
        </button>
        ${canEdit ? html`<span class="step-tools">
          <button type="button" class="btn btn-small" aria-label=${`Move ${s.id} up`} disabled=${i === 0} onClick=${() => onMove(i, i - 1)}>↑</button>
          <button type="button" class="btn btn-small" aria-label=${`Move ${s.id} down`} disabled=${i === steps.length - 1} onClick=${() => onMove(i, i + 1)}>↓</button>
          <button type="button" class="btn btn-small" aria-label=${`Remove ${s.id}`} onClick=${() => onRemove(i)}>✕</button>
        </span>` : ''}
      </li>`;
    })}
  </ol>`;
}

/** One parameter of the step, from its schema: the right control, required mark, help. */
function ParamField({ f, value, onInput, error, ctx, readOnly }) {
  const help = [f.description, f.default !== undefined ? `default: ${JSON.stringify(f.default)}` : ''].filter(Boolean).join(' · ');
  return html`<${Field} label=${f.label} error=${error} help=${help} required=${f.required}>
    ${(a) => {
      if (f.kind === 'enum') return html`<select ...${a} disabled=${readOnly} value=${value} onChange=${(e) => onInput(e.target.value)}><option value="">—</option>${f.enum.map((v) => html`<option value=${String(v)}>${String(v)}</option>`)}</select>`;
      if (f.kind === 'boolean') return html`<select ...${a} disabled=${readOnly} value=${value} onChange=${(e) => onInput(e.target.value)}><option value="">default</option><option value="true">true</option><option value="false">false</option></select>`;
      if (f.kind === 'string' || f.kind === 'text' || f.kind === 'integer' || f.kind === 'number') {
        return html`<${RefInput} id=${a.id} describedBy=${a['aria-describedby']} invalid=${!!error} value=${value} onInput=${onInput} ctx=${ctx} readOnly=${readOnly} multiline=${f.kind === 'text'} rows=${f.name === 'script' ? 8 : 3} class=${f.kind === 'text' ? 'mono' : ''} />`;
      }
      return html`<textarea ...${a} readOnly=${readOnly} rows="4" class="mono" value=${value} onInput=${(e) => onInput(e.target.value)}></textarea>`;
    }}
  </${Field}>`;
}

export function StepEditor({ step, index, job, types, errors, onChange, canEdit }) {
  const t = types[baseType(step.type)];
  const fields = t ? fieldsFor(t.params_schema) : [];
  const ctx = contextFor(job, index, types);
  const err = errors || {};
  const setForm = (name) => (v) => onChange({ ...step, _form: { ...step._form, [name]: v } });
  const set = (k) => (v) => onChange({ ...step, [k]: v });
  const outs = t && t.outputs_schema && t.outputs_schema.properties ? Object.keys(t.outputs_schema.properties) : [];
  return html`<section class="card step-editor" aria-labelledby="h-step">
    <h2 id="h-step">Step ${index + 1}: ${step.id}</h2>
    <p class="muted">${step.type}${t ? ' — ' + t.summary : ''}${outs.length ? html`<br />Outputs: ${outs.map((o) => html`<code key=${o}>steps.${step.id}.outputs.${o}</code> `)}` : ''}</p>
    ${err[''] ? html`<p class="error-text" role="alert">${err['']}</p>` : ''}
    <div class="row">
      <${Input} label="Step id" value=${step.id} onInput=${set('id')} required readOnly=${!canEdit} error=${err.id} help="letters, digits, - and _; referenced as steps.<id>" />
      <${Input} label="Name" value=${step.name || ''} onInput=${set('name')} readOnly=${!canEdit} error=${err.name} />
    </div>
    <fieldset><legend>Parameters</legend>
      ${fields.length ? fields.map((f) => html`<${ParamField} key=${f.name} f=${f} value=${step._form[f.name]} onInput=${setForm(f.name)} error=${err[f.name]} ctx=${ctx} readOnly=${!canEdit} />`) : html`<p class="muted">This step takes no parameters.</p>`}
    </fieldset>
    <fieldset><legend>Behaviour</legend><div class="row">
      <${Input} label="Timeout (s)" type="number" min="0" value=${step.timeout_s ?? ''} onInput=${set('timeout_s')} readOnly=${!canEdit} error=${err.timeout_s} help="0: the default" />
      <${Input} label="Retries" type="number" min="0" value=${step.retries ?? ''} onInput=${set('retries')} readOnly=${!canEdit} error=${err.retries} />
      <${Input} label="Back-off (s)" type="number" min="0" value=${step.retry_delay_s ?? ''} onInput=${set('retry_delay_s')} readOnly=${!canEdit} error=${err.retry_delay_s} help="delay before a retry" />
      <${Select} label="On failure" value=${step.on_failure || 'stop'} onChange=${set('on_failure')} disabled=${!canEdit} options=${[{ value: 'stop', label: 'stop the target' }, { value: 'continue', label: 'continue' }]} error=${err.on_failure} />
      <label class="pick"><input type="checkbox" disabled=${!canEdit} checked=${!!step.idempotent} onChange=${(e) => set('idempotent')(e.target.checked)} /> Idempotent <span class="muted">(cluster: run again elsewhere if its node dies)</span></label>
    </div>
    <${Field} label="Run when" error=${err.when} help="a condition, e.g. {{ steps.check.outputs.matched }}; empty: always">
      ${(a) => html`<${RefInput} id=${a.id} describedBy=${a['aria-describedby']} invalid=${!!err.when} value=${step.when || ''} onInput=${set('when')} ctx=${ctx} readOnly=${!canEdit} />`}
    </${Field}></fieldset>
  </section>`;
}

const PTYPES = ['string', 'int', 'bool', 'choice', 'secret'];

export function ParamsEditor({ params, onChange, errors, canEdit }) {
  const upd = (i, k, v) => onChange(params.map((p, j) => (j === i ? { ...p, [k]: v } : p)));
  return html`<div>
    ${params.length ? html`<div class="table-wrap"><table class="table params-table"><thead><tr><th>Name</th><th>Type</th><th>Default</th><th>Choices</th><th>Pattern</th><th>Required</th><th>Secret</th><th><span class="sr-only">Remove</span></th></tr></thead><tbody>
      ${params.map((p, i) => html`<tr key=${i}>
        <td><input aria-label=${`Parameter ${i + 1} name`} value=${p.name} readOnly=${!canEdit} onInput=${(e) => upd(i, 'name', e.target.value)} aria-invalid=${errors[i] ? 'true' : undefined} />${errors[i] ? html`<div class="error-text">${errors[i]}</div>` : ''}</td>
        <td><select aria-label=${`Parameter ${i + 1} type`} disabled=${!canEdit} value=${p.type || 'string'} onChange=${(e) => upd(i, 'type', e.target.value)}>${PTYPES.map((t) => html`<option value=${t}>${t}</option>`)}</select></td>
        <td><input aria-label=${`Parameter ${i + 1} default`} type=${p.secret || p.type === 'secret' ? 'password' : 'text'} value=${p.default ?? ''} readOnly=${!canEdit} onInput=${(e) => upd(i, 'default', e.target.value)} /></td>
        <td><input aria-label=${`Parameter ${i + 1} choices`} value=${(p.choices || []).join(', ')} readOnly=${!canEdit} disabled=${p.type !== 'choice'} onInput=${(e) => upd(i, 'choices', e.target.value.split(',').map((s) => s.trim()).filter(Boolean))} /></td>
        <td><input aria-label=${`Parameter ${i + 1} pattern`} value=${p.pattern || ''} readOnly=${!canEdit} onInput=${(e) => upd(i, 'pattern', e.target.value)} /></td>
        <td><input type="checkbox" aria-label=${`Parameter ${i + 1} required`} disabled=${!canEdit} checked=${!!p.required} onChange=${(e) => upd(i, 'required', e.target.checked)} /></td>
        <td><input type="checkbox" aria-label=${`Parameter ${i + 1} secret`} disabled=${!canEdit} checked=${!!p.secret} onChange=${(e) => upd(i, 'secret', e.target.checked)} /></td>
        <td>${canEdit ? html`<button type="button" class="btn btn-small" aria-label=${`Remove parameter ${p.name || i + 1}`} onClick=${() => onChange(params.filter((_, j) => j !== i))}>✕</button>` : ''}</td>
      </tr>`)}</tbody></table></div>` : html`<p class="muted">No parameters.</p>`}
    ${canEdit ? html`<${Btn} kind="small" onClick=${() => onChange([...params, { name: '', type: 'string' }])}>Add parameter</${Btn}>` : ''}
  </div>`;
}

export function TargetsEditor({ value, onChange, targets, groups, canEdit }) {
  const v = value || {};
  const set = (k) => (x) => onChange({ ...v, [k]: x });
  return html`<div class="targets-editor">
    <div class="row">
      ${targets ? html`<${Picker} legend="Targets" items=${targets} chosen=${v.ids || []} onChange=${canEdit ? set('ids') : () => {}} />` : ''}
      ${groups ? html`<${Picker} legend="Groups" items=${groups} chosen=${v.groups || []} onChange=${canEdit ? set('groups') : () => {}} />` : ''}
    </div>
    <${Input} label="Selector" value=${v.selector || ''} onInput=${set('selector')} readOnly=${!canEdit} placeholder="role=web" help="targets whose labels match" />
    <${SelectorPreview} selector=${v.selector || ''} />
  </div>`;
}

export { Check };
