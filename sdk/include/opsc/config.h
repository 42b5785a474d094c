/* opsc/config.h - config maps: how a plugin declares the keys of its config section.
 *
 * A plugin's settings live in its own section of the daemon's config file,
 * `[plugin.<name>]`. The plugin does not parse that text: it declares a
 * table of entries (key, type, default, bounds, flags, where to store the
 * value) and asks the host to bind the section to a struct of its own with
 * opsc_host_api.config_bind(). The host applies defaults, checks types and
 * bounds, and rejects unknown keys with an error that names the file, the
 * line, the key and the valid keys. The same tables validate the daemon's
 * own sections, so every key of the product behaves alike.
 *
 * Example:
 *
 *     struct ssh_settings { int64_t keepalive_s; bool compress; const char *ciphers; };
 *     static const opsc_cfg_entry ssh_map[] = {
 *         {"keepalive", OPSC_CFG_DURATION, "30s", 0, 3600 * 1000, NULL, 0,
 *          offsetof(struct ssh_settings, keepalive_s), "SSH keepalive interval"},
 *         ...
 *         {NULL},
 *     };
 *
 * Thread: tables are read-only data; binding happens on the loop thread.
 */
#ifndef OPSC_CONFIG_H
#define OPSC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Value types and the C type each is stored as at `offset`. Appended only. */
typedef enum opsc_cfg_type {
    OPSC_CFG_STRING = 1, /* const char *: borrowed from the host, valid until the plugin's
                            shutdown() returns (or, for the daemon, until the config is freed) */
    OPSC_CFG_INT,        /* int64_t, checked against [min, max] */
    OPSC_CFG_BOOL,       /* bool: true/false, yes/no, on/off, 1/0 */
    OPSC_CFG_DURATION,   /* int64_t milliseconds; text "250ms", "30s", "5m", "2h", "1d";
                            a bare number means seconds. Bounds in milliseconds. */
    OPSC_CFG_SIZE,       /* int64_t bytes; text "512", "64k", "16M", "2G" (powers of 1024) */
    OPSC_CFG_ENUM,       /* int: index of the value in `choices` ("text|json") */
} opsc_cfg_type;

/* Entry flags. */
#define OPSC_CFG_REQUIRED (1u << 0) /* no default: the key must be present */
#define OPSC_CFG_SECRET   (1u << 1) /* never echoed in logs or error messages */
#define OPSC_CFG_RELOAD   (1u << 2) /* may change on SIGHUP without a restart */

typedef struct opsc_cfg_entry {
    const char *key;     /* [a-z0-9_]+; NULL ends the table */
    opsc_cfg_type type;
    const char *def;     /* default, written as in the file; NULL: none (zero value) */
    int64_t min, max;    /* inclusive bounds for INT/DURATION/SIZE; ignored when min > max */
    const char *choices; /* OPSC_CFG_ENUM: values separated by '|' */
    unsigned flags;      /* OPSC_CFG_* flags */
    size_t offset;       /* offsetof() the field in the destination struct */
    const char *doc;     /* one line for --help and error messages */
} opsc_cfg_entry;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_CONFIG_H */
