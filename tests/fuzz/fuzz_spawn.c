/* fuzz_spawn.c - libFuzzer target: the packets opsc-spawner, the privileged helper, decodes from
 * the daemon (spawner/spawn_proto.c). Checked: nothing reads outside the packet; a decoded
 * SP_SPAWN walks to argc + envc + 1 strings inside it, argv[0] absolute, every env entry
 * NAME=value; encoding what was decoded gives a packet that decodes the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spawn_proto.h"

static unsigned char again[SP_MAX_PACKET];

static void check_spawn(const sp_msg *m, const uint8_t *data, size_t size)
{
    const char **vec = malloc((m->argc + m->envc + 2) * sizeof(*vec));
    if (!vec)
        return;
    sp_spawn_strings(m, vec);
    for (uint32_t i = 0; i < m->argc + m->envc + 1; i++)
        if ((const uint8_t *)vec[i] < data || (const uint8_t *)vec[i] >= data + size)
            __builtin_trap();
    if (vec[0][0] != '/')
        __builtin_trap();
    for (uint32_t i = m->argc; i < m->argc + m->envc; i++)
        if (!strchr(vec[i], '='))
            __builtin_trap();
    const char *cwd = vec[m->argc + m->envc];
    vec[m->argc + m->envc] = NULL;
    const char **env = vec + m->argc;
    char **argv = malloc((m->argc + 1) * sizeof(*argv));
    if (argv) {
        memcpy(argv, vec, m->argc * sizeof(*argv));
        argv[m->argc] = NULL;
        size_t n =
            sp_encode_spawn(again, sizeof(again), m->id, (const char *const *)argv, env, cwd);
        sp_msg m2;
        if (n == 0 || sp_decode(again, n, &m2) != 0 || m2.argc != m->argc || m2.envc != m->envc)
            __builtin_trap();
        free(argv);
    }
    free(vec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_msg m;
    if (sp_decode(data, size, &m) != 0)
        return 0;
    if (m.type == SP_SPAWN)
        check_spawn(&m, data, size);
    return 0;
}
