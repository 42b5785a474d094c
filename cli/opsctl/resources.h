/* resources.h - the API's collections as opsctl knows them, and the verbs every one shares. */
#ifndef OPSCTL_RESOURCES_H
#define OPSCTL_RESOURCES_H

#include "opsctl.h"

/* `lookup` value: GET <path>/<name> answers the record itself. */
#define LOOKUP_DIRECT ((const char *)1)

struct resource_ref {
    const char *field;   /* a body field holding ids: "credential_id", "channels" (an array),
                            "auto_onboard.*.group_id" (in every item) */
    const resource *res; /* whose id: a name given there is resolved */
};

struct resource {
    const char *name;       /* "targets": the command group */
    const char *singular;   /* "target": in messages */
    const char *path;       /* "/api/v1/targets" */
    const char *name_field; /* field that names a record ("name", "username"); NULL: ids only */
    const char *lookup;     /* list filter that narrows a lookup by name; NULL: list all;
                               LOOKUP_DIRECT */
    const column *columns;
    size_t default_limit; /* list shows this many without --limit/--all; 0: all */
    struct resource_ref refs[6];
};

extern const resource res_credentials, res_schedules, res_users, res_tokens, res_steplibs,
    res_audit;
/* notifications.c, discovery.c */
extern const resource res_channels, res_rules, res_deliveries, res_hooks, res_scans, res_hosts,
    res_profiles;

/* The collection of a command group ("targets"), or NULL. */
const resource *resource_by_name(const char *name);
bool is_id(const char *s);
/* "<path>/<id><suffix>" of the NAME|ID `ref`. */
int resource_path(opsctl *c, const resource *r, const char *ref, const char *suffix, char *path,
                  size_t n);
/* METHOD on "<path>/<id><suffix>" of the NAME|ID `ref`; the answer in *out
 * (may be NULL: dropped). */
int resource_call(opsctl *c, const resource *r, const char *ref, const char *method,
                  const char *suffix, json_t **out);
/* The names in r's reference fields of `body` replaced by their ids. */
int resolve_refs(opsctl *c, const resource *r, json_t *body);
/* List `path` (with `query`) honouring --limit and --all, as r's table. */
int list_items(opsctl *c, const resource *r, args *a, const char *path, const char *query);
/* "created target web (id)" in table mode; the record with -o json or --get. */
int print_done(opsctl *c, const resource *r, const char *verb, json_t *rec);

int cmd_list(opsctl *c, const command *cmd, args *a);
int cmd_show(opsctl *c, const command *cmd, args *a);
int cmd_create(opsctl *c, const command *cmd, args *a);
int cmd_update(opsctl *c, const command *cmd, args *a);
int cmd_delete(opsctl *c, const command *cmd, args *a);

#endif
