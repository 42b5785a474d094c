#!/usr/bin/python3
"""bench_exec.py - the executor through the REST API: run rate, 200 SSH targets, live log
throughput, memory per running target.

    tests/bench/bench_exec.py [--build DIR] runs [N] [CLIENTS]   N runs of a one-step job, local
    tests/bench/bench_exec.py [--build DIR] --store postgresql --nodes K runs [N] [CLIENTS]
                              the same on K daemons sharing one throw-away PostgreSQL (cluster
                              mode: the clients POST to the nodes in turn, every node claims runs);
                              --nodes 0: LMDB on one node, then PostgreSQL on 1, 2, 3 nodes
    tests/bench/bench_exec.py [--build DIR] [--base-daemon PATH] runrate [SECONDS] [CLIENTS]
                              the same job POSTed by wrk (CLIENTS connections) for SECONDS, then
                              until every run finished; with --base-daemon, that daemon too,
                              alternating, in the same run
    tests/bench/bench_exec.py [--build DIR] ssh [TARGETS]         one job on TARGETS SSH targets,
                              against TARGETS plain `ssh ... true &` in the same run
    tests/bench/bench_exec.py [--build DIR] logs [MB]             MB of stdout to an SSE client
    tests/bench/bench_exec.py [--build DIR] memory [TARGETS]      RSS per running target (SSH)
    tests/bench/bench_exec.py [--build DIR] idle [TARGETS]        idle RSS with TARGETS targets

Each starts its own daemon on loopback (and the sshd fixture for ssh and memory; run as root),
prints its figures and stops everything. Not run by the test suite.
BENCH_PERF=FILE records the (last) daemon with `perf record -g` while it is measured.
"""
import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from fixtures import sshd  # noqa: E402

PASSWORD = "Bench-Admin-Pw-7731"
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out", "interrupted"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, build, extra="", daemon=None, env_extra=None):
        self.dir = tempfile.mkdtemp(prefix="opsc-bench-exec-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = pathlib.Path(self.dir) / "opsc.conf"
        conf.write_text(f"[server]\nlisten = 127.0.0.1:{self.port}\nshutdown_timeout = 2s\n"
                        f"[store]\ndata_dir = {self.dir}/data\n[log]\nlevel = warn\n" + extra)
        cmd = [str(daemon or build / "core" / "opsconductord"), "-c", str(conf),
               "-p", str(build / "plugins"), "-p", str(build / "steplibs")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
        env["OPSC_BOOTSTRAP_ADMIN_PASSWORD"] = PASSWORD
        env.update(env_extra or {})
        self.log = open(pathlib.Path(self.dir) / "stderr.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env,
                                     stdin=subprocess.DEVNULL)
        for _ in range(500):
            try:
                if requests.get(self.base + "/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.02)
        r = requests.post(self.base + "/api/v1/auth/login",
                          json={"username": "admin", "password": PASSWORD}, timeout=30)
        self.token = r.json()["access_token"]
        self.http = self.session()

    def session(self):
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + self.token
        return s

    def post(self, path, body=None, status=201, session=None):
        r = (session or self.http).post(self.base + path, json=body, timeout=120)
        assert r.status_code == status, r.text
        return r.json()

    def get(self, path, **params):
        r = self.http.get(self.base + path, params=params, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def rss_kb(self, field="VmRSS"):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cpu_s(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def wait_run(self, run_id, timeout=600):
        end = time.monotonic() + timeout
        while True:
            run = self.get(f"/api/v1/runs/{run_id}")
            if run["state"] in TERMINAL:
                return run
            assert time.monotonic() < end, f"run {run_id} is still {run['state']}"
            time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def machine():
    load = open("/proc/loadavg").read().split()[:3]
    return f"{os.cpu_count()} CPUs, load average {' '.join(load)}"


# ---- runs/s ------------------------------------------------------------------------------------

def one_step_job(d):
    t = d.post("/api/v1/targets", {"name": "self", "transport": "local"})
    job = d.post("/api/v1/jobs", {"name": "one", "allow_concurrent": True,
                                  "targets": {"ids": [t["id"]]},
                                  "steps": [{"id": "s", "type": "core.shell.command",
                                             "params": {"command": "true"}}]})
    d.wait_run(d.post(f"/api/v1/jobs/{job['id']}/runs", {})["id"])  # warm up
    return job


def run_states(d, job_id):
    """{run id: state} of every run of the job."""
    out, cursor = {}, None
    while True:
        params = {"job": job_id, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = d.get("/api/v1/runs", **params)["items"]
        out.update({r["id"]: r["state"] for r in page})
        if len(page) < 500:
            return out
        cursor = page[-1]["id"]


class Perf:
    """perf record -g of the daemon while a figure is measured (BENCH_PERF=FILE)."""
    def __init__(self, d):
        out = os.environ.get("BENCH_PERF")
        self.p = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "400", "-o", out, "-p", str(d.proc.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
            if out else None

    def stop(self):
        if self.p:
            self.p.send_signal(2)
            self.p.wait(60)


def bench_runrate(d, secs, clients, label):
    job = one_step_job(d)
    before = len(run_states(d, job["id"]))
    lua = pathlib.Path(d.dir) / "post.lua"
    lua.write_text('wrk.method = "POST"\nwrk.body = "{}"\n'
                   'wrk.headers["Content-Type"] = "application/json"\n'
                   f'wrk.headers["Authorization"] = "Bearer {d.token}"\n')
    perf = Perf(d)
    cpu0 = d.cpu_s()
    t0 = time.monotonic()
    out = subprocess.run(["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{secs}s", "--latency",
                          "-s", str(lua), f"{d.base}/api/v1/jobs/{job['id']}/runs"],
                         capture_output=True, text=True, check=True).stdout
    posted = time.monotonic() - t0
    while True:  # runs start in order: wait for the newest to end, then check them all
        newest = d.get("/api/v1/runs", job=job["id"], limit=1)["items"]
        if newest and newest[0]["state"] not in TERMINAL:
            time.sleep(0.01)
            continue
        states = run_states(d, job["id"])
        if all(s in TERMINAL for s in states.values()):
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    perf.stop()
    n = len(states) - before
    cpu = d.cpu_s() - cpu0
    bad = [ln.strip() for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln]
    lat = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()
           if ln.strip().startswith(("50%", "99%"))}
    print(f"  {label}: {n} runs POSTed in {posted:.1f} s ({n / posted:.0f}/s, 201 p50 "
          f"{lat.get('50%')} p99 {lat.get('99%')}), all finished and persisted after "
          f"{wall:.2f} s -> {n / wall:.0f} runs/s; daemon CPU {cpu * 1e6 / max(n, 1):.0f} µs/run"
          f"{'; ' + ', '.join(bad) if bad else ''}; load {open('/proc/loadavg').read().split()[0]}")
    return n / wall


def bench_runs(d, n, clients, nodes=None):
    nodes = nodes or [d]
    job = one_step_job(d)
    ids, lock, refused = [], threading.Lock(), []
    per_client = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]

    def client(i, k):
        node = nodes[i % len(nodes)]
        s = node.session()
        mine, busy = [], 0
        for _ in range(k):  # a cluster may answer 503 or 409 busy (conflicts, lock timeouts)
            r = s.post(node.base + f"/api/v1/jobs/{job['id']}/runs", json={}, timeout=120)
            if r.status_code in (409, 503) and len(nodes) > 1 and '"busy"' in r.text:
                busy += 1
                continue
            assert r.status_code == 201, r.text
            mine.append(r.json()["id"])
        with lock:
            ids.extend(mine)
            refused.append(busy)

    cpu0 = sum(x.cpu_s() for x in nodes)
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i, k)) for i, k in enumerate(per_client)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    posted = time.monotonic() - t0
    pending = set(ids)
    while pending:
        page = d.get("/api/v1/runs", job=job["id"], limit=500)["items"]
        cursor = None
        done = set()
        while True:
            done |= {r["id"] for r in page if r["state"] in TERMINAL}
            if len(page) < 500:
                break
            cursor = page[-1]["id"]
            page = d.get("/api/v1/runs", job=job["id"], limit=500, cursor=cursor)["items"]
        pending -= done
        if pending:
            time.sleep(0.01)
    wall = time.monotonic() - t0
    states = {}
    for rid in ids[:50]:
        s = d.get(f"/api/v1/runs/{rid}")["state"]
        states[s] = states.get(s, 0) + 1
    print(f"{n} runs of a one-step job (core.shell.command `true`, transport local), "
          f"{clients} HTTP clients, {len(nodes)} node(s)")
    print(f"  all POSTed (each answered 201 after the run was stored): {posted:.2f} s "
          f"({n / posted:.0f} requests/s)")
    print(f"  all finished and persisted: {wall:.2f} s -> {len(ids) / wall:.0f} runs/s")
    print(f"  daemon CPU: {sum(x.cpu_s() for x in nodes) - cpu0:.2f} s; sample of states: "
          f"{states}")
    if len(nodes) > 1:
        per = {}
        for rid in ids[::max(1, len(ids) // 200)]:
            node_id = d.get(f"/api/v1/runs/{rid}").get("node_id", "-")
            per[node_id] = per.get(node_id, 0) + 1
        print(f"  runs per node, of a sample of {sum(per.values())}: "
              f"{sorted(per.values(), reverse=True)}; POSTs answered busy: {sum(refused)}")
    return len(ids) / wall


# ---- SSH ------------------------------------------------------------------------------------------

def ssh_fleet(d, facts, n):
    key = pathlib.Path(facts["key_ed25519"]).read_text()
    cred = d.post("/api/v1/credentials", {"name": "k", "type": "ssh_key",
                                          "username": facts["user"], "private_key": key})
    items = [{"name": f"node-{i:03}", "address": "127.0.0.1", "port": facts["port"],
              "transport": "ssh", "credential_id": cred["id"], "host_key_policy": "tofu",
              "labels": {"fleet": "bench"}} for i in range(n)]
    d.post("/api/v1/targets/bulk", items, status=200)
    return d.post("/api/v1/groups", {"name": "bench", "selector": "fleet=bench"})


def plain_ssh(facts, n):
    """Wall time of n plain `ssh ... true &` at once (no ControlMaster): the baseline the
    daemon's fan-out is compared with, measured in the same run."""
    opts = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ControlMaster=no", "-o", "ControlPath=none",
            "-o", "BatchMode=yes", "-i", facts["key_ed25519"], "-p", str(facts["port"])]
    t0 = time.monotonic()
    procs = [subprocess.Popen(["ssh", *opts, f"{facts['user']}@127.0.0.1", "true"])
             for _ in range(n)]
    failed = sum(p.wait() != 0 for p in procs)
    wall = time.monotonic() - t0
    print(f"{n} plain `ssh ... true &` at once: {wall:.2f} s ({failed} failed)")
    return wall


def bench_ssh(d, facts, n):
    g = ssh_fleet(d, facts, n)
    job = d.post("/api/v1/jobs", {"name": "true", "targets": {"groups": [g["id"]]},
                                  "steps": [{"id": "s", "type": "core.shell.command",
                                             "params": {"command": "true"}}]})
    plain = plain_ssh(facts, n)
    for label in ("cold (connects, learns host keys)", "warm (pooled connections)"):
        cpu0 = d.cpu_s()
        t0 = time.monotonic()
        run = d.wait_run(d.post(f"/api/v1/jobs/{job['id']}/runs", {})["id"])
        wall = time.monotonic() - t0
        print(f"one job (`true`) on {n} SSH targets, {label}: {wall:.2f} s "
              f"= {wall / plain:.2f}x plain ssh, state {run['state']} {run['counts']}, "
              f"daemon CPU {d.cpu_s() - cpu0:.2f} s")


def bench_memory(d, facts, n):
    g = ssh_fleet(d, facts, n)
    warm = d.post("/api/v1/jobs", {"name": "warm", "targets": {"groups": [g["id"]]},
                                   "steps": [{"id": "s", "type": "core.shell.command",
                                              "params": {"command": "true"}}]})
    d.wait_run(d.post(f"/api/v1/jobs/{warm['id']}/runs", {})["id"])  # connections pooled
    idle = d.rss_kb()
    job = d.post("/api/v1/jobs", {"name": "nap", "targets": {"groups": [g["id"]]},
                                  "steps": [{"id": "s", "type": "core.shell.command",
                                             "params": {"command": "echo started; sleep 8"}}]})
    run = d.post(f"/api/v1/jobs/{job['id']}/runs", {})
    peak = 0
    end = time.monotonic() + 8
    while time.monotonic() < end:
        r = d.get(f"/api/v1/runs/{run['id']}")
        running = sum(1 for t in r["targets"] if t["state"] == "running")
        if running == n:
            peak = max(peak, d.rss_kb())
        time.sleep(0.2)
    d.wait_run(run["id"])
    print(f"daemon RSS with {n} pooled idle SSH connections: {idle / 1024:.1f} MB")
    print(f"daemon RSS with {n} targets running a step: {peak / 1024:.1f} MB")
    print(f"memory per running target (step, command, log buffers; on a pooled connection): "
          f"{(peak - idle) / n:.1f} kB")


# ---- live log throughput --------------------------------------------------------------------------

def bench_logs(d, mb):
    t = d.post("/api/v1/targets", {"name": "self", "transport": "local"})
    line = "x" * 99
    job = d.post("/api/v1/jobs", {"name": "spew", "targets": {"ids": [t["id"]]},
                                  "steps": [{"id": "s", "type": "core.shell.command",
                                             "params": {"command": f"yes {line} | head -c "
                                                                   f"{mb * 1000000}"}}]})
    run = d.post(f"/api/v1/jobs/{job['id']}/runs", {})
    t0 = time.monotonic()
    r = d.http.get(f"{d.base}/api/v1/runs/{run['id']}/events", stream=True, timeout=600,
                   headers={"Accept": "text/event-stream"})
    text_bytes = wire = 0
    event = None
    for raw in r.iter_lines(chunk_size=1 << 16):
        wire += len(raw) + 1
        if raw.startswith(b"event: "):
            event = raw[7:]
        elif raw.startswith(b"data: ") and event == b"log":
            text_bytes += len(json.loads(raw[6:])["text"])
        elif raw.startswith(b"data: ") and event == b"end":
            break
    wall = time.monotonic() - t0
    r.close()
    d.wait_run(run["id"])
    print(f"{text_bytes / 1e6:.0f} MB of stdout (100-byte lines) from the target to an SSE "
          f"client in {wall:.2f} s: {text_bytes / 1e6 / wall:.1f} MB/s "
          f"({wire / 1e6:.0f} MB on the wire, stored in the run log as it streamed)")


def bench_idle(d, n):
    """Idle RSS of a daemon with every bundled plugin and n SSH targets (never contacted)."""
    started = d.rss_kb()
    cred = d.post("/api/v1/credentials", {"name": "k", "type": "ssh_password",
                                          "username": "root", "password": "idle-bench-pw"})
    items = [{"name": f"node-{i:04}", "address": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
              "transport": "ssh", "credential_id": cred["id"], "labels": {"rack": f"r{i % 8}"}}
             for i in range(n)]
    d.post("/api/v1/targets/bulk", items, status=200)
    d.get("/api/v1/targets", limit=min(n, 500))  # a page of the list, as a UI shows it
    time.sleep(11)  # idle: the daemon hands free heap pages back every 10 s (core/heap_trim.c)
    print(f"idle daemon, all bundled plugins: {started / 1024:.1f} MB RSS after start, "
          f"{d.rss_kb() / 1024:.1f} MB with {n} targets "
          f"(RssAnon {d.rss_kb('RssAnon') / 1024:.1f} MB, RssFile {d.rss_kb('RssFile') / 1024:.1f} MB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--base-daemon", help="another opsconductord measured in the same run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--store", choices=["lmdb", "postgresql"], default="lmdb")
    ap.add_argument("--nodes", type=int, default=1, help="0: LMDB and 1, 2, 3 nodes, one run")
    ap.add_argument("what", choices=["runs", "runrate", "ssh", "logs", "memory", "idle"])
    ap.add_argument("n", nargs="?", type=int)
    ap.add_argument("clients", nargs="?", type=int, default=8)
    a = ap.parse_args()
    build = pathlib.Path(a.build).resolve()
    print(machine())
    extra = "[executor]\nlog_max_per_target = 4G\nlog_max_size = 0\n" if a.what == "logs" else ""
    if a.what == "runrate":
        return main_runrate(build, a)
    if a.store == "postgresql":
        return main_cluster(build, a)
    d = Daemon(build, extra)
    work = None
    try:
        if a.what == "runs":
            bench_runs(d, a.n or 1000, a.clients)
        elif a.what == "logs":
            bench_logs(d, a.n or 200)
        elif a.what == "idle":
            bench_idle(d, a.n or 1000)
        else:
            work = tempfile.mkdtemp(prefix="opsc-bench-sshd-")
            os.chmod(work, 0o755)
            facts = sshd.start(work + "/sshd")
            (bench_ssh if a.what == "ssh" else bench_memory)(d, facts, a.n or 200)
    finally:
        d.stop()
        if work:
            sshd.stop(work + "/sshd")
            shutil.rmtree(work, ignore_errors=True)


def pg_cluster(build, k, lease_ttl=None):
    """A throw-away PostgreSQL and `k` daemons sharing one database on it: (pg, nodes)."""
    import base64
    from fixtures import pgserver
    pg = pgserver.PgServer().start()
    env = {"OPSC_STORE_BACKEND": "postgresql", "OPSC_STORE_POSTGRESQL_URL": pg.url(pg.database()),
           "OPSC_AUTH_JWT_SECRET": base64.b64encode(os.urandom(32)).decode(),
           "OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    if lease_ttl:
        env["OPSC_STORE_LEASE_TTL"] = lease_ttl
    nodes = []
    try:
        for _ in range(k):
            nodes.append(Daemon(build, env_extra=env))
    except BaseException:
        for d in nodes:
            d.stop()
        pg.stop()
        raise
    pg.node_env = env  # what another node needs to join
    return pg, nodes


def main_cluster(build, a):
    """`runs` on --nodes daemons sharing one throw-away PostgreSQL; with --nodes 0, LMDB on one
    node then PostgreSQL on 1, 2 and 3 nodes in this one run, and a table of the figures."""
    assert a.what == "runs", "--store postgresql measures `runs` only"
    rates = []
    for k in [a.nodes] if a.nodes else ["lmdb", 1, 2, 3]:
        if k == "lmdb":
            d = Daemon(build)
            try:
                rates.append(("LMDB, 1 node", bench_runs(d, a.n or 1000, a.clients)))
            finally:
                d.stop()
            continue
        pg, nodes = pg_cluster(build, k)
        try:
            rates.append((f"PostgreSQL, {k} node(s)",
                          bench_runs(nodes[0], a.n or 1000, a.clients, nodes)))
        finally:
            for d in nodes:
                d.stop()
            pg.stop()
    if len(rates) > 1:
        print("summary (runs created and completed per second):")
        for label, rate in rates:
            print(f"  {label:24} {rate:6.0f} runs/s")


def spawn_ceiling(n, clients):
    """`sh -c true` n times, `clients` at once, by xargs: what starting the processes alone
    allows on this machine in these minutes (each run starts one such process)."""
    t0 = time.monotonic()
    subprocess.run(["xargs", "-P", str(clients), "-I{}", "sh", "-c", "true"],
                   input="\n".join(map(str, range(n))), text=True, check=True)
    rate = n / (time.monotonic() - t0)
    print(f"  ceiling: {n} x `sh -c true` by xargs -P {clients}: {rate:.0f}/s; "
          f"load {open('/proc/loadavg').read().split()[0]}")
    return rate


def main_runrate(build, a):
    secs, clients = a.n or 5, a.clients
    daemons = [("this build", None)] + ([("base", a.base_daemon)] if a.base_daemon else [])
    print(f"one-step runs (core.shell.command `true`, local), wrk -c{clients} for {secs} s, "
          f"{a.rounds} round(s), a fresh daemon each")
    best = {}
    for r in range(a.rounds):
        best["xargs"] = max(best.get("xargs", 0), spawn_ceiling(1000, clients))
        for label, path in daemons:
            d = Daemon(build, daemon=path)
            try:
                best[label] = max(best.get(label, 0), bench_runrate(d, secs, clients, label))
            finally:
                d.stop()
    print("  best: " + ", ".join(f"{k} {v:.0f}/s ({v / best['xargs']:.2f}x xargs)"
                                 for k, v in best.items() if k != "xargs"))


if __name__ == "__main__":
    main()
