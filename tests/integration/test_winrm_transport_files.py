"""transport-winrm file copy through the shell: base64 lines on stdin/stdout, SHA-256 on both ends."""

import hashlib
import os
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "transport" / "winrm"))
import drive  # noqa: E402
from drive import one  # noqa: E402

pytestmark = pytest.mark.skipif(not drive.DRIVER.exists() or not drive.PLUGIN.exists(), reason="transport-winrm not built")
SH = {"shell": "sh"}  # the test server runs /bin/sh, not PowerShell: use the POSIX file scripts
# 1 GiB; 64 MiB under sanitizers (the same code paths, a tenth of the CI time).
BIG = int(os.environ.get("OPSC_WINRM_BIG_FILE", str(64 << 20 if drive.sanitized() else 1 << 30)))


@pytest.fixture
def server(tmp_path):
    servers = drive.Servers(tmp_path)
    yield servers
    servers.stop_all()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_put_and_get_small_file_encrypted(server, tmp_path):
    srv = server(strict=True)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(500000) + b"\n\r\n\0tail")
    remote = tmp_path / "remote dir" / "copy 'quoted'.bin"
    remote.parent.mkdir()
    back = tmp_path / "back.bin"
    steps = [
        {"op": "put", "local": str(src), "remote": str(remote), "mode": 0o640},
        {"op": "get", "local": str(back), "remote": str(remote)},
    ]
    conn, res = one(srv, steps, options=SH)
    assert conn["status"] == 0, conn
    digest = sha256_file(src)
    assert res[0]["status"] == 0, res[0]
    assert res[0]["sha256"] == digest and res[0]["bytes"] == src.stat().st_size
    assert sha256_file(remote) == digest
    assert (remote.stat().st_mode & 0o777) == 0o640
    assert res[1]["status"] == 0, res[1]
    assert res[1]["sha256"] == digest and sha256_file(back) == digest
    assert (back.stat().st_mode & 0o777) == 0o600
    assert all(r["encrypted"] for r in srv.requests() if r.get("action"))


def test_empty_file_round_trip(server, tmp_path):
    srv = server(strict=True)
    src = tmp_path / "empty"
    src.write_bytes(b"")
    steps = [{"op": "put", "local": str(src), "remote": str(tmp_path / "r")}, {"op": "get", "local": str(tmp_path / "b"), "remote": str(tmp_path / "r")}]
    _, res = one(srv, steps, options=SH)
    assert [r["status"] for r in res] == [0, 0], res
    assert res[1]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_get_of_a_missing_file_fails_and_keeps_the_local_file(server, tmp_path):
    srv = server(strict=True)
    local = tmp_path / "earlier"
    local.write_bytes(b"an earlier download")
    _, res = one(srv, [{"op": "get", "local": str(local), "remote": str(tmp_path / "missing")}], options=SH)
    assert res[0]["status"] == -2, res[0]  # OPSC_ENOENT
    assert "no such file" in res[0]["error"]
    assert local.read_bytes() == b"an earlier download"
    assert not (tmp_path / "earlier.opsc-part").exists()


def test_powershell_put_script_and_stdin_framing(server, tmp_path):
    """On Windows the writer is PowerShell; the test server can only record it (it runs /bin/sh)."""
    srv = server(strict=True)
    src = tmp_path / "ps.bin"
    src.write_bytes(b"hello powershell")
    _, res = one(srv, [{"op": "put", "local": str(src), "remote": "C:\\Temp\\it's.bin"}])
    assert res[0]["status"] != 0  # /bin/sh cannot run the PowerShell writer
    cmd = [r for r in srv.requests() if r.get("action") == "Command"][0]
    script = cmd["powershell_script"]
    assert "$path = 'C:\\Temp\\it''s.bin'" in script
    assert "[Security.Cryptography.SHA256]::Create()" in script
    assert "[Convert]::FromBase64String($line)" in script
    stdin = "".join(r.get("stdin", "") for r in srv.requests() if r.get("action") == "Send")
    # the data line goes first; the digest line follows unless /bin/sh has already quit
    assert stdin.startswith("aGVsbG8gcG93ZXJzaGVsbA==\n")
    assert stdin[len("aGVsbG8gcG93ZXJzaGVsbA==\n"):] in ("", "#sha256 " + hashlib.sha256(b"hello powershell").hexdigest() + "\n")


def test_cancel_a_put(server, tmp_path):
    srv = server(strict=True)
    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        fh.truncate(64 << 20)
    remote = tmp_path / "r.bin"
    _, res = one(srv, [{"op": "put", "local": str(src), "remote": str(remote), "cancel_after_ms": 300}], options=SH)
    assert res[0]["status"] == -125, res[0]
    assert not remote.exists()


@pytest.mark.skipif(BIG <= 0, reason="OPSC_WINRM_BIG_FILE=0")
def test_one_gigabyte_put_and_get_with_checksum(server, tmp_path):
    # Basic over HTTPS: the test server's NTLM sealing is pure-Python RC4 (a few MB/s);
    # encryption throughput is measured by the benchmark with Kerberos (AES in C).
    tls = drive.make_tls_material(str(tmp_path / "tls"))
    srv = server(auth=["basic"], tls={"cert": tls["server_pem"], "key": tls["server_key"]}, chunk_size=262144, request_log=None)
    src = tmp_path / "gig.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as fh:
        for i in range(BIG >> 20):
            fh.write(block[i % 7 :] + block[: i % 7])
    digest = sha256_file(src)
    remote, back = tmp_path / "remote.bin", tmp_path / "back.bin"
    steps = [{"op": "put", "local": str(src), "remote": str(remote)}, {"op": "get", "local": str(back), "remote": str(remote)}]
    t0 = time.monotonic()
    conn, res = one(srv, steps, auth="basic", options=dict(SH, ca_bundle=tls["server_pem"]), address="localhost", timeout=1800)
    assert conn["status"] == 0, conn
    assert res[0]["status"] == 0 and res[0]["sha256"] == digest, res[0]
    assert res[1]["status"] == 0 and res[1]["sha256"] == digest, res[1]
    assert sha256_file(back) == digest
    mb = BIG / 1e6
    print(f"\n{BIG} bytes: put {res[0]['ms'] / 1000:.1f} s ({mb / (res[0]['ms'] / 1000):.0f} MB/s), "
          f"get {res[1]['ms'] / 1000:.1f} s ({mb / (res[1]['ms'] / 1000):.0f} MB/s), total {time.monotonic() - t0:.1f} s")
