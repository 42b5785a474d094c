/* local_targets.c - [executor] local_targets: who may create, change, test and run jobs on targets
 * whose commands run on the appliance itself. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "core.h"
#include "exec.h"
#include "fleet_routes.h"
#include "http.h"

_Static_assert(ROLE_OPERATOR == EXEC_ROLE_OPERATOR && ROLE_ADMIN == EXEC_ROLE_ADMIN,
               "exec.h numbers roles as http.h does");

const char *api_local_denied(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    const auth_principal *p = auth_principal_of(req);
    int policy = c->cfg.executor.local_targets;
    if (policy == LOCAL_TARGETS_DISABLED)
        return "local targets are disabled ([executor] local_targets = disabled)";
    if (!exec_local_allowed(policy, p ? p->role : 0))
        return policy == LOCAL_TARGETS_ADMIN
                   ? "targets of the local transport run commands on this appliance: that needs "
                     "the admin role ([executor] local_targets = admin)"
                   : "targets of the local transport need the operator role";
    return NULL;
}

bool api_is_local_target(const json_t *rec)
{
    const char *t = json_string_value(json_object_get(rec, "transport"));
    return t && strcmp(t, "local") == 0;
}

void api_local_refuse(http_req *req, const char *why)
{
    http_respond_error(req, 403, "forbidden", json_pack("{s:s}", "field", "transport"), "%s", why);
}
