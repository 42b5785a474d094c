/* notify_render.c - messages from templates: the defaults per channel type, a rule's overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "notify_data.h"
#include "notify_internal.h"

/* The members of a notice's payload are the roots templates see. */
static const char *const message_roots[] = {
    "event", "run",     "job",  "schedule", "target", "failed_targets", "user", "steplib",
    "link",  "grouped", "host", "change",   NULL};

int nt_tpl_compile(const char *text, tpl **out, tpl_err *te)
{
    tpl_opts o = {.mode = TPL_TEXT, .roots = message_roots};
    return tpl_compile(out, text, strlen(text), &o, te);
}

int nt_render_init(notify *n, char *err, size_t errlen)
{
    struct {
        const char *name, *text;
        tpl **slot;
    } defs[] = {
        {"subject", T_subject_txt, &n->subject_tpl},
        {"text", T_text_txt, &n->text_tpl},
        {"slack", T_slack_txt, &n->slack_tpl},
        {"teams", T_teams_txt, &n->teams_tpl},
    };
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        tpl_err te = {0};
        int rc = nt_tpl_compile(defs[i].text, defs[i].slot, &te);
        if (rc < 0) {
            snprintf(err, errlen, "built-in message %s: %d:%d: %s", defs[i].name, te.line, te.col,
                     te.msg);
            return rc;
        }
    }
    return 0;
}

void nt_render_free(notify *n)
{
    tpl_free(n->subject_tpl);
    tpl_free(n->text_tpl);
    tpl_free(n->slack_tpl);
    tpl_free(n->teams_tpl);
    n->subject_tpl = n->text_tpl = n->slack_tpl = n->teams_tpl = NULL;
}

static const tpl *default_text(const notify *n, const char *type)
{
    if (strcmp(type, "slack") == 0)
        return n->slack_tpl;
    if (strcmp(type, "teams") == 0)
        return n->teams_tpl;
    return n->text_tpl;
}

/* A subject is one line: line breaks become spaces, the ends are trimmed. */
static void one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t len = strlen(s);
    while (len && s[len - 1] == ' ')
        s[--len] = '\0';
}

/* A rule's template that fails on this payload (a value it names is
 * missing) must not lose the notice: the default renders instead. */
static int render_one(const tpl *over, const tpl *def, const json_t *payload, const char *what,
                      char **out)
{
    tpl_err te = {0};
    int rc = over ? tpl_render_str(over, payload, out, &te) : OPSC_ENOENT;
    if (rc < 0 && over)
        log_warn("notify", "the rule's %s template failed (%d:%d: %s): the default is used", what,
                 te.line, te.col, te.msg);
    if (rc < 0 && def)
        rc = tpl_render_str(def, payload, out, &te);
    if (rc < 0)
        log_error("notify", "rendering the %s failed: %d:%d: %s", what, te.line, te.col, te.msg);
    return rc;
}

/* Slack reads <!channel>, <@U1> and <url|label> in message text: a line of a
 * target's output must not ping everyone. Its data is escaped (& < >), the
 * template's own markup is not. */
static json_t *slack_escaped(const json_t *v)
{
    if (json_is_string(v)) {
        strbuf sb = STRBUF_INIT;
        for (const char *p = json_string_value(v); *p; p++) {
            if (*p == '&')
                sb_puts(&sb, "&amp;");
            else if (*p == '<')
                sb_puts(&sb, "&lt;");
            else if (*p == '>')
                sb_puts(&sb, "&gt;");
            else
                sb_append(&sb, p, 1);
        }
        json_t *out = json_string(sb.buf ? sb.buf : "");
        sb_free(&sb);
        return out;
    }
    json_t *out = json_is_object(v) ? json_object() : json_is_array(v) ? json_array() : NULL;
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, m) json_object_set_new(out, k, slack_escaped(m));
    else if (json_is_array(v))
        json_array_foreach(v, i, m) json_array_append_new(out, slack_escaped(m));
    return out ? out : json_incref((json_t *)v);
}

int nt_render(notify *n, const char *type, const nrule *r, const json_t *payload, char **subject,
              char **text, char **body, char *err, size_t errlen)
{
    *subject = *text = *body = NULL;
    int rc = render_one(r ? r->subject : NULL, n->subject_tpl, payload, "subject", subject);
    json_t *escaped = strcmp(type, "slack") == 0 ? slack_escaped(payload) : NULL;
    if (rc == 0)
        rc = render_one(r ? r->text : NULL, default_text(n, type), escaped ? escaped : payload,
                        "text", text);
    json_decref(escaped);
    if (rc == 0 && r && r->body)
        rc = render_one(r->body, NULL, payload, "body", body);
    if (rc < 0) {
        snprintf(err, errlen, "the message could not be rendered: %s", opsc_strerror(rc));
        free(*subject);
        free(*text);
        free(*body);
        *subject = *text = *body = NULL;
        return rc;
    }
    one_line(*subject);
    return 0;
}
