"""Inbound webhooks through the real daemon: Standard Webhooks, GitHub and GitLab signatures made
by Python's hmac, parameters from the body and the query, a filter, and every refusal (bad or
missing signature, old timestamp, replayed id, non-JSON or oversized body, disabled hook) a 4xx
that starts nothing and says nothing about which check failed, audited without the body."""
import json
import time

from fixtures.notify import secret, whsec
from fixtures.receiver import sign_github, sign_standard
from fixtures.runs import check, job, local_target, shell_step, wait

import requests


def deploy_job(d):
    t = local_target(d, "self")
    return job(d, {"name": "deploy", "targets": {"ids": [t["id"]]},
                   "parameters": [{"name": "ref", "required": True},
                                  {"name": "repo", "default": "none"},
                                  {"name": "env", "default": "dev"}],
                   "steps": [shell_step("x", "echo {{ params.repo }} {{ params.ref }} "
                                             "{{ params.env }}")]})


def hook(d, j, verify, key, **kw):
    body = {"name": f"hook-{verify}-{time.monotonic_ns()}", "job_id": j["id"], "verify": verify,
            "credential_id": secret(d, key),
            "params": {"ref": "body.ref", "repo": "body.repository.full_name",
                       "env": "query.env"}}
    body.update(kw)
    return check(d.http.post(d.url("/api/v1/hooks"), json=body), 201)


def trigger(d, h, body, headers, query=""):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(d.url(h["trigger_path"]) + query, data=raw, timeout=30,
                         headers=dict({"Content-Type": "application/json"}, **headers))


def runs_of(d, j):
    return d.get("/api/v1/runs", params={"job": j["id"]}).json()["items"]


PUSH = {"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}, "token": "tok"}


def test_standard_webhooks_start_a_run_with_mapped_params(daemon):
    j = deploy_job(daemon)
    key = whsec()
    h = hook(daemon, j, "standard", key)
    assert h["trigger_path"] == f"/api/v1/hooks/{h['id']}/trigger" and "value" not in h
    raw = json.dumps(PUSH).encode()
    r = trigger(daemon, h, raw, sign_standard(key, raw, "msg_1"), "?env=prod")
    assert r.status_code == 202, r.text
    run = wait(daemon, r.json()["run_id"])
    assert run["state"] == "succeeded" and run["params"] == {
        "ref": "refs/heads/main", "repo": "acme/shop", "env": "prod"}
    assert run["triggered_by"] == "hook:" + h["name"]
    # The same message again is a replay, whatever its signature says.
    assert trigger(daemon, h, raw, sign_standard(key, raw, "msg_1")).status_code == 401
    assert len(runs_of(daemon, j)) == 1


def test_every_refusal_is_a_bare_4xx_that_starts_nothing(daemon):
    j = deploy_job(daemon)
    key = whsec()
    h = hook(daemon, j, "standard", key)
    raw = json.dumps(PUSH).encode()
    cases = [
        ({}, 401),                                                  # no signature
        (sign_standard(whsec(), raw, "m2"), 401),                   # another key
        (sign_standard(key, raw + b" ", "m3"), 401),                # the body changed
        (sign_standard(key, raw, "m4", ts=int(time.time()) - 3600), 401),  # an old timestamp
        (dict(sign_standard(key, raw, "m5"), **{"webhook-signature": "v1,AAAA"}), 401),
    ]
    for headers, status in cases:
        r = trigger(daemon, h, raw, headers)
        assert r.status_code == status, (headers, r.text)
        assert r.json()["error"]["message"] == "the request was refused"  # no detail
    bad = b"not json"
    r = trigger(daemon, h, bad, sign_standard(key, bad, "m6"))
    assert r.status_code == 400 and "JSON object" in r.text
    big = b'{"ref": "' + b"x" * (1 << 20) + b'"}'
    assert trigger(daemon, h, big, sign_standard(key, big, "m7")).status_code == 413
    assert requests.post(daemon.url("/api/v1/hooks/nope/trigger"), json={},
                         timeout=10).status_code == 404
    r = daemon.http.patch(daemon.url(f"/api/v1/hooks/{h['id']}"), json={"enabled": False})
    assert r.status_code == 200
    assert trigger(daemon, h, raw, sign_standard(key, raw, "m8")).status_code == 403
    assert runs_of(daemon, j) == []
    audit = daemon.get("/api/v1/audit", params={"action": "hook.trigger", "limit": 100}).json()
    details = [a["detail"] for a in audit["items"]]
    assert any("outside the tolerance" in x for x in details), details
    assert any("does not match" in x for x in details)
    assert any("disabled" in x for x in details)
    assert key not in json.dumps(audit) and "refs/heads" not in json.dumps(audit)


def test_github_signatures_and_a_filter_on_the_branch(daemon):
    j = deploy_job(daemon)
    key = "gh-secret-" + "k" * 20
    h = hook(daemon, j, "github", key, filter={"path": "ref", "equals": "refs/heads/main"})
    raw = json.dumps(PUSH).encode()
    headers = dict(sign_github(key, raw), **{"X-GitHub-Delivery": "d-1"})
    r = trigger(daemon, h, raw, headers)
    assert r.status_code == 202, r.text
    assert wait(daemon, r.json()["run_id"])["params"]["repo"] == "acme/shop"
    assert trigger(daemon, h, raw, headers).status_code == 401  # the same delivery id
    other = json.dumps(dict(PUSH, ref="refs/heads/feature")).encode()
    r = trigger(daemon, h, other, dict(sign_github(key, other), **{"X-GitHub-Delivery": "d-2"}))
    assert r.status_code == 200 and r.json()["run_id"] is None
    r = trigger(daemon, h, raw, dict(sign_github("wrong", raw), **{"X-GitHub-Delivery": "d-3"}))
    assert r.status_code == 401
    assert len(runs_of(daemon, j)) == 1


def test_gitlab_and_bearer_tokens(daemon):
    j = deploy_job(daemon)
    gl = hook(daemon, j, "gitlab", "gl-token-123456")
    tok = hook(daemon, j, "token", "bearer-token-987654")
    raw = json.dumps(PUSH).encode()
    assert trigger(daemon, gl, raw, {"X-Gitlab-Token": "gl-token-123456"}).status_code == 202
    assert trigger(daemon, gl, raw, {"X-Gitlab-Token": "gl-token-12345"}).status_code == 401
    assert trigger(daemon, tok, raw,
                   {"Authorization": "Bearer bearer-token-987654"}).status_code == 202
    assert trigger(daemon, tok, raw, {"Authorization": "Bearer nope"}).status_code == 401
    # A job parameter the body lacks is the run's error, told to the (authenticated) caller.
    r = trigger(daemon, tok, b"{}", {"Authorization": "Bearer bearer-token-987654"})
    assert r.status_code == 400 and "ref" in r.text
    assert len(runs_of(daemon, j)) == 2


def test_hooks_are_validated(daemon):
    j = deploy_job(daemon)
    cred = secret(daemon, "x" * 20)
    bad = [({"verify": "hmac"}, "verify"), ({"params": {"ref": "header.x"}}, "params.ref"),
           ({"job_id": "nope"}, "job_id"), ({"filter": {"path": "ref"}}, "filter.equals"),
           ({"tolerance_s": 0}, "tolerance_s")]
    for change, field in bad:
        body = dict({"name": "h", "job_id": j["id"], "credential_id": cred}, **change)
        r = daemon.http.post(daemon.url("/api/v1/hooks"), json=body)
        assert r.status_code == 400, (change, r.text)
        assert r.json()["error"]["details"]["field"] == field, (change, r.text)
