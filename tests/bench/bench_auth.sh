#!/bin/bash
# bench_auth.sh - authenticated read throughput, login hashing cost, and logins' effect on reads.
#
# Usage: tests/bench/bench_auth.sh [BUILD_DIR] (default: build)
# Environment: DURATION (wrk seconds, default 10), CONNS (default 64), THREADS (wrk, default 1),
#              REPEAT (wrk runs per figure, the best is printed; default 3)
#
# Starts opsconductord on a free loopback port with a temporary data directory,
# logs in, stores one credential, then measures with wrk (Debian package wrk):
#   1. GET /api/v1/credentials/{id} with an access JWT, and with an API token;
#   2. the time of one login (the yescrypt hash on a worker thread);
#   3. the same GET while a client logs in back to back (one hash at a time).
# Prints one line per figure. The daemon is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-3}
DAEMON=$BUILD/core/opsconductord
for tool in wrk curl python3; do
    command -v $tool >/dev/null || { echo "bench_auth: $tool is required" >&2; exit 1; }
done
[ -x "$DAEMON" ] || { echo "bench_auth: build $DAEMON first" >&2; exit 1; }

tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
pw="bench-Admin-$RANDOM$RANDOM"
OPSC_BOOTSTRAP_ADMIN_PASSWORD=$pw "$DAEMON" --listen 127.0.0.1:$port --data-dir "$tmp/data" \
    --plugin-dir "$BUILD/plugins" --log-level warn 2>"$tmp/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -sf "$base/ready" >/dev/null && break; sleep 0.05; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() { curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$pw\"}"; }
access=$(login | json '["access_token"]')
auth="Authorization: Bearer $access"
cred=$(curl -sf -X POST "$base/api/v1/credentials" -H "$auth" -H 'Content-Type: application/json' \
    -d '{"name":"bench","type":"ssh_password","username":"root","password":"bench-pw"}' | json '["id"]')
apitok=$(curl -sf -X POST "$base/api/v1/tokens" -H "$auth" -H 'Content-Type: application/json' \
    -d '{"name":"bench","role":"viewer"}' | json '["token"]')
url="$base/api/v1/credentials/$cred"

rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '/ 99%/ {print $2}'; }
# The best of REPEAT runs: on a shared machine the others measure the neighbours.
run_wrk() {
    local best="" out
    for _ in $(seq "$REPEAT"); do
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "$1" "$url")
        if [ -z "$best" ] || awk "BEGIN {exit !($(echo "$out" | rps) > $(echo "$best" | rps))}"; then
            best=$out
        fi
    done
    echo "$best"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS thread(s), $CONNS connections, ${DURATION}s, best of $REPEAT"
out=$(run_wrk "$auth")
echo "GET one credential, access JWT:  $(echo "$out" | rps) req/s (p99 $(echo "$out" | p99))"
out=$(run_wrk "Authorization: Bearer $apitok")
echo "GET one credential, API token:   $(echo "$out" | rps) req/s (p99 $(echo "$out" | p99))"

times=()
for _ in $(seq 10); do
    times+=("$(curl -s -o /dev/null -w '%{time_total}' -X POST "$base/api/v1/auth/login" \
        -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$pw\"}")")
done
echo "login (yescrypt on a worker), 10 in a row: $(printf '%s\n' "${times[@]}" | sort -n | \
    awk '{a[NR]=$1} END {printf "min %.0f ms, median %.0f ms, max %.0f ms", a[1]*1000, a[int((NR+1)/2)]*1000, a[NR]*1000}')"

( while :; do login >/dev/null || true; done ) &
loginpid=$!
sleep 0.5
out=$(run_wrk "$auth")
kill $loginpid 2>/dev/null; wait $loginpid 2>/dev/null || true
echo "GET one credential while logging in back to back: $(echo "$out" | rps) req/s (p99 $(echo "$out" | p99))"
