#!/bin/bash
# bench_fleet.sh - connectivity test of a 200-target SSH group through the REST API.
#
#   tests/bench/bench_fleet.sh [BUILD_DIR] [TARGETS] [CONCURRENCY]   (root; build, 200, 200)
#
# Starts the sshd fixture (tests/integration/fixtures/sshd.py) and the daemon
# on loopback, adds an ed25519 credential and TARGETS targets (bulk import,
# TOFU) pointing at that one sshd, groups them by label, then runs
# POST /api/v1/groups/{id}/test as an event stream, twice. Prints:
#   - the bulk import time;
#   - per run: wall time (client side, request to "done"), time to the first
#     result, and the daemon's CPU (user+sys from /proc/<pid>/stat) for it;
#   - memory per pooled connection: daemon RSS with TARGETS idle pooled
#     connections minus its RSS after the pool closed them (idle timeout),
#     divided by TARGETS. Both are taken after malloc_trim(0) called in the
#     daemon through gdb, so that memory glibc keeps after free() does not
#     hide the difference (without gdb the figures are untrimmed). The growth
#     from before the first test is printed too (an upper bound: it includes
#     what the tests left in the allocator).
#   - sshd's CPU for both tests (the listener's and its reaped children's,
#     read when the pool has closed every connection): key exchange, a fork
#     per connection and the probe's commands; it bounds the wall time.
# Not run by the test suite.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
N=${2:-200}
CONC=${3:-200}
FIX=$ROOT/tests/integration/fixtures/sshd.py
WORK=$(mktemp -d /tmp/opsc-bench-fleet-XXXXXX)
chmod 755 "$WORK"
DPID=
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
  /usr/bin/python3 "$FIX" stop "$WORK/sshd" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n 8192

/usr/bin/python3 "$FIX" start "$WORK/sshd" --option 'MaxStartups 2000' > "$WORK/facts.json"
PORT=$(/usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
IDLE_S=8
cat > "$WORK/opsc.conf" <<EOF
[server]
listen = 127.0.0.1:$PORT
[store]
data_dir = $WORK/data
[log]
level = warn
[fleet]
idle_timeout = ${IDLE_S}s
max_connections = $((N + 100))
EOF
PW="Bench-Admin-Pw-$RANDOM-$RANDOM"
OPSC_BOOTSTRAP_ADMIN_PASSWORD=$PW "$BUILD/core/opsconductord" -c "$WORK/opsc.conf" \
  -p "$BUILD/plugins" > "$WORK/daemon.log" 2>&1 &
DPID=$!

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== versions: $(ssh -V 2>&1), libssh2 $(dpkg-query -W -f '${Version}' libssh2-1)"

/usr/bin/python3 - "$WORK" "$PORT" "$PW" "$DPID" "$N" "$CONC" "$IDLE_S" <<'PY'
import json, os, sys, time
import requests

work, port, pw, pid, n, conc, idle_s = sys.argv[1:8]
n, conc, idle_s, pid = int(n), int(conc), int(idle_s), int(pid)
base = f"http://127.0.0.1:{port}"
facts = json.load(open(f"{work}/facts.json"))
tick = os.sysconf("SC_CLK_TCK")

def cpu_s(of=pid, children=False):
    f = open(f"/proc/{of}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15 if children else 13]) / tick

def sshd_cpu_s():
    """The sshd listener and every connection it served and reaped (and their commands)."""
    return cpu_s(facts["pid"], children=True)

def rss_kb(trim=False):
    if trim:
        os.system(f"gdb -p {pid} -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1")
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

for _ in range(300):
    try:
        if requests.get(base + "/ready", timeout=1).status_code == 200:
            break
    except requests.RequestException:
        pass
    time.sleep(0.05)
s = requests.Session()
tok = s.post(base + "/api/v1/auth/login", json={"username": "admin", "password": pw}).json()
s.headers["Authorization"] = "Bearer " + tok["access_token"]
cred = s.post(base + "/api/v1/credentials", json={
    "name": "bench", "type": "ssh_key", "username": facts["user"],
    "private_key": open(facts["key_ed25519"]).read()}).json()
items = [{"name": f"node-{i:04}", "address": "127.0.0.1", "port": facts["port"],
          "credential_id": cred["id"], "host_key_policy": "tofu",
          "labels": {"bench": "fleet", "rack": f"r{i % 8}"}} for i in range(n)]
t0 = time.monotonic()
r = s.post(base + "/api/v1/targets/bulk", json=items, timeout=120).json()
print(f"bulk import of {n} targets: {time.monotonic() - t0:.3f} s, created {r['created']}")
g = s.post(base + "/api/v1/groups", json={"name": "bench", "selector": "bench=fleet"}).json()

def run(label):
    c0, t0 = cpu_s(), time.monotonic()
    first = None
    ok = failed = 0
    with s.post(f"{base}/api/v1/groups/{g['id']}/test?concurrency={conc}",
                headers={"Accept": "text/event-stream"}, stream=True, timeout=600) as resp:
        event = None
        for line in resp.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "result":
                first = first or time.monotonic() - t0
                res = json.loads(line[6:])
                ok += res["ok"]
                failed += not res["ok"]
                if not res["ok"] and failed <= 3:
                    print("   failed:", res["name"], res["error"]["message"])
            elif line.startswith("data: ") and event == "done":
                break
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    print(f"{label}: {n} targets, concurrency {conc}: wall {wall:.2f} s, first result "
          f"{first:.3f} s, daemon CPU {cpu:.2f} s, ok {ok}, failed {failed}")

rss0 = rss_kb()
sshd0 = sshd_cpu_s()
run("test 1 (TOFU: keys learned)")
time.sleep(0.5)
rss1 = rss_kb()
run("test 2 (keys known)")
time.sleep(0.5)
rss2 = rss_kb(trim=True)
time.sleep(idle_s + 3)  # the pool's idle timeout closes every connection
rss3 = rss_kb(trim=True)
print(f"sshd CPU for both tests (counted once the pool closed the connections): "
      f"{sshd_cpu_s() - sshd0:.2f} s")
print(f"daemon RSS: before tests {rss0} kB, {n} pooled connections {rss2} kB, "
      f"after the pool closed them {rss3} kB")
print(f"memory per pooled connection: {(rss2 - rss3) / n:.1f} kB "
      f"(growth from before the tests: {(rss2 - rss0) / n:.1f} kB)")
PY
