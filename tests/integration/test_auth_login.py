"""test_auth_login.py - first start, login, refresh, logout, API tokens, users, throttling (real daemon)."""
import concurrent.futures
import os
import stat
import time

import requests

from fixtures.identity import session_from

ADMIN = "admin"


def test_first_start_writes_a_random_admin_password_0600_and_logs_its_path(daemon_factory):
    d = daemon_factory(env={"OPSC_BOOTSTRAP_ADMIN_PASSWORD": None}, login=False)
    path = os.path.join(d.data_dir, "initial-admin-password")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    password = open(path).read()
    assert len(password) >= 20
    assert path in d.stderr()
    assert password not in d.stderr()
    r = d.login(ADMIN, password)
    assert r.status_code == 200, r.text


def test_a_weak_bootstrap_password_stops_the_start_cleanly_and_says_why(daemon_factory):
    # the failed start frees what it opened in order (under ASan: it once wrote to the freed
    # plugin host while closing the half-opened auth)
    d = daemon_factory(env={"OPSC_BOOTSTRAP_ADMIN_PASSWORD": "admin"}, wait_ready=False)
    assert d.proc.wait(30) == 1, d.stderr()[-3000:]
    assert "OPSC_BOOTSTRAP_ADMIN_PASSWORD" in d.stderr(), d.stderr()[-3000:]
    assert "ERROR: AddressSanitizer" not in d.stderr()
    assert not os.path.exists(os.path.join(d.data_dir, "initial-admin-password"))


def test_bootstrap_password_from_the_environment(daemon):
    assert not os.path.exists(os.path.join(daemon.data_dir, "initial-admin-password"))
    assert daemon.login(ADMIN, daemon.admin_password).status_code == 200


def test_login_answers_exactly_the_documented_shape(daemon):
    r = daemon.login(ADMIN, daemon.admin_password)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert r.headers["Cache-Control"] == "no-store"
    me = daemon.session(body["access_token"]).get(daemon.url("/api/v1/auth/me")).json()
    assert me["user"]["username"] == "admin"
    assert me["effective_role"] == "admin"
    assert "password_hash" not in me["user"]


def test_unknown_user_and_wrong_password_look_the_same(daemon_factory):
    daemon = daemon_factory(config={"auth": {"password_cost": "7"}})  # the default's hash time
    times = {"unknown": [], "wrong": []}
    bodies = {}
    for _ in range(3):
        for kind, user in (("unknown", "nobody-here"), ("wrong", ADMIN)):
            t = time.monotonic()
            r = daemon.login(user, "not-the-password")
            times[kind].append(time.monotonic() - t)
            assert r.status_code == 401
            bodies[kind] = r.json()
    assert bodies["unknown"] == bodies["wrong"]
    unknown, wrong = min(times["unknown"]), min(times["wrong"])
    assert unknown >= 0.05 and wrong >= 0.05, times  # both paid a hash
    # The same hash within the noise of a loaded machine (tests run four at a time); an
    # unknown user answered without one would be 50 times faster.
    assert 1 / 3 < unknown / wrong < 3, times


def test_refresh_rotates_and_reuse_revokes_the_family(daemon):
    first = daemon.login(ADMIN, daemon.admin_password).json()
    r = requests.post(daemon.url("/api/v1/auth/refresh"),
                      json={"refresh_token": first["refresh_token"]}, timeout=10)
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    # Spending the first one again is theft: 401, and the second one dies too.
    r = requests.post(daemon.url("/api/v1/auth/refresh"),
                      json={"refresh_token": first["refresh_token"]}, timeout=10)
    assert r.status_code == 401
    r = requests.post(daemon.url("/api/v1/auth/refresh"),
                      json={"refresh_token": second["refresh_token"]}, timeout=10)
    assert r.status_code == 401


def test_logout_revokes_the_access_and_refresh_tokens(daemon):
    t = daemon.login(ADMIN, daemon.admin_password).json()
    s = daemon.session(t["access_token"])
    assert s.get(daemon.url("/api/v1/auth/me")).status_code == 200
    r = s.post(daemon.url("/api/v1/auth/logout"), json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 204
    assert s.get(daemon.url("/api/v1/auth/me")).status_code == 401
    r = requests.post(daemon.url("/api/v1/auth/refresh"),
                      json={"refresh_token": t["refresh_token"]}, timeout=10)
    assert r.status_code == 401


def test_missing_or_malformed_authorization_is_401(daemon):
    r = requests.get(daemon.url("/api/v1/users/me"), timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "unauthorized"
    for h in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer not-a-token"):
        r = requests.get(daemon.url("/api/v1/users/me"), headers={"Authorization": h}, timeout=10)
        assert r.status_code == 401, h


def create_user(daemon, name, role, password):
    r = daemon.http.post(daemon.url("/api/v1/users"),
                         json={"username": name, "role": role, "password": password}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_users_crud_with_if_match(daemon):
    u = create_user(daemon, "Olivia", "operator", "olivia-Pw-8812")
    assert u["username"] == "olivia" and u["role"] == "operator" and u["enabled"] is True
    assert u["provider"] == "local" and u["version"] == 1
    assert {"id", "created_at", "updated_at"} <= set(u)
    assert "password" not in u and "password_hash" not in u
    url = daemon.url("/api/v1/users/" + u["id"])
    r = daemon.http.patch(url, json={"display_name": "Olivia O."}, headers={"If-Match": '"7"'})
    assert r.status_code == 412
    r = daemon.http.patch(url, json={"display_name": "Olivia O."}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.headers["ETag"] == '"2"'
    listing = daemon.http.get(daemon.url("/api/v1/users?limit=1")).json()
    assert len(listing["items"]) == 1 and listing["next_cursor"]
    rest = daemon.http.get(daemon.url("/api/v1/users?cursor=" + listing["next_cursor"])).json()
    assert [x["username"] for x in rest["items"]] == ["olivia"]
    assert rest["next_cursor"] is None
    assert daemon.http.post(daemon.url("/api/v1/users"),
                            json={"username": "OLIVIA", "role": "viewer",
                                  "password": "another-Pw-1"}).status_code == 409
    assert daemon.http.delete(url).status_code == 204
    assert daemon.http.get(url).status_code == 404


def test_the_last_admin_cannot_be_demoted_disabled_or_deleted(daemon):
    me = daemon.http.get(daemon.url("/api/v1/users/me")).json()
    url = daemon.url("/api/v1/users/" + me["id"])
    r = daemon.http.patch(url, json={"role": "viewer"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin"
    assert daemon.http.patch(url, json={"enabled": False}).status_code == 409
    assert daemon.http.delete(url).status_code == 409


def test_disabling_a_user_or_changing_its_role_applies_to_its_next_request(daemon):
    u = create_user(daemon, "dora", "operator", "dora-Pw-4471")
    s = daemon.session(daemon.login("dora", "dora-Pw-4471").json()["access_token"])
    assert s.get(daemon.url("/api/v1/credentials")).status_code == 200
    assert s.post(daemon.url("/api/v1/credentials"), json={}).status_code == 400  # operator
    url = daemon.url("/api/v1/users/" + u["id"])
    assert daemon.http.patch(url, json={"role": "viewer"}).status_code == 200
    assert s.post(daemon.url("/api/v1/credentials"), json={}).status_code == 403
    assert daemon.http.patch(url, json={"enabled": False}).status_code == 200
    assert s.get(daemon.url("/api/v1/credentials")).status_code == 401
    assert daemon.login("dora", "dora-Pw-4471").status_code == 401


def test_own_password_change_needs_the_old_password(daemon):
    create_user(daemon, "paul", "viewer", "paul-Pw-0001")
    other = daemon.login("paul", "paul-Pw-0001").json()  # another session of paul's
    t = daemon.login("paul", "paul-Pw-0001").json()
    s = daemon.session(t["access_token"])
    url = daemon.url("/api/v1/users/me/password")
    r = s.post(url, json={"old_password": "wrong-Pw-0001", "new_password": "paul-Pw-0002"})
    assert r.status_code == 403
    r = s.post(url, json={"old_password": "paul-Pw-0001", "new_password": "short"})
    assert r.status_code == 400
    r = s.post(url, json={"old_password": "paul-Pw-0001", "new_password": "paul-Pw-0002"})
    assert r.status_code == 204
    assert daemon.login("paul", "paul-Pw-0001").status_code == 401
    assert daemon.login("paul", "paul-Pw-0002").status_code == 200
    # paul's other sessions are gone, access and refresh tokens; the one that
    # changed the password goes on.
    r = requests.post(daemon.url("/api/v1/auth/refresh"),
                      json={"refresh_token": other["refresh_token"]}, timeout=10)
    assert r.status_code == 401
    assert daemon.session(other["access_token"]).get(
        daemon.url("/api/v1/auth/me")).status_code == 401
    assert s.get(daemon.url("/api/v1/auth/me")).status_code == 200
    # A viewer changes its profile, not its role.
    assert s.patch(daemon.url("/api/v1/users/me"), json={"email": "p@example.org"}).status_code == 200
    assert s.patch(daemon.url("/api/v1/users/me"), json={"role": "admin"}).status_code == 400


def test_api_tokens_are_shown_once_capped_by_role_and_revocable(daemon):
    r = daemon.http.post(daemon.url("/api/v1/tokens"), json={"name": "ci", "role": "viewer",
                                                            "expires_in_days": 30})
    assert r.status_code == 201, r.text
    tok = r.json()
    assert tok["token"].startswith("opsc_at_") and tok["role"] == "viewer"
    assert tok["expires_at"]
    got = daemon.http.get(daemon.url("/api/v1/tokens/" + tok["id"])).json()
    assert "token" not in got and "token_hash" not in got
    listing = daemon.http.get(daemon.url("/api/v1/tokens")).json()
    assert tok["token"] not in str(listing)
    s = daemon.session(tok["token"])
    assert s.get(daemon.url("/api/v1/credentials")).status_code == 200
    assert s.get(daemon.url("/api/v1/users")).status_code == 200  # viewers read users
    assert s.post(daemon.url("/api/v1/credentials"), json={}).status_code == 403  # capped
    # A viewer cannot mint an operator token.
    assert s.post(daemon.url("/api/v1/tokens"), json={"name": "x", "role": "operator"}).status_code == 403
    assert daemon.http.delete(daemon.url("/api/v1/tokens/" + tok["id"])).status_code == 204
    assert s.get(daemon.url("/api/v1/credentials")).status_code == 401


def test_tokens_of_others_are_invisible_to_non_admins(daemon):
    create_user(daemon, "vera", "viewer", "vera-Pw-1234")
    admin_tok = daemon.http.post(daemon.url("/api/v1/tokens"), json={"name": "a"}).json()
    s = daemon.session(daemon.login("vera", "vera-Pw-1234").json()["access_token"])
    assert s.get(daemon.url("/api/v1/tokens/" + admin_tok["id"])).status_code == 404
    assert s.delete(daemon.url("/api/v1/tokens/" + admin_tok["id"])).status_code == 404
    assert s.get(daemon.url("/api/v1/tokens?all=true")).status_code == 403
    assert s.get(daemon.url("/api/v1/tokens")).json()["items"] == []


def test_repeated_failures_are_answered_429_with_retry_after(daemon):
    statuses = []
    for _ in range(8):
        r = daemon.login(ADMIN, "wrong-password-x")
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["code"] == "too_many_requests"
            break
    assert statuses[-1] == 429, statuses
    assert statuses.count(401) == 6  # [auth] user_free_failures, then the one that delays


def test_a_thousand_bad_logins_from_one_address_are_throttled_and_others_still_served(daemon):
    attacker = session_from("127.0.0.2")
    url = daemon.url("/api/v1/auth/login")

    def attempt(i):
        r = attacker.post(url, json={"username": "user%d" % (i % 50), "password": "guess"},
                          timeout=30)
        return r.status_code

    legit = daemon.session(daemon.login(ADMIN, daemon.admin_password).json()["access_token"])
    latencies = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(attempt, i) for i in range(1000)]
        while not all(f.done() for f in futures):
            t = time.monotonic()
            assert legit.get(daemon.url("/api/v1/auth/me"), timeout=10).status_code == 200
            latencies.append(time.monotonic() - t)
            time.sleep(0.02)
        statuses = [f.result() for f in futures]
    throttled = statuses.count(429)
    hashed = statuses.count(401)
    assert throttled >= 900, (throttled, hashed)
    assert set(statuses) <= {401, 429, 503}
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.05, latencies[-5:]
    # Another address still logs in.
    assert daemon.login(ADMIN, daemon.admin_password).status_code == 200


def test_console_user_commands_with_the_daemon_stopped(daemon_factory, run_daemon):
    d = daemon_factory()
    r = run_daemon(["-d", str(d.data_dir), "user", "add", "carl", "--role", "operator"])
    assert r.returncode == 1 and "stop the daemon" in r.stderr  # store locked
    assert d.stop() == 0
    r = subprocess_run(run_daemon, d, ["user", "add", "carl", "--role", "operator"], "carl-Pw-7777\n")
    assert r.returncode == 0, r.stderr
    r = subprocess_run(run_daemon, d, ["user", "passwd", "carl"], "carl-Pw-8888\n")
    assert r.returncode == 0, r.stderr
    d2 = d.restart()
    assert d2.login("carl", "carl-Pw-7777").status_code == 401
    assert d2.login("carl", "carl-Pw-8888").status_code == 200
    assert d2.stop() == 0
    r = subprocess_run(run_daemon, d, ["user", "disable", "carl"], "")
    assert r.returncode == 0, r.stderr
    d3 = d.restart()
    assert d3.login("carl", "carl-Pw-8888").status_code == 401


def subprocess_run(run_daemon, d, args, stdin):
    return run_daemon(["-d", str(d.data_dir)] + args, input=stdin)

