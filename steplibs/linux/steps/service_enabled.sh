enabled() {
    if [ "$manager" = systemd ]; then
        systemctl is-enabled "$unit" 2>/dev/null | tr -cd 'a-z-'
    else
        echo unknown
    fi
}
