if is_running; then running=true; else running=false; fi
if [ "$manager" = systemd ]; then
    enabled=$(systemctl is-enabled "$unit" 2>/dev/null | tr -cd 'a-z-')
else
    enabled=unknown
fi
printf '{"state":"%s","enabled":"%s","running":%s}\n' "$(state)" "${enabled:-unknown}" "$running"
