"""test_files.py - /api/v1/files: the appliance-side files core.file.put and core.file.template read.

Uploads are streamed to a hidden temporary file in files_dir and renamed over the
name; names are one safe path segment; symlinks there are never followed; a file a
job reads cannot be deleted; opsconductord backup takes the files with the store.
"""
import hashlib
import os
import subprocess
import threading
import time

import pytest

from conftest import clean_env, daemon_command
from fixtures.runs import check, job, local_target, start, user_session, wait

LIMIT = 1 << 20  # [server] max_upload_size of these daemons


@pytest.fixture
def d(daemon_factory):
    return daemon_factory(config={"server": {"max_upload_size": "1M"}})


def files_dir(daemon):
    return daemon.data_dir / "files"


def put(daemon, name, data, session=None):
    return (session or daemon.http).put(daemon.url(f"/api/v1/files/{name}"), data=data,
                                        timeout=30)


def leftovers(daemon):
    return [n for n in os.listdir(files_dir(daemon)) if n.startswith(".upload-")]


def test_upload_list_download_delete_round_trip_audited_and_backed_up(d, tmp_path):
    assert oct(files_dir(d).stat().st_mode & 0o777) == "0o700"  # created at start
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    f = check(put(d, "app.tar.gz", data), 201)
    assert (f["name"], f["size"], f["sha256"]) == ("app.tar.gz", len(data), sha)
    assert f["modified_at"].endswith("Z")
    check(put(d, "motd.j2", b"hello {{ target.name }}\n"), 201)
    again = check(put(d, "motd.j2", b"welcome to {{ target.name }}\n"), 200)  # replaced
    assert again["sha256"] == hashlib.sha256(b"welcome to {{ target.name }}\n").hexdigest()

    items = check(d.get("/api/v1/files"), 200)["items"]
    assert sorted((i["name"], i["sha256"]) for i in items) == sorted(
        [("app.tar.gz", sha), ("motd.j2", again["sha256"])])
    r = d.get("/api/v1/files/app.tar.gz")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Type"] == "application/octet-stream"

    # opsconductord backup takes the files along, the daemon running
    dest = tmp_path / "backup"
    out = subprocess.run(daemon_command(d.config_path, ["backup", str(dest)]),
                         capture_output=True, text=True, env=clean_env(None), timeout=30)
    assert out.returncode == 0, out.stderr
    assert (dest / "files" / "app.tar.gz").read_bytes() == data
    assert (dest / "data.mdb").exists()

    assert d.request("DELETE", "/api/v1/files/app.tar.gz").status_code == 204
    assert d.get("/api/v1/files/app.tar.gz").status_code == 404
    assert d.request("DELETE", "/api/v1/files/app.tar.gz").status_code == 404
    assert not (files_dir(d) / "app.tar.gz").exists()

    audit = check(d.get("/api/v1/audit", params={"object": "app.tar.gz"}), 200)["items"]
    actions = sorted((a["action"], a["status"]) for a in audit)
    assert ("PUT /api/v1/files/{name}", 201) in actions
    assert ("DELETE /api/v1/files/{name}", 204) in actions
    assert all(a["actor"] == "admin" for a in audit)


def test_a_job_puts_the_file_and_the_file_cannot_be_deleted_while_the_job_reads_it(d, local_tmp):
    check(put(d, "app.conf", b"listen 8080\n"), 201)
    t = local_target(d, "self")
    dest = local_tmp / "app.conf"
    j = job(d, {"name": "deploy-conf", "targets": {"ids": [t["id"]]}, "steps": [
        {"id": "put", "type": "core.file.put", "params": {"src": "app.conf", "dest": str(dest)}}]})
    run = wait(d, start(d, j["id"])["id"])
    assert run["state"] == "succeeded", run
    assert dest.read_bytes() == b"listen 8080\n"

    job(d, {"name": "render-conf", "targets": {"ids": [t["id"]]}, "steps": [
        {"id": "t", "type": "core.file.template",
         "params": {"src": "./app.conf", "dest": str(local_tmp / "x")}}]})
    r = d.request("DELETE", "/api/v1/files/app.conf")
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "in_use"
    assert "deploy-conf" in err["message"] and "render-conf" in err["message"]
    assert sorted(x["name"] for x in err["details"]["jobs"]) == ["deploy-conf", "render-conf"]
    assert (files_dir(d) / "app.conf").exists()
    # a job that reads another file does not hold this one
    check(put(d, "other.txt", b"x"), 201)
    assert d.request("DELETE", "/api/v1/files/other.txt").status_code == 204


@pytest.mark.parametrize("path", [
    "..", "%2e%2e", "a%2Fb", "..%2Fdata.mdb", ".hidden", "%2ehidden", "a%00b", "a%20b",
    "x" * 300, "caf%C3%A9", "a/b"])
def test_odd_names_are_refused_and_nothing_is_written(d, path):
    for method in ("PUT", "GET", "DELETE"):
        r = d.request(method, "/api/v1/files/" + path, data=b"payload")
        assert r.status_code in (400, 404), (method, path, r.status_code, r.text)
        if r.status_code == 400 and path not in ("..", "%2e%2e", "..%2Fdata.mdb", "a%00b"):
            assert "one path segment" in r.json()["error"]["message"], r.text
    assert os.listdir(files_dir(d)) == []
    assert not (d.data_dir / "b").exists() and not (d.data_dir / ".hidden").exists()


def test_longest_name_is_accepted(d):
    check(put(d, "n" * 255, b"ok"), 201)


def test_a_symlink_planted_in_files_dir_is_not_followed(d, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("not for the API\n")
    os.symlink(secret, files_dir(d) / "leak")
    assert d.get("/api/v1/files/leak").status_code == 404
    assert "leak" not in [i["name"] for i in check(d.get("/api/v1/files"), 200)["items"]]
    # an upload replaces the link itself, never writes through it
    check(put(d, "leak", b"new"), 200)
    assert secret.read_text() == "not for the API\n"
    assert not (files_dir(d) / "leak").is_symlink()
    assert d.get("/api/v1/files/leak").content == b"new"
    # a folder (file.get writes into folders) is neither listed, served nor replaced
    (files_dir(d) / "fetched").mkdir()
    assert d.get("/api/v1/files/fetched").status_code == 404
    assert put(d, "fetched", b"x").status_code == 409
    assert (files_dir(d) / "fetched").is_dir() and leftovers(d) == []


def test_concurrent_uploads_of_one_name_leave_one_whole_file(d):
    bodies = [bytes([65 + i]) * 400_000 for i in range(4)]
    results = [None] * len(bodies)

    def upload(i):
        results[i] = put(d, "same.bin", bodies[i]).status_code
    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0] in (200, 201) and set(results) <= {200, 201}, results
    got = d.get("/api/v1/files/same.bin").content
    assert got in bodies  # one upload whole, never a mix
    assert leftovers(d) == []


def test_a_dropped_connection_mid_upload_leaves_no_temporary_file(d):
    s = d.connect()
    s.sendall(b"PUT /api/v1/files/big.bin HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: " + d.http.headers["Authorization"].encode() +
              b"\r\nContent-Length: 500000\r\n\r\n" + b"z" * 100_000)
    end = time.monotonic() + 5
    while not leftovers(d) and time.monotonic() < end:  # the upload is under way
        time.sleep(0.02)
    assert leftovers(d), "no temporary file while the body arrives"
    s.close()
    end = time.monotonic() + 5
    while leftovers(d) and time.monotonic() < end:
        time.sleep(0.02)
    assert leftovers(d) == []
    assert not (files_dir(d) / "big.bin").exists()


def test_uploads_over_max_upload_size_get_413_and_leave_nothing(d):
    r = put(d, "huge.bin", b"h" * (LIMIT + 1))
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no length: refused while streaming
        for _ in range(5):
            yield b"c" * 300_000
    try:
        r = d.http.put(d.url("/api/v1/files/huge.bin"), data=chunks(), timeout=30)
        assert r.status_code == 413, r.text
    except Exception as e:  # the server may close before the client sent everything
        assert isinstance(e, (ConnectionError, OSError)) or "Connection" in type(e).__name__, e
    end = time.monotonic() + 5  # the refused upload's temporary file goes with its connection
    while os.listdir(files_dir(d)) and time.monotonic() < end:
        time.sleep(0.02)
    assert os.listdir(files_dir(d)) == []


def test_viewers_read_and_only_operators_write(d):
    check(put(d, "seen.txt", b"v"), 201)
    viewer = user_session(d, "vera", "viewer")
    operator = user_session(d, "otto", "operator")
    assert viewer.get(d.url("/api/v1/files"), timeout=10).status_code == 200
    assert viewer.get(d.url("/api/v1/files/seen.txt"), timeout=10).content == b"v"
    assert put(d, "v.txt", b"x" * 200_000, session=viewer).status_code == 403
    assert viewer.delete(d.url("/api/v1/files/seen.txt"), timeout=10).status_code == 403
    assert sorted(os.listdir(files_dir(d))) == [".seen.txt.sha256", "seen.txt"]  # and its digest
    check(put(d, "o.txt", b"o", session=operator), 201)
    assert operator.delete(d.url("/api/v1/files/o.txt"), timeout=10).status_code == 204


def test_a_configured_files_dir_is_the_one_served_and_backed_up(daemon_factory, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    d = daemon_factory(config={"plugin.steplib-core": {"files_dir": str(elsewhere)}})
    check(put(d, "a.txt", b"here"), 201)
    assert (elsewhere / "a.txt").read_bytes() == b"here"
    assert not (d.data_dir / "files").exists()
    dest = tmp_path / "backup"
    out = subprocess.run(daemon_command(d.config_path, ["backup", str(dest)]),
                         capture_output=True, text=True, env=clean_env(None), timeout=30)
    assert out.returncode == 0, out.stderr
    assert (dest / "files" / "a.txt").read_bytes() == b"here"
