/* client.c - requests to the REST API over libcurl: JSON calls, uploads, paged lists, errors. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "opsctl.h"

/* One handle for the process: curl keeps the connection alive between the
 * requests of a command (a name lookup, then the call). */
static CURL *handle;

CURL *client_handle(void)
{
    if (!handle)
        handle = curl_easy_init();
    return handle;
}

void client_cleanup(void)
{
    if (handle)
        curl_easy_cleanup(handle);
    handle = NULL;
}

size_t http_answer_append(http_answer *ans, const char *data, size_t n)
{
    char *grown = ans->len + n < HTTP_ANSWER_MAX ? realloc(ans->body, ans->len + n + 1) : NULL;
    if (!grown)
        return 0; /* to curl: stop */
    memcpy(grown + ans->len, data, n);
    ans->body = grown;
    ans->len += n;
    ans->body[ans->len] = '\0';
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    return http_answer_append(ud, data, size * nmemb);
}

/* Options every request shares: URL, TLS trust, time limits, identity. */
void client_setup(opsctl *c, CURL *h, const char *path, const char *bearer,
                  struct curl_slist **headers)
{
    char *url = malloc(strlen(c->url) + strlen(path) + 1);
    if (url) {
        strcpy(url, c->url);
        strcat(url, path);
        curl_easy_setopt(h, CURLOPT_URL, url);
        free(url);
    }
    if (c->cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A stalled server fails the command rather than hanging a CI job;
     * live streams carry a keep-alive comment every 15 s. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "opsctl/" OPSC_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (bearer) {
        char *auth = malloc(strlen(bearer) + 32);
        if (auth) {
            sprintf(auth, "Authorization: Bearer %s", bearer);
            *headers = curl_slist_append(*headers, auth);
            free(auth);
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
}

/* A transfer that did not give an HTTP answer: say where and why. */
int client_unreachable(opsctl *c, CURLcode rc)
{
    fprintf(stderr, "opsctl: cannot reach %s: %s\n", c->url, curl_easy_strerror(rc));
    if (rc == CURLE_COULDNT_CONNECT)
        fprintf(stderr, "Is opsconductord running there? Set the address with --url, OPSC_URL "
                        "or opsctl login --url.\n");
    return OPSCTL_ERROR;
}

static int perform(opsctl *c, const char *method, const char *path, const void *data, size_t len,
                   const char *const *extra, http_answer *ans)
{
    CURL *h = client_handle();
    if (!h)
        return OPSCTL_ERROR;
    memset(ans, 0, sizeof(*ans));
    /* First: getting the token may itself be a request (a refresh) on this handle. */
    const char *bearer = session_bearer(c);
    curl_easy_reset(h); /* keeps the live connection */
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Accept: application/json");
    for (size_t i = 0; extra && extra[i]; i++)
        headers = curl_slist_append(headers, extra[i]);
    client_setup(c, h, path, bearer, &headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (data) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        http_answer_free(ans);
        return client_unreachable(c, rc);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
    if (ans->len)
        ans->json = json_loadb(ans->body, ans->len, 0, NULL);
    return 0;
}

static int with_refresh(opsctl *c, const char *method, const char *path, const void *data,
                        size_t len, const char *const *extra, http_answer *ans)
{
    int rc = perform(c, method, path, data, len, extra, ans);
    /* An access token may have expired or been revoked since it was
     * cached: one refresh, one retry. */
    if (rc == 0 && ans->status == 401 && !c->bearer_from_env && c->bearer &&
        session_refresh(c) == 0) {
        http_answer_free(ans);
        rc = perform(c, method, path, data, len, extra, ans);
    }
    return rc;
}

int http_request(opsctl *c, const char *method, const char *path, json_t *body, http_answer *ans)
{
    static const char *const json_type[] = {"Content-Type: application/json", NULL};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return OPSCTL_ERROR;
    int rc =
        with_refresh(c, method, path, text, text ? strlen(text) : 0, text ? json_type : NULL, ans);
    if (text) { /* bodies may hold passwords and keys */
        memset(text, 0, strlen(text));
        free(text);
    }
    return rc;
}

int http_upload(opsctl *c, const char *path, const void *data, size_t len,
                const char *const *headers, http_answer *ans)
{
    return with_refresh(c, "POST", path, data, len, headers, ans);
}

void http_answer_free(http_answer *ans)
{
    json_decref(ans->json);
    free(ans->body);
    memset(ans, 0, sizeof(*ans));
}

/* ---- the API's conventions --------------------------------------------------------------------
 */

/* "name1, name2" of an array of records (or strings). */
static void print_names(json_t *list)
{
    json_t *it;
    size_t i;
    json_array_foreach(list, i, it)
    {
        const char *name = json_string_value(it);
        const char *const fields[] = {"name", "username", "id"};
        for (size_t f = 0; !name && f < 3; f++)
            name = json_string_value(json_object_get(it, fields[f]));
        fprintf(stderr, "%s%s", i ? ", " : "", name ? name : "?");
    }
}

/* The error's details: validation errors one per line, what a conflict is
 * about ("used_by: web-1, web-2"), other members as they are. */
static void print_details(json_t *details)
{
    const char *k;
    json_t *v;
    json_object_foreach(details, k, v)
    {
        size_t i;
        json_t *e;
        if (strcmp(k, "errors") == 0) {
            json_array_foreach(v, i, e)
            {
                const char *where = json_string_value(json_object_get(e, "path"));
                fprintf(stderr, "  %s%s%s\n", where ? where : "", where ? ": " : "",
                        json_string_value(json_object_get(e, "message")));
            }
        } else if (json_is_array(v)) {
            fprintf(stderr, "  %s: ", k);
            print_names(v);
            fprintf(stderr, "\n");
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(stderr, "  %s: %s\n", k, json_is_string(v) ? json_string_value(v) : text);
            free(text);
        }
    }
}

int api_error(const http_answer *ans)
{
    json_t *err = json_object_get(ans->json, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (code) {
        fprintf(stderr, "opsctl: %s: %s\n", code, msg ? msg : "");
        print_details(json_object_get(err, "details"));
        if (ans->status == 401 && strcmp(code, "unauthorized") == 0)
            fprintf(stderr, "Log in with 'opsctl login', or set OPSC_TOKEN.\n");
        if (strcmp(code, "in_use") == 0)
            fprintf(stderr, "(opsctl: --force deletes it anyway)\n");
    } else {
        fprintf(stderr, "opsctl: the server answered HTTP %ld%s%.200s\n", ans->status,
                ans->len ? ": " : "", ans->body ? ans->body : "");
    }
    return OPSCTL_ERROR;
}

int api_call(opsctl *c, const char *method, const char *path, json_t *body, json_t **out)
{
    http_answer ans;
    int rc = http_request(c, method, path, body, &ans);
    if (rc)
        return rc;
    if (ans.status < 200 || ans.status > 299) {
        rc = api_error(&ans);
        http_answer_free(&ans);
        return rc;
    }
    if (out) {
        *out = ans.json;
        ans.json = NULL;
    }
    http_answer_free(&ans);
    return 0;
}

char *url_escape(const char *s)
{
    char *e = curl_easy_escape(client_handle(), s, 0);
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

/* One page: GET path?query&limit=N[&cursor=C]. */
static int list_page(opsctl *c, const char *path, const char *query, size_t limit,
                     const char *cursor, json_t **page)
{
    char *esc = cursor ? url_escape(cursor) : NULL;
    size_t n = strlen(path) + strlen(query) + (esc ? strlen(esc) : 0) + 64;
    char *url = malloc(n);
    if (!url) {
        free(esc);
        return OPSCTL_ERROR;
    }
    snprintf(url, n, "%s?%s%slimit=%zu%s%s", path, query, *query ? "&" : "", limit,
             esc ? "&cursor=" : "", esc ? esc : "");
    int rc = api_call(c, "GET", url, NULL, page);
    free(url);
    free(esc);
    return rc;
}

int api_list(opsctl *c, const char *path, const char *query, size_t limit, json_t **items,
             bool *more)
{
    *items = json_array();
    *more = false;
    char *cursor = NULL;
    int rc = 0;
    do {
        size_t want = limit ? limit - json_array_size(*items) : 500;
        json_t *page = NULL;
        rc = list_page(c, path, query, want < 500 ? want : 500, cursor, &page);
        free(cursor);
        cursor = NULL;
        if (rc)
            break;
        json_array_extend(*items, json_object_get(page, "items"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        cursor = next ? strdup(next) : NULL;
        json_decref(page);
    } while (cursor && (!limit || json_array_size(*items) < limit));
    *more = cursor != NULL;
    free(cursor);
    if (rc) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}
