/* wr_xfer.c - file put/get streamed through the remote shell: base64 lines, SHA-256 on both ends.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <opsc/errors.h>

#include "wr_internal.h"

#define CHUNK 196608 /* raw bytes per stdin line: 256 KiB of base64 */

struct opsc_xfer {
    opsc_conn *c;
    wr_op *op;
    bool put;
    opsc_xfer_cb cb;
    void *ud;
    char *local;
    char *remote;
    int mode;
    char *owner;
    uint32_t timeout_ms;
    uv_fs_t fs;
    uv_file fd;
    bool fs_busy;
    bool op_done;
    int op_status;
    int exit_code;
    char op_err[512];
    EVP_MD_CTX *sha;
    uint64_t bytes;
    uint8_t *chunk;
    wr_buf line;   /* get: partial stdout line; put: stdout */
    wr_buf wbuf;   /* get: decoded bytes waiting for the disk */
    wr_buf wbusy;  /* get: bytes being written */
    wr_buf errtxt; /* stderr, first bytes */
    char remote_hex[65];
    char hex[65];
    char *part; /* get: the file being written */
    bool cancelled;
    bool read_eof;
    int status;
    char err[512];
};

/* Hex SHA-256 of what `sha` has seen so far (it stays usable). */
static bool hex_digest(const EVP_MD_CTX *sha, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    bool ok = copy && EVP_MD_CTX_copy_ex(copy, sha) && EVP_DigestFinal_ex(copy, md, &n) && n == 32;
    EVP_MD_CTX_free(copy);
    out[0] = '\0';
    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return ok;
}

static void xfer_free(opsc_xfer *x)
{
    EVP_MD_CTX_free(x->sha);
    free(x->chunk);
    free(x->local);
    free(x->part);
    free(x->remote);
    free(x->owner);
    wr_buf_free(&x->line);
    wr_buf_free(&x->wbuf);
    wr_buf_free(&x->wbusy);
    wr_buf_free(&x->errtxt);
    free(x);
}

static void report(opsc_xfer *x, int status, const char *hex, const char *error)
{
    /* Copies: `hex` and `error` may point into x, which goes before the callback. */
    char hex_copy[65], err_copy[sizeof x->err];
    wr_copy(hex_copy, sizeof hex_copy, hex);
    wr_copy(err_copy, sizeof err_copy, error);
    opsc_xfer_result r = {.size = sizeof r,
                          .status = status,
                          .bytes = x->bytes,
                          .sha256 = status ? NULL : hex_copy,
                          .error = status ? err_copy : NULL};
    opsc_xfer_cb cb = x->cb;
    void *ud = x->ud;
    xfer_free(x);
    cb(ud, &r);
}

static void set_err(opsc_xfer *x, int status, const char *fmt, const char *detail)
{
    if (x->status)
        return;
    x->status = status;
    wr_errf(x->err, sizeof x->err, fmt, detail ? detail : "");
}

/* The remote side's failure text: its stderr (trimmed), else the op's error. */
static void remote_failure(opsc_xfer *x)
{
    if (x->op_status) {
        set_err(x, x->op_status, "%s", x->op_err);
        return;
    }
    char text[400];
    size_t n = x->errtxt.len < sizeof text - 1 ? x->errtxt.len : sizeof text - 1;
    memcpy(text, x->errtxt.p ? x->errtxt.p : "", n);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    text[n] = '\0';
    char msg[500];
    snprintf(msg, sizeof msg, "remote side failed with exit code %d%s%s", x->exit_code,
             n ? ": " : "", text);
    /* The scripts' exit codes (wr_script.h): put 3 = digest mismatch; get 2 = no such
     * file, 3 = unreadable. */
    int status = OPSC_EREMOTE;
    if (x->put && x->exit_code == 3)
        status = OPSC_ECORRUPT;
    else if (!x->put && x->exit_code == 2)
        status = OPSC_ENOENT;
    else if (!x->put && x->exit_code == 3)
        status = OPSC_EACCES;
    set_err(x, status, "%s", msg);
}

/* get: the data went to "<local>.opsc-part"; it takes the real name only when complete
 * and verified, so a failed get leaves an earlier copy alone. */
static void on_final(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    if (req->fs_type == UV_FS_RENAME && req->result < 0)
        set_err(x, OPSC_EIO, "renaming the received file: %s", uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    report(x, x->status, x->hex, x->err);
}

static void on_closed(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    uv_fs_req_cleanup(req);
    char hex[65];
    if (!hex_digest(x->sha, hex))
        set_err(x, OPSC_ENOMEM, "%s", "cannot compute the SHA-256");
    if (!x->status && strcmp(hex, x->remote_hex))
        set_err(x, OPSC_ECORRUPT, "%s",
                x->put ? "the target's SHA-256 of the file differs from ours"
                       : "the received file's SHA-256 differs from the target's");
    wr_copy(x->hex, sizeof x->hex, hex);
    if (x->put) {
        report(x, x->status, hex, x->err);
        return;
    }
    uv_loop_t *loop = x->c->pl->api->loop();
    x->fs.data = x;
    int rc = x->status ? uv_fs_unlink(loop, &x->fs, x->part, on_final)
                       : uv_fs_rename(loop, &x->fs, x->part, x->local, on_final);
    if (rc) {
        set_err(x, OPSC_EIO, "finishing the received file: %s", uv_strerror(rc));
        report(x, x->status, hex, x->err);
    }
}

static void finish(opsc_xfer *x)
{
    if (x->fs_busy || !x->op_done)
        return;
    if (!x->status && x->cancelled)
        set_err(x, OPSC_ECANCELED, "%s", "transfer cancelled");
    if (!x->status && (x->op_status || x->exit_code))
        remote_failure(x);
    x->fs.data = x;
    x->fs_busy = true;
    if (x->fd < 0 || uv_fs_close(x->c->pl->api->loop(), &x->fs, x->fd, on_closed)) {
        x->fs_busy = false;
        x->fs.data = x;
        on_closed(&x->fs);
    }
}

static void op_output(void *ud, int stream, const char *data, size_t len);

static void op_done(void *ud, int status, int exit_code, const char *error)
{
    opsc_xfer *x = ud;
    x->op = NULL;
    x->op_done = true;
    x->op_status = status;
    x->exit_code = exit_code;
    wr_copy(x->op_err, sizeof x->op_err, error ? error : "");
    if (x->put && !status && !exit_code) {
        /* "OK <hex> <bytes>": the target's own digest of what it wrote. */
        char hex[65];
        if (x->line.len < 3 || strncmp(x->line.p, "OK ", 3) ||
            sscanf(x->line.p + 3, "%64s", hex) != 1)
            set_err(x, OPSC_EPROTO, "the target did not confirm the file: %s",
                    x->line.p ? x->line.p : "(no output)");
        else
            wr_copy(x->remote_hex, sizeof x->remote_hex, hex);
    }
    finish(x);
}

static void keep_stderr(opsc_xfer *x, const char *data, size_t len)
{
    if (x->errtxt.len < 2048)
        wr_buf_add(&x->errtxt, data, len < 2048 - x->errtxt.len ? len : 2048 - x->errtxt.len);
}

/* ---- put ---------------------------------------------------------------------- */

static void read_next(opsc_xfer *x);

static void on_read(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    if (!x->op) {
        finish(x);
        return;
    }
    if (n < 0) {
        set_err(x, OPSC_EIO, "reading the local file: %s", uv_strerror((int)n));
        wr_run_stop(x->op, OPSC_ECANCELED);
        return;
    }
    wr_buf line = {0};
    if (n == 0) {
        x->read_eof = true;
        char hex[65];
        if (hex_digest(x->sha, hex))
            wr_buf_addf(&line, "#sha256 %s\n", hex);
        else
            line.oom = true;
    } else {
        EVP_DigestUpdate(x->sha, x->chunk, (size_t)n);
        x->bytes += (uint64_t)n;
        wr_b64_encode(&line, x->chunk, (size_t)n);
        wr_buf_adds(&line, "\n");
    }
    int rc = line.oom ? OPSC_ENOMEM : wr_run_write(x->op, line.p, line.len);
    wr_buf_free(&line);
    if (!rc && n == 0)
        rc = wr_run_write(x->op, NULL, 0);
    if (rc) {
        set_err(x, rc, "%s", "could not queue stdin for the target");
        wr_run_stop(x->op, OPSC_ECANCELED);
    } else if (n > 0 && wr_run_queued(x->op) < 2 * wr_b64_len(CHUNK)) {
        read_next(x); /* read ahead while the queue goes out */
    }
}

static void read_next(opsc_xfer *x)
{
    x->fs.data = x;
    x->fs_busy = true;
    uv_buf_t b = uv_buf_init((char *)x->chunk, CHUNK);
    int rc = uv_fs_read(x->c->pl->api->loop(), &x->fs, x->fd, &b, 1, -1, on_read);
    if (rc) {
        x->fs_busy = false;
        set_err(x, OPSC_EIO, "reading the local file: %s", uv_strerror(rc));
        wr_run_stop(x->op, OPSC_ECANCELED);
    }
}

static void put_drained(void *ud)
{
    opsc_xfer *x = ud;
    if (x->op && !x->fs_busy && !x->status && !x->cancelled && !x->read_eof)
        read_next(x);
}

static void put_output(void *ud, int stream, const char *data, size_t len)
{
    opsc_xfer *x = ud;
    if (stream == OPSC_STDERR)
        keep_stderr(x, data, len);
    else if (x->line.len < 4096)
        wr_buf_add(&x->line, data, len);
}

/* ---- get ---------------------------------------------------------------------- */

static void write_next(opsc_xfer *x);

static void on_write(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    if (n < 0 || (size_t)n != x->wbusy.len) {
        set_err(x, OPSC_EIO, "writing the local file: %s",
                n < 0 ? uv_strerror((int)n) : "short write");
        if (x->op)
            wr_run_stop(x->op, OPSC_ECANCELED);
    }
    wr_buf_reset(&x->wbusy);
    if (x->wbuf.len && !x->status) {
        write_next(x);
        return;
    }
    if (x->op)
        wr_run_resume(x->op);
    finish(x);
}

static void write_next(opsc_xfer *x)
{
    wr_buf t = x->wbusy;
    x->wbusy = x->wbuf;
    x->wbuf = t;
    wr_buf_reset(&x->wbuf);
    x->fs.data = x;
    x->fs_busy = true;
    if (x->op)
        wr_run_pause(x->op); /* back-pressure: no next Receive until the disk has it */
    uv_buf_t b = uv_buf_init(x->wbusy.p, (unsigned)x->wbusy.len);
    int rc = uv_fs_write(x->c->pl->api->loop(), &x->fs, x->fd, &b, 1, -1, on_write);
    if (rc) {
        x->fs_busy = false;
        set_err(x, OPSC_EIO, "writing the local file: %s", uv_strerror(rc));
        if (x->op)
            wr_run_stop(x->op, OPSC_ECANCELED);
    }
}

static void get_line(opsc_xfer *x, char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (!len)
        return;
    if (len > 8 && !strncmp(line, "#sha256 ", 8)) {
        snprintf(x->remote_hex, sizeof x->remote_hex, "%.*s", (int)(len - 8 < 64 ? len - 8 : 64),
                 line + 8);
        return;
    }
    long n = wr_b64_decode(line, len, (uint8_t *)line);
    if (n < 0) {
        set_err(x, OPSC_EPROTO, "%s", "the target sent a line that is not base64");
        if (x->op)
            wr_run_stop(x->op, OPSC_ECANCELED);
        return;
    }
    EVP_DigestUpdate(x->sha, line, (size_t)n);
    x->bytes += (uint64_t)n;
    wr_buf_add(&x->wbuf, line, (size_t)n);
}

static void get_output(void *ud, int stream, const char *data, size_t len)
{
    opsc_xfer *x = ud;
    if (stream == OPSC_STDERR) {
        keep_stderr(x, data, len);
        return;
    }
    if (x->status)
        return;
    wr_buf_add(&x->line, data, len);
    size_t start = 0;
    for (size_t i = 0; i < x->line.len; i++) {
        if (x->line.p[i] != '\n')
            continue;
        get_line(x, x->line.p + start, i - start);
        start = i + 1;
    }
    wr_buf_consume(&x->line, start);
    if (x->line.len > 4 * CHUNK)
        set_err(x, OPSC_EPROTO, "%s", "the target sent an overlong line");
    if (x->wbuf.oom || x->line.oom)
        set_err(x, OPSC_ENOMEM, "%s", "out of memory");
    if (x->wbuf.len && !x->fs_busy && !x->status)
        write_next(x);
}

static void op_output(void *ud, int stream, const char *data, size_t len)
{
    opsc_xfer *x = ud;
    (x->put ? put_output : get_output)(ud, stream, data, len);
}

/* ---- start ---------------------------------------------------------------------- */

static int start_op(opsc_xfer *x)
{
    wr_buf script = {0};
    if (x->put)
        wr_script_put(&script, x->c->opt.dialect, x->remote, x->mode, x->owner);
    else
        wr_script_get(&script, x->c->opt.dialect, x->remote);
    wr_run_req rr = {.script = script.p, .stdin_open = x->put, .timeout_ms = x->timeout_ms};
    wr_run_cb cb = {.on_output = op_output, .on_drained = put_drained, .on_done = op_done};
    int rc = script.oom ? OPSC_ENOMEM : wr_run_start(x->c, &rr, &cb, x, &x->op);
    wr_buf_free(&script);
    return rc;
}

static void on_open(uv_fs_t *req)
{
    opsc_xfer *x = req->data;
    ssize_t fd = req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = false;
    x->fd = (uv_file)fd;
    int rc = fd < 0 ? (int)fd : 0; /* libuv's codes are -errno, as OPSC_E* are */
    if (rc)
        set_err(x, rc, "opening the local file: %s", uv_strerror((int)fd));
    else if (x->cancelled)
        set_err(x, OPSC_ECANCELED, "%s", "transfer cancelled");
    else if ((rc = start_op(x)))
        set_err(x, rc, "could not start the remote side: %s", opsc_strerror(rc));
    else if (x->put)
        read_next(x);
    if (x->status) {
        x->op_done = true;
        finish(x);
    }
}

static int xfer_start(opsc_conn *c, bool put, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                      opsc_xfer **out)
{
    if (!req || !req->local_path || !req->remote_path || !cb)
        return OPSC_EINVAL;
    if (c->closing || c->broken)
        return OPSC_ESTATE;
    if (c->op)
        return OPSC_EBUSY;
    opsc_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return OPSC_ENOMEM;
    *x = (opsc_xfer){.c = c,
                     .put = put,
                     .cb = cb,
                     .ud = ud,
                     .fd = -1,
                     .mode = req->mode,
                     .timeout_ms = req->timeout_ms};
    x->local = strdup(req->local_path);
    if (!put && x->local) {
        wr_buf part = {0};
        wr_buf_addf(&part, "%s.opsc-part", x->local);
        x->part = part.p; /* NULL on failure: checked below */
    }
    x->remote = strdup(req->remote_path);
    x->owner = req->owner ? strdup(req->owner) : NULL;
    x->sha = EVP_MD_CTX_new();
    x->chunk = put ? malloc(CHUNK) : NULL;
    if (!x->local || !x->remote || (req->owner && !x->owner) || !x->sha || (put && !x->chunk) ||
        (!put && !x->part) || !EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL)) {
        xfer_free(x);
        return OPSC_ENOMEM;
    }
    x->fs.data = x;
    x->fs_busy = true;
    int flags = put ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
    int rc = uv_fs_open(c->pl->api->loop(), &x->fs, put ? x->local : x->part, flags | O_CLOEXEC,
                        0600, on_open);
    if (rc) {
        xfer_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

int wr_put_file(opsc_conn *conn, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                opsc_xfer **out)
{
    return xfer_start(conn, true, req, cb, ud, out);
}

int wr_get_file(opsc_conn *conn, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                opsc_xfer **out)
{
    return xfer_start(conn, false, req, cb, ud, out);
}

void wr_xfer_cancel(opsc_xfer *x)
{
    x->cancelled = true;
    if (x->op)
        wr_run_stop(x->op, OPSC_ECANCELED);
}
