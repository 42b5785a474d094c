"""conftest.py - start the real opsconductord for integration tests, talk to it, stop it.

Fixtures:
  daemon_factory(config=None, args=(), env=None, ...) -> Daemon
      Starts the daemon built in $OPSC_BUILD_DIR (default ./build) on a free
      loopback port with a fresh data directory and the build's plugins, waits
      for /ready and returns a Daemon. `config` is a dict of sections
      ({"server": {"request_timeout": "2s"}}) merged over the defaults, or a
      whole file text. Every daemon still running at the end of the test is
      stopped with SIGTERM and must exit 0 within the deadline.
  daemon -> Daemon started with the defaults.
  run_daemon(args, config=None, env=None, timeout=10, input=None) -> CompletedProcess
      Runs the daemon to completion (start-up failures, console commands).

Identity: every daemon starts with OPSC_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD
(pass env={"OPSC_BOOTSTRAP_ADMIN_PASSWORD": None} to leave it unset), and
daemon_factory(login=True) logs in as admin so that Daemon.http carries the
admin's bearer token. Daemon.login(user, password) answers the login request,
Daemon.session(token) is a new requests.Session with that bearer token, and
Daemon.restart() stops the daemon and starts another on its data directory.

Store backend: OPSC_TEST_STORE=postgresql runs every daemon of the session
on a throw-away PostgreSQL server (fixtures/pgserver.py, started once per
pytest worker), one database per data directory (so restart() finds its
data again), unless the test's config sets [store] backend itself.
"""
import atexit
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD_DIR = pathlib.Path(os.environ.get("OPSC_BUILD_DIR", "build"))
if not BUILD_DIR.is_absolute():
    BUILD_DIR = (pathlib.Path.cwd() / BUILD_DIR) if (pathlib.Path.cwd() / BUILD_DIR).exists() \
        else ROOT / BUILD_DIR


def _reachable_by_all(path):
    """Whether every user may reach `path`: each directory from / down to it is searchable by
    others. A checkout under /root (0700 on Debian) is not."""
    p = pathlib.Path(path).resolve()
    return all(d.stat().st_mode & 0o001 for d in [p, *p.parents])


# What the daemon and its helpers run, by the build's layout (the daemon finds opsc-spawner
# and opsc-stephost beside it), without objects or test binaries.
_RUNTIME_PARTS = ("core", "spawner", "stephost", "plugins", "steplibs", "tests/exec_steps",
                  "tests/plugins")


def _runtime_copy(build):
    """A copy of the daemon, its helpers, plugins and step libraries where every user can read
    them: daemons that drop to the opsconductor user, local steps and step hosts under their
    own users must load them whatever directory the checkout is in. Removed at exit."""
    dest = pathlib.Path(tempfile.mkdtemp(prefix="opsc-build-", dir="/tmp"))
    dest.chmod(0o755)
    for part in _RUNTIME_PARTS:
        for f in (build / part).rglob("*"):
            rel = f.relative_to(build)
            if not f.is_file() or any(x.endswith(".p") for x in rel.parts):
                continue
            if f.suffix != ".so" and not os.access(f, os.X_OK):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            shutil.copy2(f, target)
    for d in [dest, *dest.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    atexit.register(shutil.rmtree, dest, True)
    return dest


# Where daemons are started from: the build itself, or a copy every user can read
# (OPSC_TEST_RUNTIME_COPY=1 makes the copy anyway, to test as from a checkout under /root).
RUN_DIR = BUILD_DIR if _reachable_by_all(BUILD_DIR / "core") and \
    os.environ.get("OPSC_TEST_RUNTIME_COPY") != "1" else _runtime_copy(BUILD_DIR)
DAEMON = RUN_DIR / "core" / "opsconductord"
STOP_DEADLINE_S = 15


class Session(requests.Session):
    """A requests.Session whose requests time out (60 s unless told): a daemon
    that stops answering fails its test instead of hanging the suite."""

    def request(self, *args, **kw):
        kw.setdefault("timeout", 60)
        return super().request(*args, **kw)
# A sanitizer daemon beside three other test workers on 2 cores once took 6 s to hash the first
# admin's password and more than 15 s to be ready: readiness is waited for, not timed.
READY_DEADLINE_S = 45
ADMIN_PASSWORD = "Admin-Test-Pw-5d1c9e"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin_dirs():
    dirs = [RUN_DIR / "plugins", RUN_DIR / "steplibs"]
    return [str(d) for d in dirs if d.is_dir()]


def render_config(sections):
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {v}" for k, v in keys.items())
        lines.append("")
    return "\n".join(lines)


def raise_fd_limit(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


class Daemon:
    """A running daemon: its URL, files, a requests session and raw-socket helpers."""

    def __init__(self, proc, port, data_dir, config_path, stderr_path):
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.config_path = config_path
        self.stderr_path = stderr_path
        self.http = Session()
        self.admin_password = None
        self.restart = None  # set by daemon_factory

    def login(self, username, password, session=None):
        """The answer to POST /api/v1/auth/login (not raised on error)."""
        return (session or requests).post(self.url("/api/v1/auth/login"), timeout=30,
                                          json={"username": username, "password": password})

    def session(self, token=None):
        s = Session()
        if token:
            s.headers["Authorization"] = "Bearer " + token
        return s

    def login_admin(self):
        r = self.login("admin", self.admin_password)
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = "Bearer " + r.json()["access_token"]

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path):
        return self.base + path

    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return self.http.get(self.url(path), **kw)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 10)
        return self.http.request(method, self.url(path), **kw)

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def raw(self, data, timeout=10):
        """Send bytes on a fresh connection; return everything read until the server closes."""
        with self.connect(timeout) as s:
            s.sendall(data)
            return read_all(s)

    def stderr(self):
        return pathlib.Path(self.stderr_path).read_text(errors="replace")

    def running(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, deadline=STOP_DEADLINE_S):
        """Signal the daemon and return its exit code (it must exit within the deadline)."""
        if self.running():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(deadline)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"daemon {self.pid} did not exit within {deadline}s after {sig!r}:\n"
                        + self.stderr()[-4000:])

    def wait_ready(self, deadline=READY_DEADLINE_S, port_taken_ok=False):
        """Wait until ready; False (with port_taken_ok) when the port was taken meanwhile."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not self.running():
                if port_taken_ok and "address already in use" in self.stderr():
                    return False
                pytest.fail(f"daemon exited with {self.proc.returncode} before ready:\n"
                            + self.stderr()[-4000:])
            try:
                # the port is ours: another worker's daemon may have got it first, and this one
                # would then fail to bind after the other had answered
                if (requests.get(self.url("/ready"), timeout=1).status_code == 200
                        and listens_on(self.pid, self.port)):
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.02)
        pytest.fail("daemon not ready within %ss:\n%s" % (deadline, self.stderr()[-4000:]))


def listens_on(pid, port):
    """True when process `pid` holds a listening TCP socket on `port` (any address)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
    except OSError:  # the process is gone, or a descriptor closed while we looked
        return False
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):  # its network namespace
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port and f[9] in inodes:
                return True
    return False


def read_all(sock):
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_response(data):
    """(status, headers dict lowercased, body bytes) of the first response in data."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


def default_sections(tmp, port):
    return {
        "server": {"listen": f"127.0.0.1:{port}", "shutdown_timeout": "5s"},
        "store": {"data_dir": str(tmp / "data")},
        "log": {"level": "info"},
        # yescrypt's default cost (64 MiB, ~0.3 s a hash here) made hashing the bootstrap
        # admin's password and logging in half of each test daemon's CPU; the cost is tested
        # in the unit tests, behaviour here does not depend on it.
        "auth": {"password_cost": "1"},
    }


PG_STORE = {"server": None, "databases": {}}  # OPSC_TEST_STORE=postgresql


def pg_store_keys(data_dir):
    """[store] keys putting the daemon of `data_dir` on the session's PostgreSQL server."""
    pg = PG_STORE["server"]
    dbs = PG_STORE["databases"]
    if data_dir not in dbs:
        dbs[data_dir] = pg.database()
    return {"backend": "postgresql", "postgresql_url": pg.url(dbs[data_dir])}


def store_bytes(data_dir):
    """The stored bytes of the daemon of `data_dir`, by name: LMDB's *.mdb files, or on
    PostgreSQL every key and value of its database (COPY ... binary: the raw bytes)."""
    if PG_STORE["server"]:
        name = PG_STORE["databases"][str(data_dir)]
        return {"opsc_kv": PG_STORE["server"].copy_out("SELECT k, v FROM opsc_kv", name)}
    return {p.name: p.read_bytes() for p in pathlib.Path(data_dir).glob("*.mdb")}


# Tests that use LMDB's files themselves (mdb_load, backups of data.mdb): not for PostgreSQL.
LMDB_ONLY = {
    "test_auth_credentials.py::test_delete_refuses_a_credential_in_use_unless_forced",
    "test_files.py::test_a_configured_files_dir_is_the_one_served_and_backed_up",
    "test_files.py::test_upload_list_download_delete_round_trip_audited_and_backed_up",
    "test_security_edges.py::test_a_full_disk_answers_507_keeps_reads_and_logins_and_ready_says_so",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test (a minute or so) that "
                            "OPSC_TEST_SKIP_SLOW=1 skips when the suite's time budget needs it")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("OPSC_TEST_SKIP_SLOW"):
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(pytest.mark.skip(reason="slow, and OPSC_TEST_SKIP_SLOW is set"))
    if os.environ.get("OPSC_TEST_STORE", "lmdb") == "lmdb":
        return
    for item in items:
        if f"{pathlib.Path(item.fspath).name}::{item.name}" in LMDB_ONLY:
            item.add_marker(pytest.mark.skip(reason="uses LMDB's files directly"))


@pytest.fixture(scope="session", autouse=True)
def _store_backend():
    want = os.environ.get("OPSC_TEST_STORE", "lmdb")
    if want == "lmdb":
        yield
        return
    assert want == "postgresql", f"OPSC_TEST_STORE={want}: lmdb or postgresql"
    from fixtures import pgserver
    PG_STORE["server"] = pgserver.PgServer().start()
    yield
    PG_STORE["server"].stop()
    PG_STORE["server"] = None


@pytest.fixture(scope="module")
def pg_server():
    """A throw-away PostgreSQL server for the tests of one module (fixtures/pgserver.py)."""
    from fixtures import pgserver
    assert pgserver.available(), "postgresql-15 is missing: run scripts/deps"
    server = pgserver.PgServer().start()
    yield server
    server.stop()


def write_config(tmp, port, config, data_dir=None):
    path = tmp / "opsconductor.conf"
    if isinstance(config, str):
        path.write_text(config)
        return path
    sections = default_sections(tmp, port)
    for section, keys in (config or {}).items():
        sections.setdefault(section, {}).update(keys)
    if PG_STORE["server"] and "backend" not in sections["store"]:
        sections["store"].update(pg_store_keys(data_dir or sections["store"]["data_dir"]))
    path.write_text(render_config(sections))
    return path


def daemon_command(config_path, args=()):
    cmd = [str(DAEMON), "-c", str(config_path)]
    for d in plugin_dirs():
        cmd += ["-p", d]
    return cmd + list(args)


def clean_env(env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
    e["OPSC_BOOTSTRAP_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    e.update(env or {})
    return {k: v for k, v in e.items() if v is not None}  # None unsets


@pytest.fixture(scope="session", autouse=True)
def _built_daemon():
    if not DAEMON.exists():
        pytest.fail(f"{DAEMON} is missing: build first (meson setup {BUILD_DIR} && ninja -C {BUILD_DIR})")
    raise_fd_limit()


@pytest.fixture
def daemon_factory(tmp_path):
    started = []
    counter = [0]

    def start(config=None, args=(), env=None, wait_ready=True, port=None, preexec_fn=None,
              login=True, retries=3):
        counter[0] += 1
        tmp = tmp_path / f"d{counter[0]}"
        tmp.mkdir()
        chosen, port = port, port or free_port()
        config_path = write_config(tmp, port, config)
        stderr_path = tmp / "stderr.log"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(daemon_command(config_path, args), stdout=err, stderr=err,
                                    stdin=subprocess.DEVNULL, env=clean_env(env),
                                    preexec_fn=preexec_fn)
        data_dir = tmp / "data"
        if isinstance(config, dict) and "data_dir" in config.get("store", {}):
            data_dir = pathlib.Path(config["store"]["data_dir"])
        d = Daemon(proc, port, data_dir, config_path, stderr_path)
        d.admin_password = clean_env(env).get("OPSC_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)

        def restart(**kw):
            if d.running():
                assert d.stop() == 0
            cfg = dict(config) if isinstance(config, dict) else {}
            cfg["store"] = dict(cfg.get("store", {}), data_dir=str(data_dir))
            return start(config=cfg, args=args, env=env, **kw)
        d.restart = restart
        started.append(d)
        if wait_ready:
            if not d.wait_ready(port_taken_ok=not chosen and retries > 0):
                started.remove(d)  # a free port another test's process took first: another one
                return start(config, args, env, wait_ready, None, preexec_fn, login, retries - 1)
            if login and d.admin_password:
                d.login_admin()
        return d

    yield start
    # Every daemon is stopped before one that exited badly fails the test: an assert in the
    # loop left the later ones running.
    bad = []
    for d in started:
        if d.running():
            code = d.stop()
            if code != 0:
                bad.append(f"daemon {d.pid} exited {code} on SIGTERM:\n{d.stderr()[-4000:]}")
    assert not bad, "\n".join(bad)


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()


LOCAL_USER = "opsconductor-local"


@pytest.fixture
def local_tmp():
    """A directory that local steps (run as the unprivileged local-steps user,
    never as the daemon's) may write to: tmp_path is private to the test's user."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="opsc-local-", dir="/tmp"))
    d.chmod(0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def run_daemon(tmp_path):
    # 60 s: a --check-config that takes 0.3 s here took 16 s in a fresh root with four ASan
    # workers on 2 cores; a command that hangs still fails, later.
    def run(args=(), config=None, env=None, timeout=60, preexec_fn=None, input=None):
        args = list(args)
        flag = next((a for a in ("-d", "--data-dir") if a in args[:-1]), None)
        data_dir = str(args[args.index(flag) + 1]) if flag else None  # its database, on PostgreSQL
        config_path = write_config(tmp_path, free_port(), config, data_dir)
        return subprocess.run(daemon_command(config_path, args), capture_output=True, text=True,
                              env=clean_env(env), timeout=timeout, preexec_fn=preexec_fn,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
    return run
