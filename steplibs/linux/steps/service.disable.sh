if [ "$manager" = systemd ]; then
    if systemctl is-enabled --quiet "$unit"; then
        systemctl disable "$unit" || exit
        changed=true
    else
        changed=false
    fi
elif command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d "$unit" disable || exit
    changed=true
else
    chkconfig "$unit" off || exit
    changed=true
fi
{% if params.now %}
if is_running; then
    if [ "$manager" = systemd ]; then systemctl stop "$unit"; else service "$unit" stop; fi || exit
    changed=true
fi
{% endif %}
printf '{"changed":%s,"enabled":"%s"}\n' "$changed" "$(enabled)"
