user={{ params.name }}
if getent passwd "$user" >/dev/null 2>&1; then
{% if params.remove_home %}
    userdel -r "$user" || exit
{% else %}
    userdel "$user" || exit
{% endif %}
    changed=true
else
    changed=false
fi
printf '{"changed":%s}\n' "$changed"
