// notify_hooks.js - inbound webhooks that start a job: create and edit (job, verification, the
// secret as a write-only field, parameter mapping, filter), the trigger URL with how a sender
// signs its requests, enable and disable.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, Select, TextArea, notify, useAction, useLoad, useRemove } from '../ui/components.js';
import { all, can, patch, post } from '../lib/api.js';
import { fieldErrors, pairsText, parsePairs, secretName, signExample } from '../lib/notify.js';
import { SecretField } from './notify_channels.js';

const VERIFY = [
  { value: 'standard', label: 'Standard Webhooks (webhook-signature, whsec_ key)' },
  { value: 'github', label: 'GitHub (X-Hub-Signature-256)' },
  { value: 'gitlab', label: 'GitLab (X-Gitlab-Token)' },
  { value: 'token', label: 'Bearer token (Authorization)' },
];

export const triggerUrl = (h) => location.origin + h.trigger_path;

function formOf(h) {
  const x = h || {};
  return { name: x.name || '', description: x.description || '', job_id: x.job_id || '', verify: x.verify || 'standard', credential_id: x.credential_id || '', secret: '', params: pairsText(x.params), filter_path: x.filter ? x.filter.path : '', filter_equals: x.filter ? JSON.stringify(x.filter.equals) : '', tolerance_s: x.tolerance_s ?? '', enabled: x.enabled !== false };
}

function bodyOf(f, credential) {
  const p = parsePairs(f.params);
  if (p.error) return { errors: { params: p.error } };
  const b = { name: f.name, description: f.description, job_id: f.job_id, verify: f.verify, credential_id: credential, params: p.value, enabled: f.enabled, filter: null };
  if (f.filter_path.trim()) {
    let eq = f.filter_equals.trim();
    try {
      eq = JSON.parse(eq);
    } catch (e) {
      /* a bare word is the string it spells */
    }
    b.filter = { path: f.filter_path.trim(), equals: eq };
  }
  if (f.tolerance_s !== '') b.tolerance_s = Number(f.tolerance_s);
  return { body: b };
}

function HookForm({ hook, onDone, onCancel }) {
  const [f, setF] = useState(() => formOf(hook));
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const jobs = useLoad(() => all('/jobs'), []);
  const creds = useLoad(() => all('/credentials'), []);
  const [errs, setErrs] = useState({});
  const [save, busy, error] = useAction(async () => {
    setErrs({});
    let credential = f.credential_id;
    const b0 = bodyOf(f, credential);
    if (b0.errors) return setErrs(b0.errors);
    try {
      if (f.secret) {
        if (credential) await patch('/credentials/' + credential, { value: f.secret });
        else credential = (await post('/credentials', { name: secretName('hook', f.name, (creds.data || []).map((c) => c.name)), type: 'secret', value: f.secret, description: `secret of the hook ${f.name}` })).id;
        setF((x) => ({ ...x, credential_id: credential, secret: '' }));
      }
      const { body } = bodyOf(f, credential);
      const rec = hook ? await patch('/hooks/' + hook.id, body, { headers: { 'If-Match': `"${hook.version}"` } }) : await post('/hooks', body);
      notify(`Hook ${rec.name} saved`);
      onDone(rec);
    } catch (e) {
      setErrs(fieldErrors(e));
      throw e;
    }
    return undefined;
  });
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }} autocomplete="off">
    <${ErrorBox} error=${error} />
    <div class="row">
      <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${errs.name} />
      <${Select} label="Job" value=${f.job_id} onChange=${set('job_id')} required error=${errs.job_id} options=${[{ value: '', label: '— choose —' }, ...(jobs.data || []).map((j) => ({ value: j.id, label: j.name }))]} />
      <${Select} label="Verification" value=${f.verify} onChange=${set('verify')} options=${VERIFY} error=${errs.verify} />
    </div>
    <${SecretField} f=${f} set=${set} creds=${creds.data || []} error=${errs.credential_id} info=${{ label: 'Hook secret', required: true, help: f.verify === 'standard' ? 'whsec_ followed by the base64 key' : 'the shared secret the sender signs or sends with' }} />
    <${TextArea} label="Parameters" rows="3" class="mono" value=${f.params} onInput=${set('params')} error=${errs.params} placeholder="ref=body.ref\nenv=query.env" help="job parameter=body.path.to.field or query.name, one a line" />
    <div class="row">
      <${Input} label="Only when body field" value=${f.filter_path} onInput=${set('filter_path')} placeholder="ref" error=${errs.filter || errs['filter.path']} />
      <${Input} label="equals" value=${f.filter_equals} onInput=${set('filter_equals')} placeholder="refs/heads/main" help="JSON or a plain string; other requests answer 200 without a run" />
      <${Input} label="Timestamp tolerance (s)" type="number" min="1" value=${f.tolerance_s} onInput=${set('tolerance_s')} error=${errs.tolerance_s} help="default 300" />
    </div>
    <${Input} label="Description" value=${f.description} onInput=${set('description')} />
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save hook</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

function HowToSign({ hook }) {
  return html`<div>
    <p>Send a <code>POST</code> with a JSON body to</p>
    <pre class="token">${triggerUrl(hook)}</pre>
    <p class="help">No API token: the signature is the authentication. A refused request answers 401 or 403 without saying which check failed; the audit log says (action <code>hook.trigger</code>). A message id seen before is a replay. <code>$SECRET</code> is the hook's secret.</p>
    <pre class="cmd">${signExample(hook.verify, triggerUrl(hook))}</pre>
  </div>`;
}

export function Hooks() {
  const list = useLoad(() => all('/hooks'), []);
  const jobs = useLoad(() => all('/jobs'), []);
  const [dialog, setDialog] = useState(null);
  const [toggle, , tError] = useAction(async (h) => {
    await patch('/hooks/' + h.id, { enabled: !h.enabled }, { headers: { 'If-Match': `"${h.version}"` } });
    notify(`Hook ${h.name} ${h.enabled ? 'disabled' : 'enabled'}`);
    list.reload();
  });
  const [remove, rmError] = useRemove('hook', '/hooks', list.reload);
  const jobName = (id) => ((jobs.data || []).find((j) => j.id === id) || {}).name || id;
  const op = can('operator');
  const close = () => setDialog(null);
  return html`<div>
    <div class="card-head"><p class="muted">Signed requests from outside (GitHub, GitLab, any sender) that start a job.</p>
      ${op ? html`<${Btn} kind="primary" onClick=${() => setDialog({ kind: 'edit' })}>New hook</${Btn}>` : ''}</div>
    <${ErrorBox} error=${list.error || tError || rmError} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No inbound hooks yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Job</th><th>Verification</th><th>Trigger URL</th><th>State</th><th><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${list.data.map((h) => html`<tr key=${h.id}>
        <td>${h.name}${h.filter ? html`<div class="muted small">only ${h.filter.path} = ${JSON.stringify(h.filter.equals)}</div>` : ''}</td>
        <td><a href=${'/jobs/' + h.job_id}>${jobName(h.job_id)}</a></td><td>${h.verify}</td>
        <td><code class="fp small">${triggerUrl(h)}</code></td>
        <td>${h.enabled ? html`<span class="state state-succeeded">enabled</span>` : html`<span class="state state-cancelled">disabled</span>`}</td>
        <td class="actions-cell"><${Btn} kind="small" onClick=${() => setDialog({ kind: 'sign', hook: h })} aria-label=${'How to sign for ' + h.name}>How to sign</${Btn}>
          ${op ? html` <${Btn} kind="small" onClick=${() => toggle(h)} aria-label=${(h.enabled ? 'Disable ' : 'Enable ') + h.name}>${h.enabled ? 'Disable' : 'Enable'}</${Btn}>
          <${Btn} kind="small" onClick=${() => setDialog({ kind: 'edit', hook: h })} aria-label=${'Edit ' + h.name}>Edit</${Btn}>
          <${Btn} kind="small" onClick=${() => remove(h)} aria-label=${'Delete ' + h.name}>Delete</${Btn}>` : ''}</td>
      </tr>`)}</tbody></table></div>`}
    ${dialog && dialog.kind === 'edit' ? html`<${Dialog} title=${dialog.hook ? 'Edit ' + dialog.hook.name : 'New inbound hook'} wide onClose=${close}>
      <${HookForm} hook=${dialog.hook} onDone=${(rec) => { setDialog({ kind: 'sign', hook: rec }); list.reload(); }} onCancel=${close} /></${Dialog}>` : ''}
    ${dialog && dialog.kind === 'sign' ? html`<${Dialog} title=${'Trigger ' + dialog.hook.name} wide onClose=${close}><${HowToSign} hook=${dialog.hook} /></${Dialog}>` : ''}
  </div>`;
}
