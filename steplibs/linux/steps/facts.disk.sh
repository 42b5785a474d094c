{% if params.path %}
set -- {{ params.path }}
# A path the user named is reported whatever its file system (/ is an overlay in containers).
virtual=true
{% else %}
set --
virtual={{ params.include_virtual }}
{% endif %}
df -P -k "$@" | awk -v virtual="$virtual" '
    function esc(s,    out, i, c) {
        out = ""
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (c == "\\" || c == "\"") out = out "\\" c
            else if (c == "\t") out = out "\\t"
            else out = out c
        }
        return out
    }
    NR == 1 { next }
    virtual != "true" && $1 ~ /^(tmpfs|devtmpfs|udev|overlay|shm|none|proc|sysfs|cgroup2?)$/ { next }
    {
        mount = $6
        for (i = 7; i <= NF; i++) mount = mount " " $i
        pct = $5; sub(/%/, "", pct)
        out = out sep sprintf("{\"device\":\"%s\",\"mount\":\"%s\",\"size_kb\":%.0f,\"used_kb\":%.0f,\"avail_kb\":%.0f,\"used_pct\":%.0f}", esc($1), esc(mount), $2, $3, $4, pct)
        sep = ","
    }
    END { printf "{\"filesystems\":[%s]}\n", out }'
