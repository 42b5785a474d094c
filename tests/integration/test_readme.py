"""test_readme.py - the README's First steps, Jobs, Notifications and Discovery sections run as
written against a real daemon.

A new user copies the shell blocks of "First steps" into a terminal after `./scripts/run`,
in the clone's directory; they must work with nothing but what that set-up installs and
builds (scripts/deps run, build/ with opsctl). The blocks run here unchanged except for the
daemon's address, in a directory that holds `data/initial-admin-password` as the daemon's
first start leaves it and `build/` (a link to the build under test); XDG_CONFIG_HOME keeps
opsctl's session there too.

The Jobs section continues in the same shell against two "machines": one real sshd on
127.0.0.1 and 127.0.0.2. For that the test changes what a reader changes for their own
fleet: the addresses, the SSH port and user, and it authorizes deploy_key on the sshd
(one line it adds between the sections).

Notifications and Discovery continue from there. Their example.com servers become real ones
on loopback: an SMTP server with STARTTLS and AUTH (its private CA added to the channel),
one HTTP receiver for the Slack, Teams and webhook URLs, and an sshd on port 22 of a
loopback address of its own for the scan's ranges (and the rule's), which then onboards it."""
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess

from conftest import ADMIN_PASSWORD, BUILD_DIR, ROOT
from fixtures.discovery import Lab
from fixtures.receiver import Receiver
from fixtures.smtp import SMTPServer
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


def substituted(block, changes):
    """The block with each example value replaced by the test's (each must be there)."""
    for old, new in changes.items():
        assert old in block, f"the README no longer has {old!r}"
        block = block.replace(old, new)
    return block


def first_steps_and_jobs(ssh, blocks=None):
    """First steps and Jobs and runs (its first `blocks`), on the sshd `ssh` at 127.0.0.1 and
    127.0.0.2."""
    first = "\n".join(section_blocks("First steps")).replace("username=deploy",
                                                             f"username={ssh['user']}")
    authorize = f"\ncat deploy_key.pub >> /tmp/opsctest-authorized-keys/{ssh['port']}\n"
    jobs = substituted("\n".join(section_blocks("Jobs and runs")[:blocks]), {
        "10.0.0.11 10.0.0.12": "127.0.0.1 127.0.0.2",
        "transport=ssh": f"transport=ssh port:={ssh['port']}"})
    return first + authorize + jobs


def test_jobs_section_runs_as_written_on_two_ssh_machines(daemon, tmp_path):
    env = clone_dir(tmp_path)
    with SSHD(str(tmp_path / "sshd"), options=["ListenAddress 127.0.0.2"]) as ssh:
        script = first_steps_and_jobs(ssh).replace("http://127.0.0.1:8080", daemon.base)
        out = run(script, tmp_path, env, timeout=240)
    lines = [ln.rstrip() for ln in out.splitlines()]
    assert "2 of 2 targets ok" in out  # opsctl groups test web
    for target in ("web-1", "web-2"):
        # run --follow, runs log and runs retry --follow: each target's every line, then success
        assert sum(1 for ln in lines if re.match(rf"{target} \| slow +\| tick \d$", ln)) == 9
        assert sum(1 for ln in lines if re.match(rf"{target} \* slow +\* succeeded", ln)) == 2
        assert f"  {target}  succeeded" in lines
    assert len(re.findall(r"^run \S+ succeeded in ", out, re.M)) == 3  # and os-release's
    # Files: each target's /etc/os-release kept with the run, listed, one downloaded
    release = pathlib.Path("/etc/os-release").read_bytes()
    assert (tmp_path / "web-1.os-release").read_bytes() == release
    digest = hashlib.sha256(release).hexdigest()
    assert len(re.findall(rf"^web-[12] +os-release +{len(release)} +{digest} ", out, re.M)) == 2
    assert (tmp_path / "copy.conf").read_text() == "server_tokens off;\n"
    # The parameter arrived as literal text (the run, as the SSE stream ends with it).
    assert out.count('"greeting":"hello-olga; rm -rf /"') == 2
    assert re.search(r"^\S+ +hello +cancelled +2 ", out, re.M)  # runs list state=cancelled
    assert "applied job hello (version 2," in out


def notifications_script(smtp, rx):
    """The Notifications section against the SMTP server and receiver; then each channel's
    test message (the section sends Slack's), to see the settings as written deliver."""
    block = substituted("\n".join(section_blocks("Notifications")), {
        "settings.url=smtp://mail.example.com:587":
            f"settings.url=smtp://127.0.0.1:{smtp.port} settings.ca_bundle=@{smtp.d / 'ca.pem'}",
        "https://hooks.slack.com/services/T000/B000/XXXX": rx.url("/slack"),
        "'https://prod-00.westeurope.logic.azure.com/workflows/...'": rx.url("/teams"),
        "https://itsm.example.com/opsc": rx.url("/itsm")})
    return block + "".join(f"\nopsctl notifications channels test {name}"
                           for name in ("ops-mail", "ops-teams", "itsm")) + "\n"


def discovery_script(lab, host):
    """The Discovery section, its ranges a few addresses of the lab around `host`."""
    return substituted("\n".join(section_blocks("Discovery")), {
        "10.1.2.0/24 10.1.3.10-50 db1.example.com --exclude 10.1.2.1":
            f"{lab.addr(0, 8)}-12 {lab.addr(0, 20)} --exclude {lab.addr(0, 9)}",
        "filter.ranges:='[\"10.1.2.0/24\"]'": f"filter.ranges:='[\"{lab.cidr}\"]'"})


def test_notifications_and_discovery_sections_run_as_written(daemon, tmp_path):
    env = clone_dir(tmp_path)
    lab = Lab(tmp_path / "lab")
    host = lab.addr(0, 10)
    try:
        facts = lab.ssh(host)
        with SSHD(str(tmp_path / "sshd"), options=["ListenAddress 127.0.0.2"]) as ssh, \
                SMTPServer(tmp_path / "smtp", user="opsc", password="the-smtp-password") as smtp, \
                Receiver() as rx:
            authorize = f"\ncat deploy_key.pub >> /tmp/opsctest-authorized-keys/{facts['key']}\n"
            # The targets, group web and job hello that the sections continue from.
            script = (first_steps_and_jobs(ssh, blocks=1) + "\n" + notifications_script(smtp, rx) +
                      authorize + discovery_script(lab, host))
            out = run(script.replace("http://127.0.0.1:8080", daemon.base), tmp_path, env,
                      timeout=300)
            mail = smtp.wait_for(1)[0]
            paths = [r.path for r in rx.wait_for(4)]
            hits = {p: [r for r in rx.requests if r.path == p] for p in ("/slack", "/teams", "/itsm")}
    finally:
        lab.close()
    assert mail["tls"] and mail["auth"] and mail["rcpt"] == ["ops@example.com"]
    assert "Test message from OpsConductor" in mail["message"]["Subject"]
    slack, found = hits["/slack"]  # the channel's test, then the rule new-machines
    assert json.loads(slack.body)["blocks"][0]["type"] == "header", paths
    assert f"New host {host} found: open ports 22" in found.body.decode()
    teams, = hits["/teams"]
    assert b"application/vnd.microsoft.card.adaptive" in teams.body
    itsm, = hits["/itsm"]
    assert itsm.headers["x-team"] == "ops" and itsm.headers["webhook-signature"].startswith("v1,")
    assert re.search(r'^\{"run_id":"[0-9a-f-]{36}"\}', out, re.M), out  # the hook started hello
    # The scan found the sshd as it streamed, and onboarding made it a target the key opens.
    assert f"host {host}  ports 22  ssh {facts['host_ed25519']}  os linux  (new)" in out
    assert re.search(r"^scan \S+ finished in .*: 5 addresses, 1 hosts found$", out, re.M), out
    name = "db-" + host.replace(".", "-")
    assert re.search(rf"^{re.escape(host)} +created +{name} +ok$", out, re.M), out
    assert "1 created, 0 exist, 0 failed" in out
    assert "T02:00:00+01:00" in out or "T01:00:00Z" in out  # profiles next, in Berlin's winter
