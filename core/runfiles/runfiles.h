/* runfiles.h - files kept on the appliance with their SHA-256 beside them: what a run's steps
 * fetched (per run and target), and the digests of /api/v1/files.
 *
 * A run's files: <data_dir>/runs/<run id>/files/<target id>/<name>, folders
 * 0700, files 0600, written by the daemon only (a step fetches through the
 * host: opsc_host_api.step_fetch_file). The run-log retention removes the
 * run's folder with its logs.
 *
 * Digests: beside a file `name` lies ".<name>.sha256", one JSON object
 * {"sha256", "size", "mtime_ns", "ino", "stored_at"} written when the file was
 * stored, so a listing reads digests instead of hashing every file each
 * time. A sidecar that does not match the file's size, inode and
 * modification time (the file changed by other means) is recomputed once.
 * Names (the rule of files_name_check) never start with a dot, so a sidecar
 * is never taken for a file.
 *
 * Entries are reached with openat() on an open folder and O_NOFOLLOW: a
 * symlink is never followed. Ids in paths are checked by runfiles_id_ok()
 * first. Errors: 0 or a negative OPSC_E* / -errno.
 *
 * Thread: any; each call does its own blocking file-system work (the API
 * calls them on the loop for small listings; the step API on workers).
 */
#ifndef OPSC_RUNFILES_H
#define OPSC_RUNFILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* ---- digests beside files ---------------------------------------------------------------- */

typedef struct runfiles_digest {
    char sha256[65];
    uint64_t size;
    int64_t stored_ms; /* when the sidecar was written */
} runfiles_digest;

/* The digest of the regular file `name` in the folder `dir`, open as `fd`
 * with `st` its fstat: from the sidecar when it matches, else hashed and the
 * sidecar rewritten. */
int runfiles_digest_get(int dir, const char *name, int fd, const struct stat *st,
                        runfiles_digest *out);
/* Write the sidecar of `name` for a digest known already (an upload hashed
 * it while streaming); `st` is the stored file's fstat. */
int runfiles_digest_put(int dir, const char *name, const char sha256[65], const struct stat *st);
/* Hash `name` in `dir` now and write its sidecar; *changed when a sidecar
 * was there with another digest. */
int runfiles_digest_record(int dir, const char *name, runfiles_digest *out, bool *changed);
/* Remove the sidecar of `name` (after the file went). */
void runfiles_digest_drop(int dir, const char *name);

/* ---- a run's files ---------------------------------------------------------------------- */

/* True when `id` may be a path segment: 1 to 64 of [0-9A-Za-z_-]. */
bool runfiles_id_ok(const char *id);

/* The folder of `run_id`'s files of `target_id` into out (created 0700 with
 * its parents when `create`). OPSC_EINVAL for a bad id, OPSC_E2BIG. */
int runfiles_dir(const char *data_dir, const char *run_id, const char *target_id, bool create,
                 char *out, size_t n);

/* {"items": [{"target_id", "name", "size", "sha256", "stored_at"}], "next_cursor": null}
 * sorted by target id then name; an empty list when the run kept nothing. */
int runfiles_list(const char *data_dir, const char *run_id, json_t **out);

/* The regular file `name` of `run_id`/`target_id`, open for reading (the
 * caller closes it), with its fstat. OPSC_ENOENT for anything else. */
int runfiles_open(const char *data_dir, const char *run_id, const char *target_id, const char *name,
                  struct stat *st);

/* Remove everything `run_id` kept (its folder under runs/). 0 when there was
 * nothing. */
int runfiles_remove(const char *data_dir, const char *run_id);

#endif
