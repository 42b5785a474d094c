/* log.c - the daemon's log: level filter, text or JSON lines, reopen on SIGHUP. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static atomic_int log_level = OPSC_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static char *log_path;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return OPSC_LOG_WARN;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < 0 || level > OPSC_LOG_DEBUG)
        return "?";
    return level_names[level];
}

static int open_log_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int log_init(int level, enum log_format format, const char *path)
{
    log_level = level;
    log_fmt = format;
    free(log_path);
    log_path = (path && *path) ? strdup(path) : NULL;
    return log_reopen();
}

int log_reopen(void)
{
    if (!log_path)
        return 0;
    int fd = open_log_file(log_path);
    if (fd < 0)
        return fd;
    int old = atomic_exchange(&log_fd, fd);
    if (old != STDERR_FILENO)
        close(old);
    return 0;
}

void log_close(void)
{
    int old = atomic_exchange(&log_fd, STDERR_FILENO);
    if (old != STDERR_FILENO)
        close(old);
    free(log_path);
    log_path = NULL;
}

void log_set_level(int level)
{
    log_level = level;
}

bool log_enabled(int level)
{
    return level <= log_level;
}

static size_t format_time(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    len += (size_t)snprintf(buf + len, n - len, ".%03ldZ", ts.tv_nsec / 1000000);
    return len;
}

/* JSON string body of `s` into buf; control characters escaped. Returns bytes used. */
static size_t json_escape(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, n - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return o;
}

/* Text lines must stay one line: newlines in messages become spaces. */
static void flatten(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

void log_vmsg(const char *component, int level, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char msg[LOG_LINE_MAX / 2];
    char line[LOG_LINE_MAX];
    char ts[40];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    format_time(ts, sizeof(ts));
    int len;
    if (log_fmt == LOG_FORMAT_JSON) {
        char esc[LOG_LINE_MAX - 256];
        char comp[64];
        json_escape(esc, sizeof(esc), msg);
        json_escape(comp, sizeof(comp), component);
        len = snprintf(line, sizeof(line),
                       "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n", ts,
                       log_level_name(level), comp, esc);
    } else {
        flatten(msg);
        len = snprintf(line, sizeof(line), "%s %-5s %s: %s\n", ts, log_level_name(level), component,
                       msg);
    }
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(line)) {
        len = sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    ssize_t ignored = write(log_fd, line, (size_t)len);
    (void)ignored;
}

void log_msg(const char *component, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(component, level, fmt, ap);
    va_end(ap);
}
