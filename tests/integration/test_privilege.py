"""test_privilege.py - the privilege boundary of local steps, tested as an operator would attack it.

The daemon runs as the package runs it: started as root with [server] user =
opsconductor (it drops to that user once its helper, opsc-spawner, runs), a data
directory that user owns, and local steps as the unprivileged opsconductor-local.
An operator with a local target tries to read the daemon's keys and memory;
kill -9 of the daemon must leave no step process behind; the role that local
targets need is enforced and audited. The daemon keeps one capability, to listen
below 1024 (HTTPS on 443), and steps get none.
"""
import os
import pathlib
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import ADMIN_PASSWORD, DAEMON, LOCAL_USER, Daemon, clean_env, free_port, \
    plugin_dirs, render_config
from fixtures.tls import CA
from fixtures.runs import check, get_run, job, local_target, log_text, shell_step, start, wait, \
    wait_step

DAEMON_USER = "opsconductor"
OPERATOR_PW = "Mallory-is-an-operator-7f3e"
CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE = 1 << 6, 1 << 7, 1 << 10


def free_low_port():
    """A free port below 1024 (as root), for a daemon that must keep the right to listen on it
    after it drops root."""
    for port in random.sample(range(600, 1024), 424):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 1024")


def uid_of(name):
    return pwd.getpwnam(name).pw_uid


def helper_pid(daemon):
    """The daemon's child that is opsc-spawner."""
    for task in pathlib.Path(f"/proc/{daemon.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            if "opsc-spawner" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode(
                    errors="replace"):
                return int(pid)
    raise AssertionError("no opsc-spawner child of the daemon")


def status_field(pid, name):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def operator_session(daemon, name="mallory"):
    check(daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": name, "role": "operator", "password": OPERATOR_PW}), 201)
    r = daemon.login(name, OPERATOR_PW)
    assert r.status_code == 200, r.text
    return daemon.session(r.json()["access_token"])


def processes_with(text):
    """pids whose command line holds `text` (as root: every process is visible)."""
    found = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if text in p.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"):
                found.append(int(p.name))
        except OSError:
            pass
    return found


def owned_data_dir():
    """(base, data): a directory under /tmp everyone may enter, and in it a data directory the
    daemon user owns."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="opsc-priv-", dir="/tmp"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir(mode=0o700)
    os.chown(data, uid_of(DAEMON_USER), pwd.getpwnam(DAEMON_USER).pw_gid)
    return base, data


@pytest.fixture
def dropped(daemon_factory):
    """A daemon started as root that switches to the opsconductor user, with a
    data directory that user owns, and local targets open to operators."""
    base, data = owned_data_dir()
    d = daemon_factory(config={"server": {"user": DAEMON_USER},
                               "store": {"data_dir": str(data)},
                               "executor": {"local_targets": "operator"}},
                       port=free_low_port())  # listened on as opsconductor (bind capability)
    yield d
    if d.running():
        assert d.stop() == 0
    shutil.rmtree(base, ignore_errors=True)


def start_ambient(config=None, args=()):
    """(daemon, base): a daemon started as the opsconductor user with CAP_SETUID, CAP_SETGID and
    CAP_NET_BIND_SERVICE as ambient capabilities, as the packaged unit starts it
    (AmbientCapabilities=), on a port below 1024; its files where that user can read them. Its
    config: `config` over the base one; `args` after the plugin directories."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="opsc-amb-", dir="/tmp"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir(mode=0o700)
    pw = pwd.getpwnam(DAEMON_USER)
    os.chown(data, pw.pw_uid, pw.pw_gid)
    port = free_low_port()
    conf = base / "opsconductor.conf"
    conf.write_text(render_config({"server": {"listen": f"127.0.0.1:{port}"},
                                   "store": {"data_dir": str(data)},
                                   "executor": {"local_targets": "operator"}, **(config or {})}))
    os.chown(conf, 0, pw.pw_gid)  # as the package installs it: root:opsconductor 0640
    conf.chmod(0o640)
    cmd = ["setpriv", f"--reuid={DAEMON_USER}", f"--regid={DAEMON_USER}", "--init-groups",
           "--inh-caps=+setuid,+setgid,+net_bind_service",
           "--ambient-caps=+setuid,+setgid,+net_bind_service", "--", str(DAEMON),
           "-c", str(conf)]
    for p in plugin_dirs():
        cmd += ["-p", p]
    cmd += list(args)
    err = base / "stderr.log"
    with open(err, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                                env=clean_env(None))
    d = Daemon(proc, port, data, conf, err)
    d.admin_password = ADMIN_PASSWORD
    d.wait_ready()
    d.login_admin()
    return d, base


@pytest.fixture
def ambient():
    d, base = start_ambient()
    yield d
    assert d.stop() == 0
    shutil.rmtree(base, ignore_errors=True)


def attack_script(daemon, helper):
    files = [f"{daemon.data_dir}/{n}" for n in ("master.key", "jwt.key", "data.mdb")]
    files.append(str(daemon.config_path))
    dirs = [str(daemon.data_dir)]
    for pid in (daemon.pid, helper):
        files += [f"/proc/{pid}/{n}" for n in ("environ", "mem", "cmdline", "maps", "stack")]
        dirs += [f"/proc/{pid}/fd", f"/proc/{pid}/root/"]
    lines = ["id -un", "grep -E '^Cap(Inh|Prm|Eff|Amb):' /proc/self/status"]
    lines += [f"if cat '{p}' >/dev/null 2>&1; then echo 'READ {p}'; else echo 'DENIED {p}'; fi"
              for p in files]
    lines += [f"if ls '{p}' >/dev/null 2>&1; then echo 'READ {p}'; else echo 'DENIED {p}'; fi"
              for p in dirs]
    return "\n".join(lines), len(files) + len(dirs)


def attack(d, helper):
    """An operator creates a local target and runs the attack script on it: the operator's
    session, the target, the READ/DENIED lines and the whole log."""
    mallory = operator_session(d)
    t = check(mallory.post(d.url("/api/v1/targets"),
                           json={"name": "appliance", "transport": "local"}), 201)
    script, n = attack_script(d, helper)
    j = check(mallory.post(d.url("/api/v1/jobs"), json={
        "name": "steal", "targets": {"ids": [t["id"]]},
        "steps": [shell_step("steal", script)]}), 201)
    run = wait(d, start(d, j["id"], session=mallory)["id"])
    assert run["state"] == "succeeded", (run, d.stderr()[-3000:])
    out = log_text(d, run["id"])
    assert out.splitlines()[0] == LOCAL_USER
    caps = [line.split() for line in out.splitlines() if line.startswith("Cap")]
    assert len(caps) == 4 and all(int(v, 16) == 0 for _, v in caps), out  # the step has none
    lines = [line for line in out.splitlines() if line.startswith(("READ", "DENIED"))]
    assert len(lines) == n, out
    return mallory, t, lines, out


def test_an_operator_with_a_local_target_cannot_read_the_daemons_keys_or_memory(dropped):
    d = dropped
    helper = helper_pid(d)
    # The daemon gave root up and every capability but the one to listen on its port below
    # 1024; its helper keeps the right to switch users.
    assert status_field(d.pid, "Uid")[:2] == [str(uid_of(DAEMON_USER))] * 2
    for field in ("CapEff", "CapPrm"):
        assert int(status_field(d.pid, field)[0], 16) == CAP_NET_BIND_SERVICE, field
    for field in ("CapInh", "CapAmb"):
        assert int(status_field(d.pid, field)[0], 16) == 0, field
    mallory, t, lines, out = attack(d, helper)
    assert all(line.startswith("DENIED") for line in lines), out
    # Nor through the file steps: they run as the local-steps user too.
    got = check(mallory.post(d.url("/api/v1/jobs"), json={
        "name": "fetch", "targets": {"ids": [t["id"]]},
        "steps": [{"id": "get", "type": "core.file.get",
                   "params": {"src": f"{d.data_dir}/jwt.key", "dest": "jwt.key"}}]}), 201)
    run = wait(d, start(d, got["id"], session=mallory)["id"])
    assert run["state"] == "failed"
    assert "cannot fetch" in run["targets"][0]["steps"][0]["error"], run


def test_with_ambient_capabilities_the_daemon_keeps_only_the_one_to_listen_below_1024(ambient):
    d = ambient
    helper = helper_pid(d)
    assert status_field(d.pid, "Uid")[:2] == [str(uid_of(DAEMON_USER))] * 2
    for field in ("CapEff", "CapPrm"):
        assert int(status_field(d.pid, field)[0], 16) == CAP_NET_BIND_SERVICE, field
    for field in ("CapInh", "CapAmb"):
        assert int(status_field(d.pid, field)[0], 16) == 0, field
    assert int(status_field(helper, "CapEff")[0], 16) & (CAP_SETGID | CAP_SETUID) == \
        CAP_SETGID | CAP_SETUID
    _, _, lines, out = attack(d, helper)
    # Without root there is no private /proc: a command line is readable by
    # everyone on Linux (systemd's ProtectProc=invisible hides it); it holds
    # no secret. Everything else is refused.
    leaked = [line for line in lines if line.startswith("READ") and not line.endswith("/cmdline")]
    assert leaked == [], out


def test_a_dropped_daemon_serves_https_below_1024_with_a_key_it_owns(daemon_factory):
    base, data = owned_data_dir()
    try:
        ca = CA(base / "ca")
        cert, key = ca.issue("server", "localhost")
        port, tls_port = free_port(), free_low_port()
        config = {"server": {"user": DAEMON_USER, "tls_cert": str(cert), "tls_key": str(key),
                             "listen": f"127.0.0.1:{port}, 127.0.0.1:{tls_port} tls"},
                  "store": {"data_dir": str(data)}}
        # root's 0600 key: the daemon, no longer root, cannot read it, and says what to do
        d = daemon_factory(config=config, port=port, wait_ready=False)
        assert d.proc.wait(30) != 0
        assert "chown it to that user, mode 0600" in d.stderr(), d.stderr()[-2000:]
        os.chown(key, uid_of(DAEMON_USER), pwd.getpwnam(DAEMON_USER).pw_gid)
        d = daemon_factory(config=config, port=port)
        r = requests.get(f"https://localhost:{tls_port}/health", verify=str(ca.cert), timeout=10)
        assert r.status_code == 200
        assert status_field(d.pid, "Uid")[:2] == [str(uid_of(DAEMON_USER))] * 2
        assert d.stop() == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_local_steps_and_file_steps_act_as_the_local_steps_user(daemon, local_tmp):
    t = local_target(daemon, "self")
    secret = local_tmp / "root-only"
    secret.write_text("only root may read this\n")
    secret.chmod(0o600)
    j = job(daemon, {"name": "who", "targets": {"ids": [t["id"]]}, "steps": [
        shell_step("id", "id -un; id -u"),
        {"id": "put", "type": "core.file.put",
         "params": {"content": "hello\n", "dest": str(local_tmp / "put.txt")}},
        {"id": "get", "type": "core.file.get",
         "params": {"src": str(secret), "dest": "secret"}}]})
    run = wait(daemon, start(daemon, j["id"])["id"])
    assert log_text(daemon, run["id"]).startswith(f"{LOCAL_USER}\n{uid_of(LOCAL_USER)}\n")
    steps = {s["id"]: s for s in run["targets"][0]["steps"]}
    assert steps["put"]["state"] == "succeeded", steps["put"]
    assert (local_tmp / "put.txt").stat().st_uid == uid_of(LOCAL_USER)
    assert steps["get"]["state"] == "failed", steps["get"]
    assert "only root" not in log_text(daemon, run["id"])


def wait_for_processes(text, present, seconds):
    end = time.monotonic() + seconds
    while bool(processes_with(text)) != present and time.monotonic() < end:
        time.sleep(0.05)
    return processes_with(text)


def start_sleeper(daemon, seconds, then, target_id=None):
    """A run whose step sleeps `seconds` (a number no other test uses) and then does `then`,
    on `target_id` (default: a new local target); returns the run id and the text of the
    sleep's command line, once it runs."""
    tag = f"sleep {seconds}.{os.getpid()}{int(time.time()) % 1000}"
    if target_id is None:
        target_id = local_target(daemon, "self")["id"]
    j = job(daemon, {"name": "slow", "targets": {"ids": [target_id]},
                     "steps": [shell_step("s", f"{tag}; {then}")]})
    run = start(daemon, j["id"])["id"]
    wait_step(daemon, run)
    assert wait_for_processes(tag, True, 20)
    return run, tag


def test_kill_9_of_the_daemon_leaves_no_step_process_and_the_step_never_finishes(
        daemon, local_tmp):
    mark = local_tmp / "mark"
    run, tag = start_sleeper(daemon, 30, f"echo MARK > {mark}")
    daemon.proc.kill()
    daemon.proc.wait()
    assert wait_for_processes(tag, False, 5) == []
    time.sleep(0.5)
    assert not mark.exists()
    again = daemon.restart()
    assert get_run(again, run)["state"] == "interrupted"


def test_a_group_left_behind_by_daemon_and_helper_is_killed_at_start_up(daemon, local_tmp):
    # Both die at once (the helper cannot clean up): the group leader dies with
    # its helper (PR_SET_PDEATHSIG), its child keeps running; the next daemon
    # finds the group in the run's record and kills what is left of it.
    run, tag = start_sleeper(daemon, 31, "echo done")
    time.sleep(0.3)  # the record with the group is written at the end of the loop turn
    helper = helper_pid(daemon)
    daemon.send_signal(signal.SIGSTOP)
    os.kill(helper, signal.SIGKILL)
    daemon.proc.kill()
    daemon.proc.wait()
    time.sleep(0.3)
    assert processes_with(tag), "the orphan should have outlived its group leader"
    try:
        again = daemon.restart()
        assert wait_for_processes(tag, False, 10) == [], again.stderr()[-2000:]
        assert "killed 1 process(es) its command left running" in again.stderr()
        assert get_run(again, run)["state"] == "interrupted"
    finally:
        for pid in processes_with(tag):
            os.kill(pid, signal.SIGKILL)


def test_local_targets_need_the_admin_role_and_the_audit_log_names_who_tried(daemon):
    mallory = operator_session(daemon)
    body = {"name": "appliance", "transport": "local"}
    r = mallory.post(daemon.url("/api/v1/targets"), json=body)
    assert r.status_code == 403 and "admin role" in r.json()["error"]["message"]
    r = mallory.post(daemon.url("/api/v1/targets/bulk"), json=[body])
    assert r.json()["items"][0]["error"]["code"] == "forbidden"
    t = local_target(daemon, "appliance")
    assert mallory.patch(daemon.url(f"/api/v1/targets/{t['id']}"),
                         json={"description": "mine now"}).status_code == 403
    assert mallory.delete(daemon.url(f"/api/v1/targets/{t['id']}")).status_code == 403
    assert mallory.post(daemon.url(f"/api/v1/targets/{t['id']}/test")).status_code == 403
    j = check(mallory.post(daemon.url("/api/v1/jobs"), json={
        "name": "sneaky", "targets": {"ids": [t["id"]]}, "steps": [shell_step("s", "id")]}), 201)
    r = mallory.post(daemon.url(f"/api/v1/jobs/{j['id']}/runs"), json={})
    assert r.status_code == 403 and "appliance" in r.json()["error"]["message"]
    # A dry run only renders: allowed.
    assert mallory.post(daemon.url(f"/api/v1/jobs/{j['id']}/runs"),
                        json={"dry_run": True}).status_code == 200
    # The admin may.
    assert wait(daemon, start(daemon, j["id"])["id"])["state"] == "succeeded"
    audit = check(daemon.get("/api/v1/audit", params={"actor": "mallory", "outcome": "denied",
                                                      "limit": 100}), 200)["items"]
    actions = {a["action"] for a in audit}
    assert "POST /api/v1/targets" in actions and "POST /api/v1/jobs/{id}/runs" in actions


def test_local_targets_disabled_refuses_even_an_admin(daemon_factory):
    d = daemon_factory(config={"executor": {"local_targets": "disabled"}})
    r = d.http.post(d.url("/api/v1/targets"), json={"name": "x", "transport": "local"})
    assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]


def test_without_the_local_steps_user_local_steps_are_refused_with_the_reason(daemon_factory):
    d = daemon_factory(config={"executor": {"local_user": "opsc-no-such-user"}})
    assert "opsc-no-such-user" in d.stderr() and "does not exist" in d.stderr()
    t = local_target(d, "self")
    j = job(d, {"name": "x", "targets": {"ids": [t["id"]]}, "steps": [shell_step("s", "id")]})
    run = wait(d, start(d, j["id"])["id"])
    assert run["state"] == "failed"
    err = run["targets"][0]["steps"][0]["error"]
    assert "local steps are refused" in err and "opsc-no-such-user" in err, err


def own_address():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        return s.getsockname()[0]


def test_http_request_cannot_reach_the_appliance_itself_and_ca_file_is_confined(daemon):
    # A job's HTTP request comes from the appliance: to the daemon's own API
    # (on loopback or on the machine's own address), to other loopback services
    # or to a cloud's metadata address it would act with the appliance's trust.
    t = local_target(daemon, "self")
    port = daemon.port
    urls = {"loopback": f"http://127.0.0.1:{port}/api/v1/users",
            "v6": f"http://[::1]:{port}/health",
            "name": f"http://localhost:{port}/health",
            "own": f"http://{own_address()}:{port}/health",
            "metadata": "http://169.254.169.254/latest/meta-data/"}
    steps = [{"id": k, "type": "core.http.request", "on_failure": "continue",
              "params": {"url": u, "timeout_s": 3}} for k, u in urls.items()]
    steps.append({"id": "ca", "type": "core.http.request", "on_failure": "continue",
                  "params": {"url": "https://192.0.2.1/", "ca_file": "/etc/shadow"}})
    j = job(daemon, {"name": "ssrf", "targets": {"ids": [t["id"]]}, "steps": steps})
    run = wait(daemon, start(daemon, j["id"])["id"])
    by_id = {s["id"]: s for s in run["targets"][0]["steps"]}
    for k in urls:
        assert by_id[k]["state"] == "failed", by_id[k]
        assert "the appliance itself or a link-local address" in by_id[k]["error"], by_id[k]
    assert "not a file every local user may read" in by_id["ca"]["error"]
