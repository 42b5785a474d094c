group={{ params.name }}
if getent group "$group" >/dev/null 2>&1; then
{% if params.gid is defined %}
    if [ "$(getent group "$group" | cut -d: -f3)" != {{ params.gid }} ]; then
        groupmod -g {{ params.gid }} "$group" || exit
        changed=true
    else
        changed=false
    fi
{% else %}
    changed=false
{% endif %}
else
    set --
{% if params.system %}
    set -- -r
{% endif %}
{% if params.gid is defined %}
    set -- "$@" -g {{ params.gid }}
{% endif %}
    groupadd "$@" "$group" || exit
    changed=true
fi
printf '{"changed":%s,"gid":%s}\n' "$changed" "$(getent group "$group" | cut -d: -f3)"
