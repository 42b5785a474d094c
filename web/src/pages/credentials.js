// credentials.js - credentials: metadata and fingerprints only. Secrets are write-only fields:
// typed or uploaded here, sent once, never shown again (the API never returns them).
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Dialog, Empty, ErrorBox, Input, Loading, PageHead, Select, TextArea, Time, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, del, patch, post } from '../lib/api.js';

const SECRETS = {
  ssh_key: ['private_key', 'passphrase'],
  ssh_password: ['password'],
  winrm: ['password'],
  secret: ['value'],
};

function KeyFile({ onLoad }) {
  return html`<div class="field"><label for="key-file">Or upload the key file</label>
    <input id="key-file" type="file" onChange=${(e) => {
      const f = e.target.files[0];
      if (f) f.text().then(onLoad);
    }} /></div>`;
}

/** The secret fields of a type; `rotate` shows them alone, to replace the stored secret. */
function SecretFields({ type, f, set, err }) {
  if (type === 'ssh_key') {
    return html`<${TextArea} label="Private key" rows="6" value=${f.private_key} onInput=${set('private_key')} required autocomplete="off" spellcheck="false" class="mono" help="OpenSSH or PEM; sent once, never shown again" error=${err.private_key} />
      <${KeyFile} onLoad=${set('private_key')} />
      <${Input} label="Passphrase" type="password" value=${f.passphrase} onInput=${set('passphrase')} autocomplete="new-password" help="only if the key is encrypted" />`;
  }
  if (type === 'secret') return html`<${Input} label="Value" type="password" value=${f.value} onInput=${set('value')} required autocomplete="new-password" error=${err.value} />`;
  return html`<${Input} label="Password" type="password" value=${f.password} onInput=${set('password')} required autocomplete="new-password" error=${err.password} />`;
}

function CredentialForm({ cred, rotate, onDone, onCancel }) {
  const [f, setF] = useState({ name: cred ? cred.name : '', type: cred ? cred.type : 'ssh_key', username: cred ? cred.username || '' : '', description: cred ? cred.description || '' : '', domain: cred ? cred.domain || '' : '', auth: cred ? cred.auth || 'ntlm' : 'ntlm', private_key: '', passphrase: '', password: '', value: '' });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const [save, busy, error] = useAction(async () => {
    const body = {};
    for (const k of SECRETS[f.type]) if (f[k]) body[k] = f[k];
    if (!rotate) {
      Object.assign(body, { name: f.name, description: f.description });
      if (!cred) body.type = f.type;
      if (f.type !== 'secret') body.username = f.username;
      if (f.type === 'winrm') Object.assign(body, { auth: f.auth, domain: f.domain || undefined });
    }
    const rec = cred ? await patch('/credentials/' + cred.id, body, { headers: { 'If-Match': `"${cred.version}"` } }) : await post('/credentials', body);
    setF({ ...f, private_key: '', passphrase: '', password: '', value: '' });
    notify(rotate ? `Secret of ${rec.name} replaced` : `Credential ${rec.name} saved`);
    onDone(rec);
  });
  const field = error && error.details && (error.details.field || '');
  const err = field ? { [field]: error.message } : {};
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); save(); }} autocomplete="off">
    <${ErrorBox} error=${error} />
    ${rotate ? html`<p class="help">The new secret replaces the stored one; runs use it from now on.</p>` : html`
      <div class="row">
        <${Input} label="Name" value=${f.name} onInput=${set('name')} required error=${err.name} />
        ${cred ? '' : html`<${Select} label="Type" value=${f.type} onChange=${set('type')} options=${[{ value: 'ssh_key', label: 'SSH key' }, { value: 'ssh_password', label: 'SSH password' }, { value: 'winrm', label: 'WinRM' }, { value: 'secret', label: 'Secret value' }]} />`}
        ${f.type !== 'secret' ? html`<${Input} label="Username" value=${f.username} onInput=${set('username')} required error=${err.username} />` : ''}
      </div>
      ${f.type === 'winrm' ? html`<div class="row"><${Select} label="Authentication" value=${f.auth} onChange=${set('auth')} options=${['ntlm', 'basic', 'kerberos', 'certificate']} /><${Input} label="Domain" value=${f.domain} onInput=${set('domain')} /></div>` : ''}
      <${Input} label="Description" value=${f.description} onInput=${set('description')} />`}
    ${!cred || rotate ? html`<${SecretFields} type=${f.type} f=${f} set=${set} err=${err} />` : html`<p class="help">Secrets are not shown. Use “Replace secret” to rotate.</p>`}
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>${rotate ? 'Replace secret' : 'Save credential'}</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

export function Credentials() {
  const list = useLoad(() => all('/credentials'), []);
  const [dialog, setDialog] = useState(null);
  const [remove, , rmError] = useAction(async (c) => {
    if (!confirm(`Delete credential ${c.name}?`)) return;
    await del('/credentials/' + c.id);
    notify('Credential deleted');
    list.reload();
  });
  const close = () => setDialog(null);
  const done = () => {
    close();
    list.reload();
  };
  return html`<div>
    <${PageHead} title="Credentials" sub="Encrypted in the vault; only metadata and fingerprints are ever shown">
      ${can('operator') ? html`<${Btn} kind="primary" onClick=${() => setDialog({ kind: 'new' })}>New credential</${Btn}>` : ''}
    </${PageHead}>
    <${ErrorBox} error=${list.error || rmError} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No credentials yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Type</th><th>Username</th><th>Fingerprint</th><th>Updated</th>${can('operator') ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${list.data.map((c) => html`<tr key=${c.id}>
        <td>${c.name}${c.description ? html`<div class="muted">${c.description}</div>` : ''}</td><td>${c.type}${c.key_type ? html` <span class="muted">${c.key_type}${c.key_bits ? ' ' + c.key_bits : ''}</span>` : ''}</td><td>${c.username || '—'}</td>
        <td>${c.fingerprint ? html`<code class="fp">${c.fingerprint}</code>` : '—'}</td><td><${Time} iso=${c.updated_at} /></td>
        ${can('operator') ? html`<td class="actions-cell">
          <${Btn} kind="small" onClick=${() => setDialog({ kind: 'edit', cred: c })} aria-label=${'Edit ' + c.name}>Edit</${Btn}>
          <${Btn} kind="small" onClick=${() => setDialog({ kind: 'rotate', cred: c })} aria-label=${'Replace secret of ' + c.name}>Replace secret</${Btn}>
          <${Btn} kind="small" onClick=${() => remove(c)} aria-label=${'Delete ' + c.name}>Delete</${Btn}></td>` : ''}
      </tr>`)}</tbody></table></div>`}
    ${dialog ? html`<${Dialog} title=${dialog.kind === 'new' ? 'New credential' : dialog.kind === 'rotate' ? 'Replace secret of ' + dialog.cred.name : 'Edit ' + dialog.cred.name} onClose=${close}>
      <${CredentialForm} cred=${dialog.cred} rotate=${dialog.kind === 'rotate'} onDone=${done} onCancel=${close} /></${Dialog}>` : ''}
  </div>`;
}
