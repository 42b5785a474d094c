"""test_schedules_e2e.py - schedules firing real runs on the local transport in a running daemon.

A 6-field "*/2 * * * * *" schedule produces a run every two seconds; a
daemon stopped across fire times and restarted applies skip / run_once /
run_all (capped); a run still running at the next fire meets each overlap
policy. Every test here needs the executor (branch room/exec: the jobs and
runs API, exec.h's functions): while the daemon has none they skip, naming
it. (They passed against a trial merge of the executor's branch
exec-with-fleet at b9cb4fd.)
"""
import time

import pytest

from test_schedules import make_job

SCHED_CONFIG = {"scheduler": {"misfire_threshold": "500ms", "run_all_max": "2",
                              "misfire_grace": "1h"}}


@pytest.fixture
def sdaemon(daemon_factory):
    d = daemon_factory(config=SCHED_CONFIG)
    if d.get("/api/v1/runs").status_code == 404:
        pytest.skip("needs the executor (branch room/exec: /api/v1/runs, exec_run_start): not "
                    "merged into this build yet")
    return d


def create(d, job, cron, **kw):
    r = d.http.post(d.url("/api/v1/schedules"), json=dict(job_id=job, cron=cron, **kw), timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def runs_of(d, schedule_id):
    out, cursor = [], None
    while True:
        q = "/api/v1/runs?limit=500&schedule_id=" + schedule_id + (f"&cursor={cursor}" if cursor else "")
        page = d.get(q).json()
        out += [r for r in page["items"] if r.get("schedule_id") == schedule_id]
        cursor = page.get("next_cursor")
        if not cursor:
            return sorted(out, key=lambda r: (r["planned_at"], r["id"]))


def reason(run):
    return run.get("reason") or run.get("error") or ""


def wait_for(pred, timeout=20, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def epoch(rfc):
    from datetime import datetime
    return datetime.fromisoformat(rfc.replace("Z", "+00:00")).timestamp()


def test_every_two_seconds_produces_runs_every_two_seconds(sdaemon):
    job = make_job(sdaemon, "true")
    sid = create(sdaemon, job, "*/2 * * * * *", overlap_policy="allow", overlap_limit=5)
    runs = wait_for(lambda: [r for r in runs_of(sdaemon, sid) if r["state"] != "missed"][:4]
                    if len(runs_of(sdaemon, sid)) >= 4 else None, timeout=15)
    assert runs and len(runs) == 4
    planned = [epoch(r["planned_at"]) for r in runs]
    assert all(int(p) % 2 == 0 for p in planned)
    assert [b - a for a, b in zip(planned, planned[1:])] == [2.0, 2.0, 2.0]
    for r in runs:
        assert epoch(r["created_at"]) - epoch(r["planned_at"]) < 0.5
    done = wait_for(lambda: all(r["state"] == "succeeded" for r in runs_of(sdaemon, sid)[:4]))
    assert done


@pytest.mark.parametrize("policy, started, missed", [
    ("skip", 0, 4), ("run_once", 1, 4), ("run_all", 2, 3)])
def test_a_restart_applies_the_misfire_policy(sdaemon, policy, started, missed):
    job = make_job(sdaemon, "true")
    sid = create(sdaemon, job, "*/2 * * * * *", misfire_policy=policy, overlap_policy="allow")
    wait_for(lambda: len(runs_of(sdaemon, sid)) >= 1)
    assert sdaemon.stop() == 0
    t_stop = time.time()
    time.sleep(11)  # five or six fires while stopped
    t_start = time.time()
    d2 = sdaemon.restart()
    time.sleep(0.5)
    after = [r for r in runs_of(d2, sid) if epoch(r["planned_at"]) > t_stop]
    missed_runs = [r for r in after if r["state"] == "missed"]
    assert len(missed_runs) >= missed, after
    # The misses are recorded when the restarted scheduler plans: that is its "now". A slow
    # (sanitizer) start moves it seconds past t_start, and a fire within misfire_threshold
    # (500 ms) of it is on time, not late: it runs whatever the policy, and run_once then
    # has no late fire to run. So count what ran among every fire up to that "now".
    now = min(epoch(r["created_at"]) for r in missed_runs)
    due = [r for r in after if epoch(r["planned_at"]) <= now]
    ran = [r["state"] != "missed" for r in due]
    if policy == "skip":  # nothing late runs; only a fire on time can
        assert sum(ran) <= 1 and (not ran[-1] or now - epoch(due[-1]["planned_at"]) < 0.6), due
    elif policy == "run_once":
        assert sum(ran) == 1, due
    else:
        assert sum(ran) in (started, started + 1), due
    # What ran is the latest: every earlier fire was recorded as missed, none lost.
    assert ran == sorted(ran), due
    gaps = [epoch(b["planned_at"]) - epoch(a["planned_at"]) for a, b in zip(due, due[1:])]
    assert all(g == 2.0 for g in gaps), due
    assert all("daemon was not running" in reason(r)
               for r in missed_runs if epoch(r["planned_at"]) < t_start)


ACTIVE = ("queued", "running")


@pytest.mark.parametrize("policy", ["forbid", "allow", "replace", "queue"])
def test_a_run_still_running_at_the_next_fire(sdaemon, policy):
    job = make_job(sdaemon, "sleep 60")
    sid = create(sdaemon, job, "*/2 * * * * *", overlap_policy=policy, overlap_limit=2)
    time.sleep(9.5)  # four or five fires (queue needs one past its two), the first still sleeping
    assert sdaemon.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    runs = runs_of(sdaemon, sid)
    active = [r for r in runs if r["state"] in ACTIVE]
    missed = [reason(r) for r in runs if r["state"] == "missed"]
    status = sdaemon.get("/api/v1/schedules/" + sid).json()["status"]
    try:
        assert len(runs) >= 3, runs
        if policy == "forbid":
            assert len(active) == 1
            assert missed and all("overlap_policy forbid" in m for m in missed)
        elif policy == "allow":
            assert len(active) == 2  # running, or queued by the executor's own limits
            assert missed and all("overlap_policy allow, up to 2" in m for m in missed)
        elif policy == "replace":
            assert len(active) == 1
            assert sum(r["state"] == "cancelled" for r in runs) >= 2
            assert not missed
        else:
            assert len(active) == 1
            assert status["queued"] == [] and status["active_runs"] == 1  # pause drops them...
            assert sum("while this fire waited" in m for m in missed) == 2  # ...as missed runs
            assert any("overlap_policy queue, up to 2" in m for m in missed)
    finally:
        for r in active:
            sdaemon.request("POST", f"/api/v1/runs/{r['id']}/cancel")
