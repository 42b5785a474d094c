// targets.js - targets: list with filters, create/edit with transport options, bulk import,
// connectivity tests, and one target's page (facts, host keys, last test).
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Labels, Loading, PageHead, Select, TextArea, Time, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, del, get, patch, post } from '../lib/api.js';
import { loc, navigate, qs, query } from '../lib/router.js';
import { parseTargets } from '../lib/csv.js';

export function labelsText(l) {
  return Object.entries(l || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}
export function parseLabels(text) {
  const out = {};
  for (const line of text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean)) {
    const i = line.indexOf('=');
    if (i < 1) throw new Error(`label "${line}" is not key=value`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

function testBadge(t) {
  if (!t.last_test) return html`<span class="muted">never</span>`;
  return t.last_test.ok
    ? html`<span class="state state-succeeded" title=${'tested ' + t.last_test.at}>ok</span>`
    : html`<span class="state state-failed" title=${t.last_test.error || ''}>failed</span>`;
}

const BLANK = { name: '', address: '', port: '', os_family: 'linux', transport: 'ssh', credential_id: '', labels: '', host_key_policy: 'strict', connect_timeout_s: '', command_timeout_s: '', enabled: true, description: '', winrm_scheme: '', winrm_path: '', ca_bundle: '', cert_fingerprint: '' };

function toForm(t) {
  const o = t.transport_options || {};
  return { ...BLANK, ...t, port: t.port || '', credential_id: t.credential_id || '', labels: labelsText(t.labels), connect_timeout_s: t.connect_timeout_s ?? '', command_timeout_s: t.command_timeout_s || '', winrm_scheme: o.scheme || '', winrm_path: o.path || '', ca_bundle: o.ca_bundle || '', cert_fingerprint: o.cert_fingerprint || '' };
}

function toBody(f, editing) {
  const b = { name: f.name, address: f.address, os_family: f.os_family, transport: f.transport, host_key_policy: f.host_key_policy, enabled: f.enabled, description: f.description, labels: parseLabels(f.labels) };
  b.credential_id = f.credential_id || null;
  if (f.port !== '') b.port = Number(f.port);
  else if (editing) b.port = null;
  if (f.connect_timeout_s !== '') b.connect_timeout_s = Number(f.connect_timeout_s);
  if (f.command_timeout_s !== '') b.command_timeout_s = Number(f.command_timeout_s);
  if (f.transport === 'winrm') {
    const o = {};
    if (f.winrm_scheme) o.scheme = f.winrm_scheme;
    if (f.winrm_path) o.path = f.winrm_path;
    if (f.ca_bundle) o.ca_bundle = f.ca_bundle;
    if (f.cert_fingerprint) o.cert_fingerprint = f.cert_fingerprint;
    b.transport_options = o;
  }
  if (f.transport === 'local') delete b.credential_id;
  return b;
}

/** Create or edit a target; transport-specific options appear with their transport. */
export function TargetForm({ target, onDone, onCancel }) {
  const [f, setF] = useState(target ? toForm(target) : BLANK);
  const creds = useLoad(() => all('/credentials'), []);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const [fieldErr, setFieldErr] = useState({});
  const [save, busy, error] = useAction(async () => {
    setFieldErr({});
    let body;
    try {
      body = toBody(f, !!target);
    } catch (e) {
      setFieldErr({ labels: e.message });
      return;
    }
    try {
      const rec = target ? await patch('/targets/' + target.id, body, { headers: { 'If-Match': `"${target.version}"` } }) : await post('/targets', body);
      notify(`Target ${rec.name} saved`);
      onDone(rec);
    } catch (e) {
      const field = e.details && e.details.field;
      if (field) setFieldErr({ [field.split('.')[0]]: e.message });
      throw e;
    }
  });
  const credOptions = [{ value: '', label: '— none —' }, ...((creds.data || []).map((c) => ({ value: c.id, label: `${c.name} (${c.type})` })))];
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <${ErrorBox} error=${error} />
    <div class="row">
      <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${fieldErr.name} />
      <${Select} label="Transport" value=${f.transport} onChange=${set('transport')} options=${['ssh', 'winrm', 'local']} />
      <${Select} label="OS family" value=${f.os_family} onChange=${set('os_family')} options=${['linux', 'windows']} />
    </div>
    ${f.transport !== 'local' ? html`<div class="row">
      <${Input} label="Address" value=${f.address} onInput=${set('address')} required error=${fieldErr.address} />
      <${Input} label="Port" type="number" value=${f.port} onInput=${set('port')} help=${f.transport === 'ssh' ? 'default 22' : 'default 5986 (https), 5985 is http'} error=${fieldErr.port} />
      <${Select} label="Credential" value=${f.credential_id} onChange=${set('credential_id')} options=${credOptions} error=${fieldErr.credential_id} />
    </div>` : ''}
    ${f.transport === 'ssh' ? html`<${Select} label="Host key policy" value=${f.host_key_policy} onChange=${set('host_key_policy')} options=${[{ value: 'strict', label: 'strict: only pinned keys' }, { value: 'tofu', label: 'trust on first use' }, { value: 'off', label: 'off (not recommended)' }]} />` : ''}
    ${f.transport === 'winrm' ? html`<fieldset><legend>WinRM</legend><div class="row">
      <${Select} label="Scheme" value=${f.winrm_scheme} onChange=${set('winrm_scheme')} options=${[{ value: '', label: 'from the port' }, { value: 'https', label: 'https' }, { value: 'http', label: 'http' }]} />
      <${Input} label="Path" value=${f.winrm_path} onInput=${set('winrm_path')} placeholder="/wsman" />
      <${Input} label="CA bundle" value=${f.ca_bundle} onInput=${set('ca_bundle')} help="file on the appliance" />
      <${Input} label="Certificate fingerprint" value=${f.cert_fingerprint} onInput=${set('cert_fingerprint')} />
    </div></fieldset>` : ''}
    <${TextArea} label="Labels" rows="3" value=${f.labels} onInput=${set('labels')} help="one key=value a line" error=${fieldErr.labels} />
    <div class="row">
      <${Input} label="Connect timeout (s)" type="number" value=${f.connect_timeout_s} onInput=${set('connect_timeout_s')} />
      <${Input} label="Command timeout (s)" type="number" value=${f.command_timeout_s} onInput=${set('command_timeout_s')} help="0: none" />
    </div>
    <${Input} label="Description" value=${f.description} onInput=${set('description')} />
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save target</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

function BulkImport({ onDone, onCancel }) {
  const [text, setText] = useState('');
  const [results, setResults] = useState(null);
  const parsed = parseTargets(text);
  const [run, busy, error] = useAction(async () => {
    const r = await post('/targets/bulk', parsed.items);
    setResults(r.items || r);
    onDone();
  });
  return html`<div>
    <p class="help">Paste a JSON array of targets, or CSV with a header row, e.g.<br /><code>name,address,port,transport,credential_id,labels</code><br /><code>web-1,10.0.0.11,22,ssh,…,env=prod;role=web</code></p>
    <${TextArea} label="Targets (JSON or CSV)" rows="8" value=${text} onInput=${setText} error=${text.trim() && parsed.errors.length ? parsed.errors.join('; ') : ''} />
    <${ErrorBox} error=${error} />
    ${results ? html`<table class="table"><thead><tr><th>#</th><th>Name</th><th>Result</th></tr></thead><tbody>
      ${results.map((r) => html`<tr key=${r.index}><td>${r.index + 1}</td><td>${r.name}</td><td>${r.status === 'created' ? html`<span class="state state-succeeded">created</span>` : html`<span class="state state-failed">error</span> ${r.error && (r.error.field ? r.error.field + ': ' : '') + r.error.message}`}</td></tr>`)}
    </tbody></table>` : ''}
    <div class="actions">
      <${Btn} kind="primary" busy=${busy} disabled=${!parsed.items.length || parsed.errors.length} onClick=${run}>Import ${parsed.items.length || ''} targets</${Btn}>
      <${Btn} onClick=${onCancel}>${results ? 'Close' : 'Cancel'}</${Btn}>
    </div>
  </div>`;
}

export function TestResult({ r }) {
  if (!r) return null;
  return r.ok
    ? html`<span class="state state-succeeded">ok</span> <span class="muted">connect ${r.connect_ms} ms, probe ${r.probe_ms} ms</span>`
    : html`<span class="state state-failed">failed</span> <span class="muted">${r.stage ? r.stage + ': ' : ''}${r.error || r.message}</span>`;
}

export function Targets() {
  const q = query();
  const filters = { label: q.get('label') || '', os: q.get('os') || '', transport: q.get('transport') || '', name_prefix: q.get('name_prefix') || '', last_test: q.get('last_test') || '' };
  const [draft, setDraft] = useState(filters);
  const list = useLoad(() => all('/targets' + qs({ label: filters.label, os: filters.os, transport: filters.transport, name_prefix: filters.name_prefix })), [filters.label, filters.os, filters.transport, filters.name_prefix]);
  const [dialog, setDialog] = useState(null);
  const [tests, setTests] = useState({});
  const testOne = async (t) => {
    setTests((x) => ({ ...x, [t.id]: { busy: true } }));
    try {
      const r = await post(`/targets/${t.id}/test`);
      setTests((x) => ({ ...x, [t.id]: r }));
      list.reload();
    } catch (e) {
      setTests((x) => ({ ...x, [t.id]: { ok: false, error: e.message } }));
    }
  };
  const items = (list.data || []).filter((t) => !filters.last_test || (filters.last_test === 'never' ? !t.last_test : t.last_test && (filters.last_test === 'ok') === !!t.last_test.ok));
  const apply = (e) => {
    e.preventDefault();
    navigate('/targets' + qs(draft));
  };
  return html`<div>
    <${PageHead} title="Targets" sub="Machines jobs run on">
      ${can('operator') ? html`<${Btn} kind="primary" onClick=${() => setDialog('new')}>New target</${Btn}><${Btn} onClick=${() => setDialog('bulk')}>Bulk import</${Btn}>` : ''}
    </${PageHead}>
    <form class="filters" onSubmit=${apply} aria-label="Filter targets">
      <${Input} label="Name starts with" value=${draft.name_prefix} onInput=${(v) => setDraft({ ...draft, name_prefix: v })} />
      <${Input} label="Labels" value=${draft.label} onInput=${(v) => setDraft({ ...draft, label: v })} placeholder="env=prod,role in (web,db)" />
      <${Select} label="OS" value=${draft.os} onChange=${(v) => setDraft({ ...draft, os: v })} options=${['', 'linux', 'windows']} />
      <${Select} label="Transport" value=${draft.transport} onChange=${(v) => setDraft({ ...draft, transport: v })} options=${['', 'ssh', 'winrm', 'local']} />
      <${Select} label="Last test" value=${draft.last_test} onChange=${(v) => setDraft({ ...draft, last_test: v })} options=${[{ value: '', label: 'any' }, { value: 'ok', label: 'ok' }, { value: 'failed', label: 'failed' }, { value: 'never', label: 'never tested' }]} />
      <button class="btn" type="submit">Filter</button>
    </form>
    <${ErrorBox} error=${list.error} />
    ${list.loading && !list.data ? html`<${Loading} />` : items.length === 0 ? html`<${Empty}>No targets${filters.label || filters.name_prefix ? ' match' : ' yet'}.</${Empty}>` : html`
    <div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Address</th><th>OS</th><th>Transport</th><th>Labels</th><th>Last test</th>${can('operator') ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${items.map((t) => html`<tr key=${t.id}>
        <td><a href=${'/targets/' + t.id}>${t.name}</a>${t.enabled ? '' : html` <span class="muted">(disabled)</span>`}</td>
        <td>${t.transport === 'local' ? html`<span class="muted">this appliance</span>` : `${t.address}${t.port ? ':' + t.port : ''}`}</td>
        <td>${t.os_family}</td><td>${t.transport}</td><td><${Labels} labels=${t.labels} /></td>
        <td>${tests[t.id] && !tests[t.id].busy ? html`<${TestResult} r=${tests[t.id]} />` : testBadge(t)}</td>
        ${can('operator') ? html`<td class="actions-cell"><${Btn} kind="small" busy=${tests[t.id] && tests[t.id].busy} onClick=${() => testOne(t)} aria-label=${'Test ' + t.name}>Test</${Btn}></td>` : ''}
      </tr>`)}</tbody>
    </table></div>`}
    ${dialog === 'new' ? html`<${Dialog} title="New target" onClose=${() => setDialog(null)}><${TargetForm} onDone=${() => { setDialog(null); list.reload(); }} onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
    ${dialog === 'bulk' ? html`<${Dialog} title="Bulk import" wide onClose=${() => setDialog(null)}><${BulkImport} onDone=${list.reload} onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
  </div>`;
}

function HostKeys({ t, onChange }) {
  const [key, setKey] = useState('');
  const [pin, busy, error] = useAction(async () => {
    const v = key.trim();
    const m = /^(\S+)\s+(SHA256:\S+)$/.exec(v);
    const body = m ? { type: m[1], fingerprint: m[2] } : { key: v };
    onChange(await post(`/targets/${t.id}/host-keys`, body));
    setKey('');
    notify('Host key pinned');
  });
  const [forget, fbusy] = useAction(async () => {
    await del(`/targets/${t.id}/host-keys`);
    notify('Host keys forgotten');
    onChange(await get('/targets/' + t.id));
  });
  const changed = t.last_test && !t.last_test.ok && /host key/i.test(t.last_test.error || '');
  return html`<section class="card" aria-labelledby="h-keys"><h2 id="h-keys">Host keys</h2>
    ${changed ? html`<div class="alert alert-error" role="alert"><b>The host key changed or is unknown.</b> ${t.last_test.error}. Check the new key out of band before you trust it.</div>` : ''}
    ${t.host_keys && t.host_keys.length ? html`<table class="table"><thead><tr><th>Type</th><th>Fingerprint</th><th>Learned</th></tr></thead><tbody>
      ${t.host_keys.map((k, i) => html`<tr key=${i}><td>${k.type || String(k).split(' ')[0]}</td><td><code>${k.fingerprint || String(k).split(' ')[1] || ''}</code></td><td>${k.added_at || k.learned_at ? html`<${Time} iso=${k.added_at || k.learned_at} />` : html`<span class="muted">${k.source || ''}</span>`}</td></tr>`)}
    </tbody></table>` : html`<${Empty}>No key pinned${t.host_key_policy === 'tofu' ? ': the first connection will learn it' : ''}.</${Empty}>`}
    ${can('operator') ? html`<form class="inline-form" onSubmit=${(e) => { e.preventDefault(); pin(); }}>
      <${Input} label="Pin a key (a public key line, or: type SHA256:fingerprint)" value=${key} onInput=${setKey} />
      <button class="btn" type="submit" disabled=${busy || !key.trim()}>Pin key</button>
      ${t.host_keys && t.host_keys.length ? html`<${Btn} kind="danger" busy=${fbusy} onClick=${forget}>Forget all keys</${Btn}>` : ''}
    </form><${ErrorBox} error=${error} />` : ''}
  </section>`;
}

export function TargetPage({ id }) {
  const t = useLoad(() => get('/targets/' + id), [id]);
  const [editing, setEditing] = useState(false);
  const [result, setResult] = useState(null);
  const [test, testing] = useAction(async () => {
    setResult(await post(`/targets/${id}/test`));
    t.reload();
  });
  const [remove] = useAction(async () => {
    if (!confirm(`Delete target ${t.data.name}?`)) return;
    await del('/targets/' + id);
    notify('Target deleted');
    navigate('/targets');
  });
  if (!t.data) return t.error ? html`<${ErrorBox} error=${t.error} />` : html`<${Loading} />`;
  const x = t.data;
  return html`<div>
    <${PageHead} title=${x.name} sub=${x.description}>
      ${can('operator') ? html`<${Btn} kind="primary" busy=${testing} onClick=${test}>Test connection</${Btn}><${Btn} onClick=${() => setEditing(true)}>Edit</${Btn}><${Btn} kind="danger" onClick=${remove}>Delete</${Btn}>` : ''}
    </${PageHead}>
    ${result ? html`<p class="card" role="status">Test: <${TestResult} r=${result} /></p>` : ''}
    <div class="grid">
      <section class="card" aria-labelledby="h-t"><h2 id="h-t">Target</h2><dl class="facts">
        <dt>Transport</dt><dd>${x.transport}</dd><dt>Address</dt><dd>${x.address}${x.port ? ':' + x.port : ''}</dd>
        <dt>OS family</dt><dd>${x.os_family}</dd><dt>Labels</dt><dd><${Labels} labels=${x.labels} /></dd>
        <dt>Host key policy</dt><dd>${x.host_key_policy}</dd><dt>Credential</dt><dd>${x.credential_id ? html`<a href="/credentials">${x.credential_id}</a>` : '—'}</dd>
        <dt>Last test</dt><dd>${x.last_test ? html`${testBadge(x)} <${Time} iso=${x.last_test.at} /> ${x.last_test.error || ''}` : 'never'}</dd>
      </dl></section>
      <section class="card" aria-labelledby="h-f"><h2 id="h-f">Facts</h2>${x.facts && Object.keys(x.facts).length ? html`<dl class="facts">${Object.entries(x.facts).map(([k, v]) => html`<dt key=${k + 't'}>${k}</dt><dd key=${k}>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>`)}</dl>` : html`<${Empty}>Test the target to read its facts.</${Empty}>`}</section>
      ${x.transport === 'ssh' ? html`<${HostKeys} t=${x} onChange=${(rec) => t.set(rec)} />` : ''}
      <section class="card" aria-labelledby="h-r"><h2 id="h-r">Runs</h2><p><a href=${'/runs?target=' + encodeURIComponent(x.name)}>Runs on ${x.name}</a></p></section>
    </div>
    ${editing ? html`<${Dialog} title=${'Edit ' + x.name} onClose=${() => setEditing(false)}><${TargetForm} target=${x} onDone=${(rec) => { setEditing(false); t.set(rec); }} onCancel=${() => setEditing(false)} /></${Dialog}>` : ''}
  </div>`;
}
export { loc };
