/* wr_gss.h - GSS-API (MIT krb5 + gss-ntlmssp) credentials, security contexts and WinRM sealing. */
#ifndef WR_GSS_H
#define WR_GSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gssapi/gssapi.h>

#include "wr_buf.h"

typedef enum wr_mech {
    WR_MECH_NTLM,     /* gss-ntlmssp: raw NTLMSSP tokens under Negotiate (or NTLM) */
    WR_MECH_KERBEROS, /* MIT krb5, raw krb5 tokens under Negotiate or Kerberos */
} wr_mech;

/* A credential of one connection. The password is handed to GSS-API at acquire
 * time and not kept by us; Kerberos tickets live in a private MEMORY ccache. */
typedef struct wr_gss_cred {
    gss_cred_id_t cred;
    wr_mech mech;
    char ccache[64];
    void *kctx; /* krb5_context of the Kerberos credential, or NULL */
} wr_gss_cred;

/* Acquire. Kerberos may contact the KDC: call it on a worker thread.
 * OPSC_EAUTH / OPSC_ECRYPTO with a message (never containing the password). */
int wr_gss_cred_acquire(wr_gss_cred *c, wr_mech mech, const char *user, const char *domain,
                        const char *password, char *err, size_t errlen);
void wr_gss_cred_release(wr_gss_cred *c);

/* One security context (one authenticated HTTP connection). */
typedef struct wr_gss_ctx {
    gss_ctx_id_t ctx;
    gss_name_t target;
    bool complete;
    bool krb5; /* the mechanism actually negotiated is Kerberos (decides the wrap layout) */
    uint32_t seq_out;
} wr_gss_ctx;

/* `service_host` gives the target name HTTP@host. */
int wr_gss_ctx_start(wr_gss_ctx *x, const char *service_host, char *err, size_t errlen);
/* One step: feeds the peer's token (NULL first) and appends ours to `out` (maybe
 * nothing). `binding` (tls-server-end-point bytes, may be NULL) binds the context to
 * the TLS channel. Kerberos' first step may contact the KDC (worker thread).
 * OPSC_EAUTH with the GSS message on failure. */
int wr_gss_step(wr_gss_ctx *x, const wr_gss_cred *c, const void *in, size_t inlen,
                const uint8_t *binding, size_t binding_len, wr_buf *out, char *err, size_t errlen);
/* Seal `plain` and append the multipart body for `protocol` to `out`. */
int wr_gss_seal_body(wr_gss_ctx *x, const char *protocol, const void *plain, size_t len,
                     wr_buf *out, char *err, size_t errlen);
/* Unseal a multipart/encrypted body into `plain`. */
int wr_gss_unseal_body(wr_gss_ctx *x, const uint8_t *body, size_t len, wr_buf *plain, char *err,
                       size_t errlen);
void wr_gss_ctx_free(wr_gss_ctx *x);

#endif
