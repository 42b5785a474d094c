#!/bin/bash
# bench_ssh.sh - transport-ssh against ansible, parallel-ssh and scp on one loopback sshd.
#
#   tests/bench/bench_ssh.sh [BUILD_DIR] [TARGETS]      (root; default build, 200)
#
# Starts the sshd fixture (tests/integration/fixtures/sshd.py), then:
#   1. `true` on TARGETS targets at once, one connection per target:
#      transport-ssh (tests/transport/tp_bench), ansible ad-hoc (-m raw and
#      -m command, forks=TARGETS, no ControlMaster so each target gets its
#      own connection), parallel-ssh (-p TARGETS);
#   2. memory per open SSH session (transport-ssh);
#   3. a 1 GiB upload: transport-ssh put_file (with SHA-256 on both ends),
#      scp, and libssh2's SFTP vs exec `cat` (tests/bench/bench_ssh.c).
# Wall and CPU times come from /usr/bin/time (CPU of the client side and
# its children; sshd's own CPU is not counted). Not run by the test suite.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
N=${2:-200}
FIX=$ROOT/tests/integration/fixtures/sshd.py
WORK=$(mktemp -d /tmp/opsc-bench-XXXXXX)
chmod 755 "$WORK" # sshd reads authorized_keys in it as the test user
trap '/usr/bin/python3 $FIX stop $WORK/sshd >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf $WORK' EXIT

/usr/bin/python3 "$FIX" start "$WORK/sshd" --option 'MaxStartups 2000' > "$WORK/facts.json"
fact() { /usr/bin/python3 -c "import json,sys; print(json.load(open('$WORK/facts.json'))['$1'])"; }
PORT=$(fact port); USER_=$(fact user); KEY=$WORK/sshd/key_ed25519; FP=$(fact host_ed25519)
SSHOPTS="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ControlMaster=no -o ControlPath=none"
# T LOG cmd...: run with its output in LOG, print the times.
T() {
  local log=$1; shift
  /usr/bin/time -o "$WORK/time" -f "wall_s=%e user_s=%U sys_s=%S maxrss_kb=%M" "$@" > "$log" 2>&1 || true
  cat "$WORK/time"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== versions: $(ssh -V 2>&1), libssh2 $(dpkg-query -W -f '${Version}' libssh2-1), $(ansible --version | head -1), parallel-ssh $(parallel-ssh --version 2>&1)"

echo "== 1. 'true' on $N targets at once"
echo "-- transport-ssh"
T "$WORK/tp.log" "$BUILD/tests/transport/tp_bench" exec "$N" "$PORT" "$USER_" "$KEY" "ssh-ed25519 $FP" true
cat "$WORK/tp.log"

INV=$WORK/inventory
{
  echo "[all]"
  for i in $(seq -w 1 "$N"); do echo "t$i ansible_host=127.0.0.1"; done
  echo "[all:vars]"
  echo "ansible_port=$PORT"
  echo "ansible_user=$USER_"
  echo "ansible_ssh_private_key_file=$KEY"
  echo "ansible_python_interpreter=/usr/bin/python3"
} > "$INV"
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_SSH_ARGS="$SSHOPTS" ANSIBLE_LOCAL_TEMP=$WORK/ansible-local
echo "-- ansible -m raw (forks=$N)"
T "$WORK/ansible-raw.log" ansible all -i "$INV" -f "$N" -m raw -a true -o
echo "   ok: $(grep -c 'rc=0' "$WORK/ansible-raw.log") of $N"
echo "-- ansible -m command (forks=$N)"
T "$WORK/ansible-cmd.log" ansible all -i "$INV" -f "$N" -m command -a true -o
echo "   ok: $(grep -c 'rc=0' "$WORK/ansible-cmd.log") of $N"

HOSTS=$WORK/pssh-hosts
for i in $(seq 1 "$N"); do echo "$USER_@127.0.0.1:$PORT"; done > "$HOSTS"
echo "-- parallel-ssh -p $N"
T "$WORK/pssh.log" parallel-ssh -h "$HOSTS" -p "$N" -t 120 -x "$SSHOPTS -i $KEY" true
echo "   ok: $(grep -c SUCCESS "$WORK/pssh.log") of $N"

echo "== 2. memory per open SSH session: see rss_per_session_kb above (RSS growth / $N open sessions)"

echo "== 3. 1 GiB upload"
head -c 1073741824 /dev/urandom > "$WORK/1g.bin"
cat "$WORK/1g.bin" > /dev/null
echo "-- transport-ssh put_file (cat on the target, SHA-256 both ends, rename into place)"
T "$WORK/put.log" "$BUILD/tests/transport/tp_bench" put "$PORT" "$USER_" "$KEY" "ssh-ed25519 $FP" "$WORK/1g.bin" /tmp/opsc-bench-1g.remote
cat "$WORK/put.log"
rm -f /tmp/opsc-bench-1g.remote
echo "-- scp (OpenSSH defaults)"
S=$(date +%s.%N)
T "$WORK/scp.log" scp -q $SSHOPTS -i "$KEY" -P "$PORT" "$WORK/1g.bin" "$USER_@127.0.0.1:/tmp/opsc-bench-1g.scp"
echo "   mb_per_s=$(/usr/bin/python3 -c "print(round(1073.741824 / ($(date +%s.%N) - $S), 1))")"
rm -f /tmp/opsc-bench-1g.scp
echo "-- libssh2 SFTP (pipelined writes) vs exec cat, blocking, no checksum"
cc -O2 -o "$WORK/bench_ssh" "$ROOT/tests/bench/bench_ssh.c" $(pkg-config --cflags --libs libssh2)
"$WORK/bench_ssh" "$PORT" "$USER_" "$KEY" "$WORK/1g.bin" /tmp/opsc-bench-1g.sftp
rm -f /tmp/opsc-bench-1g.sftp
