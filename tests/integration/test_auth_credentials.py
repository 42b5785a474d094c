"""test_auth_credentials.py - the credentials API: types, validation, fingerprints, in-use refusal, key rotation."""
import pathlib
import subprocess

import pytest


def keygen(tmp, name, kind="ed25519", passphrase="", fmt=None, bits=None):
    path = pathlib.Path(tmp) / name
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "", "-f", str(path)]
    if fmt:
        cmd += ["-m", fmt]
    if bits:
        cmd += ["-b", str(bits)]
    subprocess.run(cmd, check=True)
    fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path) + ".pub"],
                        check=True, capture_output=True, text=True).stdout.split()[1]
    return path.read_text(), fp


def post(d, body):
    return d.http.post(d.url("/api/v1/credentials"), json=body)


def test_ssh_key_credential_shows_only_metadata_and_fingerprint(daemon, tmp_path):
    key, fp = keygen(tmp_path, "k", passphrase="pp-123456")
    r = post(daemon, {"name": "deploy", "type": "ssh_key", "username": "deploy",
                      "private_key": key, "passphrase": "pp-123456", "description": "CI"})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["fingerprint"] == fp and c["key_type"] == "ssh-ed25519"
    assert c["warnings"] == []
    assert {"id", "created_at", "updated_at", "version"} <= set(c)
    for k in ("private_key", "passphrase", "secret", "password", "value"):
        assert k not in c
    got = daemon.http.get(daemon.url("/api/v1/credentials/" + c["id"])).json()
    assert got["fingerprint"] == fp and "secret" not in got and "warnings" not in got
    assert r.headers["Location"].endswith(c["id"])


def test_openssh_and_pem_formats_are_accepted_and_rsa_warns(daemon, tmp_path):
    key, fp = keygen(tmp_path, "rsa", kind="rsa", fmt="PEM", bits=3072)
    r = post(daemon, {"name": "rsa", "type": "ssh_key", "username": "u", "private_key": key})
    assert r.status_code == 201, r.text
    assert r.json()["fingerprint"] == fp
    assert any("ed25519" in w for w in r.json()["warnings"])
    key, fp = keygen(tmp_path, "ec", kind="ecdsa", fmt="PKCS8")
    r = post(daemon, {"name": "ec", "type": "ssh_key", "username": "u", "private_key": key})
    assert r.status_code == 201 and r.json()["fingerprint"] == fp


@pytest.mark.parametrize("body,field", [
    ({"type": "ssh_key", "username": "u"}, "private_key"),
    ({"type": "ssh_key", "username": "u", "private_key": "not a key"}, "valid private key"),
    ({"type": "ssh_password", "username": "u"}, "password"),
    ({"type": "winrm", "username": "u", "password": "p", "auth": "digest"}, "auth"),
    ({"type": "winrm", "username": "u", "auth": "certificate"}, "certificate"),
    ({"type": "secret"}, "value"),
    ({"type": "secret", "value": "v", "private_key": "x"}, "does not apply"),
    ({"type": "magic", "value": "v"}, "type"),
    ({"type": "secret", "value": "v", "fingerprint": "x"}, "fingerprint"),
])
def test_invalid_credentials_are_400_naming_the_field(daemon, body, field):
    r = post(daemon, dict(body, name="x"))
    assert r.status_code == 400
    assert field in r.json()["error"]["message"]


def test_encrypted_key_needs_its_passphrase(daemon, tmp_path):
    key, _ = keygen(tmp_path, "k", passphrase="right-pass")
    r = post(daemon, {"name": "k", "type": "ssh_key", "username": "u", "private_key": key})
    assert r.status_code == 400 and "passphrase" in r.json()["error"]["message"]
    r = post(daemon, {"name": "k", "type": "ssh_key", "username": "u", "private_key": key,
                      "passphrase": "wrong-pass"})
    assert r.status_code == 400 and "wrong passphrase" in r.json()["error"]["message"]
    assert "wrong-pass" not in r.text


def test_winrm_and_secret_types(daemon):
    r = post(daemon, {"name": "w", "type": "winrm", "username": "Administrator",
                      "password": "P@ss", "domain": "CORP"})
    assert r.status_code == 201 and r.json()["auth"] == "ntlm" and r.json()["domain"] == "CORP"
    r = post(daemon, {"name": "s", "type": "secret", "value": "https://hooks.example/x"})
    assert r.status_code == 201 and "value" not in r.json()
    assert post(daemon, {"name": "s", "type": "secret", "value": "dup"}).status_code == 409


def test_patch_keeps_or_replaces_secrets_and_checks_if_match(daemon, tmp_path):
    key, fp = keygen(tmp_path, "k", passphrase="pp-1")
    c = post(daemon, {"name": "k", "type": "ssh_key", "username": "u", "private_key": key,
                      "passphrase": "pp-1"}).json()
    url = daemon.url("/api/v1/credentials/" + c["id"])
    r = daemon.http.patch(url, json={"name": "k2"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["fingerprint"] == fp and r.json()["version"] == 2
    assert daemon.http.patch(url, json={"name": "k3"}, headers={"If-Match": '"1"'}).status_code == 412
    # A new passphrase is checked against the stored (decrypted) key.
    assert daemon.http.patch(url, json={"passphrase": "nope"}).status_code == 400
    key2, fp2 = keygen(tmp_path, "k2")
    r = daemon.http.patch(url, json={"private_key": key2, "passphrase": None})
    assert r.status_code == 200 and r.json()["fingerprint"] == fp2
    assert daemon.http.patch(url, json={"type": "secret"}).status_code == 400
    # The name index follows renames.
    assert post(daemon, {"name": "k", "type": "secret", "value": "v"}).status_code == 201
    assert post(daemon, {"name": "k2", "type": "secret", "value": "v"}).status_code == 409


def test_delete_refuses_a_credential_in_use_unless_forced(daemon):
    c = post(daemon, {"name": "used", "type": "ssh_password", "username": "u",
                      "password": "pw"}).json()
    # Targets come with another module; simulate its index entry through the store.
    assert daemon.stop() == 0
    subprocess.run(["mdb_load", "-T", "-s", "targets_by_credential", str(daemon.data_dir)],
                   input=("%s/0190a6e4-7a2b-7c3d-8e4f-001122334455\n"
                          "0190a6e4-7a2b-7c3d-8e4f-001122334455\n" % c["id"]).encode(),
                   check=True)
    d = daemon.restart()
    url = d.url("/api/v1/credentials/" + c["id"])
    r = d.http.delete(url)
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "in_use"
    assert err["details"]["used_by"][0]["id"] == "0190a6e4-7a2b-7c3d-8e4f-001122334455"
    assert d.http.delete(url + "?force=true").status_code == 204
    assert d.http.get(url).status_code == 404


def test_rotate_key_online_and_offline_keeps_credentials_usable(daemon_factory, run_daemon,
                                                                tmp_path):
    d = daemon_factory()
    key, fp = keygen(tmp_path, "k", passphrase="pp-rot")
    c = post(d, {"name": "k", "type": "ssh_key", "username": "u", "private_key": key,
                 "passphrase": "pp-rot"}).json()
    keyfile = pathlib.Path(d.data_dir) / "master.key"
    before = keyfile.read_text()
    r = d.http.post(d.url("/api/v1/vault/rotate-key"))
    assert r.status_code == 200 and r.json()["rewrapped"] == 1
    assert keyfile.read_text() != before
    assert oct(keyfile.stat().st_mode & 0o777) == "0o600"
    # Changing the passphrase re-checks the stored key: it still decrypts.
    url = d.url("/api/v1/credentials/" + c["id"])
    r = d.http.patch(url, json={"passphrase": "pp-rot"})
    assert r.status_code == 200, r.text
    assert d.stop() == 0
    r = run_daemon(["-d", str(d.data_dir), "rotate-key"])
    assert r.returncode == 0, r.stderr
    assert "1 credential data keys re-wrapped" in r.stdout
    d2 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}})
    url = d2.url("/api/v1/credentials/" + c["id"])
    r = d2.http.patch(url, json={"passphrase": "pp-rot"})
    assert r.status_code == 200, r.text + d2.stderr()[-2000:]
    assert d2.stop() == 0
    keyfile.write_text(before)  # the old key no longer opens anything
    d3 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}}, wait_ready=False)
    assert d3.proc.wait(15) != 0


def test_credentials_api_lists_with_paging(daemon):
    for i in range(3):
        assert post(daemon, {"name": "s%d" % i, "type": "secret", "value": "v"}).status_code == 201
    page = daemon.http.get(daemon.url("/api/v1/credentials?limit=2")).json()
    assert [c["name"] for c in page["items"]] == ["s0", "s1"] and page["next_cursor"]
    page = daemon.http.get(daemon.url("/api/v1/credentials?limit=2&cursor="
                                      + page["next_cursor"])).json()
    assert [c["name"] for c in page["items"]] == ["s2"] and page["next_cursor"] is None
