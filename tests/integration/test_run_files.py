"""test_run_files.py - what core.file.get fetches is kept with its run, per target:
GET /api/v1/runs/{id}/files lists it with the SHA-256 computed once when it was stored, a
download streams it, the log retention removes it with the run's logs, and a step library
out of process (opsc-stephost) keeps its files in the same place. Also the streamed
downloads and the kept digests of /api/v1/files, and a full file system answering 507."""
import ctypes
import json
import hashlib
import os
import subprocess
import time

import pytest

from conftest import RUN_DIR, clean_env, daemon_command, parse_response
from fixtures.runs import check, job, local_target, start, step, user_session, wait

TEST_STEPS = str(RUN_DIR / "tests" / "exec_steps")


def fetch_job(d, targets, sources):
    """A job that writes a file per target (its name in it) and fetches it and `sources`."""
    steps = [{"id": "make", "type": "core.shell.command",
              "params": {"command": "printf 'log of %s\\n' {{ target.name }} > "
                                    f"{sources}/{{{{ target.name }}}}.log"}},
             {"id": "own", "type": "core.file.get",
              "params": {"src": f"{sources}/{{{{ target.name }}}}.log", "dest": "app.log"}},
             {"id": "shared", "type": "core.file.get", "params": {"src": f"{sources}/shared.conf"}}]
    return job(d, {"name": f"fetch-{time.monotonic_ns()}", "targets": {"ids": targets},
                   "steps": steps})


def run_fetch(d, local_tmp, names=("alpha", "beta")):
    (local_tmp / "shared.conf").write_text("shared = yes\n")
    (local_tmp / "shared.conf").chmod(0o644)
    ts = [local_target(d, n) for n in names]
    j = fetch_job(d, [t["id"] for t in ts], local_tmp)
    run = wait(d, start(d, j["id"])["id"])
    assert run["state"] == "succeeded", run
    return run, ts


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_file_get_keeps_each_targets_files_listed_with_digests_and_downloads_them(
        daemon, local_tmp, tmp_path):
    d = daemon
    run, ts = run_fetch(d, local_tmp)
    shared = b"shared = yes\n"
    want = sorted([(t["id"], "app.log", sha(f"log of {t['name']}\n".encode())) for t in ts] +
                  [(t["id"], "shared.conf", sha(shared)) for t in ts])
    out = step(run, "alpha", "own")["outputs"]
    assert out["path"] == f"{ts[0]['id']}/app.log" and out["name"] == "app.log"
    assert out["sha256"] == sha(b"log of alpha\n") and out["size"] == 13
    assert step(run, "beta", "shared")["outputs"]["name"] == "shared.conf"  # the source's name

    viewer = user_session(d, "vera", "viewer")
    listing = check(viewer.get(d.url(f"/api/v1/runs/{run['id']}/files")), 200)
    assert listing["next_cursor"] is None
    assert [(i["target_id"], i["name"], i["sha256"]) for i in listing["items"]] == want
    assert all(i["stored_at"].endswith("Z") and i["size"] > 0 for i in listing["items"])
    for t in ts:
        r = viewer.get(d.url(f"/api/v1/runs/{run['id']}/files/{t['id']}/app.log"))
        assert r.status_code == 200 and r.content == f"log of {t['name']}\n".encode()
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Disposition"] == 'attachment; filename="app.log"'
    # kept 0700 in the data directory, the digest beside each file
    where = d.data_dir / "runs" / run["id"] / "files" / ts[0]["id"]
    assert oct(where.stat().st_mode & 0o777) == "0o700"
    assert sorted(os.listdir(where)) == [".app.log.sha256", ".shared.conf.sha256", "app.log",
                                         "shared.conf"]
    # opsconductord backup takes them with the store, the daemon running
    dest = tmp_path / "backup"
    out = subprocess.run(daemon_command(d.config_path, ["backup", str(dest)]),
                         capture_output=True, text=True, env=clean_env(None), timeout=30)
    assert out.returncode == 0, out.stderr
    copy = dest / "runs" / run["id"] / "files" / ts[1]["id"] / "app.log"
    assert copy.read_bytes() == b"log of beta\n"
    doc = check(d.get("/api/v1/openapi.json"), 200)["paths"]
    assert doc["/api/v1/runs/{id}/files"]["get"]["x-required-role"] == "viewer"
    assert doc["/api/v1/runs/{id}/files/{target_id}/{name}"]["get"]["x-required-role"] == "viewer"


def test_traversal_symlinks_and_digests_are_never_served(daemon, local_tmp):
    d = daemon
    run, ts = run_fetch(d, local_tmp, names=("gamma",))
    base, tid = f"/api/v1/runs/{run['id']}/files", ts[0]["id"]
    where = d.data_dir / "runs" / run["id"] / "files" / tid
    os.symlink(d.data_dir / "master.key", where / "key")
    (where / ".key.sha256").write_text('{"sha256": "' + "0" * 64 + '"}')
    # refused by the name rule (400) or by the router before that (400/404): never served
    for path in [f"{tid}/..%2F..%2F..%2Fmaster.key", f"..%2F{tid}/app.log",
                 f"{tid}/.app.log.sha256", f"{tid}/key", f"{tid}/nothing", f"{'f' * 36}/app.log",
                 f"{tid}/%2e%2e", f"{tid}/.key.sha256"]:
        r = d.get(f"{base}/{path}")
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert b"master" not in r.content and r.headers["Content-Type"] == "application/json"
        assert r.json()["error"]["code"] in ("bad_name", "not_found", "bad_request")
    for path in [f"{tid}/../../../master.key", f"../../../master.key"]:  # as sent, not normalised
        auth = d.http.headers["Authorization"]
        status, _, body = parse_response(d.raw(
            f"GET {base}/{path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
            "Connection: close\r\n\r\n".encode()))
        assert status in (400, 404) and b"master" not in body, (path, status, body)
    names = [i["name"] for i in check(d.get(base), 200)["items"]]
    assert names == ["app.log", "shared.conf"]  # no symlink, no digest listed
    assert d.get("/api/v1/runs/..%2F..%2Fetc/files").status_code in (400, 404)
    assert d.get(f"/api/v1/runs/{'0' * 8}-0000-7000-8000-{'0' * 12}/files").status_code == 404


def test_absolute_or_nested_dest_is_refused_with_the_reason(daemon, local_tmp):
    d = daemon
    t = local_target(d, "delta")
    (local_tmp / "x.txt").write_text("x\n")
    (local_tmp / "x.txt").chmod(0o644)
    j = job(d, {"name": "bad-dest", "targets": {"ids": [t["id"]]}, "steps": [
        {"id": "abs", "type": "core.file.get", "on_failure": "continue",
         "params": {"src": str(local_tmp / "x.txt"), "dest": "/etc/cron.d/x"}},
        {"id": "up", "type": "core.file.get",
         "params": {"src": str(local_tmp / "x.txt"), "dest": ".."}}]})
    run = wait(d, start(d, j["id"])["id"])
    assert "must be a file name" in step(run, "delta", "abs")["error"]
    assert "cannot name a file of the run" in step(run, "delta", "up")["error"]
    assert check(d.get(f"/api/v1/runs/{run['id']}/files"), 200)["items"] == []


def test_log_retention_removes_the_files_with_the_logs(daemon_factory, local_tmp):
    d = daemon_factory(config={"executor": {"log_retention": "1s", "log_sweep_interval": "1s"}})
    run, _ = run_fetch(d, local_tmp, names=("epsilon",))
    where = d.data_dir / "runs" / run["id"]
    assert where.exists()
    end = time.monotonic() + 20
    while where.exists():
        assert time.monotonic() < end, "the retention left the run's files"
        time.sleep(0.2)
    assert check(d.get(f"/api/v1/runs/{run['id']}/files"), 200)["items"] == []


def test_a_library_out_of_process_fetches_into_the_same_run_dir(daemon_factory, local_tmp):
    d = daemon_factory({"steplibs": {"isolation": "always", "host_memory_limit": "256M"}},
                       args=("-p", TEST_STEPS))
    t = local_target(d, "zeta")
    src = local_tmp / "fetched.bin"
    data = os.urandom(70_000)
    src.write_bytes(data)
    src.chmod(0o644)
    j = job(d, {"name": "iso", "targets": {"ids": [t["id"]]}, "steps": [
        {"id": "f", "type": "testexec.fetch", "params": {"src": str(src), "name": "blob.bin"}}]})
    run = wait(d, start(d, j["id"])["id"])
    assert run["state"] == "succeeded", run
    lib = check(d.get("/api/v1/steplibs/testexec/1.0.0"), 200)["isolation"]
    assert lib["runs"] == "process" and lib["pid"] not in (None, d.pid)
    got = step(run, "zeta", "f")["outputs"]["got"]
    assert got["run_dir"] == str(d.data_dir / "runs" / run["id"] / "files" / t["id"])
    assert (got["sha256"], got["path"], got["bytes"]) == (sha(data), f"{t['id']}/blob.bin",
                                                         len(data))
    items = check(d.get(f"/api/v1/runs/{run['id']}/files"), 200)["items"]
    assert [(i["name"], i["sha256"]) for i in items] == [("blob.bin", sha(data))]
    assert d.get(f"/api/v1/runs/{run['id']}/files/{t['id']}/blob.bin").content == data


# ---- /api/v1/files: streamed downloads, digests kept, a full file system ----------------------

def rss_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def test_a_large_download_streams_without_growing_the_daemon(daemon_factory):
    # AddressSanitizer keeps up to 256 MB of freed memory in quarantine, which RSS would count
    asan = os.environ.get("ASAN_OPTIONS", "")
    d = daemon_factory(env={"ASAN_OPTIONS": f"{asan}:quarantine_size_mb=1".lstrip(":")})
    size = int(os.environ.get("OPSC_DOWNLOAD_MB", "200")) << 20
    big = d.data_dir / "files" / "big.img"
    with open(big, "wb") as f:  # sparse: costs no disk
        f.truncate(size)
    r = d.http.head(d.url("/api/v1/files/big.img"), timeout=30)  # the head alone
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == size and not r.content
    before = rss_kb(d.pid)
    r = d.http.get(d.url("/api/v1/files/big.img"), stream=True, timeout=120)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == size
    got, peak, nonzero = 0, before, 0
    for chunk in r.iter_content(1 << 20):
        got += len(chunk)
        nonzero += len(chunk.strip(b"\0"))
        if got % (16 << 20) < (1 << 20):
            peak = max(peak, rss_kb(d.pid))
    assert (got, nonzero) == (size, 0)
    after = rss_kb(d.pid)
    # a whole-file read would add `size`; the stream holds a chunk and the write queue
    assert peak - before < 24 * 1024 and after - before < 24 * 1024, (before, peak, after)
    assert d.get("/health").status_code == 200
    # a client that leaves mid-download costs nothing either
    r = d.http.get(d.url("/api/v1/files/big.img"), stream=True, timeout=60)
    next(r.iter_content(1 << 16))
    r.close()
    assert d.get("/health").status_code == 200


def test_the_list_reads_digests_kept_at_upload_instead_of_hashing(daemon):
    d = daemon
    check(d.http.put(d.url("/api/v1/files/kept.txt"), data=b"first\n"), 201)
    path = d.data_dir / "files" / "kept.txt"
    st = path.stat()
    with open(path, "r+b") as f:  # same size, inode and time: only a re-hash would notice
        f.write(b"FIRST\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    items = {i["name"]: i for i in check(d.get("/api/v1/files"), 200)["items"]}
    assert items["kept.txt"]["sha256"] == sha(b"first\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # changed by other means
    items = {i["name"]: i for i in check(d.get("/api/v1/files"), 200)["items"]}
    assert items["kept.txt"]["sha256"] == sha(b"FIRST\n")
    check(d.http.delete(d.url("/api/v1/files/kept.txt")), 204)
    assert not (d.data_dir / "files" / ".kept.txt.sha256").exists()


CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x20000, 0x4000, 1 << 18


def small_tmpfs_at(path, size="64k"):
    """preexec_fn: the daemon gets a mount namespace of its own with a small tmpfs at `path`."""
    def enter():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0 or \
                libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0 or \
                libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0,
                           f"size={size},mode=0700".encode()) != 0:
            os._exit(99)
    return enter


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
def test_an_upload_into_a_full_file_system_answers_507_and_leaves_nothing(daemon_factory, tmp_path):
    files = tmp_path / "small-files"
    files.mkdir()
    d = daemon_factory(config={"plugin.steplib-core": {"files_dir": str(files)},
                               "server": {"max_upload_size": "4M"}},
                       preexec_fn=small_tmpfs_at(files))
    seen = pathlib_in(d.pid, files)
    # small enough to be sent whole before the answer comes (the connection closes after it)
    r = d.http.put(d.url("/api/v1/files/huge.bin"), data=os.urandom(120_000), timeout=30)
    assert r.status_code == 507, r.text
    err = r.json()["error"]
    assert err["code"] == "insufficient_storage" and "huge.bin" in err["message"]
    assert err["details"] == {"name": "huge.bin"}
    assert os.listdir(seen) == []  # no temporary file left behind
    check(d.http.put(d.url("/api/v1/files/small.txt"), data=b"fits\n"), 201)
    assert d.get("/api/v1/files/small.txt").content == b"fits\n"
    assert sorted(os.listdir(seen)) == [".small.txt.sha256", "small.txt"]


def pathlib_in(pid, path):
    """`path` as the process `pid` sees it, in its own mount namespace."""
    return f"/proc/{pid}/root{path}"


# ---- opsctl files, opsctl runs files -----------------------------------------------------------

def test_opsctl_files_and_run_files_stream_both_ways(daemon, local_tmp, tmp_path):
    from test_opsctl import cli
    d = daemon
    c = cli(d, tmp_path)
    data = os.urandom(3 << 20)
    (tmp_path / "bundle.tar").write_bytes(data)
    out = c.ok("files", "upload", str(tmp_path / "bundle.tar"))
    assert f"stored bundle.tar: {len(data)} bytes, sha256 {sha(data)}" in out
    c.ok("files", "upload", str(tmp_path / "bundle.tar"), "copy.tar")
    listed = json.loads(c.ok("files", "list", "-o", "json"))
    assert [(f["name"], f["sha256"]) for f in listed] == [("bundle.tar", sha(data)),
                                                          ("copy.tar", sha(data))]
    assert "bundle.tar" in c.ok("files", "list") and sha(data) in c.ok("files", "list")
    c.ok("files", "download", "copy.tar", "-O", str(tmp_path / "back.tar"))
    assert (tmp_path / "back.tar").read_bytes() == data
    r = c("files", "download", "nothing.txt", "-O", str(tmp_path / "none"))
    assert r.returncode == 1 and "not_found" in r.stderr and not (tmp_path / "none").exists()
    r = c("files", "upload", str(tmp_path / "bundle.tar"), ".hidden")
    assert r.returncode == 1 and "bad_name" in r.stderr
    assert c.ok("files", "delete", "copy.tar").startswith("deleted file copy.tar")

    run, ts = run_fetch(d, local_tmp, names=("eta", "theta"))
    table = c.ok("runs", "files", run["id"])
    assert "eta" in table and "theta" in table and sha(b"log of eta\n") in table
    items = json.loads(c.ok("runs", "files", run["id"], "-o", "json"))
    assert {(i["target_id"], i["name"]) for i in items} == {(t["id"], n) for t in ts
                                                            for n in ("app.log", "shared.conf")}
    assert c.ok("runs", "files", run["id"], "download", "theta", "app.log", "-O", "-") == \
        "log of theta\n"
    c.ok("runs", "files", run["id"], "download", ts[0]["id"], "shared.conf",
         "-O", str(tmp_path / "s.conf"))
    assert (tmp_path / "s.conf").read_text() == "shared = yes\n"
    r = c("runs", "files", run["id"], "download", "iota", "app.log")
    assert r.returncode == 1 and "no target iota" in r.stderr
    r = c("runs", "files", run["id"], "fetch")
    assert r.returncode == 2
