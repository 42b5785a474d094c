"""Notification channels and rules through the real daemon: validation by the notifiers, test
messages to a real SMTP server (aiosmtpd, STARTTLS with a throw-away CA, AUTH) and to HTTP
receivers that check signatures themselves, template errors at save time, secrets that never
come back, the SDK's example notifier delivering, /metrics."""
import json
import os
import pathlib

import pytest

from fixtures.identity import Recorder, find_leaks
from fixtures.notify import API, FAST, channel, deliveries, metric, rule, secret, wait_deliveries, whsec
from fixtures.receiver import Receiver
from fixtures.runs import check, job, local_target, shell_step, start, wait
from fixtures.sdk import build_example, install_tree
from fixtures.smtp import SMTPServer, make_ca

# aiosmtpd counts only STARTTLS as TLS: its warning about AUTH on an implicit-TLS port is moot.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def test_channels_are_checked_by_their_notifier(daemon):
    r = daemon.http.post(daemon.url(API + "/channels"), json={"name": "x", "type": "pager"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["details"]["field"] == "type"
    assert "unknown notifier 'pager'" in err["message"] and "slack" in err["message"]
    for settings, field in [({"url": "ftp://example.test/x"}, "settings"), ({}, "settings.url"),
                            ({"url": "http://x", "method": "GET"}, "settings.method"),
                            ({"url": "http://x", "headers": {"webhook-id": "1"}}, "settings"),
                            ({"url": "http://x", "tls_fingerprint": "abc"}, "settings")]:
        r = daemon.http.post(daemon.url(API + "/channels"),
                             json={"name": "w", "type": "webhook", "settings": settings})
        assert r.status_code == 400, (settings, r.text)
        assert r.json()["error"]["details"]["field"] == field, (settings, r.text)
    # Slack's URL is the secret: a channel without a credential, or with a key, is refused.
    r = daemon.http.post(daemon.url(API + "/channels"), json={"name": "s", "type": "slack"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "credential_id"
    key = check(daemon.http.post(daemon.url("/api/v1/credentials"), json={
        "name": "pw", "type": "ssh_password", "username": "u", "password": "p-1"}), 201)
    r = daemon.http.post(daemon.url(API + "/channels"), json={
        "name": "s", "type": "slack", "credential_id": key["id"]})
    assert r.status_code == 400 and "type secret" in r.json()["error"]["message"]
    r = daemon.http.post(daemon.url(API + "/channels"), json={
        "name": "e", "type": "email", "settings": {"url": "smtp://h:587", "from": "nobody"}})
    assert r.status_code == 400 and "settings.from" in r.json()["error"]["message"]
    ch = channel(daemon, "slack", secret_value="https://hooks.slack.com/services/T/B/X")
    assert ch["rate_limit"] == {"max": 1, "per_s": 1}  # Slack's own limit, by default
    assert ch["settings"] == {"timeout_s": 15} and "value" not in json.dumps(ch)
    assert daemon.get(API + "/channels").json()["items"][0]["id"] == ch["id"]


def test_rules_name_the_field_and_position_of_a_template_error(daemon):
    ch = channel(daemon, "webhook", {"url": "http://127.0.0.1:9/x"})
    r = rule(daemon, ["run.failed"], [ch], status=400,
             template={"subject": "ok {{ run.id }}", "text": "line\n{{ run.id | nosuch }}"})
    err = r["error"]
    assert err["details"]["field"] == "template.text"
    assert "2:" in err["message"] and "nosuch" in err["message"], err
    r = rule(daemon, ["run.failed"], [ch], status=400, template={"body": "{% if %}"})
    assert r["error"]["details"]["field"] == "template.body"
    r = rule(daemon, ["run.failed"], [ch], status=400, template={"subject": "{{ params.x }}"})
    assert "unknown variable 'params'" in r["error"]["message"]
    assert rule(daemon, ["run.exploded"], [ch], status=400)["error"]["details"]["field"] \
        == "events.0"
    assert rule(daemon, ["run.long_running"], [ch], status=400)["error"]["details"]["field"] \
        == "long_running"
    assert "no channel" in rule(daemon, ["run.failed"], ["nope"], status=400)["error"]["message"]
    assert rule(daemon, ["run.failed"], [ch], status=400,
                filter={"selector": "env in (a"})["error"]["details"]["field"] == "filter.selector"
    good = rule(daemon, ["run.failed", "run.failing"], [ch], min_consecutive_failures=2,
                filter={"severity": "error"}, template={"subject": "{{ job.name }} broke"})
    assert good["group_window_s"] == 0 and good["enabled"] is True
    r = daemon.http.delete(daemon.url(API + "/channels/" + ch["id"]))
    assert r.status_code == 409 and r.json()["error"]["details"]["used_by"][0]["id"] == good["id"]
    r = daemon.http.patch(daemon.url(API + "/rules/" + good["id"]), json={"template": None},
                          headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert "template" not in r.json() and r.json()["version"] == 2


def smtp_channel(d, smtp, **settings):
    s = {"url": f"smtp://127.0.0.1:{smtp.port}", "from": "OpsConductor <opsc@example.test>",
         "to": ["ops@example.test", "Oncall <oncall@example.test>"], "username": smtp.user,
         "ca_bundle": smtp.ca_pem}
    s.update(settings)
    return channel(d, "email", {k: v for k, v in s.items() if v is not None},
                   secret_value=smtp.password)


def test_email_over_starttls_with_auth_reaches_every_recipient(daemon, tmp_path):
    with SMTPServer(tmp_path / "smtp") as smtp:
        ch = smtp_channel(daemon, smtp)
        r = daemon.http.post(daemon.url(f"{API}/channels/{ch['id']}/test"))
        assert r.status_code == 200, r.text
        d = r.json()["delivery"]
        assert d["state"] == "delivered" and d["event"] == "test" and d["attempts"][0]["error"] is None
        m = smtp.wait_for(1)[0]
    assert m["tls"] and m["auth"], m  # STARTTLS, then AUTH
    assert m["rcpt"] == ["ops@example.test", "oncall@example.test"]
    msg = m["message"]
    assert msg["Message-ID"] == f"<{d['id']}@example.test>"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert "Test message from OpsConductor" in parts["text/plain"]
    assert "<h2>[INFO] Test message from OpsConductor</h2>" in parts["text/html"]
    assert msg["Subject"] == "[INFO] Test message from OpsConductor"


def test_email_refuses_a_server_without_tls_and_a_wrong_certificate(daemon, tmp_path):
    with SMTPServer(tmp_path / "plain", tls="none") as plain:
        ch = smtp_channel(daemon, plain)
        r = daemon.http.post(daemon.url(f"{API}/channels/{ch['id']}/test"))
        assert r.status_code == 422, r.text
        assert "STARTTLS" in r.json()["error"]["message"]
        assert r.json()["error"]["details"]["delivery"]["state"] == "gave_up"
        assert plain.messages == []  # nothing was sent in the clear
    (tmp_path / "other").mkdir()
    other_ca, _ = make_ca(tmp_path / "other")
    with SMTPServer(tmp_path / "tls") as smtp:
        bad = smtp_channel(daemon, smtp, ca_bundle=other_ca)
        r = daemon.http.post(daemon.url(f"{API}/channels/{bad['id']}/test"))
        assert r.status_code == 422 and "certificate" in r.text.lower(), r.text
        pinned = smtp_channel(daemon, smtp, ca_bundle=None, tls_fingerprint=smtp.fingerprint)
        assert daemon.http.post(daemon.url(f"{API}/channels/{pinned['id']}/test")).status_code \
            == 200
        wrong = smtp_channel(daemon, smtp, ca_bundle=None, tls_fingerprint="00" * 32)
        assert daemon.http.post(daemon.url(f"{API}/channels/{wrong['id']}/test")).status_code \
            == 422
        assert len(smtp.messages) == 1


def test_email_over_implicit_tls_and_a_wrong_password(daemon, tmp_path):
    with SMTPServer(tmp_path / "smtps", tls="implicit") as smtp:
        ch = channel(daemon, "email", {"url": f"smtps://127.0.0.1:{smtp.port}",
                                       "from": "opsc@example.test", "to": ["a@example.test"],
                                       "username": smtp.user, "ca_bundle": smtp.ca_pem},
                     secret_value=smtp.password)
        assert daemon.http.post(daemon.url(f"{API}/channels/{ch['id']}/test")).status_code == 200
        wrong = channel(daemon, "email", {"url": f"smtps://127.0.0.1:{smtp.port}",
                                          "from": "opsc@example.test", "to": ["a@example.test"],
                                          "username": smtp.user, "ca_bundle": smtp.ca_pem},
                        secret_value="not-the-password")
        r = daemon.http.post(daemon.url(f"{API}/channels/{wrong['id']}/test"))
        assert r.status_code == 422 and "refused the login" in r.text, r.text
        assert len(smtp.wait_for(1)) == 1


def test_a_subscribed_users_notify_email_is_added(daemon, tmp_path):
    u = check(daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "olga", "role": "viewer", "password": "olga-Pw-12345!x",
        "notify_email": "olga@example.test"}), 201)
    assert u["notify_email"] == "olga@example.test"
    r = daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "bad", "role": "viewer", "password": "bad-Pw-12345!x", "notify_email": "x"})
    assert r.status_code == 400
    with SMTPServer(tmp_path / "smtp") as smtp:
        ch = smtp_channel(daemon, smtp, to=[])
        rule(daemon, ["run.failed"], [ch], users=[u["id"]])
        t = local_target(daemon, "self")
        j = job(daemon, {"name": "nope", "targets": {"ids": [t["id"]]},
                         "steps": [shell_step("x", "exit 1")]})
        wait(daemon, start(daemon, j["id"])["id"])
        m = smtp.wait_for(1)[0]
    assert m["rcpt"] == ["olga@example.test"]
    assert "nope" in m["message"]["Subject"]


def test_webhook_test_message_is_signed_and_failures_answer_422(daemon):
    key = whsec()
    with Receiver(secret=key) as rx:
        ch = channel(daemon, "webhook", {"url": rx.url("/in"), "method": "PUT",
                                         "headers": {"X-Team": "ops"}, "github_signature": True},
                     secret_value=key)
        r = daemon.http.post(daemon.url(f"{API}/channels/{ch['id']}/test"))
        assert r.status_code == 200, r.text
        got = rx.wait_for(1)[0]
        assert got.verified is True and got.method == "PUT" and got.headers["x-team"] == "ops"
        assert got.headers["webhook-id"] == r.json()["delivery"]["id"]
        assert got.headers["x-hub-signature-256"].startswith("sha256=")
        assert got.json()["event"]["name"] == "test"
        rx.script([500])
        r = daemon.http.post(daemon.url(f"{API}/channels/{ch['id']}/test"))
        assert r.status_code == 422
        d = r.json()["error"]["details"]["delivery"]
        assert d["state"] == "gave_up" and d["attempts"][0]["status"] == 500
    assert daemon.http.post(daemon.url(f"{API}/channels/nope/test")).status_code == 404


def test_secrets_never_appear_in_responses_history_logs_or_the_store(daemon_factory, tmp_path):
    d = daemon_factory(config=dict(FAST, log={"level": "debug"}))
    rec = Recorder(d.http)
    key = whsec()
    slack_url_secret = "XyZ-slack-path-5f3e1d"
    teams_url_secret = "TmS-teams-path-8a7b6c"
    smtp_pw = "smtp-Pw-Zq9!kL"
    leaks = [key, key[6:], slack_url_secret, teams_url_secret, smtp_pw]
    with Receiver(secret=key) as rx, SMTPServer(tmp_path / "smtp", password=smtp_pw) as smtp:
        chans = [
            channel(d, "webhook", {"url": rx.url("/w")}, secret_value=key),
            channel(d, "slack", secret_value=rx.url("/slack/" + slack_url_secret)),
            channel(d, "teams", secret_value=rx.url("/teams/" + teams_url_secret)),
            smtp_channel(d, smtp, username=smtp.user),
        ]
        rx.script([410])  # a failure answer lands in the history with its error
        for ch in chans:
            rec.request("POST", d.url(f"{API}/channels/{ch['id']}/test"))
            rec.request("GET", d.url(f"{API}/channels/{ch['id']}"))
        rec.request("GET", d.url(API + "/channels"))
        rec.request("GET", d.url(API + "/deliveries"))
        rec.request("GET", d.url("/api/v1/audit?limit=500"))
        assert len(rx.wait_for(3)) == 3 and len(smtp.wait_for(1)) == 1
    assert d.stop() == 0
    blobs = {"responses": b"\n".join(rec.bodies), "daemon log": d.stderr().encode()}
    for name in os.listdir(d.data_dir):
        if name.endswith(".mdb"):
            blobs[name] = (pathlib.Path(d.data_dir) / name).read_bytes()
    assert find_leaks(leaks, blobs) == []


def test_the_sdk_example_notifier_delivers_through_a_rule(daemon_factory, tmp_path):
    installed = install_tree(tmp_path / "root")
    src = build_example(installed, "notify-file", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    d = daemon_factory(args=["-p", str(src)],
                       config={"plugin.example-notify-file": {"directory": str(out)}})
    ch = channel(d, "file", {"file": "events.jsonl"})
    assert channel(d, "file", {"file": "../x"}, status=400)["error"]["details"]["field"] \
        == "settings"
    rule(d, ["run.succeeded"], [ch])
    t = local_target(d, "self")
    j = job(d, {"name": "fine", "targets": {"ids": [t["id"]]}, "steps": [shell_step("x", "true")]})
    run = wait(d, start(d, j["id"])["id"])
    got = wait_deliveries(d, 1, channel=ch["id"])
    assert got[0]["state"] == "delivered", got
    line = json.loads((out / "events.jsonl").read_text().splitlines()[0])
    assert line["event"]["name"] == "run.succeeded" and line["run"]["id"] == run["id"]
    assert metric(d, "opsc_notify_deliveries_total", type="file", outcome="delivered") == 1


def test_metrics_and_openapi_describe_notifications(daemon):
    doc = daemon.get("/api/v1/openapi.json").json()
    for path in (API + "/channels", API + "/channels/{id}/test", API + "/rules",
                 API + "/deliveries", "/api/v1/hooks", "/api/v1/hooks/{id}/trigger"):
        assert path in doc["paths"], path
    assert doc["paths"]["/api/v1/hooks/{id}/trigger"]["post"]["x-required-role"] == "public"
    assert "opsc_notify_in_flight" in daemon.get("/metrics").text
    assert daemon.get("/api/v1/system").json()["notifiers"] >= 4
    assert deliveries(daemon) == []
    r = daemon.get(API + "/deliveries", params={"state": "lost"})
    assert r.status_code == 400
