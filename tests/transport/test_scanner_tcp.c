/* test_scanner_tcp.c - discovery-tcp loaded the real way (the transport harness) and driven on
 * its own loop against real listeners on loopback addresses: open, closed and filtered ports, a
 * real sshd's host key, a server that stops after its banner, the rate and concurrency caps,
 * cancel, ICMP in a network namespace where it is allowed. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static th_plugin plugin;
static int net; /* the second octet of this run's addresses: 127.<net>.x.y */

typedef struct result {
    bool done;
    int status;
    char error[256];
    json_t *hosts; /* address -> {hostname, os_family, facts} */
    opsc_scan *scan;
    opsc_scan_progress last; /* read inside done: the scan is gone after it */
    char icmp[200];
} result;

static void on_host(void *ud, const opsc_found_host *h)
{
    result *r = ud;
    json_t *facts = json_loads(h->facts_json, 0, NULL);
    assert_non_null(facts);
    json_object_set_new(r->hosts, h->address,
                        json_pack("{s:s?, s:s?, s:o}", "hostname", h->hostname, "os_family",
                                  h->os_family, "facts", facts));
}

static void on_done(void *ud, int status, const char *error)
{
    result *r = ud;
    r->done = true;
    r->status = status;
    r->last = (opsc_scan_progress){.size = sizeof(r->last)};
    plugin.scanner->progress(r->scan, &r->last);
    snprintf(r->icmp, sizeof(r->icmp), "%s", r->last.icmp ? r->last.icmp : "");
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static int start(const char *spec, result *r)
{
    memset(r, 0, sizeof(*r));
    r->hosts = json_object();
    return plugin.scanner->scan(plugin.state, spec, on_host, on_done, r, &r->scan);
}

static opsc_scan_progress progress(result *r)
{
    if (r->done)
        return r->last;
    opsc_scan_progress p = {.size = sizeof(p)};
    plugin.scanner->progress(r->scan, &p);
    return p;
}

/* Start and wait; the spec is printf-formatted. */
static void run(result *r, uint32_t ms, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void run(result *r, uint32_t ms, const char *fmt, ...)
{
    char spec[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(spec, sizeof(spec), fmt, ap);
    va_end(ap);
    assert_int_equal(start(spec, r), 0);
    assert_true(th_run_until(&r->done, ms));
}

static const char *port_state(json_t *host, int port)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(host, "facts"), "ports"), i, p)
    {
        if (json_integer_value(json_object_get(p, "port")) == port)
            return json_string_value(json_object_get(p, "state"));
    }
    return "missing";
}

static const char *ssh_field(json_t *host, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(host, "facts"), "ssh"), key));
}

/* ---- servers -----------------------------------------------------------------------------------
 */

static void addr(char *out, int third, int fourth)
{
    sprintf(out, "127.%d.%d.%d", net, third, fourth);
}

static int listener(const char *ip, int port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

/* A listener that never accepts, its backlog full: SYNs are dropped, the port is filtered. */
typedef struct blackhole {
    int fd, fillers[2];
} blackhole;

static void blackhole_open(blackhole *b, const char *ip, int port)
{
    b->fd = listener(ip, port, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    for (int i = 0; i < 2; i++) {
        b->fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(b->fillers[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50000);
}

static void blackhole_close(blackhole *b)
{
    close(b->fillers[0]);
    close(b->fillers[1]);
    close(b->fd);
}

/* A server that says an SSH banner and then garbage, on its own thread. */
typedef struct fake {
    int fd;
    pthread_t th;
} fake;

static void *fake_serve(void *ud)
{
    fake *f = ud;
    int c = accept(f->fd, NULL, NULL);
    if (c >= 0) {
        static const char hello[] = "SSH-2.0-FakeSSH_1.0 test\r\n\0\0\0\x0c\x0a\x63garbage!!";
        if (write(c, hello, sizeof(hello) - 1) < 0)
            perror("fake server");
        char buf[4096];
        while (read(c, buf, sizeof(buf)) > 0)
            ;
        close(c);
    }
    return NULL;
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n - 3; /* ".", "..", and the directory's own fd */
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void ports_are_open_closed_or_filtered(void **state)
{
    (void)state;
    char a[32], silent_ip[32];
    addr(a, 0, 0);
    addr(silent_ip, 0, 1);
    int silent = listener(silent_ip, 2201, 16); /* accepts (in the kernel), never says a word */
    blackhole hole;
    blackhole_open(&hole, silent_ip, 2203);
    result r;
    run(&r, 10000,
        "{\"targets\": [\"%s/30\"], \"total\": 4, \"ports\": [2201, 2202, 2203], \"rate\": 1000, "
        "\"concurrency\": 64, \"timeout_ms\": 300, \"icmp\": false, \"options\": {\"rdns\": "
        "false}}",
        a);
    assert_int_equal(r.status, 0);
    assert_int_equal(json_object_size(r.hosts), 1); /* nothing open elsewhere: not reported */
    json_t *h = json_object_get(r.hosts, silent_ip);
    assert_non_null(h);
    assert_string_equal(port_state(h, 2201), "open");
    assert_string_equal(port_state(h, 2202), "closed");
    assert_string_equal(port_state(h, 2203), "filtered");
    assert_null(ssh_field(h, "banner")); /* silent: no banner, no guess from a banner */
    opsc_scan_progress p = progress(&r);
    assert_int_equal(p.done, 4);
    assert_int_equal(p.total, 4);
    assert_int_equal(p.probes, 12);
    close(silent);
    blackhole_close(&hole);
    json_decref(r.hosts);
}

static void the_host_key_is_the_one_ssh_keygen_prints(void **state)
{
    (void)state;
    th_sshd s;
    assert_int_equal(th_sshd_start(&s, NULL), 0);
    result r;
    run(&r, 10000,
        "{\"targets\": [\"127.0.0.1/32\"], \"total\": 1, \"ports\": [%d], \"rate\": 100, "
        "\"concurrency\": 4, \"timeout_ms\": 3000, \"icmp\": false, \"options\": {}}",
        s.port);
    assert_int_equal(r.status, 0);
    json_t *h = json_object_get(r.hosts, "127.0.0.1");
    assert_non_null(h);
    assert_string_equal(ssh_field(h, "host_key_type"), "ssh-ed25519");
    assert_string_equal(ssh_field(h, "host_key_fingerprint"), s.host_ed25519);
    assert_true(strncmp(ssh_field(h, "banner"), "SSH-2.0-OpenSSH_", 16) == 0);
    assert_string_equal(json_string_value(json_object_get(h, "os_family")), "linux");
    /* the reverse name: what the resolver says of 127.0.0.1 (/etc/hosts), asked here directly */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char name[256];
    if (getnameinfo((struct sockaddr *)&sa, sizeof(sa), name, sizeof(name), NULL, 0, NI_NAMEREQD) ==
        0)
        assert_string_equal(json_string_value(json_object_get(h, "hostname")), name);
    else
        assert_null(json_object_get(h, "hostname")
                        ? json_string_value(json_object_get(h, "hostname"))
                        : NULL);
    json_decref(r.hosts);
    th_sshd_stop(&s);
}

static void a_server_that_stops_after_its_banner_keeps_the_banner(void **state)
{
    (void)state;
    char ip[32];
    addr(ip, 1, 7);
    fake f = {.fd = listener(ip, 2222, 4)};
    pthread_create(&f.th, NULL, fake_serve, &f);
    result r;
    run(&r, 10000,
        "{\"targets\": [\"%s/32\"], \"total\": 1, \"ports\": [2222], \"rate\": 100, "
        "\"concurrency\": 4, \"timeout_ms\": 2000, \"icmp\": false, \"options\": {\"rdns\": "
        "false}}",
        ip);
    json_t *h = json_object_get(r.hosts, ip);
    assert_non_null(h);
    assert_string_equal(ssh_field(h, "banner"), "SSH-2.0-FakeSSH_1.0 test");
    assert_null(ssh_field(h, "host_key_fingerprint"));
    assert_string_equal(port_state(h, 2222), "open");
    pthread_join(f.th, NULL);
    close(f.fd);
    json_decref(r.hosts);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void the_rate_is_never_exceeded(void **state)
{
    (void)state;
    char a[32];
    addr(a, 2, 0);
    double t0 = now_s();
    result r;
    run(&r, 20000,
        "{\"targets\": [\"%s/25\"], \"total\": 128, \"ports\": [1, 2], \"rate\": 500, "
        "\"concurrency\": 256, \"timeout_ms\": 500, \"icmp\": false, \"options\": {}}",
        a);
    double took = now_s() - t0;
    assert_int_equal(r.status, 0);
    assert_int_equal(progress(&r).probes, 256);
    /* 256 attempts at 500/s, a burst of 50 (100 ms) allowed: never sooner than 0.41 s */
    if (took < 0.41)
        fail_msg("256 connection attempts at 500/s took %.3f s", took);
    json_decref(r.hosts);
}

typedef struct sampler {
    uv_timer_t t;
    int base, max;
    bool closed;
} sampler;

static void sampler_closed(uv_handle_t *h)
{
    ((sampler *)h)->closed = true;
}

static void sample(uv_timer_t *t)
{
    sampler *s = (sampler *)t;
    int n = open_fds() - s->base;
    if (n > s->max)
        s->max = n;
}

static void concurrency_bounds_the_connections_in_flight(void **state)
{
    (void)state;
    blackhole holes[16];
    char ip[32], a[32];
    for (int i = 0; i < 16; i++) {
        addr(ip, 3, i);
        blackhole_open(&holes[i], ip, 2230);
    }
    addr(a, 3, 0);
    sampler s = {.base = open_fds()};
    uv_timer_init(th_loop(), &s.t);
    uv_timer_start(&s.t, sample, 10, 10);
    double t0 = now_s();
    result r;
    run(&r, 20000,
        "{\"targets\": [\"%s/28\"], \"total\": 16, \"ports\": [2230], \"rate\": 10000, "
        "\"concurrency\": 4, \"timeout_ms\": 250, \"icmp\": false, \"options\": {}}",
        a);
    uv_close((uv_handle_t *)&s.t, sampler_closed);
    assert_true(th_run_until(&s.closed, 1000));
    assert_int_equal(r.status, 0);
    assert_int_equal(json_object_size(r.hosts), 0);
    /* 16 hanging connects, 4 at a time, 250 ms each: four rounds */
    assert_true(now_s() - t0 >= 0.95);
    if (s.max > 4 + 2) /* + the Identify client's internal sockets */
        fail_msg("%d descriptors in flight with a concurrency of 4", s.max);
    for (int i = 0; i < 16; i++)
        blackhole_close(&holes[i]);
    json_decref(r.hosts);
}

static void cancel_closes_every_socket_and_reports_cancelled(void **state)
{
    (void)state;
    blackhole holes[8];
    char ip[32], a[32];
    for (int i = 0; i < 8; i++) {
        addr(ip, 4, i);
        blackhole_open(&holes[i], ip, 2240);
    }
    addr(a, 4, 0);
    int base = open_fds();
    result r;
    char spec[512];
    snprintf(spec, sizeof(spec),
             "{\"targets\": [\"%s/22\"], \"total\": 1024, \"ports\": [2240], \"rate\": 100000, "
             "\"concurrency\": 64, \"timeout_ms\": 60000, \"icmp\": false, \"options\": {}}",
             a);
    assert_int_equal(start(spec, &r), 0);
    bool never = false;
    for (int i = 0; i < 100 && open_fds() < base + 8; i++) /* until the 8 connects hang */
        th_run_until(&never, 20);
    opsc_scan_progress p = progress(&r);
    if (open_fds() < base + 8)
        fail_msg("%d descriptors open (%d before), %llu of %llu done, %llu probes", open_fds(),
                 base, (unsigned long long)p.done, (unsigned long long)p.total,
                 (unsigned long long)p.probes);
    plugin.scanner->cancel(r.scan);
    assert_false(r.done);           /* never from inside cancel() */
    plugin.scanner->cancel(r.scan); /* harmless twice */
    assert_true(th_run_until(&r.done, 1000));
    assert_int_equal(r.status, OPSC_ECANCELED);
    assert_true(open_fds() <= base);
    for (int i = 0; i < 8; i++)
        blackhole_close(&holes[i]);
    json_decref(r.hosts);
}

/* IPv6: an open port on ::1 (the one loopback address IPv6 has), and a closed one. */
static void ipv6_addresses_are_scanned_too(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        skip(); /* no IPv6 here */
    }
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    int port = ntohs(sa.sin6_port);
    result r;
    run(&r, 10000,
        "{\"targets\": [\"::1/128\"], \"total\": 1, \"ports\": [%d, 1], \"rate\": 100, "
        "\"concurrency\": 4, \"timeout_ms\": 300, \"icmp\": false, \"options\": {\"rdns\": false}}",
        port);
    json_t *h = json_object_get(r.hosts, "::1");
    assert_non_null(h);
    assert_string_equal(port_state(h, port), "open");
    assert_string_equal(port_state(h, 1), "closed");
    close(fd);
    json_decref(r.hosts);
}

static void bad_specs_are_refused_at_start(void **state)
{
    (void)state;
    result r;
    const char *bad[] = {"{}", "not json", "{\"targets\": [\"10.0.0.0/40\"], \"ports\": [22]}",
                         "{\"targets\": [\"::/0\"], \"ports\": [22], \"rate\": 1, "
                         "\"concurrency\": 1, \"timeout_ms\": 1}",
                         "{\"targets\": [\"10.0.0.1/32\"], \"ports\": [], \"rate\": 1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(start(bad[i], &r), OPSC_EINVAL);
        assert_false(r.done);
        json_decref(r.hosts);
    }
}

/* In a network namespace of its own (a child process), where ping_group_range lets us: every
 * loopback address answers ICMP echo. */
static int bring_lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int rc = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 ? 0 : -1;
    ifr.ifr_flags |= IFF_UP;
    if (rc == 0)
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    close(fd);
    int pf = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY);
    if (rc == 0 && (pf < 0 || write(pf, "0 2147483647", 12) != 12))
        rc = -1;
    if (pf >= 0)
        close(pf);
    return rc;
}

static int icmp_child(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        return 77; /* not allowed here: skipped */
    if (bring_lo_up() < 0)
        return 2;
    result r;
    run(&r, 10000,
        "{\"targets\": [\"127.9.9.0/30\"], \"total\": 4, \"ports\": [1], \"rate\": 1000, "
        "\"concurrency\": 16, \"timeout_ms\": 500, \"icmp\": true, \"options\": {\"rdns\": "
        "false}}");
    int rc = r.status == 0 && json_object_size(r.hosts) == 4 ? 0 : 3;
    json_t *h = json_object_get(r.hosts, "127.9.9.2");
    const char *icmp = json_string_value(json_object_get(json_object_get(h, "facts"), "icmp"));
    if (rc == 0 && (!icmp || strcmp(icmp, "reply") != 0))
        rc = 4;
    json_decref(r.hosts);
    return rc;
}

static void icmp_where_allowed_and_said_so_where_not(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* the verdict goes through a pipe: under valgrind the exit code is its own */
        char verdict = (char)icmp_child();
        if (write(fds[1], &verdict, 1) != 1)
            perror("pipe");
        _exit(0);
    }
    close(fds[1]);
    char verdict = 1;
    assert_int_equal(read(fds[0], &verdict, 1), 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    if (verdict == 77)
        skip();
    assert_int_equal(verdict, 0);

    /* here ping_group_range is the kernel's default (nobody): the scan says so, and goes on */
    char a[32];
    addr(a, 5, 0);
    result r;
    run(&r, 10000,
        "{\"targets\": [\"%s/31\"], \"total\": 2, \"ports\": [1], \"rate\": 1000, "
        "\"concurrency\": 16, \"timeout_ms\": 300, \"icmp\": true, \"options\": {}}",
        a);
    assert_int_equal(r.status, 0);
    if (strcmp(r.icmp, "sent") != 0) /* unless this host's range allows us */
        assert_non_null(strstr(r.icmp, "ping_group_range"));
    json_decref(r.hosts);
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    net = 100 + rand() % 150;
    return th_load(&plugin, SCANNER_SO, "rdns_timeout = 500ms") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    th_unload(&plugin);
    return th_loop_drain() && th_no_leaks() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ports_are_open_closed_or_filtered),
        cmocka_unit_test(the_host_key_is_the_one_ssh_keygen_prints),
        cmocka_unit_test(a_server_that_stops_after_its_banner_keeps_the_banner),
        cmocka_unit_test(the_rate_is_never_exceeded),
        cmocka_unit_test(concurrency_bounds_the_connections_in_flight),
        cmocka_unit_test(cancel_closes_every_socket_and_reports_cancelled),
        cmocka_unit_test(ipv6_addresses_are_scanned_too),
        cmocka_unit_test(bad_specs_are_refused_at_start),
        cmocka_unit_test(icmp_where_allowed_and_said_so_where_not),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
