// run-e2e.mjs - run the browser suite against a build: the specs are copied next to the
// build's node_modules (where @playwright/test resolves), then Playwright runs them in
// Debian's Chromium. Screenshots and failure artifacts land in BUILD/web/e2e-results/.
// Usage: node web/tests/run-e2e.mjs BUILD_DIR [playwright args...]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const build = path.resolve(process.argv[2] || 'build');
const web = path.join(build, 'web');
if (!fs.existsSync(path.join(web, 'web', 'index.html')) || !fs.existsSync(path.join(web, 'node_modules', '@playwright', 'test'))) {
  console.error(`run-e2e: ${web} has no built UI or no node_modules: build with -Dweb_ui=enabled first`);
  process.exit(2);
}
const dest = path.join(web, 'e2e');
fs.rmSync(dest, { recursive: true, force: true });
fs.cpSync(path.join(here, 'e2e'), dest, { recursive: true });
const out = path.join(web, 'e2e-results');
const env = { ...process.env, OPSC_BUILD_DIR: build, OPSC_SOURCE_DIR: root, OPSC_E2E_OUT: out, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' };
const cli = path.join(web, 'node_modules', '@playwright', 'test', 'cli.js');
const r = spawnSync(process.execPath, [cli, 'test', '-c', path.join(dest, 'playwright.config.mjs'), ...process.argv.slice(3)], { stdio: 'inherit', env, cwd: dest });
process.exit(r.status === null ? 1 : r.status);
