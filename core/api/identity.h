/* identity.h - route tables of the identity resources: auth, users, tokens, credentials, vault,
 * audit. Each register function adds its routes to core->http; handlers reach core->auth and
 * core->vault through http_req_app(). */
#ifndef OPSC_API_IDENTITY_H
#define OPSC_API_IDENTITY_H

struct opsc_core;

int api_login_register(struct opsc_core *c);       /* /api/v1/auth/... */
int api_users_register(struct opsc_core *c);       /* /api/v1/users... */
int api_tokens_register(struct opsc_core *c);      /* /api/v1/tokens... */
int api_credentials_register(struct opsc_core *c); /* /api/v1/credentials..., /api/v1/vault/... */
int api_audit_register(struct opsc_core *c);       /* /api/v1/audit */

/* All of the above. */
int api_identity_register(struct opsc_core *c);

#endif
