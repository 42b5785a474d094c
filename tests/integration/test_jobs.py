"""Jobs over the REST API: define, validate (errors with step, field, position), version, export
and import by name between two daemons, delete; roles."""
from fixtures.runs import check, job, local_target, shell_step, start, user_session, wait


def deploy_body(target_ids=(), **kw):
    body = {
        "name": "deploy",
        "description": "restart nginx after a config change",
        "parameters": [{"name": "service", "default": "nginx", "pattern": "^[a-z0-9-]+$"},
                       {"name": "mode", "type": "choice", "choices": ["safe", "fast"],
                        "default": "safe"}],
        "targets": {"ids": list(target_ids)},
        "steps": [shell_step("check", "echo OPSC_OUTPUT changed=true"),
                  {"id": "restart", "type": "linux.service.restart@1",
                   "params": {"name": "{{ params.service }}"},
                   "when": "steps.check.outputs.changed == true"}],
    }
    body.update(kw)
    return body


def test_a_job_is_created_read_listed_and_deleted(daemon):
    j = job(daemon, deploy_body())
    assert j["version"] == 1 and j["created_by"] == "admin"
    assert j["steps"][1]["on_failure"] == "stop" and j["steps"][0]["retries"] == 0
    r = daemon.get(f"/api/v1/jobs/{j['id']}")
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    assert check(daemon.get("/api/v1/jobs/deploy"), 200)["id"] == j["id"]  # by name
    items = check(daemon.get("/api/v1/jobs", params={"name": "depl"}), 200)["items"]
    assert [i["name"] for i in items] == ["deploy"]
    e = job(daemon, deploy_body(), status=409)
    assert "a job named 'deploy' exists" in e["error"]["message"]
    assert daemon.request("DELETE", f"/api/v1/jobs/{j['id']}").status_code == 204
    assert daemon.get(f"/api/v1/jobs/{j['id']}").status_code == 404


def test_validation_errors_name_step_field_and_position(daemon):
    body = deploy_body(steps=[
        shell_step("a", "echo {{ params.servise }}"),
        {"id": "b", "type": "core.wait.port", "params": {"host": "x", "port": "http"}},
        {"id": "c", "type": "linux.nosuch"},
        shell_step("d", "true", when="steps.later.outputs.x == 1"),
        shell_step("later", "echo \"{{ params.service }}\""),
        shell_step("again", "true", idempotent="yes"),
    ])
    e = job(daemon, body, status=400)["error"]
    assert e["code"] == "invalid_job"
    errors = {(x.get("step"), x.get("field")): x for x in e["details"]["errors"]}
    assert errors[("a", "params.command")]["position"] == "1:9"
    assert "servise" in errors[("a", "params.command")]["message"]
    assert "integer" in errors[("b", "params.port")]["message"]
    assert errors[("b", "params.port")]["path"] == "/steps/1/params/port"
    assert "no step type" in errors[("c", "type")]["message"] or \
        "nosuch" in errors[("c", "type")]["message"]
    assert "'later' is not an earlier step" in errors[("d", "when")]["message"]
    assert errors[("later", "params.command")]["position"] == "1:7"  # inside quotes
    assert "idempotent must be true or false" in errors[("again", "idempotent")]["message"]
    assert e["message"].startswith("step 'a' params.command 1:9")
    e = job(daemon, deploy_body(targets={"selector": "env in (prod"}), status=400)["error"]
    assert e["details"]["errors"][0]["field"] == "targets"
    assert "targets.selector" in e["details"]["errors"][0]["message"]
    # An empty parameter name once spun the loop forever (found by fuzz_job).
    e = job(daemon, {"name": "empty", "steps": [{"id": "s", "type": "core.shell.command",
                                                  "params": {"command": "true", "": 1}}]},
            status=400)["error"]
    assert e["details"]["errors"][0]["field"].startswith("params")
    assert daemon.get("/health").status_code == 200


def test_every_update_is_a_version_and_old_ones_stay_readable(daemon):
    j = job(daemon, deploy_body())
    r = daemon.request("PATCH", f"/api/v1/jobs/{j['id']}", json={"description": "v2"},
                       headers={"If-Match": '"1"'})
    assert check(r, 200)["version"] == 2
    r = daemon.request("PATCH", f"/api/v1/jobs/{j['id']}", json={"description": "stale"},
                       headers={"If-Match": '"1"'})
    assert r.status_code == 412
    check(daemon.request("PATCH", f"/api/v1/jobs/{j['id']}", json={"max_parallel": 5}), 200)
    versions = check(daemon.get(f"/api/v1/jobs/{j['id']}/versions"), 200)["items"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    v1 = check(daemon.get(f"/api/v1/jobs/{j['id']}/versions/1"), 200)
    assert v1["description"] == "restart nginx after a config change"
    page = check(daemon.get(f"/api/v1/jobs/{j['id']}/versions", params={"limit": 1}), 200)
    assert page["next_cursor"] == "3"
    page = check(daemon.get(f"/api/v1/jobs/{j['id']}/versions",
                            params={"limit": 2, "cursor": page["next_cursor"]}), 200)
    assert [v["version"] for v in page["items"]] == [2, 1]
    assert daemon.get(f"/api/v1/jobs/{j['id']}/versions/9").status_code == 404


def test_runs_record_the_version_they_ran(daemon):
    t = local_target(daemon, "self")
    j = job(daemon, {"name": "v", "targets": {"ids": [t["id"]]},
                     "steps": [shell_step("s", "echo one")]})
    check(daemon.request("PATCH", f"/api/v1/jobs/{j['id']}",
                         json={"steps": [shell_step("s", "echo two")]}), 200)
    new = wait(daemon, start(daemon, j["id"])["id"])
    old = wait(daemon, start(daemon, j["id"], job_version=1)["id"])
    assert new["job_version"] == 2 and old["job_version"] == 1
    assert new["targets"][0]["steps"][0]["outputs"]["stdout"] == "two"
    assert old["targets"][0]["steps"][0]["outputs"]["stdout"] == "one"


def test_export_and_import_move_a_job_between_installations(daemon_factory):
    a, b = daemon_factory(), daemon_factory()
    for d in (a, b):
        local_target(d, "web1")
        local_target(d, "web2")
        check(d.http.post(d.url("/api/v1/credentials"),
                          json={"name": "api-token", "type": "secret", "value": "x-123"}), 201)
    ta = {t["name"]: t["id"] for t in check(a.get("/api/v1/targets"), 200)["items"]}
    g = check(a.http.post(a.url("/api/v1/groups"), json={"name": "webs", "members": [ta["web2"]]}),
              201)
    check(b.http.post(b.url("/api/v1/groups"), json={"name": "webs"}), 201)
    body = deploy_body([ta["web1"]])
    body["targets"]["groups"] = [g["id"]]
    body["parameters"].append({"name": "token", "type": "secret", "default": "api-token"})
    j = job(a, body)
    doc = check(a.get(f"/api/v1/jobs/{j['id']}/export"), 200)
    assert doc["format"] == "opsconductor.job/1"
    assert doc["job"]["targets"] == {"names": ["web1"], "groups": ["webs"]}
    assert "id" not in doc["job"] and "version" not in doc["job"]
    imported = check(b.http.post(b.url("/api/v1/jobs/import"), json=doc), 201)
    tb = {t["name"]: t["id"] for t in check(b.get("/api/v1/targets"), 200)["items"]}
    gb = check(b.get("/api/v1/groups"), 200)["items"][0]["id"]
    assert imported["targets"]["ids"] == [tb["web1"]]
    assert imported["targets"]["groups"] == [gb]
    assert imported["steps"] == j["steps"]
    e = check(b.http.post(b.url("/api/v1/jobs/import"), json=doc), 409)
    assert "replace=true" in e["error"]["message"]
    again = check(b.http.post(b.url("/api/v1/jobs/import?replace=true"), json=doc), 200)
    assert again["version"] == 2
    doc["job"]["targets"]["names"].append("db9")
    e = check(b.http.post(b.url("/api/v1/jobs/import?replace=true"), json=doc), 400)
    assert "no target named 'db9'" in e["error"]["message"]


def test_viewers_read_jobs_but_cannot_change_or_run_them(daemon_factory):
    # Operators run this job on a local target: that is theirs when the appliance says so.
    daemon = daemon_factory(config={"executor": {"local_targets": "operator"}})
    t = local_target(daemon, "self")
    j = job(daemon, {"name": "harmless", "targets": {"ids": [t["id"]]},
                     "steps": [shell_step("s", "true")]})
    viewer = user_session(daemon, "vera", "viewer")
    operator = user_session(daemon, "otto", "operator")
    assert viewer.get(daemon.url(f"/api/v1/jobs/{j['id']}")).status_code == 200
    assert viewer.post(daemon.url("/api/v1/jobs"), json=deploy_body()).status_code == 403
    assert viewer.post(daemon.url(f"/api/v1/jobs/{j['id']}/runs"), json={}).status_code == 403
    assert viewer.request("PATCH", daemon.url(f"/api/v1/jobs/{j['id']}"),
                          json={"description": "x"}).status_code == 403
    run = start(daemon, j["id"], session=operator)
    assert run["triggered_by"] == "otto"
    assert viewer.get(daemon.url(f"/api/v1/runs/{run['id']}")).status_code == 200
    assert viewer.post(daemon.url(f"/api/v1/runs/{run['id']}/cancel")).status_code == 403
    wait(daemon, run["id"])
