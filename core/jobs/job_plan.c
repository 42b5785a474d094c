/* job_plan.c - a job version compiled for running: step types, conditions, parameter schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "job.h"
#include "plugin_host.h"
#include "steptype.h"

job_plan *job_plan_ref(job_plan *p)
{
    p->refs++;
    return p;
}

void job_plan_free(job_plan *p)
{
    if (!p || --p->refs > 0)
        return;
    for (size_t i = 0; i < p->nsteps; i++) {
        tpl_free(p->steps[i].when);
        json_decref(p->steps[i].deferred);
    }
    free(p->steps);
    jschema_free(p->params_schema);
    json_decref(p->secret_params);
    json_decref(p->rec);
    free(p);
}

static int compile_step(plugin_host *h, job_plan *p, size_t i, const json_t *known, json_t *errors)
{
    job_step *s = &p->steps[i];
    json_t *js = json_array_get(json_object_get(p->rec, "steps"), i);
    char base[32], err[320];
    snprintf(base, sizeof(base), "/steps/%zu", i);
    s->id = json_string_value(json_object_get(js, "id"));
    s->name = json_string_value(json_object_get(js, "name"));
    s->type = json_string_value(json_object_get(js, "type"));
    s->params = json_object_get(js, "params");
    s->timeout_ms = json_integer_value(json_object_get(js, "timeout_s")) * 1000;
    s->retries = (int)json_integer_value(json_object_get(js, "retries"));
    s->retry_delay_ms = json_integer_value(json_object_get(js, "retry_delay_s")) * 1000;
    const char *of = json_string_value(json_object_get(js, "on_failure"));
    s->continue_on_failure = of && strcmp(of, "continue") == 0;
    s->idempotent = json_is_true(json_object_get(js, "idempotent"));
    s->deferred = json_array();
    job_templated_paths(s->params, "", s->deferred);
    s->st = s->type ? plugin_host_steptype(h, s->type, &s->lib, err, sizeof(err)) : NULL;
    if (!s->st) {
        char path[48];
        snprintf(path, sizeof(path), "%s/type", base);
        job_err_add(errors, path, s->id, "type", 0, 0, "%s", s->type ? err : "no type");
        return OPSC_ESCHEMA;
    }
    size_t before = json_array_size(errors);
    job_step_params_check(s->st, s->params, known, base, s->id, errors);
    s->when_text = json_string_value(json_object_get(js, "when"));
    if (s->when_text && job_when_compile(s->when_text, &s->when, err, sizeof(err)) < 0)
        job_err_add(errors, base, s->id, "when", 0, 0, "%s", err);
    return json_array_size(errors) > before ? OPSC_ESCHEMA : 0;
}

static int compile_params(job_plan *p, json_t *known, json_t *errors)
{
    json_t *params = json_object_get(p->rec, "parameters");
    size_t i;
    json_t *m;
    json_array_foreach(params, i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        json_object_set_new(known, n, json_true());
        if (json_is_true(json_object_get(m, "secret")))
            json_array_append_new(p->secret_params, json_string(n));
    }
    json_t *schema = job_params_schema(params);
    char why[384];
    int rc = schema ? jschema_compile(&p->params_schema, schema, why, sizeof(why)) : OPSC_ENOMEM;
    if (rc < 0)
        job_err_add(errors, "/parameters", NULL, "parameters", 0, 0, "%s", why);
    json_decref(schema);
    return rc;
}

int job_plan_compile(plugin_host *h, const json_t *rec, job_plan **out, json_t **errors)
{
    *out = NULL;
    *errors = json_array();
    job_plan *p = calloc(1, sizeof(*p));
    json_t *known = json_object();
    if (!p || !known || !*errors || !(p->rec = json_deep_copy(rec)) ||
        !(p->secret_params = json_array())) {
        if (p)
            p->refs = 1;
        json_decref(known);
        job_plan_free(p);
        return OPSC_ENOMEM;
    }
    p->refs = 1;
    p->job_id = json_string_value(json_object_get(p->rec, "id"));
    p->version = json_integer_value(json_object_get(p->rec, "version"));
    p->max_parallel = (int)json_integer_value(json_object_get(p->rec, "max_parallel"));
    p->batch_size = (int)json_integer_value(json_object_get(p->rec, "batch_size"));
    p->timeout_ms = json_integer_value(json_object_get(p->rec, "timeout_s")) * 1000;
    p->allow_concurrent = json_is_true(json_object_get(p->rec, "allow_concurrent"));
    int rc = compile_params(p, known, *errors);
    json_t *steps = json_object_get(p->rec, "steps");
    p->nsteps = json_array_size(steps);
    p->steps = calloc(p->nsteps ? p->nsteps : 1, sizeof(*p->steps));
    if (!p->steps)
        rc = OPSC_ENOMEM;
    for (size_t i = 0; rc != OPSC_ENOMEM && i < p->nsteps; i++)
        if (compile_step(h, p, i, known, *errors) < 0)
            rc = OPSC_ESCHEMA;
    json_decref(known);
    if (rc < 0 || json_array_size(*errors) > 0) {
        job_plan_free(p);
        return rc < 0 ? rc : OPSC_ESCHEMA;
    }
    json_decref(*errors);
    *errors = NULL;
    *out = p;
    return 0;
}

bool job_plan_idempotent(const job_plan *p)
{
    for (size_t i = 0; i < p->nsteps; i++)
        if (!p->steps[i].idempotent)
            return false;
    return p->nsteps > 0;
}

int job_plan_params(const job_plan *p, const json_t *given, json_t **out, json_t **errors)
{
    *errors = NULL;
    *out = given ? json_deep_copy(given) : json_object();
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        *errors = json_array();
        job_err_add(*errors, "/params", NULL, "params", 0, 0, "params must be an object");
        return OPSC_ESCHEMA;
    }
    jschema_err errs[16];
    size_t ne = 0;
    int rc = jschema_validate(p->params_schema, *out, JSCHEMA_DEFAULTS, "", errs, 16, &ne);
    if (rc == 0)
        return 0;
    json_decref(*out);
    *out = NULL;
    *errors = json_array();
    for (size_t i = 0; i < ne && i < 16; i++) {
        char path[300], field[300];
        snprintf(path, sizeof(path), "/params%.250s", errs[i].path);
        snprintf(field, sizeof(field), "params%.250s", errs[i].path);
        for (char *c = field; *c; c++)
            if (*c == '/')
                *c = '.';
        job_err_add(*errors, path, NULL, field, 0, 0, "%s", errs[i].msg);
    }
    return rc;
}
