/* tp_xfer.c - streamed, checksum-verified file transfer over a transport's commands. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tp_shell.h"
#include "tp_xfer.h"

#define CHUNK      (256 * 1024)
#define PUT_WINDOW (4 * CHUNK) /* written but not yet drained to the wire */

enum phase { PH_OPEN, PH_STREAM, PH_FINAL, PH_CLEANUP, PH_CLOSE_FILE };

struct opsc_xfer {
    const tp_exec_ops *ops;
    const opsc_host_api *api;
    opsc_conn *conn;
    bool put;
    enum phase phase;
    char *local, *local_part, *remote, *tmp, *owner;
    int mode;
    uint32_t timeout_ms;
    uv_fs_t fs;
    uv_file fd;
    bool fs_busy;
    int64_t foff;
    EVP_MD_CTX *md;
    opsc_exec *ex;
    bool cancelled;
    /* put: bytes handed to exec_write since the last drain; get: buffers */
    size_t unacked;
    bool eof, waiting_drain;
    size_t pending; /* put: bytes read into buf[0], not yet handed to the command */
    char *buf[2];
    size_t blen[2], bcap[2];
    int fill; /* get: buffer being filled; the other may be writing */
    bool paused;
    char out[256]; /* command output we parse (digest line) */
    size_t nout;
    char errtxt[512]; /* command stderr, for messages */
    size_t nerr;
    uint64_t bytes;
    int status;
    char sha[65];
    char msg[768];
    opsc_xfer_cb cb;
    void *ud;
};

static void xfer_end(opsc_xfer *x);
static void put_read_more(opsc_xfer *x);
static void put_send_pending(opsc_xfer *x);
static void get_flush(opsc_xfer *x);
static void get_finish(opsc_xfer *x);

static void xfer_free(opsc_xfer *x)
{
    const opsc_host_api *api = x->api;
    api->free(x->local);
    api->free(x->local_part);
    api->free(x->remote);
    api->free(x->tmp);
    api->free(x->owner);
    api->free(x->buf[0]);
    api->free(x->buf[1]);
    EVP_MD_CTX_free(x->md);
    api->free(x);
}

static void fail(opsc_xfer *x, int code, const char *fmt, ...) OPSC_PRINTF(3, 4);
static void fail(opsc_xfer *x, int code, const char *fmt, ...)
{
    if (x->status)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
    va_end(ap);
    x->status = code;
}

/* ---- running the helper commands -------------------------------------------------- */

static void cmd_output(void *ud, int stream, const char *data, size_t len);
static void cmd_done(void *ud, const opsc_exec_result *res);
static void put_drained(void *ud);

static int run(opsc_xfer *x, const char *command, bool stdin_open, uint32_t timeout_ms)
{
    opsc_exec_req req = {sizeof(req)};
    req.command = command;
    req.stdin_open = stdin_open;
    req.timeout_ms = timeout_ms;
    static const opsc_exec_cb cb = {sizeof(cb), cmd_output, cmd_done, put_drained};
    x->nout = x->nerr = 0;
    return x->ops->exec(x->conn, &req, &cb, x, &x->ex);
}

static void keep(char *dst, size_t cap, size_t *n, const char *data, size_t len)
{
    size_t room = cap - 1 - *n;
    if (len > room)
        len = room;
    memcpy(dst + *n, data, len);
    *n += len;
    dst[*n] = '\0';
}

static void on_fs_write(uv_fs_t *req);

static void cmd_output(void *ud, int stream, const char *data, size_t len)
{
    opsc_xfer *x = ud;
    if (stream == OPSC_STDERR) {
        /* get: sha256sum writes the digest on stderr, after the content */
        keep(x->errtxt, sizeof(x->errtxt), &x->nerr, data, len);
        return;
    }
    if (x->put || x->phase != PH_STREAM) {
        keep(x->out, sizeof(x->out), &x->nout, data, len);
        return;
    }
    EVP_DigestUpdate(x->md, data, len);
    x->bytes += len;
    /* `data` is ours only until return: it always goes into the buffer being
     * filled, which grows past CHUNK while the other one is still being
     * written (the command is paused then, so it grows by one delivery). */
    int b = x->fill;
    if (x->blen[b] + len > x->bcap[b]) {
        size_t cap = x->blen[b] + len;
        char *nb = x->api->realloc(x->buf[b], cap);
        if (!nb) {
            fail(x, OPSC_ENOMEM, "out of memory buffering %s", x->local_part);
            x->ops->cancel(x->ex);
            return;
        }
        x->buf[b] = nb;
        x->bcap[b] = cap;
    }
    memcpy(x->buf[b] + x->blen[b], data, len);
    x->blen[b] += len;
    if (x->blen[b] >= CHUNK)
        get_flush(x);
}

/* ---- local file I/O ---------------------------------------------------------------- */

static void on_fs_close(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    x->fd = -1;
    xfer_end(x);
}

static void close_file(opsc_xfer *x)
{
    x->phase = PH_CLOSE_FILE;
    if (x->fs_busy)
        return; /* the pending request comes back here */
    if (x->fd < 0) {
        xfer_end(x);
        return;
    }
    x->fs_busy = true;
    x->fs.data = x;
    uv_fs_close(x->ops->loop, &x->fs, x->fd, on_fs_close);
}

static void on_put_read(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    if (x->phase != PH_STREAM || !x->ex) {
        if (x->phase == PH_CLOSE_FILE)
            close_file(x);
        return;
    }
    if (n < 0) {
        fail(x, OPSC_EIO, "reading %s: %s", x->local, uv_strerror((int)n));
        x->ops->cancel(x->ex);
        return;
    }
    if (n == 0) {
        x->eof = true;
        if (!x->pending)
            x->ops->write(x->ex, "", 0);
        return;
    }
    EVP_DigestUpdate(x->md, x->buf[0], (size_t)n);
    x->bytes += (uint64_t)n;
    x->foff += n;
    x->pending = (size_t)n;
    if (x->unacked >= PUT_WINDOW) {
        x->waiting_drain = true; /* hold it: sent the moment the queue drains */
        return;
    }
    put_send_pending(x);
}

/* Send the chunk just read, and read the next one: the next read overlaps
 * with the wire, so the channel never waits for the disk. */
static void put_send_pending(opsc_xfer *x)
{
    size_t n = x->pending;
    x->pending = 0;
    x->unacked += n;
    if (x->ops->write(x->ex, x->buf[0], n) < 0) {
        fail(x, OPSC_EIO, "the transfer command stopped taking data");
        return;
    }
    if (x->eof)
        x->ops->write(x->ex, "", 0);
    else
        put_read_more(x);
}

static void put_read_more(opsc_xfer *x)
{
    if (x->fs_busy || x->eof || x->pending || x->phase != PH_STREAM)
        return;
    uv_buf_t b = uv_buf_init(x->buf[0], CHUNK);
    x->fs_busy = true;
    x->fs.data = x;
    int rc = uv_fs_read(x->ops->loop, &x->fs, x->fd, &b, 1, x->foff, on_put_read);
    if (rc < 0) {
        x->fs_busy = false;
        fail(x, OPSC_EIO, "reading %s: %s", x->local, uv_strerror(rc));
        x->ops->cancel(x->ex);
    }
}

static void put_drained(void *ud)
{
    opsc_xfer *x = ud;
    x->unacked = 0;
    if (x->waiting_drain && x->phase == PH_STREAM && x->ex) {
        x->waiting_drain = false;
        put_send_pending(x);
    }
}

/* get: write the full buffer; only one write is in flight at a time, and the
 * command is paused when both buffers are full. */
static void get_flush(opsc_xfer *x)
{
    int b = x->fill;
    if (x->fs_busy) {
        if (x->blen[b] >= CHUNK && !x->paused && x->ex) {
            x->paused = true;
            x->ops->pause(x->ex);
        }
        return;
    }
    if (x->blen[b] == 0)
        return;
    x->fill = !b;
    x->blen[x->fill] = 0;
    uv_buf_t ub = uv_buf_init(x->buf[b], (unsigned)x->blen[b]);
    x->fs_busy = true;
    x->fs.data = x;
    int rc = uv_fs_write(x->ops->loop, &x->fs, x->fd, &ub, 1, x->foff, on_fs_write);
    x->foff += (int64_t)x->blen[b];
    if (rc < 0) {
        x->fs_busy = false;
        fail(x, OPSC_EIO, "writing %s: %s", x->local_part, uv_strerror(rc));
        if (x->ex)
            x->ops->cancel(x->ex);
    }
}

static void on_fs_write(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    if (n < 0) {
        fail(x, n == UV_ENOSPC ? OPSC_ENOSPC : OPSC_EIO, "writing %s: %s", x->local_part,
             uv_strerror((int)n));
        if (x->ex)
            x->ops->cancel(x->ex);
    }
    if (x->phase == PH_CLOSE_FILE) {
        close_file(x);
        return;
    }
    if (x->blen[x->fill] >= CHUNK || (!x->ex && x->blen[x->fill] > 0))
        get_flush(x);
    if (!x->fs_busy && !x->ex && x->phase == PH_STREAM) {
        get_finish(x); /* the command ended while we were writing */
        return;
    }
    if (x->paused && x->ex && !x->fs_busy) {
        x->paused = false;
        x->ops->resume(x->ex);
    }
}

/* ---- phases ----------------------------------------------------------------------- */

static void report(opsc_xfer *x)
{
    opsc_xfer_result res = {sizeof(res)};
    res.status = x->status;
    res.bytes = x->bytes;
    res.sha256 = x->sha[0] ? x->sha : NULL;
    res.error = x->status ? x->msg : NULL;
    x->cb(x->ud, &res);
    xfer_free(x);
}

static void on_part_done(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    int rc = (int)req->result;
    uv_fs_req_cleanup(req);
    if (rc < 0 && !x->status)
        fail(x, OPSC_EIO, "cannot move the download into place at %s: %s", x->local,
             uv_strerror(rc));
    report(x);
}

/* Everything is closed: put the downloaded file in place (or drop it), then report. */
static void xfer_end(opsc_xfer *x)
{
    if (!x->put && x->local_part && x->phase == PH_CLOSE_FILE) {
        x->phase = PH_CLEANUP; /* once */
        x->fs.data = x;
        int rc = x->status == 0
                     ? uv_fs_rename(x->ops->loop, &x->fs, x->local_part, x->local, on_part_done)
                     : uv_fs_unlink(x->ops->loop, &x->fs, x->local_part, on_part_done);
        if (rc == 0)
            return;
    }
    report(x);
}

static void remote_digest(const char *text, char *out)
{
    size_t i = 0;
    for (; i < 64 && ((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'));
         i++)
        out[i] = text[i];
    out[i] = '\0';
    if (i != 64)
        out[0] = '\0';
}

/* Compare the digests; sets the status on a mismatch. */
static bool verify(opsc_xfer *x, const char *remote_text)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(x->md, md, &mdlen);
    tp_hex(md, 32, x->sha);
    char remote[65];
    /* get: the digest line comes last on stderr, after any marker noise */
    const char *line = remote_text;
    for (const char *p = remote_text; *p; p++)
        if (p[0] == '\n' && p[1])
            line = p + 1;
    remote_digest(x->put ? remote_text : line, remote);
    if (!remote[0]) {
        fail(x, OPSC_EREMOTE, "sha256sum on the target gave no digest (is coreutils installed?)");
        return false;
    }
    if (strcmp(remote, x->sha) != 0) {
        fail(x, OPSC_ECORRUPT, "checksum mismatch for %s: local sha256 %s, remote %s", x->remote,
             x->sha, remote);
        return false;
    }
    return true;
}

static int code_for_stderr(const char *err)
{
    if (strstr(err, "No such file"))
        return OPSC_ENOENT;
    if (strstr(err, "Permission denied") || strstr(err, "Operation not permitted"))
        return OPSC_EACCES;
    if (strstr(err, "No space left"))
        return OPSC_ENOSPC;
    return OPSC_EREMOTE;
}

static void command_failed(opsc_xfer *x, const opsc_exec_result *res, const char *what)
{
    if (res->status < 0) {
        fail(x, res->status, "%s: %s", what, res->error ? res->error : "failed");
        return;
    }
    char *nl = strchr(x->errtxt, '\n');
    if (nl && !nl[1])
        *nl = '\0';
    fail(x, code_for_stderr(x->errtxt), "%s: exit %d%s%s", what, res->exit_code,
         x->errtxt[0] ? ": " : "", x->errtxt);
}

/* cat or tee complained (their exit status is lost in the pipeline). */
static bool stream_failed(const opsc_xfer *x)
{
    return strstr(x->errtxt, "cat: ") || strstr(x->errtxt, "tee: ");
}

static void start_cleanup(opsc_xfer *x, int exec_status)
{
    x->phase = PH_CLEANUP;
    if (exec_status != OPSC_ECONNRESET && x->tmp) {
        tp_buf b = {.api = x->api};
        tp_buf_adds(&b, "rm -f -- ");
        tp_buf_quote(&b, x->tmp);
        char *cmd = tp_buf_take(&b);
        if (cmd && run(x, cmd, false, 30000) == 0) {
            x->api->free(cmd);
            return;
        }
        x->api->free(cmd);
    }
    close_file(x);
}

static void start_final(opsc_xfer *x)
{
    tp_buf b = {.api = x->api};
    if (x->mode >= 0) {
        char m[16];
        snprintf(m, sizeof(m), "%04o", x->mode & 07777);
        tp_buf_adds(&b, "chmod ");
        tp_buf_adds(&b, m);
        tp_buf_adds(&b, " -- ");
        tp_buf_quote(&b, x->tmp);
        tp_buf_adds(&b, " && ");
    }
    if (x->owner) {
        tp_buf_adds(&b, "chown -- ");
        tp_buf_quote(&b, x->owner);
        tp_buf_adds(&b, " ");
        tp_buf_quote(&b, x->tmp);
        tp_buf_adds(&b, " && ");
    }
    tp_buf_adds(&b, "mv -f -- ");
    tp_buf_quote(&b, x->tmp);
    tp_buf_adds(&b, " ");
    tp_buf_quote(&b, x->remote);
    char *cmd = tp_buf_take(&b);
    x->phase = PH_FINAL;
    if (!cmd || run(x, cmd, false, 60000) < 0) {
        fail(x, OPSC_ENOMEM, "cannot start the final rename");
        start_cleanup(x, 0);
    }
    x->api->free(cmd);
}

static void get_finish(opsc_xfer *x)
{
    if (x->fs_busy)
        return; /* on_fs_write comes back */
    if (x->status == 0 && x->blen[x->fill] > 0) {
        get_flush(x);
        return;
    }
    if (x->status == 0)
        verify(x, x->errtxt);
    close_file(x);
}

static void cmd_done(void *ud, const opsc_exec_result *res)
{
    opsc_xfer *x = ud;
    x->ex = NULL;
    bool ok = res->status == 0 && !res->exit_signal && res->exit_code == 0;
    switch (x->phase) {
    case PH_STREAM:
        if (x->cancelled)
            fail(x, OPSC_ECANCELED, "the transfer was cancelled");
        else if (ok && stream_failed(x))
            command_failed(x, &(opsc_exec_result){sizeof(*res), 0, 1, NULL, NULL},
                           x->put ? "writing the remote file" : "reading the remote file");
        else if (!ok)
            command_failed(x, res, x->put ? "writing the remote file" : "reading the remote file");
        if (!x->put) {
            get_finish(x);
        } else if (x->status || !verify(x, x->out)) {
            start_cleanup(x, res->status);
        } else {
            start_final(x);
        }
        return;
    case PH_FINAL:
        if (!ok) {
            command_failed(x, res, "putting the file in place");
            start_cleanup(x, res->status);
            return;
        }
        close_file(x);
        return;
    default:
        close_file(x);
        return;
    }
}

/* The target hashes while the bytes pass (tee into sha256sum), so a transfer
 * costs one pass over the file, not two. A pipeline reports the status of
 * its last command only: a failing cat or tee is recognised by its message
 * on stderr (see stream_failed). */
static void start_stream(opsc_xfer *x)
{
    tp_buf b = {.api = x->api};
    if (x->put) {
        /* noclobber: the temporary name must not exist (nor be a planted symlink) */
        tp_buf_adds(&b, "set -C && : > ");
        tp_buf_quote(&b, x->tmp);
        tp_buf_adds(&b, " && tee -- ");
        tp_buf_quote(&b, x->tmp);
        tp_buf_adds(&b, " | sha256sum");
    } else {
        /* a FIFO, not /dev/fd: stdout may be a socket, which cannot be reopened */
        tp_buf_adds(&b, "d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT; "
                        "mkfifo \"$d/f\" || exit 1; sha256sum < \"$d/f\" >&2 & cat -- ");
        tp_buf_quote(&b, x->remote);
        tp_buf_adds(&b, " | tee -- \"$d/f\"; wait");
    }
    char *cmd = tp_buf_take(&b);
    x->phase = PH_STREAM;
    int rc = cmd ? run(x, cmd, x->put, x->timeout_ms) : OPSC_ENOMEM;
    x->api->free(cmd);
    if (rc < 0) {
        fail(x, rc, "cannot start the transfer command: %s", opsc_strerror(rc));
        close_file(x);
        return;
    }
    if (x->put)
        put_read_more(x);
}

static void on_open(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    int rc = (int)req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    if (rc < 0) {
        fail(x,
             rc == UV_ENOENT   ? OPSC_ENOENT
             : rc == UV_EACCES ? OPSC_EACCES
                               : OPSC_EIO,
             "cannot open %s: %s", x->put ? x->local : x->local_part, uv_strerror(rc));
        if (!x->put) {
            x->api->free(x->local_part);
            x->local_part = NULL;
        }
        report(x);
        return;
    }
    x->fd = rc;
    if (x->cancelled) {
        close_file(x);
        return;
    }
    start_stream(x);
}

/* ---- public -------------------------------------------------------------------------- */

static opsc_xfer *xfer_new(const tp_exec_ops *ops, opsc_conn *c, const opsc_xfer_req *req, bool put,
                           opsc_xfer_cb cb, void *ud)
{
    const opsc_host_api *api = ops->api;
    opsc_xfer *x = api->calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->ops = ops;
    x->api = api;
    x->conn = c;
    x->put = put;
    x->fd = -1;
    x->cb = cb;
    x->ud = ud;
    x->mode = req->mode;
    x->timeout_ms = req->timeout_ms;
    x->local = api->strdup(req->local_path);
    x->remote = api->strdup(req->remote_path);
    x->owner = req->owner ? api->strdup(req->owner) : NULL;
    x->md = EVP_MD_CTX_new();
    x->bcap[0] = x->bcap[1] = put ? CHUNK : 2 * CHUNK;
    x->buf[0] = api->alloc(x->bcap[0]);
    x->buf[1] = api->alloc(put ? 1 : x->bcap[1]);
    if (!x->local || !x->remote || (req->owner && !x->owner) || !x->md || !x->buf[0] ||
        !x->buf[1] || !EVP_DigestInit_ex(x->md, EVP_sha256(), NULL)) {
        xfer_free(x);
        return NULL;
    }
    return x;
}

static int set_names(opsc_xfer *x)
{
    tp_buf b = {.api = x->api};
    if (x->put) {
        unsigned char r[6];
        char hex[13];
        RAND_bytes(r, sizeof(r));
        tp_hex(r, sizeof(r), hex);
        tp_buf_adds(&b, x->remote);
        tp_buf_adds(&b, ".opsc-");
        tp_buf_adds(&b, hex);
        x->tmp = tp_buf_take(&b);
        return x->tmp ? 0 : OPSC_ENOMEM;
    }
    tp_buf_adds(&b, x->local);
    tp_buf_adds(&b, ".opsc-part");
    x->local_part = tp_buf_take(&b);
    return x->local_part ? 0 : OPSC_ENOMEM;
}

static int start(const tp_exec_ops *ops, opsc_conn *c, const opsc_xfer_req *req, bool put,
                 opsc_xfer_cb cb, void *ud, opsc_xfer **out)
{
    if (!c || !req || !req->local_path || !*req->local_path || !req->remote_path ||
        req->remote_path[0] != '/' || !cb || !out)
        return OPSC_EINVAL;
    opsc_xfer *x = xfer_new(ops, c, req, put, cb, ud);
    if (!x)
        return OPSC_ENOMEM;
    if (set_names(x) < 0) {
        xfer_free(x);
        return OPSC_ENOMEM;
    }
    x->phase = PH_OPEN;
    x->fs_busy = true;
    x->fs.data = x;
    int flags = put ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
    int rc = uv_fs_open(ops->loop, &x->fs, put ? x->local : x->local_part, flags | O_CLOEXEC, 0600,
                        on_open);
    if (rc < 0) {
        xfer_free(x);
        return OPSC_EIO;
    }
    *out = x;
    return 0;
}

int tp_put_file(const tp_exec_ops *ops, opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb,
                void *ud, opsc_xfer **out)
{
    return start(ops, c, req, true, cb, ud, out);
}

int tp_get_file(const tp_exec_ops *ops, opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb,
                void *ud, opsc_xfer **out)
{
    return start(ops, c, req, false, cb, ud, out);
}

void tp_xfer_cancel(opsc_xfer *x)
{
    if (x->cancelled)
        return;
    x->cancelled = true;
    fail(x, OPSC_ECANCELED, "the transfer was cancelled");
    if (x->ex && x->phase == PH_STREAM)
        x->ops->cancel(x->ex);
}
