// notify.js - what the notification pages compute: the events a rule may name, where the API's
// 400 puts its error, the label of a channel's secret, how a sender signs a request to an
// inbound hook, and a rule as its form edits it. Pure: no DOM, unit-tested with node's test runner.

/** The events of the rule schema, each with what it means to a reader of the form. */
export const EVENTS = [
  ['run.failed', 'a run failed'],
  ['run.succeeded', 'a run succeeded'],
  ['run.started', 'a run started'],
  ['run.timed_out', 'a run timed out'],
  ['run.cancelled', 'a run was cancelled'],
  ['run.interrupted', 'a run was interrupted (daemon stopped)'],
  ['run.fixed', 'first success after failures'],
  ['run.failing', 'the Nth failure in a row'],
  ['run.long_running', 'still running past a threshold'],
  ['schedule.missed', 'a schedule missed a fire'],
  ['target.unreachable', 'a connect failed'],
  ['steplib.installed', 'a step library was installed'],
  ['user.locked', 'a login was locked out'],
  ['discovery.host_found', 'discovery found a new host'],
  ['discovery.host_changed', "a known host's key or OS changed"],
  ['discovery.host_vanished', 'a host stopped answering scans'],
];

/** The field an API error names ("settings.url", "template.text", "name"), or "". */
export function errorField(e) {
  return (e && e.details && typeof e.details.field === 'string' && e.details.field) || '';
}

/** Errors by field from an API error: {"settings.url": message}; unnamed ones under "". */
export function fieldErrors(e) {
  if (!e) return {};
  return { [errorField(e)]: e.message };
}

/** The errors of one settings object: {url: message} from {"settings.url": message}. */
export function under(errors, prefix) {
  const out = {};
  for (const [k, v] of Object.entries(errors || {})) {
    if (k.startsWith(prefix + '.')) out[k.slice(prefix.length + 1).split('.')[0]] = v;
  }
  return out;
}

/** What a channel type's secret is, for its label and help. */
export function secretOf(type, schema) {
  const need = schema && schema['x-credential'];
  const label = { slack: 'Webhook URL', teams: 'Workflows webhook URL', email: 'SMTP password', webhook: 'Signing secret' }[type] || 'Secret';
  const help = (schema && schema.description) || 'kept in the vault as a credential of type secret; never shown again';
  return { label, help, required: need === 'required', none: need === 'none' };
}

/** A unique credential name for a channel's or hook's secret, given the names in use. */
export function secretName(kind, name, taken) {
  const base = `${kind}-${name}`.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/-+$/, '').slice(0, 100);
  let n = base;
  for (let i = 2; taken.includes(n); i++) n = `${base}-${i}`;
  return n;
}

/** "KEY=value" lines to an object; {error} names the first bad line. */
export function parsePairs(text) {
  const out = {};
  for (const line of (text || '').split('\n').map((s) => s.trim()).filter(Boolean)) {
    const i = line.indexOf('=');
    if (i < 1) return { error: `"${line}" is not name=value` };
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return { value: out };
}

export function pairsText(obj) {
  return Object.entries(obj || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

const SIGN = {
  standard: (url) => `# Standard Webhooks: the secret is whsec_ + base64 key bytes
ID=msg-$(date +%s%N); TS=$(date +%s); BODY='{"ref": "refs/heads/main"}'
KEY=$(printf %s "\${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \\n')
SIG=$(printf %s "$ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY -binary | base64)
curl -X POST '${url}' -H 'Content-Type: application/json' \\
  -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" -d "$BODY"`,
  github: (url) => `# GitHub: Payload URL ${url}, content type application/json, the secret as Secret.
# By hand:
BODY='{"ref": "refs/heads/main"}'
SIG=$(printf %s "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | cut -d' ' -f2)
curl -X POST '${url}' -H 'Content-Type: application/json' \\
  -H "X-GitHub-Delivery: $(cat /proc/sys/kernel/random/uuid)" -H "X-Hub-Signature-256: sha256=$SIG" -d "$BODY"`,
  gitlab: (url) => `# GitLab: URL ${url}, the secret as Secret token. By hand:
curl -X POST '${url}' -H 'Content-Type: application/json' -H "X-Gitlab-Token: $SECRET" \\
  -H "X-Gitlab-Event-UUID: $(cat /proc/sys/kernel/random/uuid)" -d '{"ref": "refs/heads/main"}'`,
  token: (url) => `curl -X POST '${url}' -H 'Content-Type: application/json' \\
  -H "Authorization: Bearer $SECRET" -d '{"ref": "refs/heads/main"}'`,
};

/** A shell example that signs a request to the hook at `url` the way `verify` checks it. */
export function signExample(verify, url) {
  return (SIGN[verify] || SIGN.standard)(url);
}

const FORM_FILTERS = ['job_ids', 'schedule_ids', 'group_ids', 'selector', 'severity', 'ranges'];

/** A rule as the form edits it; filters the form has no field for are kept as they came. */
export function ruleForm(r) {
  const x = r || {};
  const fl = x.filter || {};
  const lr = x.long_running || {};
  const t = x.template || {};
  return {
    name: x.name || '', description: x.description || '', enabled: x.enabled !== false, events: x.events || ['run.failed'], channels: x.channels || [],
    job_ids: fl.job_ids || [], schedule_ids: fl.schedule_ids || [], group_ids: fl.group_ids || [], selector: fl.selector || '', severity: fl.severity || '',
    ranges: (fl.ranges || []).join(', '),
    // Filters this form has no field for (profile_ids) go back as they came.
    kept: Object.fromEntries(Object.entries(fl).filter(([k]) => !FORM_FILTERS.includes(k))),
    min_consecutive_failures: x.min_consecutive_failures ?? '', lr_mode: lr.after_s ? 'after_s' : lr.percent_over_average ? 'percent_over_average' : '', lr_value: String(lr.after_s || lr.percent_over_average || ''),
    users: x.users || [], group_window_s: x.group_window_s ?? '', subject: t.subject || '', text: t.text || '', body: t.body || '',
  };
}

/** The API body of a rule from its form. */
export function ruleBody(f) {
  const filter = { ...f.kept };
  const ranges = f.ranges.split(/[\s,]+/).filter(Boolean);
  if (ranges.length) filter.ranges = ranges;
  for (const k of ['job_ids', 'schedule_ids', 'group_ids']) if (f[k].length) filter[k] = f[k];
  if (f.selector.trim()) filter.selector = f.selector.trim();
  if (f.severity) filter.severity = f.severity;
  const b = { name: f.name, description: f.description, enabled: f.enabled, events: f.events, channels: f.channels, filter, users: f.users };
  if (f.min_consecutive_failures !== '') b.min_consecutive_failures = Number(f.min_consecutive_failures);
  if (f.group_window_s !== '') b.group_window_s = Number(f.group_window_s);
  if (f.lr_mode && f.lr_value) b.long_running = { [f.lr_mode]: Number(f.lr_value) };
  const t = {};
  for (const k of ['subject', 'text', 'body']) if (f[k].trim()) t[k] = f[k];
  if (Object.keys(t).length) b.template = t;
  return b;
}
