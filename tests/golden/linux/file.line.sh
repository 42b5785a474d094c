file='/etc/ssh/sshd_config'
line='PermitRootLogin no'
re='^#?PermitRootLogin'
export OPSC_LINE="$line" OPSC_RE="$re"
rewrite() {
    tmp=$(mktemp "$file.opsc.XXXXXX") || exit
    awk "$1" "$file" > "$tmp" || { rm -f "$tmp"; exit 1; }
    # Copy back rather than rename: keeps the inode, owner, mode and any links.
    cat "$tmp" > "$file" || { rm -f "$tmp"; exit 1; }
    rm -f "$tmp"
}
if [ ! -e "$file" ]; then
    : > "$file" || exit
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
printf '{"changed":%s}\n' "$changed"
