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
{% if params.now %}
if ! is_running; then
    if [ "$manager" = systemd ]; then systemctl start "$unit"; else service "$unit" start; fi || exit
    changed=true
fi
{% endif %}
printf '{"changed":%s,"enabled":"%s"}\n' "$changed" "$(enabled)"
