awk '
    /^MemTotal:/ { total = $2 }
    /^MemFree:/ { free = $2 }
    /^MemAvailable:/ { avail = $2; have_avail = 1 }
    /^Buffers:/ { buffers = $2 }
    /^Cached:/ { cached = $2 }
    /^SwapTotal:/ { swap_total = $2 }
    /^SwapFree:/ { swap_free = $2 }
    END {
        if (!have_avail) avail = free + buffers + cached
        used = total > 0 ? int((total - avail) * 100 / total + 0.5) : 0
        printf "{\"total_kb\":%.0f,\"available_kb\":%.0f,\"free_kb\":%.0f,\"used_pct\":%.0f,\"swap_total_kb\":%.0f,\"swap_free_kb\":%.0f}\n", total, avail, free, used, swap_total, swap_free
    }' /proc/meminfo
