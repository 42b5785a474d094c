user={{ params.name }}
field() {
    getent passwd "$user" | cut -d: -f"$1"
}
if getent passwd "$user" >/dev/null 2>&1; then
    set --
{% if params.uid is defined %}
    [ "$(id -u "$user")" = {{ params.uid }} ] || set -- "$@" -u {{ params.uid }}
{% endif %}
{% if params.group %}
    [ "$(id -gn "$user")" = {{ params.group }} ] || set -- "$@" -g {{ params.group }}
{% endif %}
{% if params.home %}
    [ "$(field 6)" = {{ params.home }} ] || set -- "$@" -d {{ params.home }}
{% endif %}
{% if params.shell %}
    [ "$(field 7)" = {{ params.shell }} ] || set -- "$@" -s {{ params.shell }}
{% endif %}
{% if params.comment is defined %}
    [ "$(field 5)" = {{ params.comment }} ] || set -- "$@" -c {{ params.comment }}
{% endif %}
{% if params.groups %}
    missing=
    for group in {{ params.groups | args }}; do
        id -nG "$user" | tr ' ' '\n' | grep -qx -e "$group" || missing=${missing:+$missing,}$group
    done
    [ -z "$missing" ] || set -- "$@" -a -G "$missing"
{% endif %}
    if [ $# -gt 0 ]; then
        usermod "$@" "$user" || exit
        changed=true
    else
        changed=false
    fi
else
{% if params.system %}
    set -- -r
{% else %}
    set --
{% endif %}
{% if params.create_home %}
    set -- "$@" -m
{% else %}
    set -- "$@" -M
{% endif %}
{% if params.uid is defined %}
    set -- "$@" -u {{ params.uid }}
{% endif %}
{% if params.group %}
    set -- "$@" -g {{ params.group }}
{% endif %}
{% if params.groups %}
    set -- "$@" -G {{ params.groups | join(',') }}
{% endif %}
{% if params.home %}
    set -- "$@" -d {{ params.home }}
{% endif %}
{% if params.shell %}
    set -- "$@" -s {{ params.shell }}
{% endif %}
{% if params.comment is defined %}
    set -- "$@" -c {{ params.comment }}
{% endif %}
    useradd "$@" "$user" || exit
    changed=true
fi
printf '{"changed":%s,"uid":%s}\n' "$changed" "$(id -u "$user")"
