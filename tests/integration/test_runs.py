"""Runs on the local transport through the real daemon: outputs between steps, `when`, quoting
attacks, timeouts, cancel, retries, partial failure, logs, secrets, dry runs, lists."""
import os
import signal
import time
import uuid

import pytest

from conftest import BUILD_DIR
from fixtures.runs import (check, get_run, job, local_target, log_items, log_text, shell_step,
                           start, step, target_state, wait, wait_step)

TEST_STEPS = str(BUILD_DIR / "tests" / "exec_steps")


def test_a_multi_step_job_passes_outputs_and_when_decides(daemon):
    t = local_target(daemon, "self", {"env": "test"})
    j = job(daemon, {
        "name": "chain", "targets": {"ids": [t["id"]]},
        "parameters": [{"name": "greeting", "default": "hello"}],
        "steps": [
            shell_step("facts", "echo OPSC_OUTPUT port=8443; echo OPSC_OUTPUT changed=false; "
                                "echo '{\"ok\": true}'"),
            shell_step("use", "echo {{ params.greeting }} {{ target.labels.env }} "
                              "{{ steps.facts.outputs.port }}"),
            shell_step("never", "false", when="steps.facts.outputs.changed == true"),
            shell_step("wait", "true", when="steps.use.outputs.stdout == 'hello test 8443'"),
            {"id": "probe", "type": "core.wait.port",
             "params": {"host": "127.0.0.1", "port": daemon.port, "timeout_s": 5}},
        ]})
    run = wait(daemon, start(daemon, j["id"])["id"])
    assert run["state"] == "succeeded", run
    assert step(run, "self", "facts")["outputs"]["port"] == 8443
    assert step(run, "self", "use")["outputs"]["stdout"] == "hello test 8443"
    assert step(run, "self", "never")["state"] == "skipped"
    assert step(run, "self", "wait")["state"] == "succeeded"
    assert step(run, "self", "probe")["state"] == "succeeded"  # an imperative core step
    s = step(run, "self", "use")
    assert s["exit_code"] == 0 and s["started_at"] <= s["finished_at"] and s["attempts"] == 1
    assert "hello test 8443\n" in log_text(daemon, run["id"])


ATTACKS = ["'; touch {m} #", "$(touch {m})", "`touch {m}`", "x\ntouch {m}", "\"; touch {m}; \"",
           "a' 'b; touch {m}", "$(touch {m}); & {{touch {m}}}", "\\'; touch {m}"]


def test_parameters_with_quoting_attacks_arrive_as_literal_text(daemon, local_tmp):
    t = local_target(daemon, "self")
    marker = local_tmp / "pwned"
    j = job(daemon, {"name": "q", "targets": {"ids": [t["id"]]},
                     "parameters": [{"name": "v", "required": True}],
                     "steps": [shell_step("p", "printf '%s' {{ params.v }}"),
                               {"id": "svc", "type": "core.shell.command",
                                "params": {"command": "printf '%s' \"$V\"",
                                           "env": {"V": "{{ params.v }}"}}}]})
    for attack in ATTACKS:
        value = attack.format(m=marker)
        run = wait(daemon, start(daemon, j["id"], params={"v": value})["id"])
        assert run["state"] == "succeeded", run
        assert step(run, "self", "p")["outputs"]["stdout"] == value.strip()
        assert step(run, "self", "svc")["outputs"]["stdout"] == value.strip()
        assert not marker.exists(), f"{value!r} ran a command"
        assert run["params"]["v"] == value


def test_a_sleeping_step_times_out_and_the_run_timeout_stops_the_rest(daemon):
    t = local_target(daemon, "self")
    j = job(daemon, {"name": "slow", "targets": {"ids": [t["id"]]},
                     "steps": [shell_step("nap", "sleep 60", timeout_s=1),
                               shell_step("after", "true")]})
    t0 = time.monotonic()
    run = wait(daemon, start(daemon, j["id"])["id"])
    assert time.monotonic() - t0 < 10
    assert run["state"] == "failed" and target_state(run, "self") == "timed_out"
    assert step(run, "self", "nap")["state"] == "timed_out"
    assert "timeout of 1 s" in step(run, "self", "nap")["error"]
    assert step(run, "self", "after")["state"] == "skipped"
    j = job(daemon, {"name": "slower", "timeout_s": 1, "targets": {"ids": [t["id"]]},
                     "steps": [shell_step("nap", "sleep 60")]})
    run = wait(daemon, start(daemon, j["id"])["id"])
    assert run["state"] == "timed_out" and "timeout of 1 s" in run["reason"]


def sleepers(tag):
    """pids of `sleep 600` processes started by this test (tagged by their environment)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            env = open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            continue
        if cmd[:2] == [b"sleep", b"600"] and f"OPSC_TEST_TAG={tag}".encode() in env:
            pids.append(int(pid))
    return pids


def test_cancel_stops_a_running_sleep_600_and_leaves_no_process(daemon):
    t = local_target(daemon, "self")
    tag = f"cancel-{os.getpid()}-{time.monotonic_ns()}"
    j = job(daemon, {"name": "long", "targets": {"ids": [t["id"]]},
                     "steps": [{"id": "s", "type": "core.shell.command",
                                "params": {"command": "echo started; sleep 600",
                                           "env": {"OPSC_TEST_TAG": tag}}}]})
    run = start(daemon, j["id"])
    wait_step(daemon, run["id"])
    end = time.monotonic() + 10
    while not sleepers(tag):
        assert time.monotonic() < end, "sleep 600 never started"
        time.sleep(0.05)
    r = check(daemon.http.post(daemon.url(f"/api/v1/runs/{run['id']}/cancel")), 202)
    assert r["id"] == run["id"]
    run = wait(daemon, run["id"], timeout=15)
    assert run["state"] == "cancelled" and run["reason"] == "cancelled by admin"
    assert step(run, "self", "s")["state"] == "cancelled"
    end = time.monotonic() + 5
    while sleepers(tag):
        assert time.monotonic() < end, f"left behind: {sleepers(tag)}"
        time.sleep(0.05)
    e = check(daemon.http.post(daemon.url(f"/api/v1/runs/{run['id']}/cancel")), 409)
    assert "already ended" in e["error"]["message"]
    assert daemon.http.post(daemon.url("/api/v1/runs/01a00000-0000-7000-8000-000000000000/cancel")
                            ).status_code == 404


def test_retries_partial_failure_and_a_retry_of_the_failed_targets(daemon, local_tmp):
    flag = local_tmp / "fixed"
    counter = local_tmp / "count"
    ok = local_target(daemon, "ok", {"healthy": "yes"})
    bad = local_target(daemon, "bad", {"healthy": "no"})
    j = job(daemon, {"name": "flaky", "targets": {"ids": [ok["id"], bad["id"]]},
                     "steps": [shell_step("flaky", f"echo x >> {counter}.{{{{ target.name }}}}; "
                                                   f"test $(wc -l < {counter}.{{{{ target.name }}}})"
                                                   " -ge 2", retries=2, retry_delay_s=0),
                               shell_step("health", "test {{ target.labels.healthy }} = yes "
                                                    f"|| test -e {flag}")]})
    run = wait(daemon, start(daemon, j["id"])["id"])
    assert run["state"] == "failed"
    assert target_state(run, "ok") == "succeeded" and target_state(run, "bad") == "failed"
    assert step(run, "ok", "flaky")["attempts"] == 2
    assert step(run, "bad", "health")["error"] == "exit code 1"
    assert run["counts"] == {"succeeded": 1, "failed": 1}
    assert "attempt 1 of 3 failed: exit code 1" in log_text(daemon, run["id"], target="ok")
    flag.write_text("")
    again = check(daemon.http.post(daemon.url(f"/api/v1/runs/{run['id']}/retry")), 201)
    assert again["retry_of"] == run["id"] and again["job_version"] == run["job_version"]
    assert [t["name"] for t in again["targets"]] == ["bad"]
    again = wait(daemon, again["id"])
    assert again["state"] == "succeeded"
    e = check(daemon.http.post(daemon.url(f"/api/v1/runs/{again['id']}/retry")), 409)
    assert "nothing to retry" in e["error"]["message"]


def test_the_log_is_paged_per_target_with_streams_and_timestamps(daemon):
    a, b = local_target(daemon, "a"), local_target(daemon, "b")
    j = job(daemon, {"name": "talk", "allow_concurrent": True,
                     "targets": {"ids": [a["id"], b["id"]]},
                     "steps": [shell_step("s", "for i in $(seq 1 300); do echo out $i; "
                                               "echo err $i >&2; done")]})
    run = wait(daemon, start(daemon, j["id"])["id"])
    items = log_items(daemon, run["id"], target="a")
    assert {i["target_id"] for i in items} == {a["id"]}
    out = "".join(i["text"] for i in items if i["stream"] == "stdout")
    err = "".join(i["text"] for i in items if i["stream"] == "stderr")
    assert out.splitlines() == [f"out {i}" for i in range(1, 301)]
    assert err.splitlines() == [f"err {i}" for i in range(1, 301)]
    assert all(i["ts"].endswith("Z") and i["step_id"] == "s" for i in items)
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs)
    page = check(daemon.get(f"/api/v1/runs/{run['id']}/log", params={"limit": 3}), 200)
    assert len(page["items"]) == 3 and page["next_cursor"]
    stderr_only = log_items(daemon, run["id"], target="b", stream="stderr")
    assert stderr_only and {i["stream"] for i in stderr_only} == {"stderr"}
    text = check(daemon.get(f"/api/v1/runs/{run['id']}/log",
                            params={"target": "b", "format": "text", "limit": 5}), 200)
    assert text.count("\n") >= 5 and " b stdout: out 1\n" in text
    assert daemon.get(f"/api/v1/runs/{run['id']}/log", params={"target": "zz"}).status_code == 404


def test_runs_are_listed_newest_first_with_filters_and_paging(daemon):
    t1, t2 = local_target(daemon, "one"), local_target(daemon, "two")
    ok = job(daemon, {"name": "ok", "targets": {"ids": [t1["id"]]},
                      "steps": [shell_step("s", "true")]})
    ko = job(daemon, {"name": "ko", "targets": {"ids": [t2["id"]]},
                      "steps": [shell_step("s", "false")]})
    ids = []
    for jb in (ok, ko, ok, ko, ok):
        ids.append(wait(daemon, start(daemon, jb["id"])["id"])["id"])
    listed = check(daemon.get("/api/v1/runs"), 200)["items"]
    assert [r["id"] for r in listed[:5]] == ids[::-1]
    assert "targets" not in listed[0]
    by_job = check(daemon.get("/api/v1/runs", params={"job": "ok"}), 200)["items"]
    assert [r["id"] for r in by_job] == [ids[4], ids[2], ids[0]]
    failed = check(daemon.get("/api/v1/runs", params={"state": "failed"}), 200)["items"]
    assert [r["id"] for r in failed] == [ids[3], ids[1]]
    by_target = check(daemon.get("/api/v1/runs", params={"target": "two"}), 200)["items"]
    assert [r["id"] for r in by_target] == [ids[3], ids[1]]
    page = check(daemon.get("/api/v1/runs", params={"limit": 2}), 200)
    assert [r["id"] for r in page["items"]] == [ids[4], ids[3]]
    page = check(daemon.get("/api/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]}),
                 200)
    assert [r["id"] for r in page["items"]] == [ids[2], ids[1]]
    mid = get_run(daemon, ids[2])["created_at"]
    since = check(daemon.get("/api/v1/runs", params={"since": mid}), 200)["items"]
    assert [r["id"] for r in since] == ids[2:][::-1]
    until = check(daemon.get("/api/v1/runs", params={"until": mid}), 200)["items"]
    assert [r["id"] for r in until] == ids[:3][::-1]
    assert daemon.get("/api/v1/runs", params={"since": "yesterday"}).status_code == 400


def test_secret_parameters_are_resolved_and_redacted(daemon):
    check(daemon.http.post(daemon.url("/api/v1/credentials"),
                           json={"name": "db-pass", "type": "secret", "value": "Hunter2-'x'"}),
          201)
    t = local_target(daemon, "self")
    j = job(daemon, {"name": "sec", "targets": {"ids": [t["id"]]},
                     "parameters": [{"name": "pw", "type": "secret", "required": True}],
                     "steps": [shell_step("use", "echo the password is {{ params.pw }}; "
                                                 "test {{ params.pw }} = \"Hunter2-'x'\"")]})
    run = wait(daemon, start(daemon, j["id"], params={"pw": "db-pass"})["id"])
    assert run["state"] == "succeeded", run
    assert run["params"] == {"pw": "db-pass"}
    assert step(run, "self", "use")["outputs"]["stdout"] == "the password is ********"
    assert "Hunter2" not in log_text(daemon, run["id"])
    dry = check(daemon.http.post(daemon.url(f"/api/v1/jobs/{j['id']}/runs"),
                                 json={"dry_run": True, "params": {"pw": "db-pass"}}), 200)
    assert "Hunter2" not in str(dry) and "********" in dry["targets"][0]["steps"][0]["command"]
    e = start(daemon, j["id"], status=400, params={"pw": "nope"})
    assert "no credential 'nope'" in e["error"]["message"]


def test_dry_run_renders_commands_per_target_and_runs_nothing(daemon, local_tmp):
    t = local_target(daemon, "web", {"env": "prod"})
    marker = local_tmp / "ran"
    j = job(daemon, {"name": "dry", "targets": {"ids": [t["id"]]},
                     "parameters": [{"name": "unit", "default": "nginx"}],
                     "steps": [{"id": "r", "type": "linux.service.restart",
                                "params": {"name": "{{ params.unit }}-{{ target.labels.env }}"}},
                               shell_step("touch", f"touch {marker}")]})
    d = check(daemon.http.post(daemon.url(f"/api/v1/jobs/{j['id']}/runs"),
                               json={"dry_run": True, "params": {"unit": "web"}}), 200)
    assert d["dry_run"] is True
    cmd = d["targets"][0]["steps"][0]["command"]
    assert "'web-prod'" in cmd and "systemctl" in cmd
    assert d["targets"][0]["steps"][1]["command"].endswith(f"touch {marker}\n")
    assert not marker.exists()
    assert check(daemon.get("/api/v1/runs"), 200)["items"] == []


def test_refusals_before_the_run(daemon):
    lin = local_target(daemon, "lin")
    cred = check(daemon.http.post(daemon.url("/api/v1/credentials"),
                                  json={"name": "w", "type": "winrm", "username": "u",
                                        "password": "p", "auth": "ntlm"}), 201)
    win = check(daemon.http.post(daemon.url("/api/v1/targets"), json={
        "name": "win", "address": "127.0.0.1", "port": 1, "transport": "winrm",
        "os_family": "windows", "credential_id": cred["id"]}), 201)
    j = job(daemon, {"name": "svc", "targets": {"ids": [lin["id"], win["id"]]},
                     "parameters": [{"name": "n", "type": "int", "required": True}],
                     "steps": [{"id": "r", "type": "linux.service.status",
                                "params": {"name": "x"}}]})
    e = start(daemon, j["id"], status=400)["error"]
    assert e["code"] == "invalid_run" and "params.n" in e["message"]
    e = start(daemon, j["id"], status=400, params={"n": 1})["error"]
    assert "step 'r' (linux.service.status) cannot run on target 'win'" in e["message"]
    e = start(daemon, j["id"], status=400, params={"n": 1}, targets={"ids": []})["error"]
    assert "no target" in e["message"]
    assert start(daemon, "nosuch", status=404)["error"]["message"] == "no job 'nosuch'"
    check(daemon.request("PATCH", f"/api/v1/targets/{lin['id']}", json={"enabled": False}), 200)
    e = start(daemon, j["id"], status=400, params={"n": 1}, targets={"ids": [lin["id"]]})["error"]
    assert "enabled" in e["message"]


def test_sigkill_mid_run_leaves_it_interrupted_and_new_runs_work(daemon):
    t = local_target(daemon, "self")
    # the run after the restart finds the marker and does not sleep (/tmp: the local user sees it)
    marker = f"/tmp/opsc-killme-{uuid.uuid4().hex}"
    j = job(daemon, {"name": "killme", "targets": {"ids": [t["id"]]},
                     "steps": [shell_step("first", "echo before"),
                               shell_step("long", f"echo long; [ -e {marker} ] || sleep 30")]})
    done = wait(daemon, start(daemon, j["id"], status=201)["id"], timeout=5,
                states={"running"})
    wait_step(daemon, done["id"])
    time.sleep(0.3)
    daemon.send_signal(signal.SIGKILL)
    daemon.proc.wait()
    d2 = daemon.restart()
    run = get_run(d2, done["id"])
    assert run["state"] == "interrupted"
    assert "the daemon stopped while the run was running" in run["reason"]
    assert step(run, "self", "first")["state"] == "succeeded"
    assert step(run, "self", "long")["state"] == "interrupted"
    assert "before\n" in log_text(d2, run["id"])
    assert "interrupted" in d2.stderr()
    open(marker, "w").close()
    try:
        again = wait(d2, start(d2, j["id"])["id"], timeout=60)
    finally:
        os.unlink(marker)
    assert again["state"] == "succeeded"
    listed = check(d2.get("/api/v1/runs", params={"job": "killme"}), 200)["items"]
    assert [r["id"] for r in listed] == [again["id"], run["id"]]


def test_sigterm_lets_running_steps_finish_then_interrupts_the_rest(daemon_factory):
    d = daemon_factory({"server": {"shutdown_timeout": "3s"}})
    t = local_target(d, "self")
    short = job(d, {"name": "short", "allow_concurrent": True, "targets": {"ids": [t["id"]]},
                    "steps": [shell_step("s", "sleep 1; echo done")]})
    long_ = job(d, {"name": "long", "allow_concurrent": True, "targets": {"ids": [t["id"]]},
                    "steps": [shell_step("s", "sleep 60")]})
    r1, r2 = start(d, short["id"]), start(d, long_["id"])
    wait_step(d, r1["id"])
    wait_step(d, r2["id"])
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 10
    d2 = d.restart()
    assert get_run(d2, r1["id"])["state"] == "succeeded"
    r2 = get_run(d2, r2["id"])
    assert r2["state"] == "interrupted" and "stopped" in r2["reason"]


def test_broken_step_libraries_are_refused_or_reported(daemon_factory):
    d = daemon_factory(args=("-p", TEST_STEPS, "-p", str(BUILD_DIR / "tests" / "plugins")))
    plugins = {p["name"]: p for p in check(d.get("/api/v1/plugins"), 200)["items"]}
    assert plugins["test-broken-steplib"]["state"] == "refused"
    assert "step library broken 1.0.0: broken.typo: posix_template 1:" in d.stderr()
    assert "unknown parameter 'nmae'" in d.stderr()
    assert plugins["steplib-badschema"]["state"] == "refused"
    assert "badschema.typo: params_schema: schema /properties/port: unknown type 'integr'" \
        in d.stderr()
    e = job(d, {"name": "b", "steps": [{"id": "x", "type": "broken.typo"}]}, status=400)
    assert "no step library 'broken'" in e["error"]["message"]
    t = local_target(d, "self")
    j = job(d, {"name": "imp", "targets": {"ids": [t["id"]]},
                "steps": [{"id": "why", "type": "testexec.fail", "params": {"why": "on fire"},
                           "on_failure": "continue"},
                          {"id": "bare", "type": "testexec.fail", "params": {"bare": True}}]})
    run = wait(d, start(d, j["id"])["id"])
    assert step(run, "self", "why")["error"] == "the widget is on fire"
    assert step(run, "self", "bare")["error"] == "the step failed: input/output error"


@pytest.mark.parametrize("isolation", ["never", "always"])
def test_outputs_are_held_to_the_step_types_outputs_schema_declarative_or_not(daemon_factory,
                                                                               isolation):
    d = daemon_factory({"steplibs": {"isolation": isolation}}, args=("-p", TEST_STEPS))
    t = local_target(d, "self")
    steps = [{"id": f"{kind}_{name}", "type": f"testexec.{kind}", "params": {"value": value},
              "on_failure": "continue"}
             for kind in ("typed", "typed_decl") for name, value in (("ok", "5"), ("bad", '"five"'))]
    steps += [{"id": "badkey", "type": "testexec.typed", "params": {"key": "Bad-Key", "value": "1"},
               "on_failure": "continue"},
              {"id": "notjson", "type": "testexec.typed", "params": {"value": "{five"},
               "on_failure": "continue"}]
    j = job(d, {"name": "typed", "targets": {"ids": [t["id"]]}, "steps": steps})
    run = wait(d, start(d, j["id"])["id"])
    for kind in ("typed", "typed_decl"):
        ok, bad = step(run, "self", f"{kind}_ok"), step(run, "self", f"{kind}_bad")
        assert ok["state"] == "succeeded" and ok["outputs"]["n"] == 5, ok
        assert bad["state"] == "failed", bad
        assert bad["error"].startswith("the step's outputs do not match its type's "
                                       "outputs_schema: outputs/n must be an integer, not string"), bad
    assert step(run, "self", "badkey")["error"] == \
        "step_set_output: output key 'Bad-Key' must be 1 to 64 of [a-z0-9_]"
    assert step(run, "self", "notjson")["error"].startswith(
        "step_set_output: the value of output 'n' is not JSON text: ")


def test_a_step_library_that_crashes_fails_its_step_and_the_daemon_keeps_serving(daemon_factory):
    # Out of process (opsc-stephost): the SIGSEGV ends the library's host, not the daemon.
    d = daemon_factory({"steplibs": {"isolation": "always"}}, args=("-p", TEST_STEPS))
    t = local_target(d, "self")
    j = job(d, {"name": "crash", "allow_concurrent": True, "targets": {"ids": [t["id"]]},
                "steps": [shell_step("before", "echo before"),
                          {"id": "boom", "type": "testexec.crash"}]})
    run = wait(d, start(d, j["id"])["id"])
    assert d.running()
    assert run["state"] == "failed"
    assert step(run, "self", "before")["state"] == "succeeded"
    boom = step(run, "self", "boom")
    assert boom["state"] == "failed"
    assert boom["error"] == "testexec 1.0.0: step crash crashed (SIGSEGV)", boom
    # The next step of the library gets a new host and the whole step API.
    p = job(d, {"name": "probe", "targets": {"ids": [t["id"]]},
                "steps": [{"id": "p", "type": "testexec.probe", "params": {"command": "echo hi"}}]})
    run = wait(d, start(d, p["id"])["id"])
    assert run["state"] == "succeeded", run
    outputs = step(run, "self", "p")["outputs"]
    assert outputs["exit"] == 0 and outputs["out_len"] == 3 and outputs["quoted"] == "'it'\\''s'"
    assert "probing self" in log_text(d, run["id"])
