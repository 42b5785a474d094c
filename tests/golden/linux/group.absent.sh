group='olddevs'
if getent group "$group" >/dev/null 2>&1; then
    groupdel "$group" || exit
    changed=true
else
    changed=false
fi
printf '{"changed":%s}\n' "$changed"
