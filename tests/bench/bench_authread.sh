#!/bin/bash
# bench_authread.sh - authenticated reads as ratios of the libuv ceiling, measured in one run.
#
# Usage: tests/bench/bench_authread.sh [BUILD_DIR] (default: build)
# Environment: DURATION (wrk seconds, default 8), ROUNDS (default 3), TARGETS (default 1000),
#              BASE_DAEMON (another opsconductord, e.g. main's, measured in the same rounds)
#
# Starts build/tests/bench/uv_ceiling (a bare libuv responder: a fixed 200) and the daemon
# (plus BASE_DAEMON) on free loopback ports, stores TARGETS targets, then, round by round so
# every figure shares the same minutes of a shared machine, runs `wrk -t2 -c64` against:
#   the ceiling, GET /health, GET /api/v1/targets/{id} with an access JWT, and with an API token.
# Prints each round, then the best round of each figure, its ratio to the best ceiling, and the
# daemon CPU per request (less sensitive to the neighbours than req/s).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-1000}
CEILING=$BUILD/tests/bench/uv_ceiling
for tool in wrk curl python3; do
    command -v $tool >/dev/null || { echo "bench_authread: $tool is required" >&2; exit 1; }
done
[ -x "$BUILD/core/opsconductord" ] && [ -x "$CEILING" ] ||
    { echo "bench_authread: build $BUILD first (ninja -C $BUILD)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

cport=$(free_port)
"$CEILING" "$cport" &
pids+=($!)

# start NAME DAEMON: a daemon with TARGETS targets; sets NAME_pid, NAME_url, NAME_jwt, NAME_api.
start() {
    local name=$1 daemon=$2 port pw base auth cred ids target
    port=$(free_port)
    pw="bench-Admin-$RANDOM$RANDOM"
    base=http://127.0.0.1:$port
    OPSC_BOOTSTRAP_ADMIN_PASSWORD=$pw "$daemon" --listen 127.0.0.1:$port \
        --data-dir "$tmp/$name" --plugin-dir "$BUILD/plugins" --log-level warn 2>"$tmp/$name.log" &
    pids+=($!)
    eval "${name}_pid=$!"
    for _ in $(seq 200); do curl -sf "$base/ready" >/dev/null && break; sleep 0.05; done
    auth="Authorization: Bearer $(curl -sf -X POST "$base/api/v1/auth/login" \
        -H 'Content-Type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | json '["access_token"]')"
    cred=$(curl -sf -X POST "$base/api/v1/credentials" -H "$auth" -H 'Content-Type: application/json' \
        -d '{"name":"bench","type":"ssh_password","username":"root","password":"bench-pw"}' | json '["id"]')
    python3 -c "import json; print(json.dumps([{'name': f'node-{i:04}', 'address': f'10.{i>>16&255}.{i>>8&255}.{i&255}',
        'transport': 'ssh', 'credential_id': '$cred', 'labels': {'rack': f'r{i%8}'}} for i in range($TARGETS)]))" \
        >"$tmp/targets.json"
    ids=$(curl -sf -X POST "$base/api/v1/targets/bulk" -H "$auth" -H 'Content-Type: application/json' \
        --data-binary @"$tmp/targets.json" | json '["items"]')
    target=$(echo "$ids" | python3 -c "import ast,sys; a=ast.literal_eval(sys.stdin.read()); print(a[len(a)//2]['id'])")
    eval "${name}_url=$base"
    eval "${name}_target=$target"
    eval "${name}_jwt=\"\$auth\""
    eval "${name}_api=\"Authorization: Bearer \$(curl -sf -X POST $base/api/v1/tokens -H \"\$auth\" \
        -H 'Content-Type: application/json' -d '{\"name\":\"bench\",\"role\":\"viewer\"}' | json '[\"token\"]')\""
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measure LABEL PID URL [HEADER]: one wrk run; appends "LABEL rps p99 cpu_us_per_req" to results.
measure() {
    local label=$1 pid=$2 url=$3 hdr=${4:-X-Bench: 1} t0 t1 out rps p99 n
    t0=$(cpu_ticks "$pid")
    out=$(wrk -t2 -c64 -d"${DURATION}s" --latency -H "$hdr" "$url")
    t1=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '/ 99%/ {print $2}')
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "bench_authread: $label answered non-2xx:" >&2
        echo "$out" >&2
        exit 1
    fi
    local us
    us=$(awk "BEGIN {printf \"%.1f\", ($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $n}")
    printf '  %-34s %9s req/s  p99 %-8s daemon CPU %s µs/req\n' "$label" "$rps" "$p99" "$us"
    echo "$label|$rps|$p99|$us" >>"$tmp/results"
}

start new "$BUILD/core/opsconductord"
names=(new)
if [ -n "${BASE_DAEMON:-}" ]; then
    start base "$BASE_DAEMON"
    names+=(base)
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "wrk -t2 -c64 -d${DURATION}s, $ROUNDS rounds, $TARGETS targets; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    echo "round $r (load $(cut -d' ' -f1 /proc/loadavg))"
    measure "ceiling (uv_ceiling)" "${pids[0]}" "http://127.0.0.1:$cport/"
    for n in "${names[@]}"; do
        pid=${n}_pid url=${n}_url tgt=${n}_target jwt=${n}_jwt api=${n}_api
        measure "$n GET /health" "${!pid}" "${!url}/health"
        measure "$n GET target, JWT" "${!pid}" "${!url}/api/v1/targets/${!tgt}" "${!jwt}"
        measure "$n GET target, API token" "${!pid}" "${!url}/api/v1/targets/${!tgt}" "${!api}"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "best of $ROUNDS rounds (ratio to the best ceiling; lowest daemon CPU per request):"
awk -F'|' '{ if ($2 > best[$1]) best[$1] = $2; if (!($1 in cpu) || $4 < cpu[$1]) cpu[$1] = $4; order[$1] = NR }
    $1 ~ /^ceiling/ { if ($2 > ceil) ceil = $2 }
    END { n = 0; for (k in order) keys[n++] = k
          for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (order[keys[j]] < order[keys[i]]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
          for (i = 0; i < n; i++) printf "  %-34s %9.0f req/s  %.2fx  %s µs/req\n", keys[i], best[keys[i]], best[keys[i]] / ceil, cpu[keys[i]] }' \
    "$tmp/results"
