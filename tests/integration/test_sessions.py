"""test_sessions.py - sessions end when the account changes, and event streams with them.

Re-enabling a disabled user revives neither its access tokens nor its API
tokens; a password change set by an admin ends every session of the user
(one's own change keeps the session that made it: test_auth_login.py); a
reused refresh token revokes the access tokens of its whole family; an open
event stream (a run's events, a group test) of a user who is disabled,
deleted, logged out or demoted below the route's role closes within a second,
one opened with a client certificate too.
"""
import threading
import time

import requests

from fixtures.fleet import Blackhole, credential, create
from fixtures.runs import check, job, local_target, shell_step, start

PW = "Sessions-Test-Pw-7c2e"


def user(d, name, role):
    return check(d.http.post(d.url("/api/v1/users"),
                             json={"username": name, "role": role, "password": PW}), 201)


def login(d, name, pw=PW):
    r = d.login(name, pw)
    assert r.status_code == 200, r.text
    return r.json()


def me(d, token):
    return requests.get(d.url("/api/v1/auth/me"), timeout=10,
                        headers={"Authorization": "Bearer " + token}).status_code


def refresh(d, refresh_token):
    return requests.post(d.url("/api/v1/auth/refresh"), timeout=10,
                         json={"refresh_token": refresh_token})


def patch_user(d, uid, **fields):
    return check(d.http.patch(d.url(f"/api/v1/users/{uid}"), json=fields), 200)


def test_re_enabling_a_user_revives_neither_its_access_nor_its_api_tokens(daemon):
    u = user(daemon, "dana", "operator")
    s = login(daemon, "dana")
    api = check(daemon.session(s["access_token"]).post(
        daemon.url("/api/v1/tokens"), json={"name": "ci"}), 201)["token"]
    assert me(daemon, s["access_token"]) == 200 and me(daemon, api) == 200
    patch_user(daemon, u["id"], enabled=False)
    patch_user(daemon, u["id"], enabled=True)
    assert me(daemon, s["access_token"]) == 401
    assert me(daemon, api) == 401
    assert refresh(daemon, s["refresh_token"]).status_code == 401
    listed = check(daemon.get("/api/v1/tokens", params={"user_id": u["id"]}), 200)["items"]
    assert any(t["name"] == "ci" and t.get("revoked_at") for t in listed), listed
    # Logging in again is what gives access back.
    again = login(daemon, "dana")
    assert me(daemon, again["access_token"]) == 200


def test_a_password_set_by_an_admin_ends_every_session_of_the_user(daemon):
    u = user(daemon, "erik", "viewer")
    one, two = login(daemon, "erik"), login(daemon, "erik")
    patch_user(daemon, u["id"], password="Sessions-New-Pw-91b0")
    for s in (one, two):
        assert me(daemon, s["access_token"]) == 401
        assert refresh(daemon, s["refresh_token"]).status_code == 401
    assert me(daemon, login(daemon, "erik", "Sessions-New-Pw-91b0")["access_token"]) == 200


def test_a_reused_refresh_token_revokes_the_access_tokens_of_its_family(daemon):
    user(daemon, "fay", "viewer")
    first = login(daemon, "fay")
    elsewhere = login(daemon, "fay")  # another session: not the stolen one
    second = refresh(daemon, first["refresh_token"]).json()
    assert me(daemon, second["access_token"]) == 200
    assert refresh(daemon, first["refresh_token"]).status_code == 401  # reuse: theft
    assert me(daemon, first["access_token"]) == 401
    assert me(daemon, second["access_token"]) == 401
    assert refresh(daemon, second["refresh_token"]).status_code == 401
    assert me(daemon, elsewhere["access_token"]) == 200


class Stream:
    """An event stream read on a thread; `ended` is the time it closed."""

    def __init__(self, response):
        self.r = response
        assert self.r.status_code == 200, self.r.text
        self.first = threading.Event()
        self.ended = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.first.wait(30), "no event came"

    def _read(self):
        try:
            for _ in self.r.iter_lines(chunk_size=1):
                self.first.set()
        except requests.RequestException:
            pass
        self.ended = time.monotonic()
        self.first.set()

    def closed_within(self, seconds):
        self.thread.join(seconds + 5)
        return self.ended is not None


def run_stream(d, token, run_id):
    return Stream(requests.get(d.url(f"/api/v1/runs/{run_id}/events"), stream=True, timeout=60,
                               headers={"Accept": "text/event-stream",
                                        "Authorization": "Bearer " + token}))


def long_run(d):
    t = local_target(d, "self")
    j = job(d, {"name": "long", "targets": {"ids": [t["id"]]},
                "steps": [shell_step("s", "while :; do echo tick; sleep 0.2; done")]})
    return start(d, j["id"])["id"]


def assert_closed_soon(stream, since):
    assert stream.closed_within(1.5)
    assert stream.ended - since < 1.5, f"closed after {stream.ended - since:.2f} s"


def test_event_streams_close_when_their_user_is_disabled_deleted_or_logged_out(daemon):
    run = long_run(daemon)
    users = {name: user(daemon, name, "viewer") for name in ("gil", "hal", "ida", "jo")}
    streams = {name: run_stream(daemon, login(daemon, name)["access_token"], run)
               for name in users}
    t0 = time.monotonic()
    patch_user(daemon, users["gil"]["id"], enabled=False)
    assert_closed_soon(streams["gil"], t0)
    t0 = time.monotonic()
    check(daemon.http.delete(daemon.url(f"/api/v1/users/{users['hal']['id']}")), 204)
    assert_closed_soon(streams["hal"], t0)
    ida = login(daemon, "ida")
    ida_stream = run_stream(daemon, ida["access_token"], run)
    t0 = time.monotonic()
    assert daemon.session(ida["access_token"]).post(
        daemon.url("/api/v1/auth/logout"), json={}).status_code == 204
    assert_closed_soon(ida_stream, t0)
    # The others' streams go on.
    time.sleep(1.0)
    assert streams["jo"].ended is None
    check(daemon.http.post(daemon.url(f"/api/v1/runs/{run}/cancel")), 202)


def test_a_group_test_stream_closes_when_its_operator_is_demoted(daemon):
    op = user(daemon, "kim", "operator")
    token = login(daemon, "kim")["access_token"]
    with Blackhole() as hole:  # the test waits on a target that never answers
        cred = credential(daemon, {"user": "nobody", "key_ed25519": None, "password": "x"},
                          kind="password")
        t = create(daemon, {"name": "silent", "address": "127.0.0.1", "port": hole.port,
                            "transport": "ssh", "credential_id": cred["id"],
                            "connect_timeout_s": 30})
        g = check(daemon.http.post(daemon.url("/api/v1/groups"),
                                   json={"name": "g", "members": [t["id"]]}), 201)
        stream = Stream(requests.post(daemon.url(f"/api/v1/groups/{g['id']}/test"), stream=True,
                                      timeout=60, headers={"Accept": "text/event-stream",
                                                           "Authorization": "Bearer " + token}))
        t0 = time.monotonic()
        patch_user(daemon, op["id"], role="viewer")
        assert_closed_soon(stream, t0)


def test_a_client_certificate_stream_lasts_until_its_user_is_disabled(daemon_factory, tmp_path):
    # No token, no session: the stream is asked again by the user the certificate names.
    from fixtures.tls import CA
    from test_tls import start as tls_start
    ca = CA(tmp_path / "ca")
    d = tls_start(daemon_factory, *ca.issue("server", "localhost"), tls_client_ca=str(ca.cert))
    lea = user(d, "lea", "viewer")
    run = long_run(d)
    stream = Stream(requests.get(f"{d.tls_base}/api/v1/runs/{run}/events", stream=True,
                                 timeout=60, verify=str(ca.cert),
                                 cert=tuple(map(str, ca.issue("lea", "lea", client=True))),
                                 headers={"Accept": "text/event-stream"}))
    time.sleep(1.5)  # three rechecks
    assert stream.ended is None
    t0 = time.monotonic()
    patch_user(d, lea["id"], enabled=False)
    assert_closed_soon(stream, t0)
    check(d.http.post(d.url(f"/api/v1/runs/{run}/cancel")), 202)
