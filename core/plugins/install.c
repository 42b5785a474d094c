/* install.c - run-time step library installs: the directory, loading, records, deletes, pins. */
#include "install.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "install_internal.h"
#include "log.h"
#include "plugin_internal.h"
#include "steptype.h"
#include "util.h"

#define RECORDS_DB "steplibs"

/* ---- entries: what is known of each loaded step library plugin ------------------ */

static entry *entry_of(plugin_install *in, const plugin *p)
{
    for (size_t i = 0; i < in->n; i++)
        if (in->entries[i].p == p)
            return &in->entries[i];
    return NULL;
}

entry *install_entry_add(plugin_install *in, plugin *p, const char *sha256, bool bundled,
                         json_t *record)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 8;
        entry *v = realloc(in->entries, cap * sizeof(*v));
        if (!v)
            return NULL;
        in->entries = v;
        in->cap = cap;
    }
    entry *e = &in->entries[in->n++];
    e->p = p;
    snprintf(e->sha256, sizeof(e->sha256), "%s", sha256);
    e->bundled = bundled;
    e->record = record;
    return e;
}

entry *install_entry_by_sha(plugin_install *in, const char *sha256)
{
    for (size_t i = 0; i < in->n; i++)
        if (strcmp(in->entries[i].sha256, sha256) == 0 && in->entries[i].p->state == PLUGIN_LOADED)
            return &in->entries[i];
    return NULL;
}

static void entry_remove(plugin_install *in, entry *e)
{
    json_decref(e->record);
    *e = in->entries[--in->n];
}

static void fill_lib(plugin_install *in, const plugin_reg *r, install_lib *out)
{
    const entry *e = entry_of(in, r->owner);
    out->desc = r->desc;
    out->compiled = r->compiled;
    out->plugin = r->owner->name;
    out->path = r->owner->path;
    out->sha256 = e ? e->sha256 : "";
    out->bundled = e ? e->bundled : true;
    out->record = e ? e->record : NULL;
}

void install_foreach(plugin_install *in, void (*fn)(const install_lib *lib, void *ud), void *ud)
{
    for (size_t i = 0; i < plugin_host_count(in->h, REG_STEPLIB); i++) {
        install_lib lib;
        fill_lib(in, plugin_host_reg(in->h, REG_STEPLIB, i), &lib);
        fn(&lib, ud);
    }
}

static const plugin_reg *find_reg(plugin_install *in, const char *name, const char *version)
{
    for (size_t i = 0; i < plugin_host_count(in->h, REG_STEPLIB); i++) {
        const plugin_reg *r = plugin_host_reg(in->h, REG_STEPLIB, i);
        const opsc_steplib *d = r->desc;
        if (strcmp(d->name, name) == 0 && strcmp(d->version, version) == 0)
            return r;
    }
    return NULL;
}

bool install_find(plugin_install *in, const char *name, const char *version, install_lib *out)
{
    const plugin_reg *r = find_reg(in, name, version);
    if (r)
        fill_lib(in, r, out);
    return r != NULL;
}

const json_t *install_refused(plugin_install *in)
{
    return in->refused;
}

bool install_requires_signature(const plugin_install *in)
{
    return in->require == INSTALL_SIG_YES ||
           (in->require == INSTALL_SIG_AUTO && trust_count(in->keys) > 0);
}

/* ---- files ------------------------------------------------------------------ */

void install_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    EVP_Digest(data, len, d, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void install_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static bool version_file_safe(const char *v)
{
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && *v != '.' && *v != '-' && *v != '+')
            return false;
    return true;
}

/* A run-time installed library registers one step library and nothing else,
 * with a version fit for a file name; otherwise it is unloaded again. */
static int check_loaded(plugin_install *in, plugin *p, plugin **out, char *err, size_t errlen)
{
    size_t libs = 0, others = 0;
    const opsc_steplib *lib = NULL;
    for (int k = 0; k < REG__COUNT; k++) {
        for (size_t i = 0; i < plugin_host_count(in->h, k); i++) {
            const plugin_reg *r = plugin_host_reg(in->h, k, i);
            if (r->owner != p)
                continue;
            if (k == REG_STEPLIB) {
                libs++;
                lib = r->desc;
            } else {
                others++;
            }
        }
    }
    if (libs != 1 || others)
        snprintf(err, errlen,
                 "an installed plugin must register exactly one step library and "
                 "nothing else (this one registered %zu step libraries and %zu "
                 "other things)",
                 libs, others);
    else if (!version_file_safe(lib->version))
        snprintf(err, errlen, "step library version '%s' is not a semantic version", lib->version);
    else {
        *out = p;
        return 0;
    }
    plugin_host_forget(in->h, p);
    return OPSC_EINVAL;
}

/* Load a file as a run-time installed step library: step-library-only, one
 * library, a version fit for a file name. On refusal nothing is left in the
 * plugin host when `forget` (uploads); otherwise the refusal is listed. */
int install_load(plugin_install *in, const char *path, bool forget, const char *manifest,
                 size_t manifest_len, plugin **out, char *err, size_t errlen)
{
    plugin_load_opts opts = {OPSC_KIND_STEPLIB, forget, manifest, manifest_len};
    plugin *p = NULL;
    int rc = plugin_host_load(in->h, path, &opts, &p, err, errlen);
    return rc < 0 ? rc : check_loaded(in, p, out, err, errlen);
}

int install_load_bundle(plugin_install *in, const char *path, bundle *b, bool forget, plugin **out,
                        char *err, size_t errlen)
{
    plugin_load_opts opts = {OPSC_KIND_STEPLIB, forget};
    plugin *p = NULL;
    int rc = bundle_load(in->h, path, b, &opts, &p, err, errlen);
    return rc < 0 ? rc : check_loaded(in, p, out, err, errlen);
}

void install_final_path(const plugin_install *in, const plugin *p, const char *sha256, char *buf,
                        size_t n)
{
    const opsc_steplib *lib = NULL;
    for (size_t i = 0; i < in->h->regs[REG_STEPLIB].n && !lib; i++)
        if (in->h->regs[REG_STEPLIB].items[i].owner == p)
            lib = in->h->regs[REG_STEPLIB].items[i].desc;
    snprintf(buf, n, "%s/%s-%s-%.12s%s", in->dir, lib->name, lib->version, sha256,
             bundle_is(p) ? BUNDLE_SUFFIX : ".so");
}

/* ---- records -------------------------------------------------------------------- */

struct record_op {
    const char *sha256;
    json_t *rec; /* put: the record; get: out (new reference) */
};

static int record_get_txn(store_txn *txn, void *ud)
{
    struct record_op *op = ud;
    const void *val;
    size_t len;
    int rc = store_kv_get(txn, RECORDS_DB, op->sha256, strlen(op->sha256), &val, &len);
    if (rc == 0) {
        op->rec = json_loadb(val, len, 0, NULL);
        if (!json_is_object(op->rec)) {
            json_decref(op->rec);
            op->rec = NULL;
            rc = OPSC_ECORRUPT;
        }
    }
    return rc;
}

static int record_put_txn(store_txn *txn, void *ud)
{
    struct record_op *op = ud;
    char *text = json_dumps(op->rec, JSON_COMPACT);
    if (!text)
        return OPSC_ENOMEM;
    int rc = store_kv_put(txn, RECORDS_DB, op->sha256, strlen(op->sha256), text, strlen(text));
    free(text);
    return rc;
}

static int record_del_txn(store_txn *txn, void *ud)
{
    struct record_op *op = ud;
    int rc = store_kv_del(txn, RECORDS_DB, op->sha256, strlen(op->sha256));
    return rc == OPSC_ENOENT ? 0 : rc;
}

int install_record_put(plugin_install *in, const char *sha256, json_t *rec)
{
    struct record_op op = {sha256, rec};
    return store_write(in->st, record_put_txn, &op);
}

/* ---- start-up: bundled libraries, then the install directory ---------------------- */

static void note_bundled(plugin_install *in)
{
    for (size_t i = 0; i < plugin_host_count(in->h, REG_STEPLIB); i++) {
        plugin *p = plugin_host_reg(in->h, REG_STEPLIB, i)->owner;
        if (entry_of(in, p))
            continue;
        char *data = NULL, sha[65] = "";
        size_t len = 0;
        if (fs_read_file(p->path, INSTALL_FILE_MAX, &data, &len) == 0)
            install_sha256_hex(data, len, sha);
        free(data);
        install_entry_add(in, p, sha, true, NULL);
    }
}

static void refuse_file(plugin_install *in, const char *path, const char *sha, const char *why)
{
    log_error("steplibs", "installed step library %s not loaded: %s", path, why);
    json_array_append_new(in->refused,
                          json_pack("{s:s, s:s, s:s}", "path", path, "sha256", sha, "reason", why));
}

/* The signer of an installed file from its record, checked again against
 * today's keys: NULL when unsigned or no longer verifiable. */
static json_t *recheck_signer(plugin_install *in, const json_t *rec, const char *data, size_t len)
{
    const char *b64 = json_string_value(json_object_get(rec, "signature"));
    uint8_t sig[TRUST_SIG_LEN + 3];
    size_t siglen = 0;
    const trust_key *k = NULL;
    if (!b64 || strlen(b64) != B64_LEN(TRUST_SIG_LEN) ||
        b64_decode(b64, strlen(b64), sig, &siglen) < 0 ||
        trust_verify(in->keys, data, len, sig, siglen, &k) < 0)
        return NULL;
    return trust_key_json(k);
}

static bool is_bundle_name(const char *name)
{
    size_t n = strlen(name), s = strlen(BUNDLE_SUFFIX);
    return n > s && strcmp(name + n - s, BUNDLE_SUFFIX) == 0;
}

/* Unpacked again at every start from the bytes that were checked and
 * signed: what runs is never a folder someone edited since. */
static int load_installed_bundle(plugin_install *in, const char *path, const char *data, size_t len,
                                 plugin **p, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%.*s" BUNDLE_DIR_SUFFIX,
             (int)(strlen(path) - strlen(BUNDLE_SUFFIX)), path);
    bundle_rmtree(dir);
    bundle *b = NULL;
    int rc = bundle_open(data, len, dir, &b, err, errlen);
    return rc < 0 ? rc : install_load_bundle(in, path, b, false, p, err, errlen);
}

static void load_installed(plugin_install *in, const char *path)
{
    char *data = NULL, sha[65] = "", err[1024];
    size_t len = 0;
    int rc = fs_read_file(path, INSTALL_FILE_MAX, &data, &len);
    if (rc < 0) {
        snprintf(err, sizeof(err), "cannot read: %s", opsc_strerror(rc));
        refuse_file(in, path, sha, err);
        return;
    }
    install_sha256_hex(data, len, sha);
    struct record_op op = {sha, NULL};
    store_read(in->st, record_get_txn, &op);
    json_t *signer = op.rec ? recheck_signer(in, op.rec, data, len) : NULL;
    if (!signer && install_requires_signature(in)) {
        free(data);
        refuse_file(in, path, sha,
                    op.rec && json_is_string(json_object_get(op.rec, "signature"))
                        ? "its signature does not verify with any trusted publisher key"
                        : "unsigned, and signatures are required");
        json_decref(op.rec);
        return;
    }
    plugin *p = NULL;
    rc = is_bundle_name(path) ? load_installed_bundle(in, path, data, len, &p, err, sizeof(err))
                              : install_load(in, path, false, NULL, 0, &p, err, sizeof(err));
    free(data);
    if (rc < 0) {
        refuse_file(in, path, sha, err);
        json_decref(op.rec);
        json_decref(signer);
        return;
    }
    if (!signer && trust_count(in->keys) > 0)
        log_warn("steplibs",
                 "%s: loaded without a verified signature ([steplibs] "
                 "require_signature = no)",
                 path);
    json_t *rec = op.rec ? op.rec : json_object();
    json_object_set_new(rec, "signer", signer ? signer : json_null());
    install_entry_add(in, p, sha, false, rec);
}

static bool is_installed_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 3 && strcmp(name + n - 3, ".so") == 0) || is_bundle_name(name));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Uploads that never finished (the daemon stopped in between) are removed. */
static void scan_dir(plugin_install *in)
{
    DIR *d = opendir(in->dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[PATH_MAX];
        if (fs_join(path, sizeof(path), in->dir, e->d_name) < 0)
            continue;
        size_t dl = strlen(e->d_name), sl = strlen(BUNDLE_DIR_SUFFIX);
        if (strncmp(e->d_name, INSTALL_INCOMING, strlen(INSTALL_INCOMING)) == 0) {
            if (unlink(path) < 0)
                bundle_rmtree(path);
        } else if (e->d_name[0] != '.' && dl > sl &&
                   strcmp(e->d_name + dl - sl, BUNDLE_DIR_SUFFIX) == 0) {
            bundle_rmtree(path); /* unpacked again from its archive, or left by a delete */
        } else if (is_installed_name(e->d_name)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                char **v = realloc(names, cap * sizeof(*v));
                if (!v)
                    break;
                names = v;
            }
            names[n++] = strdup(path);
        }
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (names[i])
            load_installed(in, names[i]);
        free(names[i]);
    }
    free(names);
}

/* 0755 whatever the umask, when we create it; an existing one is left as it is. */
static int make_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    bool existed = stat(dir, &st) == 0;
    int rc = fs_mkdir_p(dir, 0755);
    if (rc == 0 && !existed && chmod(dir, 0755) < 0)
        rc = -errno;
    if (rc < 0)
        snprintf(err, errlen, "step library directory %s: %s", dir, strerror(-rc));
    return rc;
}

int install_open(plugin_install **out, uv_loop_t *loop, plugin_host *h, store *st,
                 const install_opts *o, char *err, size_t errlen)
{
    plugin_install *in = calloc(1, sizeof(*in));
    if (!in || !(in->dir = strdup(o->dir)) || !(in->refused = json_array())) {
        install_close(in);
        return OPSC_ENOMEM;
    }
    in->loop = loop;
    in->h = h;
    in->st = st;
    in->require = o->require_signature;
    int rc = trust_load(&in->keys, o->trusted_keys, err, errlen);
    if (rc == 0 && in->require == INSTALL_SIG_YES && trust_count(in->keys) == 0) {
        snprintf(err, errlen, "[steplibs] require_signature = yes needs trusted_keys");
        rc = OPSC_EINVAL;
    }
    if (rc == 0)
        rc = make_dir(in->dir, err, errlen);
    if (rc < 0) {
        install_close(in);
        return rc;
    }
    note_bundled(in);
    size_t bundled = in->n;
    scan_dir(in);
    log_info("steplibs", "%zu step library versions loaded, %zu of them installed in %s; %s",
             plugin_host_count(h, REG_STEPLIB), in->n - bundled, in->dir,
             install_requires_signature(in) ? "uploads must be signed"
                                            : "unsigned uploads allowed");
    *out = in;
    return 0;
}

void install_free_if_done(plugin_install *in)
{
    if (!in->closing || in->pending)
        return;
    for (size_t i = 0; i < in->n; i++)
        json_decref(in->entries[i].record);
    free(in->entries);
    json_decref(in->refused);
    trust_free(in->keys);
    free(in->dir);
    free(in);
}

void install_close(plugin_install *in)
{
    if (!in)
        return;
    in->closing = true;
    install_free_if_done(in);
}

/* ---- deleting ------------------------------------------------------------------- */

struct pins {
    plugin_host *h;
    const plugin *p;
    json_t *jobs;
};

static int pins_job(const char *id, json_t *job, void *ud)
{
    struct pins *ps = ud;
    json_t *steps = json_object_get(job, "steps"), *step, *refs = NULL;
    size_t i;
    char err[256];
    json_array_foreach(steps, i, step)
    {
        const char *ref = json_string_value(json_object_get(step, "type"));
        const plugin_reg *now = NULL;
        if (!ref || !plugin_host_steptype(ps->h, ref, &now, err, sizeof(err)) ||
            now->owner != ps->p ||
            plugin_host_steptype_except(ps->h, ref, ps->p, NULL, err, sizeof(err)))
            continue;
        if (!refs)
            refs = json_array();
        json_array_append_new(refs, json_string(ref));
    }
    if (!refs)
        return 0;
    const char *name = json_string_value(json_object_get(job, "name"));
    return json_array_append_new(ps->jobs, json_pack("{s:s, s:s, s:o}", "id", id, "name",
                                                     name ? name : id, "steps", refs)) < 0
               ? OPSC_ENOMEM
               : 0;
}

int install_pinning_jobs(plugin_host *h, store_txn *txn, const plugin *p, json_t **out)
{
    struct pins ps = {h, p, json_array()};
    if (!ps.jobs)
        return OPSC_ENOMEM;
    int rc = store_scan(txn, "jobs", NULL, false, pins_job, &ps);
    if (rc < 0) {
        json_decref(ps.jobs);
        return rc;
    }
    *out = ps.jobs;
    return 0;
}

static int pins_txn(store_txn *txn, void *ud)
{
    struct pins *r = ud;
    return install_pinning_jobs(r->h, txn, r->p, &r->jobs);
}

static void job_names(const json_t *jobs, char *buf, size_t n)
{
    size_t o = 0, i;
    json_t *j;
    buf[0] = '\0';
    json_array_foreach(jobs, i, j)
    {
        if (o >= n)
            break;
        o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "",
                              json_string_value(json_object_get(j, "name")));
    }
}

/* An installed file refused at start (its key withdrawn, a newer daemon's
 * ABI...) is deleted by the name and version in its file name. */
static int delete_refused(plugin_install *in, const char *name, const char *version)
{
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s-%s-", name, version);
    size_t i;
    json_t *f;
    json_array_foreach(in->refused, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *base = strrchr(path, '/');
        if (strncmp(base ? base + 1 : path, prefix, strlen(prefix)) != 0)
            continue;
        struct record_op op = {json_string_value(json_object_get(f, "sha256")), NULL};
        int rc = store_write(in->st, record_del_txn, &op);
        if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
            rc = -errno;
        if (rc == 0) {
            log_info("steplibs", "deleted %s (it was not loaded)", path);
            json_array_remove(in->refused, i);
        }
        return rc;
    }
    return OPSC_ENOENT;
}

int install_delete(plugin_install *in, const char *name, const char *version, json_t **jobs,
                   char *err, size_t errlen)
{
    const plugin_reg *r = find_reg(in, name, version);
    entry *e = r ? entry_of(in, r->owner) : NULL;
    *jobs = NULL;
    if (!r) {
        int rc = delete_refused(in, name, version);
        if (rc == OPSC_ENOENT)
            snprintf(err, errlen, "step library %s %s is not installed", name, version);
        else if (rc < 0)
            snprintf(err, errlen, "deleting step library %s %s: %s", name, version,
                     opsc_strerror(rc));
        return rc;
    }
    if (!e || e->bundled) {
        snprintf(err, errlen,
                 "step library %s %s is bundled with the daemon (%s): it cannot be "
                 "deleted",
                 name, version, r->owner->path);
        return OPSC_EPERM;
    }
    plugin *p = r->owner;
    struct pins pr = {in->h, p, NULL};
    int rc = store_read(in->st, pins_txn, &pr);
    if (rc < 0) {
        snprintf(err, errlen, "reading jobs: %s", opsc_strerror(rc));
        return rc;
    }
    if (json_array_size(pr.jobs) > 0) {
        char names[512];
        job_names(pr.jobs, names, sizeof(names));
        snprintf(err, errlen,
                 "step library %s %s is still needed by jobs whose steps would not "
                 "resolve without it: %s",
                 name, version, names);
        *jobs = pr.jobs;
        return OPSC_EBUSY;
    }
    json_decref(pr.jobs);
    struct record_op op = {e->sha256, NULL};
    rc = store_write(in->st, record_del_txn, &op);
    if (rc == 0)
        rc = plugin_host_retire(in->h, p);
    if (rc < 0) {
        snprintf(err, errlen, "deleting the record: %s", opsc_strerror(rc));
        return rc;
    }
    if (unlink(p->path) < 0 && errno != ENOENT)
        log_warn("steplibs", "cannot remove %s: %s", p->path, strerror(errno));
    install_fsync_dir(in->dir);
    log_info("steplibs", "deleted step library %s %s (%s)", name, version, p->path);
    entry_remove(in, e);
    return 0;
}
