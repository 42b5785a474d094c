/* exec_dryrun.c - dry runs: every step rendered per target (commands, imperative parameters),
 * secrets redacted, nothing run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "steptype.h"

static json_t *dry_step(ex_target *t, const job_step *s)
{
    json_t *e = json_pack("{s:s, s:s}", "id", s->id, "type", s->type);
    char err[512];
    if (s->when_text)
        json_object_set_new(e, "when", json_string(s->when_text));
    json_t *params = ex_step_params(t, s, err, sizeof(err));
    if (!params) {
        bool later = strstr(err, "steps") != NULL;
        json_object_set_new(e, "error", json_string(err));
        if (later)
            json_object_set_new(e, "note",
                                json_string("uses outputs of earlier steps: rendered "
                                            "when the step runs"));
        return e;
    }
    if (s->st->desc->run) {
        json_object_set_new(e, "imperative", json_true());
        ex_redact_json(t->run, params);
        json_object_set_new(e, "params", params);
        return e;
    }
    json_t *ctx = json_pack("{s:o, s:O, s:O, s:O}", "params", params, "target", t->rec, "steps",
                            t->steps_ctx, "run", t->run->ctx_run);
    char *command = NULL;
    tpl_err te = {0};
    int rc = tpl_render_str(steptype_template(s->st, t->os_family), ctx, &command, &te);
    json_decref(ctx);
    if (rc < 0) {
        snprintf(err, sizeof(err), "%d:%d: %s", te.line, te.col, te.msg);
        json_object_set_new(e, "error", json_string(err));
    } else {
        command = ex_redact(t->run, command);
        json_object_set_new(e, "command", json_string(command));
    }
    free(command);
    return e;
}

int exec_dry_run(exec *ex, const exec_run_spec *spec, json_t **out, char *err, size_t errlen)
{
    ex_run *r = NULL;
    *out = NULL;
    int rc = ex_prepare(ex, spec, NULL, &r, err, errlen);
    if (rc < 0)
        return rc;
    json_object_set_new(r->ctx_run, "id", json_string("dry-run"));
    json_t *targets = json_array();
    for (uint32_t i = 0; i < r->ntargets; i++) {
        ex_target *t = &r->targets[i];
        json_t *steps = json_array();
        for (size_t s = 0; s < r->plan->nsteps; s++)
            json_array_append_new(steps, dry_step(t, &r->plan->steps[s]));
        json_array_append_new(targets,
                              json_pack("{s:s, s:O, s:O, s:o}", "target_id", t->id, "name",
                                        json_object_get(t->rec, "name"), "os_family",
                                        json_object_get(t->rec, "os_family"), "steps", steps));
    }
    *out = json_pack("{s:b, s:s, s:I, s:O, s:o, s:O}", "dry_run", 1, "job_id", r->plan->job_id,
                     "job_version", (json_int_t)r->plan->version, "params",
                     json_object_get(r->hdr, "params"), "targets", targets, "disabled_targets",
                     json_object_get(r->hdr, "disabled_targets"));
    ex_run_free(r);
    return *out ? 0 : OPSC_ENOMEM;
}

