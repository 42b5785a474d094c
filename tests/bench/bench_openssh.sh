#!/bin/bash
# bench_openssh.sh - transport-openssh against transport-ssh, plain `ssh &`, parallel-ssh and
# ansible: `true` on TARGETS targets of one loopback sshd, same run, same server.
#
#   tests/bench/bench_openssh.sh [BUILD_DIR] [TARGETS]      (root; default build, 200)
#
# 1. fresh connections, one per target, all at once: transport-openssh and transport-ssh
#    through tests/transport/oss_bench (the plugin loaded as the daemon loads it), then
#    TARGETS plain `ssh ... true &` from bash, parallel-ssh -p TARGETS and ansible -m raw with
#    forks=TARGETS (each without ControlMaster);
# 2. the same command again on the open connections (transport-openssh: through the masters);
# 3. memory per connection (the plugin's RSS growth, and the PSS of each ssh master) and the
#    daemon-side CPU per target.
# pssh and ansible are installed here when apt has them (not by scripts/deps); without them
# their rows say "skipped". Wall and CPU times come from /usr/bin/time. Not run by the suite.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
N=${2:-200}
FIX=$ROOT/tests/integration/fixtures/sshd.py
WORK=$(mktemp -d /tmp/opsc-bench-openssh-XXXXXX)
chmod 755 "$WORK" # sshd reads authorized_keys in it as the test user
trap '/usr/bin/python3 $FIX stop $WORK/sshd >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf $WORK' EXIT

if ! command -v parallel-ssh >/dev/null || ! command -v ansible >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 || true
    for pkg in pssh ansible; do
        if [ -n "$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
                --no-install-recommends "$pkg" >/dev/null 2>&1 || echo "(could not install $pkg)"
        fi
    done
fi

/usr/bin/python3 "$FIX" start "$WORK/sshd" --option 'MaxStartups 2000' > "$WORK/facts.json"
fact() { /usr/bin/python3 -c "import json,sys; print(json.load(open('$WORK/facts.json'))['$1'])"; }
PORT=$(fact port); USER_=$(fact user); KEY=$WORK/sshd/key_ed25519; FP=$(fact host_ed25519)
SSHOPTS="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ControlMaster=no -o ControlPath=none -o BatchMode=yes"
mkdir -m 700 "$WORK/rt"
T() {
  local log=$1; shift
  /usr/bin/time -o "$WORK/time" -f "wall_s=%e user_s=%U sys_s=%S" "$@" > "$log" 2>&1 || true
  cat "$WORK/time"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== versions: $(ssh -V 2>&1), libssh2 $(dpkg-query -W -f '${Version}' libssh2-1)"

echo "== 1+2+3. 'true' on $N targets: fresh connections, then again on the open ones"
echo "-- transport-openssh"
"$BUILD/tests/transport/oss_bench" "$BUILD/plugins/transport-openssh/transport-openssh.so" \
    "runtime_dir = $WORK/rt;ssh_config = none" "$N" "$PORT" "$USER_" "$KEY" "ssh-ed25519 $FP" true \
    | tee "$WORK/openssh.log"
echo "-- transport-ssh"
"$BUILD/tests/transport/oss_bench" "$BUILD/plugins/transport-ssh/transport-ssh.so" "" \
    "$N" "$PORT" "$USER_" "$KEY" "ssh-ed25519 $FP" true | tee "$WORK/ssh.log"

echo "-- plain 'ssh ... true &' x $N"
cat > "$WORK/plain.sh" <<SH
for i in \$(seq $N); do ssh $SSHOPTS -i $KEY -p $PORT $USER_@127.0.0.1 true & done; wait
SH
T "$WORK/plain.log" bash "$WORK/plain.sh" | tee "$WORK/plain.time"

if command -v parallel-ssh >/dev/null; then
    for i in $(seq 1 "$N"); do echo "$USER_@127.0.0.1:$PORT"; done > "$WORK/pssh-hosts"
    echo "-- parallel-ssh -p $N"
    T "$WORK/pssh.log" parallel-ssh -h "$WORK/pssh-hosts" -p "$N" -t 300 -x "$SSHOPTS -i $KEY" true
    echo "   ok: $(grep -c SUCCESS "$WORK/pssh.log" || true) of $N"
else
    echo "-- parallel-ssh: skipped (pssh not installed and not installable)"
fi

if command -v ansible >/dev/null; then
    {
        echo "[all]"
        for i in $(seq -w 1 "$N"); do echo "t$i ansible_host=127.0.0.1"; done
        echo "[all:vars]"
        echo "ansible_port=$PORT"
        echo "ansible_user=$USER_"
        echo "ansible_ssh_private_key_file=$KEY"
    } > "$WORK/inventory"
    export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_SSH_ARGS="$SSHOPTS" ANSIBLE_LOCAL_TEMP=$WORK/ansible-local
    echo "-- ansible -m raw (forks=$N)"
    T "$WORK/ansible.log" ansible all -i "$WORK/inventory" -f "$N" -m raw -a true -o
    echo "   ok: $(grep -c 'rc=0' "$WORK/ansible.log" || true) of $N"
else
    echo "-- ansible: skipped (not installed and not installable)"
fi

/usr/bin/python3 - "$WORK" <<'PY'
import re, sys
w = sys.argv[1]
def kv(path):
    return dict(re.findall(r"(\w+)=([\d.]+)", open(path).read()))
o, s, p = kv(f"{w}/openssh.log"), kv(f"{w}/ssh.log"), kv(f"{w}/plain.time")
plain = float(p["wall_s"])
print(f"== summary: openssh fresh {o['fresh_s']} s = {float(o['fresh_s']) / plain:.2f}x plain ssh & "
      f"({plain} s); again on open masters {o['again_s']} s; transport-ssh fresh {s['fresh_s']} s, "
      f"again {s['again_s']} s")
print(f"   per target: openssh daemon CPU {o['daemon_cpu_fresh_ms_per_target']} ms fresh, "
      f"{o['daemon_cpu_again_ms_per_target']} ms again; plugin RSS {o['rss_per_conn_kb']} kB + "
      f"ssh master PSS {o['ssh_pss_per_conn_kb']} kB per connection")
PY
