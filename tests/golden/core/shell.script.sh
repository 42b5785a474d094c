if [ ! -e '/tmp/todo.flag' ]; then
    echo 'OPSC_OUTPUT changed=false'
    exit 0
fi
export 'PYTHONUNBUFFERED=1'
script=$(mktemp "${TMPDIR:-/tmp}/opsc-script.XXXXXX") || exit
trap 'rm -f "$script"; exit 129' HUP
trap 'rm -f "$script"; exit 130' INT
trap 'rm -f "$script"; exit 143' TERM
printf '%s' '#!/usr/bin/env python3
import sys
print("args:", sys.argv[1:])
print("it'\''s fine; $(true) `true`")
' > "$script" && chmod 700 "$script" || exit
echo 'OPSC_OUTPUT changed=true'
'/usr/bin/python3' "$script" '--name' 'web 1'
status=$?
rm -f "$script"
exit "$status"
