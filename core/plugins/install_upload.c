/* install_upload.c - one upload: checks and the hidden file on a worker, loading and renaming on
 * the loop. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "install_internal.h"
#include "isolation.h"
#include "log.h"
#include "plugin_internal.h"
#include "threadpool.h"
#include "util.h"

typedef struct upload {
    plugin_install *in;
    const uint8_t *data; /* borrowed from the request */
    size_t len;
    char claimed[65];
    uint8_t sig[TRUST_SIG_LEN];
    bool has_sig;
    char *actor;
    install_done_fn done;
    void *ud;
    /* results of the worker */
    char sha256[65];
    char incoming[PATH_MAX];
    install_elf elf; /* what its ELF file (or bundle) says: checked before it is loaded */
    bundle *bundle;  /* a bundle: checked and unpacked into incoming_dir, not yet loaded */
    char incoming_dir[PATH_MAX];
    char *manifest; /* what the step host read of a library that runs out of process */
    size_t manifest_len;
    bool fetched; /* the manifest was asked for */
    const trust_key *signer;
    json_t *warnings;
    int rc;
    const char *code;
    char message[1024];
} upload;

static int fail(upload *u, int rc, const char *code, const char *fmt, ...) OPSC_PRINTF(4, 5);

static int fail(upload *u, int rc, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->message, sizeof(u->message), fmt, ap);
    va_end(ap);
    u->rc = rc;
    u->code = code;
    return rc;
}

static void warn(upload *u, const char *msg)
{
    json_array_append_new(u->warnings, json_string(msg));
}

/* Name, version, ABI and entry point from the ELF file itself: loading runs
 * its constructors, so nothing is loaded that these already refuse. */
static int check_elf(upload *u)
{
    char why[512];
    int rc = install_elf_check(u->data, u->len, &u->elf, why, sizeof(why));
    if (rc < 0)
        return fail(u, rc, rc == OPSC_EABI ? "refused" : "not_elf", "the upload is refused: %s",
                    why);
    return 0;
}

/* A bundle is checked and unpacked on the worker too: the loop only registers it. */
static int check_bundle(upload *u, const char *dir)
{
    char why[512];
    int rc = bundle_open(u->data, u->len, dir, &u->bundle, why, sizeof(why));
    if (rc < 0)
        return fail(u, rc, rc == OPSC_EABI || rc == OPSC_E2BIG ? "refused" : "not_bundle",
                    "the upload is refused: %s", why);
    snprintf(u->elf.name, sizeof(u->elf.name), "%s", bundle_name(u->bundle));
    snprintf(u->elf.version, sizeof(u->elf.version), "%s", bundle_version(u->bundle));
    snprintf(u->incoming_dir, sizeof(u->incoming_dir), "%s", dir);
    return 0;
}

static int check_signature(upload *u)
{
    plugin_install *in = u->in;
    size_t nkeys = trust_count(in->keys);
    if (u->has_sig && nkeys > 0) {
        if (trust_verify(in->keys, u->data, u->len, u->sig, sizeof(u->sig), &u->signer) < 0)
            return fail(u, OPSC_EAUTH, "bad_signature",
                        "the signature does not verify with any of the %zu trusted publisher keys",
                        nkeys);
        return 0;
    }
    if (install_requires_signature(in))
        return fail(u, OPSC_EAUTH, "signature_required",
                    "an Ed25519 signature of the file by a trusted publisher is required "
                    "(X-Opsc-Signature: base64)");
    if (u->has_sig)
        warn(u, "the signature was not checked: no trusted publisher keys are configured "
                "([steplibs] trusted_keys)");
    else if (nkeys > 0)
        warn(u, "unsigned step library accepted ([steplibs] require_signature = no)");
    else
        warn(u, "unsigned step library accepted: no trusted publisher keys are configured "
                "([steplibs] trusted_keys)");
    return 0;
}

static void check_and_write(void *ud)
{
    upload *u = ud;
    install_sha256_hex(u->data, u->len, u->sha256);
    if (strcmp(u->sha256, u->claimed) != 0) {
        fail(u, OPSC_EINVAL, "checksum_mismatch",
             "the upload's SHA-256 is %s, not the %s that was sent", u->sha256, u->claimed);
        return;
    }
    bool is_bundle = bundle_is_gzip(u->data, u->len);
    char name[64], rnd[17], dir[PATH_MAX];
    int rc = rand_hex(rnd, 8);
    if (rc == 0) {
        snprintf(name, sizeof(name), INSTALL_INCOMING "%s%s", rnd,
                 is_bundle ? BUNDLE_DIR_SUFFIX : ".so");
        rc = fs_join(dir, sizeof(dir), u->in->dir, name);
    }
    if (rc < 0) {
        fail(u, rc, "internal", "naming a file in %s: %s", u->in->dir, opsc_strerror(rc));
        return;
    }
    /* A bundle's signature before anything of it is unpacked. */
    if (is_bundle ? check_signature(u) < 0 || check_bundle(u, dir) < 0
                  : check_elf(u) < 0 || check_signature(u) < 0)
        return;
    snprintf(name, sizeof(name), INSTALL_INCOMING "%s%s", rnd, is_bundle ? BUNDLE_SUFFIX : ".so");
    rc = fs_join(u->incoming, sizeof(u->incoming), u->in->dir, name);
    if (rc == 0)
        rc = fs_write_file(u->incoming, u->data, u->len, 0644);
    if (rc < 0) {
        u->incoming[0] = '\0';
        fail(u, rc, "internal", "writing into %s: %s", u->in->dir, opsc_strerror(rc));
    }
}

static json_t *new_record(upload *u, const plugin *p, const char *file)
{
    char now[RFC3339_LEN], sig[B64_LEN(TRUST_SIG_LEN) + 1];
    rfc3339_format(clock_now_ms(), now);
    if (u->has_sig)
        b64_encode(u->sig, sizeof(u->sig), sig);
    const opsc_steplib *lib = NULL;
    for (size_t i = 0; i < plugin_host_count(u->in->h, REG_STEPLIB) && !lib; i++)
        if (plugin_host_reg(u->in->h, REG_STEPLIB, i)->owner == p)
            lib = plugin_host_reg(u->in->h, REG_STEPLIB, i)->desc;
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "name", lib->name, "version",
                     lib->version, "file", file, "sha256", u->sha256, "signer",
                     u->signer ? trust_key_json(u->signer) : json_null(), "signature",
                     u->has_sig ? json_string(sig) : json_null(), "installed_at", now,
                     "installed_by", u->actor ? u->actor : "");
}

/* Loaded from the hidden file: move it into place and record it, or undo. */
static int place(upload *u, plugin *p)
{
    plugin_install *in = u->in;
    char final[PATH_MAX];
    install_final_path(in, p, u->sha256, final, sizeof(final));
    int rc = rename(u->incoming, final) < 0 ? -errno : 0;
    bool renamed = rc == 0;
    char final_dir[PATH_MAX] = "";
    if (rc == 0 && bundle_is(p)) {
        snprintf(final_dir, sizeof(final_dir), "%.*s" BUNDLE_DIR_SUFFIX,
                 (int)(strlen(final) - strlen(BUNDLE_SUFFIX)), final);
        bundle_rmtree(final_dir); /* left by a delete of these very bytes */
        rc = rename(u->incoming_dir, final_dir) < 0 ? -errno : bundle_set_dir(p->pstate, final_dir);
        if (rc == 0)
            u->incoming_dir[0] = '\0';
    }
    if (rc == 0)
        rc = plugin_host_set_path(p, final);
    json_t *rec = rc == 0 ? new_record(u, p, strrchr(final, '/') + 1) : NULL;
    if (rc == 0 && !rec)
        rc = OPSC_ENOMEM;
    if (rc == 0)
        rc = install_record_put(in, u->sha256, rec);
    if (rc == 0 && !install_entry_add(in, p, u->sha256, false, rec))
        rc = OPSC_ENOMEM;
    if (rc < 0) {
        /* Nothing has called the plugin yet (same loop turn): unloading is safe. */
        if (renamed)
            unlink(final);
        if (final_dir[0] && !u->incoming_dir[0])
            bundle_rmtree(final_dir);
        json_decref(rec);
        plugin_host_forget(in->h, p);
        return fail(u, rc, "internal", "installing %s: %s", final, opsc_strerror(rc));
    }
    install_fsync_dir(in->dir);
    u->incoming[0] = '\0';
    log_info("steplibs", "installed %s (sha256 %s, %s, by %s)", final, u->sha256,
             u->signer ? trust_key_fingerprint(u->signer) : "unsigned", u->actor);
    return 0;
}

static void load_uploaded(upload *u, install_result *res)
{
    plugin_install *in = u->in;
    entry *same = install_entry_by_sha(in, u->sha256);
    plugin *p = NULL;
    const char *taken = same ? NULL : plugin_host_loaded_path(in->h, u->elf.name, u->elf.version);
    if (taken) { /* refused before loading: nothing of it runs */
        fail(u, OPSC_EEXIST, "conflict", "refused: %s %s is already loaded from %s", u->elf.name,
             u->elf.version, taken);
        return;
    }
    if (same) {
        p = same->p;
        res->unchanged = true;
    } else {
        char why[sizeof(u->message)];
        bundle *b = u->bundle;
        u->bundle = NULL; /* the load owns it now */
        int rc = b ? install_load_bundle(in, u->incoming, b, true, &p, why, sizeof(why))
                   : install_load(in, u->incoming, true, u->manifest, u->manifest_len, &p, why,
                                  sizeof(why));
        if (rc < 0) {
            fail(u, rc, rc == OPSC_EEXIST ? "conflict" : "refused", "refused: %s", why);
            return;
        }
        if (place(u, p) < 0)
            return;
    }
    for (size_t i = 0; i < plugin_host_count(in->h, REG_STEPLIB); i++) {
        const plugin_reg *r = plugin_host_reg(in->h, REG_STEPLIB, i);
        if (r->owner == p) {
            res->name = ((const opsc_steplib *)r->desc)->name;
            res->version = ((const opsc_steplib *)r->desc)->version;
        }
    }
}

/* A library that runs out of process is read by a step host, in its
 * sandbox, on a worker: after every check that refuses it without running
 * any of its code (conflict, signature), and never in the daemon. */
static void fetch_manifest(void *ud)
{
    upload *u = ud;
    char why[512];
    int rc =
        iso_manifest_fetch(u->in->h, u->incoming, &u->manifest, &u->manifest_len, why, sizeof(why));
    if (rc < 0)
        fail(u, rc, "refused", "refused: %s", why);
}

static bool needs_manifest(upload *u)
{
    plugin_install *in = u->in;
    return !u->fetched && !u->bundle && !in->closing && u->rc == 0 &&
           plugin_host_isolates(in->h, u->incoming) && !install_entry_by_sha(in, u->sha256) &&
           !plugin_host_loaded_path(in->h, u->elf.name, u->elf.version);
}

static void after_upload(void *ud, int status)
{
    upload *u = ud;
    plugin_install *in = u->in;
    if (status == 0 && needs_manifest(u)) {
        u->fetched = true;
        if (threadpool_queue(in->loop, fetch_manifest, after_upload, u) == 0)
            return;
        fail(u, OPSC_ENOMEM, "internal", "cannot start reading the library's manifest");
    }
    install_result res = {0};
    if (in->closing || status == OPSC_ECANCELED)
        fail(u, OPSC_ESTATE, "unavailable", "the daemon is stopping");
    else if (u->rc == 0)
        load_uploaded(u, &res);
    if (u->incoming[0])
        unlink(u->incoming);
    if (u->incoming_dir[0])
        bundle_rmtree(u->incoming_dir);
    bundle_free(u->bundle);
    free(u->manifest);
    res.rc = u->rc;
    res.code = u->code;
    res.message = u->message;
    res.warnings = u->warnings;
    res.verified = u->signer != NULL;
    if (u->rc == 0 && !res.unchanged)
        for (size_t i = 0; i < json_array_size(u->warnings); i++)
            log_warn("steplibs", "%s %s: %s", res.name, res.version,
                     json_string_value(json_array_get(u->warnings, i)));
    u->done(&res, u->ud);
    json_decref(u->warnings);
    free(u->actor);
    free(u);
    in->pending--;
    install_free_if_done(in);
}

int install_upload(plugin_install *in, const install_request *rq, install_done_fn done, void *ud)
{
    if (in->closing)
        return OPSC_ESTATE;
    upload *u = calloc(1, sizeof(*u));
    if (!u)
        return OPSC_ENOMEM;
    u->in = in;
    u->data = rq->data;
    u->len = rq->len;
    snprintf(u->claimed, sizeof(u->claimed), "%s", rq->sha256);
    u->has_sig = rq->signature != NULL;
    if (u->has_sig && rq->signature_len != sizeof(u->sig)) {
        free(u);
        return OPSC_EINVAL;
    }
    if (u->has_sig)
        memcpy(u->sig, rq->signature, sizeof(u->sig));
    u->actor = strdup(rq->actor ? rq->actor : "");
    u->warnings = json_array();
    u->done = done;
    u->ud = ud;
    if (!u->actor || !u->warnings ||
        threadpool_queue(in->loop, check_and_write, after_upload, u) < 0) {
        json_decref(u->warnings);
        free(u->actor);
        free(u);
        return OPSC_ENOMEM;
    }
    in->pending++;
    return 0;
}
