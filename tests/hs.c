/* SPDX-License-Identifier: Apache-2.0 */
/* Loopback handshakes: see hs.h. */
#include "hs.h"

#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <m2mtls/policy.h>

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;
static void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN); /* a peer that aborted must not kill the test */
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

static void note_error(hs_side *s)
{
    unsigned long e = ERR_peek_error();
    if (e != 0 && s->ssl_error[0] == '\0')
        ERR_error_string_n(e, s->ssl_error, sizeof s->ssl_error);
}

enum { OP_HS, OP_READ, OP_WRITE };

/* Runs OP to completion (or failure) before DEADLINE. Returns the SSL result (>0 ok). */
static int drive(SSL *ssl, int fd, int dtls, int op, void *buf, int len, long deadline)
{
    for (;;) {
        int r = op == OP_HS ? SSL_do_handshake(ssl)
              : op == OP_READ ? SSL_read(ssl, buf, len) : SSL_write(ssl, buf, len);
        if (r > 0)
            return r;
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return -1;
        long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        int wait = (int)left;
        if (dtls) {
            struct timeval tv;
            if (DTLSv1_get_timeout(ssl, &tv)) {
                long t = (long)tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1;
                if (t < wait)
                    wait = (int)t;
            }
        }
        struct pollfd p = { .fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
        int pr = poll(&p, 1, wait);
        if (pr < 0 && errno != EINTR)
            return -1;
        if (dtls && pr == 0 && DTLSv1_handle_timeout(ssl) < 0)
            return -1;
    }
}

static void collect(SSL *ssl, int server, hs_side *s)
{
    s->peer_id = dup_or_null(m2mtls_ssl_peer_id(ssl));
    s->local_id = dup_or_null(m2mtls_ssl_local_id(ssl));
    s->cert_name = dup_or_null(m2mtls_ssl_peer_cert_name(ssl));
    s->anchor = dup_or_null(m2mtls_ssl_anchor(ssl));
    s->reason = dup_or_null(m2mtls_ssl_reject_reason(ssl));
    s->reject_code = m2mtls_ssl_reject_code(ssl);
    if (server)
        s->sni = dup_or_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
    s->reused = SSL_session_reused(ssl);
    s->version = SSL_version(ssl);
    const char *c = SSL_get_cipher_name(ssl);
    snprintf(s->cipher, sizeof s->cipher, "%s", c ? c : "");
}

/* Handshake, then client "ping" -> server, server "pong" -> client. */
static void run_conn(SSL *ssl, int fd, int dtls, int server, int keep, hs_side *s)
{
    long deadline = now_ms() + HS_TIMEOUT_MS;
    char buf[8];

    ERR_clear_error();
    s->handshake_ok = drive(ssl, fd, dtls, OP_HS, NULL, 0, deadline) == 1;
    int ok = s->handshake_ok;
    if (server) {
        ok = ok && drive(ssl, fd, dtls, OP_READ, buf, 4, deadline) == 4 && memcmp(buf, "ping", 4) == 0;
        ok = ok && drive(ssl, fd, dtls, OP_WRITE, (void *)"pong", 4, deadline) == 4;
    } else {
        ok = ok && drive(ssl, fd, dtls, OP_WRITE, (void *)"ping", 4, deadline) == 4;
        ok = ok && drive(ssl, fd, dtls, OP_READ, buf, 4, deadline) == 4 && memcmp(buf, "pong", 4) == 0;
    }
    s->ok = ok;
    if (!ok)
        note_error(s);
    collect(ssl, server, s);
    if (!server && ok)
        s->session = SSL_get1_session(ssl);
    if (ok && !keep)
        (void)SSL_shutdown(ssl); /* close_notify keeps the session resumable */
    ERR_clear_error();
    if (keep) {
        s->ssl = ssl;
        s->fd = fd;
    } else {
        SSL_free(ssl);
        close(fd);
    }
}

SSL_CTX *hs_ctx_new(int server, int dtls, int max_version)
{
    const SSL_METHOD *meth = server ? (dtls ? DTLS_server_method() : TLS_server_method())
                                    : (dtls ? DTLS_client_method() : TLS_client_method());
    SSL_CTX *ctx = SSL_CTX_new(meth);
    if (ctx == NULL || !m2mtls_ctx_apply_ts0003_profile(ctx)
        || (max_version != 0 && !SSL_CTX_set_max_proto_version(ctx, max_version))) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int hs_ctx_install(SSL_CTX *ctx, const char *dir, const char *policy)
{
    size_t n = strlen(dir) + strlen(policy) + 2;
    char *path = malloc(n);
    if (path == NULL)
        return 0;
    snprintf(path, n, "%s/%s", dir, policy);
    m2mtls_policy *p = m2mtls_policy_load(path);
    int ok = p != NULL && m2mtls_ctx_install(ctx, p) && m2mtls_ctx_use_credential(ctx, p);
    if (!ok)
        fprintf(stderr, "%s: %s\n", path, m2mtls_last_error());
    m2mtls_policy_free(p); /* the context keeps its own reference */
    free(path);
    return ok;
}

int hs_listen(int dtls, int *port)
{
    pthread_once(&sigpipe_once, ignore_sigpipe);
    int fd = socket(AF_INET, dtls ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0
        || (!dtls && listen(fd, 16) != 0)
        || getsockname(fd, (struct sockaddr *)&a, &al) != 0
        || !set_nonblock(fd)) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static BIO *dgram_bio(int fd, const struct sockaddr_in *peer)
{
    BIO *b = BIO_new_dgram(fd, BIO_NOCLOSE);
    BIO_ADDR *ba = BIO_ADDR_new();
    if (b == NULL || ba == NULL
        || !BIO_ADDR_rawmake(ba, AF_INET, &peer->sin_addr, sizeof peer->sin_addr, peer->sin_port)
        || BIO_ctrl(b, BIO_CTRL_DGRAM_SET_CONNECTED, 0, ba) <= 0) {
        BIO_free(b);
        BIO_ADDR_free(ba);
        return NULL;
    }
    BIO_ADDR_free(ba);
    return b;
}

static void side_init(hs_side *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->set_peer_ok = 1;
}

int hs_server_conn(SSL_CTX *ctx, int lfd, int dtls, int accept_ms, int keep, hs_side *out)
{
    side_init(out);
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    int pr = poll(&p, 1, accept_ms);
    if (pr == 0)
        return 0;
    if (pr < 0)
        return errno == EINTR ? 0 : -1;

    int fd;
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL)
        return -1;
    if (dtls) {
        char b;
        if (recvfrom(lfd, &b, 1, MSG_PEEK, (struct sockaddr *)&peer, &pl) < 0
            || connect(lfd, (struct sockaddr *)&peer, pl) != 0) {
            SSL_free(ssl);
            return -1;
        }
        /* this UDP socket now belongs to the connection; run_conn closes its
         * own descriptor, the caller closes lfd */
        fd = dup(lfd);
        BIO *bio = fd >= 0 ? dgram_bio(fd, &peer) : NULL;
        if (bio == NULL) {
            if (fd >= 0)
                close(fd);
            SSL_free(ssl);
            return -1;
        }
        SSL_set_bio(ssl, bio, bio);
    } else {
        fd = accept(lfd, (struct sockaddr *)&peer, &pl);
        if (fd < 0) {
            SSL_free(ssl);
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
        }
        if (!set_nonblock(fd) || !SSL_set_fd(ssl, fd)) {
            close(fd);
            SSL_free(ssl);
            return -1;
        }
    }
    SSL_set_accept_state(ssl);
    run_conn(ssl, fd, dtls, 1, keep, out);
    return 1;
}

/* Connects SSL (prepared by the caller) to 127.0.0.1:PORT and runs it. */
static void client_run(SSL *ssl, int port, int dtls, int keep, hs_side *out)
{
    pthread_once(&sigpipe_once, ignore_sigpipe);
    int fd = socket(AF_INET, dtls ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BIO *bio = NULL;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || !set_nonblock(fd)
        || (dtls ? (bio = dgram_bio(fd, &a)) == NULL : !SSL_set_fd(ssl, fd))) {
        snprintf(out->ssl_error, sizeof out->ssl_error, "client socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        SSL_free(ssl);
        return;
    }
    if (dtls)
        SSL_set_bio(ssl, bio, bio);
    SSL_set_connect_state(ssl);
    run_conn(ssl, fd, dtls, 0, keep, out);
}

void hs_client_run(SSL *ssl, int port, int dtls, int keep, hs_side *out)
{
    int set_peer_ok = out->set_peer_ok;
    side_init(out);
    out->set_peer_ok = set_peer_ok;
    client_run(ssl, port, dtls, keep, out);
}

static void client_conn(SSL_CTX *ctx, int port, int dtls, const char *peer, SSL_SESSION *sess,
                        int session_first, int keep, const hs_opts *o, hs_side *out)
{
    side_init(out);
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        snprintf(out->ssl_error, sizeof out->ssl_error, "SSL_new failed");
        return;
    }
    if (sess != NULL && session_first)
        SSL_set_session(ssl, sess);
    if (peer != NULL)
        out->set_peer_ok = m2mtls_ssl_set_peer(ssl, peer);
    if (sess != NULL && !session_first)
        SSL_set_session(ssl, sess);
    if (o != NULL && o->client_setup != NULL)
        o->client_setup(ssl, o->client_setup_arg);
    client_run(ssl, port, dtls, keep, out);
}

void hs_client_conn(SSL_CTX *ctx, int port, int dtls, const char *peer, SSL_SESSION *sess,
                    int keep, hs_side *out)
{
    client_conn(ctx, port, dtls, peer, sess, 0, keep, NULL, out);
}

struct server_arg {
    SSL_CTX *ctx;
    int      lfd, dtls, keep;
    hs_side *out;
    int      rc;
};

static void *server_main(void *v)
{
    struct server_arg *a = v;
    a->rc = hs_server_conn(a->ctx, a->lfd, a->dtls, HS_TIMEOUT_MS, a->keep, a->out);
    return NULL;
}

int hs_run(const hs_opts *o, hs_side *server, hs_side *client)
{
    int port;
    side_init(server);
    side_init(client);
    int lfd = hs_listen(o->dtls, &port);
    if (lfd < 0)
        return 0;
    struct server_arg a = { o->server_ctx, lfd, o->dtls, o->keep, server, -1 };
    pthread_t t;
    if (pthread_create(&t, NULL, server_main, &a) != 0) {
        close(lfd);
        return 0;
    }
    proxy *px = NULL;
    int to = port;
    if (o->tamper != NULL && (px = proxy_start(o->dtls, port, o->tamper, o->tamper_arg, &to)) == NULL)
        snprintf(client->ssl_error, sizeof client->ssl_error, "cannot start the proxy");
    if (o->tamper == NULL || px != NULL)
        client_conn(o->client_ctx, to, o->dtls, o->peer, o->session, o->session_first, o->keep, o, client);
    pthread_join(t, NULL);
    proxy_stop(px);
    close(lfd);
    return a.rc == 1;
}

void hs_side_clear(hs_side *s)
{
    free(s->peer_id);
    free(s->local_id);
    free(s->cert_name);
    free(s->anchor);
    free(s->reason);
    free(s->sni);
    SSL_SESSION_free(s->session);
    SSL_free(s->ssl);
    if (s->fd >= 0)
        close(s->fd);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}
