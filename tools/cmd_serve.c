/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls serve: act as Entity B (responder). Every connection is verified by
 * the policy and logged with the bound identity or the refusal reason; data
 * is echoed back. Connections are served concurrently, one thread each. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <netinet/in.h>
#include "net.h"
#include "tool.h"

#define MAX_CONNECTIONS 256
#define PER_ADDRESS 16          /* default --per-address */
#define HANDSHAKE_S 5           /* default --handshake-timeout: well below the idle time */
#define IDLE_MS 30000

static const char usage[] =
    "usage: m2mtls serve --policy FILE [--listen HOST:PORT] [--dtls] [--once] [--json]\n"
    "                    [--per-address N] [--handshake-timeout SECONDS]\n"
    "\n"
    "Acts as Entity B: accepts mutual (D)TLS handshakes, verifies each peer with\n"
    "the policy and logs one line per connection with the bound peer id or the\n"
    "refusal reason. Echoes what a peer sends. Stops on SIGINT or SIGTERM.\n"
    "\n"
    "  --policy FILE      the responder's policy (its cert and key lines are used)\n"
    "  --listen HOST:PORT default 127.0.0.1:4433 (TLS), 127.0.0.1:5684 (DTLS);\n"
    "                     port 0 picks a free port (shown on the first line)\n"
    "  --dtls             DTLS 1.2 over UDP\n"
    "  --once             handle one connection, then exit (0 accepted, 1 refused)\n"
    "  --json             log JSON lines\n"
    "  --per-address N    connections one source address may hold at once\n"
    "                     (handshaking or served; default 16, of 256 in all)\n"
    "  --handshake-timeout SECONDS\n"
    "                     a peer that has not completed its handshake by then is\n"
    "                     dropped (default 5; idle connections: 30)\n"
    "\n"
    "The first line on stdout is 'listening on HOST:PORT' (or a JSON object).\n";

typedef struct serve_args {
    const char *policy, *listen;
    int dtls, once, json;
    int per_address, handshake_ms;
    char host[256];
    unsigned port;
} serve_args;

static atomic_int stopping;
static atomic_int active;
static int stop_pipe[2] = { -1, -1 };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char cookie_secret[32];

static void on_signal(int sig)
{
    atomic_store(&stopping, 1);
    if (stop_pipe[1] >= 0) {
        ssize_t w = write(stop_pipe[1], "x", 1);
        (void)w;
    }
}

/* A whole number in 1..MAX. */
static int positive(const char *s, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > max)
        return 0;
    *out = (int)v;
    return 1;
}

static int parse_args(int argc, char **argv, serve_args *a)
{
    static const struct option opts[] = {
        { "policy", required_argument, NULL, 'p' }, { "listen", required_argument, NULL, 'l' },
        { "dtls", no_argument, NULL, 'd' },         { "once", no_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' },         { "help", no_argument, NULL, 'h' },
        { "per-address", required_argument, NULL, 'a' },
        { "handshake-timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    a->per_address = PER_ADDRESS;
    a->handshake_ms = HANDSHAKE_S * 1000;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': a->policy = optarg; break;
        case 'l': a->listen = optarg; break;
        case 'd': a->dtls = 1; break;
        case 'o': a->once = 1; break;
        case 'j': a->json = 1; break;
        case 'a':
            if (!positive(optarg, MAX_CONNECTIONS, &a->per_address)) {
                fprintf(stderr, "m2mtls serve: --per-address %s: expected 1 to %d\n", optarg, MAX_CONNECTIONS);
                return 0;
            }
            break;
        case 't':
            if (!positive(optarg, IDLE_MS / 1000, &a->handshake_ms)) {
                fprintf(stderr, "m2mtls serve: --handshake-timeout %s: expected 1 to %d seconds\n", optarg,
                        IDLE_MS / 1000);
                return 0;
            }
            a->handshake_ms *= 1000;
            break;
        case 'h': fputs(usage, stdout); exit(EXIT_ACCEPTED);
        default: fputs(usage, stderr); return 0;
        }
    }
    if (optind != argc || a->policy == NULL) {
        fprintf(stderr, "m2mtls serve: %s\n%s", optind != argc ? "unexpected argument" : "--policy FILE is required",
                usage);
        return 0;
    }
    const char *l = a->listen ? a->listen : a->dtls ? "127.0.0.1:5684" : "127.0.0.1:4433";
    if (!net_split_hostport(l, a->host, sizeof a->host, &a->port, 1)) {
        fprintf(stderr, "m2mtls serve: --listen %s: expected HOST:PORT or [IPv6]:PORT (PORT 0: any free port)\n", l);
        return 0;
    }
    return 1;
}

/* ---- one connection ----------------------------------------------------- */

typedef struct conn {
    SSL *ssl;
    int fd;
    int json;
    int handshake_ms;
    char client[64];
    unsigned char ip[16];   /* the source address, counted against --per-address */
    int ip_len, counted;
} conn;

/* S between double quotes: a '"' inside (a certificate name quoted by a
 * reason) is written \x22, so that a peer cannot end the field early and
 * write fields of its own into the line. */
static void print_quoted(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputs("\\x22", stdout);
        else
            putchar(*s);
    }
    putchar('"');
}

/* REASON: the policy's verdict (or what ended the handshake); TLS: what the
 * TLS layer reported, which says more when the peer is the one that refused. */
static void log_line(const conn *c, int accepted, const char *reason, const char *tls)
{
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    pthread_mutex_lock(&log_lock);
    if (c->json) {
        printf("{\"time\": \"%s\", \"client\": \"%s\", \"verdict\": \"%s\", ", when, c->client,
               accepted ? "accepted" : "refused");
        tool_print_association(stdout, c->ssl, 1);
        printf(", \"reason\": ");
        tool_json_str(stdout, accepted ? NULL : reason);
        printf(", \"tls_error\": ");
        tool_json_str(stdout, accepted ? NULL : tls);
        printf("}\n");
    } else if (accepted) {
        printf("%s %s accepted peer=%s local=%s name=%s anchor=%s %s %s resumed=%s\n", when, c->client,
               m2mtls_ssl_peer_id(c->ssl), m2mtls_ssl_local_id(c->ssl) ? m2mtls_ssl_local_id(c->ssl) : "-",
               m2mtls_ssl_peer_cert_name(c->ssl) ? m2mtls_ssl_peer_cert_name(c->ssl) : "-",
               m2mtls_ssl_anchor(c->ssl) ? m2mtls_ssl_anchor(c->ssl) : "-", SSL_get_version(c->ssl),
               SSL_get_cipher_name(c->ssl), SSL_session_reused(c->ssl) ? "yes" : "no");
    } else {
        printf("%s %s refused reason=", when, c->client);
        print_quoted(reason);
        printf(" tls=");
        print_quoted(tls);
        putchar('\n');
    }
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
}

/* Handshake, log, echo. 1 when the peer was accepted. */
static int serve_conn(conn *c)
{
    char err[256], buf[4096];
    int r = net_handshake(c->ssl, c->fd, net_now_ms() + c->handshake_ms, &stopping);
    const char *peer = r == 1 ? m2mtls_ssl_peer_id(c->ssl) : NULL;
    if (peer == NULL) {
        const char *ours = m2mtls_ssl_reject_reason(c->ssl);
        const char *tls = r == -2 ? "handshake timed out" : r == -3 ? "server stopping" : tool_ssl_error(err, sizeof err);
        if (tls[0] == '\0')
            tls = "the peer closed the connection during the handshake";
        log_line(c, 0, ours != NULL ? ours : tls, tls);
        ERR_clear_error();
        return 0;
    }
    log_line(c, 1, NULL, NULL);
    for (;;) {
        int n = net_read(c->ssl, c->fd, buf, sizeof buf, net_now_ms() + IDLE_MS, &stopping);
        if (n <= 0 || net_write(c->ssl, c->fd, buf, n, net_now_ms() + IDLE_MS, &stopping) <= 0)
            break;
    }
    (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
    return 1;
}

/* ---- what one source address holds ------------------------------------------------- */

typedef struct addr_slot {
    unsigned char ip[16];
    int ip_len, count;
} addr_slot;

static addr_slot addr_slots[MAX_CONNECTIONS];
static pthread_mutex_t addr_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counts C against its source address; 0 when the address holds LIMIT already. */
static int addr_take(conn *c, int limit)
{
    pthread_mutex_lock(&addr_lock);
    addr_slot *free_slot = NULL, *slot = NULL;
    for (int i = 0; i < MAX_CONNECTIONS && slot == NULL; i++) {
        addr_slot *s = &addr_slots[i];
        if (s->count == 0 && free_slot == NULL)
            free_slot = s;
        else if (s->count > 0 && s->ip_len == c->ip_len && memcmp(s->ip, c->ip, (size_t)c->ip_len) == 0)
            slot = s;
    }
    if (slot == NULL && free_slot != NULL) {
        slot = free_slot;
        memcpy(slot->ip, c->ip, sizeof slot->ip);
        slot->ip_len = c->ip_len;
    }
    int ok = slot != NULL && slot->count < limit;
    if (ok)
        slot->count++;
    c->counted = ok;
    pthread_mutex_unlock(&addr_lock);
    return ok;
}

static void addr_release(const conn *c)
{
    pthread_mutex_lock(&addr_lock);
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        addr_slot *s = &addr_slots[i];
        if (s->count > 0 && s->ip_len == c->ip_len && memcmp(s->ip, c->ip, (size_t)c->ip_len) == 0) {
            s->count--;
            break;
        }
    }
    pthread_mutex_unlock(&addr_lock);
}

static void conn_free(conn *c)
{
    if (c->counted)
        addr_release(c);
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
}

static void *conn_thread(void *arg)
{
    conn *c = arg;
    serve_conn(c);
    conn_free(c);
    atomic_fetch_sub(&active, 1);
    return NULL;
}

static void start_thread(conn *c)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&active, 1);
    if (pthread_create(&t, &attr, conn_thread, c) != 0) {
        atomic_fetch_sub(&active, 1);
        log_line(c, 0, "cannot start a thread for the connection", "-");
        conn_free(c);
    }
    pthread_attr_destroy(&attr);
}

static conn *new_conn(SSL_CTX *ctx, int fd, const struct sockaddr *sa, const serve_args *a)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->json = a->json;
    c->handshake_ms = a->handshake_ms;
    net_addr_str(sa, c->client, sizeof c->client);
    if (sa->sa_family == AF_INET6) {
        c->ip_len = 16;
        memcpy(c->ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        c->ip_len = 4;
        memcpy(c->ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
    if (ctx != NULL) {
        c->ssl = SSL_new(ctx);
        if (c->ssl == NULL || !SSL_set_fd(c->ssl, fd)) {
            conn_free(c);
            return NULL;
        }
        SSL_set_accept_state(c->ssl);
    }
    return c;
}

/* ---- TLS: accept loop ---------------------------------------------------------- */

static int wait_readable(int fd)
{
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_pipe[0], .events = POLLIN } };
    while (!atomic_load(&stopping)) {
        int r = poll(p, 2, 1000);
        if (r > 0 && (p[0].revents & POLLIN))
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
    return 0;
}

/* A connection beyond the limits is closed at once, and logged: all
 * connections, and those of one source address (one address must not hold
 * the server for the others). */
static int over_limit(conn *c, const serve_args *a)
{
    if (atomic_load(&active) >= MAX_CONNECTIONS) {
        log_line(c, 0, "too many connections", "-");
    } else if (!addr_take(c, a->per_address)) {
        char why[128];
        snprintf(why, sizeof why, "too many connections from this address (--per-address %d)", a->per_address);
        log_line(c, 0, why, "-");
    } else {
        return 0;
    }
    conn_free(c);
    return 1;
}

static int serve_tls(SSL_CTX *ctx, int lfd, const serve_args *a)
{
    while (wait_readable(lfd)) {
        struct sockaddr_storage sa;
        socklen_t sl;
        int fd = net_accept(lfd, &sa, &sl);
        if (fd < 0)
            continue;
        conn *c = new_conn(ctx, fd, (struct sockaddr *)&sa, a);
        if (c == NULL)
            continue;
        if (a->once) {
            int ok = serve_conn(c);
            conn_free(c);
            return ok ? EXIT_ACCEPTED : EXIT_REJECTED;
        }
        if (!over_limit(c, a))
            start_thread(c);
    }
    return EXIT_ACCEPTED;
}

/* ---- DTLS: stateless cookies, then one connected socket per client --------------- */

static int cookie_for(SSL *ssl, unsigned char *out, unsigned int *len)
{
    BIO_ADDR *peer = BIO_ADDR_new();
    unsigned char addr[64];
    size_t alen = 0;
    int ok = peer != NULL && BIO_dgram_get_peer(SSL_get_rbio(ssl), peer) > 0
             && BIO_ADDR_rawaddress(peer, NULL, &alen) && alen <= sizeof addr - 2
             && BIO_ADDR_rawaddress(peer, addr, &alen);
    if (ok) {
        unsigned short port = BIO_ADDR_rawport(peer);
        memcpy(addr + alen, &port, 2);
        ok = HMAC(EVP_sha256(), cookie_secret, sizeof cookie_secret, addr, alen + 2, out, len) != NULL;
    }
    BIO_ADDR_free(peer);
    return ok;
}

static int cookie_generate(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    return cookie_for(ssl, cookie, len);
}

static int cookie_verify(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned int wl = 0;
    return cookie_for(ssl, want, &wl) && wl == len && CRYPTO_memcmp(want, cookie, len) == 0;
}

static int serve_dtls(SSL_CTX *ctx, int lfd, const serve_args *a)
{
    SSL_CTX_set_cookie_generate_cb(ctx, cookie_generate);
    SSL_CTX_set_cookie_verify_cb(ctx, cookie_verify);
    BIO_ADDR *client = BIO_ADDR_new();
    SSL *ssl = NULL;
    int rc = EXIT_ACCEPTED;
    while (client != NULL && wait_readable(lfd)) {
        if (ssl == NULL) {
            ssl = SSL_new(ctx);
            BIO *bio = BIO_new_dgram(lfd, BIO_NOCLOSE);
            if (ssl == NULL || bio == NULL) {
                BIO_free(bio);
                break;
            }
            SSL_set_bio(ssl, bio, bio);
            SSL_set_options(ssl, SSL_OP_COOKIE_EXCHANGE);
        }
        /* Only a ClientHello with a valid cookie gets past this: no state for spoofed sources. */
        if (DTLSv1_listen(ssl, client) <= 0) {
            ERR_clear_error();
            continue;
        }
        struct sockaddr_storage sa = { 0 };
        socklen_t sl;
        size_t alen = 0;
        if (BIO_ADDR_family(client) == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = BIO_ADDR_rawport(client);
            BIO_ADDR_rawaddress(client, &s6->sin6_addr, &alen);
            sl = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
            s4->sin_family = AF_INET;
            s4->sin_port = BIO_ADDR_rawport(client);
            BIO_ADDR_rawaddress(client, &s4->sin_addr, &alen);
            sl = sizeof *s4;
        }
        int fd = net_udp_child(lfd, (struct sockaddr *)&sa, sl);
        conn *c = fd >= 0 ? new_conn(NULL, fd, (struct sockaddr *)&sa, a) : NULL;
        if (c == NULL) {
            SSL_free(ssl);
            ssl = NULL;
            continue;
        }
        BIO *rbio = SSL_get_rbio(ssl);
        BIO_set_fd(rbio, fd, BIO_NOCLOSE);
        BIO_ctrl(rbio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &sa);
        c->ssl = ssl;
        ssl = NULL;
        if (a->once) {
            int ok = serve_conn(c);
            conn_free(c);
            rc = ok ? EXIT_ACCEPTED : EXIT_REJECTED;
            break;
        }
        if (!over_limit(c, a))
            start_thread(c);
    }
    SSL_free(ssl);
    BIO_ADDR_free(client);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    serve_args a = { 0 };
    if (!parse_args(argc, argv, &a))
        return EXIT_USAGE;
    SSL_CTX *ctx = tool_ssl_ctx(a.policy, 1, a.dtls, 0, NULL);
    if (ctx == NULL)
        return EXIT_USAGE;
    char err[512];
    int lfd = net_listen(a.host, a.port, a.dtls, err, sizeof err);
    if (lfd < 0 || pipe(stop_pipe) != 0 || RAND_bytes(cookie_secret, sizeof cookie_secret) != 1) {
        fprintf(stderr, "m2mtls serve: %s\n", lfd < 0 ? err : "cannot set up the server");
        SSL_CTX_free(ctx);
        return EXIT_USAGE;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    char where[80];
    getsockname(lfd, (struct sockaddr *)&bound, &bl);
    net_addr_str((struct sockaddr *)&bound, where, sizeof where);
    if (a.json)
        printf("{\"listening\": \"%s\", \"transport\": \"%s\", \"policy\": \"%s\"}\n", where, a.dtls ? "dtls" : "tls",
               a.policy);
    else
        printf("listening on %s (%s, policy %s)\n", where, a.dtls ? "DTLS 1.2" : "TLS 1.2/1.3", a.policy);
    fflush(stdout);
    int rc = a.dtls ? serve_dtls(ctx, lfd, &a) : serve_tls(ctx, lfd, &a);
    /* Stop: no new connections; give the open ones a moment to notice. */
    atomic_store(&stopping, 1);
    for (int i = 0; i < 50 && atomic_load(&active) > 0; i++)
        usleep(100 * 1000);
    close(lfd);
    SSL_CTX_free(ctx);
    return rc;
}
