/* wr_gss.c - GSS-API for WinRM: NTLM and Kerberos credentials, contexts, and message sealing. */
#include "wr_gss.h"

#include <stdio.h>
#include <string.h>

#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include <opsc/errors.h>

#include "wr_crypt.h"
#include "wr_soap.h"

static gss_OID_desc oid_ntlm = {10, (void *)"\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a"};
static gss_OID_desc oid_krb5 = {9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"};

/* The GSS major/minor messages, for humans. */
static void gss_describe(char *err, size_t errlen, const char *what, OM_uint32 major,
                         OM_uint32 minor, gss_OID mech)
{
    char text[384] = "";
    size_t used = 0;
    OM_uint32 ctx = 0, min2;
    int kinds[2] = {GSS_C_GSS_CODE, GSS_C_MECH_CODE};
    OM_uint32 codes[2] = {major, minor};
    for (int k = 0; k < 2; k++) {
        if (k == 1 && !minor)
            break;
        ctx = 0;
        do {
            gss_buffer_desc msg = GSS_C_EMPTY_BUFFER;
            if (gss_display_status(&min2, codes[k], kinds[k], mech, &ctx, &msg) != GSS_S_COMPLETE)
                break;
            int n = snprintf(text + used, sizeof text - used, "%s%.*s", used ? "; " : "",
                             (int)msg.length, (char *)msg.value);
            gss_release_buffer(&min2, &msg);
            if (n > 0)
                used += (size_t)n < sizeof text - used ? (size_t)n : sizeof text - used - 1;
        } while (ctx);
    }
    wr_errf(err, errlen, "%s: %s", what, text);
}

static int import_user(gss_name_t *name, wr_mech mech, const char *user, const char *domain,
                       char full[512], char *err, size_t errlen)
{
    gss_OID type = GSS_C_NT_USER_NAME;
    if (mech == WR_MECH_KERBEROS) {
        type = (gss_OID)GSS_KRB5_NT_PRINCIPAL_NAME;
        if (!strchr(user, '@') && domain && domain[0])
            snprintf(full, 512, "%s@%s", user, domain);
        else
            wr_copy(full, 512, user);
    } else if (domain && domain[0] && !strchr(user, '\\') && !strchr(user, '@')) {
        snprintf(full, 512, "%s\\%s", domain, user);
    } else {
        wr_copy(full, 512, user);
    }
    gss_buffer_desc buf = {strlen(full), full};
    OM_uint32 minor, major = gss_import_name(&minor, &buf, type, name);
    if (GSS_ERROR(major)) {
        gss_describe(err, errlen, "user name not accepted", major, minor, GSS_C_NO_OID);
        return OPSC_EAUTH;
    }
    return 0;
}

/* NTLM only. A SPNEGO credential would make MIT acquire one for every mechanism with
 * the password, and krb5's acquire blocks on realm lookups and the KDC; raw NTLMSSP
 * tokens under the Negotiate scheme are what Windows (and pywinrm) use anyway. */
static int acquire_ntlm(wr_gss_cred *c, gss_name_t name, const char *password, char *err,
                        size_t errlen)
{
    gss_OID_set_desc mechs = {1, &oid_ntlm};
    gss_buffer_desc pw = {strlen(password), (void *)password};
    OM_uint32 minor;
    OM_uint32 major = gss_acquire_cred_with_password(&minor, name, &pw, GSS_C_INDEFINITE, &mechs,
                                                     GSS_C_INITIATE, &c->cred, NULL, NULL);
    if (GSS_ERROR(major)) {
        gss_describe(err, errlen, "NTLM credential", major, minor, &oid_ntlm);
        return OPSC_EAUTH;
    }
    return 0;
}

/* kinit into a private MEMORY ccache (MIT's "password" cred-store key is refused
 * for initiators), so the TGT never touches a file or KRB5CCNAME. */
static int krb5_kinit(wr_gss_cred *c, const char *principal, const char *password, char *err,
                      size_t errlen)
{
    const char *ccname = c->ccache;
    krb5_context k;
    if (krb5_init_context(&k)) {
        wr_errf(err, errlen, "Kerberos: cannot initialise the library (krb5.conf?)");
        return OPSC_ECRYPTO;
    }
    krb5_principal p = NULL;
    krb5_ccache cc = NULL;
    krb5_get_init_creds_opt *opt = NULL;
    krb5_creds creds;
    memset(&creds, 0, sizeof creds);
    bool have_creds = false;
    krb5_error_code code = krb5_parse_name(k, principal, &p);
    if (!code)
        code = krb5_get_init_creds_opt_alloc(k, &opt);
    if (!code) {
        code = krb5_get_init_creds_password(k, &creds, p, password, NULL, NULL, 0, NULL, opt);
        have_creds = !code;
    }
    if (!code)
        code = krb5_cc_resolve(k, ccname, &cc);
    if (!code)
        code = krb5_cc_initialize(k, cc, p);
    if (!code)
        code = krb5_cc_store_cred(k, cc, &creds);
    int rc = 0;
    if (code) {
        const char *msg = krb5_get_error_message(k, code);
        wr_errf(err, errlen, "Kerberos: initial ticket for %s: %s", principal, msg);
        krb5_free_error_message(k, msg);
        rc = code == KRB5_KDC_UNREACH ? OPSC_EHOSTUNREACH : OPSC_EAUTH;
    }
    if (have_creds)
        krb5_free_cred_contents(k, &creds);
    if (cc)
        krb5_cc_close(k, cc);
    if (opt)
        krb5_get_init_creds_opt_free(k, opt);
    if (p)
        krb5_free_principal(k, p);
    /* Kept for wr_gss_cred_release (on the loop): a new context would read krb5.conf. */
    c->kctx = k;
    return rc;
}

static int acquire_krb5(wr_gss_cred *c, gss_name_t name, const char *principal,
                        const char *password, char *err, size_t errlen)
{
    char id[48];
    wr_uuid(id);
    snprintf(c->ccache, sizeof c->ccache, "MEMORY:opsc-%s", id + 5);
    int rc = krb5_kinit(c, principal, password, err, errlen);
    if (rc)
        return rc;
    /* A private MEMORY ccache per connection: no KRB5CCNAME, no process-wide state. */
    gss_key_value_element_desc kv[1] = {{"ccache", c->ccache}};
    gss_key_value_set_desc store = {1, kv};
    gss_OID_set_desc mechs = {1, &oid_krb5};
    OM_uint32 minor;
    OM_uint32 major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE,
                                            &store, &c->cred, NULL, NULL);
    if (GSS_ERROR(major)) {
        gss_describe(err, errlen, "Kerberos credential", major, minor, &oid_krb5);
        return OPSC_EAUTH;
    }
    return 0;
}

int wr_gss_cred_acquire(wr_gss_cred *c, wr_mech mech, const char *user, const char *domain,
                        const char *password, char *err, size_t errlen)
{
    *c = (wr_gss_cred){.cred = GSS_C_NO_CREDENTIAL, .mech = mech};
    if (!user || !password) {
        wr_errf(err, errlen, "the credential needs a username and a password");
        return OPSC_EAUTH;
    }
    gss_name_t name = GSS_C_NO_NAME;
    char full[512];
    int rc = import_user(&name, mech, user, domain, full, err, errlen);
    if (!rc)
        rc = mech == WR_MECH_NTLM ? acquire_ntlm(c, name, password, err, errlen)
                                  : acquire_krb5(c, name, full, password, err, errlen);
    OM_uint32 minor;
    gss_release_name(&minor, &name);
    if (rc)
        wr_gss_cred_release(c);
    return rc;
}

void wr_gss_cred_release(wr_gss_cred *c)
{
    OM_uint32 minor;
    if (c->cred != GSS_C_NO_CREDENTIAL)
        gss_release_cred(&minor, &c->cred);
    c->cred = GSS_C_NO_CREDENTIAL;
    krb5_context k = c->kctx;
    if (k && c->ccache[0]) {
        /* Destroy the MEMORY ccache so no ticket outlives the connection. */
        krb5_ccache cc;
        if (!krb5_cc_resolve(k, c->ccache, &cc))
            krb5_cc_destroy(k, cc);
    }
    if (k)
        krb5_free_context(k);
    c->kctx = NULL;
    c->ccache[0] = '\0';
}

int wr_gss_ctx_start(wr_gss_ctx *x, const char *service_host, char *err, size_t errlen)
{
    *x = (wr_gss_ctx){.ctx = GSS_C_NO_CONTEXT, .target = GSS_C_NO_NAME};
    char svc[300];
    snprintf(svc, sizeof svc, "HTTP@%s", service_host);
    gss_buffer_desc buf = {strlen(svc), svc};
    OM_uint32 minor, major = gss_import_name(&minor, &buf, GSS_C_NT_HOSTBASED_SERVICE, &x->target);
    if (GSS_ERROR(major)) {
        gss_describe(err, errlen, "service name", major, minor, GSS_C_NO_OID);
        return OPSC_EAUTH;
    }
    return 0;
}

int wr_gss_step(wr_gss_ctx *x, const wr_gss_cred *c, const void *in, size_t inlen,
                const uint8_t *binding, size_t binding_len, wr_buf *out, char *err, size_t errlen)
{
    gss_buffer_desc input = {inlen, (void *)in};
    gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
    gss_OID mech = c->mech == WR_MECH_NTLM ? &oid_ntlm : &oid_krb5;
    gss_OID actual = GSS_C_NO_OID;
    OM_uint32 flags = GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG | GSS_C_MUTUAL_FLAG;
    /* Extended Protection: the tls-server-end-point data, as Windows expects it. */
    static const char prefix[] = "tls-server-end-point:";
    uint8_t appdata[sizeof prefix + 64];
    struct gss_channel_bindings_struct cb;
    memset(&cb, 0, sizeof cb);
    gss_channel_bindings_t cbp = GSS_C_NO_CHANNEL_BINDINGS;
    if (binding && binding_len && binding_len <= 64) {
        memcpy(appdata, prefix, sizeof prefix - 1);
        memcpy(appdata + sizeof prefix - 1, binding, binding_len);
        cb.application_data.length = sizeof prefix - 1 + binding_len;
        cb.application_data.value = appdata;
        cbp = &cb;
    }
    OM_uint32 minor;
    OM_uint32 major =
        gss_init_sec_context(&minor, c->cred, &x->ctx, x->target, mech, flags, 0, cbp,
                             in ? &input : GSS_C_NO_BUFFER, &actual, &output, NULL, NULL);
    if (GSS_ERROR(major)) {
        gss_describe(err, errlen,
                     c->mech == WR_MECH_NTLM ? "NTLM authentication" : "Kerberos authentication",
                     major, minor, mech);
        return OPSC_EAUTH;
    }
    if (output.length)
        wr_buf_add(out, output.value, output.length);
    gss_release_buffer(&minor, &output);
    if (major == GSS_S_COMPLETE) {
        x->complete = true;
        x->krb5 = actual && actual->length == oid_krb5.length &&
                  !memcmp(actual->elements, oid_krb5.elements, oid_krb5.length);
    }
    return out->oom ? OPSC_ENOMEM : 0;
}

/* NTLM: gss_wrap gives the 16-byte signature followed by the sealed data
 * (gss-ntlmssp 1.2 has no gss_wrap_iov). Kerberos: gss_wrap_iov with a separate
 * header, as Windows frames it. */
int wr_gss_seal_body(wr_gss_ctx *x, const char *protocol, const void *plain, size_t len,
                     wr_buf *out, char *err, size_t errlen)
{
    OM_uint32 minor, major;
    if (!x->krb5) {
        gss_buffer_desc in = {len, (void *)plain}, tok = GSS_C_EMPTY_BUFFER;
        major = gss_wrap(&minor, x->ctx, 1, GSS_C_QOP_DEFAULT, &in, NULL, &tok);
        if (GSS_ERROR(major) || tok.length < 16) {
            gss_describe(err, errlen, "NTLM seal", major, minor, &oid_ntlm);
            gss_release_buffer(&minor, &tok);
            return OPSC_ECRYPTO;
        }
        wr_crypt_frame(out, protocol, len, tok.value, 16, (uint8_t *)tok.value + 16,
                       tok.length - 16);
        gss_release_buffer(&minor, &tok);
        return out->oom ? OPSC_ENOMEM : 0;
    }
    wr_buf data = {0};
    wr_buf_add(&data, plain, len);
    if (data.oom)
        return OPSC_ENOMEM;
    gss_iov_buffer_desc iov[3] = {
        {GSS_IOV_BUFFER_TYPE_HEADER | GSS_IOV_BUFFER_FLAG_ALLOCATE, GSS_C_EMPTY_BUFFER},
        {GSS_IOV_BUFFER_TYPE_DATA, {len, data.p}},
        {GSS_IOV_BUFFER_TYPE_PADDING | GSS_IOV_BUFFER_FLAG_ALLOCATE, GSS_C_EMPTY_BUFFER},
    };
    int conf = 0;
    major = gss_wrap_iov(&minor, x->ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov, 3);
    int rc = 0;
    if (GSS_ERROR(major) || !conf) {
        gss_describe(err, errlen, "Kerberos seal", major, minor, &oid_krb5);
        rc = OPSC_ECRYPTO;
    } else {
        wr_buf sealed = {0};
        wr_buf_add(&sealed, iov[1].buffer.value, iov[1].buffer.length);
        wr_buf_add(&sealed, iov[2].buffer.value, iov[2].buffer.length);
        wr_crypt_frame(out, protocol, len, iov[0].buffer.value, iov[0].buffer.length, sealed.p,
                       sealed.len);
        wr_buf_free(&sealed);
        rc = out->oom ? OPSC_ENOMEM : 0;
    }
    gss_release_iov_buffer(&minor, iov, 3);
    wr_buf_wipe(&data);
    return rc;
}

int wr_gss_unseal_body(wr_gss_ctx *x, const uint8_t *body, size_t len, wr_buf *plain, char *err,
                       size_t errlen)
{
    wr_crypt_parts parts;
    int rc = wr_crypt_parse(body, len, &parts, err, errlen);
    if (rc)
        return rc;
    OM_uint32 minor, major;
    if (!x->krb5) {
        wr_buf tok = {0};
        wr_buf_add(&tok, parts.sig, parts.sig_len);
        wr_buf_add(&tok, parts.sealed, parts.sealed_len);
        gss_buffer_desc in = {tok.len, tok.p}, outb = GSS_C_EMPTY_BUFFER;
        major = tok.oom ? GSS_S_FAILURE : gss_unwrap(&minor, x->ctx, &in, &outb, NULL, NULL);
        wr_buf_free(&tok);
        if (GSS_ERROR(major)) {
            gss_describe(err, errlen, "NTLM unseal", major, minor, &oid_ntlm);
            return OPSC_ECRYPTO;
        }
        wr_buf_add(plain, outb.value, outb.length);
        gss_release_buffer(&minor, &outb);
    } else {
        size_t base = plain->len;
        wr_buf_add(plain, parts.sealed, parts.sealed_len);
        wr_buf hdr = {0};
        wr_buf_add(&hdr, parts.sig, parts.sig_len);
        if (plain->oom || hdr.oom) {
            wr_buf_free(&hdr);
            return OPSC_ENOMEM;
        }
        gss_iov_buffer_desc iov[3] = {
            {GSS_IOV_BUFFER_TYPE_HEADER, {hdr.len, hdr.p}},
            {GSS_IOV_BUFFER_TYPE_DATA, {parts.sealed_len, plain->p + base}},
            {GSS_IOV_BUFFER_TYPE_DATA, GSS_C_EMPTY_BUFFER},
        };
        major = gss_unwrap_iov(&minor, x->ctx, NULL, NULL, iov, 3);
        wr_buf_free(&hdr);
        if (GSS_ERROR(major)) {
            gss_describe(err, errlen, "Kerberos unseal", major, minor, &oid_krb5);
            return OPSC_ECRYPTO;
        }
        plain->len = base + iov[1].buffer.length;
        plain->p[plain->len] = '\0';
    }
    if (plain->len != parts.plain_len) {
        wr_errf(err, errlen, "decrypted %zu bytes, the frame announced %zu", plain->len,
                parts.plain_len);
        return OPSC_EPROTO;
    }
    return plain->oom ? OPSC_ENOMEM : 0;
}

void wr_gss_ctx_free(wr_gss_ctx *x)
{
    OM_uint32 minor;
    if (x->ctx != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&minor, &x->ctx, GSS_C_NO_BUFFER);
    if (x->target != GSS_C_NO_NAME)
        gss_release_name(&minor, &x->target);
    *x = (wr_gss_ctx){.ctx = GSS_C_NO_CONTEXT, .target = GSS_C_NO_NAME};
}
