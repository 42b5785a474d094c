/* core_file.c - file.put, file.get, file.template: files between the appliance and targets.
 *
 * Files that put and template read are confined to the library's files_dir:
 * a job names them by relative path, and "..", absolute paths and symlinks
 * out of the directory are refused, so a job cannot read the daemon's keys.
 * What get fetches is kept with the run, per target, under a plain file name
 * (the host writes it: the step never names a path on the appliance). Transfers go through the host
 * (streamed and checksum-verified by the transport); a put is skipped when the target's SHA-256
 * already matches, which makes the steps idempotent.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_internal.h"

#define TEMPLATE_MAX (1u << 20)

typedef struct file_ctx {
    opsc_step_ctx *ctx;
    const core_settings *settings;
    json_t *params;
    bool windows;
} file_ctx;

/* ---- appliance side ----------------------------------------------------------- */

static int sha256_file(const char *path, char hex[65], uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[65536], digest[32];
    unsigned len = 0;
    size_t n;
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : OPSC_ECRYPTO;
    *size = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        *size += n;
        if (!EVP_DigestUpdate(md, buf, n))
            rc = OPSC_ECRYPTO;
    }
    if (rc == 0 && (ferror(f) || !EVP_DigestFinal_ex(md, digest, &len)))
        rc = ferror(f) ? OPSC_EIO : OPSC_ECRYPTO;
    for (unsigned i = 0; rc == 0 && i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    EVP_MD_CTX_free(md);
    fclose(f);
    return rc;
}

/* files_dir/rel into out, refusing paths that could leave files_dir. */
static int local_path(const file_ctx *fc, const char *rel, char *out, size_t n)
{
    const opsc_host_api *h = core_host;
    bool bad = !rel || !*rel || rel[0] == '/';
    for (const char *p = rel; !bad && p && *p; p = strchr(p, '/'), p = p ? p + 1 : NULL)
        bad = strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0');
    if (bad)
        return h->step_fail(fc->ctx, "'%s' must be a relative path inside files_dir, without '..'",
                            rel ? rel : "");
    if ((size_t)snprintf(out, n, "%s/%s", fc->settings->files_dir, rel) >= n)
        return h->step_fail(fc->ctx, "path too long");
    return 0;
}

/* Refuse a file that a symlink placed outside files_dir. */
static int inside_files_dir(const file_ctx *fc, const char *path)
{
    char real[PATH_MAX], base[PATH_MAX];
    if (!realpath(path, real) || !realpath(fc->settings->files_dir, base))
        return core_host->step_fail(fc->ctx, "cannot resolve %s: %s", path, strerror(errno));
    size_t bl = strlen(base);
    if (strncmp(real, base, bl) != 0 || (real[bl] != '/' && real[bl] != '\0'))
        return core_host->step_fail(fc->ctx, "%s leads outside files_dir", path);
    return 0;
}

static int temp_file_with(const char *data, size_t len, char path[64])
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 64, "%.40s/opsc-put-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int rc = -errno;
            close(fd);
            unlink(path);
            return rc;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

/* ---- target side ------------------------------------------------------------------- */

/* The target's digest and mode of `dest` ("" when it does not exist). */
static int remote_state(const file_ctx *fc, const char *qdest, char digest[65], char mode[8])
{
    char cmd[PATH_MAX * 2 + 256];
    int n;
    if (fc->windows)
        n = snprintf(cmd, sizeof(cmd),
                     "$h = Get-FileHash -LiteralPath %s -Algorithm SHA256 -ErrorAction "
                     "SilentlyContinue; if ($h) { $h.Hash.ToLowerInvariant() }",
                     qdest);
    else
        n = snprintf(cmd, sizeof(cmd),
                     "sha256sum -- %s 2>/dev/null | cut -c1-64; stat -c %%a -- %s 2>/dev/null",
                     qdest, qdest);
    if (n < 0 || (size_t)n >= sizeof(cmd)) /* never run a cut-off quoted word */
        return core_host->step_fail(fc->ctx, "the destination path is too long");
    opsc_step_exec_result res;
    int rc = stepkit_exec(core_host, fc->ctx, cmd, 0, &res);
    if (rc < 0)
        return rc;
    char *out = stepkit_trimmed_out(&res);
    if (!out)
        return OPSC_ENOMEM;
    digest[0] = mode[0] = '\0';
    if (sscanf(out, "%64[0-9a-f] %7[0-7]", digest, mode) < 1)
        digest[0] = '\0';
    free(out);
    return 0;
}

static int remote_prepare(const file_ctx *fc, const char *qdest)
{
    char cmd[PATH_MAX + 256];
    int n;
    if (fc->windows)
        n = snprintf(cmd, sizeof(cmd),
                     "$d = Split-Path -Parent %s; if ($d -and -not (Test-Path -LiteralPath $d)) { "
                     "New-Item -ItemType Directory -Force -Path $d | Out-Null }",
                     qdest);
    else
        n = snprintf(cmd, sizeof(cmd), "d=%s; mkdir -p -- \"$(dirname -- \"$d\")\"", qdest);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return core_host->step_fail(fc->ctx, "the destination path is too long");
    opsc_step_exec_result res;
    int rc = stepkit_exec(core_host, fc->ctx, cmd, 0, &res);
    if (rc == 0 && res.exit_code != 0)
        rc = core_host->step_fail(fc->ctx, "cannot create the directory of the destination");
    return rc;
}

static int report(const file_ctx *fc, bool changed, const char *hex, uint64_t size)
{
    int rc = stepkit_output(core_host, fc->ctx, "changed", json_boolean(changed));
    if (rc == 0)
        rc = stepkit_output(core_host, fc->ctx, "sha256", json_string(hex));
    if (rc == 0)
        rc = stepkit_output(core_host, fc->ctx, "size", json_integer((json_int_t)size));
    return rc;
}

/* Put `local` at params.dest unless the target already has it. */
static int put_if_different(const file_ctx *fc, const char *local)
{
    const opsc_host_api *h = core_host;
    const char *dest = stepkit_str(fc->params, "dest"), *mode = stepkit_str(fc->params, "mode");
    char hex[65], remote[65], rmode[8];
    uint64_t size;
    int rc = sha256_file(local, hex, &size);
    if (rc < 0)
        return h->step_fail(fc->ctx, "cannot read %s: %s", local, opsc_strerror(rc));
    const char *qdest = h->step_quote(fc->ctx, dest);
    if (!qdest)
        return OPSC_ENOMEM;
    if ((rc = remote_state(fc, qdest, remote, rmode)) < 0)
        return rc;
    int imode = mode && !fc->windows ? (int)strtol(mode, NULL, 8) : -1;
    bool mode_ok = imode < 0 || strtol(rmode, NULL, 8) == imode;
    if (strcmp(hex, remote) == 0 && mode_ok) {
        h->step_log(fc->ctx, OPSC_LOG_INFO, "%s is up to date", dest);
        return report(fc, false, hex, size);
    }
    if (stepkit_bool(fc->params, "create_dirs", true) && (rc = remote_prepare(fc, qdest)) < 0)
        return rc;
    if ((rc = h->step_put_file(fc->ctx, local, dest, imode)) < 0)
        return h->step_fail(fc->ctx, "cannot copy to %s: %s", dest, opsc_strerror(rc));
    return report(fc, true, hex, size);
}

static int file_begin(file_ctx *fc, opsc_step_ctx *ctx, void *lib_state)
{
    fc->ctx = ctx;
    fc->settings = lib_state;
    fc->params = stepkit_params(core_host, ctx);
    const char *family = core_host->step_target(ctx, "os_family");
    fc->windows = family && strcmp(family, "windows") == 0;
    return fc->params ? 0 : OPSC_ENOMEM;
}

/* ---- the steps ------------------------------------------------------------------------- */

int core_file_put_run(opsc_step_ctx *ctx, void *lib_state)
{
    file_ctx fc;
    char path[PATH_MAX], tmp[64] = "";
    int rc = file_begin(&fc, ctx, lib_state);
    const char *src = stepkit_str(fc.params, "src");
    const json_t *content = json_object_get(fc.params, "content");
    if (rc == 0 && src && (rc = local_path(&fc, src, path, sizeof(path))) == 0)
        rc = inside_files_dir(&fc, path);
    else if (rc == 0 && !src &&
             (rc = temp_file_with(json_string_value(content), json_string_length(content), tmp)) ==
                 0)
        snprintf(path, sizeof(path), "%s", tmp);
    if (rc == 0)
        rc = put_if_different(&fc, path);
    if (tmp[0])
        unlink(tmp);
    json_decref(fc.params);
    return rc;
}

/* Read a small file from files_dir into a NUL-terminated buffer (caller frees). */
static int read_local(const file_ctx *fc, const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(TEMPLATE_MAX + 1);
    size_t n = f && buf ? fread(buf, 1, TEMPLATE_MAX + 1, f) : 0;
    int err = f ? 0 : errno;
    if (f)
        fclose(f);
    if (!f || !buf || n > TEMPLATE_MAX) {
        free(buf);
        return core_host->step_fail(fc->ctx, "cannot read template %s: %s", path,
                                    !f     ? strerror(err)
                                    : !buf ? "out of memory"
                                           : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int render_to_temp(const file_ctx *fc, const char *text, char tmp[64])
{
    const opsc_host_api *h = core_host;
    if (!OPSC_HOST_HAS(h, step_render))
        return h->step_fail(fc->ctx, "this OpsConductor cannot render templates for steps "
                                     "(step_render is missing): upgrade it");
    const json_t *vars = json_object_get(fc->params, "vars");
    char *vars_json = vars ? json_dumps(vars, JSON_COMPACT) : NULL, err[300];
    const char *out = NULL;
    int rc = h->step_render(fc->ctx, text, vars_json, &out, err, sizeof(err));
    free(vars_json);
    if (rc < 0)
        return h->step_fail(fc->ctx, "template %s: %s", stepkit_str(fc->params, "src"), err);
    return temp_file_with(out, strlen(out), tmp);
}

int core_file_template_run(opsc_step_ctx *ctx, void *lib_state)
{
    file_ctx fc;
    char path[PATH_MAX], tmp[64] = "", *text = NULL;
    int rc = file_begin(&fc, ctx, lib_state);
    if (rc == 0)
        rc = local_path(&fc, stepkit_str(fc.params, "src"), path, sizeof(path));
    if (rc == 0)
        rc = inside_files_dir(&fc, path);
    if (rc == 0)
        rc = read_local(&fc, path, &text);
    if (rc == 0)
        rc = render_to_temp(&fc, text, tmp);
    if (rc == 0)
        rc = put_if_different(&fc, tmp);
    if (tmp[0])
        unlink(tmp);
    free(text);
    json_decref(fc.params);
    return rc;
}

/* The name the run keeps the file under: dest, else the source's last segment. */
static const char *get_name(const char *src, const char *dest)
{
    if (dest && *dest)
        return dest;
    const char *base = src + strlen(src);
    while (base > src && base[-1] != '/' && base[-1] != '\\')
        base--;
    return base;
}

/* What the target sent is kept with the run, per target (opsc_host_api.step_fetch_file): the
 * host writes and hashes it, so this works the same in and out of the daemon's process. */
int core_file_get_run(opsc_step_ctx *ctx, void *lib_state)
{
    const opsc_host_api *h = core_host;
    file_ctx fc;
    int rc = file_begin(&fc, ctx, lib_state);
    const char *src = stepkit_str(fc.params, "src");
    const char *name = rc == 0 ? get_name(src, stepkit_str(fc.params, "dest")) : NULL;
    opsc_step_file got = {.size = sizeof(got)};
    if (rc == 0 && !OPSC_HOST_HAS(h, step_fetch_file))
        rc = h->step_fail(ctx, "this OpsConductor cannot keep files with a run "
                               "(step_fetch_file is missing): upgrade it");
    else if (rc == 0 && strchr(name, '/'))
        rc = h->step_fail(ctx,
                          "dest '%s' must be a file name: the run keeps what file.get "
                          "fetches per target, in no folder of its own",
                          name);
    else if (rc == 0 && (rc = h->step_fetch_file(ctx, src, name, &got)) == OPSC_EINVAL)
        rc = h->step_fail(ctx,
                          "'%s' cannot name a file of the run (use letters, digits, '.', "
                          "'_' and '-', not starting with '.': set dest), or %s is not "
                          "an absolute path",
                          name, src);
    else if (rc < 0 && rc != OPSC_ECANCELED)
        rc = h->step_fail(ctx, "cannot fetch %s: %s", src, opsc_strerror(rc));
    if (rc == 0)
        rc = report(&fc, got.changed, got.sha256, got.bytes);
    if (rc == 0)
        rc = stepkit_output(h, ctx, "path", json_string(got.path));
    if (rc == 0)
        rc = stepkit_output(h, ctx, "name", json_string(name));
    json_decref(fc.params);
    return rc;
}
