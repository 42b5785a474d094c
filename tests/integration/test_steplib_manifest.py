"""test_steplib_manifest.py - a step library that runs out of process is never loaded in the
daemon: its descriptor and step types come from the manifest opsc-stephost writes after loading
it in the sandbox. The test library "marker" (tests/plugins/marker_steplib.c) prints the pid and
euid of the process that runs its constructor, its init() and its imperative step on stderr,
which the daemon's step hosts share with it: on upload, at start-up and when a step runs, none of
those lines may carry the daemon's pid. Under isolation = never the same lines do (the control
that shows the marker can fail), and a library whose init() hangs or crashes is refused with
the reason named while the daemon keeps serving."""
import os
import pwd
import re
import shutil
import time

from fixtures.runs import check, job, local_target, start, step, wait
from test_steplibs_api import TEST_PLUGINS, error, upload

MARKER = TEST_PLUGINS / "test-marker.upload"
MARK = re.compile(r"^opsc-marker (\S+) (\S+) pid=(\d+) euid=(\d+)$", re.M)


def marks(d, lib="marker"):
    """[(where, pid, euid)] the library printed on the daemon's stderr."""
    return [(w, int(pid), int(euid)) for name, w, pid, euid in MARK.findall(d.stderr())
            if name == lib]


def outside(d, lib="marker"):
    """Every line of the library says a process other than the daemon, as the host user."""
    seen = marks(d, lib)
    assert seen, "the library's code ran nowhere"
    assert all(pid != d.pid for _, pid, _ in seen), (d.pid, seen)
    if os.geteuid() == 0:  # a root daemon's hosts run as their own user
        uid = pwd.getpwnam("opsconductor-steplib").pw_uid
        assert {euid for _, _, euid in seen} == {uid}, seen
    return {w for w, _, _ in seen}


def run_both(d):
    """marker.echo (rendered by the daemon) and marker.where (run in a host) on the appliance."""
    t = local_target(d, f"self{time.monotonic_ns()}")
    j = job(d, {"name": f"marker{time.monotonic_ns()}", "targets": {"ids": [t["id"]]},
                "steps": [{"id": "echo", "type": "marker.echo", "params": {"message": "hi"}},
                          {"id": "where", "type": "marker.where"}]})
    run = wait(d, start(d, j["id"])["id"])
    assert run["state"] == "succeeded", run
    assert step(run, t["name"], "echo")["outputs"]["stdout"] == "hi"
    return step(run, t["name"], "where")["outputs"]["pid"]


def test_an_uploaded_library_is_never_loaded_in_the_daemon(daemon):
    r = upload(daemon, MARKER)
    assert r.status_code == 201, r.text
    lib = r.json()
    assert {s["type"]: s["kind"] for s in lib["steps"]} == {"marker.echo": "declarative",
                                                           "marker.where": "imperative"}
    assert lib["isolation"]["runs"] == "process"
    assert outside(daemon) == {"constructor", "init"}
    assert run_both(daemon) != daemon.pid
    assert outside(daemon) == {"constructor", "init", "run"}
    # At start-up the installed file is listed from its manifest too.
    d = daemon.restart()
    assert outside(d) == {"constructor", "init"}
    assert run_both(d) != d.pid
    assert outside(d) == {"constructor", "init", "run"}


def test_under_always_a_plugin_directory_library_is_listed_from_its_manifest(daemon_factory,
                                                                              tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(MARKER, plugins / "marker.so")
    d = daemon_factory({"steplibs": {"isolation": "always"}}, args=("-p", str(plugins)))
    assert outside(d) == {"constructor", "init"}
    assert run_both(d) != d.pid
    assert outside(d) == {"constructor", "init", "run"}
    # The bundled core library binds config keys: the daemon still loads it itself.
    assert check(d.get("/api/v1/steplibs/core"), 200)["versions"]


def test_the_control_in_process_the_marker_shows_the_daemon(daemon_factory):
    d = daemon_factory({"steplibs": {"isolation": "never"}})
    assert upload(d, MARKER).status_code == 201
    assert {(w, pid) for w, pid, _ in marks(d)} == {("constructor", d.pid), ("init", d.pid)}


def test_a_library_whose_init_hangs_or_crashes_is_refused_by_name(daemon_factory):
    d = daemon_factory({"steplibs": {"host_load_timeout": "1s"}})
    error(upload(d, TEST_PLUGINS / "test-marker-hang.upload"), 400, "refused",
          "the step host did not finish loading it within 1000 ms: its constructors or init() "
          "hang ([steplibs] host_load_timeout)")
    error(upload(d, TEST_PLUGINS / "test-marker-crash.upload"), 400, "refused",
          "the step host crashed (SIGSEGV) while it loaded the library: in its constructors or "
          "init()")
    assert outside(d, "markerhang") == {"constructor", "init"}
    assert outside(d, "markercrash") == {"constructor", "init"}
    assert d.running() and not os.listdir(d.data_dir / "steplibs")
    assert upload(d, MARKER).status_code == 201
