pm=
for candidate in apt-get dnf yum zypper; do
    if command -v "$candidate" >/dev/null 2>&1; then
        pm=${candidate%-get}
        break
    fi
done
case $pm in
    apt|dnf|yum|zypper) ;;
    *) echo "no supported package manager (apt, dnf, yum, zypper) found" >&2; exit 127 ;;
esac
export DEBIAN_FRONTEND=noninteractive
installed() {
    case $pm in
        apt) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$' ;;
        *) rpm -q --quiet "$1" ;;
    esac
}
json_list() {
    sep=
    printf '['
    for item in "$@"; do
        printf '%s"%s"' "$sep" "$(printf '%s' "$item" | sed 's/[\\"]/\\&/g')"
        sep=,
    done
    printf ']'
}
set -- 'nginx' 'curl' 'libc6:amd64'
count=$#
for name in "$@"; do
    installed "$name" || set -- "$@" "$name"
done
shift "$count"
if [ $# -eq 0 ]; then
    printf '{"changed":false,"manager":"%s","packages":[]}\n' "$pm"
    exit 0
fi
case $pm in
    apt)
        apt-get update -q || exit
        apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || exit ;;
    dnf|yum)
        "$pm" makecache -q || exit
        "$pm" install -y "$@" || exit ;;
    zypper)
        zypper --non-interactive refresh || exit
        zypper --non-interactive install "$@" || exit ;;
esac
printf '{"changed":true,"manager":"%s","packages":%s}\n' "$pm" "$(json_list "$@")"
