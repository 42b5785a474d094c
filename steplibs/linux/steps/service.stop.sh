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
