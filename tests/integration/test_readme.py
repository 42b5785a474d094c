"""test_readme.py - the README's First steps and Jobs sections run as written against a real daemon.

A new user copies the shell blocks of "First steps" into a terminal after `./scripts/run`,
in the clone's directory; they must work with nothing but what that set-up installs and
builds (scripts/deps run, build/ with opsctl). The blocks run here unchanged except for the
daemon's address, in a directory that holds `data/initial-admin-password` as the daemon's
first start leaves it and `build/` (a link to the build under test); XDG_CONFIG_HOME keeps
opsctl's session there too.

The Jobs section continues in the same shell against two "machines": one real sshd on
127.0.0.1 and 127.0.0.2. For that the test changes what a reader changes for their own
fleet: the addresses, the SSH port and user, and it authorizes deploy_key on the sshd
(one line it adds between the sections)."""
import os
import re
import shutil
import subprocess

from conftest import ADMIN_PASSWORD, BUILD_DIR, ROOT
from fixtures.sshd import SSHD


def section_blocks(title):
    """The ```sh blocks of the README section `## title`, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def clone_dir(tmp_path):
    """What the reader's clone holds after ./scripts/run: data/ and build/."""
    (tmp_path / "data").mkdir()
    pw = tmp_path / "data" / "initial-admin-password"
    pw.write_text(ADMIN_PASSWORD + "\n")
    os.chmod(pw, 0o600)
    (tmp_path / "build").symlink_to(BUILD_DIR.resolve())
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}


def run(script, tmp_path, env, timeout=120):
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert '"error":{' not in r.stdout and "opsctl: " not in r.stderr, r.stdout + r.stderr
    return r.stdout


def test_first_steps_run_as_written(daemon, tmp_path):
    blocks = section_blocks("First steps")
    assert blocks, "README.md has no ```sh block under ## First steps"
    for tool in ("curl", "ssh-keygen"):
        assert shutil.which(tool), f"{tool} is used by the README but not installed"
    env = clone_dir(tmp_path)
    out = run("\n".join(blocks).replace("http://127.0.0.1:8080", daemon.base), tmp_path, env)
    # The README's promise: ssh-keygen shows the fingerprint opsctl and the API show.
    local = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", tmp_path / "deploy_key.pub"],
                           capture_output=True, text=True, check=True).stdout.split()[1]
    assert out.count(local) == 3, out  # ssh-keygen, opsctl credentials list, curl
    assert "user     admin (admin, by access_token)" in out
    session = tmp_path / "config" / "opsctl" / "session.json"
    assert oct(session.stat().st_mode & 0o777) == "0o600"


def test_jobs_section_runs_as_written_on_two_ssh_machines(daemon, tmp_path):
    env = clone_dir(tmp_path)
    with SSHD(str(tmp_path / "sshd"), options=["ListenAddress 127.0.0.2"]) as ssh:
        first = "\n".join(section_blocks("First steps")).replace("username=deploy",
                                                                 f"username={ssh['user']}")
        authorize = f"\ncat deploy_key.pub >> /tmp/opsctest-authorized-keys/{ssh['port']}\n"
        jobs = "\n".join(section_blocks("Jobs and runs"))
        assert "10.0.0.11 10.0.0.12" in jobs and "transport=ssh" in jobs
        jobs = jobs.replace("10.0.0.11 10.0.0.12", "127.0.0.1 127.0.0.2").replace(
            "transport=ssh", f"transport=ssh port:={ssh['port']}")
        script = (first + authorize + jobs).replace("http://127.0.0.1:8080", daemon.base)
        out = run(script, tmp_path, env, timeout=240)
    lines = [ln.rstrip() for ln in out.splitlines()]
    assert "2 of 2 targets ok" in out  # opsctl groups test web
    for target in ("web-1", "web-2"):
        # run --follow, runs log and runs retry --follow: each target's every line, then success
        assert sum(1 for ln in lines if re.match(rf"{target} \| slow +\| tick \d$", ln)) == 9
        assert sum(1 for ln in lines if re.match(rf"{target} \* slow +\* succeeded", ln)) == 2
        assert f"  {target}  succeeded" in lines
    assert len(re.findall(r"^run \S+ succeeded in ", out, re.M)) == 2
    # The parameter arrived as literal text (the run, as the SSE stream ends with it).
    assert out.count('"greeting":"hello-olga; rm -rf /"') == 2
    assert re.search(r"^\S+ +hello +cancelled +2 ", out, re.M)  # runs list state=cancelled
    assert "applied job hello (version 2," in out
