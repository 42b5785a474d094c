read -r up _ </proc/uptime
echo "OPSC_OUTPUT seconds=${up%.*}"
