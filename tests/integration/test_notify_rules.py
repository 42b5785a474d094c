"""Rules and message formats through the real daemon: label selector and group filters, a body
template for a webhook, Slack's 3000-character sections cut (never the structure), the Teams
MessageCard option, one message for a run failing on many targets, a schedule's missed fire and an
installed step library as notices."""
import json
import pathlib
import time

from conftest import BUILD_DIR
from fixtures.notify import FAST, channel, deliveries, rule, wait_deliveries, whsec
from fixtures.receiver import Receiver
from fixtures.runs import check, job, local_target, shell_step, start, wait

CHATTY = "for i in $(seq 1 12); do printf 'line %s %0250d\\n' $i 0; done; echo '<!channel>'; exit 3"


def test_selector_and_group_filters_pick_the_runs(daemon_factory):
    d = daemon_factory(config=FAST)
    prod = local_target(d, "prod-1", {"env": "prod"})
    dev = local_target(d, "dev-1", {"env": "dev"})
    g = check(d.http.post(d.url("/api/v1/groups"), json={"name": "web", "members": [dev["id"]]}),
              201)
    with Receiver() as rx:
        ch = channel(d, "webhook", {"url": rx.url("/sel")})
        by_label = rule(d, ["run.failed"], [ch], filter={"selector": "env=prod"})
        by_group = rule(d, ["run.failed"], [ch], filter={"group_ids": [g["id"]]})
        for t in (prod, dev):
            j = job(d, {"name": "on-" + t["name"], "targets": {"ids": [t["id"]]},
                        "steps": [shell_step("x", "exit 1")]})
            wait(d, start(d, j["id"])["id"])
        got = wait_deliveries(d, 2)
        assert len(rx.quiet_for(1)) == 2
    by_rule = {x["rule_id"]: x["payload"]["failed_targets"][0]["name"] for x in got}
    assert by_rule == {by_label["id"]: "prod-1", by_group["id"]: "dev-1"}


def test_a_body_template_replaces_the_webhooks_event_json_and_is_signed(daemon_factory):
    d = daemon_factory(config=FAST)
    key = whsec()
    with Receiver(secret=key) as rx:
        ch = channel(d, "webhook", {"url": rx.url("/itsm")}, secret_value=key)
        rule(d, ["run.failed"], [ch], template={
            "subject": "{{ job.name }} broke",
            "body": '{"short_description": {{ event.summary | json }}, "hosts": "'
                    '{% for t in failed_targets %}{{ t.name }} {% endfor %}"}'})
        t = local_target(d, "box")
        j = job(d, {"name": "ticketed", "targets": {"ids": [t["id"]]},
                    "steps": [shell_step("x", "exit 1")]})
        wait(d, start(d, j["id"])["id"])
        got = rx.wait_for(1)[0]
    assert got.verified is True
    assert got.json() == {"short_description": 'Job "ticketed" failed on 1 of 1 target(s)',
                          "hosts": "box "}


def test_slack_sections_are_cut_to_3000_and_teams_can_send_a_messagecard(daemon_factory):
    d = daemon_factory(config=FAST)
    ids = [local_target(d, f"web-{i}")["id"] for i in range(3)]
    with Receiver() as rx:
        slack = channel(d, "slack", secret_value=rx.url("/slack/x"), settings={"mention": "<!here>"})
        legacy = channel(d, "teams", {"format": "message_card"}, secret_value=rx.url("/teams/x"))
        rule(d, ["run.failed"], [slack, legacy])
        j = job(d, {"name": "chatty", "targets": {"ids": ids}, "steps": [shell_step("x", CHATTY)]})
        wait(d, start(d, j["id"])["id"])
        [s] = rx.wait_for(1, path="/slack/x")
        [t] = rx.wait_for(1, path="/teams/x")
        time.sleep(0.5)
        assert len(rx.requests) == 2  # one message per channel for three failed targets
    blocks = s.json()["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "actions", "context"]
    text = blocks[2]["text"]["text"]
    assert len(text) <= 3000 and text.startswith("<!here> ") and "cut to fit" in text
    assert text.count("```") % 2 == 0  # a code block cut open is closed again
    assert "&lt;!channel&gt;" in json.dumps(s.json()) or "<!channel>" not in text
    assert all("web-" in json.dumps(s.json()) for _ in ids)
    card = t.json()
    assert card["@type"] == "MessageCard" and card["themeColor"] == "D13438"
    assert "web-0" in card["text"] and "web-2" in card["text"]


def test_a_missed_fire_and_an_installed_step_library_are_notices(daemon_factory):
    d = daemon_factory(config=FAST)
    t = local_target(d, "sched")
    j = job(d, {"name": "long", "targets": {"ids": [t["id"]]},
                "steps": [shell_step("x", "sleep 30")]})
    with Receiver() as rx:
        ch = channel(d, "webhook", {"url": rx.url("/m")})
        rule(d, ["schedule.missed", "steplib.installed"], [ch], group_window_s=60)
        sid = check(d.http.post(d.url("/api/v1/schedules"), json={
            "job_id": j["id"], "cron": "* * * * * *", "overlap_policy": "forbid"}), 201)["id"]
        got = rx.wait_for(1, timeout=20)[0].json()
        check(d.http.post(d.url(f"/api/v1/schedules/{sid}/pause")), 200)
        assert got["event"]["name"] == "schedule.missed"
        assert got["schedule"]["id"] == sid and "overlap_policy forbid" in got["schedule"]["reason"]
        assert got["job"]["name"] == "long"
        lib = BUILD_DIR / "tests" / "plugins" / "test-uplib-1.0.0.upload"
        data = pathlib.Path(lib).read_bytes()
        import hashlib
        r = d.http.post(d.url("/api/v1/steplibs"), data=data, timeout=30,
                        headers={"Content-Type": "application/octet-stream",
                                 "X-Opsc-Sha256": hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
        installed = [x for x in rx.wait_for(2, timeout=20) if x.json()["event"]["name"]
                     == "steplib.installed"][0].json()
        assert installed["steplib"] == {"name": "uplib", "version": "1.0.0", "by": "admin"}
        for run in d.get("/api/v1/runs", params={"job": j["id"]}).json()["items"]:
            if run["state"] in ("queued", "running"):
                d.http.post(d.url(f"/api/v1/runs/{run['id']}/cancel"))


def test_a_missed_run_and_its_notice_are_one_commit(daemon_factory):
    """The notice of a missed fire is written with the missed run (not after it from the bus):
    every missed run has exactly one delivery the moment it can be read, and none is doubled."""
    d = daemon_factory(config={**FAST, "notifications": {"paused": True}})
    t = local_target(d, "sched")
    j = job(d, {"name": "long", "targets": {"ids": [t["id"]]},
                "steps": [shell_step("x", "sleep 30")]})
    ch = channel(d, "webhook", {"url": "http://127.0.0.1:9/never"}, secret_value=whsec())
    rule(d, ["schedule.missed"], [ch])
    sid = check(d.http.post(d.url("/api/v1/schedules"), json={
        "job_id": j["id"], "cron": "* * * * * *", "overlap_policy": "forbid"}), 201)["id"]
    end = time.monotonic() + 20
    while True:
        runs = d.get("/api/v1/runs", params={"job": j["id"], "state": "missed"}).json()["items"]
        pending = deliveries(d, channel=ch["id"])  # read after the runs: it holds at least theirs
        by_run = [x["payload"]["schedule"]["run_id"] for x in pending]
        assert {r["id"] for r in runs} <= set(by_run), (runs, by_run)
        assert len(by_run) == len(set(by_run)), by_run  # one notice per missed run
        if len(runs) >= 2:
            break
        assert time.monotonic() < end, runs
        time.sleep(0.2)
    check(d.http.post(d.url(f"/api/v1/schedules/{sid}/pause")), 200)
    assert all(x["state"] == "pending" and x["event"] == "schedule.missed" for x in pending)
    for run in d.get("/api/v1/runs", params={"job": j["id"]}).json()["items"]:
        if run["state"] in ("queued", "running"):
            d.http.post(d.url(f"/api/v1/runs/{run['id']}/cancel"))
