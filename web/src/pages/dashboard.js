// dashboard.js - the state of things at a glance: runs by outcome over 24 h / 7 d, what runs now,
// recent failures and their failed targets, the next schedule fires, fleet health, plugins.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Empty, ErrorBox, Loading, PageHead, State, Time, useLoad } from '../ui/components.js';
import { all, get } from '../lib/api.js';
import { between, fmtLocal, utcTitle } from '../lib/time.js';

const OUTCOMES = ['succeeded', 'failed', 'cancelled', 'timed_out', 'interrupted', 'missed'];

function buckets(runs, range) {
  const now = Date.now();
  const n = range === '24h' ? 24 : 7;
  const size = range === '24h' ? 3600e3 : 86400e3;
  const start = now - n * size;
  const rows = Array.from({ length: n }, (_, i) => ({ at: start + i * size, counts: {} }));
  for (const r of runs) {
    const t = new Date(r.created_at).getTime();
    if (t < start) continue;
    const i = Math.min(n - 1, Math.floor((t - start) / size));
    const st = OUTCOMES.includes(r.state) ? r.state : 'running';
    rows[i].counts[st] = (rows[i].counts[st] || 0) + 1;
  }
  return { rows, size };
}

/** Stacked bars of runs per hour or day by outcome, drawn as SVG (no chart library). */
function RunsChart({ runs, range }) {
  const { rows } = buckets(runs, range);
  const max = Math.max(1, ...rows.map((r) => Object.values(r.counts).reduce((a, b) => a + b, 0)));
  const W = 720;
  const H = 160;
  const bw = W / rows.length;
  const total = {};
  for (const r of rows) for (const [k, v] of Object.entries(r.counts)) total[k] = (total[k] || 0) + v;
  const fmt = (t) => (range === '24h' ? new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : new Date(t).toLocaleDateString([], { weekday: 'short', day: 'numeric' }));
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${W} ${H + 20}`} role="img" aria-label=${`Runs by outcome over the last ${range}: ` + (Object.entries(total).map(([k, v]) => `${v} ${k}`).join(', ') || 'none')}>
      ${rows.map((r, i) => {
        let y = H;
        const parts = [...OUTCOMES, 'running'].filter((k) => r.counts[k]).map((k) => {
          const h = (r.counts[k] / max) * (H - 10);
          y -= h;
          return html`<rect key=${k} class=${'bar-' + k} x=${i * bw + 2} y=${y} width=${Math.max(1, bw - 4)} height=${h}><title>${fmt(r.at)}: ${r.counts[k]} ${k}</title></rect>`;
        });
        return html`<g key=${i}>${parts}${i % (range === '24h' ? 4 : 1) === 0 ? html`<text x=${i * bw + 2} y=${H + 14} class="axis">${fmt(r.at)}</text>` : ''}</g>`;
      })}
    </svg>
    <figcaption class="legend">${OUTCOMES.filter((k) => total[k]).map((k) => html`<span key=${k}><i class=${'swatch bar-' + k}></i>${k.replace('_', ' ')} ${total[k]}</span>`)}
      ${Object.keys(total).length ? '' : html`<span class="muted">No runs in this period.</span>`}</figcaption>
  </figure>`;
}

function Running({ runs }) {
  if (!runs.length) return html`<${Empty}>Nothing is running.</${Empty}>`;
  return html`<ul class="plain">${runs.map((r) => {
    const c = r.counts || {};
    const done = Object.entries(c).filter(([k]) => k !== 'running' && k !== 'queued').reduce((a, [, v]) => a + v, 0);
    const pct = r.target_count ? Math.round((100 * done) / r.target_count) : 0;
    return html`<li key=${r.id} class="running-item">
      <a href=${'/runs/' + r.id}>${r.job_name}</a> <${State} state=${r.state} />
      <progress max="100" value=${pct} aria-label=${`${r.job_name}: ${done} of ${r.target_count} targets done`}></progress>
      <span class="muted">${done}/${r.target_count} targets · ${between(r.started_at)}</span>
    </li>`;
  })}</ul>`;
}

function Failures({ items }) {
  if (!items.length) return html`<${Empty}>No failed runs lately.</${Empty}>`;
  return html`<ul class="plain">${items.map(({ run, failed }) => html`<li key=${run.id}>
    <a href=${'/runs/' + run.id}>${run.job_name}</a> <${State} state=${run.state} /> <span class="muted"><${Time} iso=${run.finished_at || run.created_at} /></span>
    <div class="failed-targets">${failed.length ? failed.map((t) => html`<a key=${t.name} class="label label-bad" href=${`/runs/${run.id}?target=${encodeURIComponent(t.name)}`}>${t.name}${t.error ? ': ' + t.error : ''}</a>`) : html`<span class="muted">${run.reason || 'no target failed'}</span>`}</div>
  </li>`)}</ul>`;
}

/** The next fires within 24 h on a line, and the list of them. */
function Timeline({ schedules, jobs }) {
  const now = Date.now();
  const end = now + 24 * 3600e3;
  const next = schedules.filter((s) => s.enabled && s.status && s.status.next_fire_at).map((s) => ({ s, t: new Date(s.status.next_fire_at).getTime() })).sort((a, b) => a.t - b.t);
  const soon = next.filter((x) => x.t <= end);
  const name = (s) => (jobs[s.job_id] ? jobs[s.job_id].name : s.job_id);
  return html`<div>
    <svg class="timeline" viewBox="0 0 360 40" role="img" aria-label=${`${soon.length} schedule fires in the next 24 hours`}>
      <line x1="4" y1="16" x2="356" y2="16" class="axis-line" />
      ${[0, 6, 12, 18, 24].map((h) => html`<text key=${h} x=${4 + h * 14} y="36" class="axis" text-anchor=${h === 0 ? 'start' : h === 24 ? 'end' : 'middle'}>${h === 0 ? 'now' : '+' + h + ' h'}</text>`)}
      ${soon.map(({ s, t }) => html`<circle key=${s.id} cx=${4 + ((t - now) / (end - now)) * 352} cy="16" r="5" class="fire"><title>${name(s)} at ${fmtLocal(s.status.next_fire_at)}</title></circle>`)}
    </svg>
    ${next.length ? html`<ul class="plain">${next.slice(0, 5).map(({ s }) => html`<li key=${s.id}><a href=${'/schedules/' + s.id}>${name(s)}</a> <code>${s.cron}</code> <span title=${utcTitle(s.status.next_fire_at)}><${Time} iso=${s.status.next_fire_at} zone=${s.timezone} /></span></li>`)}</ul>` : html`<${Empty}>No schedule is due.</${Empty}>`}
  </div>`;
}

function Fleet({ targets }) {
  const ok = targets.filter((t) => t.last_test && t.last_test.ok).length;
  const bad = targets.filter((t) => t.last_test && !t.last_test.ok).length;
  const never = targets.length - ok - bad;
  return html`<div>
    <div class="stats">
      <a class="stat ok" href="/targets?last_test=ok"><b>${ok}</b> reachable</a>
      <a class="stat bad" href="/targets?last_test=failed"><b>${bad}</b> failing</a>
      <a class="stat" href="/targets?last_test=never"><b>${never}</b> never tested</a>
    </div>
    ${bad ? html`<ul class="plain">${targets.filter((t) => t.last_test && !t.last_test.ok).slice(0, 5).map((t) => html`<li key=${t.id}><a href=${'/targets/' + t.id}>${t.name}</a> <span class="muted">${t.last_test.error}</span></li>`)}</ul>` : ''}
  </div>`;
}

function System({ sys, plugins }) {
  const refused = plugins.filter((p) => p.state !== 'loaded');
  return html`<dl class="facts">
    <dt>Version</dt><dd>${sys.version} (plugin ABI ${sys.plugin_abi})</dd>
    <dt>Store</dt><dd>${sys.ready ? html`<span class="state state-succeeded">ready</span>` : html`<span class="state state-failed">not ready</span>`}</dd>
    <dt>Plugins</dt><dd>${sys.plugins.loaded} loaded${refused.length ? html`, <a href="/admin/plugins" class="bad">${refused.length} refused</a>` : ''}</dd>
    <dt>Step libraries</dt><dd>${sys.step_libraries}</dd>
    <dt>Up since</dt><dd><${Time} iso=${sys.started_at} /></dd>
  </dl>`;
}

async function loadFailures() {
  const runs = (await get('/runs?state=failed&limit=5')).items;
  return Promise.all(runs.map(async (run) => {
    const full = await get('/runs/' + run.id);
    return { run, failed: (full.targets || []).filter((t) => t.state !== 'succeeded') };
  }));
}

export function Dashboard() {
  const [range, setRange] = useState('24h');
  const since = new Date(Date.now() - 7 * 86400e3).toISOString();
  const d = useLoad(async () => {
    const [runs, running, schedules, jobs, targets, sys, plugins, failures] = await Promise.all([
      all('/runs?since=' + encodeURIComponent(since), 5000),
      get('/runs?state=running&limit=20'),
      all('/schedules'),
      all('/jobs'),
      all('/targets'),
      get('/system'),
      get('/plugins'),
      loadFailures(),
    ]);
    return { runs, running: running.items, schedules, jobs: Object.fromEntries(jobs.map((j) => [j.id, j])), targets, sys, plugins: plugins.items, failures };
  }, []);
  useEffect(() => {
    const t = setInterval(() => document.visibilityState === 'visible' && d.reload(), 15000);
    return () => clearInterval(t);
  }, []);
  const x = d.data;
  return html`<div class="dashboard">
    <${PageHead} title="Dashboard" />
    <${ErrorBox} error=${d.error} />
    ${!x ? html`<${Loading} />` : html`<div class="grid">
      <section class="card span2" aria-labelledby="h-runs">
        <div class="card-head"><h2 id="h-runs">Runs by outcome</h2>
          <div class="seg" role="group" aria-label="Period">
            ${['24h', '7d'].map((r) => html`<button key=${r} type="button" class=${'btn btn-small' + (range === r ? ' btn-primary' : '')} aria-pressed=${range === r} onClick=${() => setRange(r)}>Last ${r}</button>`)}
          </div></div>
        <${RunsChart} runs=${x.runs} range=${range} />
      </section>
      <section class="card" aria-labelledby="h-running"><h2 id="h-running">Running now</h2><${Running} runs=${x.running} /></section>
      <section class="card" aria-labelledby="h-fail"><h2 id="h-fail">Recent failures</h2><${Failures} items=${x.failures} /></section>
      <section class="card" aria-labelledby="h-next"><h2 id="h-next">Next schedule fires</h2><${Timeline} schedules=${x.schedules} jobs=${x.jobs} /></section>
      <section class="card" aria-labelledby="h-fleet"><h2 id="h-fleet">Fleet health</h2><${Fleet} targets=${x.targets} /></section>
      <section class="card" aria-labelledby="h-sys"><h2 id="h-sys">System</h2><${System} sys=${x.sys} plugins=${x.plugins} /></section>
    </div>`}
  </div>`;
}
