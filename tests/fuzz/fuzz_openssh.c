/* fuzz_openssh.c - libFuzzer target for what transport-openssh reads from users and hosts:
 * transport_options (JSON from the API), OpenSSH certificates (from credentials), jump host
 * specs, ssh -v output (partly the server's words) and the end-of-command markers on stderr. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oss_cert.h"
#include "oss_options.h"
#include "oss_sshlog.h"
#include "oss_tail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ud, const char *d, size_t len)
{
    size_t *total = ud;
    *total += len ? (unsigned char)d[0] + len : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512];
    static oss_options o; /* large: not on the stack */
    oss_options_parse(text, &o, err, sizeof err);
    oss_jump_spec j;
    memset(&j, 0, sizeof j);
    oss_hostspec_parse(text, &j, err, sizeof err);
    oss_user_ok(text);
    oss_cert c;
    if (oss_cert_parse(text, &c, err, sizeof err) == 0)
        oss_cert_valid_at(&c, 1700000000, err, sizeof err);
    oss_sshlog log;
    memset(&log, 0, sizeof log);
    for (size_t off = 0; off <= size;) {
        const char *nl = memchr(text + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : size - off;
        oss_sshlog_line(&log, text + off, n);
        off += n + 1;
    }
    char algs[600];
    oss_sshlog_algorithms(&log, algs, sizeof algs);
    oss_tail t;
    memset(&t, 0, sizeof t);
    size_t total = 0, half = size / 2;
    oss_tail_feed(&t, text, half, sink, &total);
    oss_tail_feed(&t, text + half, size - half, sink, &total);
    oss_tail_flush(&t, sink, &total);
    free(text);
    return 0;
}
