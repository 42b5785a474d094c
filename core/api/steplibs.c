/* steplibs.c - /api/v1/steplibs: step libraries and their step types; upload and delete (admins).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "api.h"
#include "auth.h"
#include "b64.h"
#include "core.h"
#include "events.h"
#include "steptype.h"
#include "http.h"
#include "install.h"
#include "isolation.h"
#include "jobs_routes.h"
#include "log.h"
#include "rest.h"
#include "store.h"
#include "trust.h"

static plugin_install *installs_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->steplibs;
}

static plugin_host *host_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->plugins;
}

/* ---- views ---------------------------------------------------------------------- */

static json_t *schema_json(const char *text)
{
    return text ? json_loads(text, 0, NULL) : json_null(); /* compiled at load: it parses */
}

static json_t *names_json(const char *list)
{
    json_t *a = json_array();
    for (const char *p = list; p && *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        size_t end = n;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end)
            json_array_append_new(a, json_stringn(p, end));
        p += n;
    }
    return a;
}

static json_t *step_json(const steptype *st)
{
    static const char *const rules[] = {"none", "json_last_line", "key_value", "stdout",
                                        "stdout_key_value"};
    const opsc_step_type *d = st->desc;
    json_t *families = json_array();
    if (st->linux_ok)
        json_array_append_new(families, json_string("linux"));
    if (st->windows_ok)
        json_array_append_new(families, json_string("windows"));
    unsigned rule = (unsigned)d->output_rule;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "type", st->name, "name", d->name,
                  "summary", d->summary ? d->summary : "", "kind",
                  d->run ? "imperative" : "declarative", "os_families", families, "params_schema",
                  schema_json(d->params_schema), "outputs_schema", schema_json(d->outputs_schema));
    if (!d->run) {
        json_object_set_new(o, "output_rule",
                            json_string(rule < sizeof(rules) / sizeof(*rules) ? rules[rule] : "?"));
        json_object_set_new(o, "raw_params", names_json(st->raw_params));
    }
    return o;
}

/* A member of an upload's record, or null (bundled libraries have none). */
static json_t *record_member(const install_lib *lib, const char *key)
{
    json_t *v = json_object_get(lib->record, key);
    return v ? json_incref(v) : json_null();
}

static json_t *version_json(plugin_host *h, const install_lib *lib)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < lib->compiled->ntypes; i++)
        json_array_append_new(steps, step_json(&lib->compiled->types[i]));
    return json_pack(
        "{s:s, s:s, s:i, s:s, s:s, s:b, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "name",
        lib->desc->name, "version", lib->desc->version, "major", atoi(lib->desc->version),
        "summary", lib->desc->summary ? lib->desc->summary : "", "plugin", lib->plugin, "bundled",
        lib->bundled, "path", lib->path, "sha256", lib->sha256, "signer",
        record_member(lib, "signer"), "installed_at", record_member(lib, "installed_at"),
        "installed_by", record_member(lib, "installed_by"), "steps", steps, "isolation",
        plugin_host_isolation_json(h, lib->desc->name, lib->desc->version, lib->path));
}

/* enum iso_override, as the API says it. */
static const char *const override_names[] = {"default", "process", "in_process"};

struct collect {
    plugin_host *h;
    const char *only; /* one library's name, or NULL */
    json_t *libs;     /* name -> library object, in first-seen order */
};

static int cmp_versions(const void *a, const void *b)
{
    const char *va = json_string_value(json_object_get(*(json_t *const *)a, "version"));
    const char *vb = json_string_value(json_object_get(*(json_t *const *)b, "version"));
    return plugin_semver_cmp(vb, va); /* newest first */
}

static void collect_one(const install_lib *lib, void *ud)
{
    struct collect *c = ud;
    const char *name = lib->desc->name;
    if (c->only && strcmp(c->only, name) != 0)
        return;
    json_t *l = json_object_get(c->libs, name);
    if (!l) {
        const plugin_reg *latest = plugin_host_steplib(c->h, name, 0);
        l = json_pack("{s:s, s:s, s:{}, s:[], s:s}", "name", name, "latest",
                      ((const opsc_steplib *)latest->desc)->version, "majors", "versions",
                      "isolation", override_names[plugin_host_isolation_override_of(c->h, name)]);
        json_object_set_new(c->libs, name, l);
    }
    char major[16];
    snprintf(major, sizeof(major), "%d", atoi(lib->desc->version));
    const plugin_reg *pinned = plugin_host_steplib(c->h, name, atoi(lib->desc->version));
    json_object_set_new(json_object_get(l, "majors"), major,
                        json_string(((const opsc_steplib *)pinned->desc)->version));
    json_array_append_new(json_object_get(l, "versions"), version_json(c->h, lib));
}

/* The libraries (all, or the one named), versions newest first. */
static json_t *libraries(http_req *req, const char *only)
{
    struct collect c = {host_of(req), only, json_object()};
    install_foreach(installs_of(req), collect_one, &c);
    json_t *items = json_array(), *l;
    const char *name;
    json_object_foreach(c.libs, name, l)
    {
        json_t *v = json_object_get(l, "versions");
        size_t n = json_array_size(v);
        json_t **sorted = malloc((n ? n : 1) * sizeof(*sorted));
        for (size_t i = 0; i < n; i++)
            sorted[i] = json_incref(json_array_get(v, i));
        qsort(sorted, n, sizeof(*sorted), cmp_versions);
        json_array_clear(v);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(v, sorted[i]);
        free(sorted);
        json_array_append(items, l);
    }
    json_decref(c.libs);
    return items;
}

/* ---- reading -------------------------------------------------------------------- */

static int list_steplibs(http_req *req)
{
    json_t *body = rest_list(libraries(req, NULL), NULL);
    json_object_set_new(body, "refused", json_deep_copy(install_refused(installs_of(req))));
    http_respond_json(req, 200, rest_hide_paths(req, body));
    return HTTP_DONE;
}

static int get_steplib(http_req *req)
{
    const char *name = http_req_param(req, "name");
    json_t *items = libraries(req, name);
    if (json_array_size(items) == 0)
        http_respond_error(req, 404, "not_found", NULL, "no step library '%s' is loaded", name);
    else
        http_respond_json(req, 200, rest_hide_paths(req, json_deep_copy(json_array_get(items, 0))));
    json_decref(items);
    return HTTP_DONE;
}

static int get_version(http_req *req)
{
    const char *name = http_req_param(req, "name"), *version = http_req_param(req, "version");
    install_lib lib;
    if (!install_find(installs_of(req), name, version, &lib))
        http_respond_error(req, 404, "not_found", NULL, "step library %s %s is not loaded", name,
                           version);
    else
        http_respond_json(req, 200, rest_hide_paths(req, version_json(host_of(req), &lib)));
    return HTTP_DONE;
}

/* ---- uploading -------------------------------------------------------------------- */

static int upload_status(const char *code)
{
    if (strcmp(code, "conflict") == 0)
        return 409;
    if (strcmp(code, "unavailable") == 0)
        return 503;
    if (strcmp(code, "internal") == 0)
        return 500;
    return 400;
}

/* "steplib.installed" on the bus: notifications may tell operators. */
static void publish_installed(http_req *req, const install_result *r)
{
    struct opsc_core *c = http_req_app(req);
    json_t *d =
        json_pack("{s:s, s:s, s:s}", "name", r->name, "version", r->version, "by", api_caller(req));
    if (d && c->events)
        events_publish(c->events, "steplib.installed", r->name, d);
    json_decref(d);
}

static void upload_done(const install_result *r, void *ud)
{
    http_req *req = ud;
    install_lib lib;
    if (r->rc < 0) {
        http_respond_error(req, upload_status(r->code), r->code, steptype_error_details(r->message),
                           "%s", r->message);
    } else if (!install_find(installs_of(req), r->name, r->version, &lib)) {
        http_respond_error(req, 500, "internal", NULL, "the library went away");
    } else {
        char object[80], loc[256];
        snprintf(object, sizeof(object), "%s@%s", r->name, r->version);
        auth_set_object(req, object);
        json_t *body = version_json(host_of(req), &lib);
        json_object_set(body, "warnings", r->warnings);
        /* Without a required signature nobody vouched for this code: say so. */
        json_object_set_new(body, "verified", json_boolean(r->verified));
        if (r->unchanged) {
            http_respond_json(req, 200, body);
        } else {
            publish_installed(req, r);
            snprintf(loc, sizeof(loc), "/api/v1/steplibs/%s/%s", r->name, r->version);
            http_set_header(req, "Location", loc);
            http_respond_json(req, 201, body);
        }
    }
    http_req_unref(req);
}

/* X-Opsc-Sha256 (or ?sha256=): 64 hex digits, lowercased into out. */
static bool claimed_sha256(http_req *req, char out[65])
{
    const char *v = http_req_header(req, "X-Opsc-Sha256");
    if (!v)
        v = http_req_query(req, "sha256");
    bool ok = v && strlen(v) == 64;
    for (size_t i = 0; ok && i < 64; i++) {
        ok = isxdigit((unsigned char)v[i]);
        out[i] = (char)tolower((unsigned char)v[i]);
    }
    out[64] = '\0';
    if (!ok)
        http_respond_error(req, 400, "bad_request", NULL,
                           "send the file's SHA-256 as 64 hex digits in X-Opsc-Sha256 (or the "
                           "sha256 query parameter)");
    return ok;
}

/* X-Opsc-Signature: base64 of 64 bytes; *len 0 when absent. */
static bool signature(http_req *req, uint8_t sig[TRUST_SIG_LEN + 3], size_t *len)
{
    const char *v = http_req_header(req, "X-Opsc-Signature");
    *len = 0;
    if (!v)
        return true;
    if (strlen(v) == B64_LEN(TRUST_SIG_LEN) && b64_decode(v, strlen(v), sig, len) == 0 &&
        *len == TRUST_SIG_LEN)
        return true;
    http_respond_error(req, 400, "bad_signature", NULL,
                       "X-Opsc-Signature must be the base64 of a 64-byte Ed25519 signature");
    return false;
}

static int upload_steplib(http_req *req)
{
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    uint8_t sig[TRUST_SIG_LEN + 3];
    install_request rq = {.data = body, .len = len};
    if (!body || len == 0) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "the body must be the step library's .so file or .tar.gz bundle "
                           "(Content-Type: application/octet-stream)");
        return HTTP_DONE;
    }
    if (!claimed_sha256(req, rq.sha256) || !signature(req, sig, &rq.signature_len))
        return HTTP_DONE;
    rq.signature = rq.signature_len ? sig : NULL;
    const auth_principal *p = auth_principal_of(req);
    rq.actor = p ? p->username : "";
    char object[80];
    snprintf(object, sizeof(object), "sha256:%.16s", rq.sha256);
    auth_set_object(req, object);
    http_req_ref(req);
    int rc = install_upload(installs_of(req), &rq, upload_done, req);
    if (rc < 0) {
        http_req_unref(req);
        if (rc == OPSC_ESTATE)
            rest_busy(req, "the daemon is stopping");
        else
            rest_error(req, rc, "upload");
    }
    return rc < 0 ? HTTP_DONE : HTTP_ASYNC;
}

/* ---- deleting -------------------------------------------------------------------- */

static int delete_version(http_req *req)
{
    const char *name = http_req_param(req, "name"), *version = http_req_param(req, "version");
    char err[1024], object[80];
    json_t *jobs = NULL;
    snprintf(object, sizeof(object), "%s@%s", name, version);
    auth_set_object(req, object);
    int rc = install_delete(installs_of(req), name, version, &jobs, err, sizeof(err));
    if (rc == 0)
        http_respond_empty(req, 204);
    else if (rc == OPSC_ENOENT)
        http_respond_error(req, 404, "not_found", NULL, "%s", err);
    else if (rc == OPSC_EPERM)
        http_respond_error(req, 409, "bundled", NULL, "%s", err);
    else if (rc == OPSC_EBUSY)
        http_respond_error(req, 409, "pinned", json_pack("{s:o}", "jobs", jobs), "%s", err);
    else
        http_respond_opsc_error(req, rc, "%s", err);
    return HTTP_DONE;
}

/* A library quarantined after repeated crashes of its step host runs again. */
static int enable_version(http_req *req)
{
    const char *name = http_req_param(req, "name"), *version = http_req_param(req, "version");
    char object[80];
    snprintf(object, sizeof(object), "%s@%s", name, version);
    auth_set_object(req, object);
    int rc = plugin_host_isolation_reenable(host_of(req), name, version);
    if (rc == OPSC_ENOENT)
        http_respond_error(req, 404, "not_found", NULL,
                           "step library %s %s has not run out of process", name, version);
    else if (rc == OPSC_ESTATE)
        http_respond_error(req, 409, "not_quarantined", NULL,
                           "step library %s %s is not quarantined", name, version);
    else
        http_respond_json(
            req, 200,
            plugin_host_isolation_json(host_of(req), name, version,
                                       plugin_host_loaded_path(host_of(req), name, version)));
    return HTTP_DONE;
}

/* ---- where it runs: an admin's override ------------------------------------------ */

#define OVERRIDES_KEY "steplib_isolation" /* meta: {name: "process" | "in_process"} */

struct override_write {
    const char *name;
    int ov;
};

static int write_override(store_txn *txn, void *ud)
{
    const struct override_write *w = ud;
    const void *val;
    size_t n;
    int rc = store_kv_get(txn, "meta", OVERRIDES_KEY, strlen(OVERRIDES_KEY), &val, &n);
    json_t *all = rc == 0 ? json_loadb(val, n, 0, NULL) : json_object();
    if (rc < 0 && rc != OPSC_ENOENT) {
        json_decref(all);
        return rc;
    }
    if (!json_is_object(all)) {
        json_decref(all);
        return OPSC_ECORRUPT;
    }
    if (w->ov == ISO_OV_DEFAULT)
        json_object_del(all, w->name);
    else
        json_object_set_new(all, w->name, json_string(override_names[w->ov]));
    char *text = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
    rc = text ? store_kv_put(txn, "meta", OVERRIDES_KEY, strlen(OVERRIDES_KEY), text, strlen(text))
              : OPSC_ENOMEM;
    free(text);
    json_decref(all);
    return rc;
}

static int read_overrides(store_txn *txn, void *ud)
{
    json_t **out = ud;
    const void *val;
    size_t n;
    int rc = store_kv_get(txn, "meta", OVERRIDES_KEY, strlen(OVERRIDES_KEY), &val, &n);
    if (rc == 0)
        *out = json_loadb(val, n, 0, NULL);
    if (rc == 0 && !json_is_object(*out))
        rc = OPSC_ECORRUPT;
    return rc == OPSC_ENOENT ? 0 : rc;
}

int api_steplibs_load_isolation(struct opsc_core *c)
{
    json_t *all = NULL, *v;
    const char *name;
    int rc = store_read(c->store, read_overrides, &all);
    json_object_foreach(all, name, v)
    {
        const char *mode = json_string_value(v);
        int ov = mode && strcmp(mode, "process") == 0      ? ISO_OV_PROCESS
                 : mode && strcmp(mode, "in_process") == 0 ? ISO_OV_IN_PROCESS
                                                           : ISO_OV_DEFAULT;
        if (rc == 0 && ov != ISO_OV_DEFAULT)
            rc = plugin_host_isolation_override(c->plugins, name, ov);
        if (rc == 0)
            log_info("steplibs", "step library %s runs %s, as an admin chose", name,
                     ov == ISO_OV_PROCESS ? "out of process" : "in process");
    }
    json_decref(all);
    return rc;
}

struct may_run_here {
    plugin_host *h;
    const char *name;
    char refused[160]; /* "name version": one that may not run in the daemon */
};

static void check_here(const install_lib *lib, void *ud)
{
    struct may_run_here *m = ud;
    if (!m->refused[0] && strcmp(lib->desc->name, m->name) == 0 &&
        !plugin_host_isolation_may_run_here(m->h, lib->path))
        snprintf(m->refused, sizeof(m->refused), "%s %s", lib->desc->name, lib->desc->version);
}

static int parse_override(json_t *body)
{
    const char *v = json_string_value(json_object_get(body, "isolation"));
    for (int i = ISO_OV_DEFAULT; v && json_object_size(body) == 1 && i <= ISO_OV_IN_PROCESS; i++)
        if (strcmp(v, override_names[i]) == 0)
            return i;
    return -1;
}

static int set_override(http_req *req)
{
    const char *name = http_req_param(req, "name");
    int ov = parse_override(http_req_json(req));
    auth_set_object(req, name);
    if (ov < 0) {
        http_respond_error(req, 400, "invalid",
                           json_pack("{s:s, s:[s, s, s]}", "field", "isolation", "valid",
                                     "default", "process", "in_process"),
                           "expected {\"isolation\": \"process\" | \"in_process\" | "
                           "\"default\"}");
        return HTTP_DONE;
    }
    json_t *items = libraries(req, name);
    bool found = json_array_size(items) > 0;
    json_decref(items);
    struct may_run_here m = {host_of(req), name, ""};
    if (found && ov == ISO_OV_IN_PROCESS)
        install_foreach(installs_of(req), check_here, &m);
    struct override_write w = {name, ov};
    int rc = !found || m.refused[0]
                 ? 0
                 : store_write(((struct opsc_core *)http_req_app(req))->store, write_override, &w);
    if (rc == 0 && found && !m.refused[0])
        rc = plugin_host_isolation_override(host_of(req), name, ov);
    if (!found)
        http_respond_error(req, 404, "not_found", NULL, "no step library '%s' is loaded", name);
    else if (m.refused[0])
        http_respond_error(req, 409, "isolation_refused", json_pack("{s:s}", "field", "isolation"),
                           "%s is an upload or a bundle: its code never runs in the daemon "
                           "(in_process only for the daemon's own libraries, or under "
                           "[steplibs] isolation = never)",
                           m.refused);
    else if (rc < 0)
        rest_error(req, rc, "the isolation of the step library");
    else
        get_steplib(req);
    return HTTP_DONE;
}

/* ---- routes ---------------------------------------------------------------------- */

#define SCHEMA_OBJ "{\"type\":[\"object\",\"null\"]}"
#define STEP_SCHEMA                                                                                \
    "{\"type\":\"object\",\"properties\":{\"type\":{\"type\":\"string\"},\"name\":{\"type\":"      \
    "\"string\"},\"summary\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\",\"enum\":["       \
    "\"declarative\",\"imperative\"]},\"os_families\":{\"type\":\"array\",\"items\":{\"type\":"    \
    "\"string\"}},\"params_schema\":" SCHEMA_OBJ ",\"outputs_schema\":" SCHEMA_OBJ                 \
    ",\"output_rule\":{\"type\":\"string\"},\"raw_params\":{\"type\":\"array\",\"items\":{"        \
    "\"type\":\"string\"}}}}"
#define VERSION_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"version\":{\"type\":"   \
    "\"string\"},\"major\":{\"type\":\"integer\"},\"summary\":{\"type\":\"string\"},\"plugin\":{"  \
    "\"type\":\"string\"},\"bundled\":{\"type\":\"boolean\"},\"path\":{\"type\":\"string\","       \
    "\"description\":\"admins "                                                                    \
    "only\"},\"verified\":{\"type\":\"boolean\",\"description\":\"upload "                         \
    "answers: a trusted publisher key checked its signature\"},"                                   \
    "\"sha256\":{\"type\":\"string\"},\"signer\":{\"type\":[\"object\",\"null\"],\"properties\":{" \
    "\"fingerprint\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"}}},\"installed_at\":{"    \
    "\"type\":[\"string\",\"null\"]},\"installed_by\":{\"type\":[\"string\",\"null\"]},"           \
    "\"warnings\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"steps\":{\"type\":"       \
    "\"array\",\"items\":" STEP_SCHEMA "},\"isolation\":" ISOLATION_SCHEMA "}}"
#define ISOLATION_SCHEMA                                                                           \
    "{\"type\":\"object\",\"description\":\"where its imperative steps run: process (a "           \
    "sandboxed opsc-stephost) or in_process\",\"properties\":{\"runs\":{\"type\":\"string\","      \
    "\"enum\":[\"process\",\"in_process\"]},\"pid\":{\"type\":[\"integer\",\"null\"]},"            \
    "\"restarts\":{\"type\":\"integer\"},\"crashes\":{\"type\":\"integer\",\"description\":"       \
    "\"in the last minute\"},\"quarantined\":{\"type\":\"boolean\"},\"reason\":{\"type\":["        \
    "\"string\",\"null\"]},\"override\":{\"type\":[\"string\",\"null\"],\"enum\":[\"process\","   \
    "\"in_process\",null],\"description\":\"an admin's choice (PUT .../isolation)\"},"           \
    "\"restart_needed\":{\"type\":\"boolean\",\"description\":\"in_process takes effect at the " \
    "next start of the daemon\"}}}"
#define LIBRARY_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"latest\":{\"type\":"    \
    "\"string\"},\"majors\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}," \
    "\"isolation\":" OVERRIDE_ENUM ",\"versions\":{\"type\":\"array\",\"items\":" VERSION_SCHEMA  \
    "}}}"
#define OVERRIDE_ENUM                                                                              \
    "{\"type\":\"string\",\"enum\":[\"default\",\"process\",\"in_process\"]}"
#define OVERRIDE_SCHEMA                                                                            \
    "{\"type\":\"object\",\"required\":[\"isolation\"],\"additionalProperties\":false,"            \
    "\"properties\":{\"isolation\":" OVERRIDE_ENUM "}}"

static const http_route routes[] = {
    {"GET", "/api/v1/steplibs", ROLE_VIEWER, list_steplibs, 0, "steplibs",
     "Step libraries with their versions and step types (schemas as JSON)", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" LIBRARY_SCHEMA
     "},\"next_cursor\":{\"type\":\"null\"},\"refused\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"object\",\"properties\":{\"path\":{\"type\":\"string\"},\"sha256\":{\"type\":\"string\"},"
     "\"reason\":{\"type\":\"string\"}}}}}}"},
    {"POST", "/api/v1/steplibs", ROLE_ADMIN, upload_steplib, HTTP_ROUTE_RAW_BODY, "steplibs",
     "Install a step library .so or .tar.gz bundle (steplib.json and executables; body; "
     "X-Opsc-Sha256 required, X-Opsc-Signature base64 Ed25519); 201, or 200 when the same file "
     "is installed already",
     NULL, VERSION_SCHEMA, 201},
    {"GET", "/api/v1/steplibs/{name}", ROLE_VIEWER, get_steplib, 0, "steplibs",
     "One step library with its versions, newest first", NULL, LIBRARY_SCHEMA},
    {"GET", "/api/v1/steplibs/{name}/{version}", ROLE_VIEWER, get_version, 0, "steplibs",
     "One version of a step library", NULL, VERSION_SCHEMA},
    {"DELETE", "/api/v1/steplibs/{name}/{version}", ROLE_ADMIN, delete_version, 0, "steplibs",
     "Delete an installed version no job needs (409 with the jobs otherwise; bundled: 409)", NULL,
     NULL, 204},
    {"POST", "/api/v1/steplibs/{name}/{version}/enable", ROLE_ADMIN, enable_version, 0, "steplibs",
     "Re-enable a version quarantined after its step host crashed 5 times in 60 s (409 when it "
     "is not quarantined)",
     NULL, ISOLATION_SCHEMA},
    {"PUT", "/api/v1/steplibs/{name}/isolation", ROLE_ADMIN, set_override, HTTP_ROUTE_JSON_BODY,
     "steplibs",
     "Where a step library's imperative steps run, all its versions, over [steplibs] isolation: "
     "process (from the next step), in_process (the daemon's own libraries only, or any under "
     "isolation = never: 409 otherwise; from the next step when the daemon has it loaded, else "
     "from its next start) or default. Kept in the store",
     OVERRIDE_SCHEMA, LIBRARY_SCHEMA},
};

int api_steplibs_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
