"""test_runs_openssh.py - the openssh transport through the daemon, on real sshds: an RSA-only
server transport-ssh cannot reach, a target only a bastion can reach, user certificates, every
kind of credential, a changed host key, cancel, files, 200 targets at once, option injection,
and no ssh process outliving the daemon (SIGTERM and SIGKILL)."""
import hashlib
import os
import pathlib
import signal
import subprocess
import time

import pytest

from fixtures import netns, sshd
from fixtures.fleet import check, create, probe
from fixtures.runs import job, log_text, shell_step, start, step, wait, wait_step
from test_fleet_ssh import rekey
from test_runs_ssh import remote_sleepers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sshd fixture needs root")


@pytest.fixture
def server(tmp_path):
    with sshd.SSHD(str(tmp_path / "sshd")) as facts:
        yield facts


def credential(d, name, user, key_file=None, password=None, passphrase=None, certificate=None):
    body = {"name": name, "username": user}
    if key_file:
        body.update(type="ssh_key", private_key=pathlib.Path(key_file).read_text())
    else:
        body.update(type="ssh_password", password=password)
    if passphrase:
        body["passphrase"] = passphrase
    if certificate:
        body["certificate"] = certificate
    return check(d.http.post(d.url("/api/v1/credentials"), json=body), 201)


def target(d, name, facts, cred, transport="openssh", address="127.0.0.1", **kw):
    body = {"name": name, "address": address, "port": facts["port"], "transport": transport,
            "credential_id": cred["id"], "connect_timeout_s": 20, "host_key_policy": "tofu"}
    body.update(kw)
    return create(d, body)


def run(d, ids, *steps, timeout=90, **body):
    j = job(d, {"name": f"job-{time.monotonic_ns()}", "targets": {"ids": ids},
                "steps": list(steps), **body})
    return wait(d, start(d, j["id"])["id"], timeout=timeout)


def masters(rundir):
    """ssh, ssh-agent and ssh-add processes working in the daemon's runtime directory."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p}/cwd") == str(rundir):
                found.append((int(p), open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")[0]))
        except OSError:
            pass
    return found


def test_rsa_key_refused_by_the_ssh_transport_runs_over_openssh(daemon, tmp_path):
    with sshd.SSHD(str(tmp_path / "rsa"),
                   options=["PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256"]) as facts:
        cred = credential(daemon, "rsa", facts["user"], key_file=facts["key_rsa"])
        old = target(daemon, "via-libssh2", facts, cred, transport="ssh")
        new = target(daemon, "via-openssh", facts, cred)
        r = run(daemon, [old["id"], new["id"]], shell_step("who", "id -un"))
        refused = step(r, "via-libssh2", "who")
        assert refused["state"] == "failed"
        assert "RSA" in refused["error"] and '"openssh"' in refused["error"], refused["error"]
        ok = step(r, "via-openssh", "who")
        assert ok["state"] == "succeeded", ok
        assert ok["outputs"]["stdout"] == facts["user"]


@pytest.mark.skipif(os.geteuid() != 0 or not netns.available(),
                    reason="network namespaces need root")
def test_a_job_runs_through_a_bastion_that_is_the_only_way_in(daemon, tmp_path):
    """The bastion lives in a network namespace; the target admits only connections from the
    bastion's address. Different keys, different host key policies; the bastion's key is
    learned on first use and stored in the bastion target."""
    with netns.Netns() as ns:
        bdir = str(tmp_path / "bastion")
        bfacts = netns.sshd_in(ns, bdir)
        try:
            with sshd.SSHD(str(tmp_path / "target"),
                           options=[f"ListenAddress {ns.outer}",
                                    f"AllowUsers opsctest@{ns.inner}"]) as tfacts:
                bcred = credential(daemon, "bastion-key", bfacts["user"],
                                   key_file=bfacts["key_ed25519"])
                tcred = credential(daemon, "target-key", tfacts["user"],
                                   key_file=tfacts["key_ecdsa_pem"])
                bastion = target(daemon, "bastion", bfacts, bcred, address=ns.inner)
                inner = target(daemon, "inner", tfacts, tcred, address=ns.outer,
                               host_key_policy="strict",
                               host_keys=[f"ssh-ed25519 {tfacts['host_ed25519']}"],
                               transport_options={"jump": [bastion["id"]]})
                direct = target(daemon, "inner-direct", tfacts, tcred, address=ns.outer,
                                host_key_policy="strict",
                                host_keys=[f"ssh-ed25519 {tfacts['host_ed25519']}"])
                r = run(daemon, [inner["id"], direct["id"]],
                        shell_step("where", "echo $SSH_CONNECTION | cut -d' ' -f1"))
                assert step(r, "inner", "where")["state"] == "succeeded", r
                assert step(r, "inner", "where")["outputs"]["stdout"] == ns.inner
                assert step(r, "inner-direct", "where")["state"] == "failed"
                assert "authentication" in step(r, "inner-direct", "where")["error"]
                keys = daemon.get(f"/api/v1/targets/{bastion['id']}").json()["host_keys"]
                assert [(k["fingerprint"], k["source"]) for k in keys] == \
                    [(bfacts["host_ed25519"], "tofu")]
                # Again on pooled connections, and through an ad-hoc jump spec with pinned keys.
                adhoc = target(daemon, "inner-adhoc", tfacts, tcred, address=ns.outer,
                               host_key_policy="strict",
                               host_keys=[f"ssh-ed25519 {tfacts['host_ed25519']}"],
                               transport_options={"jump": [{
                                   "host": f"{bfacts['user']}@{ns.inner}:{bfacts['port']}",
                                   "credential_id": bcred["id"],
                                   "host_keys": [f"ssh-ed25519 {bfacts['host_ed25519']}"]}]})
                r = run(daemon, [inner["id"], adhoc["id"]], shell_step("again", "hostname"))
                assert r["state"] == "succeeded", r
        finally:
            sshd.stop(bdir)


def make_ca_and_key(d):
    for name in ("ca", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{name}"],
                       check=True)


def sign(d, validity, serial):
    subprocess.run(["ssh-keygen", "-q", "-s", f"{d}/ca", "-I", f"opsc-{serial}", "-z",
                    str(serial), "-n", "opsctest", "-V", validity, f"{d}/user.pub"], check=True)
    return pathlib.Path(f"{d}/user-cert.pub").read_text().strip()


def test_user_certificate_runs_and_an_expired_one_fails_clearly(daemon, tmp_path):
    ca = tmp_path / "ca"
    ca.mkdir()
    make_ca_and_key(ca)
    with sshd.SSHD(str(tmp_path / "s"), options=[f"TrustedUserCAKeys {ca}/ca.pub"]) as facts:
        good = credential(daemon, "cert", facts["user"], key_file=f"{ca}/user",
                          certificate=sign(ca, "-5m:+1h", 1))
        bad = credential(daemon, "expired", facts["user"], key_file=f"{ca}/user",
                         certificate=sign(ca, "20200101:20200102", 2))
        bare = credential(daemon, "bare", facts["user"], key_file=f"{ca}/user")
        t_good = target(daemon, "cert-ok", facts, good, transport_options={"certificate": True})
        t_bad = target(daemon, "cert-expired", facts, bad)
        t_bare = target(daemon, "no-cert", facts, bare)
        r = run(daemon, [t_good["id"], t_bad["id"], t_bare["id"]], shell_step("who", "id -un"))
        assert step(r, "cert-ok", "who")["outputs"]["stdout"] == facts["user"], r
        err = step(r, "cert-expired", "who")["error"]
        assert "expired at 2020-01-02" in err and "serial 2" in err, err
        assert "authentication" in step(r, "no-cert", "who")["error"]
        res = probe(daemon, t_good["id"])
        assert res["algorithms"]["auth_key"] == "certificate", res
    # A certificate of another key is refused when it is stored.
    other = tmp_path / "other"
    other.mkdir()
    make_ca_and_key(other)
    r = daemon.http.post(daemon.url("/api/v1/credentials"), json={
        "name": "mismatch", "type": "ssh_key", "username": "opsctest",
        "private_key": pathlib.Path(f"{ca}/user").read_text(),
        "certificate": sign(other, "+1h", 3)})
    assert r.status_code == 400 and "another key" in r.text, r.text


def test_passphrase_keys_and_passwords(daemon, server):
    enc = credential(daemon, "enc", server["user"], key_file=server["key_ed25519_enc"],
                     passphrase=server["passphrase"])
    pw = credential(daemon, "pw", server["user"], password=server["password"])
    wrong = credential(daemon, "wrong", server["user"], password="not-the-password-42")
    ids = [target(daemon, n, server, c)["id"]
           for n, c in (("by-key", enc), ("by-password", pw), ("by-wrong", wrong))]
    r = run(daemon, ids, shell_step("who", "id -un"))
    assert step(r, "by-key", "who")["outputs"]["stdout"] == server["user"]
    assert step(r, "by-password", "who")["outputs"]["stdout"] == server["user"]
    err = step(r, "by-wrong", "who")["error"]
    assert "authentication" in err and "not-the-password-42" not in err


def test_a_changed_host_key_is_refused_and_audited(daemon, server):
    cred = credential(daemon, "key", server["user"], key_file=server["key_ed25519"])
    t = target(daemon, "rekeyed", server, cred)
    assert run(daemon, [t["id"]], shell_step("a", "true"))["state"] == "succeeded"
    new = rekey(server)
    r = daemon.http.patch(daemon.url(f"/api/v1/targets/{t['id']}"), json={"description": "x"},
                          headers={"If-Match": str(daemon.get(
                              f"/api/v1/targets/{t['id']}").json()["version"])})
    assert r.status_code == 200, r.text
    probe(daemon, t["id"])  # drops the pooled connection: the next run connects again
    r = run(daemon, [t["id"]], shell_step("b", "true"))
    err = step(r, "rekeyed", "b")["error"]
    assert "CHANGED" in err and server["host_ed25519"] in err and new in err, err
    audit = daemon.get("/api/v1/audit", params={"action": "target.host_key_mismatch",
                                               "object": t["id"]}).json()["items"]
    assert audit and audit[0]["outcome"] == "denied" and new in audit[0]["detail"]


def test_cancel_leaves_no_remote_process_and_files_travel_intact(daemon_factory, server, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    blob = os.urandom(48 << 20)
    (files / "blob.bin").write_bytes(blob)
    d = daemon_factory(config={"plugin.steplib-core": {"files_dir": str(files)}})
    cred = credential(d, "key", server["user"], key_file=server["key_ed25519"])
    t = target(d, "worker", server, cred)
    remote = f"/tmp/opsc-openssh-{os.getpid()}.bin"
    r = run(d, [t["id"]],
            {"id": "put", "type": "core.file.put", "params": {"src": "blob.bin", "dest": remote}},
            {"id": "get", "type": "core.file.get",
             "params": {"src": remote, "dest": "blob.bin"}}, timeout=120)
    assert r["state"] == "succeeded", r
    digest = hashlib.sha256(blob).hexdigest()
    assert step(r, "worker", "put")["outputs"]["sha256"] == digest
    kept = d.data_dir / "runs" / r["id"] / "files" / t["id"] / "blob.bin"  # with the run
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == digest
    assert step(r, "worker", "get")["outputs"]["sha256"] == digest
    os.unlink(remote)
    tag = str(600 + os.getpid() % 1000) + ".25"
    j = job(d, {"name": "long", "targets": {"ids": [t["id"]]},
                "steps": [shell_step("s", f"echo started; sleep {tag}")]})
    started = start(d, j["id"])
    wait_step(d, started["id"])
    end = time.monotonic() + 15
    while not remote_sleepers(server["user"], tag):
        assert time.monotonic() < end, "the remote sleep never started"
        time.sleep(0.05)
    check(d.http.post(d.url(f"/api/v1/runs/{started['id']}/cancel")), 202)
    assert wait(d, started["id"], timeout=20)["state"] == "cancelled"
    end = time.monotonic() + 10
    while remote_sleepers(server["user"], tag):
        assert time.monotonic() < end, "the remote sleep survived the cancel"
        time.sleep(0.1)


def test_connectivity_test_reports_what_was_negotiated(daemon_factory, server, tmp_path):
    """The daemon's ssh_config applies where the target does not decide; a target's own
    options win over it."""
    conf = tmp_path / "ssh_config"
    conf.write_text("Host *\n  Ciphers aes128-ctr\n  MACs hmac-sha2-256\n")
    d = daemon_factory(config={"plugin.transport-openssh": {"ssh_config": str(conf)}})
    cred = credential(d, "key", server["user"], key_file=server["key_ed25519"])
    t = target(d, "probed", server, cred, transport_options={
        "options": {"Ciphers": "aes256-gcm@openssh.com", "KexAlgorithms": "curve25519-sha256"}})
    plain = target(d, "configured", server, cred)
    res = probe(d, t["id"])
    assert res["ok"], res
    algs = res["algorithms"]
    assert algs["cipher"] == "aes256-gcm@openssh.com" and algs["kex"] == "curve25519-sha256"
    assert algs["host_key"] == "ssh-ed25519" and algs["auth"] == "publickey"
    assert d.get(f"/api/v1/targets/{t['id']}").json()["last_test"]["algorithms"] == algs
    algs = probe(d, plain["id"])["algorithms"]
    assert algs["cipher"] == "aes128-ctr" and algs["mac"] == "hmac-sha2-256", algs


REFUSED = ["ProxyCommand", "LocalCommand", "PermitLocalCommand", "KnownHostsCommand", "ProxyJump",
           "PKCS11Provider", "Match", "Include", "IdentityFile", "ControlPath",
           "StrictHostKeyChecking", "UserKnownHostsFile", "RemoteCommand", "LocalForward"]


def test_refused_options_and_injection_attempts_never_reach_ssh(daemon, server, tmp_path):
    cred = credential(daemon, "key", server["user"], key_file=server["key_ed25519"])
    base = {"name": "x", "address": "127.0.0.1", "port": server["port"], "transport": "openssh",
            "credential_id": cred["id"]}
    for name in REFUSED:
        r = daemon.http.post(daemon.url("/api/v1/targets"),
                             json=dict(base, transport_options={"options": {name: "x"}}))
        assert r.status_code == 400, (name, r.text)
        assert r.json()["error"]["details"]["field"] == "transport_options"
        assert name in r.json()["error"]["message"]
    for bad in ({"options": {"Ciphers": "aes128-ctr -oProxyCommand=touch"}},
                {"options": {"-oProxyCommand=touch /tmp/x": "y"}},
                {"options": {"Ciphers": "%h"}},
                {"jump": "-oProxyCommand=touch@host"}, {"jump": "host\nProxyCommand x"}):
        r = daemon.http.post(daemon.url("/api/v1/targets"), json=dict(base, transport_options=bad))
        assert r.status_code == 400, (bad, r.text)
    for address in ("-oProxyCommand=x", "host name", "a%hb", "host\n-oX=y"):
        r = daemon.http.post(daemon.url("/api/v1/targets"), json=dict(base, address=address))
        assert r.status_code == 400, (address, r.text)
    odd = credential(daemon, "odd-user", "-oProxyCommand=touch /tmp/opsc-pwned",
                     key_file=server["key_ed25519"])
    t_odd = target(daemon, "-o ProxyCommand=%h x", server, odd)
    t_ok = target(daemon, "quoted", server, cred)
    marker = tmp_path / "pwned"
    value = f"-oProxyCommand=touch {marker} %h %% $(touch {marker})\n-F /dev/null"
    r = run(daemon, [t_odd["id"], t_ok["id"]], shell_step("p", "printf '%s' {{ params.v }}"),
            parameters=[{"name": "v", "default": value}])
    assert "cannot be given to ssh" in step(r, "-o ProxyCommand=%h x", "p")["error"]
    assert step(r, "quoted", "p")["outputs"]["stdout"] == value
    assert not marker.exists() and not os.path.exists("/tmp/opsc-pwned")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_ssh_process_outlives_the_daemon(daemon_factory, server, sig):
    d = daemon_factory()
    cred = credential(d, "key", server["user"], key_file=server["key_ed25519"])
    pw = credential(d, "pw", server["user"], password=server["password"])
    ids = [target(d, f"n{i}", server, cred if i % 2 else pw)["id"] for i in range(6)]
    assert run(d, ids, shell_step("a", "true"))["state"] == "succeeded"
    rundir = (d.data_dir / "openssh").resolve()
    assert len([p for p in masters(rundir) if p[1].endswith(b"ssh")]) == 6
    assert oct(rundir.stat().st_mode & 0o777) == "0o700"
    if sig == signal.SIGKILL:
        d.proc.kill()
        d.proc.wait()
    else:
        assert d.stop() == 0
    end = time.monotonic() + 10
    while masters(rundir):
        assert time.monotonic() < end, f"left behind: {masters(rundir)}"
        time.sleep(0.1)


def test_200_targets_at_once(server, daemon):  # the daemon stops first: 200 sessions end
    cred = credential(daemon, "key", server["user"], key_file=server["key_ed25519"])
    # Keys pinned up front: learning 200 on first use is 200 durable writes, not the point here.
    items = [{"name": f"t{i:03}", "address": "127.0.0.1", "port": server["port"],
              "transport": "openssh", "credential_id": cred["id"], "host_key_policy": "strict",
              "host_keys": [f"ssh-ed25519 {server['host_ed25519']}"],
              "connect_timeout_s": 120} for i in range(200)]
    r = daemon.http.post(daemon.url("/api/v1/targets/bulk"), json=items, timeout=60)
    ids = [x["id"] for x in check(r, 200)["items"]]
    t0 = time.monotonic()
    r = run(daemon, ids, shell_step("n", "echo ok"), max_parallel=200, timeout=180)
    cold = time.monotonic() - t0
    assert r["state"] == "succeeded", [t for t in r["targets"] if t["state"] != "succeeded"][:3]
    t0 = time.monotonic()
    r = run(daemon, ids, shell_step("n", "echo again"), max_parallel=200, timeout=180)
    assert r["state"] == "succeeded"
    print(f"\n200 openssh targets: cold {cold:.1f} s, pooled {time.monotonic() - t0:.2f} s")
    assert "again" in log_text(daemon, r["id"], target="t199")


def test_kerberos_gssapi_authenticates_without_the_password(daemon_factory, tmp_path, monkeypatch):
    """A realm on loopback: sshd holds host/localhost's key, the daemon a ticket for opsctest.
    The credential's password is wrong, so only Kerberos can let the job in."""
    from fixtures.kdc import TestKDC
    kdc = TestKDC(user="opsctest", password="Kerb-Pass-1", workdir=str(tmp_path / "kdc"))
    os.makedirs(kdc.dir)
    with kdc:
        keytab = tmp_path / "sshd.keytab"
        kdc.kadmin("addprinc -randkey host/localhost@OPSC.TEST")
        kdc.kadmin(f"ktadd -k {keytab} host/localhost@OPSC.TEST")
        kdc.kinit()
        for k in ("KRB5_CONFIG", "KRB5_KTNAME"):
            monkeypatch.setenv(k, kdc.env[k] if k == "KRB5_CONFIG" else str(keytab))
        with sshd.SSHD(str(tmp_path / "s"), options=["GSSAPIAuthentication yes",
                                                     "GSSAPIStrictAcceptorCheck no"]) as facts:
            d = daemon_factory(env={"KRB5_CONFIG": kdc.env["KRB5_CONFIG"],
                                    "KRB5CCNAME": kdc.env["KRB5CCNAME"]})
            wrong = credential(d, "wrong-pw", facts["user"], password="not-the-password-1")
            t = target(d, "kerberized", facts, wrong, address="localhost",
                       transport_options={"gssapi": True})
            res = probe(d, t["id"])
            assert res["ok"], res
            assert res["algorithms"]["auth"] == "gssapi-with-mic", res
            plain = target(d, "no-kerberos", facts, wrong, address="localhost")
            r = run(d, [t["id"], plain["id"]], shell_step("who", "id -un"))
            assert step(r, "kerberized", "who")["outputs"]["stdout"] == facts["user"]
            assert "authentication" in step(r, "no-kerberos", "who")["error"]
