/* stepkit.c - shared helpers of the shipped step libraries (parameters, outputs, reboot-and-wait).
 */
#include "stepkit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int stepkit_register(const opsc_host_api *api, const opsc_config *cfg, const opsc_steplib *lib,
                     const char *component)
{
    static const opsc_cfg_entry no_settings[] = {{NULL}};
    char err[512];
    int unused = 0;
    int rc = api->config_bind(cfg, no_settings, &unused, err, sizeof(err));
    if (rc < 0) {
        api->log(component, OPSC_LOG_ERROR, "%s", err);
        return rc;
    }
    return api->register_steplib(lib, NULL);
}

json_t *stepkit_params(const opsc_host_api *h, opsc_step_ctx *ctx)
{
    const char *text = h->step_params_json(ctx);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

const char *stepkit_str(const json_t *params, const char *name)
{
    return json_string_value(json_object_get(params, name));
}

double stepkit_num(const json_t *params, const char *name, double def)
{
    const json_t *v = json_object_get(params, name);
    return json_is_number(v) ? json_number_value(v) : def;
}

bool stepkit_bool(const json_t *params, const char *name, bool def)
{
    const json_t *v = json_object_get(params, name);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

int stepkit_output(const opsc_host_api *h, opsc_step_ctx *ctx, const char *key, json_t *value)
{
    char *text = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(value);
    if (!text)
        return OPSC_ENOMEM;
    int rc = h->step_set_output(ctx, key, text);
    free(text);
    return rc;
}

int stepkit_exec(const opsc_host_api *h, opsc_step_ctx *ctx, const char *command,
                 uint32_t timeout_ms, opsc_step_exec_result *res)
{
    opsc_step_exec_opts opts = {.size = sizeof(opts), .timeout_ms = timeout_ms};
    memset(res, 0, sizeof(*res));
    res->size = sizeof(*res);
    return h->step_exec(ctx, command, &opts, res);
}

char *stepkit_trimmed_out(const opsc_step_exec_result *res)
{
    const char *s = res->out ? res->out : "";
    size_t a = 0, b = res->out ? res->out_len : 0;
    while (a < b && isspace((unsigned char)s[a]))
        a++;
    while (b > a && isspace((unsigned char)s[b - 1]))
        b--;
    char *out = malloc(b - a + 1);
    if (out) {
        memcpy(out, s + a, b - a);
        out[b - a] = '\0';
    }
    return out;
}

/* ---- reboot and wait ------------------------------------------------------------ */

/* The boot marker, or NULL when the target does not answer (yet). */
static char *boot_marker(const opsc_host_api *h, opsc_step_ctx *ctx, const char *cmd,
                         uint32_t timeout_ms)
{
    opsc_step_exec_result res;
    if (stepkit_exec(h, ctx, cmd, timeout_ms, &res) != 0 || res.exit_code != 0)
        return NULL;
    char *m = stepkit_trimmed_out(&res);
    if (m && !*m) {
        free(m);
        m = NULL;
    }
    return m;
}

typedef struct wait_plan {
    int64_t start, deadline;
    uint32_t interval_ms;
} wait_plan;

static uint32_t remaining_ms(const opsc_host_api *h, const wait_plan *w, uint32_t cap)
{
    int64_t left = w->deadline - h->now_ms();
    if (left <= 0)
        return 0;
    return left < cap ? (uint32_t)left : cap;
}

/* Poll until the marker differs from `before`; returns the new one or NULL. */
static char *await_new_boot(const opsc_host_api *h, opsc_step_ctx *ctx, const char *cmd,
                            const char *before, const wait_plan *w, int *rc)
{
    unsigned attempts = 0;
    for (;;) {
        if (h->step_sleep(ctx, w->interval_ms) == OPSC_ECANCELED || h->step_cancelled(ctx)) {
            *rc = OPSC_ECANCELED;
            return NULL;
        }
        uint32_t budget = remaining_ms(h, w, 30000);
        if (budget == 0)
            break;
        attempts++;
        char *now = boot_marker(h, ctx, cmd, budget);
        if (now && strcmp(now, before) != 0) {
            h->step_log(ctx, OPSC_LOG_INFO, "target is back after %u checks", attempts);
            return now;
        }
        free(now);
    }
    *rc = h->step_fail(ctx, "the target did not come back with a new boot within the timeout");
    return NULL;
}

static int await_test(const opsc_host_api *h, opsc_step_ctx *ctx, const char *test,
                      const wait_plan *w)
{
    for (;;) {
        uint32_t budget = remaining_ms(h, w, 30000);
        if (budget == 0)
            return h->step_fail(ctx, "the target is back but its test command did not succeed "
                                     "within the timeout");
        opsc_step_exec_result res;
        if (stepkit_exec(h, ctx, test, budget, &res) == 0 && res.exit_code == 0)
            return 0;
        if (h->step_sleep(ctx, w->interval_ms) == OPSC_ECANCELED)
            return OPSC_ECANCELED;
    }
}

static int report(const opsc_host_api *h, opsc_step_ctx *ctx, const char *marker,
                  const wait_plan *w)
{
    int rc = stepkit_output(h, ctx, "changed", json_true());
    if (rc == 0)
        rc = stepkit_output(h, ctx, "boot_id", json_string(marker));
    if (rc == 0)
        rc = stepkit_output(h, ctx, "elapsed_s",
                            json_real((double)(h->now_ms() - w->start) / 1000.0));
    return rc;
}

int stepkit_reboot_wait(const opsc_host_api *h, opsc_step_ctx *ctx, const stepkit_reboot *spec)
{
    json_t *p = stepkit_params(h, ctx);
    if (!p)
        return OPSC_ENOMEM;
    wait_plan w = {.start = h->now_ms()};
    w.deadline = w.start + (int64_t)(stepkit_num(p, "timeout_s", 600) * 1000.0);
    w.interval_ms = (uint32_t)(stepkit_num(p, "poll_interval_s", 5) * 1000.0);
    const char *test = stepkit_str(p, "test_command");
    int rc = 0;
    char *before = boot_marker(h, ctx, spec->boot_marker_cmd, 30000), *after = NULL;
    opsc_step_exec_result res;
    if (!before) {
        rc = h->step_fail(ctx, "cannot read the boot marker before rebooting");
    } else if ((rc = stepkit_exec(h, ctx, spec->reboot_cmd, 30000, &res)) != 0 ||
               res.exit_code != 0) {
        rc = h->step_fail(ctx, "the reboot command failed (exit %d)", rc ? -1 : res.exit_code);
    } else {
        h->step_log(ctx, OPSC_LOG_INFO, "reboot issued, waiting for the target to return");
        after = await_new_boot(h, ctx, spec->boot_marker_cmd, before, &w, &rc);
    }
    if (after)
        rc = await_test(h, ctx, test ? test : spec->default_test_cmd, &w);
    if (after && rc == 0)
        rc = report(h, ctx, after, &w);
    free(before);
    free(after);
    json_decref(p);
    return rc;
}
