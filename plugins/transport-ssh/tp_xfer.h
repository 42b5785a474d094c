/* tp_xfer.h - put_file / get_file for any transport that runs POSIX commands (SSH, local).
 *
 * A transfer is a command on the connection: `cat > tmp` fed from the local
 * file for a put, `cat path` written to the local file for a get. The local
 * side reads and writes with uv_fs (thread pool) in fixed chunks, hashes
 * with SHA-256 as the bytes pass, and compares with `sha256sum` run on the
 * target; a put lands under a temporary name and is renamed into place
 * only when the digests agree. Memory stays bounded whatever the file size.
 */
#ifndef TP_XFER_H
#define TP_XFER_H

#include <uv.h>

#include <opsc/errors.h>
#include <opsc/host.h>

/* The transport's command functions, as in its opsc_transport. */
typedef struct tp_exec_ops {
    const opsc_host_api *api;
    uv_loop_t *loop;
    int (*exec)(opsc_conn *conn, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
                opsc_exec **out);
    int (*write)(opsc_exec *ex, const char *data, size_t len);
    void (*pause)(opsc_exec *ex);
    void (*resume)(opsc_exec *ex);
    void (*cancel)(opsc_exec *ex);
} tp_exec_ops;

/* As opsc_transport.put_file / get_file. `ops` is borrowed until the callback. */
int tp_put_file(const tp_exec_ops *ops, opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb,
                void *ud, opsc_xfer **out);
int tp_get_file(const tp_exec_ops *ops, opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb,
                void *ud, opsc_xfer **out);
void tp_xfer_cancel(opsc_xfer *x);

#endif
