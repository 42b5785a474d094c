/* donboard.c - found hosts into targets: transport from what the scan saw, the host key pinned,
 * names from a template, a group to join, an optional connectivity test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_internal.h"
#include "events.h"
#include "fleet.h"
#include "log.h"
#include "strbuf.h"
#include "template.h"

#define ONBOARD_MAX  5000
#define DEFAULT_NAME "{{ hostname | default(address, true) }}"
/* What a name template sees: plain variables, the template language's roots for this use. */
static const char *const name_roots[] = {"address", "hostname", "hostnames", "os_family",
                                         "ports",   "index",    NULL};

typedef struct item {
    const char *host_id;
    json_t *host; /* stored record */
    json_t *rec;  /* target to insert */
    json_t *result;
    int rc;
    fleet_err e;
} item;

typedef struct job {
    discovery *d;
    item *items;
    size_t n;
    json_t *host_ids; /* the items' host_id point into it */
    json_t *created_ids;
    char group_id[40]; /* "" for none */
    json_t *group_before, *group_after;
    discovery_onboard_cb cb;
    void *ud;
    json_t *test_summary;
} job;

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- names ----------------------------------------------------------------------------------- */

static int compile_name(const char *text, tpl **out, dsc_err *e)
{
    tpl_opts o = {.mode = TPL_TEXT, .roots = name_roots};
    tpl_err te = {0};
    int rc = tpl_compile(out, text, strlen(text), &o, &te);
    if (rc == OPSC_ESYNTAX)
        return dsc_fail(e, 400, "invalid_onboard", "name_template", "name_template:%d:%d: %s",
                        te.line, te.col, te.msg);
    return rc;
}

static json_t *open_ports(const json_t *host)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(host, "ports"), i, p)
    {
        if (strcmp(str(p, "state") ? str(p, "state") : "", "open") == 0)
            json_array_append(out, json_object_get(p, "port"));
    }
    return out;
}

static int render_name(const tpl *t, const json_t *host, size_t index, char *out, size_t n,
                       fleet_err *e)
{
    json_t *names = json_object_get(host, "hostnames");
    const char *first = json_string_value(json_array_get(names, 0));
    json_t *ctx = json_pack("{s:O, s:s, s:o, s:s, s:o, s:I}", "address",
                            json_object_get(host, "address"), "hostname", first ? first : "",
                            "hostnames", names ? json_incref(names) : json_array(), "os_family",
                            str(host, "os_family") ? str(host, "os_family") : "", "ports",
                            open_ports(host), "index", (json_int_t)index);
    char *text = NULL;
    tpl_err te = {0};
    int rc = ctx ? tpl_render_str(t, ctx, &text, &te) : OPSC_ENOMEM;
    json_decref(ctx);
    if (rc < 0) {
        e->field = "name_template";
        snprintf(e->msg, sizeof(e->msg), "name_template: %s", te.msg[0] ? te.msg : "render failed");
        return OPSC_ESCHEMA;
    }
    char *s = text, *end = text + strlen(text);
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\t'))
        *--end = '\0';
    snprintf(out, n, "%s", s);
    free(text);
    if (!*out) {
        e->field = "name_template";
        snprintf(e->msg, sizeof(e->msg), "name_template rendered an empty name");
        return OPSC_ESCHEMA;
    }
    return 0;
}

/* ---- target bodies
 * -------------------------------------------------------------------------------- */

static bool has_open(const json_t *host, int port)
{
    json_t *ports = open_ports(host);
    bool found = false;
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) found = found || json_integer_value(p) == port;
    json_decref(ports);
    return found;
}

static const char *pick_transport(const json_t *host, const char *want)
{
    if (want)
        return want;
    if (json_is_object(json_object_get(host, "ssh")) || has_open(host, 22))
        return "ssh";
    if (json_is_object(json_object_get(host, "winrm")) || has_open(host, 5985) ||
        has_open(host, 5986))
        return "winrm";
    return NULL;
}

static int ssh_part(const json_t *host, json_t *body, fleet_err *e)
{
    const json_t *ssh = json_object_get(host, "ssh");
    const char *type = str(ssh, "host_key_type"), *fp = str(ssh, "host_key_fingerprint");
    if (!type || !fp) {
        e->field = "transport";
        snprintf(e->msg, sizeof(e->msg),
                 "the scans did not read this host's SSH host key, and onboarding pins it "
                 "(strict): scan the host again");
        return OPSC_ESCHEMA;
    }
    json_int_t port = json_integer_value(json_object_get(ssh, "port"));
    char key[200];
    snprintf(key, sizeof(key), "%s %s", type, fp);
    return json_object_update_new(body, json_pack("{s:I, s:[s], s:s}", "port", port ? port : 22,
                                                  "host_keys", key, "host_key_policy", "strict"));
}

static int winrm_part(const json_t *host, json_t *body)
{
    const json_t *w = json_object_get(host, "winrm");
    json_int_t port = json_integer_value(json_object_get(w, "port"));
    if (!port)
        port = has_open(host, 5985) ? 5985 : 5986;
    const char *scheme = str(w, "scheme") ? str(w, "scheme") : port == 5985 ? "http" : "https";
    json_t *opts = json_pack("{s:s}", "scheme", scheme);
    if (strcmp(scheme, "https") == 0 && str(w, "tls_cert_sha256"))
        json_object_set_new(opts, "cert_fingerprint", json_string(str(w, "tls_cert_sha256")));
    return json_object_update_new(body,
                                  json_pack("{s:I, s:o}", "port", port, "transport_options", opts));
}

static int build_body(const json_t *host, const donboard_opts *o, const char *name, json_t **out,
                      fleet_err *e)
{
    const char *tr = pick_transport(host, o->transport);
    if (!tr) {
        e->field = "transport";
        snprintf(e->msg, sizeof(e->msg), "the scans saw neither SSH nor WinRM on this host");
        return OPSC_ESCHEMA;
    }
    const char *os = str(host, "os_family");
    char desc[160];
    snprintf(desc, sizeof(desc), "onboarded by discovery from host %s (scan %s)", str(host, "id"),
             str(host, "last_scan_id") ? str(host, "last_scan_id") : "?");
    json_t *body = json_pack("{s:s, s:O, s:s, s:s, s:s, s:o, s:s}", "name", name, "address",
                             json_object_get(host, "address"), "transport", tr, "credential_id",
                             o->credential_id, "os_family",
                             os                         ? os
                             : strcmp(tr, "winrm") == 0 ? "windows"
                                                        : "linux",
                             "labels", o->labels ? json_incref((json_t *)o->labels) : json_object(),
                             "description", desc);
    int rc = body ? 0 : OPSC_ENOMEM;
    if (rc == 0)
        rc = strcmp(tr, "ssh") == 0 ? ssh_part(host, body, e) : winrm_part(host, body);
    if (rc < 0)
        json_decref(body);
    *out = rc < 0 ? NULL : body;
    return rc;
}

/* ---- the items ----------------------------------------------------------------------------------
 */

static json_t *error_result(item *it, int rc, const char *code)
{
    json_t *err = json_pack("{s:s, s:s}", "code",
                            code                 ? code
                            : rc == OPSC_EEXIST  ? "conflict"
                            : rc == OPSC_ESCHEMA ? "invalid_target"
                                                 : opsc_err_name(rc),
                            "message", it->e.msg[0] ? it->e.msg : opsc_strerror(rc));
    if (it->e.field)
        json_object_set_new(err, "field", json_string(it->e.field));
    return json_pack("{s:s, s:s?, s:s, s:o}", "host_id", it->host_id, "address",
                     str(it->host, "address"), "status", "error", "error", err);
}

typedef struct prep_ud {
    job *j;
    const donboard_opts *o;
    const tpl *name;
} prep_ud;

static void prepare_one(job *j, item *it, const dmatch *m, const donboard_opts *o, const tpl *t,
                        size_t index)
{
    const char *state = dhost_state(it->host, m);
    if (strcmp(state, "known") == 0) {
        it->result = json_pack("{s:s, s:O, s:s, s:s}", "host_id", it->host_id, "address",
                               json_object_get(it->host, "address"), "status", "exists",
                               "target_id", dmatch_target(m, it->host));
        return;
    }
    if (strcmp(state, "changed") == 0) {
        snprintf(
            it->e.msg, sizeof(it->e.msg),
            "the host's key or OS changed since it was first seen: check it, accept the change "
            "(POST /api/v1/discovery/hosts/%s/accept), then onboard it",
            it->host_id);
        it->result = error_result(it, OPSC_ESTATE, "host_changed");
        return;
    }
    char name[200];
    json_t *body = NULL;
    int rc = render_name(t, it->host, index, name, sizeof(name), &it->e);
    if (rc == 0)
        rc = build_body(it->host, o, name, &body, &it->e);
    if (rc == 0)
        rc = target_build(j->d->core->plugins, body, NULL, &it->rec, NULL, &it->e);
    json_decref(body);
    if (rc < 0)
        it->result = error_result(it, rc, NULL);
}

static int prep_txn(store_txn *txn, void *ud)
{
    prep_ud *p = ud;
    job *j = p->j;
    dmatch *m = NULL;
    int rc = dmatch_load(txn, &m);
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        item *it = &j->items[i];
        json_decref(it->host);
        it->host = NULL;
        if (store_get(txn, "discovery_hosts", it->host_id, &it->host) < 0) {
            snprintf(it->e.msg, sizeof(it->e.msg), "no discovered host %.40s", it->host_id);
            it->result = error_result(it, OPSC_ENOENT, "not_found");
            continue;
        }
        prepare_one(j, it, m, p->o, p->name, i + 1);
    }
    dmatch_free(m);
    return rc;
}

/* Refusals (a name taken, a credential that does not suit) leave the txn clean. */
static int insert_txn(store_txn *txn, void *ud)
{
    job *j = ud;
    json_array_clear(j->created_ids);
    for (size_t i = 0; i < j->n; i++) {
        item *it = &j->items[i];
        if (!it->rec || it->result)
            continue;
        memset(&it->e, 0, sizeof(it->e));
        it->rc = target_insert(txn, it->rec, target_credential_types(j->d->core->plugins, it->rec),
                               &it->e);
        if (it->rc < 0 && it->rc != OPSC_ESCHEMA && it->rc != OPSC_EEXIST)
            return it->rc;
        if (it->rc == 0)
            json_array_append(j->created_ids, json_object_get(it->rec, "id"));
    }
    if (!j->group_id[0] || json_array_size(j->created_ids) == 0)
        return 0;
    json_decref(j->group_before);
    json_decref(j->group_after);
    j->group_after = NULL;
    int rc = store_get(txn, "groups", j->group_id, &j->group_before);
    if (rc == 0)
        j->group_after = json_deep_copy(j->group_before);
    if (rc == 0)
        json_array_extend(json_object_get(j->group_after, "members"), j->created_ids);
    fleet_err ge = {0};
    return rc == 0 ? group_write(txn, j->group_before, j->group_after, 0, &ge) : rc;
}

/* ---- answering
 * ----------------------------------------------------------------------------------- */

static json_t *summary(job *j)
{
    json_t *items = json_array();
    size_t created = 0, existing = 0, failed = 0;
    for (size_t i = 0; i < j->n; i++) {
        item *it = &j->items[i];
        const char *status = str(it->result, "status");
        created += strcmp(status, "created") == 0;
        existing += strcmp(status, "exists") == 0;
        failed += strcmp(status, "error") == 0;
        json_array_append(items, it->result);
    }
    return json_pack("{s:I, s:I, s:I, s:o, s:O}", "created", (json_int_t)created, "failed",
                     (json_int_t)failed, "existing", (json_int_t)existing, "items", items, "test",
                     j->test_summary ? j->test_summary : json_null());
}

static void job_free(job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        json_decref(j->items[i].host);
        json_decref(j->items[i].rec);
        json_decref(j->items[i].result);
    }
    free(j->items);
    json_decref(j->host_ids);
    json_decref(j->created_ids);
    json_decref(j->group_before);
    json_decref(j->group_after);
    json_decref(j->test_summary);
    free(j);
}

static void finish(job *j)
{
    json_t *res = summary(j);
    j->cb(j->ud, res);
    json_decref(res);
    job_free(j);
}

static void on_test_result(void *ud, json_t *result)
{
    job *j = ud;
    const char *tid = str(result, "target_id");
    for (size_t i = 0; tid && i < j->n; i++) {
        item *it = &j->items[i];
        if (it->result &&
            strcmp(str(it->result, "target_id") ? str(it->result, "target_id") : "", tid) == 0 &&
            strcmp(str(it->result, "status"), "created") == 0) {
            json_t *t = json_pack("{s:O}", "ok", json_object_get(result, "ok"));
            if (json_object_get(result, "error"))
                json_object_set(t, "error", json_object_get(result, "error"));
            json_object_set_new(it->result, "test", t);
        }
    }
}

static void on_test_done(void *ud, json_t *sum)
{
    job *j = ud;
    j->test_summary = json_incref(sum);
    finish(j);
}

static void publish_created(job *j)
{
    events *ev = j->d->core->events;
    for (size_t i = 0; ev && i < j->n; i++) {
        item *it = &j->items[i];
        if (!it->result || strcmp(str(it->result, "status"), "created") != 0)
            continue;
        json_t *data = json_pack("{s:O, s:O}", "id", json_object_get(it->rec, "id"), "name",
                                 json_object_get(it->rec, "name"));
        events_publish(ev, "target.created", str(it->rec, "id"), data);
        json_decref(data);
    }
    if (ev && j->group_after) {
        json_t *data = json_pack("{s:O, s:O}", "id", json_object_get(j->group_after, "id"), "name",
                                 json_object_get(j->group_after, "name"));
        events_publish(ev, "group.updated", j->group_id, data);
        json_decref(data);
    }
}

/* Per-item results after the write. */
static void results(job *j, int rc)
{
    for (size_t i = 0; i < j->n; i++) {
        item *it = &j->items[i];
        if (it->result || !it->rec)
            continue;
        int irc = rc < 0 ? rc : it->rc;
        if (irc < 0)
            it->result = error_result(it, irc, NULL);
        else
            it->result =
                json_pack("{s:s, s:O, s:s, s:O, s:O}", "host_id", it->host_id, "address",
                          json_object_get(it->host, "address"), "status", "created", "target_id",
                          json_object_get(it->rec, "id"), "name", json_object_get(it->rec, "name"));
    }
}

typedef struct refs_ud {
    const donboard_opts *o;
    const char *missing;
} refs_ud;

static int refs_txn(store_txn *txn, void *ud)
{
    refs_ud *r = ud;
    json_t *rec = NULL;
    int rc = store_get(txn, "credentials", r->o->credential_id, &rec);
    json_decref(rec);
    r->missing = rc == OPSC_ENOENT ? "credential_id" : NULL;
    if (rc == 0 && r->o->group_id) {
        rec = NULL;
        rc = store_get(txn, "groups", r->o->group_id, &rec);
        json_decref(rec);
        r->missing = rc == OPSC_ENOENT ? "group_id" : NULL;
    }
    return rc;
}

static int check_refs(discovery *d, const donboard_opts *o, dsc_err *e)
{
    refs_ud r = {o, NULL};
    int rc = store_read(d->core->store, refs_txn, &r);
    if (r.missing)
        return dsc_fail(e, 400, "invalid_onboard", r.missing, "no %s %.40s",
                        r.missing[0] == 'c' ? "credential" : "group",
                        r.missing[0] == 'c' ? o->credential_id : o->group_id);
    return rc < 0 ? dsc_fail(e, 500, "internal", NULL, "%s", opsc_strerror(rc)) : 0;
}

static job *job_new(discovery *d, json_t *host_ids, const donboard_opts *o)
{
    job *j = calloc(1, sizeof(*j));
    size_t n = json_array_size(host_ids);
    if (!j || !(j->items = calloc(n ? n : 1, sizeof(item))) || !(j->created_ids = json_array())) {
        if (j)
            free(j->items);
        free(j);
        return NULL;
    }
    j->d = d;
    j->n = n;
    j->host_ids = json_incref(host_ids);
    snprintf(j->group_id, sizeof(j->group_id), "%s", o->group_id ? o->group_id : "");
    for (size_t i = 0; i < n; i++)
        j->items[i].host_id = json_string_value(json_array_get(host_ids, i));
    return j;
}

int donboard_run(discovery *d, json_t *host_ids, const donboard_opts *o, discovery_onboard_cb cb,
                 void *ud, dsc_err *e)
{
    tpl *name = NULL;
    int rc = check_refs(d, o, e);
    if (rc == 0)
        rc = compile_name(o->name_template ? o->name_template : DEFAULT_NAME, &name, e);
    job *j = rc == 0 ? job_new(d, host_ids, o) : NULL;
    if (rc == 0 && !j)
        rc = dsc_fail(e, 500, "internal", NULL, "out of memory");
    if (rc < 0) {
        tpl_free(name);
        return rc;
    }
    j->cb = cb;
    j->ud = ud;
    prep_ud p = {j, o, name};
    rc = store_read(d->core->store, prep_txn, &p);
    tpl_free(name);
    if (rc == 0)
        rc = store_write(d->core->store, insert_txn, j);
    results(j, rc);
    if (rc == 0)
        publish_created(j);
    log_info("discovery", "onboarding: %zu hosts, %zu targets created", j->n,
             json_array_size(j->created_ids));
    /* Each host's key goes to the target as the scan saw it: the group test
     * connects with strict checking, so a key that changed since fails it. */
    if (rc == 0 && o->test && json_array_size(j->created_ids) &&
        fleet_batch_start(d->core->fleet, j->created_ids, fleet_test_concurrency(d->core->fleet),
                          on_test_result, on_test_done, j, NULL) == 0)
        return 0;
    finish(j);
    return 0;
}

/* ---- the request
 * ------------------------------------------------------------------------------------ */

bool discovery_onboard(discovery *d, const json_t *body, discovery_onboard_cb cb, void *ud,
                       dsc_err *e)
{
    json_t *b = json_deep_copy(body), *ids = NULL;
    int rc = b ? dsc_validate(d->onboard_schema, b, "invalid_onboard", e) : OPSC_ENOMEM;
    json_t *filter = json_object_get(b, "filter");
    if (rc == 0 && !json_object_get(b, "host_ids") == !filter)
        rc = dsc_fail(e, 400, "invalid_onboard", "host_ids",
                      "give either host_ids or filter (one of them)");
    if (rc == 0 && filter) {
        dfilter f;
        rc = dfilter_parse(d, filter, &f, e);
        if (rc == 0)
            rc = dhosts_select(d, &f, ONBOARD_MAX, &ids);
    } else if (rc == 0) {
        ids = json_incref(json_object_get(b, "host_ids"));
    }
    donboard_opts o = {str(b, "credential_id"),      str(b, "group_id"),
                       json_object_get(b, "labels"), str(b, "name_template"),
                       str(b, "transport"),          json_is_true(json_object_get(b, "test"))};
    if (rc == 0)
        rc = donboard_run(d, ids, &o, cb, ud, e);
    json_decref(ids);
    json_decref(b);
    if (rc < 0 && !e->status)
        dsc_fail(e, 500, "internal", NULL, "%s", opsc_strerror(rc));
    return rc == 0;
}
