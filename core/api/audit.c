/* audit.c - GET /api/v1/audit: the audit log, newest first, filtered and paged (admins). */
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "audit.h"
#include "core.h"
#include "http.h"
#include "identity.h"
#include "rest.h"
#include "util.h"

static bool time_param(http_req *req, const char *name, int64_t *out)
{
    const char *v = http_req_query(req, name);
    *out = 0;
    if (v && rfc3339_parse(v, out) < 0) {
        http_respond_error(req, 400, "bad_request", NULL, "%s must be RFC 3339 time", name);
        return false;
    }
    return true;
}

struct page {
    audit_query q;
    json_t *items;
    char next[40];
};

static int list_txn(store_txn *txn, void *ud)
{
    struct page *p = ud;
    return audit_list(txn, &p->q, &p->items, p->next);
}

static int list_audit(http_req *req)
{
    struct page p = {{0}, NULL, ""};
    if (!rest_page(req, &p.q.limit, &p.q.cursor) || !time_param(req, "since", &p.q.since_ms) ||
        !time_param(req, "until", &p.q.until_ms))
        return HTTP_DONE;
    p.q.actor = http_req_query(req, "actor");
    p.q.action = http_req_query(req, "action");
    p.q.outcome = http_req_query(req, "outcome");
    p.q.object = http_req_query(req, "object");
    p.q.client = http_req_query(req, "client");
    struct opsc_core *c = http_req_app(req);
    audit_flush(c->audit); /* what happened a moment ago is listed too */
    int rc = store_read(c->store, list_txn, &p);
    if (rc < 0)
        rest_error(req, rc, "audit log");
    else
        http_respond_json(req, 200, rest_list(p.items, p.next));
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", "/api/v1/audit", ROLE_ADMIN, list_audit, 0, "audit",
     "Audit log, newest first; filters actor, action, outcome, object, client, since, until", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"created_at\":{\"type\":"
     "\"string\"},\"actor\":{\"type\":\"string\"},\"actor_id\":{\"type\":\"string\"},"
     "\"client\":{\"type\":\"string\"},\"action\":{\"type\":\"string\"},\"object\":{\"type\":"
     "\"string\"},\"outcome\":{\"type\":\"string\",\"enum\":[\"success\",\"failure\","
     "\"denied\",\"throttled\"]},\"status\":{\"type\":\"integer\"},\"detail\":{\"type\":"
     "\"string\"}}}},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
};

int api_audit_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}

int api_identity_register(struct opsc_core *c)
{
    int rc = api_login_register(c);
    if (rc == 0)
        rc = api_users_register(c);
    if (rc == 0)
        rc = api_tokens_register(c);
    if (rc == 0)
        rc = api_credentials_register(c);
    if (rc == 0)
        rc = api_audit_register(c);
    return rc;
}
