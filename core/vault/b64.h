/* b64.h - base64 (RFC 4648 section 4) and base64url (section 5) codecs for keys, blobs and tokens.
 * Thread: pure functions, any thread. */
#ifndef OPSC_B64_H
#define OPSC_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encoded length of n bytes, with padding (base64) and without (base64url), excluding NUL. */
#define B64_LEN(n)    ((((n) + 2) / 3) * 4)
#define B64URL_LEN(n) (((n)*4 + 2) / 3)

/* Encode `n` bytes into out (room for the length above + NUL). Returns the length. */
size_t b64_encode(const void *in, size_t n, char *out);
size_t b64url_encode(const void *in, size_t n, char *out);

/* Decode text of length `len` into out (room for len * 3 / 4 bytes). Strict:
 * base64 needs correct padding, base64url has none; other characters,
 * bad lengths and non-zero trailing bits fail. 0 and *outlen, or OPSC_EINVAL. */
int b64_decode(const char *in, size_t len, uint8_t *out, size_t *outlen);
int b64url_decode(const char *in, size_t len, uint8_t *out, size_t *outlen);

#endif
