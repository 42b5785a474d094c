"""test_sdk_steplib.py - a third party's step library: the SDK example built out of tree against the
installed SDK only, checked with --check-config, uploaded through POST /api/v1/steplibs, and used
in a real run on the local transport."""
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BUILD_DIR, DAEMON, ROOT, plugin_dirs
from fixtures.sdk import build_example, exported_symbols, install_tree, sdk_env
FINAL = {"succeeded", "failed", "cancelled", "timed_out", "interrupted"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return install_tree(tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def example_so(installed, tmp_path_factory):
    src = build_example(installed, "steplib-checks", tmp_path_factory.mktemp("third-party"))
    return src / "steplib-checks.so"


def test_make_test_tries_the_steps_with_the_sdks_harness_alone(example_so, installed):
    """`make test`: opsc-steptest from the installed SDK renders one step and runs both on a
    throw-away daemon of its own: no daemon, login or job of the author's."""
    args = " ".join([f"--daemon {DAEMON}", *(f"--plugin-dir {d}" for d in plugin_dirs())])
    r = subprocess.run(["make", "-C", str(example_so.parent), "test", f"STEPTEST_ARGS={args}"],
                       env=sdk_env(installed), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{installed}/usr/local/share/opsconductor-sdk/opsc-steptest" in r.stdout
    assert "--- disk_free on this-machine\nused=$(df -P '/' | awk" in r.stdout  # --render
    assert "--- disk_free on this-machine: succeeded" in r.stdout
    assert '"free_percent": ' in r.stdout
    assert "--- wait_file on this-machine: succeeded" in r.stdout
    assert '"attempts": 1' in r.stdout


def test_the_harness_reports_a_failing_step_and_a_refusal(example_so, installed):
    harness = [sys.executable, str(ROOT / "sdk" / "tools" / "opsc-steptest"), str(example_so)]
    extra = ["--daemon", str(DAEMON), *(a for d in plugin_dirs() for a in ("--plugin-dir", d))]
    r = subprocess.run(harness + ["wait_file", "--params", '{"path": "/nonexistent", '
                                  '"timeout_s": 0.5, "interval_s": 0.2}', *extra],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: /nonexistent did not appear within 0.5 s" in r.stdout
    r = subprocess.run(harness + ["disk_free", "--params", '{"path": ""}', *extra],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "params.path" in r.stderr or "/steps/0/params/path" in r.stderr, r.stderr


def test_example_builds_against_the_build_tree_before_any_install(tmp_path):
    """pkg-config prefers the build tree's opsconductor-sdk-uninstalled.pc when its directory
    is on PKG_CONFIG_PATH: the headers from the sources, the directories of the build."""
    src = tmp_path / "steplib-checks"
    shutil.copytree(ROOT / "sdk" / "examples" / "steplib-checks", src)
    env = dict(os.environ, PKG_CONFIG_PATH=str(BUILD_DIR / "meson-uninstalled"))
    env.pop("PKG_CONFIG_SYSROOT_DIR", None)
    build = subprocess.run(["make", "-C", str(src)], env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    assert f"-I{ROOT / 'sdk' / 'include'}" in build.stdout
    steplibdir = subprocess.run(["pkg-config", "--variable=steplibdir", "opsconductor-sdk"],
                                env=env, capture_output=True, text=True, check=True).stdout
    assert pathlib.Path(steplibdir.strip()).resolve() == (BUILD_DIR / "steplibs").resolve()
    assert exported_symbols(src / "steplib-checks.so") == {"opsc_plugin_entry"}


def test_make_upload_installs_through_opsctl_and_never_shows_the_token(example_so, daemon):
    token = daemon.http.headers["Authorization"].split()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
    env.update(OPSC_URL=daemon.base, OPSC_TOKEN=token, XDG_CONFIG_HOME=str(example_so.parent),
               OPSCTL=str(BUILD_DIR / "cli" / "opsctl" / "opsctl"))
    r = subprocess.run(["make", "-C", str(example_so.parent), "upload"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed step library checks 1.0.0" in r.stdout
    assert token not in r.stdout + r.stderr
    names = {lib["name"] for lib in daemon.get("/api/v1/steplibs").json()["items"]}
    assert "checks" in names


def upload(d, so):
    data = so.read_bytes()
    return d.http.post(d.url("/api/v1/steplibs"), data=data, timeout=30,
                       headers={"Content-Type": "application/octet-stream",
                                "X-Opsc-Sha256": hashlib.sha256(data).hexdigest()})


def test_example_builds_out_of_tree_exports_one_symbol_and_passes_check_config(example_so,
                                                                                run_daemon):
    assert exported_symbols(example_so) == {"opsc_plugin_entry"}
    r = run_daemon(["-p", str(example_so.parent), "--check-config"])
    assert r.returncode == 0, r.stderr
    assert "loaded example-steplib-checks 1.0.0" in r.stderr


def test_example_uploads_and_lists_its_declarative_and_imperative_steps(example_so, daemon):
    r = upload(daemon, example_so)
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["name"], v["version"], v["plugin"]) == ("checks", "1.0.0", "example-steplib-checks")
    steps = {s["type"]: s for s in v["steps"]}
    disk = steps["checks.disk_free"]
    assert disk["kind"] == "declarative" and disk["output_rule"] == "json_last_line"
    assert disk["os_families"] == ["linux", "windows"]
    assert disk["params_schema"]["properties"]["path"]["default"] == "/"
    assert disk["outputs_schema"]["properties"]["ok"]["type"] == "boolean"
    assert steps["checks.wait_file"]["kind"] == "imperative"
    assert steps["checks.wait_file"]["params_schema"]["required"] == ["path"]
    listed = daemon.get("/api/v1/steplibs/checks").json()
    assert listed["majors"] == {"1": "1.0.0"}


def wait_run(d, run_id, deadline=60):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        run = d.get(f"/api/v1/runs/{run_id}").json()
        if run["state"] in FINAL:
            return run
        time.sleep(0.1)
    pytest.fail(f"run {run_id} not finished after {deadline}s: {run}")


def test_example_runs_in_a_job_on_the_local_transport(example_so, daemon, local_tmp):
    assert upload(daemon, example_so).status_code == 201
    r = daemon.http.post(daemon.url("/api/v1/targets"), timeout=10, json={
        "name": "appliance", "address": "127.0.0.1", "os_family": "linux", "transport": "local"})
    assert r.status_code == 201, r.text
    target_id = r.json()["id"]
    marker = local_tmp / "it's here; $(touch pwned) `touch pwned`"
    job = {
        "name": "third-party-checks",
        "targets": {"ids": [target_id]},
        "steps": [
            {"id": "disk", "type": "checks.disk_free@1",
             "params": {"path": str(local_tmp), "min_free_percent": 0}},
            {"id": "wait", "type": "checks.wait_file",
             "params": {"path": str(marker), "timeout_s": 20, "interval_s": 0.2}},
        ],
    }
    r = daemon.http.post(daemon.url("/api/v1/jobs"), json=job, timeout=10)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    r = daemon.http.post(daemon.url(f"/api/v1/jobs/{job_id}/runs"), json={}, timeout=10)
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    # The file appears only once the step has been looking for it a while (a loaded
    # machine may start the step seconds after the run).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = daemon.http.get(daemon.url(f"/api/v1/runs/{run_id}"), timeout=10).json()
        steps = {s["id"]: s for t in run["targets"] for s in t["steps"]}
        if steps.get("wait", {}).get("state") == "running":
            break
        time.sleep(0.05)
    time.sleep(0.5)
    marker.write_text("ready\n")
    run = wait_run(daemon, run_id)
    assert run["state"] == "succeeded", run
    steps = {s["id"]: s for s in run["targets"][0]["steps"]}
    disk = steps["disk"]["outputs"]
    assert disk["ok"] is True and 0 <= disk["free_percent"] <= 100
    assert steps["wait"]["outputs"]["attempts"] >= 2, steps["wait"]
    assert not (local_tmp / "pwned").exists() and not pathlib.Path("pwned").exists()
    # The job pins major 1: that version cannot be deleted while it is the only 1.x.
    r = daemon.request("DELETE", "/api/v1/steplibs/checks/1.0.0")
    assert r.status_code == 409 and r.json()["error"]["code"] == "pinned", r.text
