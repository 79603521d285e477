/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small TLS server written against plain OpenSSL (it knows nothing of
 * m2mtls), for running under libm2mtls-preload.so. Each option sets one
 * thing programs do that the preload must not let loosen the policy:
 *
 *   --pha           verify mode PEER | POST_HANDSHAKE (TLS 1.3: no
 *                   certificate asked for in the handshake)
 *   --verify-none   SSL_CTX_set_verify(SSL_VERIFY_NONE)
 *   --sni NAME      a second SSL_CTX, switched to (SSL_set_SSL_CTX) when
 *                   the client asks for server name NAME
 *   --tickets       its own session ticket callbacks, with its own app data
 *                   ("ticket-data ok" on stdout when it gets it back intact)
 *   --info-ssl      its own info callback on every SSL (SSL_set_info_callback)
 *   --info-ctx      its own info callback on the SSL_CTX
 *
 * It prints "listening PORT", then serves connections one after the other:
 * reads one line and answers "served LINE" ("served" on stdout too), until
 * killed. usage: preload_server --cert PEM --key PEM [options]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "plain_listener.h"

static const char *sni_name;
static SSL_CTX *sni_ctx;
static unsigned long info_calls;

static void app_info(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)where;
    (void)ret;
    info_calls++; /* a program's own bookkeeping: it logs nothing of m2mtls */
}

static int switch_ctx(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != NULL && sni_name != NULL && strcmp(name, sni_name) == 0) {
        SSL_set_SSL_CTX(ssl, sni_ctx);
        printf("switched to %s\n", name);
        fflush(stdout);
    }
    return SSL_TLSEXT_ERR_OK;
}

static int ticket_gen(SSL *ssl, void *arg)
{
    (void)arg;
    return SSL_SESSION_set1_ticket_appdata(SSL_get_session(ssl), "program-data", 12);
}

static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                    SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    void *data = NULL;
    size_t n = 0;
    int ok = SSL_SESSION_get0_ticket_appdata(sess, &data, &n) && n == 12 && memcmp(data, "program-data", 12) == 0;
    printf("ticket-data %s\n", ok ? "ok" : "wrong");
    fflush(stdout);
    return ok ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_IGNORE_RENEW;
}

static SSL_CTX *make_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "preload_server: no TLS context (%s, %s)\n", cert, key);
        exit(2);
    }
    return ctx;
}

static int info_ssl; /* --info-ssl */

static void serve(int fd, void *arg)
{
    SSL_CTX *ctx = arg;
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        return;
    }
    if (info_ssl)
        SSL_set_info_callback(ssl, app_info);
    char line[256];
    int n;
    if (SSL_accept(ssl) == 1 && (n = SSL_read(ssl, line, sizeof line - 1)) > 0) {
        line[n] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        char reply[300];
        int len = snprintf(reply, sizeof reply, "served %s\n", line);
        if (SSL_write(ssl, reply, len) == len) {
            printf("served %s resumed=%s\n", line, SSL_session_reused(ssl) ? "yes" : "no");
            fflush(stdout);
        }
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int pha = 0, verify_none = 0, tickets = 0, info_ctx = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--sni") == 0 && i + 1 < argc)
            sni_name = argv[++i];
        else if (strcmp(argv[i], "--pha") == 0)
            pha = 1;
        else if (strcmp(argv[i], "--verify-none") == 0)
            verify_none = 1;
        else if (strcmp(argv[i], "--tickets") == 0)
            tickets = 1;
        else if (strcmp(argv[i], "--info-ssl") == 0)
            info_ssl = 1;
        else if (strcmp(argv[i], "--info-ctx") == 0)
            info_ctx = 1;
        else {
            fprintf(stderr, "usage: preload_server --cert PEM --key PEM [--pha] [--verify-none] [--sni NAME] "
                            "[--tickets] [--info-ssl] [--info-ctx]\n");
            return 2;
        }
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "preload_server: --cert and --key are required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = make_ctx(cert, key);
    if (pha)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_POST_HANDSHAKE, NULL);
    if (verify_none)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (tickets)
        SSL_CTX_set_session_ticket_cb(ctx, ticket_gen, ticket_dec, NULL);
    if (info_ctx)
        SSL_CTX_set_info_callback(ctx, app_info);
    if (sni_name != NULL) {
        sni_ctx = make_ctx(cert, key);
        SSL_CTX_set_verify(sni_ctx, SSL_VERIFY_NONE, NULL); /* the virtual host asks for nothing */
        SSL_CTX_set_tlsext_servername_callback(ctx, switch_ctx);
    }
    int lfd = plain_listen("preload_server");
    if (lfd < 0)
        return 2;
    plain_serve_forever(lfd, serve, ctx);
}
