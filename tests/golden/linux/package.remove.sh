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
set -- 'telnet'
count=$#
for name in "$@"; do
    if installed "$name"; then set -- "$@" "$name"; fi
done
shift "$count"
if [ $# -eq 0 ]; then
    printf '{"changed":false,"manager":"%s","packages":[]}\n' "$pm"
    exit 0
fi
case $pm in
    apt) apt-get purge -y -q "$@" || exit ;;
    dnf|yum) "$pm" remove -y "$@" || exit ;;
    zypper) zypper --non-interactive remove "$@" || exit ;;
esac
printf '{"changed":true,"manager":"%s","packages":%s}\n' "$pm" "$(json_list "$@")"
