/* cluster.c - GET /api/v1/cluster: this node's identity, the cluster's nodes and its leader. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "api.h"
#include "api_data.h"
#include "build_config.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "rest.h"
#include "selector.h"
#include "store.h"
#include "util.h"

#define NODE_ID_FILE "node_id"

/* The node id outlives restarts (membership rows, leases and work items
 * name it), so it is made once and kept beside the store's own files. A
 * file that is there but unreadable or not an id stops the start: quietly
 * making a new identity would look like a new node to the cluster. */
int cluster_node_id_load(const char *data_dir, char id[40], char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (fs_join(path, sizeof(path), data_dir, NODE_ID_FILE)) {
        snprintf(err, errlen, "data directory path too long: %s", data_dir);
        return OPSC_E2BIG;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, 128, &text, &len);
    if (rc == OPSC_ENOENT) {
        if ((rc = uuid7_new(id)) < 0 || (rc = fs_write_file(path, id, strlen(id), 0600)) < 0) {
            snprintf(err, errlen, "cannot write the node id to %s: %s", path, opsc_strerror(rc));
            return rc;
        }
        log_info("cluster", "new node id %s (kept in %s)", id, path);
        return 0;
    }
    if (rc == 0) {
        text[strcspn(text, "\r\n")] = '\0';
        if (!uuid_valid(text))
            rc = OPSC_ECORRUPT;
        else
            snprintf(id, 40, "%s", text);
    }
    free(text);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s (expected one UUID; delete the file to make a new node id)",
                 path, opsc_strerror(rc));
    return rc;
}

/* ---- labels -------------------------------------------------------------------------------- */

/* The next ','-separated item of *s, trimmed, into buf ("" at the end). */
static bool next_item(const char **s, char *buf, size_t n, char *err, size_t errlen)
{
    const char *p = *s + strspn(*s, " \t");
    size_t len = strcspn(p, ",");
    *s = p[len] ? p + len + 1 : p + len;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len >= n) {
        snprintf(err, errlen, "'%.40s...' is too long", p);
        return false;
    }
    snprintf(buf, n, "%.*s", (int)len, p);
    return true;
}

/* "dc=eu, rack=3" -> {"dc": "eu", "rack": "3"}. */
static int parse_labels(const char *text, json_t *out, char *err, size_t errlen)
{
    char item[300];
    while (*text) {
        if (!next_item(&text, item, sizeof(item), err, errlen))
            return OPSC_ESCHEMA;
        char *eq = strchr(item, '=');
        if (!*item)
            continue;
        if (!eq || eq == item) {
            snprintf(err, errlen, "'%s' is not key=value", item);
            return OPSC_ESCHEMA;
        }
        *eq = '\0';
        if (json_object_get(out, item)) {
            snprintf(err, errlen, "label '%s' is given twice", item);
            return OPSC_ESCHEMA;
        }
        json_object_set_new(out, item, json_string(eq + 1));
    }
    return labels_check(out, err, errlen);
}

/* "dc, rack" -> ["dc", "rack"]. */
static int parse_keys(const char *text, json_t *out, char *err, size_t errlen)
{
    char item[300];
    while (*text) {
        if (!next_item(&text, item, sizeof(item), err, errlen) ||
            (*item && !label_key_valid(item, err, errlen)))
            return OPSC_ESCHEMA;
        if (*item)
            json_array_append_new(out, json_string(item));
    }
    return 0;
}

int cluster_labels_load(struct opsc_core *c, char *err, size_t errlen)
{
    const struct cluster_cfg *k = &c->cfg.cluster;
    char why[400] = "", origin[300];
    c->node_labels = json_object();
    c->route_by = json_array();
    const char *key = "labels";
    int rc = parse_labels(k->labels ? k->labels : "", c->node_labels, why, sizeof(why));
    if (rc == 0) {
        key = "route_by";
        rc = parse_keys(k->route_by ? k->route_by : "", c->route_by, why, sizeof(why));
    }
    if (rc < 0) {
        cfg_origin(c->cfg.file, "cluster", key, origin, sizeof(origin));
        snprintf(err, errlen, "%s: [cluster] %s: %s", origin, key, why);
    }
    return rc;
}

/* "host:port" of this node's API: the authority of [server] public_url when
 * set (what others can reach), else the first listen address's host with
 * the port actually bound (port 0 in tests). */
void cluster_node_address(struct opsc_core *c, char *out, size_t n)
{
    const char *pub = c->cfg.server.public_url;
    if (pub && *pub) {
        const char *host = strstr(pub, "://");
        host = host ? host + 3 : pub;
        snprintf(out, n, "%.*s", (int)strcspn(host, "/?#"), host);
        return;
    }
    const char *listen = c->cfg.server.listen ? c->cfg.server.listen : "";
    listen += strspn(listen, " ");
    size_t first = strcspn(listen, ", ");
    const char *colon = NULL;
    for (const char *p = listen; p < listen + first; p++)
        if (*p == ':')
            colon = p;
    size_t hostlen = colon ? (size_t)(colon - listen) : first;
    snprintf(out, n, "%.*s:%d", (int)hostlen, listen, http_server_port(c->http));
}

static json_t *this_node(struct opsc_core *c, const char *address)
{
    char started[RFC3339_LEN], now[RFC3339_LEN];
    rfc3339_format(c->started_ms, started);
    rfc3339_format(clock_now_ms(), now);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s}", "id", c->node_id, "address", address,
                     "version", OPSC_VERSION, "started_at", started, "last_heartbeat", now,
                     "labels", c->node_labels, "state", "alive");
}

/* On LMDB the cluster is this process: one node, leading itself with no
 * lease to expire (epoch 1, expires_at null). */
static json_t *lmdb_cluster(struct opsc_core *c)
{
    char address[300];
    cluster_node_address(c, address, sizeof(address));
    return json_pack("{s:s, s:s, s:[o], s:{s:s, s:s, s:i, s:n}}", "backend", "lmdb", "node_id",
                     c->node_id, "nodes", this_node(c, address), "leader", "node_id", c->node_id,
                     "address", address, "epoch", 1, "expires_at");
}

static json_t *time_or_null(json_t *ms)
{
    if (!json_is_integer(ms))
        return json_null();
    char at[RFC3339_LEN];
    rfc3339_format((int64_t)json_integer_value(ms), at);
    return json_string(at);
}

/* The rows of opsc_nodes and opsc_lease as the API shows them. A lapsed
 * lease is no leader (null) until a node takes it. */
static json_t *pg_cluster(struct opsc_core *c, json_t *view)
{
    json_t *nodes = json_array(), *n, *leader = json_null();
    json_t *lease = json_object_get(view, "leader");
    const char *holder = json_string_value(json_object_get(lease, "node_id"));
    size_t i;
    json_array_foreach(json_object_get(view, "nodes"), i, n)
    {
        const char *id = json_string_value(json_object_get(n, "id"));
        json_array_append_new(
            nodes, json_pack("{s:O, s:O, s:O, s:o, s:o, s:O, s:s}", "id", json_object_get(n, "id"),
                             "address", json_object_get(n, "address"), "version",
                             json_object_get(n, "version"), "started_at",
                             time_or_null(json_object_get(n, "started_ms")), "last_heartbeat",
                             time_or_null(json_object_get(n, "heartbeat_ms")), "labels",
                             json_object_get(n, "labels"), "state",
                             json_is_true(json_object_get(n, "alive")) ? "alive" : "dead"));
        if (holder && id && !strcmp(holder, id) && json_is_true(json_object_get(lease, "live")))
            leader =
                json_pack("{s:s, s:O, s:O, s:o}", "node_id", holder, "address",
                          json_object_get(n, "address"), "epoch", json_object_get(lease, "epoch"),
                          "expires_at", time_or_null(json_object_get(lease, "expires_ms")));
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "backend", "postgresql", "node_id", c->node_id,
                     "nodes", nodes, "leader", leader);
}

static int h_cluster(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    if (!store_is_shared(c->store)) {
        http_respond_json(req, 200, lmdb_cluster(c));
        return HTTP_DONE;
    }
    json_t *view = NULL;
    int rc = store_cluster_view(c->store, c->cfg.store.lease_ttl_ms, &view);
    if (rc < 0) {
        rest_error(req, rc, "reading the cluster's membership");
        return HTTP_DONE;
    }
    http_respond_json(req, 200, pg_cluster(c, view));
    json_decref(view);
    return HTTP_DONE;
}

static const http_route cluster_routes[] = {
    {"GET", "/api/v1/cluster", ROLE_VIEWER, h_cluster, 0, "system",
     "The cluster: this node, every node with its heartbeat and state, the leader and its lease",
     NULL, J_cluster},
};

int api_cluster_register(struct opsc_core *c)
{
    return http_add_routes(c->http, cluster_routes,
                           sizeof(cluster_routes) / sizeof(cluster_routes[0]));
}
