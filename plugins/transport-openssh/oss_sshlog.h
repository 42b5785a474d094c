/* oss_sshlog.h - what ssh -v says while it connects: facts for the host, reasons for failures.
 *
 * A master runs with -v: its stderr carries the server's identification,
 * the negotiated algorithms, the host key it saw, the auth methods it tried
 * and, at the end, why it gave up. The lines come from the server in part
 * (the version string), so the parser is pure, bounded and fuzzed.
 */
#ifndef OSS_SSHLOG_H
#define OSS_SSHLOG_H

#include <stdbool.h>
#include <stddef.h>

enum oss_phase { PH_START, PH_CONNECT, PH_HANDSHAKE, PH_AUTH, PH_READY };

typedef struct oss_sshlog {
    char banner[160]; /* "SSH-2.0-OpenSSH_9.2p1 Debian-2" */
    char key_type[48], key_fp[64];
    char kex[64], hostkey_alg[64];
    char cipher[64], mac[64], cipher_in[64], mac_in[64], compression[32];
    char auth[48];     /* the method that succeeded */
    char methods[160]; /* what the server offers */
    char tried[160];   /* what we tried, in order */
    bool cert_offered;
    enum oss_phase phase;
    bool ready;            /* authenticated, mux listener up */
    int code;              /* the first failure recognised (OPSC_E*), 0 when none */
    char detail[320];      /* ssh's own words for it */
    char first_error[320]; /* the first line that is not debug output */
} oss_sshlog;

/* One line without its newline (a trailing \r is ignored). */
void oss_sshlog_line(oss_sshlog *l, const char *line, size_t n);

/* The facts as a JSON object text (static buffer of the caller, cap bytes). */
void oss_sshlog_algorithms(const oss_sshlog *l, char *out, size_t cap);

#endif
