// playwright.config.mjs - the browser suite: Debian's Chromium (no browser download), one
// daemon and one sshd for all scenarios (global-setup.mjs), scenarios in order in one worker.
const out = process.env.OPSC_E2E_OUT || 'test-results';

export default {
  testDir: '.',
  testMatch: /.*\.spec\.mjs$/,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 1,
  fullyParallel: false,
  retries: 0,
  outputDir: out + '/artifacts',
  globalSetup: './global-setup.mjs',
  globalTeardown: './global-teardown.mjs',
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    viewport: { width: 1366, height: 900 },
    screenshot: 'only-on-failure',
    trace: 'off',
    actionTimeout: 10_000,
    launchOptions: {
      executablePath: process.env.OPSC_CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    },
  },
};
