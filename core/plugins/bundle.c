/* bundle.c - a bundle from its archive to the plugin host: checked, unpacked, registered as a
 * step library whose imperative steps run out of process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "bundle_internal.h"
#include "plugin_internal.h"

/* bundle_file_fn over the archive's entries. */
static int archive_file(void *ud, const char *path, char **text, size_t *len, bool *exec)
{
    const tar_entry *e = tar_find(ud, path);
    if (!e || e->dir)
        return OPSC_ENOENT;
    *exec = e->exec;
    if (!text)
        return 0;
    if (!(*text = malloc(e->len + 1)))
        return OPSC_ENOMEM;
    memcpy(*text, e->data, e->len);
    (*text)[e->len] = '\0';
    *len = e->len;
    return 0;
}

int bundle_open(const void *gz, size_t len, const char *dir, bundle **out, char *err, size_t errlen)
{
    tar_archive a;
    *out = NULL;
    int rc = tar_read(gz, len, BUNDLE_MAX_BYTES, &a, err, errlen);
    if (rc < 0)
        return rc;
    const tar_entry *m = tar_find(&a, BUNDLE_MANIFEST);
    bundle *b = NULL;
    if (!m || m->dir) {
        snprintf(err, errlen, "the bundle has no " BUNDLE_MANIFEST " at its top");
        rc = OPSC_EINVAL;
    } else {
        rc =
            bundle_manifest_parse((const char *)m->data, m->len, archive_file, &a, &b, err, errlen);
    }
    if (rc == 0 && dir && !(b->dir = strdup(dir)))
        rc = OPSC_ENOMEM;
    if (rc == 0 && dir)
        rc = tar_extract(&a, dir, err, errlen);
    tar_free(&a);
    if (rc < 0) {
        bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

const char *bundle_name(const bundle *b)
{
    return b->lib.name;
}

const char *bundle_version(const bundle *b)
{
    return b->lib.version;
}

int bundle_set_dir(bundle *b, const char *dir)
{
    char *copy = strdup(dir);
    if (!copy)
        return OPSC_ENOMEM;
    free(b->dir);
    b->dir = copy;
    return 0;
}

/* The plugin's init(): the plugin host put the bundle in *state. */
static int bundle_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg;
    bundle *b = *state;
    return api->register_steplib(&b->lib, b);
}

static void bundle_shutdown(void *state)
{
    bundle_free(state);
}

int bundle_load(plugin_host *h, const char *path, bundle *b, const plugin_load_opts *opts,
                plugin **out, char *err, size_t errlen)
{
    b->plugin.init = bundle_init;
    b->plugin.shutdown = bundle_shutdown;
    plugin *p = NULL;
    int rc = plugin_host_load_desc(h, path, &b->plugin, b, opts, &p, err, errlen);
    if (rc < 0) {
        /* Refused, so never shut down: the bundle is still ours. A refusal
         * kept in the list only shows its copied name, version and reason. */
        for (size_t i = 0; i < h->nplugins; i++)
            if (h->plugins[i]->pstate == b)
                h->plugins[i]->pstate = NULL;
        bundle_free(b);
    }
    if (out)
        *out = p;
    return rc;
}

bool bundle_is(const plugin *p)
{
    return p && p->bundle;
}
