/* stephost_internal.h - opsc-stephost's state: the library it runs, the steps in flight. */
#ifndef OPSC_STEPHOST_INTERNAL_H
#define OPSC_STEPHOST_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <opsc/host.h>
#include <opsc/plugin.h>
#include <opsc/step.h>

/* A frame waiting for a step's thread: a "ret" (json) or the bytes after it. */
typedef struct hmsg {
    json_t *json; /* NULL for DATA */
    char *data;
    size_t len;
    struct hmsg *next;
} hmsg;

/* One step in flight: the opsc_step_ctx its run() gets. */
struct opsc_step_ctx {
    uint32_t id;
    const opsc_step_type *type;
    atomic_bool cancelled;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hmsg *head, *tail; /* frames for it, from the main thread */
    char **pool;       /* strings handed to run(), freed when it returns */
    size_t npool, cappool;
    struct opsc_step_ctx *next;
};
typedef struct opsc_step_ctx hstep;

typedef struct stephost {
    int fd;
    pthread_mutex_t wmu; /* one writer at a time */
    pthread_mutex_t smu; /* the steps list */
    hstep *steps;
    const opsc_steplib *lib;
    void *lib_state;
    void *dl;
    const opsc_plugin *plugin;
} stephost;

extern stephost sh; /* one per process: the host API carries no context */

/* host_table.c */
const opsc_host_api *sh_host_api(void);
/* Send a call of the step and, when `reply`, wait for its "ret" (new
 * reference; NULL when the daemon is gone). `data` rides as a DATA frame. */
json_t *sh_call(hstep *s, json_t *req, bool reply, const void *data, size_t len);

/* stephost.c */
int sh_send(uint32_t id, json_t *msg); /* steals msg */
/* The next frame for `s`, waiting. NULL once the daemon is gone. */
hmsg *sh_wait(hstep *s);
void sh_msg_free(hmsg *m);

/* sandbox.c: confine this process before it loads `library` (as `user` when
 * started as root); `notes` gets what was applied (a JSON array), and
 * `load_path` what to dlopen(). 0, or -errno when a required layer failed. */
int sh_sandbox(const char *library, const char *user, uint64_t memory_limit, json_t *notes,
               char *load_path, size_t n, char *err, size_t errlen);

#endif
