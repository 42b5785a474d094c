// runs.js - the run history: filters (job, state, target, schedule, time) in the URL, and
// paging by cursor, so 10,000+ runs page as fast as the first 50.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Empty, ErrorBox, Input, Loading, PageHead, Select, State, Time, useLoad } from '../ui/components.js';
import { all, get } from '../lib/api.js';
import { navigate, qs, query } from '../lib/router.js';
import { between } from '../lib/time.js';

const STATES = ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'interrupted', 'missed'];
const PAGE = 50;

const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocalInput = (v) => (v ? new Date(v).toISOString() : '');

/** One page of runs; with a schedule filter the pages of the schedule's job are read until a
 * page of that schedule's runs is full (the API filters by job, the schedule is checked here). */
async function loadPage(f, cursor, schedules) {
  const base = { job: f.job, state: f.state, target: f.target, since: f.since, until: f.until };
  if (!f.schedule) {
    const r = await get('/runs' + qs({ ...base, limit: PAGE, cursor }));
    return { items: r.items, next: r.next_cursor };
  }
  const sched = schedules.find((s) => s.id === f.schedule);
  if (!sched) return { items: [], next: null };
  const items = [];
  let next = cursor;
  for (let i = 0; i < 20 && items.length < PAGE; i++) {
    const r = await get('/runs' + qs({ ...base, job: sched.job_id, limit: 500, cursor: next }));
    items.push(...r.items.filter((x) => x.schedule_id === sched.id));
    next = r.next_cursor;
    if (!next) break;
  }
  return { items, next };
}

export function Runs() {
  const q = query();
  const f = { job: q.get('job') || '', state: q.get('state') || '', target: q.get('target') || '', schedule: q.get('schedule') || '', since: q.get('since') || '', until: q.get('until') || '' };
  const cursor = q.get('cursor') || '';
  const [draft, setDraft] = useState(f);
  const [trail, setTrail] = useState([]);
  const schedules = useLoad(() => all('/schedules'), []);
  const jobs = useLoad(() => all('/jobs'), []);
  // Only a schedule filter needs the schedules first; every other page loads at once.
  const page = useLoad(() => (!f.schedule || schedules.data ? loadPage(f, cursor, schedules.data || []) : null), [q.toString(), !f.schedule || !!schedules.data]);
  const jobName = (jid) => ((jobs.data || []).find((j) => j.id === jid) || {}).name || jid;
  const go = (over, keepTrail) => {
    if (!keepTrail) setTrail([]);
    navigate('/runs' + qs({ ...f, ...over }));
  };
  const set = (k) => (v) => setDraft({ ...draft, [k]: v });
  return html`<div>
    <${PageHead} title="Runs" sub="Newest first" />
    <form class="filters" aria-label="Filter runs" onSubmit=${(e) => { e.preventDefault(); go({ ...draft, cursor: '' }); }}>
      <${Select} label="Job" value=${draft.job} onChange=${set('job')} options=${[{ value: '', label: 'any' }, ...(jobs.data || []).map((j) => ({ value: j.name, label: j.name }))]} />
      <${Select} label="State" value=${draft.state} onChange=${set('state')} options=${STATES.map((s) => ({ value: s, label: s || 'any' }))} />
      <${Input} label="Target" value=${draft.target} onInput=${set('target')} placeholder="name or id" />
      <${Select} label="Schedule" value=${draft.schedule} onChange=${set('schedule')} options=${[{ value: '', label: 'any' }, ...(schedules.data || []).map((s) => ({ value: s.id, label: `${jobName(s.job_id)} · ${s.cron}` }))]} />
      <${Input} label="Since" type="datetime-local" value=${toLocalInput(draft.since)} onInput=${(v) => setDraft({ ...draft, since: fromLocalInput(v) })} />
      <${Input} label="Until" type="datetime-local" value=${toLocalInput(draft.until)} onInput=${(v) => setDraft({ ...draft, until: fromLocalInput(v) })} />
      <button type="submit" class="btn">Filter</button>
    </form>
    <${ErrorBox} error=${page.error} />
    ${!page.data ? html`<${Loading} />` : page.data.items.length === 0 ? html`<${Empty}>No runs match.</${Empty}>` : html`<div class="table-wrap"><table class="table runs-table">
      <thead><tr><th>Job</th><th>State</th><th>Targets</th><th>Started</th><th>Duration</th><th>Trigger</th></tr></thead>
      <tbody>${page.data.items.map((r) => html`<tr key=${r.id}>
        <td><a href=${'/runs/' + r.id}>${r.job_name || jobName(r.job_id)}</a>${r.dry_run ? ' (dry run)' : ''}</td>
        <td><${State} state=${r.state} /></td>
        <td>${r.target_count ?? ''}${r.counts && r.counts.failed ? html` <span class="bad">${r.counts.failed} failed</span>` : ''}</td>
        <td><${Time} iso=${r.started_at || r.planned_at || r.created_at} /></td>
        <td>${between(r.started_at, r.finished_at)}</td>
        <td>${r.schedule_id ? html`<a href=${'/schedules/' + r.schedule_id}>schedule</a>` : r.retry_of ? 'retry' : r.triggered_by || ''}</td>
      </tr>`)}</tbody></table></div>`}
    <nav class="pager" aria-label="Pages">
      <${Btn} disabled=${!cursor} onClick=${() => go({ cursor: '' })}>First page</${Btn}>
      <${Btn} disabled=${!trail.length} onClick=${() => { const t = trail.slice(0, -1); setTrail(t); go({ cursor: trail[trail.length - 1] || '' }, true); }}>Previous</${Btn}>
      <${Btn} disabled=${!page.data || !page.data.next} onClick=${() => { setTrail([...trail, cursor]); go({ cursor: page.data.next }, true); }}>Next page</${Btn}>
    </nav>
  </div>`;
}
