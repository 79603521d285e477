/* SPDX-License-Identifier: Apache-2.0 */
/* A loopback (D)TLS proxy that lets a test change the client's records: see proxy.h. */
#include "proxy.h"

#include "hs.h" /* the loopback sockets */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS_HDR  5
#define DTLS_HDR 13

struct proxy {
    hs_thread th; /* first: hs_thread_run */
    int dtls, server_port;
    proxy_tamper_fn tamper;
    void *arg;
    unsigned char buf[1 << 17]; /* client -> server bytes not yet a whole record (TCP) */
    size_t have;
};

int proxy_record_type(const unsigned char *rec, int dtls)
{
    (void)dtls;
    return rec[0];
}

int proxy_handshake_type(const unsigned char *rec, size_t len, int dtls)
{
    size_t hdr = dtls ? DTLS_HDR : TLS_HDR;
    return rec[0] == 22 && len > hdr ? rec[hdr] : -1;
}

static size_t record_len(const unsigned char *p, size_t n, int dtls)
{
    size_t hdr = dtls ? DTLS_HDR : TLS_HDR;
    if (n < hdr)
        return 0;
    size_t body = ((size_t)p[hdr - 2] << 8) | p[hdr - 1];
    return hdr + body <= n ? hdr + body : 0;
}

/* TCP: whole records are tampered with and forwarded; a partial one waits. */
static int client_stream(proxy *p, int from, int to)
{
    ssize_t n = recv(from, p->buf + p->have, sizeof p->buf - p->have, 0);
    if (n <= 0)
        return 0;
    p->have += (size_t)n;
    size_t off = 0, len;
    while ((len = record_len(p->buf + off, p->have - off, 0)) > 0) {
        p->tamper(p->buf + off, len, 0, p->arg);
        off += len;
    }
    if (off > 0 && send(to, p->buf, off, MSG_NOSIGNAL) != (ssize_t)off)
        return 0;
    memmove(p->buf, p->buf + off, p->have - off);
    p->have -= off;
    return p->have < sizeof p->buf;
}

/* UDP: a datagram holds whole records. */
static int client_datagram(proxy *p, int from, int to)
{
    ssize_t n = recv(from, p->buf, sizeof p->buf, 0);
    if (n <= 0)
        return n == 0;
    size_t off = 0, len;
    while ((len = record_len(p->buf + off, (size_t)n - off, 1)) > 0) {
        p->tamper(p->buf + off, len, 1, p->arg);
        off += len;
    }
    return send(to, p->buf, (size_t)n, 0) == n;
}

static int copy(int from, int to, int dtls)
{
    unsigned char b[1 << 16];
    ssize_t n = recv(from, b, sizeof b, 0);
    if (n <= 0)
        return dtls && n == 0;
    return send(to, b, (size_t)n, MSG_NOSIGNAL) == n;
}

/* A connected socket (hs_accept, hs_connect) made blocking: each send goes
 * out whole. */
static int blocking(int fd)
{
    if (fd >= 0 && !hs_set_blocking(fd, HS_TIMEOUT_MS)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *run(void *v)
{
    proxy *p = v;
    int cfd = -1;
    /* UDP: the first datagram names the client; the socket is connected to it */
    while (!atomic_load(&p->th.stop) && (cfd = hs_accept(p->th.lfd, p->dtls, 50)) == -1)
        ;
    if (atomic_load(&p->th.stop) || cfd < 0) {
        if (cfd >= 0)
            close(cfd);
        return NULL;
    }
    cfd = blocking(cfd);
    int sfd = cfd >= 0 ? blocking(hs_connect(p->server_port, p->dtls, NULL)) : -1;
    struct pollfd fds[2] = { { .fd = cfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
    while (cfd >= 0 && sfd >= 0 && !atomic_load(&p->th.stop)) {
        int r = poll(fds, 2, 50);
        if (r < 0 && errno != EINTR)
            break;
        if ((fds[0].revents & (POLLIN | POLLHUP))
            && !(p->dtls ? client_datagram(p, cfd, sfd) : client_stream(p, cfd, sfd)))
            break;
        if ((fds[1].revents & (POLLIN | POLLHUP)) && !copy(sfd, cfd, p->dtls))
            break;
    }
    if (cfd >= 0)
        close(cfd);
    if (sfd >= 0)
        close(sfd);
    return NULL;
}

proxy *proxy_start(int dtls, int server_port, proxy_tamper_fn tamper, void *arg, int *port)
{
    proxy *p = calloc(1, sizeof *p); /* (a large buffer: not built on the stack) */
    if (p != NULL) {
        p->dtls = dtls;
        p->server_port = server_port;
        p->tamper = tamper;
        p->arg = arg;
    }
    return hs_thread_run(p, dtls, port, run);
}

void proxy_stop(proxy *p)
{
    hs_thread_end(p);
}
