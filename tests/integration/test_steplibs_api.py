"""test_steplibs_api.py - /api/v1/steplibs on the real daemon: listing, uploads (checksums,
signatures, refusals, versions side by side), deletes, restarts, roles and the audit log.

The upload test libraries are built by meson in tests/plugins as *.upload files (see its
meson.build); the pin rule with stored jobs is also covered by tests/unit/test_steplibs_api.c.
"""
import base64
import hashlib
import pathlib
import shutil
import struct
import subprocess

import pytest

from conftest import BUILD_DIR

TEST_PLUGINS = BUILD_DIR / "tests" / "plugins"
UPLIB = {v: TEST_PLUGINS / f"test-uplib-{v}.upload" for v in ("1.0.0", "1.1.0", "2.0.0")}
OTHER_1_0_0 = TEST_PLUGINS / "test-uplib-1.0.0-other.upload"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def upload(d, path_or_bytes, sha=None, signature=None, session=None, via_query=False):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else pathlib.Path(path_or_bytes).read_bytes()
    headers = {"Content-Type": "application/octet-stream"}
    url = "/api/v1/steplibs"
    digest = sha if sha is not None else sha256(data)
    if via_query:
        url += "?sha256=" + digest
    elif digest:
        headers["X-Opsc-Sha256"] = digest
    if signature:
        headers["X-Opsc-Signature"] = signature
    s = session or d.http
    return s.post(d.url(url), data=data, headers=headers, timeout=30)


def error(r, status, code, text=""):
    assert r.status_code == status, r.text
    e = r.json()["error"]
    assert e["code"] == code, e
    assert text in e["message"], e
    return e


def keypair(tmp, name):
    priv, pub = tmp / f"{name}.key", tmp / f"{name}.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(priv)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True)
    return priv, pub


def sign(priv, path):
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(priv), "-in",
                          str(path)], check=True, capture_output=True).stdout
    assert len(sig) == 64
    return base64.b64encode(sig).decode()


def openssh_line(pub_pem, comment):
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub_pem), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    raw = der[-32:]
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + raw
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}\n"


def library(d, name):
    r = d.get(f"/api/v1/steplibs/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def test_bundled_libraries_are_listed_with_schemas_files_and_step_kinds(daemon):
    r = daemon.get("/api/v1/steplibs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None and body["refused"] == []
    libs = {lib["name"]: lib for lib in body["items"]}
    assert {"core", "linux", "windows"} <= set(libs)
    core = libs["core"]
    v = core["versions"][0]
    assert core["latest"] == v["version"] and core["majors"] == {str(v["major"]): v["version"]}
    assert v["bundled"] is True and v["signer"] is None and v["installed_at"] is None
    assert v["sha256"] == sha256(pathlib.Path(v["path"]).read_bytes())
    steps = {s["type"]: s for s in v["steps"]}
    cmd = steps["core.shell.command"]
    assert cmd["kind"] == "declarative" and cmd["raw_params"] == ["command"]
    assert cmd["params_schema"]["properties"]["command"]["type"] == "string"  # parsed, not text
    assert set(cmd["os_families"]) == {"linux", "windows"}
    assert steps["core.wait.duration"]["kind"] == "imperative"
    assert "output_rule" not in steps["core.wait.duration"]
    restart = library(daemon, "linux")["versions"][0]["steps"]
    assert [s["os_families"] for s in restart if s["type"] == "linux.service.restart"] == [["linux"]]
    assert daemon.get("/api/v1/steplibs/nosuch").status_code == 404
    assert daemon.get("/api/v1/steplibs/core/9.9.9").status_code == 404


def test_upload_installs_without_restart_side_by_side_and_again_is_idempotent(daemon):
    r = upload(daemon, UPLIB["1.0.0"])
    assert r.status_code == 201, r.text
    v1 = r.json()
    assert r.headers["Location"] == "/api/v1/steplibs/uplib/1.0.0"
    assert v1["name"] == "uplib" and v1["version"] == "1.0.0" and v1["bundled"] is False
    assert v1["installed_by"] == "admin" and v1["signer"] is None
    assert any("unsigned" in w for w in v1["warnings"])
    path = pathlib.Path(v1["path"])
    assert path.parent == pathlib.Path(daemon.data_dir) / "steplibs"
    assert path.name == f"uplib-1.0.0-{v1['sha256'][:12]}.so"
    assert path.stat().st_mode & 0o777 == 0o644 and path.parent.stat().st_mode & 0o777 == 0o755
    assert {s["type"]: s["kind"] for s in v1["steps"]} == {"uplib.echo": "declarative",
                                                           "uplib.noop": "imperative"}

    again = upload(daemon, UPLIB["1.0.0"], via_query=True)
    assert again.status_code == 200, again.text
    assert again.json()["path"] == v1["path"]
    for version in ("1.1.0", "2.0.0"):
        assert upload(daemon, UPLIB[version]).status_code == 201
    lib = library(daemon, "uplib")
    assert [v["version"] for v in lib["versions"]] == ["2.0.0", "1.1.0", "1.0.0"]
    assert lib["latest"] == "2.0.0" and lib["majors"] == {"1": "1.1.0", "2": "2.0.0"}
    one = daemon.get("/api/v1/steplibs/uplib/1.1.0").json()
    assert "uplib.extra" in {s["type"] for s in one["steps"]}
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        f"uplib-{v}-{sha256(UPLIB[v].read_bytes())[:12]}.so" for v in UPLIB)
    loaded = [p for p in daemon.get("/api/v1/plugins").json()["items"] if p["name"] == "test-uplib"]
    assert sorted(p["version"] for p in loaded if p["state"] == "loaded") == ["1.0.0", "1.1.0",
                                                                              "2.0.0"]


BAD_UPLOADS = [
    ("checksum", lambda: (UPLIB["1.0.0"].read_bytes(), "0" * 64), 400, "checksum_mismatch",
     "not the 0000"),
    ("no checksum", lambda: (UPLIB["1.0.0"].read_bytes(), ""), 400, "bad_request", "X-Opsc-Sha256"),
    ("not an ELF", lambda: (b"#!/bin/sh\necho hi\n", None), 400, "not_elf", "not an ELF file"),
    ("wrong ABI", lambda: ((TEST_PLUGINS / "test-bad-major.so").read_bytes(), None), 400,
     "refused", "it was built for ABI 2.0"),
    ("broken schema", lambda: ((TEST_PLUGINS / "test-uplib-badschema.upload").read_bytes(), None),
     400, "refused", "uplib.echo: params_schema: schema /properties/message: unknown or "
     "unsupported keyword 'typ'"),
    ("broken template", lambda: ((TEST_PLUGINS / "test-broken-steplib.so").read_bytes(), None),
     400, "refused", "broken.typo: posix_template 1:22: unknown parameter 'nmae'"),
    ("not a step library", lambda: ((TEST_PLUGINS / "test-good.so").read_bytes(), None), 400,
     "refused", "only step libraries can be installed"),
]


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_bad_uploads_are_refused_with_the_reason_and_leave_nothing(daemon, case):
    _, make, status, code, text = case
    data, sha = make()
    r = upload(daemon, data, sha=sha)
    error(r, status, code, text)
    details = r.json()["error"]["details"]
    if case[0] == "broken template":  # the parts of the message, as job validation gives them
        assert details == {"step": "broken.typo", "field": "posix_template", "position": "1:22",
                           "message": "unknown parameter 'nmae'"}, details
    elif case[0] == "broken schema":
        assert details == {"step": "uplib.echo", "field": "params_schema",
                           "message": "schema /properties/message: unknown or unsupported "
                           "keyword 'typ'"}, details
    assert list((pathlib.Path(daemon.data_dir) / "steplibs").iterdir()) == []
    assert daemon.get("/api/v1/system").json()["plugins"]["refused"] == 0
    assert daemon.get("/health").status_code == 200


def test_same_name_and_version_with_other_bytes_is_a_conflict(daemon):
    assert upload(daemon, UPLIB["1.0.0"]).status_code == 201
    error(upload(daemon, OTHER_1_0_0), 409, "conflict", "test-uplib 1.0.0 is already loaded")
    assert [v["summary"] for v in library(daemon, "uplib")["versions"]] == [
        "the upload test library"]


def test_bundled_library_cannot_be_replaced_nor_deleted_but_a_newer_version_installs(
        daemon_factory, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(UPLIB["1.0.0"], bundle / "test-uplib.so")
    d = daemon_factory(args=["-p", str(bundle)])
    error(upload(d, OTHER_1_0_0), 409, "conflict", "already loaded")
    assert upload(d, UPLIB["2.0.0"]).status_code == 201
    lib = library(d, "uplib")
    assert [(v["version"], v["bundled"]) for v in lib["versions"]] == [("2.0.0", False),
                                                                       ("1.0.0", True)]
    error(d.request("DELETE", "/api/v1/steplibs/uplib/1.0.0"), 409, "bundled", "bundled")
    error(d.request("DELETE", "/api/v1/steplibs/core/" + library(d, "core")["latest"]), 409,
          "bundled")
    assert d.request("DELETE", "/api/v1/steplibs/uplib/2.0.0").status_code == 204
    assert [v["version"] for v in library(d, "uplib")["versions"]] == ["1.0.0"]


def test_delete_unloads_for_new_runs_removes_the_file_and_the_version_can_come_back(daemon):
    for v in ("1.0.0", "2.0.0"):
        assert upload(daemon, UPLIB[v]).status_code == 201
    path = pathlib.Path(daemon.get("/api/v1/steplibs/uplib/2.0.0").json()["path"])
    r = daemon.request("DELETE", "/api/v1/steplibs/uplib/2.0.0")
    assert r.status_code == 204, r.text
    assert not path.exists()
    assert daemon.get("/api/v1/steplibs/uplib/2.0.0").status_code == 404
    assert library(daemon, "uplib")["latest"] == "1.0.0"
    states = {(p["version"], p["state"]) for p in daemon.get("/api/v1/plugins").json()["items"]
              if p["name"] == "test-uplib"}
    assert states == {("1.0.0", "loaded"), ("2.0.0", "removed")}
    assert daemon.request("DELETE", "/api/v1/steplibs/uplib/2.0.0").status_code == 404
    assert upload(daemon, UPLIB["2.0.0"]).status_code == 201
    assert path.exists() and library(daemon, "uplib")["latest"] == "2.0.0"


def test_delete_of_a_pinned_version_answers_409_with_the_jobs(daemon):
    for v in ("1.0.0", "2.0.0"):
        assert upload(daemon, UPLIB[v]).status_code == 201
    job = {"name": "uses-uplib-2", "steps": [{"id": "hi", "type": "uplib.echo@2",
                                               "params": {"message": "hi"}}]}
    r = daemon.http.post(daemon.url("/api/v1/jobs"), json=job, timeout=10)
    assert r.status_code == 201, r.text
    e = error(daemon.request("DELETE", "/api/v1/steplibs/uplib/2.0.0"), 409, "pinned",
              "uses-uplib-2")
    assert [j["name"] for j in e["details"]["jobs"]] == ["uses-uplib-2"]
    assert e["details"]["jobs"][0]["steps"] == ["uplib.echo@2"]
    assert daemon.request("DELETE", "/api/v1/steplibs/uplib/1.0.0").status_code == 204


def test_installed_libraries_are_loaded_again_after_a_restart(daemon):
    for v in ("1.0.0", "2.0.0"):
        assert upload(daemon, UPLIB[v]).status_code == 201
    d = daemon.restart()
    lib = library(d, "uplib")
    assert [(v["version"], v["installed_by"]) for v in lib["versions"]] == [("2.0.0", "admin"),
                                                                            ("1.0.0", "admin")]
    assert "installed in" in d.stderr() and "uploads must be signed" not in d.stderr()


def test_signed_uploads_with_trusted_keys_in_pem_and_openssh_form(daemon_factory, tmp_path):
    priv, pub = keypair(tmp_path, "publisher")
    other, _ = keypair(tmp_path, "stranger")
    d = daemon_factory(config={"steplibs": {"trusted_keys": str(pub)}})
    error(upload(d, UPLIB["1.0.0"]), 400, "signature_required", "X-Opsc-Signature")
    error(upload(d, UPLIB["1.0.0"], signature=sign(other, UPLIB["1.0.0"])), 400, "bad_signature",
          "does not verify")
    error(upload(d, UPLIB["1.0.0"], signature="bm90IGEgc2lnbmF0dXJl"), 400, "bad_signature",
          "64-byte")
    r = upload(d, UPLIB["1.0.0"], signature=sign(priv, UPLIB["1.0.0"]))
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == []
    signer = r.json()["signer"]
    assert signer["name"] == "publisher.pem"

    ssh_pub = tmp_path / "publishers.pub"
    ssh_pub.write_text("# trusted publishers\n" + openssh_line(pub, "acme-release"))
    keygen = subprocess.run(["ssh-keygen", "-l", "-f", str(ssh_pub)], capture_output=True,
                            text=True, check=True).stdout
    assert keygen.split()[1] == signer["fingerprint"]

    assert d.stop() == 0
    d2 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)},
                                "steplibs": {"trusted_keys": str(ssh_pub)}})
    v = d2.get("/api/v1/steplibs/uplib/1.0.0").json()
    assert v["signer"] == {"fingerprint": signer["fingerprint"], "name": "acme-release"}
    r = upload(d2, UPLIB["2.0.0"], signature=sign(priv, UPLIB["2.0.0"]))
    assert r.status_code == 201 and r.json()["signer"]["name"] == "acme-release"
    assert "uploads must be signed" in d2.stderr()


def test_a_withdrawn_key_refuses_its_libraries_at_start(daemon_factory, tmp_path):
    priv, pub = keypair(tmp_path, "publisher")
    _, other_pub = keypair(tmp_path, "successor")
    d = daemon_factory(config={"steplibs": {"trusted_keys": str(pub)}})
    assert upload(d, UPLIB["1.0.0"], signature=sign(priv, UPLIB["1.0.0"])).status_code == 201
    assert d.stop() == 0
    d2 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)},
                                "steplibs": {"trusted_keys": str(other_pub)}})
    body = d2.get("/api/v1/steplibs").json()
    assert "uplib" not in {lib["name"] for lib in body["items"]}
    assert len(body["refused"]) == 1 and "does not verify" in body["refused"][0]["reason"]
    path = pathlib.Path(body["refused"][0]["path"])
    assert path.exists()
    assert d2.request("DELETE", "/api/v1/steplibs/uplib/1.0.0").status_code == 204
    assert not path.exists() and d2.get("/api/v1/steplibs").json()["refused"] == []


def test_bad_key_configuration_stops_the_daemon_at_start(run_daemon, tmp_path):
    r = run_daemon(config={"steplibs": {"require_signature": "yes"}})
    assert r.returncode != 0 and "require_signature = yes needs trusted_keys" in r.stderr
    rsa = tmp_path / "rsa.pub"
    rsa.write_text("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ build@host\n")
    r = run_daemon(config={"steplibs": {"trusted_keys": str(rsa)}})
    assert r.returncode != 0 and "rsa.pub:1: only ssh-ed25519 keys" in r.stderr


def token(d, role):
    r = d.http.post(d.url("/api/v1/tokens"), json={"name": f"steplibs-{role}", "role": role})
    assert r.status_code == 201, r.text
    return d.session(r.json()["token"])


def test_only_admins_upload_and_delete_and_viewers_list(daemon):
    operator, viewer = token(daemon, "operator"), token(daemon, "viewer")
    error(upload(daemon, UPLIB["1.0.0"], session=operator), 403, "forbidden")
    assert list((pathlib.Path(daemon.data_dir) / "steplibs").iterdir()) == []
    assert upload(daemon, UPLIB["1.0.0"]).status_code == 201
    for s in (operator, viewer):
        assert s.get(daemon.url("/api/v1/steplibs"), timeout=10).status_code == 200
        assert s.get(daemon.url("/api/v1/steplibs/uplib/1.0.0"), timeout=10).status_code == 200
        r = s.delete(daemon.url("/api/v1/steplibs/uplib/1.0.0"), timeout=10)
        assert r.status_code == 403, r.text
    assert daemon.get("/api/v1/steplibs/uplib/1.0.0").status_code == 200


def audit(d, action):
    r = d.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_uploads_and_deletes_are_in_the_audit_log(daemon):
    assert upload(daemon, UPLIB["1.0.0"]).status_code == 201
    error(upload(daemon, b"not elf"), 400, "not_elf")
    assert daemon.request("DELETE", "/api/v1/steplibs/uplib/1.0.0").status_code == 204
    ups = audit(daemon, "POST /api/v1/steplibs")
    assert [(e["outcome"], e["status"]) for e in ups] == [("failure", 400), ("success", 201)]
    assert ups[1]["object"] == "uplib@1.0.0" and ups[1]["actor"] == "admin"
    assert ups[0]["object"] == "sha256:" + sha256(b"not elf")[:16]
    dels = audit(daemon, "DELETE /api/v1/steplibs/{name}/{version}")
    assert [(e["object"], e["outcome"]) for e in dels] == [("uplib@1.0.0", "success")]


def test_the_routes_are_in_the_openapi_document(daemon):
    doc = daemon.get("/api/v1/openapi.json").json()
    post = doc["paths"]["/api/v1/steplibs"]["post"]
    assert post["x-required-role"] == "admin"
    assert doc["paths"]["/api/v1/steplibs"]["get"]["x-required-role"] == "viewer"
    assert doc["paths"]["/api/v1/steplibs/{name}/{version}"]["delete"]["x-required-role"] == "admin"
