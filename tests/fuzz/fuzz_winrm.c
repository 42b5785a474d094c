/* fuzz_winrm.c - libFuzzer target for what transport-winrm reads from a host: SOAP
 * responses (XML, faults, streams), multipart/encrypted frames, CLIXML stderr. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wr_crypt.h"
#include "wr_script.h"
#include "wr_soap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ud, int stream, const uint8_t *d, size_t len)
{
    (void)stream;
    size_t *total = ud;
    *total += len ? d[0] + len : 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_resp r;
    char err[256];
    if (!wr_soap_parse((const char *)data, size, NULL, &r, err, sizeof err)) {
        size_t total = 0;
        char text[600];
        wr_soap_streams(&r, NULL, sink, &total);
        wr_soap_fault_describe(&r, text, sizeof text);
        wr_resp_free(&r);
    }
    wr_crypt_parts parts;
    wr_crypt_parse(data, size, &parts, err, sizeof err);
    wr_clixml x = {0};
    wr_buf out = {0};
    size_t half = size / 2;
    wr_clixml_feed(&x, (const char *)data, half, false, &out);
    wr_clixml_feed(&x, (const char *)data + half, size - half, true, &out);
    wr_buf_free(&out);
    wr_clixml_free(&x);
    return 0;
}
