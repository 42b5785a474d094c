set -- {{ params.names | args }}
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
{% if params.purge %}
    apt) apt-get purge -y -q "$@" || exit ;;
{% else %}
    apt) apt-get remove -y -q "$@" || exit ;;
{% endif %}
    dnf|yum) "$pm" remove -y "$@" || exit ;;
    zypper) zypper --non-interactive remove "$@" || exit ;;
esac
printf '{"changed":true,"manager":"%s","packages":%s}\n' "$pm" "$(json_list "$@")"
