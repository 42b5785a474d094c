/* install_internal.h - what install.c (directory, records, deletes) and install_upload.c share. */
#ifndef OPSC_INSTALL_INTERNAL_H
#define OPSC_INSTALL_INTERNAL_H

#include <openssl/evp.h>

#include "b64.h"
#include "bundle.h"
#include "install.h"
#include "trust.h"

#define INSTALL_INCOMING ".incoming-" /* uploads being checked: hidden, removed at start */
#define INSTALL_FILE_MAX ((size_t)1 << 30)

/* A loaded step library plugin: bundled, or installed with its record. */
typedef struct entry {
    plugin *p;
    char sha256[65];
    bool bundled;
    json_t *record; /* owned; NULL for bundled */
} entry;

struct plugin_install {
    uv_loop_t *loop;
    plugin_host *h;
    store *st;
    trust *keys;
    char *dir;
    int require; /* enum install_sig_policy */
    entry *entries;
    size_t n, cap;
    json_t *refused;  /* installed files not loaded at start */
    unsigned pending; /* uploads between install_upload() and their answer */
    bool closing;
};

/* What an uploaded .so says about itself (install_elf.c). */
typedef struct install_elf {
    char name[64], version[32];
    unsigned abi_major, abi_minor;
    bool has_note;
} install_elf;
/* Check `data` as a plugin for this host without loading it: a 64-bit
 * shared object for this machine, its plugin note, an ABI this host loads,
 * the entry symbol exported. 0, OPSC_EINVAL or OPSC_EABI with why in err. */
int install_elf_check(const void *data, size_t len, install_elf *out, char *err, size_t errlen);

void install_sha256_hex(const void *data, size_t len, char out[65]);
void install_fsync_dir(const char *dir);
/* `manifest`: what the step host read of it (isolation.h), or NULL. */
int install_load(plugin_install *in, const char *path, bool forget, const char *manifest,
                 size_t manifest_len, plugin **out, char *err, size_t errlen);
/* The same for a bundle (transferred, also on failure) listed under its archive's `path`. */
int install_load_bundle(plugin_install *in, const char *path, bundle *b, bool forget, plugin **out,
                        char *err, size_t errlen);
/* <dir>/<name>-<version>-<sha256 prefix>.so (or .tar.gz) of the library `p` registered. */
void install_final_path(const plugin_install *in, const plugin *p, const char *sha256, char *buf,
                        size_t n);
int install_record_put(plugin_install *in, const char *sha256, json_t *rec);
entry *install_entry_add(plugin_install *in, plugin *p, const char *sha256, bool bundled,
                         json_t *record);
/* The entry whose plugin is loaded from these bytes, or NULL. */
entry *install_entry_by_sha(plugin_install *in, const char *sha256);
/* Free once closing and no upload is pending. */
void install_free_if_done(plugin_install *in);

#endif
