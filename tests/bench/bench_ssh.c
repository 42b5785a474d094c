/* bench_ssh.c - libssh2 upload speed: SFTP (pipelined writes) against exec `cat > file`.
 *
 * Blocking libssh2 on purpose: this measures the protocol paths, not our
 * event loop. Used by bench_ssh.sh to pick how transport-ssh moves files.
 *
 *   bench_ssh PORT USER KEYFILE LOCAL REMOTE
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static LIBSSH2_SESSION *open_session(int port, const char *user, const char *keyfile, int *fdp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return NULL;
    LIBSSH2_SESSION *s = libssh2_session_init();
    if (libssh2_session_handshake(s, fd) ||
        libssh2_userauth_publickey_fromfile(s, user, NULL, keyfile, NULL)) {
        char *msg;
        libssh2_session_last_error(s, &msg, NULL, 0);
        fprintf(stderr, "session: %s\n", msg);
        return NULL;
    }
    *fdp = fd;
    return s;
}

static long long via_sftp(LIBSSH2_SESSION *s, int in, const char *remote, char *buf)
{
    LIBSSH2_SFTP *sftp = libssh2_sftp_init(s);
    LIBSSH2_SFTP_HANDLE *h =
        sftp ? libssh2_sftp_open(sftp, remote,
                                 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, 0644)
             : NULL;
    if (!h)
        return -1;
    long long total = 0;
    ssize_t n;
    while ((n = read(in, buf, BUF)) > 0) {
        /* libssh2 splits a large buffer into many SFTP writes in flight */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = libssh2_sftp_write(h, buf + off, (size_t)(n - off));
            if (w < 0)
                return -1;
            off += w;
        }
        total += n;
    }
    libssh2_sftp_close(h);
    libssh2_sftp_shutdown(sftp);
    return total;
}

static long long via_cat(LIBSSH2_SESSION *s, int in, const char *remote, char *buf)
{
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cat > '%s'", remote);
    if (!ch || libssh2_channel_exec(ch, cmd))
        return -1;
    long long total = 0;
    ssize_t n;
    while ((n = read(in, buf, BUF)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = libssh2_channel_write(ch, buf + off, (size_t)(n - off));
            if (w < 0)
                return -1;
            off += w;
        }
        total += n;
    }
    libssh2_channel_send_eof(ch);
    libssh2_channel_wait_eof(ch);
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
    libssh2_channel_free(ch);
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_ssh PORT USER KEYFILE LOCAL REMOTE\n");
        return 2;
    }
    libssh2_init(0);
    char *buf = malloc(BUF);
    const char *names[] = {"sftp", "exec_cat"};
    for (int i = 0; i < 6; i++) { /* alternate, three runs each: the machine is noisy */
        int m = i % 2;
        int fd;
        LIBSSH2_SESSION *s = open_session(atoi(argv[1]), argv[2], argv[3], &fd);
        int in = open(argv[4], O_RDONLY);
        if (!s || in < 0)
            return 1;
        double t0 = now_s();
        long long n = m == 0 ? via_sftp(s, in, argv[5], buf) : via_cat(s, in, argv[5], buf);
        double dt = now_s() - t0;
        if (n < 0) {
            fprintf(stderr, "%s failed\n", names[m]);
            return 1;
        }
        printf("libssh2 %s method=%s bytes=%lld s=%.2f mb_per_s=%.1f\n", libssh2_version(0),
               names[m], n, dt, (double)n / 1e6 / dt);
        close(in);
        libssh2_session_disconnect(s, "done");
        libssh2_session_free(s);
        close(fd);
    }
    free(buf);
    libssh2_exit();
    return 0;
}
