// discovery.js - what the discovery pages compute: address and port lists from what a user
// typed, a scan's progress, the hosts of a live scan without repeats. Pure: no DOM,
// unit-tested with node's test runner.
import { pairsText, parsePairs } from './notify.js';

/** One item a line or a comma apart ("10.0.0.0/24, 10.0.1.5\n..."), blanks dropped. */
export function splitList(text) {
  return (text || '').split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

/** "22, 5985-5986" to [22, "5985-5986"] (the scan request's shape); {error} names a bad one. */
export function parsePorts(text) {
  const ports = [];
  for (const p of splitList(text)) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p);
    const a = m ? Number(m[1]) : 0;
    const b = m && m[2] ? Number(m[2]) : a;
    if (!m || a < 1 || b > 65535 || b < a) return { error: `"${p}" is not a port (1-65535) or a range a-b` };
    ports.push(m[2] ? `${a}-${b}` : a);
  }
  return { ports };
}

export function portsText(ports) {
  return (ports || []).join(', ');
}

/** The open ports of a host record. */
export function openPorts(host) {
  return (host.ports || []).filter((p) => p.state === 'open' || !p.state).map((p) => p.port);
}

/** Percent of a scan's addresses done, 0-100 (0 while the total is unknown). */
export function percent(progress) {
  const p = progress || {};
  return p.total ? Math.min(100, Math.round((100 * (p.done || 0)) / p.total)) : 0;
}

/** The hosts of a live scan with `host` added or replaced (a reconnected stream repeats). */
export function upsertHost(list, host) {
  const i = list.findIndex((h) => h.id === host.id);
  if (i < 0) return [...list, host];
  const out = list.slice();
  out[i] = host;
  return out;
}

/** A profile's auto-onboard rule from the form's text, or {error} naming the field. */
export function ruleFromForm(r) {
  if (!r.credential_id) return { error: 'credential_id', message: 'choose a credential' };
  const out = { credential_id: r.credential_id, transport: r.transport || 'ssh' };
  const ranges = splitList(r.ranges);
  if (ranges.length) out.ranges = ranges;
  if (r.group_id) out.group_id = r.group_id;
  if (r.name_template && r.name_template.trim()) out.name_template = r.name_template.trim();
  if (r.test) out.test = true;
  const labels = parsePairs(r.labels);
  if (labels.error) return { error: 'labels', message: labels.error };
  if (Object.keys(labels.value).length) out.labels = labels.value;
  return { rule: out };
}

export function ruleToForm(r) {
  return { credential_id: r.credential_id || '', transport: r.transport || 'ssh', ranges: (r.ranges || []).join('\n'), group_id: r.group_id || '', name_template: r.name_template || '', labels: pairsText(r.labels), test: !!r.test };
}

const NUMS = ['rate', 'concurrency', 'timeout_ms'];

/** A scan spec's form text: ranges and exclusions one a line, ports comma-separated. */
export function specToForm(s) {
  const x = s || {};
  const f = { scanner: x.scanner || 'tcp', ranges: (x.ranges || []).join('\n'), exclude: (x.exclude || []).join('\n'), ports: portsText(x.ports || [22, 5985, 5986]), icmp: !!x.icmp };
  for (const k of NUMS) f[k] = x[k] === undefined || x[k] === null ? '' : String(x[k]);
  return f;
}

/** The form back to a scan request: {spec} or {errors: {field: message}}. */
export function specFromForm(f) {
  const errors = {};
  const spec = { scanner: f.scanner || 'tcp', ranges: splitList(f.ranges) };
  if (!spec.ranges.length) errors.ranges = 'name at least one range, address or host name';
  const ex = splitList(f.exclude);
  if (ex.length) spec.exclude = ex;
  const p = parsePorts(f.ports);
  if (p.error) errors.ports = p.error;
  else if (p.ports.length) spec.ports = p.ports;
  if (f.icmp) spec.icmp = true;
  for (const k of NUMS) {
    const t = String(f[k] ?? '').trim();
    if (!t) continue;
    if (!/^\d+$/.test(t) || Number(t) < 1) errors[k] = 'must be a whole number, at least 1';
    else spec[k] = Number(t);
  }
  return Object.keys(errors).length ? { errors } : { spec };
}

/** A recorded value of a host change, as a reader compares it: a key as "type fingerprint". */
export function changeText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (v.fingerprint) return [v.type, v.fingerprint].filter(Boolean).join(' ');
  return JSON.stringify(v);
}
