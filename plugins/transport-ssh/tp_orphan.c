/* tp_orphan.c - kill_orphan over a POSIX shell: stop what a command of a previous daemon left
 * running, if its process group is still that group (same boot, same leader start time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_orphan.h"

typedef struct orphan {
    const opsc_host_api *api;
    opsc_kill_cb cb;
    void *ud;
    char out[256];
    size_t nout;
} orphan;

/* Group members are killed by pid, those started no earlier than the leader:
 * with the leader gone its group id is free again, but a new group of that
 * id starts later than ours did only if the id came round again within the
 * same boot, and its leader would then be alive with another start time. */
static char *script(const opsc_host_api *api, long pgid, unsigned long long start, const char *boot,
                    unsigned grace_ms)
{
    tp_buf b = {.api = api};
    char text[1536];
    snprintf(text, sizeof(text),
             "[ \"$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)\" = '%s' ] || "
             "{ echo 'killed 0 the machine restarted since'; exit 0; }; "
             "__opsc_same() { [ \"${20}\" = %llu ]; }; "
             "if read -r l </proc/%ld/stat 2>/dev/null; then __opsc_same ${l##*) } || "
             "{ echo 'killed 0 the group id belongs to another process now'; exit 0; }; fi; "
             "__opsc_ours() { [ \"$1\" != Z ] && [ \"$3\" = %ld ] && [ \"${20}\" -ge %llu ]; }; "
             "__opsc_each() { for d in /proc/[0-9]*; do read -r l <\"$d/stat\" 2>/dev/null || "
             "continue; __opsc_ours ${l##*) } && kill -$1 \"${d#/proc/}\" 2>/dev/null && "
             "n=$((n+1)); done; }; "
             "n=0; __opsc_each TERM; t=$n; i=0; while [ $i -lt %u ] && [ $n -gt 0 ]; do "
             "sleep 0.1; i=$((i+1)); n=0; __opsc_each 0; done; n=0; __opsc_each KILL; "
             "echo \"killed $t\"",
             boot, start, pgid, pgid, start, grace_ms / 100);
    tp_buf_adds(&b, text);
    return tp_buf_take(&b);
}

static void on_output(void *ud, int stream, const char *data, size_t len)
{
    orphan *o = ud;
    if (stream != OPSC_STDOUT)
        return;
    size_t room = sizeof(o->out) - 1 - o->nout;
    len = len < room ? len : room;
    memcpy(o->out + o->nout, data, len);
    o->nout += len;
    o->out[o->nout] = '\0';
}

static void on_done(void *ud, const opsc_exec_result *res)
{
    orphan *o = ud;
    int killed = 0;
    const char *msg = NULL;
    char *line = strstr(o->out, "killed ");
    if (res->status < 0 || !line || sscanf(line, "killed %d", &killed) != 1) {
        killed = res->status < 0 ? res->status : OPSC_EREMOTE;
        msg = res->error ? res->error : "the kill script did not answer";
    } else {
        line[strcspn(line, "\n")] = '\0';
        msg = strchr(line + 7, ' ') ? strchr(line + 7, ' ') + 1 : "killed";
    }
    o->cb(o->ud, killed, msg);
    o->api->free(o);
}

int tp_kill_orphan(const tp_exec_ops *ops, opsc_conn *c, const char *handle, unsigned grace_ms,
                   opsc_kill_cb cb, void *ud)
{
    const char *colon = handle ? strchr(handle, ':') : NULL;
    long pgid = 0;
    unsigned long long start = 0;
    char boot[40] = "";
    if (!colon || !cb || sscanf(colon + 1, "%ld:%llu:%39[0-9a-f-]", &pgid, &start, boot) != 3 ||
        pgid < 2 || strlen(boot) < 32)
        return OPSC_EINVAL;
    orphan *o = ops->api->calloc(1, sizeof(*o));
    char *cmd = o ? script(ops->api, pgid, start, boot, grace_ms) : NULL;
    if (!cmd) {
        ops->api->free(o);
        return OPSC_ENOMEM;
    }
    o->api = ops->api;
    o->cb = cb;
    o->ud = ud;
    opsc_exec_req req = {sizeof(req)};
    req.command = cmd;
    req.timeout_ms = 30000;
    static const opsc_exec_cb ecb = {sizeof(ecb), on_output, on_done, NULL, NULL};
    opsc_exec *ex = NULL;
    int rc = ops->exec(c, &req, &ecb, o, &ex);
    ops->api->free(cmd);
    if (rc < 0)
        ops->api->free(o);
    return rc;
}

int tp_process_handle(const char *transport, const tp_marker *m, char *out, size_t n)
{
    unsigned long long start = 0;
    char boot[40] = "";
    if (!m->seen || m->pgid < 2 || sscanf(m->ident, "%llu %39[0-9a-f-]", &start, boot) != 2 ||
        strlen(boot) < 32)
        return -1;
    return snprintf(out, n, "%s:%ld:%llu:%s", transport, m->pgid, start, boot) < (int)n ? 0 : -1;
}
