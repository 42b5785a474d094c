script=$(mktemp "${TMPDIR:-/tmp}/opsc-script.XXXXXX") || exit
trap 'rm -f "$script"; exit 129' HUP
trap 'rm -f "$script"; exit 130' INT
trap 'rm -f "$script"; exit 143' TERM
printf '%s' {{ params.script }} > "$script" && chmod 700 "$script" || exit
echo 'OPSC_OUTPUT changed=true'
{{ params.interpreter | default('/bin/sh') }} "$script"{% for arg in params.args %} {{ arg }}{% endfor %}

status=$?
rm -f "$script"
exit "$status"
