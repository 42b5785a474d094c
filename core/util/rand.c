/* rand.c - kernel randomness and secret-hygiene helpers. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

int rand_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int rand_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (nbytes > sizeof(raw))
        return -EINVAL;
    int rc = rand_bytes(raw, nbytes);
    if (rc)
        return rc;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    secure_zero(raw, sizeof(raw));
    return 0;
}

void secure_zero(void *p, size_t n)
{
    explicit_bzero(p, n);
}

bool ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}
