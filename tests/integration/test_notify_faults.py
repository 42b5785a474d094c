"""Delivery under faults, through the real daemon and scripted receivers: a receiver down for
three attempts, Retry-After, permanent refusals, 410 Gone disabling the channel, kill -9 before and
during a send, and a storm of 1,000 failed runs to one rate-limited Slack channel."""
import signal
import threading
import time

from fixtures.notify import API, FAST, channel, deliveries, metric, rule, wait_deliveries, whsec
from fixtures.receiver import Answer, Receiver
from fixtures.runs import check, job, local_target, shell_step, start, wait


def failing_job(d, name="broken", **kw):
    t = local_target(d, f"self-{name}")
    return job(d, dict({"name": name, "targets": {"ids": [t["id"]]},
                        "steps": [shell_step("x", "echo nope; exit 2")]}, **kw))


def test_a_receiver_down_for_three_attempts_gets_the_fourth(daemon_factory):
    d = daemon_factory(config=FAST)
    key = whsec()
    with Receiver(secret=key) as rx:
        rx.script([503, 503, 503])
        ch = channel(d, "webhook", {"url": rx.url("/w")}, secret_value=key)
        rule(d, ["run.failed"], [ch])
        run = wait(d, start(d, failing_job(d)["id"])["id"])
        got = rx.wait_for(4)
        [dl] = wait_deliveries(d, 1)
        assert dl["state"] == "delivered" and len(dl["attempts"]) == 4, dl
        assert [a["result"] for a in dl["attempts"]] == ["retry"] * 3 + ["delivered"]
        assert [a["status"] for a in dl["attempts"]] == [503, 503, 503, 200]
        assert len({g.headers["webhook-id"] for g in got}) == 1 and all(g.verified for g in got)
        assert got[3].json()["run"]["id"] == run["id"]
        assert len(rx.quiet_for(1)) == 4
    assert metric(d, "opsc_notify_deliveries_total", type="webhook", outcome="retried") == 3
    assert metric(d, "opsc_notify_deliveries_total", type="webhook", outcome="delivered") == 1


def test_retry_after_is_honoured_and_a_4xx_gives_up(daemon_factory):
    d = daemon_factory(config=FAST)
    with Receiver() as rx:
        rx.script([Answer(429, retry_after=2), Answer(drop=True)])
        ch = channel(d, "webhook", {"url": rx.url("/w")})
        j = failing_job(d)
        rule(d, ["run.failed"], [ch], filter={"job_ids": [j["id"]]})
        wait(d, start(d, j["id"])["id"])
        got = rx.wait_for(3, timeout=15)
        assert got[1].at - got[0].at >= 1.9  # not the 300 ms of the schedule
        assert wait_deliveries(d, 1)[0]["state"] == "delivered"  # after a dropped connection
        rx.script([400])
        bad = channel(d, "webhook", {"url": rx.url("/bad")})
        other = failing_job(d, "other")
        rule(d, ["run.failed"], [bad], filter={"job_ids": [other["id"]]})
        wait(d, start(d, other["id"])["id"])
        [dl] = wait_deliveries(d, 1, channel=bad["id"])
        assert dl["state"] == "gave_up" and len(dl["attempts"]) == 1
        assert dl["attempts"][0]["status"] == 400 and "HTTP 400" in dl["error"]
        assert deliveries(d, state="gave_up") == [dl]


def test_410_gone_disables_the_channel_with_an_audit_entry(daemon_factory):
    d = daemon_factory(config=FAST)
    with Receiver() as rx:
        rx.script([410])
        ch = channel(d, "webhook", {"url": rx.url("/gone")})
        rule(d, ["run.failed"], [ch])
        j = failing_job(d)
        wait(d, start(d, j["id"])["id"])
        [dl] = wait_deliveries(d, 1)
        assert dl["state"] == "gave_up" and dl["attempts"][0]["status"] == 410
        end = time.monotonic() + 10
        while d.get(f"{API}/channels/{ch['id']}").json()["enabled"]:
            assert time.monotonic() < end
            time.sleep(0.05)
        now = d.get(f"{API}/channels/{ch['id']}").json()
        assert now["disabled_reason"] == "the receiver answered 410 Gone"
        audit = d.get("/api/v1/audit", params={"action": "notification.channel.disabled"}).json()
        assert [a["object"] for a in audit["items"]] == [ch["id"]]
        wait(d, start(d, j["id"])["id"])  # a disabled channel gets nothing more
        assert len(rx.quiet_for(1)) == 1
        r = d.http.patch(d.url(f"{API}/channels/{ch['id']}"), json={"enabled": True})
        assert r.status_code == 200 and "disabled_reason" not in r.json()


def test_kill_9_before_the_send_delivers_after_restart(daemon_factory):
    paused = dict(FAST, notifications=dict(FAST["notifications"], paused="true"))
    d = daemon_factory(config=paused)
    with Receiver() as rx:
        ch = channel(d, "webhook", {"url": rx.url("/w")})
        rule(d, ["run.failed"], [ch])
        run = wait(d, start(d, failing_job(d)["id"])["id"])
        [dl] = wait_deliveries(d, 1, states=("pending",))
        d.send_signal(signal.SIGKILL)
        d.proc.wait()
        d2 = daemon_factory(config=dict(FAST, store={"data_dir": str(d.data_dir)}))
        got = rx.wait_for(1)
        assert got[0].headers["webhook-id"] == dl["id"]
        assert got[0].json()["run"]["id"] == run["id"]
        assert wait_deliveries(d2, 1)[0]["state"] == "delivered"


def test_kill_9_during_the_send_sends_again_under_the_same_webhook_id(daemon_factory):
    d = daemon_factory(config=FAST)
    with Receiver() as rx:
        rx.script([Answer(delay=30)])  # the first attempt hangs until the daemon dies
        ch = channel(d, "webhook", {"url": rx.url("/w")})
        rule(d, ["run.failed"], [ch])
        wait(d, start(d, failing_job(d)["id"])["id"])
        first = rx.wait_for(1)[0]
        d.send_signal(signal.SIGKILL)
        d.proc.wait()
        d2 = daemon_factory(config=dict(FAST, store={"data_dir": str(d.data_dir)}))
        second = rx.wait_for(2)[1]
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        [dl] = wait_deliveries(d2, 1)
        assert dl["state"] == "delivered" and dl["id"] == first.headers["webhook-id"]


def test_a_storm_of_1000_failed_runs_is_grouped_and_rate_limited_nothing_lost(daemon_factory):
    d = daemon_factory(config=FAST)
    with Receiver() as rx:
        slack = channel(d, "slack", secret_value=rx.url("/slack/T/B/storm"),
                        rate_limit={"max": 2, "per_s": 1})
        rule(d, ["run.failed"], [slack], group_window_s=1)
        # An assertion that fails on a worker thread: no process per run, so 1,000 runs take
        # seconds; runs on one target at once (allow_concurrent).
        j = failing_job(d, "storm", allow_concurrent=True, steps=[
            {"id": "up", "type": "core.assert.output", "params": {"value": "down", "equals": "up"}}])
        runs, errors = [], []

        def client(n):
            s = d.session(d.http.headers["Authorization"].split()[1])
            for _ in range(n):
                r = s.post(d.url(f"/api/v1/jobs/{j['id']}/runs"), json={}, timeout=60)
                (runs if r.status_code == 201 else errors).append(r.json().get("id", r.text))

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(250,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(runs) == 1000
        end = time.monotonic() + 60
        while True:
            done = deliveries(d)
            if sum(x["count"] for x in done if x["state"] == "delivered") == 1000:
                break
            assert time.monotonic() < end, [(x["state"], x["count"]) for x in done]
            time.sleep(0.2)
        took = time.monotonic() - t0
        got = rx.quiet_for(1)
    ids = [g.json()["blocks"][-1]["elements"][0]["text"].split()[-1] for g in got]
    assert sorted(ids) == sorted(x["id"] for x in done)  # each delivery sent once
    # Grouped: the first notice of a window at once, the rest in one at its end.
    assert len(got) <= 2 * took + 4, (len(got), took)
    counted = [x for x in done if x["count"] > 1]
    assert counted and all(x["payload"]["event"]["count"] == x["count"] for x in counted)
    times = sorted(g.at for g in got)
    for i in range(len(times) - 2):  # never more than 2 within a second (timers jitter)
        assert times[i + 2] - times[i] >= 0.8, times
    assert took < 60
    print(f"storm: 1000 runs, {len(got)} messages, {took:.1f} s")
