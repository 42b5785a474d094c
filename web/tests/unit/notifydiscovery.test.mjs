// What the notification and discovery pages compute: API errors on their fields, secrets'
// credential names, hook signing examples, scan specs from the form and back, live-scan hosts,
// auto-onboard rules; and the bundled notifiers' settings schemas as generated forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createHmac } from 'node:crypto';
import { fieldErrors, parsePairs, ruleBody, ruleForm, secretName, secretOf, signExample, under } from '../../src/lib/notify.js';
import { changeText, parsePorts, percent, ruleFromForm, ruleToForm, specFromForm, specToForm, upsertHost } from '../../src/lib/discovery.js';
import { fieldsFor, fromForm, toForm } from '../../src/lib/schemaform.js';

const schema = (type) => JSON.parse(fs.readFileSync(new URL(`../../../plugins/notify-${type}/settings.schema.json`, import.meta.url)));

test("the API's 400 lands on the settings field it names", () => {
  const e = { message: 'must match ^smtps?://', details: { field: 'settings.url' } };
  assert.deepEqual(fieldErrors(e), { 'settings.url': 'must match ^smtps?://' });
  assert.deepEqual(under(fieldErrors(e), 'settings'), { url: 'must match ^smtps?://' });
  assert.deepEqual(fieldErrors({ message: 'boom', details: null }), { '': 'boom' });
  assert.deepEqual(under({ 'template.text': 'x', name: 'y' }, 'settings'), {});
});

test('a secret credential gets a free name; the secret is labelled per channel type', () => {
  assert.equal(secretName('channel', 'Ops Hook!', []), 'channel-ops-hook');
  assert.equal(secretName('channel', 'ops', ['channel-ops', 'channel-ops-2']), 'channel-ops-3');
  assert.deepEqual(secretOf('slack', schema('slack')).required, true);
  assert.equal(secretOf('webhook', schema('webhook')).required, false);
  assert.equal(secretOf('email', schema('email')).label, 'SMTP password');
});

test("every bundled notifier's settings schema becomes a form and back without loss", () => {
  for (const type of ['email', 'slack', 'teams', 'webhook']) {
    const fields = fieldsFor(schema(type));
    assert.ok(fields.length > 0, type);
    assert.ok(fields.every((f) => f.kind !== 'json'), `${type}: every setting has a real control`);
  }
  const fields = fieldsFor(schema('webhook'));
  const settings = { url: 'https://itsm.example.com/opsc', method: 'PUT', headers: { 'X-Team': 'ops', 'X-Env': 'prod' }, github_signature: true, timeout_s: 20 };
  assert.deepEqual(fromForm(fields, toForm(fields, settings)), { params: settings, errors: {} });
  assert.deepEqual(fromForm(fields, toForm(fields, {})).errors, { url: 'is required' });
  const email = fieldsFor(schema('email'));
  assert.deepEqual(fromForm(email, { url: 'http://x', from: 'a@b' }).errors, { url: 'must match ^smtps?://' });
});

test('name=value lines', () => {
  assert.deepEqual(parsePairs('ref=body.ref\n env = query.env \n'), { value: { ref: 'body.ref', env: 'query.env' } });
  assert.deepEqual(parsePairs('nope'), { error: '"nope" is not name=value' });
});

test('the GitHub signing example computes the signature GitHub sends', () => {
  const ex = signExample('github', 'http://h/api/v1/hooks/1/trigger');
  assert.match(ex, /X-Hub-Signature-256: sha256=\$SIG/);
  const body = '{"ref": "refs/heads/main"}';
  const sig = execFileSync('sh', ['-c', ex.split('\n').slice(2, 4).join('\n') + '\nprintf %s "$SIG"'], { env: { SECRET: 's3cret', PATH: process.env.PATH }, encoding: 'utf8' });
  assert.equal(sig, createHmac('sha256', 's3cret').update(body).digest('hex'));
});

test('the Standard Webhooks example signs "id.timestamp.body" with the key after whsec_', () => {
  const key = Buffer.from('0123456789abcdef0123456789');
  const ex = signExample('standard', 'http://h/t');
  const script = ex.split('\n').slice(1, 4).join('\n') + '\nprintf "%s %s %s" "$ID" "$TS" "$SIG"';
  const [id, ts, sig] = execFileSync('sh', ['-c', script], { env: { SECRET: 'whsec_' + key.toString('base64'), PATH: process.env.PATH }, encoding: 'utf8' }).split(' ');
  assert.equal(sig, createHmac('sha256', key).update(`${id}.${ts}.{"ref": "refs/heads/main"}`).digest('base64'));
});

test('ports: numbers and ranges, bad ones named', () => {
  assert.deepEqual(parsePorts('22, 5985-5986\n8080'), { ports: [22, '5985-5986', 8080] });
  assert.match(parsePorts('22, 70000').error, /"70000"/);
  assert.match(parsePorts('30-20').error, /"30-20"/);
  assert.match(parsePorts('ssh').error, /"ssh"/);
});

test('a scan spec from the form and back', () => {
  const f = { ...specToForm(null), ranges: '10.1.2.0/24\n10.1.3.10-50, db1.example.com', exclude: '10.1.2.1', rate: '200' };
  assert.equal(specToForm(null).ports, '22, 5985, 5986');
  const { spec } = specFromForm(f);
  assert.deepEqual(spec, { scanner: 'tcp', ranges: ['10.1.2.0/24', '10.1.3.10-50', 'db1.example.com'], exclude: ['10.1.2.1'], ports: [22, 5985, 5986], rate: 200 });
  assert.equal(specFromForm({ ...f, icmp: true }).spec.icmp, true);
  assert.deepEqual(specFromForm(specToForm(spec)).spec, spec);
  assert.deepEqual(specFromForm({ ranges: '', ports: '22', rate: '0' }).errors, { ranges: 'name at least one range, address or host name', rate: 'must be a whole number, at least 1' });
});

test('a live scan: hosts repeated by a reconnected stream are replaced, not added', () => {
  let hosts = upsertHost([], { id: 'a', address: '127.0.0.10' });
  hosts = upsertHost(hosts, { id: 'b', address: '127.0.0.11' });
  hosts = upsertHost(hosts, { id: 'a', address: '127.0.0.10', state: 'known' });
  assert.deepEqual(hosts.map((h) => h.id + (h.state || '')), ['aknown', 'b']);
  assert.equal(percent({ done: 1, total: 3 }), 33);
  assert.equal(percent({ done: 0, total: 0 }), 0);
  assert.equal(percent(undefined), 0);
});

test('auto-onboard rules from the form, and the change of a host as a reader compares it', () => {
  assert.deepEqual(ruleFromForm({ ...ruleToForm({}), credential_id: '' }), { error: 'credential_id', message: 'choose a credential' });
  const rule = { credential_id: 'c1', transport: 'ssh', ranges: ['10.1.2.0/24'], group_id: 'g1', name_template: 'web-{{ index }}', test: true, labels: { role: 'web' } };
  assert.deepEqual(ruleFromForm(ruleToForm(rule)), { rule });
  assert.equal(ruleFromForm({ ...ruleToForm(rule), labels: 'oops' }).error, 'labels');
  assert.equal(changeText({ type: 'ssh-ed25519', fingerprint: 'SHA256:abc' }), 'ssh-ed25519 SHA256:abc');
  assert.equal(changeText('linux'), 'linux');
  assert.equal(changeText(null), '—');
});

test('a rule goes through its form unchanged, ranges and filters the form does not show included', () => {
  const rule = { name: 'new hosts', description: '', enabled: true, events: ['discovery.host_found'], channels: ['c1'], users: [],
    filter: { ranges: ['10.1.2.0/24', '10.1.3.10-50'], profile_ids: ['p1'], severity: 'warning' } };
  assert.deepEqual(ruleBody(ruleForm(rule)), rule);
  const f = ruleForm(rule);
  f.ranges = '10.9.0.0/16,  10.8.0.1';
  assert.deepEqual(ruleBody(f).filter, { profile_ids: ['p1'], ranges: ['10.9.0.0/16', '10.8.0.1'], severity: 'warning' });
});
