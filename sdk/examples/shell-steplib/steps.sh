#!/bin/sh
# steps.sh - the imperative step of the example shell library: disk_usage (a command on the
# target, its output parsed, a decision, outputs).
set -eu
. "$OPSC_BUNDLE_DIR/opsc-step.sh"
opsc_start

disk_usage() {
    path=$(opsc_param path)
    limit=$(opsc_param warn_percent)
    opsc_exec "df -P $(quote "$path") | tail -n 1"
    [ "$OPSC_EXIT_CODE" = 0 ] || opsc_fail "df $path exited with $OPSC_EXIT_CODE"
    line=$(opsc_stdout)
    used=$(printf '%s\n' "$line" | awk '{ sub(/%/, "", $5); print $5 }')
    if [ "$used" -ge "$limit" ]; then
        opsc_log warn "$path is $used% full (warning at $limit%)"
    else
        opsc_log info "$path is $used% full"
    fi
    opsc_set_output used_percent "$used"
    opsc_set_output mount "$(opsc_json_string "$(printf '%s\n' "$line" | awk '{ print $6 }')")"
    opsc_set_output changed false
}

# A word for the target's shell, whatever $1 holds.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

case "$OPSC_STEP" in
disk_usage) disk_usage ;;
*) opsc_fail "steps.sh has no step $OPSC_STEP" ;;
esac
opsc_succeed
