/* notify_file.c - example plugin: a notification channel that appends JSON lines to a file.
 *
 * Shows the whole plugin surface a third party needs: the descriptor, a
 * config map bound to a struct, registration, validating channel settings,
 * and doing blocking work (file I/O) on a worker thread so the loop never
 * waits. Build it against the installed SDK only:
 *
 *     cc $(pkg-config --cflags opsconductor-sdk jansson) -shared -o example-notify-file.so \
 *        notify_file.c $(pkg-config --libs jansson)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <opsc/plugin.h>

static const opsc_host_api *host;

/* [plugin.example-notify-file] */
struct settings {
    const char *directory; /* where channel files live */
    bool fsync_each;       /* flush every message to disk */
};

static const opsc_cfg_entry settings_map[] = {
    {"directory", OPSC_CFG_STRING, "/tmp", 0, -1, NULL, 0, offsetof(struct settings, directory),
     "directory holding the channel files"},
    {"fsync", OPSC_CFG_BOOL, "false", 0, -1, NULL, 0, offsetof(struct settings, fsync_each),
     "fsync after every message"},
    {NULL},
};

static struct settings settings;

/* A channel's settings are {"file": "name.jsonl"}; a bare file name keeps
 * every channel inside the configured directory. Plugins may use any library:
 * this one parses JSON with Jansson. */
static int file_name(const char *settings_json, char *out, size_t n)
{
    json_t *root = json_loads(settings_json, 0, NULL);
    const char *name = json_string_value(json_object_get(root, "file"));
    int rc = OPSC_EINVAL;
    if (name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < n) {
        strcpy(out, name);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

static int validate(void *state, const char *settings_json, char *err, size_t errlen)
{
    char name[256];
    (void)state;
    if (file_name(settings_json, name, sizeof(name)) < 0) {
        snprintf(err, errlen, "settings need \"file\": a plain file name (no '/', no leading '.')");
        return OPSC_ESCHEMA;
    }
    return 0;
}

/* One delivery, carried from the loop to a worker thread and back. */
struct delivery {
    char path[1024];
    char *line;
    int status;
    char error[1280];
    opsc_notify_done_cb done;
    void *ud;
};

static void write_line(void *arg)
{
    struct delivery *d = arg;
    FILE *fp = fopen(d->path, "a");
    if (!fp) {
        d->status = -errno;
        snprintf(d->error, sizeof(d->error), "cannot open %s: %s", d->path, strerror(errno));
        return;
    }
    if (fputs(d->line, fp) == EOF || fputc('\n', fp) == EOF)
        d->status = OPSC_EIO;
    if (settings.fsync_each && fflush(fp) == 0)
        fsync(fileno(fp));
    if (fclose(fp) != 0 && d->status == 0)
        d->status = OPSC_EIO;
}

static void after_write(void *arg, int status)
{
    struct delivery *d = arg;
    int rc = status < 0 ? status : d->status;
    /* A full disk may clear up: let the host retry. A cancelled write will
     * be retried after restart. */
    d->done(d->ud, rc, rc != 0, rc ? d->error : NULL);
    host->free(d->line);
    host->free(d);
}

static int send_msg(void *state, const opsc_notify_msg *msg, const char *settings_json,
                    const char *secret, opsc_notify_done_cb done, void *ud)
{
    char name[256];
    (void)state, (void)secret;
    if (file_name(settings_json, name, sizeof(name)) < 0)
        return OPSC_EINVAL;
    struct delivery *d = host->calloc(1, sizeof(*d));
    if (!d)
        return OPSC_ENOMEM;
    snprintf(d->path, sizeof(d->path), "%s/%s", settings.directory, name);
    d->line = host->strdup(msg->payload_json ? msg->payload_json : "{}");
    d->done = done;
    d->ud = ud;
    int rc = d->line ? host->queue_work(write_line, after_write, d) : OPSC_ENOMEM;
    if (rc < 0) {
        host->free(d->line);
        host->free(d);
    }
    return rc;
}

static const opsc_notifier file_notifier = {
    .size = sizeof(opsc_notifier),
    .name = "file",
    .summary = "append each event as one JSON line to a file",
    .settings_schema = "{\"type\":\"object\",\"required\":[\"file\"],"
                       "\"properties\":{\"file\":{\"type\":\"string\"}}}",
    .validate = validate,
    .send = send_msg,
};

static int init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    char err[512];
    host = api;
    int rc = api->config_bind(cfg, settings_map, &settings, err, sizeof(err));
    if (rc < 0) {
        api->log("example-notify-file", OPSC_LOG_ERROR, "%s", err);
        return rc;
    }
    *state = NULL;
    return api->register_notifier(&file_notifier, NULL);
}

OPSC_PLUGIN_DEFINE("example-notify-file", "1.0.0", OPSC_KIND_NOTIFIER,
                   "Example: notification channel writing JSON lines to files", "MIT", init, NULL)
