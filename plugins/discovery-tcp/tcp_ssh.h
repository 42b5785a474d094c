/* tcp_ssh.h - just enough SSH to read a server's banner and host key: version exchange, KEXINIT,
 * the key exchange's first message, and the host key blob in the server's reply.
 *
 * The host key arrives in the server's first key exchange reply (RFC 4253 8, RFC 5656 4,
 * RFC 8731): K_S, whose SHA-256 is the fingerprint `ssh-keygen -l -E sha256` prints. The
 * exchange is never completed: the client's ephemeral value is a fixed public one (the
 * curve's base point, a valid DH value), the reply's signature is not checked, and the
 * connection is closed as soon as K_S is read. A fingerprint read this way says what the
 * server presented; onboarding pins it, and the SSH transport verifies it for real.
 *
 * Feed bytes as they arrive; the reader says what to send and when it is done. Input is
 * untrusted: lengths are checked against what was received, packets are capped at 35000
 * bytes (RFC 4253 6.1), the banner at 255 characters and the lines before it at 8 KiB.
 * Thread: a value; any thread.
 */
#ifndef TCP_SSH_H
#define TCP_SSH_H

#include <stddef.h>
#include <stdint.h>

#define TSSH_MAX_PACKET 35000
#define TSSH_MAX_INPUT  (TSSH_MAX_PACKET + 8192)

enum tssh_result {
    TSSH_MORE = 0, /* need more input */
    TSSH_SEND,     /* send out[0..*out_len) (and keep reading) */
    TSSH_DONE,     /* banner and key read */
    TSSH_FAIL,     /* see err (banner may still be set) */
};

enum tssh_stage { TSSH_BANNER, TSSH_KEXINIT, TSSH_REPLY, TSSH_END };

typedef struct tssh {
    enum tssh_stage stage;
    char banner[256]; /* "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3" */
    char kex[64];     /* key exchange the server agreed to */
    char key_type[64];
    char fingerprint[64]; /* "SHA256:..." */
    char err[160];
    uint8_t in[TSSH_MAX_INPUT];
    size_t in_len;
    size_t skipped; /* bytes of lines before the banner */
} tssh;

void tssh_init(tssh *t);
/* True once the input starts like an SSH server (the banner line so far begins "SSH-"). */
int tssh_is_ssh(const tssh *t);
/* Take `n` bytes (may be 0). On TSSH_SEND, *out (owned by the caller, free()) holds what to
 * send; then call again with no data: input that came with it is still to be read. */
int tssh_feed(tssh *t, const uint8_t *data, size_t n, uint8_t **out, size_t *out_len);

/* The fingerprint of a key blob: "SHA256:" + unpadded base64 (out >= 52 bytes). */
void tssh_fingerprint(const uint8_t *blob, size_t len, char *out, size_t n);

#endif
