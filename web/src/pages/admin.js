// admin.js - administration: users, API tokens (shown once), the audit log with filters,
// plugins and step libraries (upload with checksum and signature, versions, refusals with
// their reasons), and system information.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, PageHead, Select, Time, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, del, get, patch, post, raw, session, ApiError } from '../lib/api.js';
import { navigate, qs, query } from '../lib/router.js';

const TABS = [
  ['users', 'Users', 'viewer'],
  ['tokens', 'API tokens', 'viewer'],
  ['audit', 'Audit log', 'admin'],
  ['plugins', 'Plugins & step libraries', 'viewer'],
  ['system', 'System', 'viewer'],
];

function UserForm({ user, onDone, onCancel }) {
  const [f, setF] = useState({ username: user ? user.username : '', display_name: user ? user.display_name || '' : '', email: user ? user.email || '' : '', role: user ? user.role : 'viewer', enabled: user ? user.enabled : true, password: '' });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const [save, busy, error] = useAction(async () => {
    const body = { display_name: f.display_name, email: f.email, role: f.role, enabled: f.enabled };
    if (f.password) body.password = f.password;
    if (!user) body.username = f.username;
    const rec = user ? await patch('/users/' + user.id, body, { headers: { 'If-Match': `"${user.version}"` } }) : await post('/users', body);
    notify(`User ${rec.username} saved`);
    onDone(rec);
  });
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <${ErrorBox} error=${error} />
    ${user ? '' : html`<${Input} label="Username" value=${f.username} onInput=${set('username')} required autocomplete="off" />`}
    <div class="row"><${Input} label="Display name" value=${f.display_name} onInput=${set('display_name')} /><${Input} label="Email" type="email" value=${f.email} onInput=${set('email')} /></div>
    <${Select} label="Role" value=${f.role} onChange=${set('role')} options=${['viewer', 'operator', 'admin']} />
    <${Input} label=${user ? 'New password' : 'Password'} type="password" value=${f.password} onInput=${set('password')} required=${!user} autocomplete="new-password" help="local users; at least 12 characters" />
    <${Check} label="Enabled" checked=${f.enabled} onChange=${set('enabled')} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Save user</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

function Users() {
  const list = useLoad(() => all('/users'), []);
  const [dialog, setDialog] = useState(null);
  const [remove, , rmErr] = useAction(async (u) => {
    if (!confirm(`Delete user ${u.username}?`)) return;
    await del('/users/' + u.id);
    list.reload();
  });
  const admin = can('admin');
  return html`<div>
    ${admin ? html`<div class="actions"><${Btn} kind="primary" onClick=${() => setDialog({})}>New user</${Btn}></div>` : ''}
    <${ErrorBox} error=${list.error || rmErr} />
    ${!list.data ? html`<${Loading} />` : html`<div class="table-wrap"><table class="table"><thead><tr><th>User</th><th>Role</th><th>Provider</th><th>State</th><th>Last login</th>${admin ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead><tbody>
      ${list.data.map((u) => html`<tr key=${u.id}><td>${u.username}${u.display_name ? html` <span class="muted">${u.display_name}</span>` : ''}</td><td>${u.role}</td><td>${u.provider}</td><td>${u.enabled ? 'enabled' : html`<span class="bad">disabled</span>`}</td><td><${Time} iso=${u.last_login_at} /></td>
        ${admin ? html`<td class="actions-cell"><${Btn} kind="small" onClick=${() => setDialog({ user: u })} aria-label=${'Edit ' + u.username}>Edit</${Btn}>${u.id !== session.value.user.id ? html` <${Btn} kind="small" onClick=${() => remove(u)} aria-label=${'Delete ' + u.username}>Delete</${Btn}>` : ''}</td>` : ''}</tr>`)}
    </tbody></table></div>`}
    ${dialog ? html`<${Dialog} title=${dialog.user ? 'Edit ' + dialog.user.username : 'New user'} onClose=${() => setDialog(null)}><${UserForm} user=${dialog.user} onDone=${() => { setDialog(null); list.reload(); }} onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
  </div>`;
}

function Tokens() {
  const admin = can('admin');
  const [everyone, setEveryone] = useState(false);
  const list = useLoad(() => all('/tokens' + (everyone ? '?all=true' : '')), [everyone]);
  const [f, setF] = useState({ name: '', role: session.value.role, expires_in_days: '90' });
  const [shown, setShown] = useState(null);
  const [create, busy, error] = useAction(async () => {
    const body = { name: f.name, role: f.role };
    if (f.expires_in_days) body.expires_in_days = Number(f.expires_in_days);
    const r = await post('/tokens', body);
    setShown(r);
    setF({ ...f, name: '' });
    list.reload();
  });
  const [revoke, , rErr] = useAction(async (t) => {
    if (!confirm(`Revoke token ${t.name}?`)) return;
    await del('/tokens/' + t.id);
    list.reload();
  });
  const roles = ['viewer', 'operator', 'admin'].slice(0, ['viewer', 'operator', 'admin'].indexOf(session.value.role) + 1);
  return html`<div>
    <form class="inline-form" onSubmit=${(e) => { e.preventDefault(); create(); }} aria-label="New API token">
      <${Input} label="Token name" value=${f.name} onInput=${(v) => setF({ ...f, name: v })} required />
      <${Select} label="Role" value=${f.role} onChange=${(v) => setF({ ...f, role: v })} options=${roles} />
      <${Input} label="Expires in (days)" type="number" min="1" value=${f.expires_in_days} onInput=${(v) => setF({ ...f, expires_in_days: v })} help="empty: never" />
      <button class="btn btn-primary" type="submit" disabled=${busy}>Create token</button>
    </form>
    <${ErrorBox} error=${error || list.error || rErr} />
    ${admin ? html`<${Check} label="Everyone's tokens" checked=${everyone} onChange=${setEveryone} />` : ''}
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No API tokens.</${Empty}>` : html`<div class="table-wrap"><table class="table"><thead><tr><th>Name</th><th>Role</th>${everyone ? html`<th>User</th>` : ''}<th>Created</th><th>Expires</th><th>Last used</th><th><span class="sr-only">Actions</span></th></tr></thead><tbody>
      ${list.data.map((t) => html`<tr key=${t.id}><td>${t.name}</td><td>${t.role}</td>${everyone ? html`<td>${t.username || t.user_id}</td>` : ''}<td><${Time} iso=${t.created_at} /></td><td>${t.expires_at ? html`<${Time} iso=${t.expires_at} />` : 'never'}</td><td><${Time} iso=${t.last_used_at} /></td>
        <td><${Btn} kind="small" onClick=${() => revoke(t)} aria-label=${'Revoke ' + t.name}>Revoke</${Btn}></td></tr>`)}
    </tbody></table></div>`}
    ${shown ? html`<${Dialog} title="Your new API token" onClose=${() => setShown(null)}>
      <p><b>Copy it now: it is shown once.</b> Use it as <code>Authorization: Bearer …</code>.</p>
      <pre class="token" aria-label="API token">${shown.token}</pre>
      <div class="actions"><${Btn} kind="primary" onClick=${() => navigator.clipboard && navigator.clipboard.writeText(shown.token).then(() => notify('Copied'))}>Copy</${Btn}><${Btn} onClick=${() => setShown(null)}>Done</${Btn}></div>
    </${Dialog}>` : ''}
  </div>`;
}

function Audit() {
  const q = query();
  const f = { actor: q.get('actor') || '', action: q.get('action') || '', outcome: q.get('outcome') || '', object: q.get('object') || '', client: q.get('client') || '' };
  const cursor = q.get('cursor') || '';
  const [draft, setDraft] = useState(f);
  const page = useLoad(() => get('/audit' + qs({ ...f, cursor, limit: 50 })), [q.toString()]);
  const set = (k) => (v) => setDraft({ ...draft, [k]: v });
  return html`<div>
    <form class="filters" aria-label="Filter the audit log" onSubmit=${(e) => { e.preventDefault(); navigate('/admin/audit' + qs(draft)); }}>
      <${Input} label="Actor" value=${draft.actor} onInput=${set('actor')} />
      <${Input} label="Action" value=${draft.action} onInput=${set('action')} placeholder="POST /api/v1/jobs" />
      <${Select} label="Outcome" value=${draft.outcome} onChange=${set('outcome')} options=${['', 'success', 'failure', 'denied']} />
      <${Input} label="Object" value=${draft.object} onInput=${set('object')} />
      <${Input} label="Client" value=${draft.client} onInput=${set('client')} />
      <button class="btn" type="submit">Filter</button>
    </form>
    <${ErrorBox} error=${page.error} />
    ${!page.data ? html`<${Loading} />` : page.data.items.length === 0 ? html`<${Empty}>No records match.</${Empty}>` : html`<div class="table-wrap"><table class="table"><thead><tr><th>When</th><th>Actor</th><th>Action</th><th>Object</th><th>Outcome</th><th>Client</th></tr></thead><tbody>
      ${page.data.items.map((a) => html`<tr key=${a.id}><td><${Time} iso=${a.created_at} /></td><td>${a.actor}</td><td><code>${a.action}</code></td><td>${a.object || ''}</td><td class=${a.outcome === 'success' ? '' : 'bad'}>${a.outcome}${a.status ? ' ' + a.status : ''}</td><td>${a.client}</td></tr>`)}
    </tbody></table></div>`}
    <nav class="pager" aria-label="Pages"><${Btn} disabled=${!cursor} onClick=${() => navigate('/admin/audit' + qs(f))}>Newest</${Btn}><${Btn} disabled=${!page.data || !page.data.next_cursor} onClick=${() => navigate('/admin/audit' + qs({ ...f, cursor: page.data.next_cursor }))}>Older</${Btn}></nav>
  </div>`;
}

async function sha256hex(buf) {
  if (!crypto.subtle) return '';
  const d = await crypto.subtle.digest('SHA-256', buf);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function Upload({ onDone }) {
  const [file, setFile] = useState(null);
  const [sum, setSum] = useState('');
  const [sig, setSig] = useState('');
  const [run, busy, error] = useAction(async () => {
    const buf = await file.arrayBuffer();
    const headers = { 'X-Opsc-Sha256': sum.trim(), 'Content-Type': 'application/octet-stream' };
    if (sig.trim()) headers['X-Opsc-Signature'] = sig.trim();
    const res = await raw('POST', '/steplibs', { body: buf, headers });
    const data = await res.json();
    if (!res.ok) throw new ApiError(res.status, data);
    notify(`Installed ${data.name} ${data.version}`);
    onDone();
  });
  return html`<form class="form card" onSubmit=${(e) => { e.preventDefault(); run(); }} aria-labelledby="h-up"><h3 id="h-up">Upload a step library</h3>
    <div class="field"><label for="up-file">Library (.so)</label><input id="up-file" type="file" accept=".so" onChange=${async (e) => { const f = e.target.files[0]; setFile(f); if (f) setSum(await sha256hex(await f.arrayBuffer())); }} /></div>
    <${Input} label="SHA-256" value=${sum} onInput=${setSum} class="mono" required help="computed from the file; compare it with the publisher's" />
    <${Input} label="Ed25519 signature (base64)" value=${sig} onInput=${setSig} class="mono" help="required when trusted keys are configured" />
    <${ErrorBox} error=${error} />
    <button class="btn btn-primary" type="submit" disabled=${busy || !file}>Upload and install</button>
  </form>`;
}

function Plugins() {
  const plugins = useLoad(() => get('/plugins'), []);
  const libs = useLoad(() => get('/steplibs'), []);
  const [remove, , rmErr] = useAction(async (name, version) => {
    if (!confirm(`Delete ${name} ${version}?`)) return;
    await del(`/steplibs/${name}/${version}`);
    libs.reload();
  });
  return html`<div>
    <h2>Plugins</h2>
    <${ErrorBox} error=${plugins.error} />
    ${!plugins.data ? html`<${Loading} />` : html`<div class="table-wrap"><table class="table"><thead><tr><th>Plugin</th><th>Version</th><th>Kinds</th><th>State</th></tr></thead><tbody>
      ${plugins.data.items.map((p) => html`<tr key=${p.name + p.path}><td>${p.name}<div class="muted small">${p.description}</div></td><td>${p.version}</td><td>${(p.kinds || []).join(', ')}</td>
        <td>${p.state === 'loaded' ? html`<span class="state state-succeeded">loaded</span>` : html`<span class="state state-failed">${p.state}</span> <span class="error-text">${p.reason || p.error || ''}</span>`}</td></tr>`)}
    </tbody></table></div>`}
    <h2>Step libraries</h2>
    <${ErrorBox} error=${libs.error || rmErr} />
    ${!libs.data ? html`<${Loading} />` : html`<div>
      ${libs.data.items.map((l) => html`<section key=${l.name} class="card"><h3>${l.name} <span class="muted">latest ${l.latest}</span></h3>
        <table class="table"><thead><tr><th>Version</th><th>Steps</th><th>Origin</th><th>SHA-256</th>${can('admin') ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead><tbody>
        ${l.versions.map((v) => html`<tr key=${v.version}><td>${v.version}</td><td>${v.steps.length}</td><td>${v.bundled ? 'bundled' : html`uploaded by ${v.installed_by} <${Time} iso=${v.installed_at} />${v.signer ? ', signed' : ''}`}</td><td><code class="fp">${(v.sha256 || '').slice(0, 16)}…</code></td>
          ${can('admin') ? html`<td>${v.bundled ? '' : html`<${Btn} kind="small" onClick=${() => remove(l.name, v.version)}>Delete</${Btn}>`}</td>` : ''}</tr>`)}
        </tbody></table></section>`)}
      ${(libs.data.refused || []).length ? html`<section class="card"><h3>Refused</h3><ul class="plain">${libs.data.refused.map((r) => html`<li key=${r.path}><code>${r.path}</code>: <span class="error-text">${r.reason}</span></li>`)}</ul></section>` : ''}
    </div>`}
    ${can('admin') ? html`<${Upload} onDone=${libs.reload} />` : ''}
  </div>`;
}

function System() {
  const sys = useLoad(() => get('/system'), []);
  const [level, setLevel] = useState('');
  const [setLog, busy, error] = useAction(async () => {
    await api_put_log(level);
    notify('Log level set to ' + level);
  });
  const [rotate, rbusy, rerr] = useAction(async () => {
    if (!confirm('Re-wrap every credential under a new master key?')) return;
    const r = await post('/vault/rotate-key');
    notify(`Master key rotated: ${r.rewrapped} credentials re-wrapped`);
  });
  if (!sys.data) return sys.error ? html`<${ErrorBox} error=${sys.error} />` : html`<${Loading} />`;
  const x = sys.data;
  return html`<div class="grid">
    <section class="card" aria-labelledby="h-si"><h2 id="h-si">System</h2><dl class="facts">${Object.entries(x).map(([k, v]) => html`<dt key=${k + 't'}>${k.replace(/_/g, ' ')}</dt><dd key=${k}>${typeof v === 'object' ? JSON.stringify(v) : k.endsWith('_at') ? html`<${Time} iso=${v} />` : String(v)}</dd>`)}</dl></section>
    ${can('admin') ? html`<section class="card" aria-labelledby="h-ops"><h2 id="h-ops">Operations</h2>
      <form class="inline-form" onSubmit=${(e) => { e.preventDefault(); setLog(); }}><${Select} label="Log level" value=${level} onChange=${setLevel} options=${['', 'error', 'warn', 'info', 'debug']} /><button class="btn" type="submit" disabled=${busy || !level}>Set</button></form>
      <${ErrorBox} error=${error || rerr} />
      <p><${Btn} kind="danger" busy=${rbusy} onClick=${rotate}>Rotate the vault's master key</${Btn}></p>
    </section>` : ''}
  </div>`;
}

async function api_put_log(level) {
  const res = await raw('PUT', '/system/log', { body: { level } });
  if (!res.ok) throw new ApiError(res.status, await res.json());
}

export function Admin({ tab = 'users' }) {
  const tabs = TABS.filter(([, , role]) => can(role));
  const cur = tabs.find(([t]) => t === tab) ? tab : 'users';
  const C = { users: Users, tokens: Tokens, audit: Audit, plugins: Plugins, system: System }[cur];
  return html`<div>
    <${PageHead} title="Administration" />
    <nav class="tabs" aria-label="Administration">${tabs.map(([t, label]) => html`<a key=${t} href=${'/admin/' + t} aria-current=${t === cur ? 'page' : undefined}>${label}</a>`)}</nav>
    <${C} />
  </div>`;
}
