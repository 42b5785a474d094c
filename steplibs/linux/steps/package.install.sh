set -- {{ params.names | args }}
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
{% if params.update_cache %}
        apt-get update -q || exit
{% endif %}
        apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || exit ;;
    dnf|yum)
{% if params.update_cache %}
        "$pm" makecache -q || exit
{% endif %}
        "$pm" install -y "$@" || exit ;;
    zypper)
{% if params.update_cache %}
        zypper --non-interactive refresh || exit
{% endif %}
        zypper --non-interactive install "$@" || exit ;;
esac
printf '{"changed":true,"manager":"%s","packages":%s}\n' "$pm" "$(json_list "$@")"
