/* web_internal.h - what the files of the web module share: the table of loaded files. */
#ifndef OPSC_WEB_INTERNAL_H
#define OPSC_WEB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "web.h"

#define WEB_ETAG_MAX 48

typedef struct web_file {
    char *path; /* "/assets/app-5KXQ2M7A.js": the URL path, sort key of the table */
    char *body;
    size_t len;
    char *gz; /* precompressed copy, or NULL */
    size_t gz_len;
    const char *ctype;
    char etag[WEB_ETAG_MAX];
    char gz_etag[WEB_ETAG_MAX];
    bool immutable;
    bool paired; /* a .gz that became another file's copy (while loading) */
} web_file;

struct web_ui {
    web_file *files; /* sorted by path */
    size_t n;
    const web_file *index;
};

/* The file at exactly `path`, or NULL. */
const web_file *web_find(const web_ui *w, const char *path);

#endif
