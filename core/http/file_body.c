/* file_body.c - an answer whose body is a file, read a chunk at a time on the loop and written as
 * the client takes it, so a download of any size holds at most a chunk and the write queue. */
#include <stdlib.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "http_internal.h"

#define CHUNK (256 * 1024)

struct file_body {
    http_req *req; /* a reference of ours until the end */
    uv_fs_t fs;
    int fd;
    int64_t off, left;
    char *buf;    /* being read into */
    bool reading; /* a uv_fs_read is in flight */
    bool waiting; /* the client has HTTP_WRITE_HIGH unread: wait for on_write */
};

static http_conn *open_conn(struct file_body *fb)
{
    http_conn *c = fb->req->conn;
    return c && c->state == CONN_OPEN && fb->req->fbody == fb ? c : NULL;
}

/* The body is out (`whole`) or cannot be: a cut one must end the connection, since its length
 * was promised. */
static void finish(struct file_body *fb, bool whole)
{
    http_req *req = fb->req;
    http_conn *c = open_conn(fb);
    req->fbody = NULL;
    close(fb->fd);
    free(fb->buf);
    if (!whole && c)
        conn_close(c);
    resp_body_done(req);
    http_req_unref(req);
    free(fb);
}

static void on_read(uv_fs_t *r);

static void read_next(struct file_body *fb)
{
    http_conn *c = open_conn(fb);
    if (!c || fb->left == 0) {
        finish(fb, c != NULL);
        return;
    }
    if (conn_output_high(c)) {
        fb->waiting = true;
        return;
    }
    size_t n = fb->left < CHUNK ? (size_t)fb->left : CHUNK;
    fb->buf = malloc(n);
    uv_buf_t b = uv_buf_init(fb->buf, (unsigned)n);
    fb->fs.data = fb;
    fb->reading =
        fb->buf && uv_fs_read(c->srv->loop, &fb->fs, fb->fd, &b, 1, fb->off, on_read) == 0;
    if (!fb->reading)
        finish(fb, false);
}

static void on_read(uv_fs_t *r)
{
    struct file_body *fb = r->data;
    ssize_t n = r->result;
    uv_fs_req_cleanup(r);
    fb->reading = false;
    char *buf = fb->buf;
    fb->buf = NULL;
    http_conn *c = fb->req->fbody == fb ? open_conn(fb) : NULL;
    if (n <= 0 || !c) { /* the file shrank, a read error, or the client left */
        free(buf);
        finish(fb, false);
        return;
    }
    fb->off += n;
    fb->left -= n;
    if (conn_write(c, "", 0, buf, (size_t)n, buf) < 0) {
        finish(fb, false);
        return;
    }
    read_next(fb);
}

void http_respond_file(http_req *req, int status, const char *content_type, int fd, int64_t len)
{
    if (req->head) { /* the head only, with the length: respond() sends no body for HEAD */
        close(fd);
        http_respond_text(req, status, content_type, NULL, len > 0 ? (size_t)len : 0);
        return;
    }
    if (len <= 0 || !req->conn || req->gone) {
        close(fd);
        http_respond_text(req, status, content_type, "", 0);
        return;
    }
    struct file_body *fb = calloc(1, sizeof(*fb));
    if (!fb) {
        close(fd);
        http_respond_error(req, 500, "internal", NULL, "out of memory");
        return;
    }
    fb->req = req;
    fb->fd = fd;
    fb->left = len;
    http_req_ref(req);
    req->fbody = fb;
    if (resp_body_head(req, status, content_type, len) < 0) {
        finish(fb, false);
        return;
    }
    read_next(fb);
}

void fbody_drained(struct file_body *fb)
{
    http_conn *c = open_conn(fb);
    if (fb->waiting && c && !conn_output_high(c)) {
        fb->waiting = false;
        read_next(fb);
    }
}

void fbody_conn_gone(struct file_body *fb)
{
    if (fb->reading) /* on_read ends it */
        fb->req->fbody = NULL;
    else
        finish(fb, false);
}
