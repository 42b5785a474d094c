used=$(df -P {{ params.path }} | awk 'NR == 2 { sub("%", "", $5); print $5 }')
free=$((100 - used))
ok=true
[ "$free" -ge {{ params.min_free_percent }} ] || ok=false
printf '{"free_percent": %d, "ok": %s}\n' "$free" "$ok"
[ "$ok" = true ]
