unit='nginx'
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
enabled() {
    if [ "$manager" = systemd ]; then
        systemctl is-enabled "$unit" 2>/dev/null | tr -cd 'a-z-'
    else
        echo unknown
    fi
}
if [ "$manager" = systemd ]; then
    if systemctl is-enabled --quiet "$unit"; then
        changed=false
    else
        systemctl enable "$unit" || exit
        changed=true
    fi
elif command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d "$unit" defaults >/dev/null && update-rc.d "$unit" enable || exit
    changed=true
else
    chkconfig "$unit" on || exit
    changed=true
fi
if ! is_running; then
    if [ "$manager" = systemd ]; then systemctl start "$unit"; else service "$unit" start; fi || exit
    changed=true
fi
printf '{"changed":%s,"enabled":"%s"}\n' "$changed" "$(enabled)"
