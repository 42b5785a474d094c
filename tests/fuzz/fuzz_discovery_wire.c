/* fuzz_discovery_wire.c - libFuzzer target: what the scanners read from hosts and from nmap.
 *
 * The same input goes to: the SSH banner and key exchange reader (fed in pieces whose sizes come
 * from the first byte), the WS-Management Identify answer parser, nmap's XML stream and each
 * <host> element it yields. Checked: nothing crashes, hangs or reads out of bounds; a key read
 * has a type and a "SHA256:" fingerprint; a refusal has a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dx_wsman.h"
#include "nmap_xml.h"
#include "tcp_ssh.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ssh(const uint8_t *data, size_t size)
{
    static tssh t;
    tssh_init(&t);
    size_t step = size ? (size_t)(data[0] % 64) + 1 : 1;
    int r = TSSH_MORE;
    for (size_t o = 0; o < size && (r == TSSH_MORE || r == TSSH_SEND); o += step) {
        uint8_t *out;
        size_t len;
        r = tssh_feed(&t, data + o, size - o < step ? size - o : step, &out, &len);
        while (r == TSSH_SEND) {
            CHECK(out && len > 0);
            free(out);
            r = tssh_feed(&t, NULL, 0, &out, &len);
        }
    }
    if (r == TSSH_DONE)
        CHECK(t.key_type[0] && strncmp(t.fingerprint, "SHA256:", 7) == 0);
    if (r == TSSH_FAIL)
        CHECK(t.err[0]);
}

static const uint16_t ports[] = {22, 80, 5985, 5986};

static void on_host(void *ud, const char *xml, size_t len)
{
    (void)ud;
    char err[200];
    json_t *h = nmap_host_parse(xml, len, ports, 4, err, sizeof(err));
    if (h)
        CHECK(json_is_string(json_object_get(h, "address")));
    json_decref(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssh(data, size);
    dx_identify id;
    char err[200];
    if (dx_identify_parse((const char *)data, size, &id, err, sizeof(err)) < 0)
        CHECK(err[0]);
    nmap_stream st = {0};
    size_t half = size / 2;
    if (nmap_stream_feed(&st, (const char *)data, half, on_host, NULL) == 0)
        nmap_stream_feed(&st, (const char *)data + half, size - half, on_host, NULL);
    nmap_stream_free(&st);
    return 0;
}
