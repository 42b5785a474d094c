user='deploy'
field() {
    getent passwd "$user" | cut -d: -f"$1"
}
if getent passwd "$user" >/dev/null 2>&1; then
    set --
    [ "$(id -u "$user")" = 1500 ] || set -- "$@" -u 1500
    [ "$(field 6)" = '/srv/deploy' ] || set -- "$@" -d '/srv/deploy'
    [ "$(field 7)" = '/bin/bash' ] || set -- "$@" -s '/bin/bash'
    [ "$(field 5)" = 'Deploy user, it'\''s automated' ] || set -- "$@" -c 'Deploy user, it'\''s automated'
    missing=
    for group in 'docker' 'adm'; do
        id -nG "$user" | tr ' ' '\n' | grep -qx -e "$group" || missing=${missing:+$missing,}$group
    done
    [ -z "$missing" ] || set -- "$@" -a -G "$missing"
    if [ $# -gt 0 ]; then
        usermod "$@" "$user" || exit
        changed=true
    else
        changed=false
    fi
else
    set --
    set -- "$@" -m
    set -- "$@" -u 1500
    set -- "$@" -G 'docker,adm'
    set -- "$@" -d '/srv/deploy'
    set -- "$@" -s '/bin/bash'
    set -- "$@" -c 'Deploy user, it'\''s automated'
    useradd "$@" "$user" || exit
    changed=true
fi
printf '{"changed":%s,"uid":%s}\n' "$changed" "$(id -u "$user")"
