/* body.c - request bodies from -f FILE and FIELD=VALUE arguments, query strings, reading files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "opsctl.h"

char *read_file(const char *path, size_t *len)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "opsctl: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = (n + 65536 + 1) * 2;
            char *grown = realloc(buf, cap);
            if (!grown)
                break;
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) || !buf;
    if (!is_stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "opsctl: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The object at a dotted path under `root`, created as needed ("labels.role"
 * sets root.labels.role); *leaf is the last key. */
static json_t *parent_of(json_t *root, char *path, char **leaf)
{
    char *dot;
    while ((dot = strchr(path, '.'))) {
        *dot = '\0';
        json_t *next = json_object_get(root, path);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(root, path, next);
        }
        root = next;
        path = dot + 1;
    }
    *leaf = path;
    return root;
}

/* key=text, key:=json, key=@file. */
static int set_field(json_t *root, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "opsctl: expected FIELD=VALUE, FIELD:=JSON or FIELD=@FILE, got '%s'\n",
                arg);
        return OPSCTL_USAGE;
    }
    bool raw = eq[-1] == ':';
    char *path = strndup(arg, (size_t)(eq - arg) - (raw ? 1 : 0)), *leaf = NULL;
    const char *text = eq + 1;
    json_t *value = NULL;
    if (raw) {
        json_error_t e;
        value = json_loads(text, JSON_DECODE_ANY, &e);
        if (!value)
            fprintf(stderr, "opsctl: %s: not JSON: %s\n", path, e.text);
    } else if (text[0] == '@') {
        char *content = read_file(text + 1, NULL);
        value = content ? json_string(content) : NULL;
        if (content && !value)
            fprintf(stderr, "opsctl: %s: %s is not UTF-8 text\n", path, text + 1);
        free(content);
    } else {
        value = json_string(text);
    }
    if (value) {
        json_t *parent = parent_of(root, path, &leaf);
        json_object_set_new(parent, leaf, value);
    }
    free(path);
    return value ? 0 : OPSCTL_USAGE;
}

int body_build(const char *file, int argc, char **argv, json_t **out)
{
    json_t *root = NULL;
    if (file) {
        char *text = read_file(file, NULL);
        json_error_t e;
        root = text ? json_loads(text, 0, &e) : NULL;
        if (text && !json_is_object(root))
            fprintf(stderr, "opsctl: %s: %s\n", file, root ? "expected a JSON object" : e.text);
        free(text);
        if (!json_is_object(root)) {
            json_decref(root);
            return OPSCTL_USAGE;
        }
    } else {
        root = json_object();
    }
    for (int i = 0; i < argc; i++) {
        int rc = set_field(root, argv[i]);
        if (rc) {
            json_decref(root);
            return rc;
        }
    }
    *out = root;
    return 0;
}

char *query_build(int argc, char **argv)
{
    size_t cap = 1;
    for (int i = 0; i < argc; i++)
        cap += strlen(argv[i]) * 3 + 1;
    char *q = calloc(1, cap);
    for (int i = 0; q && i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "opsctl: expected FILTER=VALUE, got '%s'\n", argv[i]);
            free(q);
            return NULL;
        }
        char *v = url_escape(eq + 1);
        if (*q)
            strcat(q, "&");
        strncat(q, argv[i], (size_t)(eq - argv[i]) + 1);
        strcat(q, v ? v : "");
        free(v);
    }
    return q;
}
