// x_notify.spec.mjs - the notification pages in Chromium against the real daemon: a webhook
// channel to a loopback HTTP receiver this test runs (which checks the Standard Webhooks
// signature itself), its test button, a rule whose template error lands on its field, a failing
// run whose delivery shows in the history with its attempt, an inbound hook triggered with a
// GitHub signature and then disabled; axe-core, screenshots and the viewer's read-only pages.
// x_: files run in name order, and this one after ui.spec.mjs, whose README screenshots
// want a dashboard of their own.
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { test, expect } from '@playwright/test';
import { ADMIN_PASSWORD, BASE, adminPage, api, apiLogin, checkA11y, mutatingControls, shot, sshTarget, viewerPage, visit } from './helpers.mjs';

test.describe.configure({ mode: 'serial' });

let context;
let page;
let csp;
let admin;
let receiver;
const got = []; // what the receiver was sent: {path, headers, body, verified}
const KEY = randomBytes(24);
const SECRET = 'whsec_' + KEY.toString('base64');
let key = KEY; // the receiver's key: replaced when the channel's secret is
const ids = {};

function verify(h, body) {
  const mac = createHmac('sha256', key).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`).digest('base64');
  return (h['webhook-signature'] || '').split(' ').includes('v1,' + mac);
}

test.beforeAll(async ({ browser }) => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ path: req.url, headers: req.headers, body, verified: verify(req.headers, body) });
      res.writeHead(req.url === '/broken' ? 500 : 200, { 'Content-Type': 'text/plain' });
      res.end(req.url === '/broken' ? 'receiver is broken' : 'ok');
    });
  });
  await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
  admin = await apiLogin('admin', ADMIN_PASSWORD);
  const { target } = await sshTarget(admin, 'notify-t1');
  ids.job = (await api(admin, 'POST', '/jobs', { name: 'notify-fail', targets: { ids: [target.id] }, steps: [{ id: 'df', type: 'core.shell.command', params: { command: 'echo "/srv is 99% full" >&2; exit 3' } }] })).id;
  ({ ctx: context, page, csp } = await adminPage(browser, '/notifications', 'Notifications'));
});

test.afterAll(async () => {
  if (context) await context.close();
  receiver.close();
  expect(csp, 'no inline script or style needed').toEqual([]);
});

const url = (p) => `http://127.0.0.1:${receiver.address().port}${p}`;

test('a webhook channel with a write-only secret, tested from the page', async () => {
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Notifications' })).toHaveAttribute('aria-current', 'page');
  await page.getByRole('button', { name: 'New channel' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('textbox', { name: 'Name', exact: true }).fill('ops-hook');
  await expect(dlg.getByLabel('Type')).toHaveValue('webhook');
  // The settings form is generated from the webhook plugin's schema.
  await dlg.getByLabel('URL').fill(url('/hook'));
  await dlg.getByLabel('Method').selectOption('POST');
  await dlg.getByLabel('Headers').fill('X-Team=ops');
  await dlg.getByLabel('Signing secret (write-only)').fill(SECRET);
  await dlg.getByRole('button', { name: 'Save channel' }).click();
  const row = page.getByRole('row', { name: /ops-hook/ });
  await expect(row).toContainText('channel-ops-hook');
  await row.getByRole('button', { name: 'Test ops-hook' }).click();
  await expect(row).toContainText(/delivered\s*HTTP 200/);
  const sent = got.find((g) => g.path === '/hook');
  expect(sent.verified, 'the Standard Webhooks signature checks out').toBe(true);
  expect(sent.headers['x-team']).toBe('ops');
  // The secret went into the vault: no API answer carries it.
  const ch = (await api(admin, 'GET', '/notifications/channels')).items.find((c) => c.name === 'ops-hook');
  expect(JSON.stringify(ch)).not.toContain(KEY.toString('base64'));
  ids.channel = ch.id;
  ids.credential = ch.credential_id;

  // A receiver that fails: the test says why, from the delivery's attempt.
  await api(admin, 'POST', '/notifications/channels', { name: 'broken-hook', type: 'webhook', settings: { url: url('/broken') } });
  await page.reload();
  const broken = page.getByRole('row', { name: /broken-hook/ });
  await broken.getByRole('button', { name: 'Test broken-hook' }).click();
  await expect(broken).toContainText(/not delivered\s*HTTP 500/);
});

test("a rule: events, channels, a filter, and the template's 400 on its field", async () => {
  await page.getByRole('link', { name: 'Rules' }).click();
  await page.getByRole('button', { name: 'New rule' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('textbox', { name: 'Name', exact: true }).fill('notify-fail broke');
  await expect(dlg.getByRole('checkbox', { name: /run\.failed/ })).toBeChecked();
  await dlg.getByRole('checkbox', { name: /run\.failing/ }).check();
  await dlg.getByLabel('Failures in a row (run.failing)').fill('3');
  await dlg.getByRole('group', { name: /Channels/ }).getByLabel('ops-hook').check();
  await dlg.getByRole('group', { name: /Jobs/ }).getByLabel('notify-fail').check();
  await dlg.getByText('Message template (optional)').click();
  await dlg.getByLabel('Text', { exact: true }).fill('{{ job.name }} failed:\n{{ event.summary | nofilter }}');
  await dlg.getByRole('button', { name: 'Save rule' }).click();
  const field = dlg.locator('.field.has-error', { has: page.getByLabel('Text', { exact: true }) });
  await expect(field.locator('.error-text')).toContainText(/2:\d+|line 2/);
  await dlg.getByLabel('Text', { exact: true }).fill('{{ job.name }} failed:\n{{ event.summary }}');
  await dlg.getByRole('button', { name: 'Save rule' }).click();
  await expect(page.getByRole('row', { name: /notify-fail broke/ })).toContainText('run.failing');
  ids.rule = (await api(admin, 'GET', '/notifications/rules')).items.find((r) => r.name === 'notify-fail broke').id;
});

test('a failing run: its delivery in the history, with the attempt', async () => {
  const run = await api(admin, 'POST', `/jobs/${ids.job}/runs`, {});
  await expect.poll(() => got.filter((g) => g.path === '/hook' && g.body.includes('run.failed')).length, { timeout: 20_000 }).toBe(1);
  const msg = got.find((g) => g.body.includes('run.failed'));
  expect(msg.verified).toBe(true);
  expect(msg.body).toContain(run.id);
  await page.getByRole('link', { name: 'Deliveries' }).click();
  await page.getByLabel('Rule').selectOption({ label: 'notify-fail broke' });
  await page.getByLabel('State').selectOption('delivered');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(new RegExp(`/notifications/deliveries\\?rule=${ids.rule}&state=delivered`));
  const row = page.getByRole('row', { name: /run\.failed/ });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('ops-hook');
  await expect(row).toContainText('notify-fail');
  await expect(row.getByRole('link', { name: 'run' })).toHaveAttribute('href', '/runs/' + run.id);
  await row.getByText(/^1 · HTTP 200/).click();
  await expect(row.locator('.attempts li')).toContainText('HTTP 200 · delivered');
  // The test of the broken channel: an attempt with its status and the receiver's error.
  await page.getByLabel('State').selectOption('');
  await page.getByLabel('Rule').selectOption('');
  await page.getByLabel('Event').selectOption('test');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByRole('row', { name: /broken-hook/ }).first()).toContainText(/gave up|failed/);
});

test('an inbound hook: created with its secret, triggered with a GitHub signature, disabled', async () => {
  await page.getByRole('link', { name: 'Inbound hooks' }).click();
  await page.getByRole('button', { name: 'New hook' }).click();
  let dlg = page.getByRole('dialog');
  await dlg.getByRole('textbox', { name: 'Name', exact: true }).fill('disk-alarm');
  await dlg.getByLabel('Job').selectOption({ label: 'notify-fail' });
  await dlg.getByLabel('Verification').selectOption('github');
  await dlg.getByLabel('Hook secret (write-only)').fill('gh-e2e-secret-1');
  await dlg.getByRole('button', { name: 'Save hook' }).click();
  dlg = page.getByRole('dialog', { name: 'Trigger disk-alarm' });
  const trigger = (await dlg.locator('pre.token').textContent()).trim();
  expect(trigger).toMatch(new RegExp(`^${BASE}/api/v1/hooks/[0-9a-f-]{36}/trigger$`));
  await expect(dlg.locator('pre.cmd')).toContainText('X-Hub-Signature-256: sha256=');
  await shot(page, 'page-notifications-hook-sign');
  await dlg.getByRole('button', { name: 'Close' }).click();
  const body = JSON.stringify({ ref: 'refs/heads/main' });
  const send = () => fetch(trigger, { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'X-GitHub-Delivery': randomBytes(8).toString('hex'), 'X-Hub-Signature-256': 'sha256=' + createHmac('sha256', 'gh-e2e-secret-1').update(body).digest('hex') } });
  const r = await send();
  expect(r.status).toBe(202);
  expect((await r.json()).run_id).toMatch(/^[0-9a-f-]{36}$/);
  const row = page.getByRole('row', { name: /disk-alarm/ });
  await row.getByRole('button', { name: 'Disable disk-alarm' }).click();
  await expect(row).toContainText('disabled');
  expect((await send()).status).toBeGreaterThanOrEqual(400);
});

test("a new secret typed into a channel replaces its credential's value", async () => {
  await page.getByRole('link', { name: 'Channels' }).click();
  await page.getByRole('button', { name: 'Edit ops-hook' }).click();
  const dlg = page.getByRole('dialog');
  await expect(dlg.getByLabel('Secret credential')).toHaveValue(ids.credential);
  const next = randomBytes(24);
  await dlg.getByLabel('Signing secret (write-only)').fill('whsec_' + next.toString('base64'));
  await dlg.getByRole('button', { name: 'Save channel' }).click();
  await expect(page.getByRole('dialog')).toHaveCount(0);
  key = next;
  const row = page.getByRole('row', { name: /ops-hook/ });
  await row.getByRole('button', { name: 'Test ops-hook' }).click();
  await expect(row).toContainText(/delivered\s*HTTP 200/);
  expect(got[got.length - 1].verified, 'signed with the new secret').toBe(true);
  const ch = (await api(admin, 'GET', '/notifications/channels/' + ids.channel));
  expect(ch.credential_id, 'the same credential, its value replaced').toBe(ids.credential);
});

const PAGES = ['/notifications/channels', '/notifications/rules', '/notifications/deliveries', '/notifications/hooks'];

test('the notification pages pass axe-core, are screenshotted, and are read-only to a viewer', async ({ browser }) => {
  for (const p of PAGES) {
    await visit(page, p);
    await expect(page.getByText('Loading…')).toHaveCount(0);
    await checkA11y(page, p);
    await shot(page, 'page' + p.replace(/\//g, '-'));
  }
  await visit(page, '/notifications/channels');
  await page.getByRole('button', { name: 'Edit ops-hook' }).click();
  await expect(page.getByRole('dialog').getByLabel('URL')).toHaveValue(url('/hook'));
  await expect(page.getByRole('dialog').getByLabel('Signing secret (write-only)')).toHaveValue('');
  await checkA11y(page, 'the channel editor');
  await shot(page, 'page-notifications-channel-edit');
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();

  // A phone's 390 px: tables scroll inside their box, the page never sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [i, p] of PAGES.entries()) {
    await visit(page, p);
    await expect(page.getByText('Loading…')).toHaveCount(0);
    expect(await page.evaluate(() => document.documentElement.scrollWidth), p).toBeLessThanOrEqual(390);
    if (i === 0) await shot(page, 'phone' + p.replace(/\//g, '-'));
  }
  await page.setViewportSize({ width: 1366, height: 900 });
  const { ctx, v } = await viewerPage(browser, admin, 'nadia');
  for (const p of PAGES) {
    await visit(v, p);
    await expect(v.locator('main h1')).toHaveText('Notifications');
    await expect(v.getByText('Loading…')).toHaveCount(0);
    await expect(v.locator('main table')).toBeVisible();
    expect(await mutatingControls(v), p).toEqual({ buttons: [], boxes: 0 });
  }
  await ctx.close();
});
