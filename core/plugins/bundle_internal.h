/* bundle_internal.h - what the bundle's archive reader (bundle_tar.c), manifest (bundle.c) and
 * runner (bundle_run.c) share. */
#ifndef OPSC_BUNDLE_INTERNAL_H
#define OPSC_BUNDLE_INTERNAL_H

#include <jansson.h>

#include <opsc/plugin.h>

#include "bundle.h"
#include "bundle_proto.h"

#define BUNDLE_NAME_MAX 200 /* bytes of a path inside the archive */

/* One member of the archive: a regular file or a folder. */
typedef struct tar_entry {
    char path[BUNDLE_NAME_MAX + 1]; /* normalised: no "./", no trailing '/' */
    bool dir;
    bool exec; /* any execute bit in the archive */
    const uint8_t *data;
    size_t len;
} tar_entry;

typedef struct tar_archive {
    uint8_t *raw; /* the inflated tar stream, owned */
    size_t rawlen;
    tar_entry *entries;
    size_t n;
} tar_archive;

/* Inflate (to at most about `max` bytes) and index `gz`; every refusal names the entry. */
int tar_read(const void *gz, size_t len, size_t max, tar_archive *out, char *err, size_t errlen);
/* Index the tar stream already in a->raw (owned: freed on failure too). */
int tar_index(tar_archive *a, char *err, size_t errlen);
const tar_entry *tar_find(const tar_archive *a, const char *path);
void tar_free(tar_archive *a);
/* Write the entries beneath `dir` (created 0755, must not exist). */
int tar_extract(const tar_archive *a, const char *dir, char *err, size_t errlen);

/* One step type of a bundle: its descriptor and, for an imperative one, the
 * executable (relative to the bundle's folder). */
typedef struct bundle_step {
    opsc_step_type type;
    char *exec;
} bundle_step;

struct bundle {
    opsc_plugin plugin; /* what the plugin host lists */
    opsc_steplib lib;
    bundle_step *steps;
    const opsc_step_type **types; /* NULL-terminated, into steps */
    size_t nsteps;
    json_t *manifest; /* owns the strings the descriptors point to ... */
    json_t *pool;     /* ... with these (schemas as text, templates read from files) */
    char *dir;
    bool so; /* a step library of a C library's manifest (bundle_manifest_so) */
};

/* A regular file of the bundle: 0 with *exec (and *text, *len when `text`
 * is not NULL: a copy the caller frees), or OPSC_ENOENT. */
typedef int (*bundle_file_fn)(void *ud, const char *path, char **text, size_t *len, bool *exec);
/* Parse and check a manifest (`text`, `len` bytes); every refusal names the
 * field ("steplib.json: steps[0].os_families: ...") or the line:column. */
int bundle_manifest_parse(const char *text, size_t len, bundle_file_fn file, void *ud, bundle **out,
                          char *err, size_t errlen);
/* One step library of the manifest opsc-stephost wrote of a C library (`lib`, stolen): checked
 * as steplib.json is, its schemas as text, "imperative" steps given a run() that fails (they
 * run in a step host). Every refusal names the field ("its manifest: steps[0].name: ..."). */
int bundle_manifest_so(json_t *lib, bundle **out, char *err, size_t errlen);
/* The executable of a step type of `b`, or NULL (declarative). */
const char *bundle_step_exec(const bundle *b, const opsc_step_type *t);

/* One step of a bundle running (bundle_run.c), and what serving its requests needs
 * (bundle_serve.c). On the executor worker that runs the step. */
typedef struct brun {
    const opsc_host_api *api;
    opsc_step_ctx *ctx;
    const char *dir;  /* the bundle's folder */
    char scratch[64]; /* the step's own folder: its working directory */
    char stage[64];   /* the daemon's private folder for file transfers */
    char *wbuf;       /* lines waiting for the step's stdin */
    size_t wlen, woff, wcap;
    size_t logged; /* bytes of log lines so far */
    bool result;   /* it sent its result */
    int rc;        /* what run() returns */
    char why[400]; /* why it failed, when it broke the protocol or its limits */
} brun;

#define BUNDLE_LOG_MAX (16u << 20) /* bytes of log lines a step may write */

/* Queue `msg` (stolen) as a line for the step. */
void brun_send(brun *r, json_t *msg);
/* Serve one decoded line; false when the step is over (its result, or a broken limit in why). */
bool brun_serve(brun *r, const bp_msg *m);

#endif
