// helpers.mjs - what the scenarios share: the daemon's API from the test side, logging in
// through the page, axe-core checks, screenshots, drag and drop with the mouse.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from '@playwright/test';

export const BASE = process.env.OPSC_E2E_BASE;
export const ADMIN_PASSWORD = process.env.OPSC_E2E_ADMIN_PASSWORD;
const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The REST API as the test's own client (bearer token, not the browser's session). */
export async function apiLogin(username, password) {
  const r = await fetch(BASE + '/api/v1/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (!r.ok) throw new Error('login failed: ' + r.status);
  return (await r.json()).access_token;
}

export async function api(token, method, p, body) {
  const r = await fetch(BASE + '/api/v1' + p, { method, headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function uiLogin(page, username, password) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Go to a page the way a click does (history API, no reload): faster than page.goto. */
export async function visit(page, p) {
  await page.evaluate((to) => {
    history.pushState(null, '', to);
    dispatchEvent(new PopStateEvent('popstate'));
  }, p);
  await page.locator(`main[data-path="${p}"]`).waitFor();
}

/** No serious or critical axe-core violation on the page as it is. */
export async function checkA11y(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  expect(violations, `axe on ${what}`).toEqual([]);
}

export async function shot(page, name) {
  const dir = process.env.OPSC_E2E_SHOTS;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, name + '.png'), fullPage: false });
}

/** Drag with real mouse events (SortableJS runs in fallback mode: mouse, not HTML5 DnD). */
/** `to` a step card: dropped onto its upper part (before it); `to` the list: at its end. */
export async function drag(page, from, to, { end = false } = {}) {
  const a = await from.boundingBox();
  const b = await to.boundingBox();
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(a.x + a.width / 2 + 5, a.y + a.height / 2 + 5, { steps: 3 });
  const y = end ? b.y + b.height - 6 : b.y + Math.min(8, b.height / 4);
  await page.mouse.move(b.x + b.width / 2, y, { steps: 12 });
  await page.mouse.move(b.x + b.width / 2, y + 1, { steps: 2 });
  await page.mouse.up();
}

export function stepIds(page) {
  return page.locator('ol.steps > li.step-card').evaluateAll((els) => els.map((e) => e.dataset.step));
}

/** An SSH key credential and a target on the suite's sshd (or `facts` of another), by API. */
export async function sshTarget(token, name, facts = {}) {
  const f = { user: process.env.OPSC_E2E_SSH_USER, key: process.env.OPSC_E2E_SSH_KEY, port: Number(process.env.OPSC_E2E_SSH_PORT), address: '127.0.0.1', ...facts };
  const cred = await api(token, 'POST', '/credentials', { name: name + '-key', type: 'ssh_key', username: f.user, private_key: fs.readFileSync(f.key, 'utf8') });
  const target = await api(token, 'POST', '/targets', { name, address: f.address, port: f.port, transport: 'ssh', credential_id: cred.id, host_key_policy: 'tofu' });
  return { cred, target };
}

/** A viewer (created if missing) logged in on a page of its own context. */
export async function viewerPage(browser, token, username) {
  const password = username + '-viewer-pw-1234';
  await api(token, 'POST', '/users', { username, role: 'viewer', password }).catch(() => {});
  const ctx = await browser.newContext({ baseURL: BASE });
  const v = await ctx.newPage();
  await v.goto('/');
  await uiLogin(v, username, password);
  await expect(v.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  return { ctx, v };
}

/** Buttons and button-looking links in main whose text mutates: none for a viewer. */
export const MUTATING = /^(New|Save|Run|Delete|Edit|Test|Cancel|Retry|Pause|Resume|Import|Bulk|Add|Replace|Pin|Forget|Create|Upload|Onboard|Accept|Enable|Disable|Scan now|Start)/;
export async function mutatingControls(p) {
  const names = await p.locator('main').getByRole('button').evaluateAll((els) => els.map((e) => e.textContent.trim()));
  const boxes = await p.locator('main input[type="checkbox"]:not([disabled])').count();
  return { buttons: names.filter((n) => MUTATING.test(n)), boxes };
}

/** The admin logged in through the page on its own context, on `p` with its `heading`; `csp`
 * collects the page's Content Security Policy violations. */
export async function adminPage(browser, p, heading) {
  const ctx = await browser.newContext({ baseURL: BASE });
  const page = await ctx.newPage();
  const csp = []; // messages of Content Security Policy violations: none expected
  page.on('pageerror', (e) => {
    throw e;
  });
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
  });
  await page.goto(p);
  await uiLogin(page, 'admin', ADMIN_PASSWORD);
  await expect(page.getByRole('heading', { name: heading, level: 1 })).toBeVisible();
  return { ctx, page, csp };
}
