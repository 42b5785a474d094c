/* bench_template.c - renders per second of typical step templates, and their compile cost.
 *
 * Uses the shipped templates (compiled in from the step files) with realistic
 * parameters: a one-value service step, a branch-heavy user step, and a
 * shell command with a loop over environment variables and a raw command.
 * Prints one line per case. Run: build/tests/bench/bench_template [seconds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_steps.h"
#include "jsonschema.h"
#include "linux_steps.h"
#include "template.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct bench_case {
    const char *name;
    const char *text;
    const char *raw_params;
    const char *params;
};

static void run_case(const struct bench_case *c, double seconds)
{
    tpl_opts opts = {TPL_POSIX, c->raw_params, NULL};
    tpl *t;
    tpl_err err;
    size_t len = strlen(c->text);
    long compiles = 0;
    double t0 = now_s(), elapsed;
    do {
        if (tpl_compile(&t, c->text, len, &opts, &err) != 0) {
            fprintf(stderr, "%s: %d:%d %s\n", c->name, err.line, err.col, err.msg);
            exit(1);
        }
        tpl_free(t);
        compiles++;
    } while ((elapsed = now_s() - t0) < seconds / 4);
    double compile_rate = compiles / elapsed;

    tpl_compile(&t, c->text, len, &opts, &err);
    json_t *ctx = json_pack("{s:o, s:{s:s, s:s, s:{s:s}, s:{}}, s:{}, s:{s:s}}", "params",
                            json_loads(c->params, 0, NULL), "target", "address", "10.0.0.5",
                            "os_family", "linux", "labels", "env", "prod", "facts", "steps", "run",
                            "id", "01900000-0000-7000-8000-0000000000aa");
    strbuf out = STRBUF_INIT;
    long renders = 0;
    size_t bytes = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < 100; i++) {
            sb_reset(&out);
            if (tpl_render(t, ctx, &out, &err) != 0) {
                fprintf(stderr, "%s: render %s\n", c->name, err.msg);
                exit(1);
            }
            bytes = out.len;
        }
        renders += 100;
    } while ((elapsed = now_s() - t0) < seconds);
    printf("%-22s %9.0f renders/s  %6.2f us/render  %5zu bytes out  %8.0f compiles/s\n", c->name,
           renders / elapsed, elapsed / renders * 1e6, bytes, compile_rate);
    sb_free(&out);
    json_decref(ctx);
    tpl_free(t);
}

static void run_schema(double seconds)
{
    jschema *s;
    char err[256];
    if (jschema_compile_text(&s, S_user_present_params, err, sizeof(err)) != 0) {
        fprintf(stderr, "schema: %s\n", err);
        exit(1);
    }
    json_t *doc = json_loads("{\"name\": \"deploy\", \"uid\": 1500, \"groups\": [\"docker\", "
                             "\"adm\"], \"shell\": \"/bin/bash\", \"home\": \"/srv/deploy\"}",
                             0, NULL);
    long n = 0;
    double t0 = now_s(), elapsed;
    do {
        for (int i = 0; i < 100; i++)
            if (jschema_validate(s, doc, 0, NULL, NULL, 0, NULL) != 0)
                exit(1);
        n += 100;
    } while ((elapsed = now_s() - t0) < seconds);
    printf("%-22s %9.0f validations/s  %6.2f us/validation\n", "schema user.present", n / elapsed,
           elapsed / n * 1e6);
    json_decref(doc);
    jschema_free(s);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    static const struct bench_case cases[] = {
        {"linux.service.start", T_service_detect_sh T_service_start_sh, NULL,
         "{\"name\": \"nginx\"}"},
        {"linux.user.present", T_user_present_sh, NULL,
         "{\"name\": \"deploy\", \"uid\": 1500, \"groups\": [\"docker\", \"adm\"], \"shell\": "
         "\"/bin/bash\", \"home\": \"/srv/deploy\", \"comment\": \"it's automated\", \"system\": "
         "false, \"create_home\": true}"},
        {"core.shell.command", T_prelude_sh T_shell_command_sh, "command",
         "{\"command\": \"systemctl reload nginx && echo 'reloaded'\", \"env\": {\"LANG\": \"C\", "
         "\"NOTE\": \"it's $(not) run\", \"A\": \"1\", \"B\": \"2\"}, \"cwd\": \"/etc/nginx\", "
         "\"creates\": \"/var/run/flag\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i], seconds);
    run_schema(seconds);
    return 0;
}
