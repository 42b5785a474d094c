// discovery_profiles.js - scan profiles: a saved scan with a cron schedule in a time zone (the
// schedules' cron editor and its preview of the next fires), a vanish count, and auto-onboard
// rules for the new hosts each scan finds; run one now.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, Select, TextArea, Time, notify, useAction, useLoad, useRemove } from '../ui/components.js';
import { all, can, patch, post } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { ruleFromForm, ruleToForm, specFromForm, specToForm } from '../lib/discovery.js';
import { Preview, ZONES } from './schedules.js';
import { SpecFields, specErrors } from './discovery_scans.js';

const BLANK_RULE = ruleToForm({});

function RuleFields({ r, i, set, creds, groups, onRemove, error }) {
  const up = (k) => (v) => set({ ...r, [k]: v });
  return html`<fieldset class="onboard-rule"><legend>Rule ${i + 1}</legend>
    ${error ? html`<p class="error-text" role="alert">${error}</p>` : ''}
    <div class="row">
      <${TextArea} label="Only in ranges" rows="2" class="mono" value=${r.ranges} onInput=${up('ranges')} help="default: all the scan's ranges" />
      <${Select} label="Answering" value=${r.transport} onChange=${up('transport')} options=${[{ value: 'ssh', label: 'SSH' }, { value: 'winrm', label: 'WinRM' }]} />
      <${Select} label="Credential" value=${r.credential_id} onChange=${up('credential_id')} required options=${[{ value: '', label: '— choose —' }, ...creds.filter((c) => c.type !== 'secret').map((c) => ({ value: c.id, label: c.name }))]} />
      <${Select} label="Join group" value=${r.group_id} onChange=${up('group_id')} options=${[{ value: '', label: '— none —' }, ...groups.map((g) => ({ value: g.id, label: g.name }))]} />
    </div>
    <div class="row">
      <${Input} label="Name template" class="mono" value=${r.name_template} onInput=${up('name_template')} placeholder="web-{{ address | replace('.', '-') }}" />
      <${TextArea} label="Labels" rows="2" value=${r.labels} onInput=${up('labels')} help="key=value a line" />
      <${Check} label="Test after onboarding" checked=${r.test} onChange=${up('test')} />
    </div>
    <${Btn} kind="small" onClick=${onRemove} aria-label=${`Remove rule ${i + 1}`}>Remove rule</${Btn}>
  </fieldset>`;
}

function ProfileForm({ profile, onDone, onCancel }) {
  const p = profile || {};
  const [f, setF] = useState(() => ({ name: p.name || '', description: p.description || '', cron: p.cron || '', timezone: p.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC', vanish_after: p.vanish_after ?? '', enabled: p.enabled !== false, ...specToForm(p.spec), rules: (p.auto_onboard || []).map(ruleToForm) }));
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const creds = useLoad(() => all('/credentials'), []);
  const groups = useLoad(() => all('/groups'), []);
  const [errs, setErrs] = useState({});
  const [save, busy, error] = useAction(async () => {
    const s = specFromForm(f);
    const rules = f.rules.map(ruleFromForm);
    const e = { ...(s.errors || {}) };
    rules.forEach((r, i) => {
      if (r.error) e['rule' + i] = `${r.error}: ${r.message}`;
    });
    setErrs(e);
    if (Object.keys(e).length) return;
    const body = { name: f.name, description: f.description || null, spec: { ...(p.spec && p.spec.options ? { options: p.spec.options } : {}), ...s.spec }, cron: f.cron.trim() || null, timezone: f.timezone || null, enabled: f.enabled, vanish_after: f.vanish_after === '' ? null : Number(f.vanish_after), auto_onboard: rules.map((r) => r.rule) };
    try {
      const rec = profile ? await patch('/discovery/profiles/' + profile.id, body, { headers: { 'If-Match': `"${profile.version}"` } }) : await post('/discovery/profiles', body);
      notify(`Profile ${rec.name} saved`);
      onDone(rec);
    } catch (x) {
      const field = (x.details && x.details.field) || '';
      const m = /^auto_onboard\[?\.?(\d+)/.exec(field);
      setErrs(field.startsWith('spec') ? specErrors(x, 'spec.') : m ? { ['rule' + m[1]]: x.message } : { [field.split(/[.[]/)[0]]: x.message });
      throw x;
    }
  });
  const setRule = (i) => (r) => setF((x) => ({ ...x, rules: x.rules.map((y, j) => (j === i ? r : y)) }));
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <${ErrorBox} error=${error} />
    <div class="row">
      <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${errs.name} />
      <${Input} label="Description" value=${f.description} onInput=${set('description')} />
    </div>
    <fieldset><legend>What to scan</legend><${SpecFields} f=${f} set=${set} errs=${errs} /></fieldset>
    <fieldset><legend>When</legend>
      <div class="row">
        <${Input} label="Cron expression" value=${f.cron} onInput=${set('cron')} class="mono" placeholder="0 2 * * *" error=${errs.cron} help="empty: only when run by hand" />
        <${Input} label="Time zone" value=${f.timezone} onInput=${set('timezone')} list="tz-list-p" error=${errs.timezone} />
        <datalist id="tz-list-p">${ZONES.map((z) => html`<option value=${z} />`)}</datalist>
        <${Input} label="Vanished after (scans)" type="number" min="1" value=${f.vanish_after} onInput=${set('vanish_after')} error=${errs.vanish_after} help="missing from this many scans in a row" />
      </div>
      <${Preview} cron=${f.cron} timezone=${f.timezone} from="" />
    </fieldset>
    <fieldset><legend>Auto-onboard new hosts</legend>
      ${f.rules.length ? '' : html`<p class="muted">No rules: found hosts wait in the inventory. Changed hosts are never onboarded.</p>`}
      ${f.rules.map((r, i) => html`<${RuleFields} key=${i} r=${r} i=${i} set=${setRule(i)} creds=${creds.data || []} groups=${groups.data || []} error=${errs['rule' + i]} onRemove=${() => setF((x) => ({ ...x, rules: x.rules.filter((_, j) => j !== i) }))} />`)}
      <${Btn} kind="small" onClick=${() => setF((x) => ({ ...x, rules: [...x.rules, { ...BLANK_RULE }] }))}>Add rule</${Btn}>
    </fieldset>
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save profile</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

export function Profiles() {
  const list = useLoad(() => all('/discovery/profiles'), []);
  const [dialog, setDialog] = useState(null);
  const [runNow, , runErr] = useAction(async (p) => {
    const scan = await post(`/discovery/profiles/${p.id}/run`);
    navigate('/discovery/scans/' + scan.id);
  });
  const [remove, rmErr] = useRemove('profile', '/discovery/profiles', list.reload);
  const op = can('operator');
  const close = () => setDialog(null);
  return html`<div>
    <div class="card-head"><p class="muted">Saved scans that run on a schedule and onboard what they find.</p>
      ${op ? html`<${Btn} kind="primary" onClick=${() => setDialog({})}>New profile</${Btn}>` : ''}</div>
    <${ErrorBox} error=${list.error || runErr || rmErr} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No profiles yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Ranges</th><th>Schedule</th><th>Next scan</th><th>Last scan</th><th>Auto-onboard</th>${op ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${list.data.map((p) => html`<tr key=${p.id}>
        <td>${p.name}${p.enabled === false ? html` <span class="muted">(paused)</span>` : ''}</td>
        <td class="mono small">${((p.spec && p.spec.ranges) || []).join(', ')}</td>
        <td>${p.cron ? html`<code>${p.cron}</code> <span class="muted">${p.timezone || 'UTC'}</span>` : html`<span class="muted">by hand</span>`}</td>
        <td><${Time} iso=${p.next_run_at} zone=${p.timezone} /></td>
        <td>${p.last_scan_id ? html`<a href=${'/discovery/scans/' + p.last_scan_id}><${Time} iso=${p.last_run_at} /></a>` : html`<span class="muted">never</span>`}</td>
        <td>${(p.auto_onboard || []).length || html`<span class="muted">—</span>`}</td>
        ${op ? html`<td class="actions-cell"><${Btn} kind="small" onClick=${() => runNow(p)} aria-label=${'Scan now with ' + p.name}>Scan now</${Btn}> <${Btn} kind="small" onClick=${() => setDialog({ profile: p })} aria-label=${'Edit ' + p.name}>Edit</${Btn}> <${Btn} kind="small" onClick=${() => remove(p)} aria-label=${'Delete ' + p.name}>Delete</${Btn}></td>` : ''}
      </tr>`)}</tbody></table></div>`}
    ${dialog ? html`<${Dialog} title=${dialog.profile ? 'Edit ' + dialog.profile.name : 'New profile'} wide onClose=${close}>
      <${ProfileForm} profile=${dialog.profile} onDone=${() => { close(); list.reload(); }} onCancel=${close} /></${Dialog}>` : ''}
  </div>`;
}
