/* log.h - one line per event, text or JSON, with level and component.
 *
 * Thread: every function may be called from any thread. A line is
 * formatted into a stack buffer and written with one write(2), so lines
 * from different threads never interleave. log_reopen() (SIGHUP) swaps
 * the file descriptor atomically for logrotate.
 */
#ifndef OPSC_LOG_H
#define OPSC_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include <opsc/host.h> /* OPSC_LOG_* levels, OPSC_PRINTF */

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

/* `path` NULL or "" logs to stderr. Returns 0 or -errno (the file could not
 * be opened; logging then stays on stderr). */
int log_init(int level, enum log_format format, const char *path);
int log_reopen(void);
void log_set_level(int level);
bool log_enabled(int level);
void log_close(void);

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

void log_msg(const char *component, int level, const char *fmt, ...) OPSC_PRINTF(3, 4);
void log_vmsg(const char *component, int level, const char *fmt, va_list ap);

#define log_error(comp, ...) log_msg((comp), OPSC_LOG_ERROR, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg((comp), OPSC_LOG_WARN, __VA_ARGS__)
#define log_info(comp, ...)  log_msg((comp), OPSC_LOG_INFO, __VA_ARGS__)
#define log_debug(comp, ...)                                                                       \
    do {                                                                                           \
        if (log_enabled(OPSC_LOG_DEBUG))                                                           \
            log_msg((comp), OPSC_LOG_DEBUG, __VA_ARGS__);                                          \
    } while (0)

#endif
