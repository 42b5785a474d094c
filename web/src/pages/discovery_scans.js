// discovery_scans.js - scans: start one (ranges, exclusions, ports, rate), the recent scans, and
// one scan live: progress, hosts streaming in over SSE, cancel, and onboarding what it found.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../ui/html.js';
import { Btn, Check, Dialog, Empty, ErrorBox, Input, Loading, PageHead, Select, State, Time, TextArea, useAction, useLoad } from '../ui/components.js';
import { ApiError, can, get, post } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { stream } from '../lib/sse.js';
import { between } from '../lib/time.js';
import { percent, specFromForm, specToForm, upsertHost } from '../lib/discovery.js';
import { HostTable, OnboardForm } from './discovery_hosts.js';

/** The fields of a scan spec (also a profile's). */
export function SpecFields({ f, set, errs }) {
  return html`<div>
    <div class="row">
      <${TextArea} label="Ranges" rows="3" class="mono" value=${f.ranges} onInput=${set('ranges')} required error=${errs.ranges} placeholder="10.1.2.0/24\n10.1.3.10-50\ndb1.example.com" help="CIDR blocks, a-b ranges, addresses and host names; one a line" />
      <${TextArea} label="Exclude" rows="3" class="mono" value=${f.exclude} onInput=${set('exclude')} error=${errs.exclude} help="left out of the ranges" />
    </div>
    <div class="row">
      <${Input} label="Ports" value=${f.ports} onInput=${set('ports')} error=${errs.ports} help="e.g. 22, 5985, 5986, 8000-8010" />
      <${Input} label="Rate (connects/s)" type="number" min="1" value=${f.rate} onInput=${set('rate')} error=${errs.rate} help="default 100" />
      <${Input} label="Concurrency" type="number" min="1" value=${f.concurrency} onInput=${set('concurrency')} error=${errs.concurrency} help="default 256" />
      <${Input} label="Probe timeout (ms)" type="number" min="10" value=${f.timeout_ms} onInput=${set('timeout_ms')} error=${errs.timeout_ms} help="default 1000" />
      <${Select} label="Scanner" value=${f.scanner} onChange=${set('scanner')} error=${errs.scanner} options=${[{ value: 'tcp', label: 'tcp (built in)' }, { value: 'nmap', label: 'nmap (when installed)' }]} />
    </div>
    <${Check} label="Also ICMP echo (where unprivileged ICMP sockets are allowed)" checked=${f.icmp} onChange=${set('icmp')} />
  </div>`;
}

/** The API's 400 on a spec ("ranges[2]", "spec.ports") as the field it names. */
export function specErrors(e, prefix = '') {
  const field = (e && e.details && e.details.field) || '';
  const k = field.slice(prefix.length).split(/[.[]/)[0];
  return k ? { [k]: e.message } : {};
}

function StartScan({ onCancel }) {
  const [f, setF] = useState(() => specToForm(null));
  const set = (k) => (v) => setF((x) => ({ ...x, [k]: v }));
  const [errs, setErrs] = useState({});
  const [start, busy, error] = useAction(async () => {
    const r = specFromForm(f);
    setErrs(r.errors || {});
    if (r.errors) return;
    try {
      const scan = await post('/discovery/scans', r.spec);
      navigate('/discovery/scans/' + scan.id);
    } catch (e) {
      setErrs(specErrors(e));
      throw e;
    }
  });
  return html`<form class="form" onSubmit=${(e) => { e.preventDefault(); start(); }}>
    <${ErrorBox} error=${error} />
    <${SpecFields} f=${f} set=${set} errs=${errs} />
    <div class="actions"><button class="btn btn-primary" type="submit" disabled=${busy}>Start scan</button><${Btn} onClick=${onCancel}>Cancel</${Btn}></div>
  </form>`;
}

function Progress({ scan }) {
  const p = scan.progress || {};
  return html`<div class="scan-progress">
    <progress max="100" value=${percent(p)} aria-label="Addresses scanned"></progress>
    <span>${p.done || 0} / ${p.total || '?'} addresses · ${scan.hosts_found || 0} hosts found${p.addresses_per_s ? ` · ${Math.round(p.addresses_per_s)} addresses/s` : ''}</span>
  </div>`;
}

export function Scans() {
  const list = useLoad(() => get('/discovery/scans?limit=50'), []);
  const [starting, setStarting] = useState(false);
  const items = list.data ? list.data.items : null;
  return html`<div>
    <div class="card-head"><p class="muted">Scans find the machines of a network: open ports, SSH host keys, WinRM, an OS guess.</p>
      ${can('operator') ? html`<${Btn} kind="primary" onClick=${() => setStarting(true)}>New scan</${Btn}>` : ''}</div>
    <${ErrorBox} error=${list.error} />
    ${!items ? html`<${Loading} />` : items.length === 0 ? html`<${Empty}>No scans yet.</${Empty}>` : html`<div class="table-wrap"><table class="table">
      <thead><tr><th>Started</th><th>Ranges</th><th>State</th><th>Progress</th><th>Hosts</th><th>Duration</th><th>By</th></tr></thead>
      <tbody>${items.map((s) => html`<tr key=${s.id}>
        <td><a href=${'/discovery/scans/' + s.id}><${Time} iso=${s.started_at || s.created_at} /></a></td>
        <td class="mono small">${(s.ranges || []).join(', ')}</td>
        <td><${State} state=${s.state} />${s.error ? html`<div class="error-text small">${s.error}</div>` : ''}</td>
        <td>${percent(s.progress)} %</td><td>${s.hosts_found || 0}</td><td>${between(s.started_at, s.finished_at)}</td>
        <td>${s.profile_id ? html`<a href="/discovery/profiles">profile</a>` : s.requested_by || ''}</td>
      </tr>`)}</tbody></table></div>`}
    ${starting ? html`<${Dialog} title="New scan" wide onClose=${() => setStarting(false)}><${StartScan} onCancel=${() => setStarting(false)} /></${Dialog}>` : ''}
  </div>`;
}

export function ScanPage({ id }) {
  const [scan, setScan] = useState(null);
  const [hosts, setHosts] = useState([]);
  const [conn, setConn] = useState('connecting');
  const [err, setErr] = useState(null);
  const [picked, setPicked] = useState([]);
  const [onboarding, setOnboarding] = useState(false);
  useEffect(() => {
    setHosts([]);
    let live = true;
    const s = stream(`/discovery/scans/${id}/events`, {
      onEvent: (ev) => {
        const d = JSON.parse(ev.data || 'null');
        if (!d) return;
        if (ev.event === 'scan' || ev.event === 'end') setScan(d);
        else if (ev.event === 'host') setHosts((h) => upsertHost(h, d));
        else if (ev.event === 'progress') setScan((x) => (x ? { ...x, progress: d.progress, hosts_found: d.hosts_found } : x));
      },
      onError: (status, body) => setErr(new ApiError(status, body)),
      onState: (st) => {
        setConn(st);
        // A stream that ended without "end" (an error): the scan as it is now.
        if (st === 'closed' && live) get('/discovery/scans/' + id).then((x) => live && setScan(x), () => {});
      },
    });
    return () => {
      live = false;
      s.close();
    };
  }, [id]);
  // The answer may come after the stream's "end": it only marks a running scan as cancelling.
  const [cancel, cbusy, cerr] = useAction(async () => {
    await post(`/discovery/scans/${id}/cancel`);
    setScan((x) => (x && x.state === 'running' ? { ...x, cancelling: true } : x));
  });
  if (!scan) return err ? html`<${ErrorBox} error=${err} />` : html`<${Loading} />`;
  const running = scan.state === 'running';
  return html`<div>
    <${PageHead} title=${'Scan of ' + (scan.ranges || []).join(', ')} sub=${html`<${State} state=${scan.state} /> started <${Time} iso=${scan.started_at} />${scan.requested_by ? ' by ' + scan.requested_by : ''} · ports ${(scan.ports || []).join(', ')} · ${scan.rate || ''}/s <span class=${'conn conn-' + conn}>${running ? conn : 'ended'}</span>`}>
      ${running && can('operator') ? html`<${Btn} kind="danger" busy=${cbusy || scan.cancelling} onClick=${cancel}>${scan.cancelling ? 'Cancelling…' : 'Cancel scan'}</${Btn}>` : ''}
      ${can('operator') ? html`<${Btn} kind="primary" disabled=${!picked.length} onClick=${() => setOnboarding(true)}>Onboard ${picked.length || ''} selected</${Btn}>` : ''}
      <a class="btn" href=${'/discovery/hosts?scan_id=' + id}>In the inventory</a>
    </${PageHead}>
    <${ErrorBox} error=${err || cerr} />
    ${scan.error ? html`<div class="alert alert-error" role="alert">${scan.error}</div>` : ''}
    <section class="card" aria-labelledby="h-prog"><h2 id="h-prog">Progress</h2><${Progress} scan=${scan} />
      ${scan.progress && scan.progress.icmp ? html`<p class="muted small">ICMP: ${scan.progress.icmp}</p>` : ''}</section>
    <section class="card" aria-labelledby="h-found"><h2 id="h-found">Hosts found (${hosts.length})</h2>
      ${hosts.length ? html`<${HostTable} hosts=${hosts} picked=${picked} onPick=${setPicked} />` : html`<${Empty}>${running ? 'None yet: hosts appear here as the scan finds them.' : 'This scan found no hosts.'}</${Empty}>`}
    </section>
    ${onboarding ? html`<${Dialog} title=${`Onboard ${picked.length} host${picked.length > 1 ? 's' : ''}`} wide onClose=${() => setOnboarding(false)}>
      <${OnboardForm} hostIds=${picked} onCancel=${() => setOnboarding(false)} /></${Dialog}>` : ''}
  </div>`;
}
