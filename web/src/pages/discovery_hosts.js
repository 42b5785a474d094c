// discovery_hosts.js - the host inventory: filters by state, port, OS and range in the URL,
// paging by cursor, changed hosts shown loudly with what changed and an accept button, and
// onboarding of the selected hosts into targets with a result per host; hosts found, changed or
// vanished while the page is open are announced (the inventory's event stream).
import { useEffect, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, Select, State, Time, TextArea, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, get, post } from '../lib/api.js';
import { navigate, qs, query } from '../lib/router.js';
import { stream } from '../lib/sse.js';
import { changeText, openPorts } from '../lib/discovery.js';
import { parsePairs } from '../lib/notify.js';

const PAGE = 100;

function Changes({ host }) {
  const pending = (host.changes || []).filter((c) => !c.accepted_at);
  return html`<ul class="plain small">${pending.map((c, i) => html`<li key=${i}><b>${c.field.replace(/_/g, ' ')}</b>: was <code>${changeText(c.before)}</code>, now <code>${changeText(c.after)}</code>${c.at ? html` <${Time} iso=${c.at} />` : ''}</li>`)}</ul>`;
}

function AcceptButton({ host, onDone }) {
  const [accept, busy] = useAction(async () => {
    try {
      onDone(await post(`/discovery/hosts/${host.id}/accept`, {}, { headers: { 'If-Match': `"${host.version}"` } }));
      notify(`Change of ${host.address} accepted`);
    } catch (e) {
      notify(e.message, 'error');
    }
  });
  return html`<${Btn} kind="small" busy=${busy} onClick=${accept} aria-label=${'Accept the change of ' + host.address}>Accept change</${Btn}>`;
}

/** Hosts with a checkbox each (operators), the changed ones loud. */
export function HostTable({ hosts, picked, onPick, onChanged }) {
  const op = can('operator') && onPick;
  const toggle = (id) => onPick(picked.includes(id) ? picked.filter((x) => x !== id) : [...picked, id]);
  const pickable = hosts.filter((h) => h.state !== 'changed' && h.state !== 'known');
  const allOn = pickable.length > 0 && pickable.every((h) => picked.includes(h.id));
  return html`<div class="table-wrap"><table class="table hosts-table">
    <thead><tr>${op ? html`<th><input type="checkbox" aria-label="Select all new hosts" checked=${allOn} onChange=${() => onPick(allOn ? [] : pickable.map((h) => h.id))} /></th>` : ''}<th>Address</th><th>Names</th><th>Open ports</th><th>SSH host key</th><th>WinRM</th><th>OS</th><th>State</th><th>Last seen</th></tr></thead>
    <tbody>${hosts.map((h) => html`<tr key=${h.id} class=${h.state === 'changed' ? 'host-changed' : ''}>
      ${op ? html`<td><input type="checkbox" aria-label=${'Select ' + h.address} checked=${picked.includes(h.id)} onChange=${() => toggle(h.id)} /></td>` : ''}
      <td class="mono">${h.address}</td>
      <td class="small">${(h.hostnames || []).join(', ') || html`<span class="muted">—</span>`}</td>
      <td>${openPorts(h).join(', ')}</td>
      <td class="small">${h.ssh && h.ssh.host_key_fingerprint ? html`${h.ssh.host_key_type} <code class="fp">${h.ssh.host_key_fingerprint}</code><div class="muted">${h.ssh.banner || ''}</div>` : html`<span class="muted">—</span>`}</td>
      <td class="small">${h.winrm ? `${h.winrm.scheme || ''} ${h.winrm.vendor || ''} ${h.winrm.protocol_version || ''}` : html`<span class="muted">—</span>`}</td>
      <td title=${(h.os_evidence || []).map((e) => `${e.source}: ${e.detail}`).join('\n')}>${h.os_family || html`<span class="muted">unknown</span>`}</td>
      <td><${State} state=${h.state} />${h.target_id ? html` <a href=${'/targets/' + h.target_id}>target</a>` : ''}
        ${h.state === 'changed' ? html`<div class="changed-box" role="alert"><b>Changed: check before you trust it.</b><${Changes} host=${h} />${can('operator') && onChanged ? html`<${AcceptButton} host=${h} onDone=${onChanged} />` : ''}</div>` : ''}</td>
      <td><${Time} iso=${h.last_seen} /></td>
    </tr>`)}</tbody>
  </table></div>`;
}

function OnboardResults({ r }) {
  return html`<div aria-live="polite">
    <p><b>${r.created} created</b>, ${r.existing || 0} already targets, ${r.failed} failed${r.test ? html` · tested: ${r.test.ok ?? ''} ok, ${r.test.failed ?? ''} failed` : ''}</p>
    <div class="table-wrap"><table class="table onboard-results"><thead><tr><th>Host</th><th>Result</th><th>Target</th><th>Test</th></tr></thead><tbody>
      ${r.items.map((it) => html`<tr key=${it.host_id}>
        <td class="mono">${it.address || it.host_id}</td>
        <td>${it.status === 'error' ? html`<span class="state state-failed">error</span> <span class="error-text">${it.error && (it.error.field ? it.error.field + ': ' : '') + it.error.message}</span>` : html`<span class=${'state ' + (it.status === 'created' ? 'state-succeeded' : 'state-known')}>${it.status}</span>`}</td>
        <td>${it.target_id ? html`<a href=${'/targets/' + it.target_id}>${it.name || 'target'}</a>` : '—'}</td>
        <td>${it.test ? (it.test.ok ? html`<span class="state state-succeeded">ok</span>` : html`<span class="state state-failed">failed</span> <span class="muted">${it.test.error || ''}</span>`) : html`<span class="muted">—</span>`}</td>
      </tr>`)}
    </tbody></table></div>
  </div>`;
}

/** Onboard hosts (by id, or by a filter): credential, labels, group, name template, a test. */
export function OnboardForm({ hostIds, filter, onCancel, onDone }) {
  const creds = useLoad(() => all('/credentials'), []);
  const groups = useLoad(() => all('/groups'), []);
  const [f, setF] = useState({ credential_id: '', labels: '', group_id: '', name_template: '', transport: '', test: true });
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const [result, setResult] = useState(null);
  const [errs, setErrs] = useState({});
  const [run, busy, error] = useAction(async () => {
    const labels = parsePairs(f.labels);
    setErrs(labels.error ? { labels: labels.error } : {});
    if (labels.error) return;
    const body = { credential_id: f.credential_id, labels: labels.value, test: f.test };
    if (hostIds) body.host_ids = hostIds;
    else body.filter = filter;
    if (f.group_id) body.group_id = f.group_id;
    if (f.name_template.trim()) body.name_template = f.name_template.trim();
    if (f.transport) body.transport = f.transport;
    try {
      const r = await post('/discovery/hosts/onboard', body);
      setResult(r);
      if (onDone) onDone(r);
    } catch (e) {
      const k = e.details && e.details.field;
      if (k) setErrs({ [k]: e.message });
      throw e;
    }
  });
  if (result) return html`<div><${OnboardResults} r=${result} /><div class="actions"><a class="btn btn-primary" href="/targets">Targets</a><${Btn} onClick=${onCancel}>Close</${Btn}></div></div>`;
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); run(); }}>
    <${ErrorBox} error=${error} />
    <p class="help">Each host becomes a target: SSH when the scan read its host key (that key pinned, strict policy), else WinRM. A host that is a target already is reported, not duplicated; a changed host is refused until its change is accepted.</p>
    <div class="row">
      <${Select} label="Credential" value=${f.credential_id} onChange=${set('credential_id')} required error=${errs.credential_id} options=${[{ value: '', label: '— choose —' }, ...(creds.data || []).filter((c) => c.type !== 'secret').map((c) => ({ value: c.id, label: `${c.name} (${c.type})` }))]} />
      <${Select} label="Add to group" value=${f.group_id} onChange=${set('group_id')} error=${errs.group_id} options=${[{ value: '', label: '— none —' }, ...(groups.data || []).map((g) => ({ value: g.id, label: g.name }))]} />
      <${Select} label="Transport" value=${f.transport} onChange=${set('transport')} options=${[{ value: '', label: 'from the ports' }, 'ssh', 'winrm']} />
    </div>
    <div class="row">
      <${Input} label="Name template" class="mono" value=${f.name_template} onInput=${set('name_template')} error=${errs.name_template} placeholder="web-{{ address | replace('.', '-') }}" help="default: the DNS name, else the address; variables address, hostname, os_family, index" />
      <${TextArea} label="Labels" rows="2" value=${f.labels} onInput=${set('labels')} error=${errs.labels} help="one key=value a line" />
    </div>
    <${Check} label="Test the new targets at once (connect, authenticate)" checked=${f.test} onChange=${set('test')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy || !f.credential_id}>${busy ? 'Onboarding…' : 'Onboard'}</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

export function Inventory() {
  const q = query();
  const f = { state: q.get('state') || '', port: q.get('port') || '', os: q.get('os') || '', range: q.get('range') || '', scan_id: q.get('scan_id') || '' };
  const cursor = q.get('cursor') || '';
  const [draft, setDraft] = useState(f);
  const [trail, setTrail] = useState([]);
  const [picked, setPicked] = useState([]);
  const [onboarding, setOnboarding] = useState(false);
  const page = useLoad(() => get('/discovery/hosts' + qs({ ...f, limit: PAGE, cursor })), [q.toString()]);
  const changed = useLoad(() => get('/discovery/hosts?state=changed&limit=1'), [page.data]);
  const [fresh, setFresh] = useState(0);
  useEffect(() => {
    const s = stream('/discovery/events', { onEvent: (ev) => ev.event.startsWith('host_') && setFresh((n) => n + 1) });
    return () => s.close();
  }, []);
  const go = (over, keepTrail) => {
    if (!keepTrail) setTrail([]);
    setPicked([]);
    navigate('/discovery/hosts' + qs({ ...f, ...over }));
  };
  const set = (k) => (v) => setDraft({ ...draft, [k]: v });
  const replace = (h) => page.set({ ...page.data, items: page.data.items.map((x) => (x.id === h.id ? h : x)) });
  const items = page.data ? page.data.items : null;
  return html`<div>
    ${changed.data && changed.data.items.length && f.state !== 'changed' ? html`<div class="alert alert-error" role="alert"><b>Hosts changed:</b> a host key or OS is not what was recorded. <a href="/discovery/hosts?state=changed">Review the changed hosts</a> before you trust them.</div>` : ''}
    ${fresh ? html`<div class="alert alert-info" role="status">${fresh} host${fresh > 1 ? 's' : ''} found, changed or vanished since this page loaded. <button type="button" class="linklike" onClick=${() => { setFresh(0); page.reload(); }}>Show the inventory as it is now</button></div>` : ''}
    <form class="filters" aria-label="Filter hosts" onSubmit=${(e) => { e.preventDefault(); go({ ...draft, cursor: '' }); }}>
      <${Select} label="State" value=${draft.state} onChange=${set('state')} options=${[{ value: '', label: 'any' }, 'new', 'known', 'changed', 'vanished']} />
      <${Input} label="Open port" type="number" min="1" max="65535" value=${draft.port} onInput=${set('port')} />
      <${Select} label="OS" value=${draft.os} onChange=${set('os')} options=${[{ value: '', label: 'any' }, 'linux', 'windows', 'unknown']} />
      <${Input} label="Range" value=${draft.range} onInput=${set('range')} placeholder="10.1.2.0/24" />
      ${f.scan_id ? html`<${Input} label="Scan" value=${draft.scan_id} onInput=${set('scan_id')} />` : ''}
      <button type="submit" class="btn">Filter</button>
    </form>
    <${ErrorBox} error=${page.error} />
    ${can('operator') ? html`<div class="actions bar"><${Btn} kind="primary" disabled=${!picked.length} onClick=${() => setOnboarding(true)}>Onboard ${picked.length || ''} selected</${Btn}></div>` : ''}
    ${!items ? html`<${Loading} />` : items.length === 0 ? html`<${Empty}>No hosts match.</${Empty}>` : html`<${HostTable} hosts=${items} picked=${picked} onPick=${setPicked} onChanged=${replace} />`}
    <nav class="pager" aria-label="Pages">
      <${Btn} disabled=${!cursor} onClick=${() => go({ cursor: '' })}>First page</${Btn}>
      <${Btn} disabled=${!trail.length} onClick=${() => { const t = trail.slice(0, -1); setTrail(t); go({ cursor: trail[trail.length - 1] || '' }, true); }}>Previous</${Btn}>
      <${Btn} disabled=${!page.data || !page.data.next_cursor} onClick=${() => { setTrail([...trail, cursor]); go({ cursor: page.data.next_cursor }, true); }}>Next page</${Btn}>
    </nav>
    ${onboarding ? html`<${Dialog} title=${`Onboard ${picked.length} host${picked.length > 1 ? 's' : ''}`} wide onClose=${() => setOnboarding(false)}>
      <${OnboardForm} hostIds=${picked} onDone=${() => { setPicked([]); page.reload(); }} onCancel=${() => setOnboarding(false)} /></${Dialog}>` : ''}
  </div>`;
}
