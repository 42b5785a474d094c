# opsc-step.sh - the helper a POSIX shell step library ships in its bundle: the OpsConductor step
# protocol (JSON lines on stdin/stdout, protocol 1) as shell functions. Needs only sh, awk, sed
# (what a Debian minbase has); no jq.
#
#   . "$OPSC_BUNDLE_DIR/opsc-step.sh"
#   opsc_start                         # reads the run message: $OPSC_STEP is the step's name
#   name=$(opsc_param name)            # params.name (a string as is; other values as JSON)
#   opsc_exec "uname -s"               # a command on the target: $OPSC_EXIT_CODE, and
#   out=$(opsc_stdout)                 # its stdout
#   opsc_log info "the target runs $out"
#   opsc_set_output greeting "$(opsc_json_string "hello $name")"   # the value is JSON
#   opsc_succeed                       # or: opsc_fail "why"
#
# The protocol owns stdout: opsc_start moves the script's own stdout to stderr (the run log, as
# warnings), so echo cannot break it. A request the daemon refuses fails the step (the function
# calls opsc_fail and exits) unless OPSC_SOFT=1, where it returns 1 with $OPSC_ERROR set.
# Call the functions that set variables (opsc_exec, opsc_request) directly, never inside $(...):
# a command substitution is a subshell, and what it sets is lost with it. Those that print a
# value (opsc_param, opsc_target, opsc_secret, opsc_stdout, opsc_json_*) are made for $(...).

OPSC_ID=0

# The value at a dot path ("params.name", "error.message") of the JSON document on stdin:
# strings unescaped, anything else as JSON text. Byte semantics (LC_ALL=C) whatever the locale.
opsc_json_get() {
    LC_ALL=C awk -v want="$1" '
    function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1))) pos++ }
    function utf8(c) {
        if (c < 128) return sprintf("%c", c)
        if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
        return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
    }
    function hex(h,   i, v) {
        v = 0
        for (i = 1; i <= 4; i++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
        return v
    }
    function str(   out, c) {
        pos++
        out = ""
        while (pos <= n) {
            c = substr(s, pos, 1)
            if (c == "\"") { pos++; return out }
            if (c == "\\") {
                c = substr(s, pos + 1, 1)
                pos += 2
                if (c == "n") out = out "\n"
                else if (c == "t") out = out "\t"
                else if (c == "r") out = out "\r"
                else if (c == "b") out = out "\b"
                else if (c == "f") out = out "\f"
                else if (c == "u") { out = out utf8(hex(substr(s, pos, 4))); pos += 4 }
                else out = out c
            } else {
                match(substr(s, pos), /^[^"\\]+/)
                out = out substr(s, pos, RLENGTH)
                pos += RLENGTH
            }
        }
        return out
    }
    function value(path,   c, start, k, i, v) {
        ws()
        c = substr(s, pos, 1)
        start = pos
        if (c == "{" || c == "[") {
            pos++
            i = 0
            ws()
            if (substr(s, pos, 1) == (c == "{" ? "}" : "]")) pos++
            else while (pos <= n) {
                ws()
                if (c == "{") { k = str(); ws(); pos++ } else k = i++
                value(path == "" ? k : path "." k)
                ws()
                if (substr(s, pos++, 1) != ",") break
            }
            if (path == want) { printf "%s", substr(s, start, pos - start); found = 1 }
        } else if (c == "\"") {
            v = str()
            if (path == want) { printf "%s", v; found = 1 }
        } else {
            match(substr(s, pos), /^[-+0-9.eEa-z]+/)
            if (path == want) { printf "%s", substr(s, pos, RLENGTH); found = 1 }
            pos += RLENGTH
        }
    }
    { s = s $0 }
    END { n = length(s); pos = 1; value(""); exit found ? 0 : 1 }'
}

# A JSON string literal of $1.
opsc_json_string() {
    printf '%s' "$1" | LC_ALL=C sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | LC_ALL=C awk '
    { gsub(/\t/, "\\t"); gsub(/\r/, "\\r"); body = body (NR > 1 ? "\\n" : "") $0 }
    END { printf "\"%s\"", body }'
}

opsc_start() {
    exec 4>&1 1>&2 # the protocol keeps fd 4; what the script prints goes to the run log
    IFS= read -r OPSC_RUN || exit 3
    OPSC_STEP=$(printf '%s' "$OPSC_RUN" | opsc_json_get step)
    OPSC_OUT_FILE=${TMPDIR:-/tmp}/.opsc-stdout
}

opsc_param() { printf '%s' "$OPSC_RUN" | opsc_json_get "params.$1"; }
opsc_target() { printf '%s' "$OPSC_RUN" | opsc_json_get "target.$1"; }

# Names the helper uses for itself start with _opsc_ (POSIX sh has no local variables).
# Send a request ($1 type, $2 the rest of the object's members as JSON, may be empty) and wait for
# its answer: $OPSC_VALUE (the value's text), exec's stdout in $OPSC_OUT_FILE. 0, or 1 when the
# daemon refused it ($OPSC_ERROR).
opsc_request() {
    OPSC_ID=$((OPSC_ID + 1))
    printf '{"type":"%s","id":%d%s}\n' "$1" "$OPSC_ID" "${2:+,$2}" >&4
    : >"$OPSC_OUT_FILE"
    while IFS= read -r _opsc_line; do
        _opsc_type=$(printf '%s' "$_opsc_line" | opsc_json_get type)
        if [ "$_opsc_type" = output ]; then
            [ "$(printf '%s' "$_opsc_line" | opsc_json_get stream)" = stdout ] &&
                printf '%s' "$_opsc_line" | opsc_json_get data >>"$OPSC_OUT_FILE"
            continue
        fi
        [ "$_opsc_type" = response ] || continue
        if [ "$(printf '%s' "$_opsc_line" | opsc_json_get ok)" = true ]; then
            OPSC_VALUE=$(printf '%s' "$_opsc_line" | opsc_json_get value)
            return 0
        fi
        OPSC_ERROR="$1: $(printf '%s' "$_opsc_line" | opsc_json_get error.message)"
        [ "${OPSC_SOFT:-0}" = 1 ] && return 1
        opsc_fail "$OPSC_ERROR"
    done
    exit 3 # the daemon is gone
}

opsc_log() { opsc_request log "\"level\":\"$1\",\"message\":$(opsc_json_string "$2")"; }

# Run $1 on the target: $OPSC_EXIT_CODE, and its stdout from opsc_stdout.
opsc_exec() {
    opsc_request exec "\"command\":$(opsc_json_string "$1")" || return 1
    OPSC_EXIT_CODE=$(printf '%s' "$OPSC_VALUE" | opsc_json_get exit_code)
}
opsc_stdout() { cat "$OPSC_OUT_FILE"; }

opsc_put_file() {
    opsc_request put_file "\"local\":$(opsc_json_string "$1"),\"remote\":$(opsc_json_string "$2"),\"mode\":${3:-420}"
}
opsc_get_file() {
    opsc_request get_file "\"remote\":$(opsc_json_string "$1"),\"local\":$(opsc_json_string "$2")"
}
# $2 is JSON: a number, true/false, or a string from opsc_json_string.
opsc_set_output() { opsc_request set_output "\"key\":$(opsc_json_string "$1"),\"value\":$2"; }
opsc_secret() { opsc_request secret "\"name\":$(opsc_json_string "$1")" && printf '%s' "$OPSC_VALUE"; }
opsc_cancelled() { opsc_request cancelled "" && [ "$OPSC_VALUE" = true ]; }

opsc_succeed() {
    printf '{"type":"result","ok":true}\n' >&4
    exit 0
}
opsc_fail() {
    printf '{"type":"result","ok":false,"message":%s}\n' "$(opsc_json_string "$1")" >&4
    exit 0
}
