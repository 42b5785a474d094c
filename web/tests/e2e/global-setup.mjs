// global-setup.mjs - one real sshd and one real opsconductord on free loopback ports for the
// whole browser suite; their facts go to the tests through the environment.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const ADMIN_PASSWORD = 'Admin-E2E-Pw-7c41d2';

function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

async function waitReady(base, proc, logFile) {
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error('daemon exited: ' + fs.readFileSync(logFile, 'utf8').slice(-3000));
    try {
      const r = await fetch(base + '/ready');
      if (r.ok) return;
    } catch (e) {
      /* not listening yet */
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error('daemon not ready: ' + fs.readFileSync(logFile, 'utf8').slice(-3000));
}

export default async function setup() {
  const root = process.env.OPSC_SOURCE_DIR;
  const build = process.env.OPSC_BUILD_DIR;
  const out = path.resolve(process.env.OPSC_E2E_OUT || 'test-results');
  const work = path.join(out, 'run');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });

  const sshdDir = path.join(work, 'sshd');
  const facts = JSON.parse(execFileSync('/usr/bin/python3', [path.join(root, 'tests/integration/fixtures/sshd.py'), 'start', sshdDir], { encoding: 'utf8' }));

  const port = await freePort();
  const conf = path.join(work, 'opsconductor.conf');
  fs.writeFileSync(conf, [
    '[server]', `listen = 127.0.0.1:${port}`, 'shutdown_timeout = 5s', '',
    '[store]', `data_dir = ${path.join(work, 'data')}`, '',
    '[web]', `dir = ${path.join(build, 'web', 'web')}`, '',
    '[auth]', 'password_cost = 3', '',
  ].join('\n'));
  const logFile = path.join(work, 'daemon.log');
  const log = fs.openSync(logFile, 'w');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OPSC_')));
  env.OPSC_BOOTSTRAP_ADMIN_PASSWORD = ADMIN_PASSWORD;
  const daemon = spawn(path.join(build, 'core', 'opsconductord'), ['-c', conf, '-p', path.join(build, 'plugins'), '-p', path.join(build, 'steplibs')],
    { env, stdio: ['ignore', log, log], detached: false });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(base, daemon, logFile);

  fs.writeFileSync(path.join(work, 'state.json'), JSON.stringify({ daemonPid: daemon.pid, sshdDir }));
  process.env.OPSC_E2E_BASE = base;
  process.env.OPSC_E2E_ADMIN_PASSWORD = ADMIN_PASSWORD;
  process.env.OPSC_E2E_SSH_PORT = String(facts.port);
  process.env.OPSC_E2E_SSH_USER = facts.user;
  process.env.OPSC_E2E_SSH_KEY = facts.key_ed25519;
  process.env.OPSC_E2E_WORK = work;
  process.env.OPSC_E2E_SHOTS = path.join(out, 'screenshots');
}
