"""test_auth_security.py - forged and stale tokens are refused; secrets never leak; a wrong master key refuses to start."""
import base64
import hashlib
import os
import pathlib
import subprocess
import time

import requests

from conftest import store_bytes
from fixtures.identity import Recorder, claims_for, find_leaks, forge_jwt, signing_key

HS256 = {"alg": "HS256", "typ": "JWT"}


def me_with(daemon, token):
    return requests.get(daemon.url("/api/v1/auth/me"), timeout=10,
                        headers={"Authorization": "Bearer " + token})


def admin_id(daemon):
    return daemon.http.get(daemon.url("/api/v1/users/me")).json()["id"]


def test_a_token_forged_with_our_key_is_accepted(daemon):
    # The forging helper is right, so the refusals below mean something.
    tok = forge_jwt(HS256, claims_for(admin_id(daemon)), signing_key(daemon))
    assert me_with(daemon, tok).status_code == 200


def test_alg_none_is_401(daemon):
    tok = forge_jwt({"alg": "none", "typ": "JWT"}, claims_for(admin_id(daemon)), b"", None)
    assert me_with(daemon, tok).status_code == 401


def test_hs512_when_hs256_is_expected_is_401(daemon):
    tok = forge_jwt({"alg": "HS512", "typ": "JWT"}, claims_for(admin_id(daemon)),
                    signing_key(daemon), hashlib.sha512)
    assert me_with(daemon, tok).status_code == 401


def test_token_signed_with_another_key_is_401(daemon):
    tok = forge_jwt(HS256, claims_for(admin_id(daemon)), os.urandom(32))
    assert me_with(daemon, tok).status_code == 401


def test_expired_token_is_401(daemon):
    now = int(time.time())
    tok = forge_jwt(HS256, claims_for(admin_id(daemon), iat=now - 1000, exp=now - 100),
                    signing_key(daemon))
    assert me_with(daemon, tok).status_code == 401


def test_token_not_yet_valid_is_401(daemon):
    tok = forge_jwt(HS256, claims_for(admin_id(daemon), nbf=int(time.time()) + 300),
                    signing_key(daemon))
    assert me_with(daemon, tok).status_code == 401


def test_wrong_issuer_is_401(daemon):
    tok = forge_jwt(HS256, claims_for(admin_id(daemon), iss="evil"), signing_key(daemon))
    assert me_with(daemon, tok).status_code == 401


def test_tampered_payload_is_401(daemon):
    create = daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "tim", "role": "viewer", "password": "tim-Pw-12345"})
    assert create.status_code == 201
    real = daemon.login("tim", "tim-Pw-12345").json()["access_token"]
    head, payload, sig = real.split(".")
    claims = __import__("json").loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    claims["sub"] = admin_id(daemon)
    forged_payload = base64.urlsafe_b64encode(
        __import__("json").dumps(claims).encode()).rstrip(b"=").decode()
    assert me_with(daemon, real).status_code == 200
    assert me_with(daemon, f"{head}.{forged_payload}.{sig}").status_code == 401


def test_revoked_refresh_token_is_401(daemon):
    t = daemon.login("admin", daemon.admin_password).json()
    s = daemon.session(t["access_token"])
    assert s.post(daemon.url("/api/v1/auth/logout"),
                  json={"refresh_token": t["refresh_token"]}).status_code == 204
    r = requests.post(daemon.url("/api/v1/auth/refresh"),
                      json={"refresh_token": t["refresh_token"]}, timeout=10)
    assert r.status_code == 401


def test_token_of_a_since_disabled_user_is_401(daemon):
    u = daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "dan", "role": "operator", "password": "dan-Pw-12345"}).json()
    access = daemon.login("dan", "dan-Pw-12345").json()["access_token"]
    api_tok = daemon.session(access).post(daemon.url("/api/v1/tokens"),
                                          json={"name": "dan's"}).json()["token"]
    assert me_with(daemon, access).status_code == 200
    assert me_with(daemon, api_tok).status_code == 200
    assert daemon.http.patch(daemon.url("/api/v1/users/" + u["id"]),
                             json={"enabled": False}).status_code == 200
    assert me_with(daemon, access).status_code == 401
    assert me_with(daemon, api_tok).status_code == 401


# ---- secrets ---------------------------------------------------------------------

def ssh_keypair(tmp, passphrase):
    path = pathlib.Path(tmp) / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f",
                    str(path)], check=True)
    fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path) + ".pub"],
                        check=True, capture_output=True, text=True).stdout.split()[1]
    return path.read_text(), fp


def test_secrets_never_appear_in_responses_logs_audit_or_the_data_file(daemon_factory, tmp_path):
    d = daemon_factory(config={"log": {"level": "debug"}})
    rec = Recorder(d.http)
    api = d.url
    key_pass = "kp-Zq8#mW2!vT"
    private_key, fingerprint = ssh_keypair(tmp_path, key_pass)
    secrets = [d.admin_password, key_pass, "winrm-Pw-Xy7$Lq", "ssh-Pw-Hk3@Rr", "webhook-Tok-9PzM",
               "user-Pw-Ab4%Cd", "user-Pw-New-5Ef"]
    body_lines = [l for l in private_key.splitlines() if "PRIVATE KEY" not in l]
    secrets += [l for l in body_lines if len(l) > 20]

    r = rec.request("POST", api("/api/v1/credentials"), json={
        "name": "deploy-key", "type": "ssh_key", "username": "deploy",
        "private_key": private_key, "passphrase": key_pass})
    assert r.status_code == 201, r.text
    cred = r.json()
    assert cred["fingerprint"] == fingerprint
    rec.request("POST", api("/api/v1/credentials"), json={
        "name": "win", "type": "winrm", "username": "Administrator", "password": "winrm-Pw-Xy7$Lq",
        "domain": "CORP", "auth": "ntlm"})
    rec.request("POST", api("/api/v1/credentials"), json={
        "name": "pw", "type": "ssh_password", "username": "root", "password": "ssh-Pw-Hk3@Rr"})
    rec.request("POST", api("/api/v1/credentials"), json={
        "name": "hook", "type": "secret", "value": "webhook-Tok-9PzM"})
    # Bad requests that echo fields must not echo secrets either.
    r = rec.request("POST", api("/api/v1/credentials"), json={
        "name": "bad", "type": "ssh_key", "username": "x", "private_key": private_key,
        "passphrase": "wrong-" + key_pass})
    assert r.status_code == 400
    rec.request("PATCH", api("/api/v1/credentials/" + cred["id"]), json={"description": "x"})
    rec.request("POST", api("/api/v1/users"), json={
        "username": "uma", "role": "viewer", "password": "user-Pw-Ab4%Cd"})
    s = d.session(d.login("uma", "user-Pw-Ab4%Cd").json()["access_token"])
    s.post(api("/api/v1/users/me/password"),
           json={"old_password": "user-Pw-Ab4%Cd", "new_password": "user-Pw-New-5Ef"})
    d.login("uma", "user-Pw-Ab4%Cd")  # a failed login with a real old password
    for path in ("/api/v1/credentials", "/api/v1/credentials/" + cred["id"], "/api/v1/users",
                 "/api/v1/audit?limit=500", "/api/v1/tokens"):
        assert rec.request("GET", api(path)).status_code == 200
    # Tokens are handed out once (login, POST /tokens) and kept only hashed.
    issued = [rec.request("POST", api("/api/v1/tokens"), json={"name": "t"}).json()["token"]]
    issued += list(d.login("admin", d.admin_password).json().values())[:2]
    audit = rec.request("GET", api("/api/v1/audit?limit=500")).content
    assert d.stop() == 0
    blobs = {"responses": b"\n".join(rec.bodies), "daemon log": d.stderr().encode(),
             "audit log": audit}
    stored = store_bytes(d.data_dir)
    # the records are in what was read (LMDB's data.mdb, or the PostgreSQL table)
    assert any(cred["id"].encode() in b for b in stored.values()), stored.keys()
    blobs.update(stored)
    assert find_leaks(secrets, blobs) == []
    del blobs["responses"]
    assert find_leaks(issued, blobs) == []


def test_a_wrong_master_key_refuses_to_start(daemon_factory, tmp_path):
    d = daemon_factory()
    r = d.http.post(d.url("/api/v1/credentials"), json={"name": "s", "type": "secret",
                                                        "value": "v-123"})
    assert r.status_code == 201
    assert d.stop() == 0
    key = pathlib.Path(d.data_dir) / "master.key"
    old = key.read_text()
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    d2 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}}, wait_ready=False)
    assert d2.proc.wait(15) != 0
    assert "does not match" in d2.stderr()
    key.unlink()
    d3 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}}, wait_ready=False)
    assert d3.proc.wait(15) != 0
    assert "missing" in d3.stderr()
    # Also from the environment.
    key.write_text(old)
    os.chmod(key, 0o600)
    d4 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}}, wait_ready=False,
                        env={"OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()})
    assert d4.proc.wait(15) != 0
    assert "OPSC_MASTER_KEY" in d4.stderr()
    d5 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}})
    assert d5.running()


def test_a_key_file_readable_by_others_is_refused(daemon_factory):
    d = daemon_factory()
    assert d.stop() == 0
    os.chmod(pathlib.Path(d.data_dir) / "master.key", 0o644)
    d2 = daemon_factory(config={"store": {"data_dir": str(d.data_dir)}}, wait_ready=False)
    assert d2.proc.wait(15) != 0
    assert "chmod 600" in d2.stderr()
