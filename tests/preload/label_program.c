/* SPDX-License-Identifier: Apache-2.0 */
/* A program that links libm2mtls.so and runs under libm2mtls-preload.so
 * (test_preload_api.sh): it never installs the verifier on its contexts
 * itself (the preload does), or installs a policy of its own that the preload
 * must not use, and reads the label with libm2mtls's getters, as a server that
 * adds the TS-0003 7.2.1 check in a few lines would.
 *
 *   label_program serve tls|dtls CERT KEY [OWN-POLICY]
 *       prints "listening on 127.0.0.1:PORT" and where its m2mtls_ssl_peer_id
 *       comes from, then serves one client after the other: each sends
 *       "FROM <id>", the reply names the bound peer and the 7.2.1 verdict.
 *       DTLS: one unconnected UDP socket and DTLSv1_listen, so the peer's
 *       address is known to the SSL's BIO only.
 *   label_program connect HOST:PORT PEER-ID CERT KEY
 *       an initiator: m2mtls_ssl_set_peer(PEER-ID), then the handshake;
 *       prints "connected peer=ID" or why not. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <m2mtls/policy.h>

static int die(const char *what)
{
    fprintf(stderr, "label_program: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 2;
}

static const char *library_of(void *fn)
{
    Dl_info info;
    return dladdr(fn, &info) && info.dli_fname != NULL ? info.dli_fname : "?";
}

static int bound_socket(int type, struct sockaddr_in *sa)
{
    socklen_t len = sizeof *sa;
    int fd = socket(AF_INET, type, 0);
    struct timeval tv = { .tv_sec = 10 };
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof *sa) != 0 || getsockname(fd, (struct sockaddr *)sa, &len) != 0
        || (type == SOCK_STREAM && listen(fd, 16) != 0))
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* DTLS cookies: a test needs no secret, only the exchange. */
static int cookie_make(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    memcpy(cookie, "m2mtls-test", 11);
    *len = 11;
    return 1;
}

static int cookie_check(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    return len == 11 && memcmp(cookie, "m2mtls-test", 11) == 0;
}

/* The request is "FROM <id>"; the reply is what a registrar CSE decides. */
static void answer(SSL *ssl)
{
    char req[512], reply[1024];
    int n = SSL_read(ssl, req, sizeof req - 1);
    if (n <= 0)
        return;
    req[n] = '\0';
    req[strcspn(req, "\r\n")] = '\0';
    const char *from = strncmp(req, "FROM ", 5) == 0 ? req + 5 : "";
    const char *peer = m2mtls_ssl_peer_id(ssl);
    int ok = m2mtls_ssl_check_originator(ssl, from);
    snprintf(reply, sizeof reply, "peer=%s from=%s %s", peer ? peer : "-", from,
             ok ? "accepted" : "ORIGINATOR_NOT_AUTHENTICATED");
    printf("%s\n", reply);
    fflush(stdout);
    SSL_write(ssl, reply, (int)strlen(reply));
}

/* One connection: the answer when the handshake went through, then the end. */
static void serve_one(SSL *ssl, int handshake_ok)
{
    if (handshake_ok)
        answer(ssl);
    else
        printf("handshake failed\n");
    fflush(stdout);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    ERR_clear_error();
}

static void serve_tls(SSL_CTX *ctx, int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        serve_one(ssl, SSL_accept(ssl) == 1);
        close(fd);
    }
}

static void serve_dtls(SSL_CTX *ctx, int fd)
{
    BIO_ADDR *client = BIO_ADDR_new();
    for (;;) {
        SSL *ssl = SSL_new(ctx);
        BIO *bio = BIO_new_dgram(fd, BIO_NOCLOSE);
        SSL_set_bio(ssl, bio, bio);
        SSL_set_options(ssl, SSL_OP_COOKIE_EXCHANGE);
        int r;
        while ((r = DTLSv1_listen(ssl, client)) == 0)
            ;
        serve_one(ssl, r > 0 && SSL_accept(ssl) == 1);
    }
}

static int serve(int argc, char **argv)
{
    int dtls = strcmp(argv[2], "dtls") == 0;
    SSL_CTX *ctx = SSL_CTX_new(dtls ? DTLS_server_method() : TLS_server_method());
    if (ctx == NULL)
        return die("no TLS context (the preload refused to make one?)");
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 || SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1)
        return die("cannot load the certificate or key");
    if (!m2mtls_ctx_apply_ts0003_profile(ctx)) /* DTLS: ECDHE-ECDSA-AES128-CCM8 */
        return die(m2mtls_last_error());
    if (argc > 5) { /* the program's own policy: under the preload, not used */
        m2mtls_policy *own = m2mtls_policy_load(argv[5]);
        if (own == NULL || !m2mtls_ctx_install(ctx, own))
            return die(m2mtls_last_error());
        m2mtls_policy_free(own);
    }
    SSL_CTX_set_cookie_generate_cb(ctx, cookie_make);
    SSL_CTX_set_cookie_verify_cb(ctx, cookie_check);
    struct sockaddr_in sa;
    int fd = bound_socket(dtls ? SOCK_DGRAM : SOCK_STREAM, &sa);
    if (fd < 0)
        return die("cannot listen on 127.0.0.1");
    printf("listening on 127.0.0.1:%u\n", ntohs(sa.sin_port));
    printf("m2mtls_ssl_peer_id from %s\n", library_of((void *)m2mtls_ssl_peer_id));
    fflush(stdout);
    if (dtls)
        serve_dtls(ctx, fd);
    else
        serve_tls(ctx, fd);
    return 0;
}

static int connect_to(char **argv)
{
    char host[64];
    unsigned port;
    if (sscanf(argv[2], "%63[^:]:%u", host, &port) != 2)
        return die("HOST:PORT expected");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return die("no TLS context (the preload refused to make one?)");
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 || SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1)
        return die("cannot load the certificate or key");
    SSL *ssl = SSL_new(ctx);
    if (!m2mtls_ssl_set_peer(ssl, argv[3])) {
        printf("set_peer failed: %s\n", m2mtls_last_error());
        return 1;
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return die("cannot connect");
    SSL_set_fd(ssl, fd);
    int ok = SSL_connect(ssl) == 1;
    const char *peer = m2mtls_ssl_peer_id(ssl), *why = m2mtls_ssl_reject_reason(ssl);
    if (ok && peer != NULL)
        printf("connected peer=%s\n", peer);
    else
        printf("refused: %s\n", why ? why : "no label");
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return ok && peer != NULL ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "serve") == 0)
        return serve(argc, argv);
    if (argc == 6 && strcmp(argv[1], "connect") == 0)
        return connect_to(argv);
    fprintf(stderr, "usage: label_program serve tls|dtls CERT KEY [OWN-POLICY]\n"
                    "       label_program connect HOST:PORT PEER-ID CERT KEY\n");
    return 2;
}
