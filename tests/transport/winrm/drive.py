"""Run transport-winrm through winrm_drive (tests/transport/winrm/winrm_drive.c) against the WinRM test server."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "winrm"))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "fixtures"))

from fixture import WinRMTestServer, cert_thumbprint, make_tls_material  # noqa: E402,F401

BUILD_DIR = pathlib.Path(os.environ.get("OPSC_BUILD_DIR", "build"))
if not BUILD_DIR.is_absolute():
    BUILD_DIR = (pathlib.Path.cwd() / BUILD_DIR) if (pathlib.Path.cwd() / BUILD_DIR).exists() else ROOT / BUILD_DIR
DRIVER = BUILD_DIR / "tests" / "transport" / "winrm" / "winrm_drive"
PLUGIN = BUILD_DIR / "plugins" / "transport-winrm" / "transport-winrm.so"

USER, PASSWORD = "alice", "Winrm-Pass-1"
# For sanitizer builds: a known leak inside gss-ntlmssp is suppressed, which needs full
# stacks through libcrypto (it has no frame pointers); and strict_string_checks is off
# because gss-ntlmssp strndup()s GSS name buffers, which are counted, not NUL-terminated:
# legal (strndup reads at most n bytes) but reported under that option.
SANITIZER_ENV = {
    "LSAN_OPTIONS": "suppressions=" + str(pathlib.Path(__file__).with_name("lsan.supp")),
    "ASAN_OPTIONS": ":".join(
        filter(None, [os.environ.get("ASAN_OPTIONS"), "fast_unwind_on_malloc=0", "strict_string_checks=0"])
    ),
}


def sanitized():
    """True when the driver was built with AddressSanitizer (big transfers are scaled down)."""
    import subprocess  # noqa: PLC0415

    out = subprocess.run(["nm", "-D", str(DRIVER)], capture_output=True, text=True).stdout
    return "__asan_init" in out
USERS = [{"name": USER, "password": PASSWORD}]


def run(scenario, timeout=600, env=None):
    """Runs one scenario; returns the driver's JSON report."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(scenario, fh)
        path = fh.name
    try:
        proc = subprocess.run(
            [str(DRIVER), str(PLUGIN), path],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, **SANITIZER_ENV, **(env or {})),
        )
    finally:
        os.unlink(path)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"winrm_drive failed ({proc.returncode}): {proc.stderr[-4000:]}")
    if os.environ.get("WINRM_DRIVE_STDERR"):
        sys.stderr.write(proc.stderr)
    report = json.loads(proc.stdout)
    report["stderr_log"] = proc.stderr
    assert report["loop_clean"], "the plugin left handles open on the loop"
    return report


def target(server, auth="ntlm", options=None, steps=None, password=PASSWORD, **extra):
    cred = {"auth": auth, "username": USER, "password": password}
    cred.update(extra.pop("cred", {}))
    options = dict(options or {})
    # The test server listens on a random port: say the scheme (5985 would mean http).
    options.setdefault("scheme", "https" if server.url.startswith("https") else "http")
    t = {"address": extra.pop("address", "127.0.0.1"), "port": server.port, "options": options, "cred": cred}
    if steps is not None:
        t["steps"] = steps
    t.update(extra)
    return t


def one(server, steps, auth="ntlm", options=None, config=None, timeout=600, **kw):
    """Connects one target, runs `steps`; returns (connect report, step reports)."""
    scenario = {"config": config or {"operation_timeout": "5s"}, "targets": [target(server, auth, options, **kw)], "steps": steps}
    report = run(scenario, timeout=timeout)
    t = report["targets"][0]
    return t["connect"], t["steps"]


def exec_step(command, **kw):
    step = {"op": "exec", "command": command}
    step.update(kw)
    return step


class Servers:
    """A pytest fixture's factory: servers(**config) starts a test server; stop_all() ends them."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def __call__(self, **config):
        config.setdefault("users", USERS)
        srv = WinRMTestServer(config, str(self.tmp_path / f"srv{len(self.started)}")).start()
        self.started.append(srv)
        return srv

    def stop_all(self):
        for srv in self.started:
            srv.stop()
