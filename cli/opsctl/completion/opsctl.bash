# bash completion for opsctl. The candidates come from `opsctl __complete`, which knows every
# command and option and reads names (targets, jobs, users...) from the server.
_opsctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n' candidates
    candidates=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
    if [ "${candidates[0]}" = ":file" ]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
    else
        COMPREPLY=("${candidates[@]}")
    fi
}
complete -F _opsctl opsctl
