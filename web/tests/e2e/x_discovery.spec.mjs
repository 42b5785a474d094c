// x_discovery.spec.mjs - the discovery pages in Chromium against the real daemon: a scan of
// loopback addresses with a real sshd of its own on a 127.x address, the host streaming in
// over SSE, a slow scan cancelled; onboarding the host with a test, the new target listed; the
// sshd's host key replaced, the host shown as changed and accepted; a profile with its cron
// preview and an auto-onboard rule; axe-core, screenshots and the viewer's read-only pages.
// x_: files run in name order, and this one after ui.spec.mjs, whose README screenshots
// want a dashboard of their own.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, expect } from '@playwright/test';
import { ADMIN_PASSWORD, adminPage, api, apiLogin, checkA11y, mutatingControls, shot, viewerPage, visit } from './helpers.mjs';

test.describe.configure({ mode: 'serial' });

const SSHD = path.join(process.env.OPSC_SOURCE_DIR || '.', 'tests/integration/fixtures/sshd.py');
// An address block of this run's own, so other suites on the machine cannot be in the scan.
const NET = `127.${77 + (process.pid % 100)}.${process.pid % 250}`;
const HOST = `${NET}.10`;
let context;
let page;
let csp;
let admin;
let sshd; // {dir, port, user, key}
const ids = {};

function startSshd(dir, port) {
  const args = [SSHD, 'start', dir, '--address', HOST, ...(port ? ['--port', String(port)] : [])];
  const facts = JSON.parse(execFileSync('/usr/bin/python3', args, { encoding: 'utf8' }));
  return { dir, port: facts.port, user: facts.user, key: facts.key_ed25519 };
}

test.beforeAll(async ({ browser }) => {
  sshd = startSshd(path.join(process.env.OPSC_E2E_WORK, 'sshd-disc'));
  admin = await apiLogin('admin', ADMIN_PASSWORD);
  await api(admin, 'POST', '/credentials', { name: 'disc-key', type: 'ssh_key', username: sshd.user, private_key: fs.readFileSync(sshd.key, 'utf8') });
  ({ ctx: context, page, csp } = await adminPage(browser, '/discovery', 'Discovery'));
});

test.afterAll(async () => {
  if (context) await context.close();
  execFileSync('/usr/bin/python3', [SSHD, 'stop', sshd.dir]);
  expect(csp, 'no inline script or style needed').toEqual([]);
});

const hostRow = (p = page) => p.getByRole('row', { name: new RegExp(HOST.replace(/\./g, '\\.') + '\\b') });

test('a scan of loopback addresses: the sshd streams in live; a slow scan is cancelled', async () => {
  await page.getByRole('button', { name: 'New scan' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('Ranges').fill(`${NET}.8-12`);
  await dlg.getByLabel('Exclude').fill(`${NET}.12`);
  await dlg.getByLabel('Ports').fill('22-21');
  await dlg.getByRole('button', { name: 'Start scan' }).click();
  await expect(dlg.locator('.field.has-error')).toContainText('is not a port');
  await dlg.getByLabel('Ports').fill(`${sshd.port}, 5985`);
  await dlg.getByLabel('Rate (connects/s)').fill('50');
  await dlg.getByRole('button', { name: 'Start scan' }).click();
  await expect(page).toHaveURL(/\/discovery\/scans\/[0-9a-f-]{36}$/);
  ids.scan = page.url().split('/').pop();
  const row = hostRow();
  await expect(row).toContainText(/ssh-ed25519\s*SHA256:/);
  await expect(row).toContainText(String(sshd.port));
  await expect(row).toContainText('new');
  await expect(page.locator('.page-head .state')).toHaveText('finished');
  await expect(page.locator('.scan-progress')).toContainText('4 / 4 addresses · 1 hosts found');
  await expect(page.getByRole('heading', { name: 'Hosts found (1)' })).toBeVisible();
  await shot(page, 'page-discovery-scan');

  // 1,024 addresses at 20 a second: running until cancelled.
  const slow = await api(admin, 'POST', '/discovery/scans', { ranges: [`${NET.replace(/\.\d+$/, '')}.0.0/22`], ports: [9], rate: 20 });
  await visit(page, '/discovery/scans/' + slow.id);
  await expect(page.locator('.page-head .state')).toHaveText('running');
  await expect(page.locator('.conn')).toHaveText('open');
  await page.getByRole('button', { name: 'Cancel scan' }).click();
  await expect(page.locator('.page-head .state')).toHaveText('cancelled', { timeout: 5_000 });
});

test('onboard the host found: a target with its key pinned, tested, and listed', async () => {
  await visit(page, '/discovery/scans/' + ids.scan);
  await hostRow().getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Onboard 1 selected' }).click();
  const dlg = page.getByRole('dialog', { name: 'Onboard 1 host' });
  await dlg.getByLabel('Credential').selectOption({ label: 'disc-key (ssh_key)' });
  await dlg.getByLabel('Name template').fill("disc-{{ address | replace('.', '-') }}");
  await dlg.getByLabel('Labels').fill('found=e2e');
  await expect(dlg.getByLabel(/Test the new targets/)).toBeChecked();
  await dlg.getByRole('button', { name: 'Onboard', exact: true }).click();
  const name = 'disc-' + HOST.replace(/\./g, '-');
  const res = dlg.getByRole('row', { name: new RegExp(HOST.replace(/\./g, '\\.')) });
  await expect(res).toContainText('created');
  await expect(res.getByRole('link', { name })).toBeVisible();
  await expect(res.locator('td').nth(3)).toContainText('ok');
  await shot(page, 'page-discovery-onboarded');
  await dlg.getByRole('link', { name: 'Targets' }).click();
  await expect(page).toHaveURL(/\/targets$/);
  await expect(page.getByRole('row', { name: new RegExp(name) })).toContainText('found=e2e');
  const t = (await api(admin, 'GET', '/targets?name=' + name)).items[0];
  expect(t.host_key_policy).toBe('strict');
  ids.target = t.id;
});

test('a host whose key changed is shown loudly and accepted', async () => {
  await visit(page, '/discovery/hosts');
  await expect(page.getByRole('alert').filter({ hasText: 'Hosts changed' })).toHaveCount(0);
  // The same address and port, new host keys: the next scan sees another key, and the open
  // inventory hears of it.
  execFileSync('/usr/bin/python3', [SSHD, 'stop', sshd.dir]);
  sshd = startSshd(sshd.dir + '-2', sshd.port);
  await api(admin, 'POST', '/discovery/scans', { ranges: [HOST], ports: [sshd.port] });
  await expect(page.getByRole('status').filter({ hasText: 'since this page loaded' })).toContainText(/^1 host found, changed or vanished/);
  await page.getByRole('button', { name: 'Show the inventory as it is now' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'Hosts changed' })).toBeVisible();
  await page.getByLabel('State').selectOption('changed');
  await page.getByRole('button', { name: 'Filter' }).click();
  const row = hostRow();
  await expect(row).toHaveClass(/host-changed/);
  await expect(row.getByRole('alert')).toContainText('Changed: check before you trust it');
  await expect(row.getByRole('alert')).toContainText('SHA256:');
  await checkA11y(page, 'a changed host');
  await shot(page, 'page-discovery-hosts-changed');
  await row.getByRole('button', { name: 'Accept the change of ' + HOST }).click();
  await expect(row).not.toHaveClass(/host-changed/);
  await expect(row).toContainText('known');
});

test('a profile: its cron preview and an auto-onboard rule', async () => {
  await visit(page, '/discovery/profiles');
  await page.getByRole('button', { name: 'New profile' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('textbox', { name: 'Name', exact: true }).fill('lab-nightly');
  await dlg.getByLabel('Ranges').fill(`${NET}.0/28`);
  await dlg.getByLabel('Cron expression').fill('0 2 * * *');
  await dlg.getByLabel('Time zone').fill('Europe/Berlin');
  await expect(dlg.locator('.fires li')).toHaveCount(5);
  await expect(dlg.locator('.fires')).toContainText('02:00:00 CE');
  await dlg.getByRole('button', { name: 'Add rule' }).click();
  await dlg.getByRole('button', { name: 'Save profile' }).click();
  await expect(dlg.getByRole('alert').filter({ hasText: 'credential' })).toBeVisible();
  await dlg.getByRole('group', { name: 'Rule 1' }).getByLabel('Credential').selectOption({ label: 'disc-key' });
  await dlg.getByRole('button', { name: 'Save profile' }).click();
  const row = page.getByRole('row', { name: /lab-nightly/ });
  await expect(row).toContainText('0 2 * * *');
  await expect(row).toContainText('Europe/Berlin');
  await expect(row.locator('td').nth(5)).toHaveText('1');
});

const PAGES = ['/discovery/scans', '/discovery/hosts', '/discovery/profiles'];

test('the discovery pages pass axe-core, are screenshotted, and are read-only to a viewer', async ({ browser }) => {
  for (const p of [...PAGES, '/discovery/scans/' + ids.scan]) {
    await visit(page, p);
    await expect(page.locator('main h1')).toBeVisible();
    await expect(page.getByText('Loading…')).toHaveCount(0);
    await checkA11y(page, p);
    if (PAGES.includes(p)) await shot(page, 'page' + p.replace(/\//g, '-'));
  }
  // A phone's 390 px: tables scroll inside their box, the page never sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [i, p] of [...PAGES, '/discovery/scans/' + ids.scan].entries()) {
    await visit(page, p);
    await expect(page.getByText('Loading…')).toHaveCount(0);
    expect(await page.evaluate(() => document.documentElement.scrollWidth), p).toBeLessThanOrEqual(390);
    if (i === 0) await shot(page, 'phone' + p.replace(/\//g, '-'));
  }
  await page.setViewportSize({ width: 1366, height: 900 });
  const { ctx, v } = await viewerPage(browser, admin, 'dario');
  for (const p of [...PAGES, '/discovery/scans/' + ids.scan]) {
    await visit(v, p);
    await expect(v.locator('main h1')).toBeVisible();
    await expect(v.getByText('Loading…')).toHaveCount(0);
    await expect(v.locator('main table')).toBeVisible();
    expect(await mutatingControls(v), p).toEqual({ buttons: [], boxes: 0 });
  }
  await ctx.close();
});
