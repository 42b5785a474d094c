user='olduser'
if getent passwd "$user" >/dev/null 2>&1; then
    userdel -r "$user" || exit
    changed=true
else
    changed=false
fi
printf '{"changed":%s}\n' "$changed"
