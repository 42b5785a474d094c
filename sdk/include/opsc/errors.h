/* opsc/errors.h - the one error convention shared by the host and every plugin.
 *
 * Every function in the SDK that can fail returns an int: 0 on success, a
 * negative OPSC_E* code on failure. System errors keep their errno value,
 * negated (OPSC_ENOENT == -ENOENT), so `-errno` from a failed system call can
 * be returned as is. Codes that have no errno equivalent live below -10000.
 *
 * A code says what kind of failure happened, never the details: those travel
 * separately, in an error-message out-parameter or a callback argument, and
 * are meant for humans. Never parse a message to decide what to do.
 *
 * Codes are generated from one X-macro so that the enum, opsc_strerror() and
 * opsc_err_name() cannot drift apart. New codes are appended; values never
 * change (they cross the plugin ABI).
 *
 * Thread: all functions here are pure and may be called from any thread.
 */
#ifndef OPSC_ERRORS_H
#define OPSC_ERRORS_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message) */
#define OPSC_ERRNO_MAP(XX)                                                                         \
    XX(EPERM, -EPERM, "operation not permitted")                                                   \
    XX(ENOENT, -ENOENT, "not found")                                                               \
    XX(EIO, -EIO, "input/output error")                                                            \
    XX(E2BIG, -E2BIG, "too large")                                                                 \
    XX(EAGAIN, -EAGAIN, "try again")                                                               \
    XX(ENOMEM, -ENOMEM, "out of memory")                                                           \
    XX(EACCES, -EACCES, "permission denied")                                                       \
    XX(EBUSY, -EBUSY, "resource busy")                                                             \
    XX(EEXIST, -EEXIST, "already exists")                                                          \
    XX(EINVAL, -EINVAL, "invalid argument")                                                        \
    XX(ENOSPC, -ENOSPC, "no space left")                                                           \
    XX(EPIPE, -EPIPE, "broken pipe")                                                               \
    XX(ERANGE, -ERANGE, "value out of range")                                                      \
    XX(ENOTSUP, -ENOTSUP, "operation not supported")                                               \
    XX(EPROTO, -EPROTO, "protocol error")                                                          \
    XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                                        \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                                         \
    XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                                          \
    XX(EHOSTUNREACH, -EHOSTUNREACH, "host unreachable")                                            \
    XX(ECANCELED, -ECANCELED, "cancelled")                                                         \
    XX(ECONFLICT, -10001, "version conflict")                                                      \
    XX(EABI, -10002, "incompatible plugin ABI")                                                    \
    XX(EAUTH, -10003, "authentication failed")                                                     \
    XX(EHOSTKEY, -10004, "host key verification failed")                                           \
    XX(ESTATE, -10005, "not allowed in the current state")                                         \
    XX(ESCHEMA, -10006, "validation failed")                                                       \
    XX(EDNS, -10007, "name resolution failed")                                                     \
    XX(ECRYPTO, -10008, "cryptographic failure")                                                   \
    XX(ECORRUPT, -10009, "data corrupt")                                                           \
    XX(EPLUGIN, -10010, "plugin failure")                                                          \
    XX(ESYNTAX, -10011, "syntax error")                                                            \
    XX(EREMOTE, -10012, "remote side reported an error")

typedef enum opsc_err {
#define OPSC_ERR_ENUM_(name, value, msg) OPSC_##name = (value),
    OPSC_ERRNO_MAP(OPSC_ERR_ENUM_)
#undef OPSC_ERR_ENUM_
} opsc_err;

/* A static, human-readable message for `err`; "unknown error" for codes not
 * in the map (including positive values). Never NULL. */
static inline const char *opsc_strerror(int err)
{
    switch (err) {
#define OPSC_ERR_MSG_(name, value, msg)                                                            \
    case (value):                                                                                  \
        return msg;
        OPSC_ERRNO_MAP(OPSC_ERR_MSG_)
#undef OPSC_ERR_MSG_
    default:
        return err == 0 ? "success" : "unknown error";
    }
}

/* The code's name without the prefix ("ENOENT"), for logs and JSON;
 * "EUNKNOWN" for codes not in the map. Never NULL. */
static inline const char *opsc_err_name(int err)
{
    switch (err) {
#define OPSC_ERR_NAME_(name, value, msg)                                                           \
    case (value):                                                                                  \
        return #name;
        OPSC_ERRNO_MAP(OPSC_ERR_NAME_)
#undef OPSC_ERR_NAME_
    default:
        return err == 0 ? "OK" : "EUNKNOWN";
    }
}

#ifdef __cplusplus
}
#endif
#endif /* OPSC_ERRORS_H */
