/* oss_cert.h - reading an OpenSSH user certificate ("ssh-ed25519-cert-v01@openssh.com AAAA...").
 *
 * Only what a clear error needs: the type, the key id, the serial and the
 * validity window. Pure code: the certificate comes from a user and is
 * fuzzed (tests/fuzz/fuzz_openssh.c).
 */
#ifndef OSS_CERT_H
#define OSS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct oss_cert {
    char type[64];    /* "ssh-ed25519-cert-v01@openssh.com" */
    char key_id[128]; /* printable part of the key id */
    uint64_t serial;
    bool user;             /* a user certificate (not a host one) */
    uint64_t valid_after;  /* seconds since the epoch; 0: always */
    uint64_t valid_before; /* UINT64_MAX: forever */
} oss_cert;

/* Parse one line "<type> <base64> [comment]". 0, or -1 with a reason in err. */
int oss_cert_parse(const char *line, oss_cert *c, char *err, size_t errlen);

/* Whether `now` (seconds) is inside the window; when not, a sentence in err. */
bool oss_cert_valid_at(const oss_cert *c, uint64_t now, char *err, size_t errlen);

#endif
