// global-teardown.mjs - stop the daemon (SIGTERM: it must exit cleanly) and the sshd.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export default async function teardown() {
  const work = process.env.OPSC_E2E_WORK;
  if (!work) return;
  const st = JSON.parse(fs.readFileSync(path.join(work, 'state.json'), 'utf8'));
  try {
    process.kill(st.daemonPid, 'SIGTERM');
  } catch (e) {
    /* already gone */
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(st.daemonPid, 0);
    } catch (e) {
      break;
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  execFileSync('/usr/bin/python3', [path.join(process.env.OPSC_SOURCE_DIR, 'tests/integration/fixtures/sshd.py'), 'stop', st.sshdDir]);
}
