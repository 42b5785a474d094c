/* wr_crypt.h - WinRM message encryption framing (MS-WSMV 2.2.9.1 multipart/encrypted), pure byte
 * work. */
#ifndef WR_CRYPT_H
#define WR_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "wr_buf.h"

#define WR_PROTO_SPNEGO   "application/HTTP-SPNEGO-session-encrypted"
#define WR_PROTO_KERBEROS "application/HTTP-Kerberos-session-encrypted"

/* Content-Type of an encrypted body for `protocol`. */
void wr_crypt_content_type(wr_buf *out, const char *protocol);
/* Body around a sealed message: `sig` (the GSS header or NTLM signature) and the
 * sealed bytes; `plain_len` is the length of the plaintext. */
void wr_crypt_frame(wr_buf *out, const char *protocol, size_t plain_len, const void *sig,
                    size_t sig_len, const void *sealed, size_t sealed_len);

typedef struct wr_crypt_parts {
    const uint8_t *sig;
    size_t sig_len;
    const uint8_t *sealed;
    size_t sealed_len;
    size_t plain_len; /* OriginalContent Length */
} wr_crypt_parts;

/* Split an encrypted body. OPSC_EPROTO with a message when it is malformed. */
int wr_crypt_parse(const uint8_t *body, size_t len, wr_crypt_parts *out, char *err, size_t errlen);

#endif
