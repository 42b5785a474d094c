/* stephost.c - opsc-stephost: runs the imperative steps of one step library out of the daemon's
 * process, so that whatever the library does (crash, abort, exit, spin, eat memory) ends this
 * process only. Started by the daemon with the socket as fd 3 (shproto.h): it confines itself
 * (sandbox.c), loads the library, says HELLO, then runs each "start" on a thread of its own
 * whose step API calls go back to the daemon (host_table.c). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "shproto.h"
#include "stephost_internal.h"

stephost sh = {
    .fd = SHP_HOST_FD,
    .wmu = PTHREAD_MUTEX_INITIALIZER,
    .smu = PTHREAD_MUTEX_INITIALIZER,
    .qmu = PTHREAD_MUTEX_INITIALIZER,
};

/* Sanitizer builds: a crash of the library must end this process with its
 * own signal (the daemon names it), not with a report and an abort; leaks
 * of a process that ends by _exit are not ours to report. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0:detect_leaks=0:"
           "allow_user_segv_handler=1:soft_rss_limit_mb=1024:allocator_may_return_null=1";
}

/* ---- frames ---------------------------------------------------------------------------------- */

int sh_send(uint32_t id, json_t *msg)
{
    if (!msg)
        return OPSC_ENOMEM;
    pthread_mutex_lock(&sh.wmu);
    int rc = shp_send_json(sh.fd, SHP_JSON, id, msg);
    pthread_mutex_unlock(&sh.wmu);
    json_decref(msg);
    return rc;
}

void sh_msg_free(hmsg *m)
{
    if (!m)
        return;
    json_decref(m->json);
    free(m->data);
    free(m);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_frame(const shp_frame *f);

/* With qmu held and the read side taken: the next frames from the daemon
 * (a step: spinning first, shproto.h), each acted on, qmu dropped meanwhile. */
static void read_some(hstep *step)
{
    pthread_mutex_unlock(&sh.qmu);
    if (step) /* only a partial frame is ever left buffered: it needs more */
        shp_poll(sh.fd, -1, &step->spin);
    shp_frame f;
    int rc = shp_read(&sh.rd, sh.fd, &f);
    /* The daemon closed the socket (it stops, or gave up on us): steps still
     * running have no one to answer them. _exit: no destructors of a library
     * that may be in any state. */
    if (rc <= 0)
        _exit(rc == 0 ? 0 : 2);
    do
        on_frame(&f);
    while ((rc = shp_next(&sh.rd, &f)) == 1);
    if (rc < 0)
        _exit(2);
    pthread_mutex_lock(&sh.qmu);
}

/* With qmu held: give the read side back to the steps waiting behind it. */
static void let_go(bool step)
{
    sh.reading = false;
    if (step)
        sh.idle_since = mono_ms();
    pthread_mutex_lock(&sh.smu);
    for (hstep *s = sh.steps; s; s = s->next)
        if (s->waiting && !s->head)
            pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&sh.smu);
}

hmsg *sh_wait(hstep *s)
{
    pthread_mutex_lock(&sh.qmu);
    while (!s->head) {
        if (!sh.reading) {
            sh.reading = true;
            read_some(s);
            let_go(true);
            continue;
        }
        s->waiting = true;
        sh.waiters++;
        pthread_cond_wait(&s->cv, &sh.qmu);
        sh.waiters--;
        s->waiting = false;
    }
    hmsg *m = s->head;
    s->head = m->next;
    if (!s->head)
        s->tail = NULL;
    pthread_mutex_unlock(&sh.qmu);
    return m;
}

/* The main thread, for good: reads when no step has for SH_READ_IDLE_MS. */
static void serve(void)
{
    pthread_mutex_lock(&sh.qmu);
    for (;;) {
        uint64_t now = mono_ms();
        bool idle = !sh.reading && sh.waiters == 0;
        if (idle && now >= sh.idle_since + SH_READ_IDLE_MS) {
            sh.reading = true;
            read_some(NULL);
            let_go(false);
            continue;
        }
        /* A step reads: look again soon, in case it stops without a word
         * (a step that ends says so at once; a "start" or a "cancel" beside
         * a step that computes can wait that long). */
        uint64_t until = idle ? sh.idle_since + SH_READ_IDLE_MS : now + SH_READ_LOOK_MS;
        struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
        pthread_cond_timedwait(&sh.rcv, &sh.qmu, &ts);
    }
}

/* With smu held. */
static hstep *listed(uint32_t id)
{
    hstep *s = sh.steps;
    while (s && s->id != id)
        s = s->next;
    return s;
}

static hstep *find_step(uint32_t id)
{
    pthread_mutex_lock(&sh.smu);
    hstep *s = listed(id);
    pthread_mutex_unlock(&sh.smu);
    return s;
}

static void deliver(hstep *s, json_t *json, const shp_frame *f)
{
    hmsg *m = calloc(1, sizeof(*m));
    if (!m || (!json && !(m->data = malloc(f->len + 1)))) {
        fprintf(stderr, "opsc-stephost: out of memory\n");
        _exit(3);
    }
    m->json = json;
    if (!json) {
        memcpy(m->data, f->payload, f->len);
        m->data[f->len] = '\0';
        m->len = f->len;
    }
    pthread_mutex_lock(&sh.qmu);
    if (s->tail)
        s->tail->next = m;
    else
        s->head = m;
    s->tail = m;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&sh.qmu);
}

/* ---- steps ----------------------------------------------------------------------------------- */

static void step_free(hstep *s)
{
    while (s->head) {
        hmsg *m = s->head;
        s->head = m->next;
        sh_msg_free(m);
    }
    for (size_t i = 0; i < s->npool; i++)
        free(s->pool[i]);
    free(s->pool);
    pthread_cond_destroy(&s->cv);
    free(s);
}

static void run_step(hstep *s)
{
    int rc = atomic_load(&s->cancelled) ? OPSC_ECANCELED : s->type->run(s, sh.lib_state);
    /* This step reads no more: the main thread reads now, not after
     * SH_READ_IDLE_MS, ready for the next "start" that "done" brings. */
    pthread_mutex_lock(&sh.qmu);
    sh.idle_since = 0;
    pthread_cond_signal(&sh.rcv);
    pthread_mutex_unlock(&sh.qmu);
    sh_send(s->id, json_pack("{s:s, s:i}", "op", "done", "rc", rc));
    pthread_mutex_lock(&sh.smu);
    hstep **pp = &sh.steps;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    pthread_mutex_unlock(&sh.smu);
    step_free(s);
}

/* Step threads that ran a step wait for the next one, up to SH_IDLE_THREADS
 * of them: a thread's start and end (clone, its stack's mappings, exit)
 * cost more than a no-op step. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hstep *queue; /* handed to an idle thread, not taken yet */
    int idle;     /* threads waiting that no step was handed to */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};

static hstep *next_step(void)
{
    pthread_mutex_lock(&pool.mu);
    if (pool.idle >= SH_IDLE_THREADS) {
        pthread_mutex_unlock(&pool.mu);
        return NULL;
    }
    pool.idle++;
    while (!pool.queue)
        pthread_cond_wait(&pool.cv, &pool.mu);
    hstep *s = pool.queue;
    pool.queue = s->queued;
    pthread_mutex_unlock(&pool.mu);
    return s;
}

static void *step_main(void *arg)
{
    for (hstep *s = arg; s; s = next_step())
        run_step(s);
    return NULL;
}

/* On an idle step thread, or a new one. */
static void dispatch(hstep *s)
{
    pthread_mutex_lock(&pool.mu);
    bool handed = pool.idle > 0;
    if (handed) {
        pool.idle--;
        s->queued = pool.queue;
        pool.queue = s;
        pthread_cond_signal(&pool.cv);
    }
    pthread_mutex_unlock(&pool.mu);
    if (handed)
        return;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1u << 20);
    if (pthread_create(&th, &attr, step_main, s) != 0) {
        fprintf(stderr, "opsc-stephost: cannot start a step thread\n");
        _exit(3);
    }
    pthread_attr_destroy(&attr);
}

static const opsc_step_type *find_type(const char *name)
{
    for (const opsc_step_type *const *t = sh.lib->types; t && *t; t++)
        if ((*t)->run && strcmp((*t)->name, name) == 0)
            return *t;
    return NULL;
}

static void start_step(uint32_t id, json_t *msg)
{
    const char *name = json_string_value(json_object_get(msg, "step"));
    const opsc_step_type *type = name ? find_type(name) : NULL;
    if (!type || id == 0 || find_step(id)) {
        sh_send(id, json_pack("{s:s, s:i}", "op", "done", "rc", OPSC_ENOENT));
        return;
    }
    hstep *s = calloc(1, sizeof(*s));
    if (!s)
        _exit(3);
    s->id = id;
    s->type = type;
    atomic_init(&s->cancelled, false);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_lock(&sh.smu);
    s->next = sh.steps;
    sh.steps = s;
    pthread_mutex_unlock(&sh.smu);
    dispatch(s);
}

/* A cancel may cross the step's "done": under smu, the step is still listed or gone. */
static void cancel_step(uint32_t id)
{
    pthread_mutex_lock(&sh.smu);
    hstep *s = listed(id);
    if (s)
        atomic_store(&s->cancelled, true);
    pthread_mutex_unlock(&sh.smu);
}

/* True when the host cannot allocate even a little: a step took the memory. */
static bool out_of_memory(void)
{
    void *probe = malloc(64u << 10);
    bool none = probe == NULL;
    free(probe);
    return none;
}

static void on_frame(const shp_frame *f)
{
    if (f->type == SHP_HELLO)
        return;
    hstep *s = f->id ? find_step(f->id) : NULL;
    if (f->type == SHP_DATA) {
        if (s)
            deliver(s, NULL, f);
        return;
    }
    json_t *msg = shp_json(f);
    const char *op = json_string_value(json_object_get(msg, "op"));
    if (!op) {
        /* A ping that arrives while a step has taken the memory cannot be decoded: that
         * is the allocation failure it is (ended with abort(), as most code does), not a
         * daemon speaking wrongly. */
        if (out_of_memory())
            abort();
        fprintf(stderr, "opsc-stephost: malformed message from the daemon\n");
        _exit(2);
    }
    if (strcmp(op, "ping") == 0) {
        sh_send(0, json_pack("{s:s}", "op", "pong"));
    } else if (strcmp(op, "start") == 0) {
        start_step(f->id, msg);
    } else if (strcmp(op, "cancel") == 0) {
        cancel_step(f->id);
    } else if (strcmp(op, "ret") == 0 && s) {
        deliver(s, msg, f);
        return;
    }
    json_decref(msg);
}

/* ---- start ----------------------------------------------------------------------------------- */

static int load(const char *path, char *err, size_t errlen)
{
    sh.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!sh.dl) {
        snprintf(err, errlen, "%s", dlerror());
        return OPSC_EPLUGIN;
    }
    opsc_plugin_entry_fn entry = (opsc_plugin_entry_fn)dlsym(sh.dl, OPSC_PLUGIN_ENTRY_SYMBOL);
    sh.plugin = entry ? entry() : NULL;
    if (!sh.plugin || sh.plugin->size < sizeof(opsc_plugin) ||
        sh.plugin->abi_major != OPSC_ABI_MAJOR || !(sh.plugin->kinds & OPSC_KIND_STEPLIB) ||
        !sh.plugin->init) {
        snprintf(err, errlen, "not a step library of ABI %d", OPSC_ABI_MAJOR);
        return OPSC_EABI;
    }
    void *pstate = NULL;
    int rc = sh.plugin->init(sh_host_api(), (const opsc_config *)&sh, &pstate);
    if (rc == 0 && !sh.lib)
        rc = OPSC_ENOENT;
    if (rc < 0)
        snprintf(err, errlen, "its init() failed: %s", opsc_strerror(rc));
    return rc;
}

static void say_hello(int rc, const char *err, json_t *notes)
{
    json_t *hello = json_pack("{s:s, s:[i], s:I, s:o}", "proto", "opsc-stephost", "versions",
                              SHP_VERSION, "pid", (json_int_t)getpid(), "sandbox", notes);
    if (rc < 0)
        json_object_set_new(hello, "error", shp_string(err, strlen(err)));
    else {
        json_object_set_new(hello, "library", json_string(sh.lib->name));
        json_object_set_new(hello, "version", json_string(sh.lib->version));
    }
    pthread_mutex_lock(&sh.wmu);
    shp_send_json(sh.fd, SHP_HELLO, 0, hello);
    pthread_mutex_unlock(&sh.wmu);
    json_decref(hello);
}

static bool version_agreed(void)
{
    shp_frame f;
    if (shp_read(&sh.rd, sh.fd, &f) != 1 || f.type != SHP_HELLO)
        return false;
    json_t *msg = shp_json(&f);
    bool ok = json_integer_value(json_object_get(msg, "version")) == SHP_VERSION;
    json_decref(msg);
    return ok;
}

int main(int argc, char **argv)
{
    const char *library = NULL, *user = NULL, *exec = NULL, *bundle = NULL, *scratch = NULL;
    const char *manifest = NULL;
    uint64_t memory_limit = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--library") == 0)
            library = argv[i + 1];
        else if (strcmp(argv[i], "--manifest") == 0)
            manifest = argv[i + 1];
        else if (strcmp(argv[i], "--exec") == 0)
            exec = argv[i + 1];
        else if (strcmp(argv[i], "--bundle") == 0)
            bundle = argv[i + 1];
        else if (strcmp(argv[i], "--scratch") == 0)
            scratch = argv[i + 1];
        else if (strcmp(argv[i], "--user") == 0)
            user = argv[i + 1];
        else if (strcmp(argv[i], "--memory-limit") == 0)
            memory_limit = strtoull(argv[i + 1], NULL, 10);
    }
    if (manifest) /* what the library declares, for the daemon to list it */
        sh_manifest(manifest, user, memory_limit);
    if (exec) /* a bundle's step: its executable speaks to the daemon on stdin and stdout */
        return sh_exec_step(exec, bundle, scratch, user, memory_limit);
    if (!library) {
        fprintf(
            stderr,
            "usage: opsc-stephost --library PATH [--user NAME] [--memory-limit BYTES] (started by "
            "opsconductord, the socket as fd 3)\n"
            "       opsc-stephost --manifest PATH [--user NAME] [--memory-limit BYTES] (what the "
            "library declares, as JSON on stdout)\n"
            "       opsc-stephost --exec RELATIVE-PATH --bundle DIR --scratch DIR [--user NAME] "
            "[--memory-limit BYTES]\n");
        return 2;
    }
    /* No PR_SET_PDEATHSIG: it fires when the daemon's thread that started us
     * ends, not the daemon. The socket is what ties us: when the daemon goes,
     * even killed with SIGKILL, the main loop below reads the end of it. */
    signal(SIGPIPE, SIG_IGN);
    char err[512] = "";
    json_t *notes = json_array();
    char load_path[64 + PATH_MAX];
    int rc = sh_sandbox(library, user, memory_limit, notes, load_path, sizeof(load_path), err,
                        sizeof(err));
    if (rc == 0)
        rc = load(load_path, err, sizeof(err));
    say_hello(rc, err, notes);
    if (rc < 0 || !version_agreed())
        _exit(2);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sh.rcv, &ca);
    pthread_condattr_destroy(&ca);
    serve();
}
