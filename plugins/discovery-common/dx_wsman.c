/* dx_wsman.c - reading a WS-Management IdentifyResponse. */
#include "dx_wsman.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dx_xml.h"

static int fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    return -1;
}

int dx_identify_parse(const char *body, size_t len, dx_identify *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    dx_xml x;
    dx_xml_init(&x, body, len);
    bool response = false;
    char fault[160] = "";
    dx_tok t;
    for (;;) {
        dx_kind k = dx_next(&x, &t);
        if (k == DX_ERROR)
            return fail(err, errlen, "not an XML answer: %s", x.err);
        if (k == DX_EOF)
            break;
        if (k != DX_START)
            continue;
        char *dst = dx_is(&t, "ProtocolVersion")   ? out->protocol_version
                    : dx_is(&t, "ProductVendor")   ? out->vendor
                    : dx_is(&t, "ProductVersion")  ? out->product_version
                    : dx_is(&t, "Text") && !*fault ? fault
                                                   : NULL;
        size_t cap = dst == out->protocol_version ? sizeof(out->protocol_version)
                     : dst == fault               ? sizeof(fault)
                                                  : sizeof(out->vendor);
        response = response || dx_is(&t, "IdentifyResponse");
        if (dst && !dx_text(&x, &t, dst, cap))
            return fail(err, errlen, "not an XML answer: %s", x.err[0] ? x.err : "truncated");
    }
    if (*fault)
        return fail(err, errlen, "SOAP fault: %s", fault);
    if (!response)
        return fail(err, errlen, "%s", "the answer holds no IdentifyResponse");
    return 0;
}
