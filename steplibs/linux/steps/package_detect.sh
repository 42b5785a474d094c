{% if params.manager %}
pm={{ params.manager }}
{% elif target.facts.pkg_manager is defined %}
pm={{ target.facts.pkg_manager }}
{% else %}
pm=
for candidate in apt-get dnf yum zypper; do
    if command -v "$candidate" >/dev/null 2>&1; then
        pm=${candidate%-get}
        break
    fi
done
{% endif %}
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
