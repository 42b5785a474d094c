"""GET /api/v1/runs/{id}/events: the log and state changes live, resumable with Last-Event-ID."""
import time

from fixtures.runs import EventStream, job, local_target, shell_step, start, user_session, wait


def counting_job(d, n=40, pause=0.05):
    t = local_target(d, "self")
    return job(d, {"name": "count", "targets": {"ids": [t["id"]]},
                   "steps": [shell_step("count", f"for i in $(seq 1 {n}); do echo line $i; "
                                                 f"sleep {pause}; done"),
                             shell_step("bye", "echo bye")]})


def lines_of(events):
    return "".join(d["text"] for _, e, d in events if e == "log").splitlines()


def test_a_client_sees_the_log_and_state_changes_live_then_the_end(daemon):
    j = counting_job(daemon)
    viewer = user_session(daemon, "vic", "viewer")  # before the start: the stream must be live
    run = start(daemon, j["id"])
    events = list(EventStream(daemon, run["id"], session=viewer))
    names = [e for _, e, _ in events]
    assert names[-1] == "end" and events[-1][2]["state"] == "succeeded"
    assert "run" in names  # the snapshot once caught up
    assert lines_of(events) == [f"line {i}" for i in range(1, 41)] + ["bye"]
    ids = [i for i, _, _ in events if i is not None]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    steps = [(d["step_id"], d["state"]) for _, e, d in events if e == "step"]
    assert ("count", "succeeded") in steps and ("bye", "succeeded") in steps
    states = [d["state"] for _, e, d in events if e == "state"]
    assert states[-1] == "succeeded"


def test_a_client_resumes_after_last_event_id_without_gaps_or_repeats(daemon):
    j = counting_job(daemon, n=60, pause=0.03)
    run = start(daemon, j["id"])
    first = []
    s = EventStream(daemon, run["id"])
    for ev in s:
        first.append(ev)
        if sum(1 for _, e, _ in first if e == "log") == 10:
            break
    s.close()
    last_id = max(i for i, _, _ in first if i is not None)
    time.sleep(0.5)  # the run goes on without us
    rest = list(EventStream(daemon, run["id"], last_event_id=last_id))
    assert all(i > last_id for i, _, _ in rest if i is not None)
    assert rest[-1][1] == "end"
    assert lines_of(first) + lines_of(rest) == [f"line {i}" for i in range(1, 61)] + ["bye"]
    wait(daemon, run["id"])
    # A finished run replays what is after the id, then the run, then the end.
    tail = list(EventStream(daemon, run["id"], last_event_id=last_id))
    assert lines_of(tail) == lines_of(rest)
    assert [e for _, e, _ in tail][-2:] == ["run", "end"]
    everything = list(EventStream(daemon, run["id"]))
    assert len(lines_of(everything)) == 61
    assert daemon.get(f"/api/v1/runs/{run['id']}/events",
                      headers={"Last-Event-ID": "x"}).status_code == 400
    assert daemon.get("/api/v1/runs/01a00000-0000-7000-8000-000000000000/events"
                      ).status_code == 404
