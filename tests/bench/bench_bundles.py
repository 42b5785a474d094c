#!/usr/bin/python3
"""bench_bundles.py - step libraries in any language (bundles) on a real daemon: what a step of a
bundle costs (the sandboxed process per step, the interpreter's start) and what one request of
the line protocol costs, next to a raw command on the same local target.

    tests/bench/bench_bundles.py [--build DIR] [STEPS] [REQUESTS]

STEPS no-op steps in one job for each of: a shell script, a Python script (the SDK's helper
imported), and core.shell.command `true` for comparison; then one step making REQUESTS
`cancelled` requests (the protocol's round trip through the daemon's step API). Starts its own
daemon on loopback, prints its figures and stops it. Not run by the test suite.
"""
import argparse
import hashlib
import io
import json
import pathlib
import sys
import tarfile
import time

from bench_exec import Daemon, machine

ROOT = pathlib.Path(__file__).resolve().parents[2]
HELPER = (ROOT / "sdk" / "examples" / "python-steplib" / "opsc_step.py").read_text()

SHELL_NOOP = '#!/bin/sh\nread -r run\nprintf \'{"type":"result","ok":true}\\n\'\n'
PY_NOOP = "#!/usr/bin/python3\nimport os, sys\nsys.path.insert(0, os.environ['OPSC_BUNDLE_DIR'])\n" \
          "import opsc_step\nopsc_step.main({'py': lambda s: None})\n"
PY_CALLS = "#!/usr/bin/python3\nimport os, sys, time\n" \
           "sys.path.insert(0, os.environ['OPSC_BUNDLE_DIR'])\nimport opsc_step\n" \
           "def calls(s):\n    n = s.params['n']\n    t0 = time.monotonic()\n" \
           "    for _ in range(n):\n        s.cancelled()\n" \
           "    return {'us': (time.monotonic() - t0) / n * 1e6}\n" \
           "opsc_step.main({'calls': calls})\n"


def bundle():
    manifest = {"name": "bench", "version": "1.0.0", "abi": "1.2", "steps": [
        {"name": "sh", "executable": "sh.sh"},
        {"name": "py", "executable": "py.py"},
        {"name": "calls", "executable": "calls.py", "params_schema": {"type": "object"}}]}
    files = {"steplib.json": (json.dumps(manifest), 0o644), "sh.sh": (SHELL_NOOP, 0o755),
             "py.py": (PY_NOOP, 0o755), "calls.py": (PY_CALLS, 0o755),
             "opsc_step.py": (HELPER, 0o644)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name, (text, mode) in files.items():
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def per_step(d, t, step_type, n, params=None):
    steps = [{"id": f"s{i}", "type": step_type, **({"params": params} if params else {})}
             for i in range(n)]
    job = d.post("/api/v1/jobs", {"name": f"{step_type}-{time.monotonic_ns()}",
                                  "targets": {"ids": [t["id"]]}, "steps": steps})
    t0 = time.monotonic()
    run = d.wait_run(d.post(f"/api/v1/jobs/{job['id']}/runs", {})["id"])
    elapsed = time.monotonic() - t0
    assert run["state"] == "succeeded", run
    return elapsed / n * 1000, run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("steps", nargs="?", type=int, default=50)
    ap.add_argument("requests", nargs="?", type=int, default=2000)
    a = ap.parse_args()
    d = Daemon(pathlib.Path(a.build).resolve())
    try:
        data = bundle()
        r = d.http.post(d.base + "/api/v1/steplibs", data=data, timeout=60,
                        headers={"Content-Type": "application/octet-stream",
                                 "X-Opsc-Sha256": hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
        t = d.post("/api/v1/targets", {"name": "self", "transport": "local"})
        print(machine())
        raw, _ = per_step(d, t, "core.shell.command", a.steps, {"command": "true"})
        sh, _ = per_step(d, t, "bench.sh", a.steps)
        py, _ = per_step(d, t, "bench.py", a.steps)
        print(f"one step, {a.steps} in a row: core.shell.command 'true' {raw:.1f} ms, "
              f"shell bundle step {sh:.1f} ms, Python bundle step {py:.1f} ms")
        _, run = per_step(d, t, "bench.calls", 1, {"n": a.requests})
        us = run["targets"][0]["steps"][0]["outputs"]["us"]
        print(f"one protocol request (cancelled), {a.requests} in a row from Python: {us:.0f} µs")
    finally:
        d.stop()


if __name__ == "__main__":
    sys.exit(main())
