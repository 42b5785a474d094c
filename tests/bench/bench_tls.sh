#!/bin/bash
# bench_tls.sh - HTTPS served by the daemon: keep-alive throughput over TLS as a ratio to plain
# HTTP in the same run, and TLS handshakes per second (full and resumed).
#
# Usage: tests/bench/bench_tls.sh [BUILD_DIR]   (default: build)
# Environment: DURATION (wrk seconds, default 8), CONNS (default 64), THREADS (wrk, default 1),
#              REPEAT (wrk runs per figure, the best is printed; default 3),
#              HS_SECONDS (seconds of each handshake run, default 8)
#
# Makes a throw-away CA and a P-256 server certificate (openssl CLI), starts opsconductord on
# two free loopback ports (one plain, one "tls"), logs in and stores one credential, then:
#   1. wrk on GET /health, plain and TLS, alternating, keep-alive (handshakes only at start);
#   2. wrk on GET /api/v1/credentials/{id} with an access JWT, plain and TLS;
#   3. openssl s_time: new connections per second with a full handshake (-new) and with a
#      resumed session (-reuse), each fetching /health.
# Client and daemon share the machine's cores: the figures are of the pair.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DURATION=${DURATION:-8}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-3}
HS_SECONDS=${HS_SECONDS:-8}
DAEMON=$BUILD/core/opsconductord
for tool in wrk curl python3 openssl; do
    command -v $tool >/dev/null || { echo "bench_tls: $tool is required" >&2; exit 1; }
done
[ -x "$DAEMON" ] || { echo "bench_tls: build $DAEMON first" >&2; exit 1; }

tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; [ -n "$pid" ] && wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(freeport)
tport=$(freeport)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" \
    -out "$tmp/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/srv.key" \
    -out "$tmp/srv.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -out "$tmp/srv.pem" -days 1 -extfile "$tmp/ext" 2>/dev/null
chmod 600 "$tmp/srv.key"
cat >"$tmp/opsc.conf" <<EOF
[server]
listen = 127.0.0.1:$port, 127.0.0.1:$tport tls
tls_cert = $tmp/srv.pem
tls_key = $tmp/srv.key
[store]
data_dir = $tmp/data
[log]
level = warn
EOF

pw="bench-Admin-$RANDOM$RANDOM"
OPSC_BOOTSTRAP_ADMIN_PASSWORD=$pw "$DAEMON" -c "$tmp/opsc.conf" --plugin-dir "$BUILD/plugins" \
    2>"$tmp/daemon.log" &
pid=$!
plain=http://127.0.0.1:$port
tls=https://127.0.0.1:$tport
for _ in $(seq 100); do curl -sf "$plain/ready" >/dev/null && break; sleep 0.05; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
access=$(curl -sf -X POST "$plain/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | json '["access_token"]')
auth="Authorization: Bearer $access"
cred=$(curl -sf -X POST "$plain/api/v1/credentials" -H "$auth" -H 'Content-Type: application/json' \
    -d '{"name":"bench","type":"ssh_password","username":"root","password":"bench-pw"}' | json '["id"]')

rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '/ 99%/ {print $2}'; }
nreq() { awk '/requests in/ {print $1}'; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
# best BASE PATH [HEADER]: of REPEAT wrk runs, "req/s p99" of the fastest and the least daemon
# CPU per request (µs): on a shared machine the throughput also measures the neighbours, the
# CPU per request much less so.
best() {
    local out top="" topp99="" cpu="" t0 c
    for _ in $(seq "$REPEAT"); do
        t0=$(ticks)
        if [ -n "${3:-}" ]; then
            out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "$3" "$1$2")
        else
            out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$1$2")
        fi
        c=$(awk "BEGIN {printf \"%.1f\", ($(ticks) - $t0) * 1e6 / $hz / $(echo "$out" | nreq)}")
        if [ -z "$cpu" ] || awk "BEGIN {exit !($c < $cpu)}"; then cpu=$c; fi
        if [ -z "$top" ] || awk "BEGIN {exit !($(echo "$out" | rps) > $top)}"; then
            top=$(echo "$out" | rps)
            topp99=$(echo "$out" | p99)
        fi
    done
    echo "$top $topp99 $cpu"
}
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS thread(s), $CONNS keep-alive connections, ${DURATION}s, best of $REPEAT; $(openssl version)"
report() { # NAME PATH [HEADER]
    local pr pp99 pc tr tp99 tc
    read -r pr pp99 pc < <(best "$plain" "$2" "${3:-}")
    read -r tr tp99 tc < <(best "$tls" "$2" "${3:-}")
    printf '%-18s plain %8.0f req/s (p99 %s, %s µs CPU/req)  TLS %8.0f req/s (p99 %s, %s µs CPU/req)\n' \
        "$1" "$pr" "$pp99" "$pc" "$tr" "$tp99" "$tc"
    printf '%-18s TLS/plain: throughput %s, daemon CPU per request %s\n' "" "$(ratio "$tr" "$pr")" \
        "$(ratio "$tc" "$pc")"
}
# Memory of idle keep-alive connections that each carried one request, plain then TLS,
# measured first: later the heap holds what the handshakes of the wrk runs freed.
python3 - "$pid" "$port" "$tport" "$tmp/ca.pem" <<'PY'
import socket, ssl, sys, time
pid, port, tport, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss():
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
ctx = ssl.create_default_context(cafile=ca)
for name, p, wrap in (("plain", port, False), ("TLS", tport, True)):
    time.sleep(0.5)
    before, conns = rss(), []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", p))
        if wrap:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.recv(4096)
        conns.append(s)
    time.sleep(0.5)
    print(f"1,000 idle keep-alive connections, {name}: {(rss() - before) / 1000:.1f} kB each")
    for s in conns:
        s.close()
PY
report "GET /health" /health
report "GET credential" "/api/v1/credentials/$cred" "$auth"

# s_time prints "N connections in T real seconds"; -www fetches a page on each connection. The
# daemon's CPU per handshake (its ticks over its handshake counter) says how many one core
# could take, whatever the client and the neighbours cost.
handshakes() { curl -s "$plain/metrics" | awk '/^opsc_tls_handshakes_total / {print $2}'; }
hs() {
    local t0 h0 rate
    t0=$(ticks)
    h0=$(handshakes)
    rate=$(openssl s_time -connect "127.0.0.1:$tport" -CAfile "$tmp/ca.pem" -www /health \
        -time "$HS_SECONDS" "$1" 2>/dev/null | awk '/connections in .* real seconds/ {printf "%.0f", $1 / $4}')
    echo "$rate/s, daemon $(awk "BEGIN {printf \"%.0f\", ($(ticks) - $t0) * 1e6 / $hz / ($(handshakes) - $h0)}") µs CPU each"
}
echo "TLS connections (handshake + GET /health), one s_time client: full $(hs -new); resumed $(hs -reuse)"
curl -s "$plain/metrics" | grep -E '^opsc_tls_(handshakes|resumed|handshake_failures)_total '
echo "daemon RSS after the runs: $(awk '/^VmRSS/ {printf "%.1f MB", $2 / 1024}' /proc/$pid/status)"
