/* exec_ctx.c - what templates see (params, target, steps, run), step parameters rendered and
 * checked, and secret parameters resolved through the vault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "steptype.h"
#include "store.h"
#include "util.h"
#include "vault.h"

json_t *ex_ctx(ex_target *t)
{
    return json_pack("{s:O, s:O, s:O, s:O}", "params", t->run->ctx_params, "target", t->rec,
                     "steps", t->steps_ctx, "run", t->run->ctx_run);
}

/* ---- step parameters ------------------------------------------------------------------------ */

static const char *prop_type(const steptype *st, const char *name)
{
    const json_t *props = st->params ? jschema_properties(st->params) : NULL;
    return json_string_value(json_object_get(json_object_get(props, name), "type"));
}

/* A whole-value template such as "{{ params.port }}" renders text; where the
 * step wants a number or a boolean, the text is read as one. */
void ex_params_coerce(const steptype *st, const json_t *deferred, json_t *params)
{
    size_t i;
    json_t *p;
    json_array_foreach(deferred, i, p)
    {
        const char *path = json_string_value(p);
        if (path[0] != '/' || strchr(path + 1, '/') || strchr(path + 1, '~'))
            continue;
        const char *name = path + 1, *type = prop_type(st, name);
        json_t *v = json_object_get(params, name);
        if (!type || !json_is_string(v))
            continue;
        json_t *parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        bool fits = (strcmp(type, "integer") == 0 && json_is_integer(parsed)) ||
                    (strcmp(type, "number") == 0 && json_is_number(parsed)) ||
                    (strcmp(type, "boolean") == 0 && json_is_boolean(parsed));
        if (fits)
            json_object_set(params, name, parsed);
        json_decref(parsed);
    }
}

static int validate(const steptype *st, json_t *params, const json_t *skip, char *err,
                    size_t errlen)
{
    if (!st->params)
        return 0;
    jschema_err errs[16];
    size_t ne = 0;
    if (jschema_validate(st->params, params, skip ? 0 : JSCHEMA_DEFAULTS, "", errs, 16, &ne) == 0)
        return 0;
    for (size_t i = 0; i < ne && i < 16; i++) {
        if (skip && job_path_deferred(skip, errs[i].path))
            continue;
        char field[300];
        snprintf(field, sizeof(field), "params%.280s", errs[i].path);
        for (char *c = field; *c; c++)
            if (*c == '/')
                *c = '.';
        snprintf(err, errlen, "%s: %s", field, errs[i].msg);
        return OPSC_ESCHEMA;
    }
    return 0;
}

json_t *ex_step_params(ex_target *t, const job_step *s, char *err, size_t errlen)
{
    json_t *ctx = ex_ctx(t), *out = NULL;
    int rc = ctx ? steptype_render_params(s->st, s->params, ctx, t->os_family, &out, err, errlen)
                 : OPSC_ENOMEM;
    json_decref(ctx);
    if (rc < 0) {
        if (rc == OPSC_ENOMEM)
            snprintf(err, errlen, "out of memory");
        ex_redact_inplace(t->run, err);
        return NULL;
    }
    ex_params_coerce(s->st, s->deferred, out);
    if (validate(s->st, out, NULL, err, errlen) < 0) {
        ex_redact_inplace(t->run, err);
        json_decref(out);
        return NULL;
    }
    return out;
}

/* Before the run: what can be checked for targets of `family` without
 * earlier outputs. Values that use steps.* stay unchecked until the step. */
int ex_precheck_step(const job_step *s, const char *family, json_t *ctx, char *err, size_t errlen)
{
    json_t *rendered = json_object(), *skip = json_array();
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)s->params, k, v)
    {
        json_t *one = json_pack("{s:O}", k, v), *r = NULL;
        char e[512];
        int r1 = steptype_render_params(s->st, one, ctx, family, &r, e, sizeof(e));
        bool uses_steps = json_is_string(v) && strstr(json_string_value(v), "steps");
        if (r1 == 0) {
            json_object_update(rendered, r);
        } else if (uses_steps && r1 == OPSC_EINVAL) {
            char path[300];
            snprintf(path, sizeof(path), "/%.290s", k);
            json_array_append_new(skip, json_string(path));
            json_object_set(rendered, k, v);
        } else {
            snprintf(err, errlen, "%s", e);
            rc = OPSC_ESCHEMA;
        }
        json_decref(one);
        json_decref(r);
        if (rc < 0)
            break;
    }
    if (rc == 0) {
        ex_params_coerce(s->st, s->deferred, rendered);
        rc = validate(s->st, rendered, skip, err, errlen);
    }
    json_decref(rendered);
    json_decref(skip);
    return rc;
}

/* ---- secret parameters ------------------------------------------------------------------ */

struct cred_find {
    const char *ref;
    json_t *rec;
};

static int cred_txn(store_txn *txn, void *ud)
{
    struct cred_find *f = ud;
    int rc = uuid_valid(f->ref) ? store_get(txn, "credentials", f->ref, &f->rec) : OPSC_ENOENT;
    if (rc == OPSC_ENOENT && strlen(f->ref) < 256) {
        char id[40];
        rc = store_index_get(txn, "credentials_by_name", f->ref, id);
        if (rc == 0)
            rc = store_get(txn, "credentials", id, &f->rec);
    }
    return rc;
}

static int secret_value(exec *ex, const char *name, const char *ref, char **out, char *err,
                        size_t errlen)
{
    struct cred_find f = {ref, NULL};
    int rc = store_read(ex->store, cred_txn, &f);
    const char *type = json_string_value(json_object_get(f.rec, "type"));
    if (rc == 0 && (!type || strcmp(type, "secret") != 0)) {
        snprintf(err, errlen, "parameter '%s': credential '%s' is of type %s, not secret", name,
                 ref, type ? type : "?");
        rc = OPSC_ESCHEMA;
    } else if (rc < 0) {
        snprintf(err, errlen, "parameter '%s': no credential '%s'", name, ref);
        rc = rc == OPSC_ENOENT ? OPSC_ESCHEMA : rc;
    }
    json_t *secrets = NULL;
    if (rc == 0 && (rc = vault_secrets_open(ex->vault, f.rec, &secrets)) < 0)
        snprintf(err, errlen, "parameter '%s': credential '%s' cannot be decrypted: %s", name, ref,
                 opsc_strerror(rc));
    const char *value = json_string_value(json_object_get(secrets, "value"));
    if (rc == 0 && !value) {
        snprintf(err, errlen, "parameter '%s': credential '%s' has no value", name, ref);
        rc = OPSC_ESCHEMA;
    }
    if (rc == 0 && !(*out = strdup(value)))
        rc = OPSC_ENOMEM;
    vault_secrets_free(secrets);
    json_decref(f.rec);
    return rc;
}

int ex_secrets_resolve(exec *ex, ex_run *r, json_t *params, char *err, size_t errlen)
{
    size_t i;
    json_t *n;
    json_array_foreach(r->plan->secret_params, i, n)
    {
        const char *name = json_string_value(n);
        const char *ref = json_string_value(json_object_get(params, name));
        char *value = NULL;
        if (!ref)
            continue;
        int rc = secret_value(ex, name, ref, &value, err, errlen);
        if (rc == 0)
            rc = ex_redact_add(r, value);
        if (rc == 0)
            json_object_set_new(r->ctx_params, name, json_string(value));
        if (value) {
            secure_zero(value, strlen(value));
            free(value);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}
