// builder.js - the job builder: name, targets and parameters; steps dragged from the palette
// and reordered; each step's form from its schema; the API's 400 errors on the fields they
// name; dry run, run, versions side by side, export.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Dialog, ErrorBox, Input, Loading, PageHead, download, notify, useLoad } from '../ui/components.js';
import { ApiError, all, can, del, get, patch, post } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { errorsByStep, fieldsFor, fromForm, toForm } from '../lib/schemaform.js';
import { lineDiff } from '../lib/diff.js';
import { Palette, ParamsEditor, StepEditor, StepList, TargetsEditor, baseType, paletteOf } from './builder_parts.js';
import { RunForm } from './runform.js';

let uidSeq = 0;
const uid = () => 'u' + ++uidSeq;

function withForms(job, types) {
  return {
    ...job,
    parameters: job.parameters || [],
    targets: job.targets || {},
    steps: (job.steps || []).map((s) => {
      const t = types[baseType(s.type)];
      return { ...s, _uid: uid(), _form: toForm(t ? fieldsFor(t.params_schema) : [], s.params || {}) };
    }),
  };
}

const numOrSkip = (v) => (v === '' || v === undefined || v === null ? undefined : Number(v));

/** The API body and the errors found before sending (by step id). */
function toBody(job, types) {
  const errors = {};
  const steps = job.steps.map((s) => {
    const t = types[baseType(s.type)];
    const { params, errors: e } = fromForm(t ? fieldsFor(t.params_schema) : [], s._form || {});
    if (Object.keys(e).length) errors[s.id] = e;
    const out = { id: s.id, type: s.type, params };
    if (s.name) out.name = s.name;
    for (const k of ['timeout_s', 'retries', 'retry_delay_s']) if (numOrSkip(s[k]) !== undefined) out[k] = numOrSkip(s[k]);
    out.on_failure = s.on_failure || 'stop';
    if (s.when) out.when = s.when;
    if (s.idempotent) out.idempotent = true; // dropped, a save would end its requeueing
    return out;
  });
  const parameters = job.parameters.map((p) => {
    const o = { name: p.name, type: p.type || 'string' };
    if (p.required) o.required = true;
    if (p.secret) o.secret = true;
    if (p.pattern) o.pattern = p.pattern;
    if (p.type === 'choice') o.choices = p.choices || [];
    if (p.default !== undefined && p.default !== '') o.default = p.type === 'int' ? Number(p.default) : p.type === 'bool' ? p.default === true || p.default === 'true' : p.default;
    if (p.description) o.description = p.description;
    return o;
  });
  const targets = {};
  if ((job.targets.ids || []).length) targets.ids = job.targets.ids;
  if ((job.targets.groups || []).length) targets.groups = job.targets.groups;
  if (job.targets.selector) targets.selector = job.targets.selector;
  const body = { name: job.name, description: job.description || '', parameters, targets, steps };
  for (const k of ['max_parallel', 'batch_size', 'timeout_s']) if (numOrSkip(job[k])) body[k] = numOrSkip(job[k]);
  return { body, errors };
}

function uniqueId(type, steps) {
  const base = baseType(type).split('.').pop().replace(/[^A-Za-z0-9_-]/g, '') || 'step';
  let id = base;
  for (let n = 2; steps.some((s) => s.id === id); n++) id = base + '-' + n;
  return id;
}

function Versions({ job, onClose }) {
  const versions = useLoad(() => get(`/jobs/${job.id}/versions?limit=100`), [job.id]);
  const [pair, setPair] = useState(null);
  const items = versions.data ? versions.data.items : [];
  const a = pair ? pair[0] : items[1] ? items[1].version : null;
  const b = pair ? pair[1] : items[0] ? items[0].version : null;
  const diff = useLoad(async () => {
    if (!a || !b) return null;
    const clean = (j) => JSON.stringify({ name: j.name, description: j.description, parameters: j.parameters, targets: j.targets, steps: j.steps, max_parallel: j.max_parallel, batch_size: j.batch_size, timeout_s: j.timeout_s }, null, 2);
    const [x, y] = await Promise.all([get(`/jobs/${job.id}/versions/${a}`), get(`/jobs/${job.id}/versions/${b}`)]);
    return lineDiff(clean(x), clean(y));
  }, [a, b]);
  const opts = items.map((v) => html`<option value=${v.version}>v${v.version} · ${v.updated_by || ''}</option>`);
  return html`<${Dialog} title="Versions" wide onClose=${onClose}>
    ${!versions.data ? html`<${Loading} />` : items.length < 2 ? html`<p>Only one version so far.</p>` : html`<div>
      <div class="row">
        <div class="field"><label for="v-a">Older</label><select id="v-a" value=${a} onChange=${(e) => setPair([Number(e.target.value), b])}>${opts}</select></div>
        <div class="field"><label for="v-b">Newer</label><select id="v-b" value=${b} onChange=${(e) => setPair([a, Number(e.target.value)])}>${opts}</select></div>
      </div>
      ${diff.data ? html`<div class="table-wrap"><table class="diff" aria-label=${`Version ${a} and version ${b} side by side`}><thead><tr><th>v${a}</th><th>v${b}</th></tr></thead><tbody>
        ${diff.data.map((r, i) => html`<tr key=${i} class=${'d-' + r.kind}><td><pre>${r.left ?? ''}</pre></td><td><pre>${r.right ?? ''}</pre></td></tr>`)}
      </tbody></table></div>` : html`<${Loading} />`}
    </div>`}
  </${Dialog}>`;
}

export function Builder({ id }) {
  const editable = can('operator');
  const libs = useLoad(() => get('/steplibs'), []);
  const types = useMemo(() => {
    const m = {};
    if (libs.data) for (const l of libs.data.items) for (const v of l.versions) for (const s of v.steps) if (!m[s.type] || v.version === l.latest) m[s.type] = s;
    return m;
  }, [libs.data]);
  const [job, setJob] = useState(null);
  const [saved, setSaved] = useState(null);
  const [selected, setSelected] = useState(null);
  const [serverErr, setServerErr] = useState({ steps: {}, params: {}, general: null, top: {} });
  const [clientErr, setClientErr] = useState({});
  const [busy, setBusy] = useState(false);
  const [dialog, setDialog] = useState(null);
  const targets = useLoad(() => all('/targets'), []);
  const groups = useLoad(() => all('/groups'), []);
  const loaded = useLoad(async () => (id ? get('/jobs/' + encodeURIComponent(id)) : { name: '', description: '', parameters: [], targets: {}, steps: [] }), [id]);

  useEffect(() => {
    if (!loaded.data || !libs.data) return;
    const j = withForms(loaded.data, types);
    setJob(j);
    setSaved(loaded.data.id ? JSON.stringify(toBody(j, types).body) : null);
    setSelected(j.steps[0] ? j.steps[0]._uid : null);
  }, [loaded.data, libs.data]);
  if (loaded.error) return html`<${ErrorBox} error=${loaded.error} />`;
  if (!job) return html`<${Loading} what="Loading the builder" />`;

  const palette = paletteOf(libs.data.items);
  const update = (patchObj) => setJob((j) => ({ ...j, ...patchObj }));
  const setSteps = (fn) => setJob((j) => ({ ...j, steps: fn(j.steps) }));
  const insertStep = (type, at) => {
    const t = types[baseType(type)];
    setSteps((steps) => {
      const s = { _uid: uid(), id: uniqueId(type, steps), type, on_failure: 'stop', _form: toForm(t ? fieldsFor(t.params_schema) : [], {}) };
      const next = steps.slice();
      next.splice(at === undefined || at < 0 ? next.length : at, 0, s);
      setSelected(s._uid);
      return next;
    });
  };
  const moveStep = (from, to) => setSteps((steps) => {
    if (to < 0 || to >= steps.length) return steps;
    const next = steps.slice();
    const [s] = next.splice(from, 1);
    next.splice(to, 0, s);
    return next;
  });
  const removeStep = (i) => setSteps((steps) => steps.filter((_, j) => j !== i));
  const { body } = toBody(job, types);
  const dirty = !job.id || JSON.stringify(body) !== saved;

  async function save() {
    const { body: b, errors } = toBody(job, types);
    setClientErr(errors);
    setServerErr({ steps: {}, params: {}, general: null, top: {} });
    if (Object.keys(errors).length) {
      const first = job.steps.find((s) => errors[s.id]);
      if (first) setSelected(first._uid);
      notify('Fix the fields marked in red', 'error');
      return null;
    }
    setBusy(true);
    try {
      const rec = job.id ? await patch('/jobs/' + job.id, b, { headers: { 'If-Match': `"${job.version}"` } }) : await post('/jobs', b);
      setJob((j) => ({ ...j, id: rec.id, version: rec.version }));
      setSaved(JSON.stringify(b));
      notify(`Job ${rec.name} saved (version ${rec.version})`);
      if (!id) navigate('/jobs/' + rec.id, { replace: true });
      return rec;
    } catch (e) {
      if (e instanceof ApiError && e.details) {
        const byStep = errorsByStep(e.details);
        const params = {};
        const top = {};
        for (const [k, m] of Object.entries(byStep[''] || {})) {
          const pm = /^\/parameters\/(\d+)/.exec(k);
          if (pm) params[Number(pm[1])] = m;
          else top[k.replace(/^\//, '')] = m;
        }
        setServerErr({ steps: byStep, params, general: e, top });
        const first = job.steps.find((s) => byStep[s.id]);
        if (first) setSelected(first._uid);
      } else setServerErr({ steps: {}, params: {}, general: e, top: {} });
      return null;
    } finally {
      setBusy(false);
    }
  }
  const saveThen = async (what) => {
    if (dirty && !(await save())) return;
    setDialog(what);
  };
  const exportJob = async () => {
    const doc = await get(`/jobs/${job.id}/export`);
    download(`${job.name || 'job'}.json`, JSON.stringify(doc, null, 2));
  };
  const remove = async () => {
    if (!confirm(`Delete job ${job.name}?`)) return;
    await del('/jobs/' + job.id);
    notify('Job deleted');
    navigate('/jobs');
  };
  const selIndex = job.steps.findIndex((s) => s._uid === selected);
  const sel = job.steps[selIndex];
  const stepErrors = (s) => ({ ...(serverErr.steps[s.id] || {}), ...(clientErr[s.id] || {}) });
  const allErrors = Object.fromEntries(job.steps.map((s) => [s.id, stepErrors(s)]).filter(([, e]) => Object.keys(e).length));
  return html`<div class="builder">
    <${PageHead} title=${job.id ? job.name || 'Job' : 'New job'} sub=${job.id ? `version ${job.version}${dirty ? ' · unsaved changes' : ''}` : 'Drag step types into the job'}>
      ${editable ? html`<${Btn} kind="primary" busy=${busy} onClick=${save}>Save</${Btn}>` : ''}
      ${editable ? html`<${Btn} onClick=${() => saveThen('dry')} disabled=${busy || !job.steps.length}>Dry run</${Btn}><${Btn} onClick=${() => saveThen('run')} disabled=${busy || !job.steps.length}>Run</${Btn}>` : ''}
      ${job.id ? html`<${Btn} onClick=${() => setDialog('versions')}>Versions</${Btn}><${Btn} onClick=${exportJob}>Export</${Btn}>` : ''}
      ${job.id && editable ? html`<${Btn} kind="danger" onClick=${remove}>Delete</${Btn}>` : ''}
    </${PageHead}>
    <${ErrorBox} error=${serverErr.general} />
    <section class="card job-meta" aria-label="Job">
      <div class="row">
        <${Input} label="Job name" value=${job.name} onInput=${(v) => update({ name: v })} required readOnly=${!editable} error=${serverErr.top.name} />
        <${Input} label="Description" value=${job.description} onInput=${(v) => update({ description: v })} readOnly=${!editable} />
      </div>
      <details open=${!job.id}><summary>Targets</summary>
        <${TargetsEditor} value=${job.targets} onChange=${(v) => update({ targets: v })} targets=${targets.data} groups=${groups.data} canEdit=${editable} />
        ${serverErr.top.targets ? html`<p class="error-text">${serverErr.top.targets}</p>` : ''}
      </details>
      <details open=${job.parameters.length > 0 && !job.id}><summary>Parameters (${job.parameters.length})</summary>
        <${ParamsEditor} params=${job.parameters} onChange=${(v) => update({ parameters: v })} errors=${serverErr.params} canEdit=${editable} />
      </details>
      <details><summary>Limits</summary><div class="row">
        <${Input} label="Max parallel targets" type="number" min="0" value=${job.max_parallel || ''} onInput=${(v) => update({ max_parallel: v })} readOnly=${!editable} />
        <${Input} label="Batch size" type="number" min="0" value=${job.batch_size || ''} onInput=${(v) => update({ batch_size: v })} readOnly=${!editable} help="rolling runs" />
        <${Input} label="Run timeout (s)" type="number" min="0" value=${job.timeout_s || ''} onInput=${(v) => update({ timeout_s: v })} readOnly=${!editable} />
      </div></details>
    </section>
    <div class="builder-grid">
      <${Palette} libs=${palette} onAdd=${(t) => insertStep(t)} canEdit=${editable} />
      <section class="card" aria-labelledby="h-steps"><h2 id="h-steps">Steps (${job.steps.length})</h2>
        <${StepList} steps=${job.steps} types=${types} selected=${selected} onSelect=${setSelected} onInsert=${insertStep} onMove=${moveStep} onRemove=${removeStep} errors=${allErrors} canEdit=${editable} />
      </section>
      ${sel ? html`<${StepEditor} key=${sel._uid} step=${sel} index=${selIndex} job=${job} types=${types} errors=${stepErrors(sel)} canEdit=${editable}
          onChange=${(s) => setSteps((steps) => steps.map((x) => (x._uid === s._uid ? s : x)))} />` : html`<section class="card muted">Select a step to edit it.</section>`}
    </div>
    ${dialog === 'dry' ? html`<${Dialog} title=${'Dry run of ' + job.name} wide onClose=${() => setDialog(null)}><${RunForm} job=${{ ...job, ...body, id: job.id }} dry onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
    ${dialog === 'run' ? html`<${Dialog} title=${'Run ' + job.name} onClose=${() => setDialog(null)}><${RunForm} job=${{ ...job, ...body, id: job.id }} onCancel=${() => setDialog(null)} /></${Dialog}>` : ''}
    ${dialog === 'versions' ? html`<${Versions} job=${job} onClose=${() => setDialog(null)} />` : ''}
  </div>`;
}
