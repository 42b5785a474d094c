// notify_channels.js - notification channels: the list with a test button that shows the test
// delivery's outcome, and the editor: settings as a form generated from the notifier's settings
// schema, the secret a write-only field that becomes (or replaces) a vault credential.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, Select, TextArea, notify, useAction, useLoad, useRemove } from '../ui/components.js';
import { SchemaFields } from '../ui/schemafields.js';
import { all, can, patch, post } from '../lib/api.js';
import { fieldsFor, fromForm, toForm } from '../lib/schemaform.js';
import { fieldErrors, secretName, secretOf, under } from '../lib/notify.js';
// The bundled notifiers' settings schemas, read at build time from their plugins: the API does
// not serve a notifier's schema (yet), and a copy here could drift from the plugin's.
import email from '../../../plugins/notify-email/settings.schema.json';
import slack from '../../../plugins/notify-slack/settings.schema.json';
import teams from '../../../plugins/notify-teams/settings.schema.json';
import webhook from '../../../plugins/notify-webhook/settings.schema.json';

export const SCHEMAS = { webhook, slack, teams, email };
const OTHER = '(other)';

function formOf(ch) {
  const c = ch || { type: 'webhook', settings: {}, enabled: true };
  const known = !!SCHEMAS[c.type];
  return {
    name: c.name || '', type: known ? c.type : OTHER, other: known ? '' : c.type, description: c.description || '', enabled: c.enabled !== false,
    settings: known ? toForm(fieldsFor(SCHEMAS[c.type]), c.settings || {}) : {}, json: known ? '' : JSON.stringify(c.settings || {}, null, 2),
    credential_id: c.credential_id || '', secret: '', rate_max: c.rate_limit ? String(c.rate_limit.max) : '', rate_per: c.rate_limit ? String(c.rate_limit.per_s) : '',
  };
}

/** The settings object of the form, or {errors} by settings field. */
function settingsOf(f) {
  if (f.type === OTHER) {
    try {
      return { settings: f.json.trim() ? JSON.parse(f.json) : {} };
    } catch (e) {
      return { errors: { json: 'is not valid JSON' } };
    }
  }
  const r = fromForm(fieldsFor(SCHEMAS[f.type]), f.settings);
  return Object.keys(r.errors).length ? { errors: r.errors } : { settings: r.params };
}

/** Create the secret as a credential, or replace the value of the one chosen. */
async function storeSecret(f, creds, kind) {
  if (f.credential_id) {
    await patch('/credentials/' + f.credential_id, { value: f.secret });
    return f.credential_id;
  }
  const name = secretName(kind, f.name, creds.map((c) => c.name));
  const rec = await post('/credentials', { name, type: 'secret', value: f.secret, description: `secret of the ${kind} ${f.name}` });
  return rec.id;
}

/** The secret: a write-only field and the secret credential it lives in. */
export function SecretField({ f, set, creds, info, error }) {
  const options = [{ value: '', label: f.secret ? '— a new credential —' : '— none —' }, ...creds.filter((c) => c.type === 'secret').map((c) => ({ value: c.id, label: c.name }))];
  return html`<fieldset><legend>${info.label}</legend><div class="row">
    <${Select} label="Secret credential" value=${f.credential_id} onChange=${set('credential_id')} options=${options} error=${error} help=${f.credential_id ? 'a value typed here replaces this credential\'s secret' : 'or type the secret: it becomes a new credential'} />
    <${Input} label=${info.label + ' (write-only)'} type="password" value=${f.secret} onInput=${set('secret')} autocomplete="new-password" required=${info.required && !f.credential_id} help=${info.help} />
  </div></fieldset>`;
}

function ChannelForm({ channel, onDone, onCancel }) {
  const [f, setF] = useState(() => formOf(channel));
  const creds = useLoad(() => all('/credentials'), []);
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const [errs, setErrs] = useState({});
  const schema = SCHEMAS[f.type];
  const fields = schema ? fieldsFor(schema) : [];
  const [save, busy, error] = useAction(async () => {
    const s = settingsOf(f);
    setErrs(s.errors ? Object.fromEntries(Object.entries(s.errors).map(([k, v]) => [k === 'json' ? 'settings' : 'settings.' + k, v])) : {});
    if (s.errors) return;
    let credential = f.credential_id || null;
    try {
      if (f.secret) {
        credential = await storeSecret(f, creds.data || [], 'channel');
        setF((x) => ({ ...x, credential_id: credential, secret: '' })); // a retry reuses it
      }
      const body = { name: f.name, type: f.type === OTHER ? f.other : f.type, description: f.description, enabled: f.enabled, settings: s.settings, credential_id: credential };
      body.rate_limit = f.rate_max && f.rate_per ? { max: Number(f.rate_max), per_s: Number(f.rate_per) } : null;
      const rec = channel ? await patch('/notifications/channels/' + channel.id, body, { headers: { 'If-Match': `"${channel.version}"` } }) : await post('/notifications/channels', body);
      notify(`Channel ${rec.name} saved`);
      onDone(rec);
    } catch (e) {
      setErrs(fieldErrors(e));
      throw e;
    }
  });
  const changeType = (t) => setF((x) => ({ ...x, type: t, settings: SCHEMAS[t] ? toForm(fieldsFor(SCHEMAS[t]), {}) : {} }));
  const setSetting = (k, v) => setF((x) => ({ ...x, settings: { ...x.settings, [k]: v } }));
  const info = secretOf(f.type === OTHER ? f.other : f.type, schema);
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }} autocomplete="off">
    <${ErrorBox} error=${error} />
    <div class="row">
      <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${errs.name} />
      <${Select} label="Type" value=${f.type} onChange=${changeType} disabled=${!!channel} error=${errs.type} options=${[...Object.keys(SCHEMAS), OTHER]} help=${channel ? 'a channel keeps its type' : ''} />
      ${f.type === OTHER ? html`<${Input} label="Notifier" value=${f.other} onInput=${set('other')} required readOnly=${!!channel} help="a notifier plugin's type name" />` : ''}
    </div>
    <fieldset><legend>Settings</legend>
      ${schema ? html`<${SchemaFields} fields=${fields} form=${f.settings} onChange=${setSetting} errors=${under(errs, 'settings')} />`
        : html`<${TextArea} label="Settings (JSON)" rows="5" class="mono" value=${f.json} onInput=${set('json')} error=${errs.settings} help="checked against the notifier's schema when saved" />`}
    </fieldset>
    ${info.none ? '' : html`<${SecretField} f=${f} set=${set} creds=${creds.data || []} info=${info} error=${errs.credential_id} />`}
    <div class="row">
      <${Input} label="Rate limit: messages" type="number" min="1" value=${f.rate_max} onInput=${set('rate_max')} error=${errs.rate_limit} help="at most this many…" />
      <${Input} label="Rate limit: per seconds" type="number" min="1" value=${f.rate_per} onInput=${set('rate_per')} help="…in this many seconds; more wait their turn" />
    </div>
    <${Input} label="Description" value=${f.description} onInput=${set('description')} error=${errs.description} />
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save channel</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

/** The outcome of a test message: delivered, or why not (the delivery's last attempt). */
export function DeliveryOutcome({ r }) {
  if (!r || r.busy) return null;
  const d = r.delivery || {};
  const last = (d.attempts || [])[(d.attempts || []).length - 1] || {};
  if (r.ok) return html`<span class="state state-delivered">delivered</span> <span class="muted">${last.status ? 'HTTP ' + last.status : ''}${last.duration_ms !== undefined ? ` in ${last.duration_ms} ms` : ''}</span>`;
  return html`<span class="state state-failed">not delivered</span> <span class="error-text">${last.status ? 'HTTP ' + last.status + ': ' : ''}${last.error || d.error || r.message}</span>`;
}

export function Channels() {
  const list = useLoad(() => all('/notifications/channels'), []);
  const creds = useLoad(() => all('/credentials'), []);
  const [dialog, setDialog] = useState(null);
  const [tests, setTests] = useState({});
  const testOne = async (c) => {
    setTests((x) => ({ ...x, [c.id]: { busy: true } }));
    let r;
    try {
      r = { ok: true, ...(await post(`/notifications/channels/${c.id}/test`)) };
    } catch (e) {
      r = { ok: false, message: e.message, delivery: e.details && e.details.delivery };
    }
    setTests((x) => ({ ...x, [c.id]: r }));
  };
  const [remove, rmError] = useRemove('channel', '/notifications/channels', list.reload);
  const credName = (id) => ((creds.data || []).find((c) => c.id === id) || {}).name || (id ? 'set' : '—');
  const op = can('operator');
  const close = () => setDialog(null);
  return html`<div>
    <div class="card-head"><p class="muted">Where messages go: each channel is a notifier plugin with its settings.</p>
      ${op ? html`<${Btn} kind="primary" onClick=${() => setDialog({})}>New channel</${Btn}>` : ''}</div>
    <${ErrorBox} error=${list.error || rmError} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No channels yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Type</th><th>Where</th><th>Secret</th><th>State</th>${op ? html`<th>Test</th><th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${list.data.map((c) => html`<tr key=${c.id}>
        <td>${c.name}${c.description ? html`<div class="muted small">${c.description}</div>` : ''}</td><td>${c.type}</td>
        <td class="small">${c.settings && (c.settings.url || (c.settings.to || []).join(', ')) || html`<span class="muted">in the secret</span>`}</td>
        <td>${credName(c.credential_id)}</td>
        <td>${c.enabled ? html`<span class="state state-succeeded">enabled</span>` : html`<span class="state state-cancelled">disabled</span>`}${c.disabled_reason ? html`<div class="error-text small">${c.disabled_reason}</div>` : ''}</td>
        ${op ? html`<td class="test-cell" aria-live="polite"><${Btn} kind="small" busy=${tests[c.id] && tests[c.id].busy} onClick=${() => testOne(c)} aria-label=${'Test ' + c.name}>Test</${Btn}> <${DeliveryOutcome} r=${tests[c.id]} /></td>
        <td class="actions-cell"><${Btn} kind="small" onClick=${() => setDialog({ channel: c })} aria-label=${'Edit ' + c.name}>Edit</${Btn}> <${Btn} kind="small" onClick=${() => remove(c)} aria-label=${'Delete ' + c.name}>Delete</${Btn}></td>` : ''}
      </tr>`)}</tbody></table></div>`}
    ${dialog ? html`<${Dialog} title=${dialog.channel ? 'Edit ' + dialog.channel.name : 'New channel'} wide onClose=${close}>
      <${ChannelForm} channel=${dialog.channel} onDone=${() => { close(); list.reload(); creds.reload(); }} onCancel=${close} /></${Dialog}>` : ''}
  </div>`;
}
