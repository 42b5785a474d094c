file={{ params.path }}
line={{ params.line | default('') }}
re={{ params.regexp | default('') }}
export OPSC_LINE="$line" OPSC_RE="$re"
rewrite() {
    tmp=$(mktemp "$file.opsc.XXXXXX") || exit
    awk "$1" "$file" > "$tmp" || { rm -f "$tmp"; exit 1; }
    # Copy back rather than rename: keeps the inode, owner, mode and any links.
    cat "$tmp" > "$file" || { rm -f "$tmp"; exit 1; }
    rm -f "$tmp"
}
{% if params.state == 'present' %}
if [ ! -e "$file" ]; then
{% if params.create %}
{% if params.mode %}
    (umask 077 && : > "$file") && chmod {{ params.mode }} "$file" || exit
{% else %}
    : > "$file" || exit
{% endif %}
{% else %}
    echo "$file does not exist" >&2
    exit 1
{% endif %}
fi
if grep -qxF -e "$line" "$file"; then
    changed=false
elif [ -n "$re" ] && grep -qE -e "$re" "$file"; then
    rewrite '{ lines[NR] = $0; if ($0 ~ ENVIRON["OPSC_RE"]) last = NR }
        END { for (i = 1; i <= NR; i++) print (i == last ? ENVIRON["OPSC_LINE"] : lines[i]) }'
    changed=true
else
    if [ -s "$file" ] && [ "$(tail -c 1 "$file" | wc -l)" -eq 0 ]; then
        echo >> "$file" || exit
    fi
    printf '%s\n' "$line" >> "$file" || exit
    changed=true
fi
{% else %}
if [ ! -e "$file" ]; then
    changed=false
elif [ -n "$re" ]; then
    if grep -qE -e "$re" "$file"; then
        rewrite '$0 !~ ENVIRON["OPSC_RE"]'
        changed=true
    else
        changed=false
    fi
elif grep -qxF -e "$line" "$file"; then
    rewrite '$0 != ENVIRON["OPSC_LINE"]'
    changed=true
else
    changed=false
fi
{% endif %}
printf '{"changed":%s}\n' "$changed"
