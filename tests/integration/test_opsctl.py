"""test_opsctl.py - the real opsctl binary against the real daemon.

Sessions (0600 file, rotating refresh tokens shared by concurrent processes), OPSC_TOKEN and
OPSC_URL, the resource commands with names and FIELD=VALUE bodies, jobs apply, run --follow of
new and already running runs with the exit code of each outcome, colours only on a terminal,
cron preview, signed step library uploads, errors, --help and shell completion."""
import base64
import json
import os
import pathlib
import pty
import select
import signal
import stat
import struct
import subprocess
import time

import fcntl
import termios

from conftest import BUILD_DIR, ROOT
from fixtures.runs import check, local_target, wait

OPSCTL = BUILD_DIR / "cli" / "opsctl" / "opsctl"
UPLIB = BUILD_DIR / "tests" / "plugins" / "test-uplib-1.0.0.upload"
ESC = "\x1b["


class Cli:
    """opsctl with its own config directory, pointed at one daemon."""

    def __init__(self, d, home):
        self.d, self.home = d, pathlib.Path(home)
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
        env.update({"XDG_CONFIG_HOME": str(self.home), "OPSC_URL": self.d.base, "LC_ALL": "C.UTF-8"})
        env.pop("NO_COLOR", None)
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    def __call__(self, *args, env=None, input=None, timeout=60):
        return subprocess.run([str(OPSCTL), *args], capture_output=True, text=True,
                              input=input, env=self.env(env), timeout=timeout)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, f"opsctl {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def login(self, user="admin", password=None):
        return self.ok("login", "-u", user, "--password-stdin",
                       input=(password or self.d.admin_password) + "\n")

    def session(self):
        return json.loads((self.home / "opsctl" / "session.json").read_text())

    def pty(self, *args, columns=80, env=None):
        """Run under a pseudo-terminal of `columns`; returns (exit code, output)."""
        pid, fd = pty.fork()
        if pid == 0:
            # A terminal that knows colours, whatever TERM the suite runs under (dumb in CI).
            os.execve(str(OPSCTL), [str(OPSCTL), *args], self.env({"TERM": "xterm", **(env or {})}))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        out = b""
        while True:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, "opsctl under a pty: no output for 30 s"
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), out.decode()


def cli(daemon, tmp_path, name="home"):
    c = Cli(daemon, tmp_path / name)
    c.login()
    return c


def local_self(d):
    """The local target the jobs below run on."""
    return local_target(d, "self", labels={"host": "self"})


def shell_job(c, name, *commands, **kw):
    """A job file of shell steps s1, s2... on the local target."""
    body = {"name": name, "targets": {"selector": "host=self"},
            "steps": [{"id": f"s{i + 1}", "type": "core.shell.command", "params": {"command": cmd}}
                      for i, cmd in enumerate(commands)], **kw}
    path = c.home / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


# ---- sessions --------------------------------------------------------------------------------

def test_login_keeps_a_private_session_that_logout_revokes(daemon, tmp_path):
    c = Cli(daemon, tmp_path / "home")
    bad = c("login", "-u", "admin", "--password-stdin", input="wrong-password\n")
    assert bad.returncode == 1 and "invalid_credentials: invalid username or password" in bad.stderr
    assert not (c.home / "opsctl" / "session.json").exists()
    c.login()
    path = c.home / "opsctl" / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    s = c.session()
    assert s["url"] == daemon.base and s["username"] == "admin" and s["refresh_token"]
    assert "admin (role admin, access_token)" in c.ok("whoami")
    c.ok("logout")
    assert not path.exists()
    spent = daemon.http.post(daemon.url("/api/v1/auth/refresh"),
                             json={"refresh_token": s["refresh_token"]})
    assert spent.status_code == 401
    r = c("whoami")
    assert r.returncode == 1 and "unauthorized" in r.stderr and "opsctl login" in r.stderr


def test_concurrent_commands_share_one_refresh_of_an_expired_session(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    for round_ in range(2):
        s = c.session()
        s["access_expires_at"] = 0  # expired: every process wants to refresh
        (c.home / "opsctl" / "session.json").write_text(json.dumps(s))
        procs = [subprocess.Popen([str(OPSCTL), "whoami"], env=c.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, f"round {round_}: {err}"
        # One refresh happened; a second would have presented a spent token and revoked all.
        assert c.session()["refresh_token"] != s["refresh_token"]
    # A token the server no longer accepts is refreshed once and the command retried.
    s = c.session()
    s["access_token"] = "not-a-token"
    (c.home / "opsctl" / "session.json").write_text(json.dumps(s))
    assert "admin" in c.ok("whoami")


def test_api_token_and_url_from_the_environment_need_no_session(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    token = c.ok("tokens", "create", "name=ci", "role=operator", "expires_in_days:=1",
                 "--get", "token").strip()
    assert token.startswith("opsc_")
    table = c.ok("tokens", "create", "name=ci-2", "role=viewer")
    assert "created token ci-2" in table and "token: opsc_" in table and "shown once" in table
    robot = Cli(daemon, tmp_path / "robot")
    out = robot.ok("whoami", env={"OPSC_TOKEN": token})
    assert "admin (role operator, api_token)" in out
    assert not (robot.home / "opsctl").exists()
    r = robot("whoami", env={"OPSC_TOKEN": token, "OPSC_URL": None})
    assert r.returncode == 1 and "cannot reach http://127.0.0.1:8080" in r.stderr or \
        "unauthorized" in r.stderr


# ---- resources --------------------------------------------------------------------------------

def test_resources_by_name_with_field_bodies_tables_json_and_api_errors(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    key = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cred = json.loads(c.ok("credentials", "create", "name=deploy-key", "type=ssh_key",
                           "username=deploy", f"private_key=@{key}", "-o", "json"))
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    assert cred["fingerprint"] == fingerprint and "private_key" not in cred
    assert "created target web-1" in c.ok("targets", "create", "name=web-1", "address=10.0.0.11",
                                          "transport=ssh", "credential_id=deploy-key",
                                          "labels.role=web", "port:=2222")
    t = json.loads(c.ok("targets", "show", "web-1", "-o", "json"))
    assert t["credential_id"] == cred["id"] and t["labels"] == {"role": "web"} and t["port"] == 2222
    c.ok("targets", "update", "web-1", "labels:={\"role\": \"db\"}", "description=primary")
    table = c.ok("targets", "list").splitlines()
    assert table[0].split() == ["NAME", "ADDRESS", "TRANSPORT", "OS", "LABELS", "ENABLED", "ID"]
    assert table[1].split()[:6] == ["web-1", "10.0.0.11", "ssh", "linux", "role=db", "yes"]
    assert c.ok("targets", "list", "label=role=db", "--get", "name") == "web-1\n"
    assert c.ok("targets", "list", "label=role=web", "--get", "name") == ""
    assert fingerprint in c.ok("credentials", "list")
    dup = c("targets", "create", "name=web-1", "transport=local")
    assert dup.returncode == 1
    assert dup.stderr.startswith(f"opsctl: conflict: a target named 'web-1' exists ({t['id']})")
    bad = c("jobs", "create", "name=broken", "steps:=[{\"id\": \"a\", \"type\": \"core.nope\"}]")
    assert bad.returncode == 1 and "invalid_job" in bad.stderr and "/steps/0/type" in bad.stderr
    assert c("targets", "show", "nope").stderr == "opsctl: no target named 'nope'\n"
    usage = c("targets", "create", "novalue")
    assert usage.returncode == 2 and "FIELD=VALUE" in usage.stderr
    assert c("targets", "frobnicate").returncode == 2
    busy = c("credentials", "delete", "deploy-key")
    assert busy.returncode == 1 and "web-1" in busy.stderr
    assert "deleted target web-1" in c.ok("targets", "delete", "web-1")
    c.ok("credentials", "delete", "deploy-key")
    assert c.ok("targets", "list", "-o", "json").strip() == "[]"


def test_jobs_apply_creates_then_updates_by_name(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    local_self(daemon)
    path = shell_job(c, "deploy", "echo one", description="first")
    assert c.ok("jobs", "apply", "-f", str(path)).startswith("created job deploy (version 1,")
    body = json.loads(path.read_text())
    del body["description"]
    body["steps"][0]["params"]["command"] = "echo two"
    path.write_text(json.dumps(body))
    assert c.ok("jobs", "apply", "-f", str(path)).startswith("updated job deploy (version 2,")
    job = json.loads(c.ok("jobs", "show", "deploy", "-o", "json"))
    assert job["steps"][0]["params"]["command"] == "echo two"
    assert "description" not in job or not job["description"]  # removed from the file: cleared
    assert [v.split()[0] for v in c.ok("jobs", "versions", "deploy").splitlines()[1:]] == ["2", "1"]
    export = c.ok("jobs", "export", "deploy")
    doc = json.loads(export)
    assert doc["job"]["targets"] == {"selector": "host=self"}
    doc["job"]["name"] = "deploy-copy"
    (tmp_path / "copy.json").write_text(json.dumps(doc))
    assert c.ok("jobs", "apply", "-f", str(tmp_path / "copy.json")).startswith(
        "applied job deploy-copy (version 1,")
    assert c("jobs", "apply").returncode == 2


# ---- runs ---------------------------------------------------------------------------------------

def test_run_follow_streams_the_log_and_exits_by_outcome(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    local_self(daemon)
    ok = shell_job(c, "hello", "echo hello {{ params.who }}; echo oops >&2; printf partial",
                   "for i in 1 2 3; do echo tick $i; sleep 0.2; done",
                   parameters=[{"name": "who", "type": "string", "default": "world"},
                               {"name": "n", "type": "int", "default": 1}])
    c.ok("jobs", "apply", "-f", str(ok))
    r = c("run", "hello", "-p", "who=olga; rm -rf /", "-p", "n=3", "--follow")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("run ") and "job hello version 1 on 1 targets" in lines[0]
    assert "self | s1 | hello olga; rm -rf /" in lines
    assert "self ! s1 ! oops" in lines
    assert "self | s1 | partial" in lines  # the last line without a newline is not lost
    assert [ln.split("| ")[-1] for ln in lines if "| s2 |" in ln] == ["tick 1", "tick 2", "tick 3"]
    assert "self * s1 * succeeded (exit 0)" in lines and "self * target succeeded" in lines
    assert lines[-1].startswith("run ") and " succeeded in " in lines[-1]
    assert ESC not in r.stdout  # not a terminal: no colours
    bad = c("run", "hello", "-p", "n=three")
    assert bad.returncode == 1 and "params.n" in bad.stderr

    c.ok("jobs", "apply", "-f", str(shell_job(c, "broken", "echo before; exit 7")))
    r = c("run", "broken", "-f")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "self * s1 * failed (exit 7): exit code 7" in r.stdout
    assert "self  failed: step s1 failed: exit code 7" in r.stdout

    c.ok("jobs", "apply", "-f", str(shell_job(c, "slow", "sleep 30", timeout_s=1)))
    r = c("run", "slow", "--follow")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "timed_out" in r.stdout.splitlines()[-1]

    events = [json.loads(ln) for ln in c.ok("run", "hello", "-f", "-o", "json").splitlines()]
    assert events[-1] == {"event": "end", "id": None, "data": {
        "run_id": events[-1]["data"]["run_id"], "state": "succeeded"}}
    assert any(e["event"] == "log" and e["data"]["text"] == "tick 2\n" for e in events)


def test_following_a_running_run_from_its_start_and_cancelling_it(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    local_self(daemon)
    c.ok("jobs", "apply", "-f", str(shell_job(
        c, "count", "for i in $(seq 1 30); do echo line $i; sleep 0.1; done", "sleep 60")))
    run_id = c.ok("run", "count", "--get", "id").strip()
    deadline = time.monotonic() + 30
    while "line 5" not in c.ok("runs", "log", run_id):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    follower = subprocess.Popen([str(OPSCTL), "runs", "log", run_id, "--follow"], env=c.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while check(daemon.get(f"/api/v1/runs/{run_id}"), 200)["targets"][0]["steps"][1]["state"] \
            != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "cancelling run" in c.ok("runs", "cancel", run_id)
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 4, out + err
    got = [ln.split("| ")[-1] for ln in out.splitlines() if "| s1 |" in ln]
    assert got == [f"line {i}" for i in range(1, 31)]  # from the start, each once
    assert "cancelled" in out.splitlines()[-1]
    assert wait(daemon, run_id)["state"] == "cancelled"
    # Ctrl-C stops following, not the run.
    run_id = c.ok("run", "count", "--get", "id").strip()
    follower = subprocess.Popen([str(OPSCTL), "runs", "log", run_id, "-f"], env=c.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = follower.stdout.readline()
    assert "| s1 | line 1" in first
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 130
    assert f"run {run_id} goes on (opsctl runs cancel {run_id} stops it)" in err
    assert check(daemon.get(f"/api/v1/runs/{run_id}"), 200)["state"] == "running"
    c.ok("runs", "cancel", run_id)
    shown = c.ok("runs", "show", run_id)
    assert shown.splitlines()[1].split()[:3] == ["TARGET", "STEP", "STATE"]


def test_colours_and_widths_only_for_a_terminal(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    local_target(daemon, "self", labels={"host": "self"}, description="x" * 100)
    c.ok("jobs", "apply", "-f", str(shell_job(c, "hi", "echo hi; echo no >&2")))
    code, out = c.pty("run", "hi", "--follow")
    assert code == 0
    assert f"{ESC}31mno" in out and f"{ESC}32msucceeded" in out
    code, out = c.pty("run", "hi", "--follow", env={"NO_COLOR": "1"})
    assert code == 0 and ESC not in out and "self ! s1 ! no" in out
    piped = c.ok("targets", "list", "--color")
    assert f"{ESC}1mNAME" in piped
    c.ok("targets", "update", "self", *[f"labels.{k}={k * 40}" for k in "abc"])
    code, out = c.pty("targets", "list", "--no-color", columns=100)
    rows = out.replace("\r", "").splitlines()
    assert all(len(r) <= 100 for r in rows), rows
    assert "~" in rows[1] and "self" in rows[1]  # labels cut, names and ids whole
    assert rows[1].split()[-1] == check(daemon.get("/api/v1/targets"), 200)["items"][0]["id"]


# ---- the rest -------------------------------------------------------------------------------------

def test_cron_preview_status_and_unreachable_server(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    out = c.ok("cron", "preview", "0 0 * * SUN-SUN", "--from", "2027-03-21T00:00:00Z", "-n", "2")
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == ["2027-03-21T00:00:00Z",
                                                             "2027-03-28T00:00:00Z"]
    out = c.ok("cron", "preview", "30 2 * * *", "--tz", "Europe/Berlin",
               "--from", "2027-03-28T00:00:00Z", "-n", "1")
    assert "2027-03-28T03:00:00+02:00  CEST  02:30 local time did not exist" in out
    bad = c("cron", "preview", "0 */0 * * *")
    assert bad.returncode == 1 and "invalid_cron" in bad.stderr and "column" in bad.stderr
    status = c.ok("status")
    assert "health   ok" in status and "ready    ready" in status and "user     admin" in status
    gone = c("status", env={"OPSC_URL": "http://127.0.0.1:9"})
    assert gone.returncode == 1 and "cannot reach http://127.0.0.1:9" in gone.stderr


def test_steplib_uploads_signed_with_an_ed25519_key(daemon_factory, tmp_path):
    priv, pub = tmp_path / "publisher.key", tmp_path / "publisher.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(priv)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True)
    rsa = tmp_path / "rsa.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-out", str(rsa)], check=True,
                   capture_output=True)
    d = daemon_factory(config={"steplibs": {"trusted_keys": str(pub)}})
    c = cli(d, tmp_path)
    unsigned = c("steplibs", "upload", str(UPLIB))
    assert unsigned.returncode == 1 and "signature_required" in unsigned.stderr
    wrong = c("steplibs", "upload", str(UPLIB), "--sign", str(rsa))
    assert wrong.returncode == 1 and "not an Ed25519 key" in wrong.stderr
    out = c.ok("steplibs", "upload", str(UPLIB), "--sign", str(priv))
    assert out == "installed step library uplib 1.0.0 (signed by publisher.pem)\n"
    assert c.ok("steplibs", "show", "uplib").splitlines()[1].split()[:2] == ["1.0.0", "no"]
    # Where it runs: an upload never in the daemon; out of process it goes.
    refused = c("steplibs", "isolation", "uplib", "in_process")
    assert refused.returncode == 1 and "isolation_refused" in refused.stderr
    assert c.ok("steplibs", "isolation", "uplib", "process") == \
        "step library uplib: isolation process, runs process\n"
    assert "uplib" in c.ok("steplibs", "list") and " process " in c.ok("steplibs", "list")
    assert "deleted step library uplib 1.0.0" in c.ok("steplibs", "delete", "uplib", "1.0.0")


def test_help_of_every_command_and_usage_errors():
    table = subprocess.run([str(OPSCTL), "__commands"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    commands = [line.split("\t")[0] for line in table]
    assert len(commands) > 50 and "run" in commands and "targets list" in commands
    # The completion offers the same commands: first words, then each group's verbs.
    offered = subprocess.run([str(OPSCTL), "__complete", ""], capture_output=True, text=True,
                             check=True).stdout.split()
    assert offered == list(dict.fromkeys(c.split()[0] for c in commands))
    script = "".join(f'"$0" {c} --help | head -n 1\n' for c in commands)
    r = subprocess.run(["bash", "-e", "-c", script, str(OPSCTL)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    usages = r.stdout.splitlines()
    assert [u.startswith(f"usage: opsctl {c}") for u, c in zip(usages, commands)] == \
        [True] * len(commands), usages
    top = subprocess.run([str(OPSCTL), "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "exit status: 0 success" in top.stdout
    r = subprocess.run([str(OPSCTL), "run"], capture_output=True, text=True)
    assert r.returncode == 2 and "missing arguments" in r.stderr
    r = subprocess.run([str(OPSCTL), "run", "x", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr


def test_bash_and_zsh_complete_commands_options_and_names_from_the_server(daemon, tmp_path):
    c = cli(daemon, tmp_path)
    local_self(daemon)
    c.ok("jobs", "apply", "-f", str(shell_job(c, "deploy-web", "true")))
    c.ok("jobs", "apply", "-f", str(shell_job(c, "backup", "true")))
    env = c.env({"PATH": f"{OPSCTL.parent}:{os.environ['PATH']}"})
    script = ROOT / "cli" / "opsctl" / "completion"

    def bash(*words):
        line = " ".join(f"'{w}'" for w in words)
        r = subprocess.run(["bash", "-c", f"source {script / 'opsctl.bash'}; COMP_WORDS=(opsctl {line}); "
                            f"COMP_CWORD={len(words)}; _opsctl; printf '%s\\n' \"${{COMPREPLY[@]}}\""],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
        return r.stdout.split()

    def zsh(*words):
        line = " ".join(f"'{w}'" for w in words)
        r = subprocess.run(["zsh", "-f", "-c", "compadd() { [[ $1 == -- ]] && shift; print -rl -- \"$@\" }; "
                            "_files() { print :files }; "
                            f"words=(opsctl {line}); CURRENT={len(words) + 1}; "
                            f"source {script / '_opsctl'}"],
                           capture_output=True, text=True, env=env, check=True)
        return r.stdout.split()

    for complete in (bash, zsh):
        assert complete("ta") == ["targets"]
        assert "apply" in complete("jobs", "") and "run" in complete("")
        assert complete("run", "") == ["deploy-web", "backup"]
        assert complete("run", "dep") == ["deploy-web"]
        assert complete("run", "backup", "--f") == ["--follow"]
        assert complete("run", "backup", "--target", "") == ["self"]
        assert complete("-o", "") == ["table", "json"]
    (tmp_path / "job.json").write_text("{}")
    assert bash("jobs", "apply", "-f", "jo") == ["job.json"]
    assert zsh("jobs", "apply", "-f", "jo") == [":files"]


# ---- notifications, hooks, discovery ---------------------------------------------------------

def test_notification_channels_rules_deliveries_and_hooks_by_name(daemon, tmp_path):
    from fixtures.receiver import Answer, Receiver, sign_github
    c = cli(daemon, tmp_path)
    local_self(daemon)
    c.ok("jobs", "apply", "-f", str(shell_job(c, "flaky", "exit 3", parameters=[
        {"name": "who", "type": "string", "default": "world"}])))
    key = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with Receiver(secret=key) as rx:
        c.ok("credentials", "create", "name=itsm-key", "type=secret", f"value={key}")
        out = c.ok("notifications", "channels", "create", "name=itsm", "type=webhook",
                   f"settings.url={rx.url()}", "credential_id=itsm-key")
        assert out.startswith("created channel itsm (")
        assert "test message delivered to channel itsm" in c.ok("notifications", "channels",
                                                                "test", "itsm")
        assert rx.wait_for(1)[0].verified
        rx.script([Answer(500)])
        r = c("notifications", "channels", "test", "itsm")
        assert r.returncode == 1 and "delivery_failed" in r.stderr and "500" in r.stderr, r.stderr
        row = c.ok("notifications", "channels", "list").splitlines()[1].split()
        assert row[:3] == ["itsm", "webhook", "yes"]
        # Names stand for ids in the rule's channels and filter; its table lists the events.
        c.ok("notifications", "rules", "create", "name=flaky-broke",
             "events:=[\"run.failed\"]", "channels:=[\"itsm\"]", "filter.job_ids:=[\"flaky\"]")
        rule = json.loads(c.ok("notifications", "rules", "show", "flaky-broke"))
        channel_id = c.ok("notifications", "channels", "show", "itsm", "--get", "id").strip()
        assert rule["channels"] == [channel_id]
        assert rule["filter"]["job_ids"] == [c.ok("jobs", "show", "flaky", "--get", "id").strip()]
        assert "run.failed" in c.ok("notifications", "rules", "list")
        assert c("run", "flaky", "--follow").returncode == 3
        got = rx.wait_for(3)
        assert json.loads(got[2].body)["event"]["name"] == "run.failed"
        for _ in range(100):
            listed = c.ok("notifications", "deliveries", "list", "channel=itsm", "rule=flaky-broke",
                          "-o", "json")
            if json.loads(listed) and json.loads(listed)[0]["state"] == "delivered":
                break
            time.sleep(0.1)
        (delivery,) = json.loads(listed)
        assert delivery["event"] == "run.failed" and delivery["channel_id"] == channel_id
        assert json.loads(c.ok("notifications", "deliveries", "show", delivery["id"]))["attempts"]
        r = c("notifications", "channels", "delete", "itsm")
        assert r.returncode == 1 and "in_use" in r.stderr  # the rule still sends there

    # An inbound hook: created by names, its trigger URL said, a signed push starts the job.
    c.ok("credentials", "create", "name=gh-key", "type=secret", "value=gh-secret-1")
    out = c.ok("hooks", "create", "name=gh", "job_id=flaky", "verify=github",
               "credential_id=gh-key", "params.who=body.pusher.name")
    trigger = out.splitlines()[1].removeprefix("trigger: ")
    assert trigger.startswith(daemon.base + "/api/v1/hooks/") and trigger.endswith("/trigger")
    body = b'{"pusher": {"name": "olga"}}'
    r = daemon.http.post(trigger, data=body, headers={
        "Content-Type": "application/json", "X-GitHub-Delivery": "d-1",
        **sign_github("gh-secret-1", body)})
    assert r.status_code == 202 and r.json()["run_id"], r.text
    assert c.ok("hooks", "list", "--get", "name") == "gh\n"
    assert "deleted hook gh" in c.ok("hooks", "delete", "gh")
    assert c.ok("__complete", "notifications", "").split() == ["channels", "rules", "deliveries"]
    assert c.ok("__complete", "notifications", "rules", "show", "").split() == ["flaky-broke"]


def test_discovery_scan_follow_hosts_onboard_and_profiles(daemon, tmp_path):
    from fixtures.discovery import Lab
    lab = Lab(tmp_path / "lab")
    try:
        _discovery_commands(daemon, tmp_path, lab)
    finally:
        lab.close()


def _discovery_commands(daemon, tmp_path, lab):
    c = cli(daemon, tmp_path)
    a = lab.addr(0, 5)
    facts = lab.ssh(a)
    # a host key exchange under the sanitizers on a busy machine can take past the 1 s default
    r = c("discovery", "scan", f"{lab.addr(0, 4)}-6", "--port", "22,2222", "timeout_ms:=5000",
          "--follow")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("scan ") and lines[0].endswith(" started: 3 addresses")
    host = [ln for ln in lines if ln.startswith("host ")]
    assert host == [f"host {a}  ports 22  ssh {facts['host_ed25519']}  os linux  (new)"], lines
    assert lines[-1].startswith(f"scan {lines[0].split()[1]} finished in ")
    assert lines[-1].endswith(": 3 addresses, 1 hosts found")
    row = c.ok("discovery", "hosts", "list", "state=new").splitlines()[1].split()
    assert row[:3] == [a, "new", "22"] and facts["host_ed25519"] in row
    assert json.loads(c.ok("discovery", "hosts", "show", a))["ssh"]["host_key_fingerprint"] == \
        facts["host_ed25519"]
    # Onboard by address, the credential and group by name; a second time it exists.
    key = tmp_path / "key"
    key.write_text(pathlib.Path(facts["key_ed25519"]).read_text())
    c.ok("credentials", "create", "name=lab-key", "type=ssh_key", f"username={facts['user']}",
         f"private_key=@{key}")
    c.ok("groups", "create", "name=lab")
    out = c.ok("discovery", "onboard", a, "credential_id=lab-key", "group_id=lab", "test:=true")
    assert out.splitlines()[1].split()[:4] == [a, "created", a, "ok"], out
    assert out.splitlines()[-1] == "1 created, 0 exist, 0 failed"
    assert c.ok("groups", "targets", "lab", "--get", "address") == f"{a}\n"
    again = c.ok("discovery", "onboard", "filter.port:=22", "credential_id=lab-key")
    assert again.splitlines()[-1] == "0 created, 1 exist, 0 failed"
    # Errors are the API's; a finished scan cannot be cancelled; JSON lines for scripts.
    bad = c("discovery", "scan", "10.0.0.0/33")
    assert bad.returncode == 1 and "invalid" in bad.stderr, bad.stderr
    scan_id = c.ok("discovery", "scans", "list", "--limit", "1", "--get", "id").strip()
    r = c("discovery", "scans", "cancel", scan_id)
    assert r.returncode == 1 and "conflict" in r.stderr
    events = [json.loads(ln)["event"] for ln in
              c.ok("discovery", "scans", "watch", scan_id, "-o", "json").splitlines()]
    assert events == ["scan", "host", "end"]
    # A slow scan, cancelled by another opsctl while one follows it: exit 4.
    follow = subprocess.Popen([str(OPSCTL), "discovery", "scan", lab.cidr, "--port", "22",
                               "--rate", "20", "--follow"], env=c.env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(100):
        running = c.ok("discovery", "scans", "list", "state=running", "--get", "id").split()
        if running:
            break
        time.sleep(0.1)
    c.ok("discovery", "scans", "cancel", running[0])
    out, err = follow.communicate(timeout=30)
    assert follow.returncode == 4 and f"scan {running[0]} cancelled" in out, out + err
    # Profiles: names inside auto_onboard, next fires, a run now followed to its end.
    spec = tmp_path / "profile.json"
    spec.write_text(json.dumps({"name": "lab-nightly", "cron": "0 2 * * *", "timezone": "UTC",
                                "spec": {"ranges": [a], "ports": [22]},
                                "auto_onboard": [{"ranges": [a], "transport": "ssh",
                                                  "credential_id": "lab-key", "group_id": "lab"}]}))
    c.ok("discovery", "profiles", "create", "-f", str(spec))
    prof = json.loads(c.ok("discovery", "profiles", "show", "lab-nightly"))
    assert prof["auto_onboard"][0]["group_id"] == c.ok("groups", "show", "lab", "--get",
                                                       "id").strip()
    assert "T02:00:00" in c.ok("discovery", "profiles", "next", "lab-nightly", "-n", "2")
    r = c("discovery", "profiles", "run", "lab-nightly", "--follow")
    assert r.returncode == 0 and "1 hosts found" in r.stdout, r.stdout + r.stderr
    assert c.ok("__complete", "discovery", "hosts", "show", "").split() == [a]
