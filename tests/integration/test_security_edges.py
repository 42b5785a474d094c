"""test_security_edges.py - clear answers at the edges (issue 11, part 5), as a client would hit them.

A full disk answers 507 store_full naming the data directory, logs it once,
keeps reads and logins, and /ready says so; weak passwords are refused where
passwords are set; an invalid JSON body never comes back in the error; a
denied request's audit record names who was denied; viewers see no paths of
the appliance; every answer says nosniff and no-store; plain HTTP on a public
address is warned about; an unverified upload says it was not verified.
"""
import hashlib
import json
import subprocess
import time

import pytest
import requests

from conftest import BUILD_DIR, free_port
from fixtures.runs import check, user_session

TEST_PLUGINS = BUILD_DIR / "tests" / "plugins"


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MiB tmpfs, unmounted at the end."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path):
    """Write zeros into `path` until the file system is full."""
    block = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_answers_507_keeps_reads_and_logins_and_ready_says_so(daemon_factory,
                                                                          small_disk):
    data = small_disk / "data"
    d = daemon_factory(config={"store": {"data_dir": str(data)}})
    check(d.http.post(d.url("/api/v1/targets"), json={"name": "before", "transport": "local"}),
          201)
    filler = small_disk / "filler"
    fill(filler)
    answers = []
    for i in range(5000):  # free pages inside the store are used up first
        r = d.http.post(d.url("/api/v1/targets"), json={
            "name": f"t{i}", "transport": "local", "description": "x" * 1000})
        answers.append(r.status_code)
        if r.status_code == 507:
            break
    assert answers[-1] == 507, answers[-5:]
    body = r.json()["error"]
    assert body["code"] == "store_full" and str(data) in body["message"]
    for _ in range(5):  # at once, without touching the disk
        assert d.http.post(d.url("/api/v1/credentials"),
                           json={"name": "c", "type": "secret", "value": "v"}).status_code == 507
    assert check(d.get("/api/v1/targets", params={"name": "before"}), 200)["items"]
    assert d.login("admin", d.admin_password).status_code == 200
    ready = requests.get(d.url("/ready"), timeout=10)
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "store_full"
    assert d.stderr().count("is full: writes are refused") == 1
    assert "No space left" not in d.stderr()
    # Room again: writes go on by themselves.
    filler.unlink()
    for _ in range(100):
        r = d.http.post(d.url("/api/v1/targets"), json={"name": "after", "transport": "local"})
        if r.status_code == 201:
            break
        time.sleep(0.1)
    assert r.status_code == 201, r.text
    assert requests.get(d.url("/ready"), timeout=10).status_code == 200
    assert "has room again" in d.stderr()
    assert d.stop() == 0


def test_weak_passwords_are_refused_for_users_the_bootstrap_admin_and_the_console(
        daemon, daemon_factory, run_daemon):
    r = daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "olga", "display_name": "Olga Petrova", "role": "viewer",
        "password": "PetrovaOlga1987"})
    assert r.status_code == 400 and "too weak" in r.json()["error"]["message"]
    assert "PetrovaOlga1987" not in r.text
    assert daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "olga", "role": "viewer", "password": "opsconductor2024"}).status_code == 400
    u = check(daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "olga", "display_name": "Olga Petrova", "role": "viewer",
        "password": "violet-Kettle-93-mosaic"}), 201)
    assert daemon.http.patch(daemon.url(f"/api/v1/users/{u['id']}"),
                             json={"password": "olga12345678"}).status_code == 400
    s = daemon.session(daemon.login("olga", "violet-Kettle-93-mosaic").json()["access_token"])
    r = s.post(daemon.url("/api/v1/users/me/password"),
               json={"old_password": "violet-Kettle-93-mosaic", "new_password": "password123"})
    assert r.status_code == 400 and "too weak" in r.json()["error"]["message"]
    # The first admin's password from the environment.
    weak = daemon_factory(env={"OPSC_BOOTSTRAP_ADMIN_PASSWORD": "Administrator1"},
                          wait_ready=False)
    assert weak.proc.wait(15) != 0
    assert "too weak" in weak.stderr()
    # The console.
    r = run_daemon(["-d", str(daemon.data_dir) + "-console", "user", "add", "zed", "--role",
                    "viewer"], input="zedzedzed1\n")
    assert r.returncode != 0 and "too weak" in r.stderr


def test_an_invalid_json_body_never_comes_back_in_the_error(daemon):
    secret = "S3cret-Value-qZ8w"
    bodies = [f'{{"name": "db", "type": "secret", "value": "{secret}" "oops"}}',
              f'{{"name": "db", "type": "secret", "value": "{secret}", }}',
              f'{{"name": "db", "type": "secret", "value": "{secret}\n"}}',
              f'{{"value": "{secret}", "value": "{secret}"}}']
    for path in ("/api/v1/credentials", "/api/v1/targets/bulk", "/api/v1/jobs/x/runs"):
        for b in bodies:
            r = daemon.http.post(daemon.url(path), data=b.encode(),
                                 headers={"Content-Type": "application/json"})
            assert r.status_code in (400, 404), (path, r.status_code, r.text)
            assert secret not in r.text and secret[:6] not in r.text, (path, r.text)


def test_the_audit_record_of_a_denied_request_names_who_was_denied(daemon):
    viewer = user_session(daemon, "vic", "viewer")
    assert viewer.post(daemon.url("/api/v1/users"), json={}).status_code == 403
    items = check(daemon.get("/api/v1/audit", params={"outcome": "denied"}), 200)["items"]
    mine = [a for a in items if a["action"] == "POST /api/v1/users"]
    assert mine and mine[0]["actor"] == "vic", items


def paths_in(answer):
    """The "path" members of an answer: of it, its items, versions and refused files."""
    found = [answer["path"]] if "path" in answer else []
    for key in ("items", "versions", "refused"):
        for item in answer.get(key, []):
            found += paths_in(item)
    return found


def test_viewers_do_not_see_paths_of_the_appliance(daemon):
    viewer = user_session(daemon, "val", "viewer")
    for path in ("/api/v1/steplibs", "/api/v1/steplibs/core", "/api/v1/steplibs/core/1.0.0",
                 "/api/v1/plugins"):
        assert paths_in(check(viewer.get(daemon.url(path)), 200)) == [], path
        assert any(p.startswith("/") for p in paths_in(check(daemon.get(path), 200))), path
    # Parameters named "path" in step schemas are no paths of the appliance: they stay.
    linux = check(viewer.get(daemon.url("/api/v1/steplibs/linux")), 200)
    assert '"path"' in json.dumps(linux)


def test_every_answer_says_nosniff_and_no_store(daemon):
    for method, path in (("GET", "/health"), ("GET", "/ready"), ("GET", "/api/v1/users"),
                         ("GET", "/api/v1/nothing-here"), ("POST", "/api/v1/auth/login")):
        r = daemon.http.request(method, daemon.url(path), timeout=10)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (path, r.headers)
        assert r.headers.get("Cache-Control") == "no-store", (path, r.headers)


def test_plain_http_on_a_public_address_is_warned_about_once(daemon_factory):
    port = free_port()
    d = daemon_factory(config={"server": {"listen": f"0.0.0.0:{port}"}}, port=port)
    assert d.stderr().count("serving plain HTTP on 0.0.0.0") == 1
    quiet = daemon_factory()
    assert "serving plain HTTP" not in quiet.stderr()


def test_an_upload_without_a_required_signature_says_it_was_not_verified(daemon):
    data = (TEST_PLUGINS / "test-uplib-1.0.0.upload").read_bytes()
    r = daemon.http.post(daemon.url("/api/v1/steplibs"), data=data, headers={
        "Content-Type": "application/octet-stream",
        "X-Opsc-Sha256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 201, r.text
    assert r.json()["verified"] is False
    assert any("unsigned" in w for w in r.json()["warnings"]), r.json()["warnings"]
