/* fuzz_config.c - libFuzzer: arbitrary bytes as the daemon's config file (load + bind). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof(path), "/tmp/fuzz_config.XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
    }
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    char err[1024] = "";
    cfg_file *cf = NULL;
    struct config cfg = {0};
    if (cfg_file_load(&cf, path, err, sizeof(err)) == 0)
        config_bind_all(&cfg, cf, err, sizeof(err));
    config_free(&cfg);
    return 0;
}
