"""Runs over SSH on the sshd fixture: a job on a group with outputs between steps, quoting
attacks, an imperative step through the pooled connection, cancel that leaves no remote process,
a target that cannot connect, and a retry of the failed targets."""
import os
import re
import time

import pytest

from conftest import BUILD_DIR
from fixtures import sshd
from fixtures.fleet import create, credential, group, ssh_target
from fixtures.runs import (check, job, log_text, shell_step, start, step, target_state, wait,
                           wait_step)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sshd fixture needs root")
TEST_STEPS = str(BUILD_DIR / "tests" / "exec_steps")


@pytest.fixture
def server(tmp_path):
    with sshd.SSHD(str(tmp_path / "sshd")) as facts:
        yield facts


def metrics(d):
    """{'name{labels}': value} of /metrics."""
    text = d.get("/metrics").text
    return {m[1]: float(m[2]) for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def ssh_fleet(d, server, n, **kw):
    cred = credential(d, server)
    ids = [create(d, ssh_target(f"node-{i}", server, cred, host_key_policy="tofu",
                                labels={"fleet": "lab", "n": str(i)}, **kw))["id"]
           for i in range(n)]
    return cred, ids


def test_a_job_runs_on_a_group_over_ssh_and_passes_outputs(daemon_factory, server):
    d = daemon_factory(args=("-p", TEST_STEPS))
    _, ids = ssh_fleet(d, server, 4)
    g = group(d, name="lab", selector="fleet=lab")
    j = job(d, {"name": "ssh-chain", "targets": {"groups": [g["id"]]},
                "parameters": [{"name": "v", "default": "'; touch /tmp/opsc-pwned #"}],
                "steps": [shell_step("who", "echo OPSC_OUTPUT user=$(id -un); "
                                            "echo node {{ target.labels.n }}"),
                          shell_step("use", "printf '%s|%s' {{ steps.who.outputs.user }} "
                                            "{{ params.v }}"),
                          {"id": "mem", "type": "linux.facts.memory"},
                          {"id": "probe", "type": "testexec.probe",
                           "params": {"command": "hostname; echo to-stderr >&2"}}]})
    run = wait(d, start(d, j["id"])["id"], timeout=90)
    assert run["state"] == "succeeded", run
    assert len(run["targets"]) == 4
    for i in range(4):
        name = f"node-{i}"
        assert step(run, name, "who")["outputs"]["user"] == server["user"]
        assert step(run, name, "use")["outputs"]["stdout"] == \
            f"{server['user']}|'; touch /tmp/opsc-pwned #"
        assert step(run, name, "mem")["outputs"]["total_kb"] > 0
        assert step(run, name, "probe")["outputs"]["exit"] == 0
        text = log_text(d, run["id"], target=name)
        assert f"node {i}\n" in text and "to-stderr" in text
    assert not os.path.exists("/tmp/opsc-pwned")


def remote_sleepers(user, tag):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            status = open(f"/proc/{p}/status").read()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if cmd[:2] == [b"sleep", tag.encode()] and uid == int(os.popen(f"id -u {user}").read()):
            pids.append(int(p))
    return pids


def test_cancel_over_ssh_leaves_no_remote_process(daemon, server):
    _, ids = ssh_fleet(daemon, server, 2)
    tag = str(600 + os.getpid() % 1000)  # a sleep only this test starts
    j = job(daemon, {"name": "long", "targets": {"ids": ids},
                     "steps": [shell_step("s", f"echo started; sleep {tag}")]})
    run = start(daemon, j["id"])
    wait_step(daemon, run["id"])
    end = time.monotonic() + 15
    while len(remote_sleepers(server["user"], tag)) < 2:
        assert time.monotonic() < end, "the remote sleeps never started"
        time.sleep(0.05)
    m = metrics(daemon)  # while it runs
    assert (m["opsc_runs_active"], m["opsc_targets_running"], m["opsc_targets_queued"]) == (1, 2, 0)
    assert m['opsc_connections_open{transport="ssh"}'] == 2
    check(daemon.http.post(daemon.url(f"/api/v1/runs/{run['id']}/cancel")), 202)
    run = wait(daemon, run["id"], timeout=20)
    assert run["state"] == "cancelled"
    assert {t["state"] for t in run["targets"]} == {"cancelled"}
    m = metrics(daemon)
    assert m['opsc_runs_finished_total{trigger="api",outcome="cancelled"}'] == 1
    assert m['opsc_targets_finished_total{outcome="cancelled"}'] == 2
    assert (m["opsc_runs_active"], m["opsc_targets_running"]) == (0, 0)
    end = time.monotonic() + 10
    while remote_sleepers(server["user"], tag):
        assert time.monotonic() < end, f"left behind: {remote_sleepers(server['user'], tag)}"
        time.sleep(0.1)


def test_a_target_that_cannot_connect_fails_alone_and_is_retried(daemon, server):
    cred, ids = ssh_fleet(daemon, server, 2)
    wrong = check(daemon.http.post(daemon.url("/api/v1/credentials"), json={
        "name": "wrong", "type": "ssh_password", "username": server["user"],
        "password": "not-the-password"}), 201)
    bad = create(daemon, ssh_target("bad", server, wrong, host_key_policy="tofu"))
    j = job(daemon, {"name": "hello", "targets": {"ids": ids + [bad["id"]]},
                     "steps": [shell_step("s", "echo hello from $(hostname)")]})
    run = wait(daemon, start(daemon, j["id"])["id"], timeout=90)
    assert run["state"] == "failed"
    assert target_state(run, "node-0") == "succeeded" and target_state(run, "node-1") == "succeeded"
    assert target_state(run, "bad") == "failed"
    err = step(run, "bad", "s")["error"]
    assert err.startswith("cannot connect to bad:") and "not-the-password" not in err
    r = daemon.request("PATCH", f"/api/v1/targets/{bad['id']}", json={"credential_id": cred["id"]})
    assert r.status_code == 200, r.text
    again = check(daemon.http.post(daemon.url(f"/api/v1/runs/{run['id']}/retry")), 201)
    assert [t["name"] for t in again["targets"]] == ["bad"]
    again = wait(daemon, again["id"], timeout=60)
    assert again["state"] == "succeeded", again
    m = metrics(daemon)
    assert m['opsc_runs_started_total{trigger="api"}'] == m['opsc_runs_started_total{trigger="retry"}'] == 1
    assert m['opsc_runs_finished_total{trigger="api",outcome="failed"}'] == 1
    assert m['opsc_runs_finished_total{trigger="retry",outcome="succeeded"}'] == 1
    assert m['opsc_targets_finished_total{outcome="succeeded"}'] == 3
    assert m['opsc_targets_finished_total{outcome="failed"}'] == 1
    assert m['opsc_steps_finished_total{outcome="succeeded"}'] == 3
    assert m['opsc_connect_failures_total{transport="ssh",reason="EAUTH"}'] == 1
    assert m['opsc_connections_opened_total{transport="ssh"}'] == 3
    assert m["opsc_run_duration_seconds_count"] == 2
    assert m['opsc_steps_finished_total{outcome="failed"}'] == 1  # bad's, not connected
    assert m["opsc_step_duration_seconds_count"] == 4
    assert m["opsc_log_bytes_written_total"] >= 3 * len("hello from x\n")
