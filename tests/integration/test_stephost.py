"""test_stephost.py - step libraries out of the daemon's process (opsc-stephost), on the real
daemon: each kind of misbehaviour fails its step alone with a reason naming the library, version,
step and what happened, while the daemon keeps serving; the sandbox refuses what a step has no
business doing; cancel and timeout escalate to the host; a host killed from outside; quarantine
after repeated crashes and an admin's re-enable; uploaded libraries out of process by default.

The misbehaving steps are testexec.* (tests/exec_steps/exec_steps.c)."""
import os
import pwd
import signal
import time

import pytest

from conftest import RUN_DIR
from fixtures.runs import check, job, local_target, shell_step, start, step, wait, wait_step
from test_steplibs_api import UPLIB, error, token, upload

TEST_STEPS = str(RUN_DIR / "tests" / "exec_steps")
ISOLATED = {"steplibs": {"isolation": "always", "host_memory_limit": "256M",
                         "host_stop_grace": "500ms"}}


def isolated(daemon_factory, **sections):
    return daemon_factory({**ISOLATED, **sections}, args=("-p", TEST_STEPS))


def run_steps(d, t, *steps, **kw):
    j = job(d, {"name": f"j{time.monotonic_ns()}", "targets": {"ids": [t["id"]]},
                "steps": list(steps), **kw})
    return start(d, j["id"])


def misbehave(how, **kw):
    return {"id": "bad", "type": "testexec.misbehave", "params": {"how": how}, **kw}


def host_of(d, name="testexec", version="1.0.0"):
    return check(d.get(f"/api/v1/steplibs/{name}/{version}"), 200)["isolation"]


def host_pid(d):
    """The pid of testexec's host once a step started it (a running step may not have yet)."""
    deadline = time.monotonic() + 10
    while host_of(d)["pid"] is None:
        assert time.monotonic() < deadline, "no step host started"
        time.sleep(0.02)
    return host_of(d)["pid"]


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def cancel_and_see_the_host_killed(d, run, pid):
    """Cancel `run`, whose step spins in the host `pid`: cancelled at once, the host killed."""
    t0 = time.monotonic()
    check(d.http.post(d.url(f"/api/v1/runs/{run['id']}/cancel")), 202)
    run = wait(d, run["id"])
    assert run["state"] == "cancelled" and time.monotonic() - t0 < 4
    deadline = time.monotonic() + 5
    while not gone(pid):
        assert time.monotonic() < deadline, "the spinning host was not killed"
        time.sleep(0.05)


def test_each_misbehaviour_fails_its_step_alone_while_the_daemon_serves(daemon_factory):
    d = isolated(daemon_factory)
    t = local_target(d, "self")
    # A run beside them keeps running through every crash.
    bystander = run_steps(d, t, shell_step("s", "sleep 3; echo still here"), allow_concurrent=True)
    for how, what in [("abort", "crashed (SIGABRT)"), ("exit", "exited (status 3)"),
                      ("alloc", "crashed (SIGABRT)")]:
        run = wait(d, run_steps(d, t, misbehave(how))["id"])
        assert run["state"] == "failed"
        assert step(run, "self", "bad")["error"] == f"testexec 1.0.0: step misbehave {what}"
        assert d.running()
    run = wait(d, bystander["id"])
    assert run["state"] == "succeeded" and step(run, "self", "s")["outputs"]["stdout"] == "still here"
    iso = host_of(d)
    assert iso["runs"] == "process" and iso["restarts"] == 2 and iso["crashes"] == 3
    assert not iso["quarantined"]


def test_the_sandbox_refuses_files_processes_sockets_and_ptrace(daemon_factory):
    d = isolated(daemon_factory)
    t = local_target(d, "self")
    own = os.path.join(TEST_STEPS, "steplib-testexec.so")
    for params, error in [
            ({"call": "open", "path": os.path.join(d.data_dir, "master.key")}, "open: Permission denied"),
            ({"call": "open", "path": os.path.join(d.data_dir, "data.mdb")}, "open: Permission denied"),
            ({"call": "open", "path": "/etc/passwd"}, "open: Permission denied"),
            ({"call": "open", "path": "/proc/self/root/etc/passwd"}, "open: Permission denied"),
            ({"call": "open", "path": f"/proc/{d.proc.pid}/environ"}, "open: Permission denied"),
            ({"call": "fork"}, "fork: Operation not permitted"),
            ({"call": "socket"}, "socket: Operation not permitted"),
            ({"call": "ptrace"}, "ptrace: Operation not permitted"),
            ({"call": "open", "path": own}, "open: allowed")]:
        run = wait(d, run_steps(d, t, {"id": "try", "type": "testexec.forbidden",
                                       "params": params})["id"])
        assert step(run, "self", "try")["error"] == error, params
    iso = host_of(d)
    assert iso["restarts"] == 0 and iso["crashes"] == 0  # refused, not killed
    with open(f"/proc/{iso['pid']}/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    if os.geteuid() == 0:  # the daemon runs as root here: its hosts run as their own user
        uid = pwd.getpwnam("opsconductor-steplib").pw_uid
        assert status["Uid"].split() == [str(uid)] * 4
    with open(f"/proc/{iso['pid']}/environ", "rb") as f:
        assert f.read() == b""  # never the daemon's environment


def test_a_missing_host_user_is_named_when_the_daemon_runs_as_root(daemon_factory):
    if os.geteuid() != 0:
        pytest.skip("a daemon that is not root starts its hosts as itself")
    d = isolated(daemon_factory, steplibs={**ISOLATED["steplibs"], "host_user": "no-such-user"})
    run = wait(d, run_steps(d, local_target(d, "self"), {"id": "p", "type": "testexec.probe"})["id"])
    assert step(run, "self", "p")["error"] == (
        "the step host of testexec 1.0.0 did not start: the step host user 'no-such-user' does "
        "not exist (scripts/deps creates it)")


def test_a_step_that_ignores_its_cancel_takes_its_host_down_and_the_next_step_runs(daemon_factory):
    d = isolated(daemon_factory)
    t = local_target(d, "self")
    run = run_steps(d, t, misbehave("spin"))
    wait_step(d, run["id"])
    cancel_and_see_the_host_killed(d, run, host_pid(d))
    # A timeout goes the same way, and an escalation we asked for is no crash.
    run = wait(d, run_steps(d, t, misbehave("spin", timeout_s=1))["id"])
    assert step(run, "self", "bad")["state"] == "timed_out"
    assert host_of(d)["crashes"] == 0
    run = wait(d, run_steps(d, t, {"id": "p", "type": "testexec.probe"})["id"])
    assert run["state"] == "succeeded", run


def test_a_host_killed_from_outside_fails_its_step_with_the_signal(daemon_factory):
    d = isolated(daemon_factory)
    t = local_target(d, "self")
    run = run_steps(d, t, {"id": "w", "type": "testexec.wait", "params": {"ms": 20000}})
    wait_step(d, run["id"])
    pid = host_pid(d)
    os.kill(pid, signal.SIGKILL)
    run = wait(d, run["id"], timeout=10)
    assert step(run, "self", "w")["error"] == "testexec 1.0.0: step wait crashed (SIGKILL)"
    assert host_of(d)["pid"] is None
    # The daemon stops its hosts with it.
    run = run_steps(d, t, {"id": "w", "type": "testexec.wait", "params": {"ms": 20000}})
    wait_step(d, run["id"])
    pid = host_pid(d)
    assert d.stop() == 0
    assert gone(pid)
    # And a daemon killed with SIGKILL leaves no host behind: the socket's end is the host's end.
    d = d.restart()
    t = local_target(d, "self2")
    run = run_steps(d, t, {"id": "w", "type": "testexec.wait", "params": {"ms": 20000}})
    wait_step(d, run["id"])
    pid = host_pid(d)
    d.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not gone(pid):
        assert time.monotonic() < deadline, "the host outlived its daemon"
        time.sleep(0.05)


def test_five_crashes_in_a_minute_quarantine_the_library_until_an_admin_enables_it(daemon_factory):
    d = isolated(daemon_factory)
    t = local_target(d, "self")
    for _ in range(5):
        run = wait(d, run_steps(d, t, {"id": "c", "type": "testexec.crash"})["id"])
        assert step(run, "self", "c")["error"] == "testexec 1.0.0: step crash crashed (SIGSEGV)"
    t0 = time.monotonic()
    run = wait(d, run_steps(d, t, {"id": "p", "type": "testexec.probe"})["id"])
    error = step(run, "self", "p")["error"]
    assert error.startswith("testexec 1.0.0 is quarantined: its step host crashed 5 times in 60 s")
    assert time.monotonic() - t0 < 3
    iso = host_of(d)
    assert iso["quarantined"] and iso["reason"] == error and iso["pid"] is None
    told = check(d.get("/api/v1/audit", params={"action": "steplib.quarantine"}), 200)["items"]
    assert [(e["actor"], e["object"], e["detail"]) for e in told] == \
        [("system", "testexec@1.0.0", error)]
    r = d.http.post(d.url("/api/v1/steplibs/testexec/1.0.0/enable"))
    assert r.status_code == 200 and r.json()["quarantined"] is False, r.text
    r = d.http.post(d.url("/api/v1/steplibs/testexec/1.0.0/enable"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_quarantined"
    audit = check(d.get("/api/v1/audit",
                        params={"action": "POST /api/v1/steplibs/{name}/{version}/enable"}), 200)
    assert [(e["object"], e["status"]) for e in audit["items"]] == \
        [("testexec@1.0.0", 409), ("testexec@1.0.0", 200)]
    run = wait(d, run_steps(d, t, {"id": "p", "type": "testexec.probe"})["id"])
    assert run["state"] == "succeeded", run


def test_uploaded_libraries_run_out_of_process_by_default_and_bundled_ones_in(daemon_factory):
    d = daemon_factory(args=("-p", TEST_STEPS))
    assert upload(d, UPLIB["1.0.0"]).status_code == 201
    assert host_of(d, "uplib")["runs"] == "process" and host_of(d, "uplib")["pid"] is None
    t = local_target(d, "self")
    run = wait(d, run_steps(d, t, {"id": "n", "type": "uplib.noop"})["id"])
    assert run["state"] == "succeeded" and step(run, "self", "n")["outputs"] == {"version": "1.0.0"}
    pid = host_of(d, "uplib")["pid"]
    assert isinstance(pid, int) and pid != d.proc.pid
    assert host_of(d)["runs"] == "in_process"
    doc = check(d.get("/api/v1/openapi.json"), 200)
    enable = doc["paths"]["/api/v1/steplibs/{name}/{version}/enable"]["post"]
    assert enable["x-required-role"] == "admin"


def put_isolation(d, name, isolation, session=None):
    return (session or d.http).put(d.url(f"/api/v1/steplibs/{name}/isolation"),
                                   json={"isolation": isolation}, timeout=10)


def probe_runs(d, t):
    run = wait(d, run_steps(d, t, {"id": "p", "type": "testexec.probe"})["id"])
    assert run["state"] == "succeeded", run
    return host_of(d)


def test_an_admin_moves_a_library_out_of_process_and_back_and_it_survives_a_restart(daemon_factory):
    d = daemon_factory(args=("-p", TEST_STEPS))
    t = local_target(d, "self")
    assert probe_runs(d, t)["runs"] == "in_process"
    r = put_isolation(d, "testexec", "process")
    assert r.status_code == 200, r.text
    lib = r.json()
    assert lib["isolation"] == "process"
    assert lib["versions"][0]["isolation"]["runs"] == "process"
    assert lib["versions"][0]["isolation"]["override"] == "process"
    # From the next step on: in a host of its own, not in the daemon.
    iso = probe_runs(d, t)
    assert iso["runs"] == "process" and isinstance(iso["pid"], int) and iso["pid"] != d.proc.pid
    pid = iso["pid"]
    # Back in process: the idle host goes, the next step runs in the daemon.
    lib = check(put_isolation(d, "testexec", "in_process"), 200)
    assert lib["isolation"] == "in_process"
    iso = lib["versions"][0]["isolation"]
    assert (iso["runs"], iso["override"], iso["restart_needed"]) == ("in_process", "in_process",
                                                                     False)
    deadline = time.monotonic() + 5
    while not gone(pid):
        assert time.monotonic() < deadline, "the idle host was not stopped"
        time.sleep(0.05)
    assert probe_runs(d, t)["pid"] is None
    # Kept in the store: a restarted daemon runs it where the admin said.
    check(put_isolation(d, "testexec", "process"), 200)
    d = d.restart()
    t = local_target(d, "self2")
    iso = probe_runs(d, t)
    assert (iso["runs"], iso["override"]) == ("process", "process") and iso["pid"] is not None
    lib = check(put_isolation(d, "testexec", "default"), 200)
    assert lib["isolation"] == "default" and lib["versions"][0]["isolation"]["override"] is None
    assert probe_runs(d, t)["runs"] == "in_process"
    audit = check(d.get("/api/v1/audit",
                        params={"action": "PUT /api/v1/steplibs/{name}/isolation"}), 200)
    assert [(e["object"], e["status"]) for e in audit["items"]] == [("testexec", 200)] * 4


def test_an_upload_is_never_forced_in_process_and_bad_requests_are_named(daemon_factory):
    d = daemon_factory(args=("-p", TEST_STEPS))
    assert upload(d, UPLIB["1.0.0"]).status_code == 201
    e = error(put_isolation(d, "uplib", "in_process"), 409, "isolation_refused", "uplib 1.0.0")
    assert e["details"] == {"field": "isolation"}
    assert host_of(d, "uplib")["override"] is None and host_of(d, "uplib")["runs"] == "process"
    e = error(put_isolation(d, "testexec", "sideways"), 400, "invalid")
    assert e["details"]["valid"] == ["default", "process", "in_process"]
    error(d.http.put(d.url("/api/v1/steplibs/testexec/isolation"),
                     json={"isolation": "process", "more": 1}, timeout=10), 400, "invalid")
    error(put_isolation(d, "nosuchlib", "process"), 404, "not_found")
    for role in ("operator", "viewer"):
        error(put_isolation(d, "testexec", "process", session=token(d, role)), 403, "forbidden")
    assert host_of(d)["override"] is None
    doc = check(d.get("/api/v1/openapi.json"), 200)
    put = doc["paths"]["/api/v1/steplibs/{name}/isolation"]["put"]
    assert put["x-required-role"] == "admin"


def test_in_process_under_always_waits_for_the_next_start(daemon_factory):
    d = isolated(daemon_factory)
    t = local_target(d, "self")
    assert probe_runs(d, t)["runs"] == "process"
    # Listed from its manifest: no code of it in the daemon until it starts again.
    iso = check(put_isolation(d, "testexec", "in_process"), 200)["versions"][0]["isolation"]
    assert (iso["runs"], iso["restart_needed"]) == ("process", True)
    assert probe_runs(d, t)["runs"] == "process"
    d = d.restart()
    iso = probe_runs(d, local_target(d, "self2"))
    assert (iso["runs"], iso["restart_needed"], iso["pid"]) == ("in_process", False, None)


def test_a_step_longer_than_three_heartbeats_keeps_its_host(daemon_factory):
    # Whoever reads the socket on either end (a step waiting for an answer, or the reader
    # threads), pings are answered while a step computes and while it waits on the daemon.
    # 500 ms beats (a host is killed after 1.5 s without an answer): with 200 ms ones a loaded
    # 2-core machine under the sanitizers once stalled past three of them.
    d = isolated(daemon_factory, steplibs={**ISOLATED["steplibs"], "host_heartbeat": "500ms"})
    t = local_target(d, "self")
    run = wait(d, run_steps(d, t,
                            {"id": "busy", "type": "testexec.wait",
                             "params": {"ms": 2500, "stubborn": True}},
                            {"id": "asleep", "type": "testexec.wait", "params": {"ms": 2500}})["id"])
    assert run["state"] == "succeeded", run
    iso = host_of(d)
    assert iso["crashes"] == 0 and iso["restarts"] == 0
