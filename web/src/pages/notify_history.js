// notify_history.js - the delivery history: newest first, filters by channel, rule, state and
// event in the URL, paging by cursor, and every attempt of a delivery with its status and error.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Empty, ErrorBox, Loading, Select, State, Time, useLoad } from '../ui/components.js';
import { all, get } from '../lib/api.js';
import { navigate, qs, query } from '../lib/router.js';
import { EVENTS } from '../lib/notify.js';

const PAGE = 50;
const STATES = ['', 'pending', 'delivered', 'failed', 'gave_up'];

function Attempts({ d }) {
  const a = d.attempts || [];
  if (!a.length) return html`<span class="muted">none yet${d.next_attempt_at ? html`, next <${Time} iso=${d.next_attempt_at} />` : ''}</span>`;
  const last = a[a.length - 1];
  return html`<details class="attempts"><summary>${a.length} · ${last.status ? 'HTTP ' + last.status : last.error ? 'error' : last.result || ''}</summary>
    <ol>${a.map((x, i) => html`<li key=${i}><${Time} iso=${x.at} /> · ${x.status ? 'HTTP ' + x.status : 'no answer'}${x.result ? ' · ' + x.result : ''}${x.duration_ms !== undefined ? ` · ${x.duration_ms} ms` : ''}${x.error ? html`<div class="error-text small">${x.error}</div>` : ''}</li>`)}</ol>
    ${d.next_attempt_at && d.state !== 'delivered' ? html`<p class="small muted">Next attempt <${Time} iso=${d.next_attempt_at} /></p>` : ''}
  </details>`;
}

/** What the notice said, and the run it is about. */
function Summary({ d }) {
  const p = d.payload || {};
  const ev = p.event || {};
  const run = p.run && p.run.id;
  if (!ev.summary && !run) return null;
  return html`<div class="small">${ev.summary || ''}${run ? html` <a href=${'/runs/' + run}>run</a>` : ''}</div>`;
}

export function Deliveries() {
  const q = query();
  const f = { channel: q.get('channel') || '', rule: q.get('rule') || '', state: q.get('state') || '', event: q.get('event') || '' };
  const cursor = q.get('cursor') || '';
  const [draft, setDraft] = useState(f);
  const [trail, setTrail] = useState([]);
  const channels = useLoad(() => all('/notifications/channels'), []);
  const rules = useLoad(() => all('/notifications/rules'), []);
  const page = useLoad(() => get('/notifications/deliveries' + qs({ ...f, limit: PAGE, cursor })), [q.toString()]);
  const nameOf = (list, id) => ((list.data || []).find((x) => x.id === id) || {}).name || (id ? id.slice(0, 8) : '—');
  const go = (over, keepTrail) => {
    if (!keepTrail) setTrail([]);
    navigate('/notifications/deliveries' + qs({ ...f, ...over }));
  };
  const set = (k) => (v) => setDraft({ ...draft, [k]: v });
  const items = page.data ? page.data.items : null;
  return html`<div>
    <form class="filters" aria-label="Filter deliveries" onSubmit=${(e) => { e.preventDefault(); go({ ...draft, cursor: '' }); }}>
      <${Select} label="Channel" value=${draft.channel} onChange=${set('channel')} options=${[{ value: '', label: 'any' }, ...(channels.data || []).map((c) => ({ value: c.id, label: c.name }))]} />
      <${Select} label="Rule" value=${draft.rule} onChange=${set('rule')} options=${[{ value: '', label: 'any' }, ...(rules.data || []).map((r) => ({ value: r.id, label: r.name }))]} />
      <${Select} label="State" value=${draft.state} onChange=${set('state')} options=${STATES.map((s) => ({ value: s, label: s || 'any' }))} />
      <${Select} label="Event" value=${draft.event} onChange=${set('event')} options=${[{ value: '', label: 'any' }, ...EVENTS.map(([e]) => e), 'test']} />
      <button type="submit" class="btn">Filter</button>
    </form>
    <${ErrorBox} error=${page.error} />
    ${!items ? html`<${Loading} />` : items.length === 0 ? html`<${Empty}>No deliveries match.</${Empty}>` : html`<div class="table-wrap"><table class="table deliveries-table">
      <thead><tr><th>Created</th><th>Event</th><th>Channel</th><th>Rule</th><th>State</th><th>Attempts</th><th>Delivered</th></tr></thead>
      <tbody>${items.map((d) => html`<tr key=${d.id}>
        <td><${Time} iso=${d.created_at} /></td>
        <td><code>${d.event}</code>${d.count > 1 ? html` <span class="muted">×${d.count}</span>` : ''} <span class="muted small">${d.severity || ''}</span><${Summary} d=${d} /></td>
        <td>${d.channel_name || nameOf(channels, d.channel_id)} <span class="muted small">${d.channel_type || ''}</span></td>
        <td>${d.rule_id ? d.rule_name || nameOf(rules, d.rule_id) : html`<span class="muted">test</span>`}</td>
        <td><${State} state=${d.state} />${d.error && d.state !== 'delivered' ? html`<div class="error-text small">${d.error}</div>` : ''}</td>
        <td><${Attempts} d=${d} /></td>
        <td><${Time} iso=${d.delivered_at} /></td>
      </tr>`)}</tbody></table></div>`}
    <nav class="pager" aria-label="Pages">
      <${Btn} disabled=${!cursor} onClick=${() => go({ cursor: '' })}>First page</${Btn}>
      <${Btn} disabled=${!trail.length} onClick=${() => { const t = trail.slice(0, -1); setTrail(t); go({ cursor: trail[trail.length - 1] || '' }, true); }}>Previous</${Btn}>
      <${Btn} disabled=${!page.data || !page.data.next_cursor} onClick=${() => { setTrail([...trail, cursor]); go({ cursor: page.data.next_cursor }, true); }}>Next page</${Btn}>
      <${Btn} onClick=${page.reload}>Refresh</${Btn}>
    </nav>
  </div>`;
}
