/* fuzz_bundle.c - libFuzzer target: a step library bundle as an uploader may send it
 * (core/plugins/bundle_tar.c, bundle_manifest.c). The input is a tar stream (or, when it starts
 * like one, a gzip stream). Checked: every entry lies inside the archive with a clean relative
 * name (no "..", no absolute path, nothing but printable ASCII); a manifest that parses gives a
 * name, a version and step types whose executables are files of the archive. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_internal.h"

static void check_entry(const tar_archive *a, const tar_entry *e)
{
    if (!e->path[0] || (!e->dir && (e->data < a->raw || e->data + e->len > a->raw + a->rawlen)))
        __builtin_trap();
    for (const char *p = e->path;;) { /* each component: not empty, not "." or ".." */
        size_t c = strcspn(p, "/");
        if (c == 0 || (c == 1 && p[0] == '.') || (c == 2 && p[0] == '.' && p[1] == '.'))
            __builtin_trap();
        for (size_t i = 0; i < c; i++)
            if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e || p[i] == '\\')
                __builtin_trap();
        if (!p[c])
            break;
        p += c + 1;
    }
}

static int file_of(void *ud, const char *path, char **text, size_t *len, bool *exec)
{
    const tar_entry *e = tar_find(ud, path);
    if (!e || e->dir)
        return -1;
    *exec = e->exec;
    if (text) {
        *text = malloc(e->len + 1);
        memcpy(*text, e->data, e->len);
        (*text)[e->len] = '\0';
        *len = e->len;
    }
    return 0;
}

static void check_manifest(tar_archive *a)
{
    const tar_entry *m = tar_find(a, BUNDLE_MANIFEST);
    bundle *b = NULL;
    char err[512];
    if (!m || m->dir ||
        bundle_manifest_parse((const char *)m->data, m->len, file_of, a, &b, err, sizeof(err)) < 0)
        return;
    if (!b->lib.name || !b->lib.version)
        __builtin_trap();
    for (size_t i = 0; i < b->nsteps; i++)
        if (b->steps[i].exec && !tar_find(a, b->steps[i].exec))
            __builtin_trap();
    bundle_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    tar_archive a = {0};
    if (bundle_is_gzip(data, size)) {
        if (tar_read(data, size, 1u << 20, &a, err, sizeof(err)) < 0)
            return 0;
    } else {
        a.raw = malloc(size ? size : 1);
        memcpy(a.raw, data, size);
        a.rawlen = size;
        if (tar_index(&a, err, sizeof(err)) < 0)
            return 0;
    }
    for (size_t i = 0; i < a.n; i++)
        check_entry(&a, &a.entries[i]);
    check_manifest(&a);
    tar_free(&a);
    return 0;
}
