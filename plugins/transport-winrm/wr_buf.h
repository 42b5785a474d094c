/* wr_buf.h - a growable byte buffer and small text helpers shared by the WinRM plugin's files. */
#ifndef WR_BUF_H
#define WR_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wr_buf {
    char *p; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    bool oom; /* an append failed: the content is incomplete */
} wr_buf;

void wr_buf_free(wr_buf *b);
/* Zero the content before freeing (for buffers that held secrets or plaintext). */
void wr_buf_wipe(wr_buf *b);
void wr_buf_reset(wr_buf *b);
bool wr_buf_reserve(wr_buf *b, size_t extra);
void wr_buf_add(wr_buf *b, const void *data, size_t len);
void wr_buf_adds(wr_buf *b, const char *s);
void wr_buf_addf(wr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append `s` escaped for XML text and attribute values. */
void wr_buf_add_xml(wr_buf *b, const char *s, size_t len);
/* Drop the first n bytes. */
void wr_buf_consume(wr_buf *b, size_t n);

/* Base64 (RFC 4648, padded). encoded length of n bytes: */
static inline size_t wr_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}
void wr_b64_encode(wr_buf *out, const void *data, size_t len);
/* Decodes, ignoring ASCII whitespace. Returns bytes written, or -1 on bad input.
 * `out` needs room for len * 3 / 4 bytes. In-place decoding (out == in) works. */
long wr_b64_decode(const char *in, size_t len, uint8_t *out);

/* UTF-8 text as UTF-16LE bytes (invalid sequences become U+FFFD). */
void wr_utf16le_from_utf8(wr_buf *out, const char *s, size_t len);

/* Copy src into dst (NUL-terminated, truncated; NULL src gives ""). */
void wr_copy(char *dst, size_t n, const char *src);

/* snprintf into err (NUL-terminated, truncated). */
void wr_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
