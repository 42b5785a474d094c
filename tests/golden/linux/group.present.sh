group='deployers'
if getent group "$group" >/dev/null 2>&1; then
    if [ "$(getent group "$group" | cut -d: -f3)" != 1600 ]; then
        groupmod -g 1600 "$group" || exit
        changed=true
    else
        changed=false
    fi
else
    set --
    set -- "$@" -g 1600
    groupadd "$@" "$group" || exit
    changed=true
fi
printf '{"changed":%s,"gid":%s}\n' "$changed" "$(getent group "$group" | cut -d: -f3)"
