// runform.js - start a run (or a dry run) of a job: a form generated from the job's parameters,
// secret ones masked; a dry run shows the commands rendered per target and runs nothing.
import { useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, ErrorBox, Input, Select } from '../ui/components.js';
import { post } from '../lib/api.js';
import { navigate } from '../lib/router.js';

function paramField(p, value, set, error) {
  const label = p.name + (p.description ? ` — ${p.description}` : '');
  if (p.type === 'bool') return html`<${Check} key=${p.name} label=${p.name} checked=${value === true || value === 'true'} onChange=${set} />`;
  if (p.type === 'choice') return html`<${Select} key=${p.name} label=${label} value=${value} onChange=${set} required=${p.required} error=${error} options=${[...(p.required ? [] : ['']), ...(p.choices || [])]} />`;
  const secret = p.secret || p.type === 'secret';
  return html`<${Input} key=${p.name} label=${label} type=${secret ? 'password' : p.type === 'int' ? 'number' : 'text'} autocomplete=${secret ? 'new-password' : 'off'}
    value=${value} onInput=${set} required=${p.required} error=${error} help=${p.pattern ? 'must match ' + p.pattern : secret ? 'secret: masked in logs' : ''} />`;
}

export function DryRunResult({ result }) {
  return html`<div class="dry-run" aria-label="Dry run">
    ${result.targets.length === 0 ? html`<p class="alert alert-info">No target would run: the job's targets resolve to nothing.</p>` : ''}
    ${result.targets.map((t) => html`<section key=${t.target_id} class="dry-target"><h3>${t.name} <span class="muted">${t.os_family}</span></h3>
      ${t.steps.map((s) => html`<div key=${s.id} class="dry-step"><div><b>${s.id}</b> <span class="muted">${s.type}</span></div>
        ${s.command ? html`<pre class="cmd">${s.command}</pre>` : ''}
        ${s.error ? html`<p class=${s.note ? 'muted' : 'error-text'}>${s.error}</p>` : ''}
        ${s.note ? html`<p class="help">${s.note}</p>` : ''}</div>`)}
    </section>`)}
    ${(result.disabled_targets || []).length ? html`<p class="muted">Disabled, skipped: ${result.disabled_targets.map((d) => d.name || d).join(', ')}</p>` : ''}
  </div>`;
}

export function RunForm({ job, dry, onCancel }) {
  const params = job.parameters || [];
  const [values, setValues] = useState(Object.fromEntries(params.map((p) => [p.name, p.default ?? (p.type === 'bool' ? false : '')])));
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    const body = { params: {} };
    for (const p of params) {
      const v = values[p.name];
      if (v === '' || v === undefined) continue;
      body.params[p.name] = p.type === 'int' ? Number(v) : p.type === 'bool' ? v === true || v === 'true' : v;
    }
    if (dry) body.dry_run = true;
    try {
      const r = await post(`/jobs/${job.id}/runs`, body);
      if (dry) setResult(r);
      else navigate('/runs/' + r.id);
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };
  const fieldErr = (name) => err && err.details && (err.details.param === name || err.details.field === 'params.' + name) ? err.message : '';
  return html`<form class="form" onSubmit=${submit}>
    <${ErrorBox} error=${err} />
    ${params.length ? params.map((p) => paramField(p, values[p.name], (v) => setValues({ ...values, [p.name]: v }), fieldErr(p.name))) : html`<p class="muted">This job takes no parameters.</p>`}
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>${dry ? 'Render commands' : 'Start run'}</button><${Btn} onClick=${onCancel}>Close</${Btn}></div>
    ${result ? html`<${DryRunResult} result=${result} />` : ''}
  </form>`;
}
