/* files.h - the appliance-side files that core.file.put and core.file.template read:
 * where they live, which names are allowed, their backup, and /api/v1/files.
 *
 * The directory is [plugin.steplib-core] files_dir, else <data_dir>/files:
 * the same rule the core step library applies, so the API and the steps see
 * one directory. Entries are reached with openat() on the directory and
 * O_NOFOLLOW: a symlink planted there is never followed.
 *
 * Thread: files_dir_resolve and files_name_check anywhere; the routes on
 * the loop thread.
 */
#ifndef OPSC_API_FILES_H
#define OPSC_API_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct opsc_core;

/* The files directory `cfg` names (environment, flag, file, else
 * <data_dir>/files) into out. 0, or OPSC_E2BIG when it does not fit. */
int files_dir_resolve(const struct config *cfg, char *out, size_t n);

/* NULL when `name` may name a file of the directory, else the rule it
 * breaks (static text): one path segment of [A-Za-z0-9._-], not starting
 * with a dot, 1 to 255 bytes. `len` is the name's length in bytes, so an
 * embedded NUL is seen. */
const char *files_name_check(const char *name, size_t len);

/* Answer 200 with the file `fd` (transferred), `size` bytes, streamed, as
 * an attachment named `name` (which passed files_name_check). Loop thread. */
struct http_req;
void files_respond_download(struct http_req *req, const char *name, int fd, int64_t size);

/* Copy the regular files and folders under `src` into `dest` (created
 * 0700; must not exist), skipping symlinks and anything else. A missing
 * `src` copies nothing. 0 or a negative code with a message in err. */
int files_backup(const char *src, const char *dest, char *err, size_t errlen);

/* Resolve and create (0700) the directory into core->files_dir, and add
 * GET/PUT/DELETE /api/v1/files... to core->http. */
int api_files_register(struct opsc_core *c);
/* GET /api/v1/runs/{id}/files... (run_files.c): what runs kept (runfiles.h).
 * api_files_register() adds them. */
int api_run_files_register(struct opsc_core *c);

#endif
