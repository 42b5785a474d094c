"""test_script_steplibs.py - step libraries in any language: the SDK's Python and shell examples
built into bundles out of tree, uploaded through POST /api/v1/steplibs like a .so, and run in jobs
on the local transport; bundles that break the rules refused at upload with the entry or field at
fault; steps that crash, print garbage, flood or hang failing with a named reason while the
daemon serves on; the sandbox the executables run in."""
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import ROOT
from fixtures.runs import check, job, local_target, log_text, start, step, wait, wait_step

EXAMPLES = ROOT / "sdk" / "examples"
FAST = {"steplibs": {"host_stop_grace": "300ms", "host_memory_limit": "512M"}}


def build_example(name, dest):
    """The example built as its author would: a copy out of the tree, then make."""
    src = dest / name
    shutil.copytree(EXAMPLES / name, src)
    r = subprocess.run(["make", "-s", "-C", str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (bundle,) = src.glob("*.tar.gz")
    return bundle.read_bytes()


def upload(d, data):
    return d.http.post(d.url("/api/v1/steplibs"), data=data, timeout=30,
                       headers={"Content-Type": "application/octet-stream",
                                "X-Opsc-Sha256": hashlib.sha256(data).hexdigest()})


def bundle(files, manifest=None):
    """A .tar.gz from {name: text or (text, mode)}, the manifest first when given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        items = ([("steplib.json", json.dumps(manifest))] if manifest else []) + list(files.items())
        for name, content in items:
            text, mode = content if isinstance(content, tuple) else (content, 0o644)
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def script_lib(name, scripts, version="1.0.0"):
    """A library of imperative shell steps: {step: script body}."""
    steps = [{"name": s, "executable": f"{s}.sh", "os_families": "linux"} for s in scripts]
    manifest = {"name": name, "version": version, "abi": "1.2", "steps": steps}
    return bundle({f"{s}.sh": ("#!/bin/sh\n" + body, 0o755) for s, body in scripts.items()},
                  manifest)


def run_job(d, t, *steps, timeout=60, **kw):
    j = job(d, {"name": f"j{time.monotonic_ns()}", "targets": {"ids": [t["id"]]},
                "steps": list(steps), **kw})
    return wait(d, start(d, j["id"])["id"], timeout=timeout)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    dest = tmp_path_factory.mktemp("third-party")
    return {n: build_example(n, dest) for n in ("python-steplib",)}


def test_the_python_example_uploads_and_runs_its_steps_in_a_job(examples, daemon_factory, local_tmp):
    d = daemon_factory(FAST)
    r = upload(d, examples["python-steplib"])
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["name"], v["version"]) == ("pyexample", "1.0.0")
    assert pathlib.Path(v["path"]).name == f"pyexample-1.0.0-{v['sha256'][:12]}.tar.gz"
    assert {s["type"]: s["kind"] for s in v["steps"]} == {
        "pyexample.greet": "imperative", "pyexample.deploy_text": "imperative",
        "pyexample.uptime": "declarative"}
    assert v["isolation"]["runs"] == "process"
    t = local_target(d, "self")
    path = pathlib.Path(local_tmp) / "motd"
    run = run_job(d, t,
                  {"id": "g", "type": "pyexample.greet", "params": {"name": "Ada"}},
                  {"id": "w", "type": "pyexample.deploy_text",
                   "params": {"path": str(path), "text": "hello\n"}},
                  {"id": "again", "type": "pyexample.deploy_text",
                   "params": {"path": str(path), "text": "hello\n"}},
                  {"id": "u", "type": "pyexample.uptime@1"})
    assert run["state"] == "succeeded", (run["targets"], log_text(d, run["id"]))
    assert step(run, "self", "g")["outputs"] == {"greeting": "hello Ada from Linux", "changed": False}
    assert step(run, "self", "w")["outputs"] == {"path": str(path), "changed": True}
    assert step(run, "self", "again")["outputs"] == {"path": str(path), "changed": False}
    assert path.read_text() == "hello\n"
    assert step(run, "self", "u")["outputs"]["seconds"] > 0
    assert "self runs Linux" in log_text(d, run["id"])
