/* SPDX-License-Identifier: Apache-2.0 */
/* The handshake driver of the tests: see hs.h. */
#include "hs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

int hs_set_blocking(int fd, int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0
           && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0
           && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0;
}

static void loopback(struct sockaddr_in *a, int port)
{
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* The first error (ssl_error) and the whole queue with its data (errors);
 * the queue is emptied. */
static void note_errors(hs_side *s)
{
    unsigned long e;
    const char *data, *file, *func;
    int flags, line;
    size_t len = strlen(s->errors);

    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        char eb[256];
        ERR_error_string_n(e, eb, sizeof eb);
        if (s->ssl_error[0] == '\0')
            snprintf(s->ssl_error, sizeof s->ssl_error, "%s", eb);
        const char *text = (flags & ERR_TXT_STRING) ? data : "";
        if (len < sizeof s->errors)
            len += (size_t)snprintf(s->errors + len, sizeof s->errors - len, "%s%s%s%s", len ? " | " : "", eb,
                                    *text ? ": " : "", text);
    }
}

/* What one end does, taken from hs_opts. */
typedef struct side_cfg {
    int         dtls, keep, exchange, blocking, timeout_ms, version;
    const char *groups;
    void      (*done)(SSL *ssl, int handshake_ok, void *arg);
    void       *done_arg;
} side_cfg;

static side_cfg side_cfg_of(const hs_opts *o, int server)
{
    side_cfg c = { .dtls = o->dtls, .keep = o->keep, .exchange = o->exchange,
                   .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : HS_TIMEOUT_MS,
                   .version = o->version, .groups = o->groups };
    if (server) {
        c.blocking = o->server_blocking;
        c.done = o->server_done;
        c.done_arg = o->server_done_arg;
    }
    return c;
}

/* The protocol version and groups a test pins for both ends. */
static void apply_pins(SSL *ssl, const side_cfg *c)
{
    if (c->version != 0) {
        SSL_set_min_proto_version(ssl, c->version);
        SSL_set_max_proto_version(ssl, c->version);
    }
    if (c->groups != NULL)
        SSL_set1_groups_list(ssl, c->groups);
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

/* After the handshake: what hs_opts.exchange asks for. 1 done. */
static int exchange(SSL *ssl, int fd, int server, const side_cfg *c, long deadline)
{
    char buf[4];
    if (c->exchange == HS_NO_DATA)
        return 1;
    if (server)
        return drive(ssl, fd, c->dtls, OP_READ, buf, 4, deadline) == 4 && memcmp(buf, "ping", 4) == 0
               && drive(ssl, fd, c->dtls, OP_WRITE, (void *)(c->exchange == HS_ECHO ? "ping" : "pong"), 4,
                        deadline) == 4;
    return drive(ssl, fd, c->dtls, OP_WRITE, (void *)"ping", 4, deadline) == 4
           && drive(ssl, fd, c->dtls, OP_READ, buf, 4, deadline) == 4
           && memcmp(buf, c->exchange == HS_ECHO ? "ping" : "pong", 4) == 0;
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
    s->verify_result = SSL_get_verify_result(ssl);
    s->peer_cert = SSL_get0_peer_certificate(ssl) != NULL;
    int nid = NID_undef;
    if (SSL_get_peer_signature_type_nid(ssl, &nid) && nid != NID_undef)
        snprintf(s->peer_sigalg, sizeof s->peer_sigalg, "%s", OBJ_nid2sn(nid));
}

/* Handshake, then the exchange; the results into S; SSL and FD are freed
 * and closed unless kept. */
static void run_conn(SSL *ssl, int fd, int server, const side_cfg *c, hs_side *s)
{
    long deadline = now_ms() + c->timeout_ms;

    ERR_clear_error();
    s->handshake_ok = drive(ssl, fd, c->dtls, OP_HS, NULL, 0, deadline) == 1;
    if (c->done != NULL)
        c->done(ssl, s->handshake_ok, c->done_arg);
    s->ok = s->handshake_ok && exchange(ssl, fd, server, c, deadline);
    if (!s->ok)
        note_errors(s);
    collect(ssl, server, s);
    if (!server && s->ok)
        s->session = SSL_get1_session(ssl);
    if (s->ok && !c->keep)
        (void)SSL_shutdown(ssl); /* close_notify keeps the session resumable */
    ERR_clear_error();
    if (c->keep) {
        s->ssl = ssl;
        s->fd = fd;
    } else {
        SSL_free(ssl);
        close(fd);
    }
}

static void side_init(hs_side *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->set_peer_ok = 1;
}

/* ---- contexts ----------------------------------------------------------- */

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

SSL_CTX *hs_ctx_for(int server, int dtls, int max_version, const char *dir, const char *policy)
{
    SSL_CTX *ctx = hs_ctx_new(server, dtls, max_version);
    if (ctx == NULL) {
        fprintf(stderr, "%s: a TS-0003 context: %s\n", policy, m2mtls_last_error());
        return NULL;
    }
    if (!hs_ctx_install(ctx, dir, policy)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- sockets -------------------------------------------------------------- */

int hs_listen(int dtls, int *port)
{
    pthread_once(&sigpipe_once, ignore_sigpipe);
    int fd = socket(AF_INET, dtls ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    loopback(&a, 0);
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

int hs_thread_start(hs_thread *t, int dtls, int *port, void *(*fn)(void *), void *arg)
{
    atomic_store(&t->stop, 0);
    if ((t->lfd = hs_listen(dtls, port)) < 0)
        return 0;
    if (pthread_create(&t->thread, NULL, fn, arg) != 0) {
        close(t->lfd);
        t->lfd = -1;
        return 0;
    }
    return 1;
}

void hs_thread_stop(hs_thread *t)
{
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    close(t->lfd);
}

void *hs_thread_run(void *obj, int dtls, int *port, void *(*fn)(void *))
{
    if (obj != NULL && !hs_thread_start(obj, dtls, port, fn, obj)) {
        free(obj);
        return NULL;
    }
    return obj;
}

void hs_thread_end(void *obj)
{
    if (obj != NULL)
        hs_thread_stop(obj);
    free(obj);
}

int hs_accept(int lfd, int dtls, int timeout_ms)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    int pr = poll(&p, 1, timeout_ms);
    if (pr == 0)
        return -1;
    if (pr < 0)
        return errno == EINTR ? -1 : -2;
    if (!dtls) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
        if (!set_nonblock(fd)) {
            close(fd);
            return -2;
        }
        return fd;
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    char b;
    /* this UDP socket now belongs to the connection; the duplicate is
     * closed with the connection, the caller closes lfd */
    if (recvfrom(lfd, &b, 1, MSG_PEEK, (struct sockaddr *)&peer, &pl) < 0
        || connect(lfd, (struct sockaddr *)&peer, pl) != 0)
        return -2;
    int fd = dup(lfd);
    return fd >= 0 ? fd : -2;
}

int hs_connect(int port, int dtls, const char *source)
{
    pthread_once(&sigpipe_once, ignore_sigpipe);
    int fd = socket(AF_INET, dtls ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_in a, from = { .sin_family = AF_INET };
    loopback(&a, port);
    if (fd < 0)
        return -1;
    if ((source != NULL
         && (inet_pton(AF_INET, source, &from.sin_addr) != 1 || bind(fd, (struct sockaddr *)&from, sizeof from) != 0))
        || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || !set_nonblock(fd)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A datagram BIO on FD that knows the peer FD is connected to. */
static BIO *dgram_bio(int fd)
{
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    BIO *b = BIO_new_dgram(fd, BIO_NOCLOSE);
    BIO_ADDR *ba = BIO_ADDR_new();
    if (b == NULL || ba == NULL || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0
        || !BIO_ADDR_rawmake(ba, AF_INET, &peer.sin_addr, sizeof peer.sin_addr, peer.sin_port)
        || BIO_ctrl(b, BIO_CTRL_DGRAM_SET_CONNECTED, 0, ba) <= 0) {
        BIO_free(b);
        BIO_ADDR_free(ba);
        return NULL;
    }
    BIO_ADDR_free(ba);
    return b;
}

int hs_set_fd(SSL *ssl, int fd, int dtls)
{
    if (!dtls)
        return SSL_set_fd(ssl, fd);
    BIO *bio = dgram_bio(fd);
    if (bio == NULL)
        return 0;
    SSL_set_bio(ssl, bio, bio);
    return 1;
}

/* ---- server ------------------------------------------------------------------ */

static int server_conn(SSL_CTX *ctx, void (*setup)(SSL *, void *), void *setup_arg, const side_cfg *c, int lfd,
                       int accept_ms, hs_side *out)
{
    side_init(out);
    int fd = hs_accept(lfd, c->dtls, accept_ms);
    if (fd < 0)
        return fd == -1 ? 0 : -1;
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || !hs_set_fd(ssl, fd, c->dtls) || (c->blocking && !hs_set_blocking(fd, c->timeout_ms))) {
        SSL_free(ssl);
        close(fd);
        return -1;
    }
    SSL_set_accept_state(ssl);
    apply_pins(ssl, c);
    if (setup != NULL)
        setup(ssl, setup_arg);
    run_conn(ssl, fd, 1, c, out);
    return 1;
}

int hs_server_conn(SSL_CTX *ctx, int lfd, int dtls, int accept_ms, int keep, hs_side *out)
{
    hs_opts o = { .server_ctx = ctx, .dtls = dtls, .keep = keep };
    side_cfg c = side_cfg_of(&o, 1);
    return server_conn(ctx, NULL, NULL, &c, lfd, accept_ms, out);
}

/* ---- client ------------------------------------------------------------------ */

/* Connects SSL (prepared by the caller) to 127.0.0.1:PORT and runs it. */
static void client_run(SSL *ssl, int port, const side_cfg *c, hs_side *out)
{
    int fd = hs_connect(port, c->dtls, NULL);
    if (fd < 0 || !hs_set_fd(ssl, fd, c->dtls)) {
        snprintf(out->ssl_error, sizeof out->ssl_error, "client socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        SSL_free(ssl);
        return;
    }
    SSL_set_connect_state(ssl);
    run_conn(ssl, fd, 0, c, out);
}

void hs_client_run(SSL *ssl, int port, int dtls, int keep, hs_side *out)
{
    hs_opts o = { .dtls = dtls, .keep = keep };
    side_cfg c = side_cfg_of(&o, 0);
    int set_peer_ok = out->set_peer_ok;
    side_init(out);
    out->set_peer_ok = set_peer_ok;
    client_run(ssl, port, &c, out);
}

void hs_client(const hs_opts *o, int port, hs_side *out)
{
    side_cfg c = side_cfg_of(o, 0);
    side_init(out);
    SSL *ssl = o->client_ssl != NULL ? o->client_ssl : SSL_new(o->client_ctx);
    if (ssl == NULL) {
        snprintf(out->ssl_error, sizeof out->ssl_error, "SSL_new failed");
        return;
    }
    if (o->session != NULL && o->session_first)
        SSL_set_session(ssl, o->session);
    if (o->peer != NULL)
        out->set_peer_ok = m2mtls_ssl_set_peer(ssl, o->peer);
    if (o->session != NULL && !o->session_first)
        SSL_set_session(ssl, o->session);
    if (o->sni != NULL)
        SSL_set_tlsext_host_name(ssl, o->sni);
    apply_pins(ssl, &c);
    if (o->client_setup != NULL)
        o->client_setup(ssl, o->client_setup_arg);
    client_run(ssl, port, &c, out);
}

void hs_client_conn(SSL_CTX *ctx, int port, int dtls, const char *peer, SSL_SESSION *sess,
                    int keep, hs_side *out)
{
    hs_opts o = { .client_ctx = ctx, .dtls = dtls, .peer = peer, .session = sess, .keep = keep };
    hs_client(&o, port, out);
}

/* ---- one connection ------------------------------------------------------------ */

struct server_arg {
    const hs_opts *o;
    hs_thread      th;
    hs_side       *out;
    int            rc;
};

static void *server_main(void *v)
{
    struct server_arg *a = v;
    side_cfg c = side_cfg_of(a->o, 1);
    a->rc = server_conn(a->o->server_ctx, a->o->server_setup, a->o->server_setup_arg, &c, a->th.lfd,
                        c.timeout_ms, a->out);
    return NULL;
}

int hs_run(const hs_opts *o, hs_side *server, hs_side *client)
{
    int port;
    side_init(server);
    side_init(client);
    struct server_arg a = { .o = o, .out = server, .rc = -1 };
    if (!hs_thread_start(&a.th, o->dtls, &port, server_main, &a))
        return 0;
    proxy *px = NULL;
    int to = port;
    if (o->tamper != NULL && (px = proxy_start(o->dtls, port, o->tamper, o->tamper_arg, &to)) == NULL)
        snprintf(client->ssl_error, sizeof client->ssl_error, "cannot start the proxy");
    if (o->tamper == NULL || px != NULL)
        hs_client(o, to, client);
    hs_thread_stop(&a.th); /* the server ends on its own: one connection */
    proxy_stop(px);
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

int hs_pump(const hs_side *server, const hs_side *client)
{
    SSL *srv = server->ssl, *cli = client->ssl;
    char buf[64];
    int wrote = 0;
    for (int i = 0; i < HS_TIMEOUT_MS / 20; i++) {
        (void)SSL_read(cli, buf, sizeof buf);
        if (!wrote && SSL_is_init_finished(srv) && !SSL_renegotiate_pending(srv) && SSL_is_init_finished(cli)) {
            if (SSL_write(cli, "x", 1) != 1)
                return 0;
            wrote = 1;
        }
        int r = SSL_read(srv, buf, sizeof buf);
        if (r > 0)
            return 1;
        int e = SSL_get_error(srv, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return 0;
        struct pollfd p[2] = { { .fd = server->fd, .events = POLLIN }, { .fd = client->fd, .events = POLLIN } };
        poll(p, 2, 20);
    }
    return 0;
}

/* ---- a server thread ------------------------------------------------------------- */

struct hs_server {
    hs_thread    th; /* first: hs_thread_run */
    hs_opts      o;
    hs_served_fn served;
    void        *arg;
};

static void *serve_loop(void *v)
{
    hs_server *srv = v;
    side_cfg c = side_cfg_of(&srv->o, 1);
    while (!atomic_load(&srv->th.stop)) {
        hs_side s;
        /* a short accept wait: the stop flag is seen soon */
        int r = server_conn(srv->o.server_ctx, srv->o.server_setup, srv->o.server_setup_arg, &c, srv->th.lfd, 50, &s);
        if (r != 0 && srv->served != NULL)
            srv->served(r, &s, srv->arg);
        hs_side_clear(&s);
        if (r < 0)
            break;
    }
    return NULL;
}

hs_server *hs_server_start(const hs_opts *o, hs_served_fn served, void *arg, int *port)
{
    hs_server *srv = malloc(sizeof *srv);
    if (srv != NULL)
        *srv = (hs_server){ .o = *o, .served = served, .arg = arg };
    return hs_thread_run(srv, o->dtls, port, serve_loop);
}

void hs_server_stop(hs_server *srv)
{
    hs_thread_end(srv);
}

/* ---- handshakes under load ---------------------------------------------------------- */

void hs_load_failure(hs_load *l, const char *who, const hs_side *s)
{
    atomic_fetch_add(&l->failures, 1);
    pthread_mutex_lock(&l->lock);
    if (l->first_failure[0] == '\0')
        snprintf(l->first_failure, sizeof l->first_failure, "%s: ok=%d peer=%s local=%s reason=%s ssl=%s", who,
                 s ? s->ok : 0, s && s->peer_id ? s->peer_id : "(null)", s && s->local_id ? s->local_id : "(null)",
                 s && s->reason ? s->reason : "(null)", s ? s->ssl_error : "-");
    pthread_mutex_unlock(&l->lock);
}

/* S completed its exchange with label PEER_ID and, when given, LOCAL_ID. */
static int labelled(const hs_side *s, const char *peer_id, const char *local_id)
{
    return s->ok && s->peer_id != NULL && strcmp(s->peer_id, peer_id) == 0
           && (local_id == NULL || (s->local_id != NULL && strcmp(s->local_id, local_id) == 0));
}

static void load_served(int rc, const hs_side *s, void *arg)
{
    hs_load *l = arg;
    if (rc < 0) {
        hs_load_failure(l, "server socket", s);
        return;
    }
    atomic_fetch_add(&l->server_conns, 1);
    if (!labelled(s, l->server_peer_id, l->server_local_id))
        hs_load_failure(l, "server", s);
}

static void *load_client(void *v)
{
    struct hs_load_client *lc = v;
    hs_load *l = lc->load;
    SSL_SESSION *sess = NULL;
    for (int i = 0; i < l->rounds || atomic_load(&l->more); i++) {
        hs_opts o = l->o;
        hs_side c;
        o.session = (i % 2) ? sess : NULL;
        hs_client(&o, lc->port, &c);
        atomic_fetch_add(&l->client_conns, 1);
        if (c.reused)
            atomic_fetch_add(&l->resumed, 1);
        if (!c.set_peer_ok || !labelled(&c, l->o.peer, l->client_local_id))
            hs_load_failure(l, "client", &c);
        if (c.session != NULL) {
            SSL_SESSION_free(sess);
            sess = c.session;
            c.session = NULL;
        }
        hs_side_clear(&c);
        if (atomic_load(&l->failures) > l->max_failures)
            break;
    }
    SSL_SESSION_free(sess);
    return NULL;
}

int hs_load_start(hs_load *l)
{
    if (l->clients < 1 || l->clients > HS_LOAD_MAX || l->o.peer == NULL || l->server_peer_id == NULL)
        return 0;
    pthread_mutex_init(&l->lock, NULL);
    atomic_store(&l->more, 1);
    for (int i = 0; i < l->clients; i++)
        if ((l->server[i] = hs_server_start(&l->o, load_served, l, &l->client[i].port)) == NULL) {
            while (i-- > 0)
                hs_server_stop(l->server[i]);
            return 0;
        }
    for (l->started = 0; l->started < l->clients; l->started++) {
        l->client[l->started].load = l;
        if (pthread_create(&l->client[l->started].thread, NULL, load_client, &l->client[l->started]) != 0)
            break;
    }
    if (l->started < l->clients)
        hs_load_failure(l, "starting a client thread", NULL);
    return 1;
}

void hs_load_wait(hs_load *l)
{
    atomic_store(&l->more, 0);
    for (int i = 0; i < l->started; i++)
        pthread_join(l->client[i].thread, NULL);
    for (int i = 0; i < l->clients; i++)
        hs_server_stop(l->server[i]);
    pthread_mutex_destroy(&l->lock);
}

/* ---- in memory ----------------------------------------------------------------- */

SSL *hs_mem_ssl(SSL_CTX *ctx, int server)
{
    SSL *ssl = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (ssl == NULL || in == NULL || out == NULL) {
        SSL_free(ssl);
        BIO_free(in);
        BIO_free(out);
        return NULL;
    }
    SSL_set_bio(ssl, in, out);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return ssl;
}

void hs_mem_move(SSL *from, SSL *to, proxy_tamper_fn tamper, void *arg)
{
    BIO *src = SSL_get_wbio(from), *dst = SSL_get_rbio(to);
    int dtls = SSL_is_dtls(from);
    long hdr = dtls ? 13 : 5;
    char *data;
    long n = BIO_get_mem_data(src, &data);
    long off = 0;
    while (tamper != NULL && off + hdr <= n) {
        long len = hdr + (((unsigned char)data[off + hdr - 2] << 8) | (unsigned char)data[off + hdr - 1]);
        if (off + len > n)
            len = n - off;
        tamper((unsigned char *)data + off, (size_t)len, dtls, arg);
        BIO_write(dst, data + off, (int)len);
        off += len;
    }
    if (off < n)
        BIO_write(dst, data + off, (int)(n - off));
    (void)BIO_reset(src);
}

void hs_mem_run(SSL *client, SSL *server, proxy_tamper_fn tamper, void *arg)
{
    for (int i = 0; i < 32; i++) {
        int rc = SSL_do_handshake(client);
        hs_mem_move(client, server, tamper, arg);
        int rs = SSL_do_handshake(server);
        hs_mem_move(server, client, NULL, NULL);
        if ((rc == 1 && rs == 1) || (rc <= 0 && SSL_get_error(client, rc) == SSL_ERROR_SSL)
            || (rs <= 0 && SSL_get_error(server, rs) == SSL_ERROR_SSL))
            break;
    }
    /* one byte each way: in TLS 1.3 the server's verdict on the client
     * reaches the client only now */
    char b;
    if (SSL_write(client, "x", 1) == 1) {
        hs_mem_move(client, server, tamper, arg);
        (void)SSL_read(server, &b, 1);
        hs_mem_move(server, client, NULL, NULL);
        (void)SSL_read(client, &b, 1);
    }
    ERR_clear_error();
}

/* Sends what CLIENT wrote as one flight; 0 when the run ends here. */
static int send_flight(SSL *client, int fd, int n, hs_flight_fn flight, void *arg)
{
    BIO *wb = SSL_get_wbio(client);
    size_t pending = BIO_ctrl_pending(wb);
    if (pending == 0)
        return 1;
    unsigned char *out = malloc(pending);
    if (out == NULL)
        return 0;
    int got = BIO_read(wb, out, (int)pending);
    size_t len = got > 0 ? (size_t)got : 0;
    int stop = 0;
    size_t send = flight != NULL ? flight(n, out, len, &stop, arg) : len;
    if (send > len)
        send = len;
    int sent = write(fd, out, send) == (ssize_t)send;
    free(out);
    return sent && !stop;
}

int hs_mem_flights(SSL *client, int fd, hs_flight_fn flight, void *arg)
{
    unsigned char buf[1 << 16];
    int flights = 0;
    pthread_once(&sigpipe_once, ignore_sigpipe);
    for (int rounds = 0; rounds < 50; rounds++) {
        int r = SSL_do_handshake(client);
        if (BIO_ctrl_pending(SSL_get_wbio(client)) > 0 && !send_flight(client, fd, ++flights, flight, arg))
            return 0;
        if (r == 1)
            return 1;
        if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ)
            return 0;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return 0;
        BIO_write(SSL_get_rbio(client), buf, (int)n);
    }
    return 0;
}
