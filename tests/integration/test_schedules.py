"""test_schedules.py - the schedules API and cron preview on the real daemon.

Previews show the DST rule in the zones the issue names; bad cron text and
unknown zones answer 400 naming the field (and the cron field and column);
roles apply. Tests that need a job to point at create one through
POST /api/v1/jobs and skip while the daemon has no jobs API (the executor,
branch room/exec, has not been merged yet).
"""
import pytest


def preview(daemon, **body):
    r = daemon.http.post(daemon.url("/api/v1/cron/preview"), json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["times"]


def test_preview_berlin_spring_forward_and_fall_back(daemon):
    t = preview(daemon, cron="30 2 * * *", timezone="Europe/Berlin",
                **{"from": "2025-03-29T00:00:00Z", "count": 3})
    assert [x["local"] for x in t] == ["2025-03-29T02:30:00+01:00", "2025-03-30T03:00:00+02:00",
                                       "2025-03-31T02:30:00+02:00"]
    assert t[1]["utc"] == "2025-03-30T01:00:00Z"
    assert "did not exist" in t[1]["note"]
    t = preview(daemon, cron="30 2 * * *", timezone="Europe/Berlin",
                **{"from": "2025-10-26T00:00:00Z", "count": 2})
    assert t[0]["utc"] == "2025-10-26T00:30:00Z"  # the first 02:30, CEST; never the second
    assert t[0]["local"] == "2025-10-26T02:30:00+02:00"
    assert "fires once, at the first occurrence" in t[0]["note"]
    assert t[1]["utc"] == "2025-10-27T01:30:00Z"


def test_preview_lord_howe_half_hour_shift(daemon):
    t = preview(daemon, cron="0 2 * * *", timezone="Australia/Lord_Howe",
                **{"from": "2025-10-04T00:00:00Z", "count": 2})
    assert t[0]["local"] == "2025-10-05T02:30:00+11:00"  # 02:00 skipped: the end of the gap
    assert t[0]["utc"] == "2025-10-04T15:30:00Z"
    assert t[1]["local"] == "2025-10-06T02:00:00+11:00"
    t = preview(daemon, cron="*/30 1 * * *", timezone="Australia/Lord_Howe",
                **{"from": "2025-04-05T14:00:00Z", "count": 3})
    assert [x["local"] for x in t] == ["2025-04-06T01:00:00+11:00", "2025-04-06T01:30:00+11:00",
                                       "2025-04-06T01:30:00+10:30"]  # wildcard: both passes


def test_preview_santiago_midnight_gap(daemon):
    t = preview(daemon, cron="0 0 * * *", timezone="America/Santiago",
                **{"from": "2025-09-06T12:00:00Z", "count": 2})
    assert t[0]["local"] == "2025-09-07T01:00:00-03:00"
    assert t[0]["utc"] == "2025-09-07T04:00:00Z"
    assert t[1]["local"] == "2025-09-08T00:00:00-03:00"


def test_preview_apia_skipped_day(daemon):
    t = preview(daemon, cron="0 12 * * *", timezone="Pacific/Apia",
                **{"from": "2011-12-29T00:00:00Z", "count": 2})
    assert [x["local"] for x in t] == ["2011-12-29T12:00:00-10:00", "2011-12-31T12:00:00+14:00"]


def test_preview_kathmandu_quarter_hour_offset(daemon):
    t = preview(daemon, cron="45 5 * * *", timezone="Asia/Kathmandu",
                **{"from": "2025-06-01T00:00:00Z", "count": 1})
    assert t[0] == {"utc": "2025-06-01T00:00:00Z", "local": "2025-06-01T05:45:00+05:45",
                    "abbr": "+0545"}


def test_preview_six_fields_and_defaults(daemon):
    t = preview(daemon, cron="*/2 * * * * *", **{"from": "2025-01-01T00:00:01Z", "count": 3})
    assert [x["utc"] for x in t] == ["2025-01-01T00:00:02Z", "2025-01-01T00:00:04Z",
                                     "2025-01-01T00:00:06Z"]
    assert len(preview(daemon, cron="@hourly")) == 10


@pytest.mark.parametrize("body, field, code, text", [
    ({"cron": "0 24 * * *"}, "cron", "invalid_cron", "hour: value 24 out of range 0-23 at column 3"),
    ({"cron": "0 0 * * MON-FRI-SAT"}, "cron", "invalid_cron", "day-of-week"),
    ({"cron": "* * * * *", "timezone": "Europe/Nowhere"}, "timezone", "invalid_timezone",
     "unknown time zone 'Europe/Nowhere'"),
    ({"cron": "* * * * *", "count": 0}, "count", "bad_request", "count"),
    ({"cron": "* * * * *", "from": "yesterday"}, "from", "bad_request", "RFC 3339"),
    ({"cron": "* * * * *", "zone": "UTC"}, "zone", "bad_request", "unknown field"),
])
def test_preview_errors_name_the_field(daemon, body, field, code, text):
    r = daemon.http.post(daemon.url("/api/v1/cron/preview"), json=body, timeout=10)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["details"]["field"] == field
    assert text in err["message"]


def test_schedule_with_bad_cron_or_zone_is_a_400(daemon):
    job = "0190a0a0-0000-7000-8000-000000000000"
    r = daemon.http.post(daemon.url("/api/v1/schedules"), timeout=10,
                         json={"job_id": job, "cron": "61 * * * *"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cron"
    assert "minute: value 61 out of range 0-59 at column 1" in r.json()["error"]["message"]
    r = daemon.http.post(daemon.url("/api/v1/schedules"), timeout=10,
                         json={"job_id": job, "cron": "* * * * *", "timezone": "Moon/Tranquility"})
    assert r.status_code == 400
    assert r.json()["error"]["details"] == {"field": "timezone"}
    r = daemon.http.post(daemon.url("/api/v1/schedules"), timeout=10,
                         json={"job_id": job, "cron": "* * * * *"})
    assert r.status_code == 400
    assert r.json()["error"]["details"] == {"field": "job_id"}


def test_viewers_preview_and_read_but_do_not_write(daemon):
    r = daemon.http.post(daemon.url("/api/v1/tokens"), json={"name": "v", "role": "viewer"})
    assert r.status_code == 201, r.text
    viewer = daemon.session(r.json()["token"])
    r = viewer.post(daemon.url("/api/v1/cron/preview"), json={"cron": "@daily"}, timeout=10)
    assert r.status_code == 200
    assert viewer.get(daemon.url("/api/v1/schedules"), timeout=10).json()["items"] == []
    r = viewer.post(daemon.url("/api/v1/schedules"), json={"job_id": "x", "cron": "@daily"},
                    timeout=10)
    assert r.status_code == 403
    r = daemon.session().post(daemon.url("/api/v1/cron/preview"), json={"cron": "@daily"},
                              timeout=10)
    assert r.status_code == 401


def test_the_openapi_document_describes_schedules(daemon):
    doc = daemon.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/schedules", "/api/v1/schedules/{id}", "/api/v1/schedules/{id}/pause",
                 "/api/v1/schedules/{id}/resume", "/api/v1/schedules/{id}/next",
                 "/api/v1/cron/preview"):
        assert path in doc["paths"], path


# ---- with a job (needs the jobs API of the executor) --------------------------------------------

def require_jobs_api(daemon):
    r = daemon.get("/api/v1/jobs")
    if r.status_code == 404:
        pytest.skip("needs GET/POST /api/v1/jobs: the executor (branch room/exec) is not merged "
                    "into this build yet")


def make_job(daemon, command="true"):
    require_jobs_api(daemon)
    r = daemon.http.post(daemon.url("/api/v1/targets"), timeout=10, json={
        "name": "local-" + command.replace(" ", "-"), "address": "localhost", "transport": "local",
        "os_family": "linux"})
    assert r.status_code == 201, r.text
    target = r.json()["id"]
    r = daemon.http.post(daemon.url("/api/v1/jobs"), timeout=10, json={
        "name": "sched-" + command.replace(" ", "-"), "targets": {"ids": [target]},
        "steps": [{"id": "s1", "name": "run", "type": "core.shell.command",
                   "params": {"command": command}}]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_schedule_crud_pause_resume_and_next(daemon):
    job = make_job(daemon)
    r = daemon.http.post(daemon.url("/api/v1/schedules"), timeout=10, json={
        "job_id": job, "cron": "0 3 * * *", "timezone": "Europe/Berlin",
        "description": "nightly"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert r.headers["Location"] == "/api/v1/schedules/" + s["id"]
    assert s["misfire_policy"] == "run_once" and s["overlap_policy"] == "forbid"
    assert s["status"]["next_fire_at"]
    base = "/api/v1/schedules/" + s["id"]
    r = daemon.request("PATCH", base, json={"cron": "0 4 * * *"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = daemon.request("PATCH", base, json={"cron": "0 5 * * *"}, headers={"If-Match": '"1"'})
    assert r.status_code == 412
    r = daemon.request("POST", base + "/pause")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert daemon.get(base + "/next?count=3").json()["times"] == []
    assert daemon.request("POST", base + "/resume").json()["enabled"] is True
    times = daemon.get(base + "/next?count=3").json()["times"]
    assert len(times) == 3 and all(t["local"][11:19] == "04:00:00" for t in times)
    assert daemon.request("DELETE", base).status_code == 204
    assert daemon.get(base).status_code == 404


def test_scheduler_metrics_are_exported(daemon):
    text = daemon.get("/metrics").text
    for name in ("opsc_scheduler_schedules 0", "opsc_scheduler_fires_total 0",
                 "opsc_scheduler_missed_total 0", "opsc_scheduler_clock_jumps_total 0"):
        assert name in text, name


def test_the_scheduler_section_is_validated(run_daemon):
    r = run_daemon(config={"scheduler": {"misfire_grace": "2h", "run_all_max": "0"}})
    assert r.returncode != 0
    assert "[scheduler] run_all_max" in r.stderr
    r = run_daemon(config={"scheduler": {"grace": "2h"}})
    assert r.returncode != 0
    assert "[scheduler] grace: unknown key" in r.stderr and "misfire_grace" in r.stderr
