// notify_rules.js - notification rules: which events go to which channels, filtered by job,
// schedule, group, label selector and severity; the failing-streak and long-running options;
// a template override whose error (a 400 naming template.text and its line:column) lands on
// the field.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, Select, TextArea, notify, useAction, useLoad, useRemove } from '../ui/components.js';
import { all, can, patch, post } from '../lib/api.js';
import { EVENTS, fieldErrors, ruleBody, ruleForm } from '../lib/notify.js';
import { Picker } from './groups.js';

function Events({ chosen, onChange, error }) {
  const toggle = (e) => onChange(chosen.includes(e) ? chosen.filter((x) => x !== e) : [...chosen, e]);
  return html`<fieldset class=${error ? 'has-error' : ''}><legend>Events (${chosen.length})</legend>
    <div class="picker-list events-list">${EVENTS.map(([e, what]) => html`<label key=${e} class="pick"><input type="checkbox" checked=${chosen.includes(e)} onChange=${() => toggle(e)} /> <span><code>${e}</code> <span class="muted small">${what}</span></span></label>`)}</div>
    ${error ? html`<div class="error-text">${error}</div>` : ''}
  </fieldset>`;
}

function RuleForm({ rule, onDone, onCancel }) {
  const [f, setF] = useState(() => ruleForm(rule));
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const channels = useLoad(() => all('/notifications/channels'), []);
  const jobs = useLoad(() => all('/jobs'), []);
  const groups = useLoad(() => all('/groups'), []);
  const schedules = useLoad(() => all('/schedules'), []);
  const users = useLoad(() => all('/users'), []);
  const jobName = (id) => ((jobs.data || []).find((j) => j.id === id) || {}).name || '…';
  const [errs, setErrs] = useState({});
  const [save, busy, error] = useAction(async () => {
    setErrs({});
    try {
      const rec = rule ? await patch('/notifications/rules/' + rule.id, ruleBody(f), { headers: { 'If-Match': `"${rule.version}"` } }) : await post('/notifications/rules', ruleBody(f));
      notify(`Rule ${rec.name} saved`);
      onDone(rec);
    } catch (e) {
      setErrs(fieldErrors(e));
      throw e;
    }
  });
  const err = (k) => errs[k] || Object.entries(errs).filter(([x]) => x.startsWith(k + '.') || x.startsWith(k + '[')).map(([, v]) => v)[0];
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <${ErrorBox} error=${error} />
    <div class="row">
      <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${errs.name} />
      <${Input} label="Description" value=${f.description} onInput=${set('description')} error=${errs.description} />
    </div>
    <${Events} chosen=${f.events} onChange=${set('events')} error=${err('events')} />
    ${f.events.includes('run.failing') ? html`<${Input} label="Failures in a row (run.failing)" type="number" min="1" value=${f.min_consecutive_failures} onInput=${set('min_consecutive_failures')} error=${errs.min_consecutive_failures} help="fires once, at exactly the Nth consecutive failure; default 3" />` : ''}
    ${f.events.includes('run.long_running') ? html`<div class="row">
      <${Select} label="Long-running when" value=${f.lr_mode} onChange=${set('lr_mode')} error=${err('long_running')} options=${[{ value: '', label: '— choose —' }, { value: 'after_s', label: 'running longer than N seconds' }, { value: 'percent_over_average', label: 'N % over the job\'s average' }]} />
      <${Input} label="N" type="number" min="1" value=${f.lr_value} onInput=${set('lr_value')} />
    </div>` : ''}
    ${channels.data ? html`<${Picker} legend="Channels" items=${channels.data} chosen=${f.channels} onChange=${set('channels')} />` : html`<${Loading} />`}
    ${err('channels') ? html`<p class="error-text">${err('channels')}</p>` : ''}
    ${users.data && users.data.some((u) => u.notify_email) ? html`<${Picker} legend="Also email these users (their notify_email, through the email channels)" items=${users.data.filter((u) => u.notify_email).map((u) => ({ id: u.id, name: `${u.display_name || u.username} <${u.notify_email}>` }))} chosen=${f.users} onChange=${set('users')} />` : ''}
    <fieldset><legend>Only when (filters, all optional)</legend>
      <div class="row">
        ${jobs.data ? html`<${Picker} legend="Jobs" items=${jobs.data} chosen=${f.job_ids} onChange=${set('job_ids')} />` : ''}
        ${schedules.data && schedules.data.length ? html`<${Picker} legend="Schedules" items=${schedules.data.map((x) => ({ id: x.id, name: `${jobName(x.job_id)} · ${x.cron}` }))} chosen=${f.schedule_ids} onChange=${set('schedule_ids')} />` : ''}
        ${groups.data ? html`<${Picker} legend="Target groups" items=${groups.data} chosen=${f.group_ids} onChange=${set('group_ids')} />` : ''}
      </div>
      <div class="row">
        <${Input} label="Target labels" value=${f.selector} onInput=${set('selector')} placeholder="env=prod" error=${err('filter')} />
        <${Input} label="Address ranges (discovery events)" value=${f.ranges} onInput=${set('ranges')} placeholder="10.1.2.0/24, 10.1.3.10-50" error=${err('filter.ranges')} />
        <${Select} label="Severity at least" value=${f.severity} onChange=${set('severity')} options=${[{ value: '', label: 'any' }, 'info', 'warning', 'error']} />
        <${Input} label="Group window (s)" type="number" min="0" value=${f.group_window_s} onInput=${set('group_window_s')} error=${errs.group_window_s} help="merge identical notices within this time" />
      </div>
    </fieldset>
    <details open=${!!(f.subject || f.text || f.body || err('template'))}><summary>Message template (optional)</summary>
      <p class="help">The step template language, as plain text: <code>{{ job.name }}</code>, <code>{{ event.summary }}</code>, <code>{{ failed_targets }}</code>, <code>{{ link }}</code>… Empty: the channel type's own message.</p>
      <${Input} label="Subject" class="mono" value=${f.subject} onInput=${set('subject')} error=${errs['template.subject']} />
      <${TextArea} label="Text" rows="4" class="mono" value=${f.text} onInput=${set('text')} error=${errs['template.text']} />
      <${TextArea} label="Body (webhook JSON)" rows="3" class="mono" value=${f.body} onInput=${set('body')} error=${errs['template.body']} help="replaces a webhook's event JSON; write values with {{ event.summary | json }}" />
    </details>
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save rule</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

export function Rules() {
  const list = useLoad(() => all('/notifications/rules'), []);
  const channels = useLoad(() => all('/notifications/channels'), []);
  const [dialog, setDialog] = useState(null);
  const [remove, rmError] = useRemove('rule', '/notifications/rules', list.reload);
  const chName = (id) => ((channels.data || []).find((c) => c.id === id) || {}).name || id;
  const op = can('operator');
  const close = () => setDialog(null);
  return html`<div>
    <div class="card-head"><p class="muted">Which events go to which channels.</p>
      ${op ? html`<${Btn} kind="primary" onClick=${() => setDialog({})}>New rule</${Btn}>` : ''}</div>
    <${ErrorBox} error=${list.error || rmError} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No rules yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Events</th><th>Channels</th><th>Filters</th><th>State</th>${op ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${list.data.map((r) => html`<tr key=${r.id}>
        <td>${r.name}${r.template ? html` <span class="label">template</span>` : ''}</td>
        <td><span class="labels">${r.events.map((e) => html`<span key=${e} class="label">${e}</span>`)}</span></td>
        <td>${r.channels.map(chName).join(', ')}</td>
        <td class="small">${Object.entries(r.filter || {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.length : v}`).join(' · ') || html`<span class="muted">all</span>`}</td>
        <td>${r.enabled ? html`<span class="state state-succeeded">enabled</span>` : html`<span class="state state-cancelled">disabled</span>`}</td>
        ${op ? html`<td class="actions-cell"><${Btn} kind="small" onClick=${() => setDialog({ rule: r })} aria-label=${'Edit ' + r.name}>Edit</${Btn}> <${Btn} kind="small" onClick=${() => remove(r)} aria-label=${'Delete ' + r.name}>Delete</${Btn}></td>` : ''}
      </tr>`)}</tbody></table></div>`}
    ${dialog ? html`<${Dialog} title=${dialog.rule ? 'Edit ' + dialog.rule.name : 'New rule'} wide onClose=${close}>
      <${RuleForm} rule=${dialog.rule} onDone=${() => { close(); list.reload(); }} onCancel=${close} /></${Dialog}>` : ''}
  </div>`;
}
