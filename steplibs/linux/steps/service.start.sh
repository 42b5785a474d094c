if is_running; then
    changed=false
else
    if [ "$manager" = systemd ]; then
        systemctl start "$unit" || exit
    else
        service "$unit" start || exit
    fi
    changed=true
fi
printf '{"changed":%s,"state":"%s"}\n' "$changed" "$(state)"
