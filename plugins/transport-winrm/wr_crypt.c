/* wr_crypt.c - the multipart/encrypted framing of sealed WinRM messages. */
#include "wr_crypt.h"

#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#define BOUNDARY "--Encrypted Boundary"

void wr_crypt_content_type(wr_buf *out, const char *protocol)
{
    wr_buf_addf(out, "multipart/encrypted;protocol=\"%s\";boundary=\"Encrypted Boundary\"",
                protocol);
}

void wr_crypt_frame(wr_buf *out, const char *protocol, size_t plain_len, const void *sig,
                    size_t sig_len, const void *sealed, size_t sealed_len)
{
    wr_buf_addf(out,
                BOUNDARY
                "\r\n\tContent-Type: %s\r\n"
                "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%zu\r\n" BOUNDARY
                "\r\n\tContent-Type: application/octet-stream\r\n",
                protocol, plain_len);
    uint8_t le[4] = {(uint8_t)sig_len, (uint8_t)(sig_len >> 8), (uint8_t)(sig_len >> 16),
                     (uint8_t)(sig_len >> 24)};
    wr_buf_add(out, le, 4);
    wr_buf_add(out, sig, sig_len);
    wr_buf_add(out, sealed, sealed_len);
    wr_buf_adds(out, BOUNDARY "--\r\n");
}

static const uint8_t *find(const uint8_t *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    return n <= len ? memmem(hay, len, needle, n) : NULL;
}

int wr_crypt_parse(const uint8_t *body, size_t len, wr_crypt_parts *out, char *err, size_t errlen)
{
    static const char octet[] = "application/octet-stream\r\n";
    const uint8_t *lenp = find(body, len, "Length=");
    const uint8_t *second = find(body + 1, len ? len - 1 : 0, BOUNDARY "\r\n");
    const uint8_t *data = second ? find(second, len - (size_t)(second - body), octet) : NULL;
    if (!lenp || !data) {
        wr_errf(err, errlen, "encrypted response: multipart framing not understood");
        return OPSC_EPROTO;
    }
    out->plain_len = strtoul((const char *)lenp + 7, NULL, 10);
    data += sizeof octet - 1;
    size_t left = len - (size_t)(data - body);
    /* The payload runs to the closing boundary; search from its end (sealed bytes are binary). */
    const char close[] = BOUNDARY "--";
    size_t cl = sizeof close - 1, end = left;
    while (end >= cl && memcmp(data + end - cl, close, cl))
        end--;
    if (end < cl || end - cl < 4) {
        wr_errf(err, errlen, "encrypted response: no closing boundary");
        return OPSC_EPROTO;
    }
    end -= cl;
    uint32_t sig_len = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                       (uint32_t)data[3] << 24;
    if (sig_len > end - 4) {
        wr_errf(err, errlen, "encrypted response: signature length %u too large", sig_len);
        return OPSC_EPROTO;
    }
    out->sig = data + 4;
    out->sig_len = sig_len;
    out->sealed = data + 4 + sig_len;
    out->sealed_len = end - 4 - sig_len;
    return 0;
}
