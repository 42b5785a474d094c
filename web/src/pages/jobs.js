// jobs.js - the list of jobs, import of an exported job, and starting a run.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, PageHead, TextArea, Time, notify, useAction, useLoad } from '../ui/components.js';
import { all, can, post } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { RunForm } from './runform.js';

function Import({ onCancel }) {
  const [text, setText] = useState('');
  const [replace, setReplace] = useState(false);
  const [run, busy, error] = useAction(async () => {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error('not JSON: ' + e.message);
    }
    const rec = await post('/jobs/import' + (replace ? '?replace=true' : ''), doc);
    notify(`Job ${rec.name} imported`);
    navigate('/jobs/' + rec.id);
  });
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); run(); }}>
    <${ErrorBox} error=${error} />
    <div class="field"><label for="imp-file">Exported job file</label><input id="imp-file" type="file" accept="application/json,.json" onChange=${(e) => e.target.files[0] && e.target.files[0].text().then(setText)} /></div>
    <${TextArea} label="Or paste it" rows="10" class="mono" value=${text} onInput=${setText} />
    <${Check} label="Replace a job of the same name" checked=${replace} onChange=${setReplace} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy || !text.trim()}>Import</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

export function Jobs() {
  const [name, setName] = useState('');
  const list = useLoad(() => all('/jobs' + (name ? '?name=' + encodeURIComponent(name) : '')), [name]);
  const [dialog, setDialog] = useState(null);
  return html`<div>
    <${PageHead} title="Jobs" sub="Steps from the step libraries, run on targets">
      ${can('operator') ? html`<a class="btn btn-primary" href="/jobs/new">New job</a><${Btn} onClick=${() => setDialog({ kind: 'import' })}>Import</${Btn}>` : ''}
    </${PageHead}>
    <div class="filters"><${Input} label="Name contains" type="search" value=${name} onInput=${setName} /></div>
    <${ErrorBox} error=${list.error} />
    ${!list.data ? html`<${Loading} />` : list.data.length === 0 ? html`<${Empty}>No jobs${name ? ' match' : ' yet'}.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Name</th><th>Steps</th><th>Parameters</th><th>Version</th><th>Updated</th>${can('operator') ? html`<th><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${list.data.map((j) => html`<tr key=${j.id}>
        <td><a href=${'/jobs/' + j.id}>${j.name}</a>${j.description ? html`<div class="muted">${j.description}</div>` : ''}</td>
        <td>${(j.steps || []).length}</td><td>${(j.parameters || []).map((p) => p.name).join(', ') || '—'}</td><td>${j.version}</td><td><${Time} iso=${j.updated_at} /></td>
        ${can('operator') ? html`<td class="actions-cell"><${Btn} kind="small" onClick=${() => setDialog({ kind: 'run', job: j })} aria-label=${'Run ' + j.name}>Run</${Btn}> <a class="btn btn-small" href=${'/runs?job=' + encodeURIComponent(j.name)}>Runs</a></td>` : ''}
      </tr>`)}</tbody></table></div>`}
    ${dialog && dialog.kind === 'import' ? html`<${Dialog} title="Import a job" wide onClose=${() => setDialog(null)}><${Import} onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
    ${dialog && dialog.kind === 'run' ? html`<${Dialog} title=${'Run ' + dialog.job.name} onClose=${() => setDialog(null)}><${RunForm} job=${dialog.job} onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
  </div>`;
}
