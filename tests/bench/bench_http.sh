#!/bin/bash
# bench_http.sh - HTTP throughput and latency (wrk), start-up to ready time, idle RSS.
#
# Usage: tests/bench/bench_http.sh [build-dir]     (default: $OPSC_BUILD_DIR or ./build)
# Env:   BENCH_SECONDS (default 10), BENCH_CONNECTIONS (64), BENCH_THREADS (2)
# Starts the daemon built in build-dir on a free loopback port with a fresh
# data directory and the build's plugins, measures, stops it with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-${OPSC_BUILD_DIR:-build}}
daemon=$build/core/opsconductord
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
[ -x "$daemon" ] || { echo "bench_http: $daemon not built" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_http: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; sleep 0.5; fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
plugin_args=()
for d in "$build/plugins" "$build/steplibs"; do [ -d "$d" ] && plugin_args+=(-p "$d"); done

# Start-up to ready: launch, then poll /ready over a raw socket every 0.5 ms.
read -r pid startup_ms < <(/usr/bin/python3 - "$daemon" "$port" "$work" "${plugin_args[@]}" <<'EOF'
import os, socket, subprocess, sys, time
daemon, port, work, plugin_args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
log = open(os.path.join(work, "daemon.log"), "wb")
t0 = time.monotonic()
p = subprocess.Popen([daemon, "-l", f"127.0.0.1:{port}", "-d", os.path.join(work, "data"),
                      "-L", "warn", *plugin_args], stdout=log, stderr=log, start_new_session=True)
while True:
    if p.poll() is not None:
        sys.exit(f"daemon exited with {p.returncode}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /ready HTTP/1.1\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                break
    except OSError:
        pass
    if time.monotonic() - t0 > 10:
        sys.exit("daemon not ready within 10 s")
    time.sleep(0.0005)
print(p.pid, round((time.monotonic() - t0) * 1000, 1))
EOF
)
sleep 1
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")

run_wrk() {
    local path=$1
    echo "== wrk -t$threads -c$conns -d${secs}s http://127.0.0.1:$port$path"
    wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$path" |
        tee "$work/wrk.out" | grep -E 'Latency|Requests/sec|Non-2xx|Socket errors|50%|99%'
    awk '/Requests\/sec/ {print $2}' "$work/wrk.out" >"$work/rps$(echo "$path" | tr / _)"
}
run_wrk /health
run_wrk /api/v1/system
rss_after_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")

# Started through python, so not our child: signal it and wait for it to go.
kill -TERM "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
pid=""

echo "== summary ($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
printf '%-34s %s\n' "start-up to /ready (ms)" "$startup_ms" \
    "idle RSS after start (MB)" "$(awk "BEGIN {printf \"%.1f\", $rss_kb / 1024}")" \
    "RSS after the runs (MB)" "$(awk "BEGIN {printf \"%.1f\", $rss_after_kb / 1024}")" \
    "GET /health (req/s)" "$(cat "$work/rps_health")" \
    "GET /api/v1/system (req/s)" "$(cat "$work/rps_api_v1_system")"
