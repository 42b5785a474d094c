unit='nginx.service'
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    manager=systemd
elif command -v service >/dev/null 2>&1; then
    manager=sysv
else
    echo "neither systemd nor the service command is available" >&2
    exit 127
fi
is_running() {
    if [ "$manager" = systemd ]; then
        systemctl is-active --quiet "$unit"
    else
        service "$unit" status >/dev/null 2>&1
    fi
}
state() {
    if [ "$manager" = systemd ]; then
        systemctl is-active "$unit" 2>/dev/null | tr -cd 'a-z-'
    elif is_running; then
        echo active
    else
        echo inactive
    fi
}
if is_running; then
    if [ "$manager" = systemd ]; then
        systemctl stop "$unit" || exit
    else
        service "$unit" stop || exit
    fi
    changed=true
else
    changed=false
fi
printf '{"changed":%s,"state":"%s"}\n' "$changed" "$(state)"
