/* oss_options.h - an OpenSSH target's transport_options: parsed and checked, with clear messages.
 *
 * Pure code (jansson, no loop, no I/O): the plugin, the unit tests and the
 * fuzz target share it. Every value that reaches ssh's command line passes
 * through here first: option names are matched against an allow-list,
 * values against a character set without spaces, quotes, '%' (ssh's token
 * expansion) or control characters, and jump hosts are parsed into their
 * parts, never handed over as text.
 */
#ifndef OSS_OPTIONS_H
#define OSS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define OSS_MAX_JUMPS  8
#define OSS_MAX_EXTRA  32
#define OSS_MAX_PINNED 16
#define OSS_UUID_LEN   37
#define OSS_VALUE_MAX  512

/* One jump host of transport_options.jump. */
typedef struct oss_jump_spec {
    char target_id[OSS_UUID_LEN];     /* a target, resolved by the host; "" for a host spec */
    char user[65];                    /* "" : the credential's */
    char host[256];                   /* DNS name, IPv4 or IPv6 (without brackets) */
    int port;                         /* 0: 22 */
    char policy[8];                   /* host spec: "strict" (default) or "off" */
    char pinned[OSS_MAX_PINNED * 80]; /* host spec: "type SHA256:..\n" lines of host_keys */
    bool credential;                  /* host spec with its own credential_id */
} oss_jump_spec;

typedef struct oss_options {
    oss_jump_spec jumps[OSS_MAX_JUMPS];
    size_t njumps;
    int certificate; /* -1: when the credential has one; 0: never; 1: required */
    bool gssapi;     /* GSSAPI (Kerberos) authentication first */
    char extra[OSS_MAX_EXTRA][OSS_VALUE_MAX + 64]; /* "Keyword=value" for ssh -o */
    size_t nextra;
} oss_options;

/* Parse `json` (NULL or "" mean {}) into *o. 0, or OPSC_ESCHEMA with a
 * message naming the member in err. OPSC_ENOMEM never: nothing is allocated
 * but jansson's own tree. */
int oss_options_parse(const char *json, oss_options *o, char *err, size_t errlen);

/* The canonical spelling of an allow-listed ssh option, or NULL. */
const char *oss_option_allowed(const char *keyword);

/* "[user@]host[:port]" or "[user@][v6addr]:port" into a jump spec. */
int oss_hostspec_parse(const char *s, oss_jump_spec *j, char *err, size_t errlen);

/* A user name ssh may receive on its command line: no '%', no '@' or
 * blanks, no control characters, no leading '-'. */
bool oss_user_ok(const char *user);

/* The text of the JSON Schema for transport_options (static). */
const char *oss_options_schema(void);

#endif
