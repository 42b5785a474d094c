/* fuzz_opsctl_events.c - opsctl reading a run's event stream (bytes from the server): the SSE
 * framing, then the follower that cuts log records into lines per target and stream and says
 * the states of steps, targets and the run, from live events and from the snapshot. */
#include <stdint.h>
#include <stdio.h>

#include "follow.h"
#include "sse_parse.h"

static int on_event(const char *event, const char *id, const char *data, size_t len, void *ud)
{
    json_t *json = json_loadb(data, len, JSON_DECODE_ANY, NULL);
    int stop = follower_event(event, id, json, ud);
    json_decref(json);
    return stop;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink) /* what a terminal would show goes nowhere */
        sink = freopen("/dev/null", "w", stdout);
    opsctl c = {.color = size > 0 && (data[0] & 1), .output = OUT_TABLE};
    follower f;
    follower_init(&f, &c, NULL);
    sse_parser p;
    sse_parser_init(&p, on_event, &f);
    sse_feed(&p, (const char *)data, size);
    follower_flush(&f);
    sse_parser_free(&p);
    follower_free(&f);
    return 0;
}
