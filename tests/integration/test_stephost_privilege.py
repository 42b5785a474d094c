"""test_stephost_privilege.py - step hosts of a daemon that drops from root to its own user.

The daemon runs as the package runs it (started as root with [server] user = opsconductor, a
data directory that user owns): once dropped it cannot start a process as another user, so its
step hosts start through a second opsc-spawner, in step host mode, as opsconductor-steplib. A
step there must not be the daemon's user: it cannot open the master key; a crash of its host is
still named with its signal, and a cancel still kills it (the daemon cannot signal another
user's process itself: the helper does).

The steps are testexec.* (tests/exec_steps/exec_steps.c)."""
import os
import shutil
import time

import pytest

from fixtures.runs import local_target, wait, wait_step, step
from test_script_steplibs import sandbox_probe
from test_privilege import DAEMON_USER, owned_data_dir, start_ambient, uid_of
from test_stephost import ISOLATED, TEST_STEPS, cancel_and_see_the_host_killed, gone, host_of, \
    host_pid, misbehave, run_steps

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the daemon must start as root")

HOST_USER = "opsconductor-steplib"


def dropped_isolated(daemon_factory, **steplibs):
    base, data = owned_data_dir()
    d = daemon_factory({"server": {"user": DAEMON_USER}, "store": {"data_dir": str(data)},
                        "executor": {"local_targets": "operator"},
                        "steplibs": {**ISOLATED["steplibs"], **steplibs}},
                       args=("-p", TEST_STEPS))
    return d


def status_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def uids(pid):
    return [int(u) for u in status_of(pid)["Uid"].split()]


def test_a_step_runs_as_the_host_user_and_cannot_open_the_master_key(daemon_factory):
    d = dropped_isolated(daemon_factory)
    key = os.path.join(d.data_dir, "master.key")
    assert os.path.exists(key)
    run = wait(d, run_steps(d, local_target(d, "self"),
                            {"id": "who", "type": "testexec.forbidden",
                             "params": {"call": "ids", "path": key}})["id"])
    assert run["state"] == "succeeded", run
    out = step(run, "self", "who")["outputs"]
    host_uid, daemon_uid = uid_of(HOST_USER), uid_of(DAEMON_USER)
    assert out["ids"] == [host_uid, host_uid]
    assert out["open"] == "Permission denied"
    assert uids(d.proc.pid) == [daemon_uid] * 4 and daemon_uid != host_uid
    assert uids(host_of(d)["pid"]) == [host_uid] * 4
    assert "step hosts start as opsconductor-steplib" in d.stderr()


def test_a_crash_is_named_with_its_signal_and_a_cancel_kills_the_host(daemon_factory):
    d = dropped_isolated(daemon_factory)
    t = local_target(d, "self")
    run = wait(d, run_steps(d, t, misbehave("abort"))["id"])
    assert step(run, "self", "bad")["error"] == "testexec 1.0.0: step misbehave crashed (SIGABRT)"
    run = run_steps(d, t, misbehave("spin"))
    wait_step(d, run["id"])
    pid = host_pid(d)
    assert uids(pid) == [uid_of(HOST_USER)] * 4
    cancel_and_see_the_host_killed(d, run, pid)
    assert d.running()
    # The next step gets a new host, as the host user again.
    run = wait(d, run_steps(d, t, {"id": "who", "type": "testexec.forbidden",
                                   "params": {"call": "ids"}})["id"])
    assert step(run, "self", "who")["outputs"]["ids"] == [uid_of(HOST_USER)] * 2


def test_a_missing_host_user_is_named_when_the_daemon_dropped(daemon_factory):
    d = dropped_isolated(daemon_factory, host_user="no-such-user")
    run = wait(d, run_steps(d, local_target(d, "self"), {"id": "p", "type": "testexec.probe"})["id"])
    assert step(run, "self", "p")["error"] == (
        "the step host of testexec 1.0.0 did not start: the step host user 'no-such-user' does "
        "not exist (scripts/deps creates it)")
    assert "step hosts cannot start: the step host user 'no-such-user' does not exist" in d.stderr()


def test_a_script_step_runs_as_the_host_user_in_its_own_folder(daemon_factory):
    d = dropped_isolated(daemon_factory)
    out = sandbox_probe(d)
    assert out["uid"] == uid_of(HOST_USER)
    assert out["master_key"] == "refused" and out["data_dir"] == "refused"
    assert out["write_own"] == "allowed" and out["read_bundle"] == "allowed"
    # The daemon kept its folder, shared by group, so that it could remove it.
    assert not os.path.exists(out["pwd"])


def test_kill_9_of_the_daemon_leaves_no_step_host(daemon_factory):
    d = dropped_isolated(daemon_factory)
    run_steps(d, local_target(d, "self"), misbehave("spin"))
    pid = host_pid(d)
    assert uids(pid) == [uid_of(HOST_USER)] * 4
    d.proc.kill()
    d.proc.wait()
    deadline = time.monotonic() + 5
    while not gone(pid):  # its socket and its helper's closed: it ended, or was killed
        assert time.monotonic() < deadline, "the step host outlived the daemon"
        time.sleep(0.05)


@pytest.fixture
def ambient_isolated():
    """The daemon as the packaged unit starts it: the opsconductor user with ambient CAP_SETUID
    and CAP_SETGID, which it gives up once its helpers run."""
    d, base = start_ambient({"steplibs": ISOLATED["steplibs"]}, ("-p", TEST_STEPS))
    yield d
    assert d.stop() == 0
    shutil.rmtree(base, ignore_errors=True)


def test_the_packaged_units_daemon_starts_its_hosts_as_the_host_user(ambient_isolated):
    d = ambient_isolated
    key = os.path.join(d.data_dir, "master.key")
    run = wait(d, run_steps(d, local_target(d, "self"),
                            {"id": "who", "type": "testexec.forbidden",
                             "params": {"call": "ids", "path": key}})["id"])
    assert run["state"] == "succeeded", run
    out = step(run, "self", "who")["outputs"]
    assert out["ids"] == [uid_of(HOST_USER)] * 2 and out["open"] == "Permission denied"
    assert int(status_of(host_of(d)["pid"])["CapEff"], 16) == 0


def test_the_packaged_units_daemon_runs_a_script_step_as_the_host_user(ambient_isolated):
    out = sandbox_probe(ambient_isolated)
    assert out["uid"] == uid_of(HOST_USER) and out["master_key"] == "refused"
    assert out["write_own"] == "allowed" and not os.path.exists(out["pwd"])
