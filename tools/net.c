/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include "net.h"

long long net_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static _Thread_local int last_errno;

int net_last_errno(void)
{
    return last_errno;
}

int net_split_hostport(const char *s, char *host, size_t hlen, unsigned *port, int any_port)
{
    const char *colon;
    size_t n;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return 0;
        n = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return 0;
        n = (size_t)(colon - s);
        if (memchr(s, ':', n) != NULL)
            return 0;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (n == 0 || n >= hlen || colon[1] == '\0' || *end != '\0' || p < (any_port ? 0 : 1) || p > 65535)
        return 0;
    memcpy(host, s, n);
    host[n] = '\0';
    *port = (unsigned)p;
    return 1;
}

const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(buf, len, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

static struct addrinfo *resolve(const char *host, unsigned port, int dtls, int passive, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = dtls ? SOCK_DGRAM : SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return NULL;
    }
    return ai;
}

static int wait_connected(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) {
        errno = ETIMEDOUT;
        return 0;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return 0;
    errno = soerr;
    return soerr == 0;
}

int net_connect(const char *host, unsigned port, int dtls, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo *ai = resolve(host, port, dtls, 0, err, errlen);
    if (ai == NULL)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0 || !nonblocking(fd))
            goto next;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || (errno == EINPROGRESS && wait_connected(fd, timeout_ms)))
            break;
    next:
        snprintf(err, errlen, "cannot connect to %s:%u: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* DTLS: the listener needs SO_REUSEPORT (one connected socket per client
 * binds the same address), and SO_REUSEPORT would also let a second server
 * share the port unnoticed. A plain bind first finds a port in use (and
 * picks the port when 0 was asked for). */
static int udp_port_free(const struct addrinfo *ai, struct sockaddr_storage *picked, socklen_t *len)
{
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    *len = sizeof *picked;
    int ok = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
             && getsockname(fd, (struct sockaddr *)picked, len) == 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    errno = saved;
    return ok;
}

int net_listen(const char *host, unsigned port, int dtls, char *err, size_t errlen)
{
    struct addrinfo *ai = resolve(host, port, dtls, 1, err, errlen);
    if (ai == NULL)
        return -1;
    struct sockaddr_storage addr;
    socklen_t alen = (socklen_t)ai->ai_addrlen;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    int fd = -1, one = 1;
    if (dtls && !udp_port_free(ai, &addr, &alen))
        goto fail;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || (dtls && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        || bind(fd, (struct sockaddr *)&addr, alen) != 0 || (!dtls && listen(fd, 128) != 0) || !nonblocking(fd))
        goto fail;
    freeaddrinfo(ai);
    return fd;
fail:
    snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

int net_accept(int lfd, struct sockaddr_storage *sa, socklen_t *len)
{
    *len = sizeof *sa;
    /* Non-blocking like the listener: the poll loops enforce the timeouts. */
    int fd = accept(lfd, (struct sockaddr *)sa, len);
    if (fd >= 0 && (!nonblocking(fd) || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int net_udp_child(int listen_fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct sockaddr_storage local;
    socklen_t ll = sizeof local;
    if (getsockname(listen_fd, (struct sockaddr *)&local, &ll) != 0)
        return -1;
    int fd = socket(local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
    /* Same local address as the listener; once connected, the kernel hands
     * this client's datagrams to this socket (the more specific match). */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0
        || bind(fd, (struct sockaddr *)&local, ll) != 0 || connect(fd, peer, peer_len) != 0 || !nonblocking(fd)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* One step of the poll loop after an SSL call returned R. 1: call again. */
static int wait_io(SSL *ssl, int fd, int r, long long deadline, atomic_int *stop, int *out)
{
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        last_errno = e == SSL_ERROR_SYSCALL ? errno : 0;
        *out = r;
        return 0;
    }
    for (;;) {
        if (stop != NULL && atomic_load(stop)) {
            *out = -3;
            return 0;
        }
        long long left = deadline - net_now_ms();
        if (left <= 0) {
            *out = -2;
            return 0;
        }
        int slice = left > 200 ? 200 : (int)left; /* to notice *stop */
        struct timeval tv;
        if (SSL_is_dtls(ssl) && DTLSv1_get_timeout(ssl, &tv)) {
            long long dt = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
            if (dt < slice)
                slice = (int)dt;
        }
        struct pollfd p = { .fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
        int pr = poll(&p, 1, slice);
        if (pr > 0)
            return 1;
        if (pr < 0 && errno != EINTR) {
            *out = r;
            return 0;
        }
        if (SSL_is_dtls(ssl) && DTLSv1_handle_timeout(ssl) < 0) {
            *out = -1;
            return 0;
        }
    }
}

int net_handshake(SSL *ssl, int fd, long long deadline, atomic_int *stop)
{
    int out;
    do {
        int r = SSL_do_handshake(ssl);
        if (r == 1)
            return 1;
        if (!wait_io(ssl, fd, r, deadline, stop, &out))
            return out;
    } while (1);
}

int net_read(SSL *ssl, int fd, void *buf, int len, long long deadline, atomic_int *stop)
{
    int out;
    do {
        int r = SSL_read(ssl, buf, len);
        if (r > 0)
            return r;
        if (!wait_io(ssl, fd, r, deadline, stop, &out))
            return out;
    } while (1);
}

int net_write(SSL *ssl, int fd, const void *buf, int len, long long deadline, atomic_int *stop)
{
    int out;
    do {
        int r = SSL_write(ssl, buf, len);
        if (r > 0)
            return r;
        if (!wait_io(ssl, fd, r, deadline, stop, &out))
            return out;
    } while (1);
}
