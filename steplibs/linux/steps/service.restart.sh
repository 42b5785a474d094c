if [ "$manager" = systemd ]; then
    systemctl restart "$unit" || exit
else
    service "$unit" restart || exit
fi
printf '{"changed":true,"state":"%s"}\n' "$(state)"
