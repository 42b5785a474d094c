/* opsc/auth.h - auth providers: who may log in, and with which role.
 *
 * An auth plugin registers an opsc_auth_provider with
 * opsc_host_api.register_auth_provider(). At login the host asks the
 * providers in the order the config lists them; the first that knows the
 * user decides. The host then issues its own tokens: providers only answer
 * "who is this and what role", never session state.
 *
 * Thread: authenticate() runs on a worker thread of the host and may block
 * (an LDAP bind, a password hash); it must be safe to call concurrently.
 * It must never log the password.
 */
#ifndef OPSC_AUTH_H
#define OPSC_AUTH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Who the provider says the user is. Filled by the provider into
 * host-provided buffers; the host copies it before the next call. */
typedef struct opsc_identity {
    size_t size;
    char username[128];
    char display_name[256];
    char email[256];
    char role[16]; /* "admin", "operator", "viewer"; "" lets the host keep the local user's
                      role (or refuse if there is none) */
} opsc_identity;

typedef struct opsc_auth_provider {
    size_t size;
    const char *name; /* "local", "ldap": the names users' `provider` field takes */
    const char *summary;
    /* Check a username and password. Both are borrowed until return.
     * Return 0 and fill `id` when they are good; OPSC_EAUTH when the user is
     * known and the password wrong; OPSC_ENOENT when the provider does not know
     * the user (the host asks the next one); another code for a failure of
     * the provider itself (server down), explained in `err`. */
    int (*authenticate)(void *state, const char *username, const char *password,
                        opsc_identity *id, char *err, size_t errlen);
} opsc_auth_provider;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_AUTH_H */
