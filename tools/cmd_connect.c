/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls connect: act as Entity A (initiator) toward one configured peer. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include "net.h"
#include "tool.h"

static const char usage[] =
    "usage: m2mtls connect --policy FILE --peer ID [--to HOST:PORT] [--dtls] [--tls1.2 | --tls1.3]\n"
    "                      [--send TEXT] [--resume N] [--timeout SECONDS] [--json]\n"
    "\n"
    "Acts as Entity A: a mutual (D)TLS handshake with the peer ID of the policy,\n"
    "which must present the certificate name of its peer line and chain to its\n"
    "anchor. Prints the association: protocol, cipher, peer id, local id, the name\n"
    "that matched, the anchor, whether the session was resumed; on refusal, why.\n"
    "\n"
    "  --policy FILE     the initiator's policy (its cert and key lines are used)\n"
    "  --peer ID         the association to establish (IdB)\n"
    "  --to HOST:PORT    where to connect; default: the at= of the peer line\n"
    "  --dtls            DTLS 1.2 over UDP (default: what at= says, else TLS)\n"
    "  --tls1.2, --tls1.3  only that TLS version\n"
    "  --send TEXT       send TEXT after the handshake and print the reply\n"
    "  --resume N        then connect N more times resuming the session\n"
    "  --timeout S       per connection (default 10)\n"
    "  --json            one JSON object per connection\n"
    "\n"
    "Exit status: 0 every association established, 1 refused (by either side),\n"
    "2 usage, policy or network error.\n";

typedef struct connect_args {
    const char *policy, *peer, *to, *send;
    int dtls, dtls_set, version, resume, json, timeout_s;
    char host[256];
    unsigned port;
} connect_args;

static int parse_args(int argc, char **argv, connect_args *a)
{
    static const struct option opts[] = {
        { "policy", required_argument, NULL, 'p' }, { "peer", required_argument, NULL, 'e' },
        { "to", required_argument, NULL, 't' },     { "dtls", no_argument, NULL, 'd' },
        { "tls1.2", no_argument, NULL, '2' },       { "tls1.3", no_argument, NULL, '3' },
        { "send", required_argument, NULL, 's' },   { "resume", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 'T' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    int ch;
    char *end;
    a->timeout_s = 10;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': a->policy = optarg; break;
        case 'e': a->peer = optarg; break;
        case 't': a->to = optarg; break;
        case 'd': a->dtls = a->dtls_set = 1; break;
        case '2': a->version = 12; break;
        case '3': a->version = 13; break;
        case 's': a->send = optarg; break;
        case 'r':
            a->resume = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || a->resume < 0 || a->resume > 100000) {
                fprintf(stderr, "m2mtls connect: --resume %s: expected a number from 0 to 100000\n", optarg);
                return 0;
            }
            break;
        case 'T':
            a->timeout_s = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || a->timeout_s < 1 || a->timeout_s > 3600) {
                fprintf(stderr, "m2mtls connect: --timeout %s: expected seconds from 1 to 3600\n", optarg);
                return 0;
            }
            break;
        case 'j': a->json = 1; break;
        case 'h': fputs(usage, stdout); exit(EXIT_ACCEPTED);
        default: fputs(usage, stderr); return 0;
        }
    }
    if (optind != argc || a->policy == NULL || a->peer == NULL) {
        fprintf(stderr, "m2mtls connect: %s\n%s",
                optind != argc ? "unexpected argument" : "--policy FILE and --peer ID are required", usage);
        return 0;
    }
    if (a->dtls && a->version == 13) {
        fprintf(stderr, "m2mtls connect: --tls1.3 and --dtls do not go together (DTLS 1.2 only)\n");
        return 0;
    }
    if (a->to != NULL && !net_split_hostport(a->to, a->host, sizeof a->host, &a->port, 0)) {
        fprintf(stderr, "m2mtls connect: --to %s: expected HOST:PORT or [IPv6]:PORT\n", a->to);
        return 0;
    }
    return 1;
}

/* The address: --to, else the peer line's at= (TS-0003: IdB routes the exchange). */
static int peer_address(connect_args *a, const m2mtls_policy *p)
{
    const char *host;
    unsigned port;
    int dtls;
    if (!m2mtls_policy_peer_address(p, a->peer, &host, &port, &dtls)) {
        if (a->to != NULL)
            return 1;
        fprintf(stderr, "m2mtls connect: peer '%s' has no at= in %s: give --to HOST:PORT\n", a->peer, a->policy);
        return 0;
    }
    if (!a->dtls_set)
        a->dtls = dtls;
    if (a->to == NULL) {
        snprintf(a->host, sizeof a->host, "%s", host);
        a->port = port;
    }
    return 1;
}

/* The newest resumable session the server gave (TLS 1.3 tickets come after
 * the handshake); set by OpenSSL's new-session callback. */
static SSL_SESSION *latest_session;
static atomic_int got_session;

static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION_free(latest_session);
    latest_session = sess;
    atomic_store(&got_session, 1);
    return 1; /* we keep the reference */
}

/* TLS 1.3: the client finishes its handshake before the server has checked
 * the client's certificate, and a refusal arrives as an alert afterwards.
 * Wait for the server's first word (a session ticket, data, or that alert)
 * before calling the association established. 1 accepted or no word within
 * the wait, 0 refused (alert or close). */
static int await_server_verdict(SSL *ssl, int fd, long long deadline)
{
    char byte;
    if (SSL_version(ssl) != TLS1_3_VERSION || atomic_load(&got_session))
        return 1;
    long long wait = net_now_ms() + 2000;
    int r = net_read(ssl, fd, &byte, 1, wait < deadline ? wait : deadline, &got_session);
    return r == -2 || r == -3 || r > 0;
}

typedef struct outcome {
    int rc;
    SSL_SESSION *session;
} outcome;

static void report_refusal(const connect_args *a, SSL *ssl, const char *why)
{
    const char *ours = m2mtls_ssl_reject_reason(ssl);
    if (a->json) {
        printf("{\"verdict\": \"refused\", \"peer\": ");
        tool_json_str(stdout, a->peer);
        printf(", \"peer_id\": null, \"by\": \"%s\", \"reason\": ", ours ? "us" : "peer");
        tool_json_str(stdout, ours ? ours : why);
        printf("}\n");
    } else if (ours != NULL) {
        printf("refused: %s\n", ours);
    } else {
        printf("refused by the peer: %s\n", why);
    }
}

static outcome one_connection(const connect_args *a, SSL_CTX *ctx, SSL_SESSION *resume)
{
    outcome o = { EXIT_USAGE, NULL };
    SSL_SESSION_free(latest_session);
    latest_session = NULL;
    atomic_store(&got_session, 0);
    char err[512];
    long long deadline = net_now_ms() + a->timeout_s * 1000LL;
    int fd = net_connect(a->host, a->port, a->dtls, a->timeout_s * 1000, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "m2mtls connect: %s\n", err);
        return o;
    }
    SSL *ssl = SSL_new(ctx);
    BIO *bio = a->dtls ? BIO_new_dgram(fd, BIO_NOCLOSE) : BIO_new_socket(fd, BIO_NOCLOSE);
    if (ssl == NULL || bio == NULL || !m2mtls_ssl_set_peer(ssl, a->peer)) {
        fprintf(stderr, "m2mtls connect: %s\n", ssl && bio ? m2mtls_last_error() : "out of memory");
        BIO_free(bio);
        goto done;
    }
    if (a->dtls) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        getpeername(fd, (struct sockaddr *)&peer, &pl);
        BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &peer);
    }
    SSL_set_bio(ssl, bio, bio);
    if (resume != NULL)
        SSL_set_session(ssl, resume);
    SSL_set_connect_state(ssl);
    int r = net_handshake(ssl, fd, deadline, NULL);
    if (r != 1 && net_last_errno() != 0 && m2mtls_ssl_reject_reason(ssl) == NULL) {
        /* A socket error, not a refusal: e.g. ICMP port unreachable on UDP. */
        fprintf(stderr, "m2mtls connect: cannot reach %s:%u: %s\n", a->host, a->port, strerror(net_last_errno()));
        o.rc = EXIT_USAGE;
        goto done;
    }
    if (r != 1) {
        const char *why = r == -2 ? "timed out" : tool_ssl_error(err, sizeof err);
        report_refusal(a, ssl, why[0] ? why : "connection closed during the handshake");
        o.rc = r == -2 ? EXIT_USAGE : EXIT_REJECTED;
        goto done;
    }
    if (!await_server_verdict(ssl, fd, deadline)) {
        const char *why = tool_ssl_error(err, sizeof err);
        report_refusal(a, ssl, why[0] ? why : "the peer closed the connection after the handshake");
        o.rc = EXIT_REJECTED;
        goto done;
    }
    o.rc = EXIT_ACCEPTED;
    if (a->json) {
        printf("{\"verdict\": \"established\", ");
        tool_print_association(stdout, ssl, 1);
    } else {
        printf("association established with %s (%s:%u)\n", m2mtls_ssl_peer_id(ssl), a->host, a->port);
        tool_print_association(stdout, ssl, 0);
    }
    if (a->send != NULL) {
        char reply[4096];
        int n = net_write(ssl, fd, a->send, (int)strlen(a->send), deadline, NULL);
        int m = n > 0 ? net_read(ssl, fd, reply, sizeof reply - 1, deadline, NULL) : n;
        if (m > 0) {
            reply[m] = '\0';
            if (a->json) {
                printf(", \"reply\": ");
                tool_json_str(stdout, reply);
            } else {
                printf("  reply:     %s\n", reply);
            }
        } else {
            fprintf(stderr, "m2mtls connect: no reply: %s\n", m == -2 ? "timed out" : tool_ssl_error(err, sizeof err));
            o.rc = EXIT_USAGE;
        }
    }
    if (a->json)
        printf("}\n");
    /* A resumed TLS 1.2 / DTLS handshake brings no new session: keep this one. */
    o.session = latest_session != NULL ? latest_session : SSL_get1_session(ssl);
    latest_session = NULL;
    atomic_store(&got_session, 0);
    (void)SSL_shutdown(ssl);
done:
    SSL_free(ssl);
    close(fd);
    fflush(stdout);
    return o;
}

int cmd_connect(int argc, char **argv)
{
    connect_args a = { 0 };
    if (!parse_args(argc, argv, &a))
        return EXIT_USAGE;
    m2mtls_policy *p = m2mtls_policy_load(a.policy);
    if (p == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return EXIT_USAGE;
    }
    int ok = peer_address(&a, p);
    m2mtls_policy_free(p);
    if (!ok)
        return EXIT_USAGE;
    SSL_CTX *ctx = tool_ssl_ctx(a.policy, 0, a.dtls, a.version, NULL);
    if (ctx == NULL)
        return EXIT_USAGE;
    /* TLS 1.3 tickets arrive after the handshake: read them so --resume has one. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, keep_session);
    outcome o = one_connection(&a, ctx, NULL);
    int rc = o.rc;
    for (int i = 0; i < a.resume && rc == EXIT_ACCEPTED; i++) {
        outcome again = one_connection(&a, ctx, o.session);
        SSL_SESSION_free(o.session);
        o = again;
        rc = o.rc;
    }
    SSL_SESSION_free(o.session);
    SSL_CTX_free(ctx);
    return rc;
}
