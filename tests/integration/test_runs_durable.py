"""test_runs_durable.py - a 201 for a new run means the run is stored, even when the daemon is
killed with SIGKILL in the middle of a load of POSTs (new runs are committed together, once per
loop turn: group commit must not answer before its commit).

OPSC_TEST_DURABLE_SECONDS (default 1.5) is how long the clients post before the kill.
"""
import os
import signal
import threading
import time

import requests

from test_schedules import make_job

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out", "interrupted"}


def concurrent_job(d):
    job = make_job(d)
    r = d.http.patch(d.url(f"/api/v1/jobs/{job}"), json={"allow_concurrent": True}, timeout=10)
    assert r.status_code == 200, r.text
    return job


def post_until_refused(d, job, acked, stop):
    """POST runs back to back; every id answered 201 goes to `acked`."""
    s = requests.Session()
    s.headers.update(d.http.headers)
    while not stop.is_set():
        try:
            r = s.post(d.url(f"/api/v1/jobs/{job}/runs"), json={}, timeout=10)
        except requests.RequestException:
            return  # killed: whatever was not answered was not acknowledged
        if r.status_code != 201:
            return
        acked.append(r.json()["id"])


def stored_runs(d, job):
    out, cursor = {}, None
    while True:
        q = f"/api/v1/runs?job={job}&limit=500" + (f"&cursor={cursor}" if cursor else "")
        r = d.get(q)
        assert r.status_code == 200, r.text
        page = r.json()
        out.update({run["id"]: run["state"] for run in page["items"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def test_no_acknowledged_run_is_lost_when_the_daemon_is_killed_under_load(daemon_factory):
    d = daemon_factory()
    job = concurrent_job(d)
    acked, stop = [], threading.Event()
    clients = [threading.Thread(target=post_until_refused, args=(d, job, acked, stop))
               for _ in range(8)]
    for c in clients:
        c.start()
    time.sleep(float(os.environ.get("OPSC_TEST_DURABLE_SECONDS", "1.5")))
    d.send_signal(signal.SIGKILL)  # while the clients are still posting
    d.proc.wait(10)
    stop.set()
    for c in clients:
        c.join(15)
    assert len(acked) >= 20, f"only {len(acked)} runs acknowledged before the kill: no load"

    d2 = d.restart()
    stored = stored_runs(d2, job)
    lost = [i for i in acked if i not in stored]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged runs are not stored: {lost[:5]}"
    # The runs the kill interrupted were recovered as ended, not left active.
    deadline = time.monotonic() + 30
    while any(s not in TERMINAL for s in stored.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
        stored = stored_runs(d2, job)
    assert all(s in TERMINAL for s in stored.values()), \
        {s for s in stored.values() if s not in TERMINAL}
