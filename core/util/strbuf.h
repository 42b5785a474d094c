/* strbuf.h - a growable byte buffer for building responses and messages.
 * An allocation failure sets `oom` and makes later appends no-ops, so
 * callers check once at the end instead of after every append. */
#ifndef OPSC_STRBUF_H
#define OPSC_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *buf; /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    bool oom;
} strbuf;

#define STRBUF_INIT {NULL, 0, 0, false}

void sb_append(strbuf *sb, const void *data, size_t len);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
void sb_reset(strbuf *sb); /* len = 0, keeps the memory */
void sb_free(strbuf *sb);
/* Hand the buffer over (caller frees); the strbuf is reset to empty. NULL on oom. */
char *sb_steal(strbuf *sb, size_t *len);

#endif
