/* dx_wsman.h - WS-Management Identify: the request scanners send, and reading the answer.
 *
 * An unauthenticated Identify (DSP0226 section 11) is a SOAP envelope with an empty
 * wsmid:Identify body, POSTed with the header "WSMANIDENTIFY: unauthenticated"; a WinRM
 * listener answers an IdentifyResponse with ProtocolVersion, ProductVendor and
 * ProductVersion. Thread: pure functions; any thread.
 */
#ifndef DX_WSMAN_H
#define DX_WSMAN_H

#include <stddef.h>

#define DX_IDENTIFY_BODY                                                                           \
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "                             \
    "xmlns:wsmid=\"http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd\">"             \
    "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"

typedef struct dx_identify {
    char protocol_version[256];
    char vendor[128];
    char product_version[128];
} dx_identify;

/* Parse an answer body. 0, or -1 with the reason in err: not XML, a SOAP
 * fault (its text), no IdentifyResponse. */
int dx_identify_parse(const char *body, size_t len, dx_identify *out, char *err, size_t errlen);

#endif
