#!/usr/bin/env python3
"""bench_winrm.py - transport-winrm figures against the loopback WinRM test server.

    /usr/bin/python3 tests/bench/bench_winrm.py [--build build] [--commands 200] [--put-mb 256]

Prints: commands/s on one shell (NTLM sealed over HTTP, and Basic over HTTPS), wall time for one
command on 50 targets (NTLM sealed over HTTP), and file put MB/s over loopback HTTP with
encryption (Kerberos AES, and NTLM RC4). The test server is Python: its side of the work (pure
Python RC4 for NTLM, the per-request handling) bounds every figure; read them as "at least".
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "transport" / "winrm"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("OPSC_BUILD_DIR", "build"))
    ap.add_argument("--commands", type=int, default=200)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--put-mb", type=int, default=256)
    args = ap.parse_args()
    os.environ["OPSC_BUILD_DIR"] = str(pathlib.Path(args.build).resolve())
    import drive  # noqa: PLC0415 - after OPSC_BUILD_DIR is set
    from kdc import TestKDC  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="bench-winrm-")
    tls = drive.make_tls_material(os.path.join(work, "tls"))
    step = drive.exec_step("true")
    rows = []

    def server(name, **cfg):
        cfg.setdefault("users", drive.USERS)
        cfg.setdefault("request_log", None)
        return drive.WinRMTestServer(cfg, os.path.join(work, name)).start()

    def commands(label, srv, auth, options=None, **kw):
        steps = [step] * args.commands
        scn = {"config": {"operation_timeout": "20s", "commands_per_shell": "1000"},
               "targets": [drive.target(srv, auth, options, **kw)], "steps": steps}
        rep = drive.run(scn)
        res = rep["targets"][0]["steps"]
        assert all(r["status"] == 0 for r in res), res[:2]
        secs = sum(r["ms"] for r in res) / 1000
        rows.append((f"commands/s on one shell, {label}", f"{args.commands / secs:.1f}"))

    srv = server("ntlm", strict=True, max_shells_per_user=200)
    commands("NTLM sealed, HTTP", srv, "ntlm")
    scn = {"config": {"operation_timeout": "20s"}, "targets": [dict(drive.target(srv, "ntlm"), copies=args.targets)], "steps": [step]}
    t0 = time.monotonic()
    rep = drive.run(scn)
    wall = time.monotonic() - t0
    assert all(t["steps"] and t["steps"][0]["status"] == 0 for t in rep["targets"])
    rows.append((f"one command on {args.targets} targets (connect+auth+shell+run), NTLM sealed, HTTP",
                 f"{rep['wall_ms']:.0f} ms (process {wall * 1000:.0f} ms)"))
    src = os.path.join(work, "put.bin")
    with open(src, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(args.put_mb):
            fh.write(block)
    ntlm_mb = min(args.put_mb, 16)
    small = os.path.join(work, "put-small.bin")
    with open(small, "wb") as fh:
        fh.write(block * ntlm_mb)
    put = {"op": "put", "local": small, "remote": os.path.join(work, "remote-ntlm.bin")}
    rep = drive.run({"config": {}, "targets": [drive.target(srv, "ntlm", {"shell": "sh"})], "steps": [put]})
    r = rep["targets"][0]["steps"][0]
    assert r["status"] == 0, r
    rows.append((f"file put, HTTP + NTLM sealing ({ntlm_mb} MB; server RC4 is pure Python)", f"{ntlm_mb * 1.048576 / (r['ms'] / 1000):.1f} MB/s"))
    srv.stop()

    srv = server("https", auth=["basic"], tls={"cert": tls["server_pem"], "key": tls["server_key"]})
    commands("Basic, HTTPS", srv, "basic", {"ca_bundle": tls["server_pem"]}, address="localhost")
    srv.stop()

    with TestKDC() as realm:
        os.environ["KRB5_CONFIG"] = realm.krb5_conf
        users = [{"name": "alice", "password": "x", "principal": realm.user_principal}]
        srv = server("krb", strict=True, users=users, kerberos={"keytab": realm.keytab, "krb5_config": realm.krb5_conf})
        cred = {"cred": {"domain": realm.realm, "password": realm.password}}
        commands("Kerberos sealed, HTTP", srv, "kerberos", address="localhost", **cred)
        put = {"op": "put", "local": src, "remote": os.path.join(work, "remote-krb.bin")}
        rep = drive.run({"config": {}, "targets": [drive.target(srv, "kerberos", {"shell": "sh"}, address="localhost", **cred)], "steps": [put]})
        r = rep["targets"][0]["steps"][0]
        assert r["status"] == 0, r
        rows.append((f"file put, HTTP + Kerberos sealing (AES, {args.put_mb} MB)", f"{args.put_mb * 1.048576 / (r['ms'] / 1000):.1f} MB/s"))
        srv.stop()

    width = max(len(k) for k, _ in rows)
    print(f"{'benchmark':<{width}}  result")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
