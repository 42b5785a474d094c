// run.js - one run: per target and per step state, durations, exit codes; the live log over
// SSE (resumed with Last-Event-ID after a drop), per target or interleaved, with search,
// follow and download; cancel and retry of the failed targets.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Dialog, ErrorBox, Loading, PageHead, State, Time, download, notify, useAction } from '../ui/components.js';
import { LogView, createLog, pushRecord, setFilter } from '../ui/logview.js';
import { can, get, post, raw } from '../lib/api.js';
import { navigate, query } from '../lib/router.js';
import { stream } from '../lib/sse.js';
import { between } from '../lib/time.js';
import { RunForm } from './runform.js';

const ACTIVE = new Set(['queued', 'running']);

function Targets({ run, onPick, picked }) {
  return html`<div class="table-wrap"><table class="table run-targets">
    <thead><tr><th>Target</th><th>State</th><th>Duration</th><th>Steps</th></tr></thead>
    <tbody>${(run.targets || []).map((t) => html`<tr key=${t.target_id} class=${picked === t.target_id ? 'selected' : ''}>
      <td><button type="button" class="linklike" aria-pressed=${picked === t.target_id} onClick=${() => onPick(picked === t.target_id ? '' : t.target_id)}>${t.name}</button>${t.error ? html`<div class="error-text small">${t.error}</div>` : ''}</td>
      <td><${State} state=${t.state} /></td>
      <td>${between(t.started_at, t.finished_at)}</td>
      <td><ol class="chips">${(t.steps || []).map((s) => html`<li key=${s.id} class=${'chip state-' + s.state} title=${[s.state, s.exit_code !== null && s.exit_code !== undefined ? 'exit ' + s.exit_code : '', s.attempts > 1 ? s.attempts + ' attempts' : '', s.error || ''].filter(Boolean).join(' · ')}>
        ${s.id} <span class="small">${s.state}${s.exit_code !== null && s.exit_code !== undefined ? ' · exit ' + s.exit_code : ''}${s.started_at ? ' · ' + between(s.started_at, s.finished_at) : ''}</span></li>`)}</ol></td>
    </tr>`)}</tbody>
  </table></div>`;
}

async function downloadLog(run) {
  let text = '';
  let cursor = '';
  for (let i = 0; i < 1000; i++) {
    const res = await raw('GET', `/runs/${run.id}/log?format=text&limit=10000${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
    text += await res.text();
    cursor = res.headers.get('X-Next-Cursor');
    if (!cursor) break;
  }
  download(`run-${run.id}.log`, text, 'text/plain');
}

export function RunPage({ id }) {
  const [run, setRun] = useState(null);
  const [err, setErr] = useState(null);
  const [conn, setConn] = useState('connecting');
  const [follow, setFollow] = useState(true);
  const [interleaved, setInterleaved] = useState(true);
  const [target, setTarget] = useState('');
  const [search, setSearch] = useState('');
  const [dialog, setDialog] = useState(false);
  const log = useMemo(createLog, [id]);
  const names = useRef({});
  const refetch = useRef(0);

  const load = () => get('/runs/' + id).then((r) => {
    names.current = Object.fromEntries((r.targets || []).map((t) => [t.target_id, t.name]));
    setRun(r);
    return r;
  }, setErr);

  useEffect(() => {
    let s = null;
    load().then((r) => {
      if (!r) return;
      const want = query().get('target');
      const tt = want && (r.targets || []).find((t) => t.name === want || t.target_id === want);
      if (tt) setTarget(tt.target_id);
      s = stream(`/runs/${id}/events`, {
        onState: setConn,
        onError: (status, body) => setErr(new Error((body && body.error && body.error.message) || 'HTTP ' + status)),
        onEvent: (ev) => {
          if (!ev.data) return;
          const d = JSON.parse(ev.data);
          if (ev.event === 'log') pushRecord(log, d, names.current);
          else if (ev.event === 'run') {
            names.current = Object.fromEntries((d.targets || []).map((t) => [t.target_id, t.name]));
            setRun(d);
          } else {
            // state, target, step, end: the run's record is the truth; fetch it (at most 3/s)
            clearTimeout(refetch.current);
            refetch.current = setTimeout(load, ev.event === 'end' ? 0 : 300);
          }
        },
      });
    });
    return () => {
      if (s) s.close();
      clearTimeout(refetch.current);
    };
  }, [id]);

  // The filter applies before this render's LogView reads the store (idempotent).
  if (log.filter.target !== target || log.filter.text !== search.toLowerCase()) setFilter(log, { target, text: search });

  const [cancel, cancelling, cancelErr] = useAction(async () => {
    setRun(await post(`/runs/${id}/cancel`));
    notify('Cancel requested');
  });
  const [retry, retrying, retryErr] = useAction(async () => {
    const r = await post(`/runs/${id}/retry`);
    notify('Retry started');
    navigate('/runs/' + r.id);
  });
  if (!run) return err ? html`<${ErrorBox} error=${err} />` : html`<${Loading} />`;
  const active = ACTIVE.has(run.state);
  const anyFailed = (run.targets || []).some((t) => t.state !== 'succeeded');
  return html`<div class="run-page">
    <${PageHead} title=${`Run of ${run.job_name || run.job_id}`} sub=${html`<${State} state=${run.state} /> · started <${Time} iso=${run.started_at || run.created_at} /> · ${between(run.started_at, run.finished_at)} · by ${run.triggered_by || '—'}${run.schedule_id ? html` · <a href=${'/schedules/' + run.schedule_id}>schedule</a>` : ''}${run.retry_of ? html` · retry of <a href=${'/runs/' + run.retry_of}>a run</a>` : ''}`}>
      ${can('operator') && active ? html`<${Btn} kind="danger" busy=${cancelling} onClick=${cancel}>Cancel run</${Btn}>` : ''}
      ${can('operator') && !active && anyFailed ? html`<${Btn} kind="primary" busy=${retrying} onClick=${retry}>Retry failed targets</${Btn}>` : ''}
      ${can('operator') && !active ? html`<${Btn} onClick=${() => setDialog(true)}>Run again</${Btn}>` : ''}
      <a class="btn" href=${'/jobs/' + run.job_id}>Job</a>
    </${PageHead}>
    <${ErrorBox} error=${err || cancelErr || retryErr} />
    ${run.reason ? html`<p class="alert alert-info">${run.reason}</p>` : ''}
    ${run.params && Object.keys(run.params).length ? html`<p class="muted">Parameters: ${Object.entries(run.params).map(([k, v]) => html`<code key=${k}>${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}</code> `)}</p>` : ''}
    <section class="card" aria-labelledby="h-rt"><h2 id="h-rt">Targets (${(run.targets || []).length})</h2><${Targets} run=${run} picked=${target} onPick=${setTarget} /></section>
    <section class="card" aria-labelledby="h-log">
      <div class="card-head"><h2 id="h-log">Log</h2><span class=${'conn conn-' + conn} role="status">${conn === 'open' ? (active ? 'live' : 'complete') : conn === 'closed' ? 'complete' : conn}</span></div>
      <div class="log-tools">
        <div class="field inline"><label for="log-target">Target</label><select id="log-target" value=${target} onChange=${(e) => setTarget(e.target.value)}><option value="">all, interleaved</option>${(run.targets || []).map((t) => html`<option value=${t.target_id}>${t.name}</option>`)}</select></div>
        <div class="field inline"><label for="log-search">Search</label><input id="log-search" type="search" value=${search} onInput=${(e) => setSearch(e.target.value)} /></div>
        <label class="inline"><input type="checkbox" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> Follow</label>
        <label class="inline"><input type="checkbox" checked=${interleaved} onChange=${(e) => setInterleaved(e.target.checked)} /> Target names</label>
        <${Btn} kind="small" onClick=${() => downloadLog(run)}>Download</${Btn}>
      </div>
      <${LogView} log=${log} version=${log.version} follow=${follow} onFollow=${setFollow} interleaved=${interleaved && !target} />
    </section>
    ${dialog ? html`<${Dialog} title="Run again" onClose=${() => setDialog(false)}><${RunAgain} run=${run} onCancel=${() => setDialog(false)} /></${Dialog}>` : ''}
  </div>`;
}

function RunAgain({ run, onCancel }) {
  const [job, setJob] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    get('/jobs/' + run.job_id).then((j) => setJob({ ...j, parameters: (j.parameters || []).map((p) => ({ ...p, default: run.params && run.params[p.name] !== undefined && !p.secret ? run.params[p.name] : p.default })) }), setErr);
  }, [run.job_id]);
  if (err) return html`<${ErrorBox} error=${err} />`;
  return job ? html`<${RunForm} job=${job} onCancel=${onCancel} />` : html`<${Loading} />`;
}
