// groups.js - groups: list, the editor (members, nested groups, a selector with a live preview
// of the targets it matches), and a whole-group connectivity test whose results stream in.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Dialog, Empty, ErrorBox, Input, Loading, PageHead, Time, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, del, get, patch, post } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { stream } from '../lib/sse.js';
import { TestResult } from './targets.js';

export function SelectorPreview({ selector }) {
  const [state, setState] = useState({ items: null, error: null });
  const timer = useRef(0);
  useEffect(() => {
    clearTimeout(timer.current);
    if (!selector.trim()) {
      setState({ items: null, error: null });
      return undefined;
    }
    timer.current = setTimeout(() => {
      get('/targets?limit=500&label=' + encodeURIComponent(selector)).then(
        (r) => setState({ items: r.items, error: null }),
        (e) => setState({ items: null, error: e.message }),
      );
    }, 250);
    return () => clearTimeout(timer.current);
  }, [selector]);
  if (state.error) return html`<p class="error-text" role="alert">${state.error}</p>`;
  if (!state.items) return null;
  return html`<div class="preview" aria-live="polite"><b>Matches ${state.items.length} target${state.items.length === 1 ? '' : 's'}:</b> ${state.items.slice(0, 30).map((t) => html`<span key=${t.id} class="label">${t.name}</span>`)}${state.items.length > 30 ? ' …' : ''}</div>`;
}

export function Picker({ legend, items, chosen, onChange }) {
  const [filter, setFilter] = useState('');
  const shown = items.filter((i) => i.name.toLowerCase().includes(filter.toLowerCase()));
  const toggle = (id) => onChange(chosen.includes(id) ? chosen.filter((x) => x !== id) : [...chosen, id]);
  return html`<fieldset class="picker"><legend>${legend} (${chosen.length})</legend>
    ${items.length > 8 ? html`<${Input} label=${'Filter ' + legend.toLowerCase()} value=${filter} onInput=${setFilter} />` : ''}
    <div class="picker-list">${shown.length ? shown.map((i) => html`<label key=${i.id} class="pick"><input type="checkbox" checked=${chosen.includes(i.id)} onChange=${() => toggle(i.id)} /> ${i.name}</label>`) : html`<span class="muted">none</span>`}</div>
  </fieldset>`;
}

export function GroupForm({ group, onDone, onCancel }) {
  const [f, setF] = useState({ name: group ? group.name : '', description: group ? group.description || '' : '', selector: group ? group.selector || '' : '', members: group ? group.members || [] : [], groups: group ? group.groups || [] : [] });
  const targets = useLoad(() => all('/targets'), []);
  const groups = useLoad(() => all('/groups'), []);
  const [save, busy, error] = useAction(async () => {
    const body = { name: f.name, description: f.description, selector: f.selector, members: f.members, groups: f.groups };
    const rec = group ? await patch('/groups/' + group.id, body, { headers: { 'If-Match': `"${group.version}"` } }) : await post('/groups', body);
    notify(`Group ${rec.name} saved`);
    onDone(rec);
  });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const field = error && error.details && error.details.field;
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <${ErrorBox} error=${error} />
    <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${field === 'name' ? error.message : ''} />
    <${Input} label="Description" value=${f.description} onInput=${set('description')} />
    <${Input} label="Selector" value=${f.selector} onInput=${set('selector')} placeholder="role=web,env in (prod,staging),!legacy" help="targets whose labels match are members" error=${field === 'selector' ? error.message : ''} />
    <${SelectorPreview} selector=${f.selector} />
    ${targets.data ? html`<${Picker} legend="Members" items=${targets.data} chosen=${f.members} onChange=${set('members')} />` : html`<${Loading} />`}
    ${groups.data ? html`<${Picker} legend="Nested groups" items=${groups.data.filter((g) => !group || g.id !== group.id)} chosen=${f.groups} onChange=${set('groups')} />` : ''}
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save group</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

export function Groups() {
  const list = useLoad(() => all('/groups'), []);
  const [creating, setCreating] = useState(false);
  return html`<div>
    <${PageHead} title="Groups" sub="Targets by membership, selector and nesting">
      ${can('operator') ? html`<${Btn} kind="primary" onClick=${() => setCreating(true)}>New group</${Btn}>` : ''}
    </${PageHead}>
    <${ErrorBox} error=${list.error} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No groups yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Selector</th><th>Members</th><th>Nested groups</th><th>Description</th></tr></thead>
      <tbody>${list.data.map((g) => html`<tr key=${g.id}><td><a href=${'/groups/' + g.id}>${g.name}</a></td><td>${g.selector ? html`<code>${g.selector}</code>` : '—'}</td><td>${(g.members || []).length}</td><td>${(g.groups || []).length}</td><td>${g.description}</td></tr>`)}</tbody>
    </table></div>`}
    ${creating ? html`<${Dialog} title="New group" wide onClose=${() => setCreating(false)}><${GroupForm} onDone=${(g) => { setCreating(false); navigate('/groups/' + g.id); }} onCancel=${() => setCreating(false)} /></${Dialog}>` : ''}
  </div>`;
}

/** Test every target of the group; results stream in as each target answers. */
function GroupTest({ id, onDone }) {
  const [rows, setRows] = useState(null);
  const [summary, setSummary] = useState(null);
  const [err, setErr] = useState(null);
  const s = useRef(null);
  useEffect(() => () => s.current && s.current.close(), []);
  const start = () => {
    setRows([]);
    setSummary(null);
    setErr(null);
    s.current = stream(`/groups/${id}/test`, {
      method: 'POST',
      onEvent: (ev) => {
        const d = ev.data ? JSON.parse(ev.data) : {};
        if (ev.event === 'result') setRows((r) => [...r, d]);
        else if (ev.event === 'done') {
          setSummary(d);
          onDone();
        }
      },
      onError: (status, body) => setErr((body && body.error && body.error.message) || 'HTTP ' + status),
    });
  };
  return html`<section class="card" aria-labelledby="h-gt"><div class="card-head"><h2 id="h-gt">Connectivity test</h2>
    <${Btn} kind="primary" onClick=${start} disabled=${rows && !summary && !err}>Test all targets</${Btn}></div>
    ${err ? html`<p class="alert alert-error" role="alert">${err}</p>` : ''}
    ${rows ? html`<div aria-live="polite">
      ${summary ? html`<p role="status"><b>Done: ${Object.entries(summary).filter(([k]) => k !== 'total').map(([k, v]) => `${v} ${k}`).join(', ')}</b> of ${summary.total}</p>` : html`<p class="muted" role="status">Testing… ${rows.length} answered</p>`}
      <table class="table"><thead><tr><th>Target</th><th>Result</th></tr></thead><tbody>
      ${rows.map((r) => html`<tr key=${r.target_id}><td><a href=${'/targets/' + r.target_id}>${r.name}</a></td><td><${TestResult} r=${r} /></td></tr>`)}
      </tbody></table></div>` : ''}
  </section>`;
}

export function GroupPage({ id }) {
  const g = useLoad(() => get('/groups/' + id), [id]);
  const members = useLoad(() => get(`/groups/${id}/targets?limit=500`), [id]);
  const [editing, setEditing] = useState(false);
  const [remove] = useAction(async () => {
    if (!confirm(`Delete group ${g.data.name}?`)) return;
    await del('/groups/' + id);
    notify('Group deleted');
    navigate('/groups');
  });
  if (!g.data) return g.error ? html`<${ErrorBox} error=${g.error} />` : html`<${Loading} />`;
  const x = g.data;
  const ts = members.data ? members.data.items : [];
  return html`<div>
    <${PageHead} title=${x.name} sub=${x.description}>
      ${can('operator') ? html`<${Btn} onClick=${() => setEditing(true)}>Edit</${Btn}><${Btn} kind="danger" onClick=${remove}>Delete</${Btn}>` : ''}
    </${PageHead}>
    <div class="grid">
      <section class="card" aria-labelledby="h-g"><h2 id="h-g">Who is in it</h2>
        <p>Selector: ${x.selector ? html`<code>${x.selector}</code>` : '—'} · ${(x.members || []).length} direct members · ${(x.groups || []).length} nested groups</p>
        ${members.data ? html`<p><b>${ts.length} targets</b> in all:</p><ul class="plain cols">${ts.map((t) => html`<li key=${t.id}><a href=${'/targets/' + t.id}>${t.name}</a> ${t.last_test ? (t.last_test.ok ? html`<span class="state state-succeeded">ok</span>` : html`<span class="state state-failed">failed</span>`) : ''}</li>`)}</ul>` : html`<${Loading} />`}
        <p class="muted">Updated <${Time} iso=${x.updated_at} /></p>
      </section>
      ${can('operator') ? html`<${GroupTest} id=${id} onDone=${members.reload} />` : ''}
    </div>
    ${editing ? html`<${Dialog} title=${'Edit ' + x.name} wide onClose=${() => setEditing(false)}><${GroupForm} group=${x} onDone=${(rec) => { setEditing(false); g.set(rec); members.reload(); }} onCancel=${() => setEditing(false)} /></${Dialog}>` : ''}
  </div>`;
}
