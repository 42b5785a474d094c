/* openapi.c - the OpenAPI 3.0.3 document, generated from the server's route table. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "build_config.h"
#include "http.h"

static const char error_schema[] =
    "{\"type\": \"object\", \"required\": [\"error\"], \"properties\": {\"error\": {"
    "\"type\": \"object\", \"required\": [\"code\", \"message\"], \"properties\": {"
    "\"code\": {\"type\": \"string\", \"description\": \"stable, machine-readable\"},"
    "\"message\": {\"type\": \"string\", \"description\": \"for humans\"},"
    "\"details\": {\"nullable\": true, \"description\": \"structured detail, or null\"}}}}}";

struct doc {
    json_t *paths;
    json_t *tags; /* name -> true, in order of first use */
};

static json_t *json_content(const char *media, json_t *schema)
{
    return json_pack("{s:{s:o}}", media, "schema", schema);
}

static json_t *error_response(const char *description)
{
    return json_pack(
        "{s:s, s:o}", "description", description, "content",
        json_content("application/json", json_pack("{s:s}", "$ref", "#/components/schemas/Error")));
}

/* "{id}" segments become path parameters. */
static json_t *path_parameters(const char *pattern)
{
    json_t *params = json_array();
    for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (!end)
            break;
        json_array_append_new(params, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 1,
                                                (size_t)(end - p - 1), "in", "path", "required", 1,
                                                "schema", "type", "string"));
    }
    return params;
}

static void operation_id(const http_route *r, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "%s", r->method);
    for (size_t i = 0; i < o; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    for (const char *p = r->pattern; *p && o + 1 < n; p++) {
        if (isalnum((unsigned char)*p))
            out[o++] = *p;
        else if (*p == '/' || *p == '.' || *p == '-')
            out[o++] = '_';
    }
    out[o] = '\0';
}

static json_t *request_body(const http_route *r)
{
    if (r->flags & HTTP_ROUTE_RAW_BODY)
        return json_pack(
            "{s:b, s:o}", "required", 1, "content",
            json_content("application/octet-stream",
                         json_pack("{s:s, s:s}", "type", "string", "format", "binary")));
    if (!r->request_schema && !(r->flags & HTTP_ROUTE_JSON_BODY))
        return NULL;
    json_t *schema = r->request_schema ? json_loads(r->request_schema, 0, NULL)
                                       : json_pack("{s:s}", "type", "object");
    return json_pack("{s:b, s:o}", "required", (r->flags & HTTP_ROUTE_JSON_BODY) ? 1 : 0, "content",
                     json_content("application/json", schema));
}

static json_t *responses(const http_route *r)
{
    int status = r->status ? r->status : 200;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    json_t *ok = json_pack("{s:s}", "description",
                           status == 201   ? "Created"
                           : status == 202 ? "Accepted"
                           : status == 204 ? "No Content"
                                           : "OK");
    if (r->response_schema && status != 204)
        json_object_set_new(
            ok, "content",
            json_content("application/json", json_loads(r->response_schema, 0, NULL)));
    json_t *res = json_pack("{s:o}", code, ok);
    if (r->role > ROLE_PUBLIC) {
        json_object_set_new(res, "401", error_response("Missing or invalid credentials"));
        json_object_set_new(res, "403", error_response("The caller's role is too low"));
    }
    json_object_set_new(res, "default", error_response("Error"));
    return res;
}

static json_t *operation(const http_route *r)
{
    char opid[256];
    operation_id(r, opid, sizeof(opid));
    const char *tag = r->tag ? r->tag : "default";
    json_t *op = json_pack("{s:s, s:s, s:[s], s:o, s:s}", "operationId", opid, "summary",
                           r->summary ? r->summary : "", "tags", tag, "parameters",
                           path_parameters(r->pattern), "x-required-role", http_role_name(r->role));
    json_t *body = request_body(r);
    if (body)
        json_object_set_new(op, "requestBody", body);
    json_object_set_new(op, "responses", responses(r));
    json_object_set_new(op, "security",
                        r->role > ROLE_PUBLIC ? json_pack("[{s:[]}]", "bearerAuth") : json_array());
    return op;
}

static void add_route(const http_route *r, void *ud)
{
    struct doc *d = ud;
    if (r->flags & HTTP_ROUTE_HIDDEN)
        return;
    json_t *item = json_object_get(d->paths, r->pattern);
    if (!item) {
        item = json_object();
        json_object_set_new(d->paths, r->pattern, item);
    }
    char method[16];
    snprintf(method, sizeof(method), "%s", r->method);
    for (char *p = method; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    json_object_set_new(item, method, operation(r));
    json_object_set_new(d->tags, r->tag ? r->tag : "default", json_true());
}

json_t *openapi_document(http_server *srv)
{
    struct doc d = {json_object(), json_object()};
    http_foreach_route(srv, add_route, &d);
    json_t *tags = json_array();
    const char *name;
    json_t *v;
    json_object_foreach(d.tags, name, v)
    {
        json_array_append_new(tags, json_pack("{s:s}", "name", name));
    }
    json_decref(d.tags);
    return json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:o, s:{s:{s:o}, s:{s:{s:s, s:s, s:s}}}}",
        "openapi", "3.0.3", "info", "title", "OpsConductor API", "version", OPSC_VERSION,
        "description",
        "REST API of opsconductord. Errors share one shape: "
        "{\"error\": {\"code\", \"message\", \"details\"}}.",
        "servers", "url", "/", "tags", tags, "paths", d.paths, "components", "schemas", "Error",
        json_loads(error_schema, 0, NULL), "securitySchemes", "bearerAuth", "type", "http",
        "scheme", "bearer", "bearerFormat", "JWT or API token");
}
