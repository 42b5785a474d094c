// schedules.js - schedules: a cron editor with a live preview of the next fires in the
// schedule's own zone (with the DST notes /cron/preview gives), misfire and overlap policies,
// pause/resume, and the missed runs.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, PageHead, Select, State, TextArea, Time, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, del, get, patch, post } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { utcTitle } from '../lib/time.js';

export const ZONES = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];

/** "2027-03-28T03:00:00+02:00" and "CEST" as "2027-03-28 03:00:00 CEST": the zone's wall time. */
export function wall(local, abbr) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(local || '');
  return m ? `${m[1]} ${m[2]} ${abbr || local.slice(19)}` : local;
}

export function Preview({ cron, timezone, from }) {
  const [st, setSt] = useState({ times: null, error: null });
  const t = useRef(0);
  useEffect(() => {
    clearTimeout(t.current);
    if (!cron.trim() || !timezone.trim()) {
      setSt({ times: null, error: null });
      return undefined;
    }
    t.current = setTimeout(() => {
      post('/cron/preview', from ? { cron, timezone, count: 5, from } : { cron, timezone, count: 5 }).then((r) => setSt({ times: r.times, error: null }), (e) => setSt({ times: null, error: e }));
    }, 200);
    return () => clearTimeout(t.current);
  }, [cron, timezone, from]);
  if (st.error) return html`<p class="error-text" role="alert">${st.error.message}</p>`;
  if (!st.times) return null;
  return html`<div class="preview" aria-live="polite"><b>Next fires (${timezone}):</b>
    <ol class="fires">${st.times.map((x) => html`<li key=${x.utc}><span title=${utcTitle(x.utc)}>${wall(x.local, x.abbr)}</span>${x.note ? html`<div class="dst-note" role="note">⚠ ${x.note}</div>` : ''}</li>`)}</ol></div>`;
}

function ScheduleForm({ schedule, onDone, onCancel }) {
  const [from, setFrom] = useState('');
  const jobs = useLoad(() => all('/jobs'), []);
  const s = schedule || {};
  const [f, setF] = useState({ job_id: s.job_id || '', cron: s.cron || '', timezone: s.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC', misfire_policy: s.misfire_policy || 'run_once', overlap_policy: s.overlap_policy || 'forbid', overlap_limit: s.overlap_limit ?? '', misfire_grace_s: s.misfire_grace_s ?? '', description: s.description || '', params: s.params ? JSON.stringify(s.params, null, 2) : '', enabled: s.enabled !== false, start_at: s.start_at || '', end_at: s.end_at || '' });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const [fieldErr, setFieldErr] = useState({});
  const [save, busy, error] = useAction(async () => {
    setFieldErr({});
    let params = null;
    if (f.params.trim()) {
      try {
        params = JSON.parse(f.params);
      } catch (e) {
        setFieldErr({ params: 'not valid JSON' });
        return;
      }
    }
    const body = { job_id: f.job_id, cron: f.cron, timezone: f.timezone, misfire_policy: f.misfire_policy, overlap_policy: f.overlap_policy, description: f.description || null, params, enabled: f.enabled };
    if (f.overlap_limit !== '') body.overlap_limit = Number(f.overlap_limit);
    if (f.misfire_grace_s !== '') body.misfire_grace_s = Number(f.misfire_grace_s);
    if (f.start_at) body.start_at = f.start_at;
    if (f.end_at) body.end_at = f.end_at;
    try {
      const rec = schedule ? await patch('/schedules/' + schedule.id, body, { headers: { 'If-Match': `"${schedule.version}"` } }) : await post('/schedules', body);
      notify('Schedule saved');
      onDone(rec);
    } catch (e) {
      if (e.details && e.details.field) setFieldErr({ [e.details.field]: e.message });
      throw e;
    }
  });
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <${ErrorBox} error=${error} />
    <${Select} label="Job" value=${f.job_id} onChange=${set('job_id')} required error=${fieldErr.job_id} options=${[{ value: '', label: '— choose —' }, ...((jobs.data || []).map((j) => ({ value: j.id, label: j.name })))]} />
    <div class="row">
      <${Input} label="Cron expression" value=${f.cron} onInput=${set('cron')} required class="mono" placeholder="30 2 * * *" error=${fieldErr.cron} help="5 fields (minute) or 6 (second first); @daily, L, W, #, H" />
      <${Input} label="Time zone" value=${f.timezone} onInput=${set('timezone')} required list="tz-list" error=${fieldErr.timezone} />
      <datalist id="tz-list">${ZONES.map((z) => html`<option value=${z} />`)}</datalist>
    </div>
    <${Input} label="Preview from" type="date" value=${from ? from.slice(0, 10) : ''} onInput=${(v) => setFrom(v ? v + 'T00:00:00Z' : '')} help="see the fires around a date (a daylight-saving change)" />
    <${Preview} cron=${f.cron} timezone=${f.timezone} from=${from} />
    <div class="row">
      <${Select} label="Misfire policy" value=${f.misfire_policy} onChange=${set('misfire_policy')} error=${fieldErr.misfire_policy} options=${[{ value: 'run_once', label: 'run once (default)' }, { value: 'skip', label: 'skip' }, { value: 'run_all', label: 'run all (capped)' }]} help="when fires were missed (daemon down, clock jump)" />
      <${Input} label="Misfire grace (s)" type="number" min="0" value=${f.misfire_grace_s} onInput=${set('misfire_grace_s')} error=${fieldErr.misfire_grace_s} />
      <${Select} label="Overlap policy" value=${f.overlap_policy} onChange=${set('overlap_policy')} error=${fieldErr.overlap_policy} options=${[{ value: 'forbid', label: 'forbid' }, { value: 'allow', label: 'allow (up to N)' }, { value: 'replace', label: 'replace the running one' }, { value: 'queue', label: 'queue (up to N)' }]} help="when the previous run is still going" />
      <${Input} label="N (overlap limit)" type="number" min="1" value=${f.overlap_limit} onInput=${set('overlap_limit')} error=${fieldErr.overlap_limit} />
    </div>
    <${TextArea} label="Parameters (JSON)" rows="3" class="mono" value=${f.params} onInput=${set('params')} error=${fieldErr.params} />
    <${Input} label="Description" value=${f.description} onInput=${set('description')} />
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save schedule</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

function PauseButton({ s, onChange }) {
  const [toggle, busy] = useAction(async () => {
    onChange(await post(`/schedules/${s.id}/${s.enabled ? 'pause' : 'resume'}`));
    notify(s.enabled ? 'Schedule paused' : 'Schedule resumed');
  });
  return html`<${Btn} kind="small" busy=${busy} onClick=${toggle} aria-label=${(s.enabled ? 'Pause' : 'Resume') + ' schedule ' + s.cron}>${s.enabled ? 'Pause' : 'Resume'}</${Btn}>`;
}

export function Schedules() {
  const list = useLoad(() => all('/schedules'), []);
  const jobs = useLoad(() => all('/jobs'), []);
  const [creating, setCreating] = useState(false);
  const name = (id) => ((jobs.data || []).find((j) => j.id === id) || {}).name || id;
  return html`<div>
    <${PageHead} title="Schedules" sub="Each in its own time zone; daylight-saving days handled by one rule">
      ${can('operator') ? html`<${Btn} kind="primary" onClick=${() => setCreating(true)}>New schedule</${Btn}>` : ''}
    </${PageHead}>
    <${ErrorBox} error=${list.error} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No schedules yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Job</th><th>Cron</th><th>Zone</th><th>Next fire (schedule's zone)</th><th>Policies</th><th>State</th>${can('operator') ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${list.data.map((s) => html`<tr key=${s.id}>
        <td><a href=${'/schedules/' + s.id}>${name(s.job_id)}</a>${s.description ? html`<div class="muted">${s.description}</div>` : ''}</td>
        <td><code>${s.cron}</code></td><td>${s.timezone}</td>
        <td>${s.enabled && s.status ? html`<${Time} iso=${s.status.next_fire_at} zone=${s.timezone} />` : html`<span class="muted">—</span>`}</td>
        <td class="small">misfire ${s.misfire_policy}, overlap ${s.overlap_policy}</td>
        <td>${s.enabled ? html`<span class="state state-running">active</span>` : html`<span class="state state-cancelled">paused</span>`}${s.status && s.status.last_error ? html`<div class="error-text small">${s.status.last_error}</div>` : ''}</td>
        ${can('operator') ? html`<td class="actions-cell"><${PauseButton} s=${s} onChange=${list.reload} /></td>` : ''}
      </tr>`)}</tbody></table></div>`}
    ${creating ? html`<${Dialog} title="New schedule" wide onClose=${() => setCreating(false)}><${ScheduleForm} onDone=${(s) => { setCreating(false); navigate('/schedules/' + s.id); }} onCancel=${() => setCreating(false)} /></${Dialog}>` : ''}
  </div>`;
}

export function SchedulePage({ id }) {
  const s = useLoad(() => get('/schedules/' + id), [id]);
  const next = useLoad(() => get(`/schedules/${id}/next?count=10`), [id, s.data && s.data.version]);
  const job = useLoad(() => (s.data ? get('/jobs/' + s.data.job_id).catch(() => null) : null), [s.data && s.data.job_id]);
  const runs = useLoad(async () => {
    if (!s.data) return null;
    const r = await get(`/runs?job=${s.data.job_id}&limit=200`);
    return r.items.filter((x) => x.schedule_id === id);
  }, [s.data && s.data.job_id]);
  const [editing, setEditing] = useState(false);
  const [remove] = useAction(async () => {
    if (!confirm('Delete this schedule?')) return;
    await del('/schedules/' + id);
    notify('Schedule deleted');
    navigate('/schedules');
  });
  if (!s.data) return s.error ? html`<${ErrorBox} error=${s.error} />` : html`<${Loading} />`;
  const x = s.data;
  const missed = (runs.data || []).filter((r) => r.state === 'missed');
  const times = next.data ? next.data.times || next.data.items || [] : [];
  return html`<div>
    <${PageHead} title=${`Schedule of ${job.data ? job.data.name : '…'}`} sub=${html`<code>${x.cron}</code> in ${x.timezone} · ${x.enabled ? 'active' : 'paused'}`}>
      ${can('operator') ? html`<${PauseButton} s=${x} onChange=${s.set} /><${Btn} onClick=${() => setEditing(true)}>Edit</${Btn}><${Btn} kind="danger" onClick=${remove}>Delete</${Btn}>` : ''}
    </${PageHead}>
    <div class="grid">
      <section class="card" aria-labelledby="h-nf"><h2 id="h-nf">Next fires</h2>
        ${x.enabled ? html`<ol class="fires">${times.map((t) => html`<li key=${t.utc}><span title=${utcTitle(t.utc)}>${t.local ? wall(t.local, t.abbr) : html`<${Time} iso=${t.utc} zone=${x.timezone} />`}</span>${t.note ? html`<div class="dst-note" role="note">⚠ ${t.note}</div>` : ''}</li>`)}</ol>` : html`<p class="muted">Paused: nothing fires.</p>`}
      </section>
      <section class="card" aria-labelledby="h-pol"><h2 id="h-pol">Policies</h2><dl class="facts">
        <dt>Misfire</dt><dd>${x.misfire_policy}${x.misfire_grace_s ? ` within ${x.misfire_grace_s} s` : ''}</dd>
        <dt>Overlap</dt><dd>${x.overlap_policy}${x.overlap_limit ? ` (${x.overlap_limit})` : ''}</dd>
        <dt>Last fire</dt><dd><${Time} iso=${x.status && x.status.last_fire_at} zone=${x.timezone} /></dd>
        <dt>Last run</dt><dd>${x.status && x.status.last_run_id ? html`<a href=${'/runs/' + x.status.last_run_id}>open</a>` : '—'}</dd>
        ${x.status && x.status.last_error ? html`<dt>Last error</dt><dd class="error-text">${x.status.last_error}</dd>` : ''}
        <dt>Parameters</dt><dd>${x.params ? html`<code>${JSON.stringify(x.params)}</code>` : '—'}</dd>
      </dl></section>
      <section class="card" aria-labelledby="h-missed"><h2 id="h-missed">Missed runs (${missed.length})</h2>
        ${missed.length ? html`<ul class="plain">${missed.map((r) => html`<li key=${r.id}><a href=${'/runs/' + r.id}><${Time} iso=${r.planned_at} zone=${x.timezone} /></a> <span class="muted">${r.reason || ''}</span></li>`)}</ul>` : html`<${Empty}>None missed.</${Empty}>`}
      </section>
      <section class="card" aria-labelledby="h-sr"><h2 id="h-sr">Recent runs</h2>
        ${runs.data && runs.data.length ? html`<ul class="plain">${runs.data.slice(0, 10).map((r) => html`<li key=${r.id}><a href=${'/runs/' + r.id}><${Time} iso=${r.planned_at || r.created_at} zone=${x.timezone} /></a> <${State} state=${r.state} /></li>`)}</ul>` : html`<${Empty}>No runs yet.</${Empty}>`}
        <p><a href=${'/runs?schedule=' + id}>All runs of this schedule</a></p>
      </section>
    </div>
    ${editing ? html`<${Dialog} title="Edit schedule" wide onClose=${() => setEditing(false)}><${ScheduleForm} schedule=${x} onDone=${(rec) => { setEditing(false); s.set(rec); }} onCancel=${() => setEditing(false)} /></${Dialog}>` : ''}
  </div>`;
}
