set -- {{ params.names | default([]) | args }}
case $pm in
    apt)
        apt-get update -q || exit
        if [ $# -eq 0 ]; then
            pending=$(apt-get -s -q upgrade | grep -c '^Inst ')
        else
            pending=$(apt-get -s -q install --only-upgrade "$@" | grep -c '^Inst ')
        fi ;;
    dnf|yum)
        # check-update exits 100 when updates are pending, 0 when none.
        updates=$("$pm" -q check-update "$@")
        rc=$?
        [ "$rc" -eq 100 ] || [ "$rc" -eq 0 ] || exit "$rc"
        pending=$(printf '%s\n' "$updates" | grep -c '^[^ ]*\.[^ ]* ') ;;
    zypper)
        zypper --non-interactive refresh >/dev/null || exit
        pending=$(zypper --non-interactive list-updates "$@" | grep -c '^v ') ;;
esac
if [ "${pending:-0}" -eq 0 ]; then
    printf '{"changed":false,"manager":"%s","updates":0}\n' "$pm"
    exit 0
fi
case $pm in
    apt)
        if [ $# -eq 0 ]; then
            apt-get upgrade -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold || exit
        else
            apt-get install -y -q --only-upgrade -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || exit
        fi ;;
    dnf|yum) "$pm" upgrade -y "$@" || exit ;;
    zypper) zypper --non-interactive update "$@" || exit ;;
esac
printf '{"changed":true,"manager":"%s","updates":%s}\n' "$pm" "$pending"
