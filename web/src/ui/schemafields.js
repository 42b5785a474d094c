// schemafields.js - the controls of a form generated from a JSON Schema (lib/schemaform.js's
// fields): a plugin's settings. Plain controls: unlike a step's parameters, settings take no
// template references.
import { html } from './html.js';
import { Field } from './components.js';

const ROWS = { text: 4, list: 3, map: 3, json: 4 };
const WORDS = { Url: 'URL', Ca: 'CA', Tls: 'TLS', Github: 'GitHub', Smtp: 'SMTP' };

// "Timeout s" reads as "Timeout (s)", "Ca bundle" as "CA bundle".
function labelOf(f) {
  return f.label.replace(/^(\w+)/, (w) => WORDS[w] || w).replace(/ (s|ms)$/, ' ($1)');
}

// A long one-line value (a URL) stays one line; a certificate or a body gets a box.
function multiline(f) {
  return f.kind !== 'text' || (f.maxLength || 0) > 4096;
}

function SchemaField({ f, value, onInput, error, readOnly }) {
  const help = [f.description, f.kind === 'list' ? 'one a line' : '', f.kind === 'map' ? 'one name=value a line' : '', f.default !== undefined && f.kind !== 'map' && f.kind !== 'list' ? `default: ${JSON.stringify(f.default)}` : ''].filter(Boolean).join(' · ');
  return html`<${Field} label=${labelOf(f)} error=${error} help=${help} required=${f.required}>
    ${(a) => {
      if (f.kind === 'enum') return html`<select ...${a} disabled=${readOnly} value=${value} onChange=${(e) => onInput(e.target.value)}><option value="">${f.default !== undefined ? 'default' : '—'}</option>${f.enum.map((v) => html`<option value=${String(v)}>${String(v)}</option>`)}</select>`;
      if (f.kind === 'boolean') return html`<select ...${a} disabled=${readOnly} value=${value} onChange=${(e) => onInput(e.target.value)}><option value="">default</option><option value="true">yes</option><option value="false">no</option></select>`;
      if (ROWS[f.kind] && multiline(f)) return html`<textarea ...${a} readOnly=${readOnly} rows=${ROWS[f.kind]} class="mono" value=${value} onInput=${(e) => onInput(e.target.value)}></textarea>`;
      const num = f.kind === 'integer' || f.kind === 'number';
      return html`<input ...${a} readOnly=${readOnly} type=${num ? 'number' : 'text'} min=${f.minimum} max=${f.maximum} value=${value} onInput=${(e) => onInput(e.target.value)} />`;
    }}
  </${Field}>`;
}

/** Every field of `fields` with its text in `form`; onChange(name, text). */
export function SchemaFields({ fields, form, onChange, errors = {}, readOnly }) {
  return html`<div class="row">${fields.map((f) => html`<${SchemaField} key=${f.name} f=${f} value=${form[f.name] ?? ''} onInput=${(v) => onChange(f.name, v)} error=${errors[f.name]} readOnly=${readOnly} />`)}</div>`;
}
