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

/* "host:port" of this node's API: the authority of [server] public_url when
 * set (what others can reach), else the first listen address's host with
 * the port actually bound (port 0 in tests). */
static void node_address(struct opsc_core *c, char *out, size_t n)
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
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}, s:s}", "id", c->node_id, "address", address,
                     "version", OPSC_VERSION, "started_at", started, "last_heartbeat", now,
                     "labels", "state", "alive");
}

/* On LMDB the cluster is this process: one node, leading itself with no
 * lease to expire (epoch 1, expires_at null). On PostgreSQL too, for now:
 * the store admits one daemon per database until membership and the
 * leader lease are built (docs/cluster.md 2.1, 2.2). */
static int h_cluster(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    char address[300];
    node_address(c, address, sizeof(address));
    const char *backend = c->cfg.store.backend == STORE_BACKEND_POSTGRESQL ? "postgresql" : "lmdb";
    json_t *body = json_pack("{s:s, s:s, s:[o], s:{s:s, s:s, s:i, s:n}}", "backend", backend,
                             "node_id", c->node_id, "nodes", this_node(c, address), "leader",
                             "node_id", c->node_id, "address", address, "epoch", 1, "expires_at");
    http_respond_json(req, 200, body);
    return HTTP_DONE;
}

static const http_route cluster_routes[] = {
    {"GET", "/api/v1/cluster", ROLE_VIEWER, h_cluster, 0, "system",
     "The cluster: this node, every node with its heartbeat and state, the leader and its lease",
     NULL, J_cluster},
};

int api_cluster_register(struct opsc_core *c)
{
    char err[PATH_MAX + 128] = "";
    int rc = cluster_node_id_load(c->cfg.store.data_dir, c->node_id, err, sizeof(err));
    if (rc < 0) {
        log_error("cluster", "%s", err);
        return rc;
    }
    return http_add_routes(c->http, cluster_routes,
                           sizeof(cluster_routes) / sizeof(cluster_routes[0]));
}
