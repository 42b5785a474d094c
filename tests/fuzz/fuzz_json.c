/* fuzz_json.c - libFuzzer: arbitrary bytes as the JSON body of a request (the JSON body path). */
#include <stdio.h>
#include <string.h>

#include "fuzz_conn.h"

static int h_json(http_req *req)
{
    json_t *j = http_req_json(req);
    json_t *name = json_object_get(j, "name");
    http_respond_json(
        req, 201, json_pack("{s:O?, s:I}", "name", name, "keys", (json_int_t)json_object_size(j)));
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"POST", "/j", 0, h_json, HTTP_ROUTE_JSON_BODY, NULL, NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_server *srv = fuzz_server(routes, 1);
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "POST /j HTTP/1.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     size);
    fuzz_feed(srv, (const uint8_t *)head, (size_t)n, data, size);
    return 0;
}
