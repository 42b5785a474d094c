/* steplibs.c - step libraries: upload (SHA-256, optional Ed25519 signature), show, delete. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "misc.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return OPSCTL_ERROR;
    hex(md, 32, out);
    return 0;
}

/* Plain Ed25519 over the whole file, as the daemon verifies it (and as
 * `openssl pkeyutl -sign -rawin` makes it), base64 for the header. */
static int sign(const char *key_path, const void *data, size_t len, char *b64, size_t n)
{
    FILE *f = fopen(key_path, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!key || EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
        fprintf(stderr, "opsctl: %s: %s\n", key_path,
                !f    ? "cannot open"
                : key ? "not an Ed25519 key (openssl genpkey -algorithm ed25519)"
                      : "not a PEM private key (openssl genpkey -algorithm ed25519)");
        EVP_PKEY_free(key);
        return OPSCTL_ERROR;
    }
    unsigned char sig[64];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(md, sig, &siglen, data, len) == 1 && siglen == 64 && n > 88;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    if (!ok) {
        fprintf(stderr, "opsctl: signing with %s failed\n", key_path);
        return OPSCTL_ERROR;
    }
    EVP_EncodeBlock((unsigned char *)b64, sig, 64);
    return 0;
}

static void installed_table(opsctl *c, json_t *v, const void *ud)
{
    (void)ud;
    json_t *signer = json_object_get(v, "signer");
    printf("installed step library %s%s %s%s%s%s%s\n", color(c, C_BOLD),
           json_string_value(json_object_get(v, "name")),
           json_string_value(json_object_get(v, "version")), color(c, C_RESET),
           signer ? " (signed by " : " (unsigned)",
           signer ? json_string_value(json_object_get(signer, "name")) : "", signer ? ")" : "");
    json_t *w;
    size_t i;
    json_array_foreach(json_object_get(v, "warnings"), i, w)
        fprintf(stderr, "warning: %s\n", json_string_value(w));
}

static int upload(opsctl *c, const void *data, size_t len, const char *key_path)
{
    char sha[65], sig[100], h_sha[128], h_sig[160];
    const char *headers[4] = {"Content-Type: application/octet-stream", h_sha, NULL, NULL};
    int rc = sha256_hex(data, len, sha);
    snprintf(h_sha, sizeof(h_sha), "X-Opsc-Sha256: %s", sha);
    if (rc == 0 && key_path) {
        rc = sign(key_path, data, len, sig, sizeof(sig));
        snprintf(h_sig, sizeof(h_sig), "X-Opsc-Signature: %s", sig);
        headers[2] = h_sig;
    }
    http_answer ans;
    if (rc == 0)
        rc = http_upload(c, "/api/v1/steplibs", data, len, headers, &ans);
    if (rc)
        return rc;
    if (ans.status == 200 || ans.status == 201)
        rc = print_result(c, ans.json, installed_table, NULL);
    else
        rc = api_error(&ans);
    http_answer_free(&ans);
    return rc;
}

int cmd_steplibs_upload(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    size_t len = 0;
    char *data = read_file(a->argv[0], &len);
    if (!data)
        return OPSCTL_ERROR;
    int rc = upload(c, data, len, arg_value(a, "sign"));
    free(data);
    return rc;
}

static const column version_cols[] = {
    {"VERSION", "version", COL_TEXT},
    {"BUNDLED", "bundled", COL_BOOL},
    {"STEPS", "steps", COL_COUNT},
    {"SIGNER", "signer.name", COL_TEXT},
    {"RUNS", "isolation.runs", COL_TEXT},
    {"INSTALLED", "installed_at", COL_TIME},
    {"SUMMARY", "summary", COL_TEXT},
    {NULL, NULL, 0},
};

static void library_table(opsctl *c, json_t *lib, const void *ud)
{
    (void)ud;
    print_table(c, version_cols, json_object_get(lib, "versions"));
}

int cmd_steplibs_show(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char *esc = url_escape(a->argv[0]), path[512];
    snprintf(path, sizeof(path), "/api/v1/steplibs/%s", esc ? esc : "");
    free(esc);
    json_t *lib = NULL;
    int rc = api_call(c, "GET", path, NULL, &lib);
    if (rc == 0)
        rc = print_result(c, lib, library_table, NULL);
    json_decref(lib);
    return rc;
}

int cmd_steplibs_delete(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char *name = url_escape(a->argv[0]), *version = url_escape(a->argv[1]), path[512];
    snprintf(path, sizeof(path), "/api/v1/steplibs/%s/%s", name ? name : "",
             version ? version : "");
    free(name);
    free(version);
    int rc = api_call(c, "DELETE", path, NULL, NULL);
    if (rc == 0 && c->output == OUT_TABLE && !c->get)
        printf("deleted step library %s %s\n", a->argv[0], a->argv[1]);
    return rc;
}

/* Where a library's imperative steps run, an admin's choice over the policy. */
int cmd_steplibs_isolation(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char *esc = url_escape(a->argv[0]), path[512];
    snprintf(path, sizeof(path), "/api/v1/steplibs/%s/isolation", esc ? esc : "");
    free(esc);
    json_t *body = json_pack("{s:s}", "isolation", a->argv[1]), *lib = NULL;
    int rc = api_call(c, "PUT", path, body, &lib);
    json_decref(body);
    json_t *iso = json_object_get(json_array_get(json_object_get(lib, "versions"), 0), "isolation");
    if (rc == 0 && c->output == OUT_TABLE && !c->get)
        printf("step library %s: isolation %s, runs %s%s\n", a->argv[0],
               json_string_value(json_object_get(lib, "isolation")),
               json_string_value(json_object_get(iso, "runs")),
               json_is_true(json_object_get(iso, "restart_needed"))
                   ? " until the daemon starts again"
                   : "");
    else if (rc == 0)
        rc = print_result(c, lib, library_table, NULL);
    json_decref(lib);
    return rc;
}
