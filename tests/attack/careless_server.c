/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server written against plain OpenSSL (it knows nothing of m2mtls),
 * run under libm2mtls-preload.so by attack_preload.sh. Each option is one
 * careless or unusual thing real programs do:
 *
 *   --dlopen        every OpenSSL function is taken with dlopen("libssl.so.3")
 *                   + dlsym, as runtimes that load OpenSSL at run time do
 *                   (LD_PRELOAD does not interpose such calls)
 *   --verify-none   SSL_CTX_set_verify(SSL_VERIFY_NONE)
 *   --chdir DIR     chdir(DIR) once its TLS context exists (daemons do)
 *   --half-rtt      TLS 1.3: SSL_read_early_data, then a banner written with
 *                   SSL_write_early_data before the handshake completed
 *                   ("0.5-RTT" data, to a client not yet authenticated)
 *   --own-verifier  replaces OpenSSL's chain verification with its own that
 *                   accepts everything (SSL_CTX_set_cert_verify_callback), after a
 *                   client hello callback and a verify callback that loosen the
 *                   verify mode (SSL_set_verify(ssl, SSL_VERIFY_NONE, accept-all))
 *   --info-null     its own info callback on the SSL_CTX, and
 *                   SSL_set_info_callback(ssl, NULL) on every connection (OpenSSL:
 *                   the SSL_CTX's callback then runs); prints "ctx-info called"
 *
 * It prints "listening PORT", then serves connections one after the other:
 * reads one line and answers "served LINE" ("served LINE" on stdout too),
 * until killed. usage: careless_server --cert PEM --key PEM [options]
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "plain_listener.h"

/* The OpenSSL functions the server uses: linked, or found with dlsym. */
static struct {
    const SSL_METHOD *(*method)(void);
    SSL_CTX *(*ctx_new_ex)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    int (*use_cert)(SSL_CTX *, const char *, int);
    int (*use_key)(SSL_CTX *, const char *, int);
    void (*ctx_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    SSL *(*ssl_new)(SSL_CTX *);
    int (*set_fd)(SSL *, int);
    int (*accept)(SSL *);
    int (*read)(SSL *, void *, int);
    int (*write)(SSL *, const void *, int);
    int (*shutdown)(SSL *);
    void (*ssl_free)(SSL *);
} ossl = { TLS_server_method, SSL_CTX_new_ex, SSL_CTX_use_certificate_file, SSL_CTX_use_PrivateKey_file,
           SSL_CTX_set_verify, SSL_new, SSL_set_fd, SSL_accept, SSL_read, SSL_write, SSL_shutdown, SSL_free };

static void *must(void *lib, const char *name)
{
    void *f = dlsym(lib, name);
    if (f == NULL) {
        fprintf(stderr, "careless_server: %s: %s\n", name, dlerror());
        exit(2);
    }
    return f;
}

/* As a program that loads OpenSSL at run time: the library's own symbols. */
static void use_dlopen(void)
{
    void *lib = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "careless_server: %s\n", dlerror());
        exit(2);
    }
    *(void **)&ossl.method = must(lib, "TLS_server_method");
    /* (SSL_CTX_new itself calls SSL_CTX_new_ex through libssl's PLT, which
     * the preload interposes: a program calling SSL_CTX_new_ex does not.) */
    *(void **)&ossl.ctx_new_ex = must(lib, "SSL_CTX_new_ex");
    *(void **)&ossl.use_cert = must(lib, "SSL_CTX_use_certificate_file");
    *(void **)&ossl.use_key = must(lib, "SSL_CTX_use_PrivateKey_file");
    *(void **)&ossl.ctx_set_verify = must(lib, "SSL_CTX_set_verify");
    *(void **)&ossl.ssl_new = must(lib, "SSL_new");
    *(void **)&ossl.set_fd = must(lib, "SSL_set_fd");
    *(void **)&ossl.accept = must(lib, "SSL_accept");
    *(void **)&ossl.read = must(lib, "SSL_read");
    *(void **)&ossl.write = must(lib, "SSL_write");
    *(void **)&ossl.shutdown = must(lib, "SSL_shutdown");
    *(void **)&ossl.ssl_free = must(lib, "SSL_free");
    printf("OpenSSL through dlsym\n");
}

static int half_rtt, info_null;

static int accept_chain(X509_STORE_CTX *xs, void *arg)
{
    (void)arg;
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    return 1;
}

static int accept_cert(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 1;
}

static int loosen_hello(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    SSL_set_verify(ssl, SSL_VERIFY_NONE, accept_cert);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static void ctx_info(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)ret;
    static int told;
    if ((where & SSL_CB_HANDSHAKE_START) && !told) {
        told = 1;
        printf("ctx-info called\n");
        fflush(stdout);
    }
}

/* TLS 1.3 0.5-RTT: the server writes before the client's Finished. */
static int accept_with_banner(SSL *ssl)
{
    char buf[64];
    size_t n;
    int r;
    while ((r = SSL_read_early_data(ssl, buf, sizeof buf, &n)) == SSL_READ_EARLY_DATA_SUCCESS)
        ;
    if (r == SSL_READ_EARLY_DATA_ERROR)
        return 0;
    size_t written;
    if (SSL_write_early_data(ssl, "banner before authentication\n", 29, &written) == 1) {
        printf("banner written\n");
        fflush(stdout);
    }
    return ossl.accept(ssl) == 1;
}

static void serve(int fd, void *arg)
{
    SSL_CTX *ctx = arg;
    SSL *ssl = ossl.ssl_new(ctx);
    if (ssl == NULL || !ossl.set_fd(ssl, fd)) {
        ossl.ssl_free(ssl);
        return;
    }
    if (info_null)
        SSL_set_info_callback(ssl, NULL);
    char line[256];
    int n, ok = half_rtt ? accept_with_banner(ssl) : ossl.accept(ssl) == 1;
    if (ok && (n = ossl.read(ssl, line, sizeof line - 1)) > 0) {
        line[n] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        char reply[300];
        int len = snprintf(reply, sizeof reply, "served %s\n", line);
        if (ossl.write(ssl, reply, len) == len) {
            printf("served %s\n", line);
            fflush(stdout);
        }
        ossl.shutdown(ssl);
    }
    ERR_clear_error();
    ossl.ssl_free(ssl);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *chdir_to = NULL;
    int verify_none = 0, own_verifier = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--chdir") == 0 && i + 1 < argc)
            chdir_to = argv[++i];
        else if (strcmp(argv[i], "--dlopen") == 0)
            use_dlopen();
        else if (strcmp(argv[i], "--verify-none") == 0)
            verify_none = 1;
        else if (strcmp(argv[i], "--half-rtt") == 0)
            half_rtt = 1;
        else if (strcmp(argv[i], "--own-verifier") == 0)
            own_verifier = 1;
        else if (strcmp(argv[i], "--info-null") == 0)
            info_null = 1;
        else {
            fprintf(stderr, "usage: careless_server --cert PEM --key PEM [--dlopen] [--verify-none] "
                            "[--chdir DIR] [--half-rtt] [--own-verifier] [--info-null]\n");
            return 2;
        }
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "careless_server: --cert and --key are required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = ossl.ctx_new_ex(NULL, NULL, ossl.method());
    if (ctx == NULL || ossl.use_cert(ctx, cert, SSL_FILETYPE_PEM) != 1
        || ossl.use_key(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "careless_server: no TLS context\n");
        return 2;
    }
    if (verify_none)
        ossl.ctx_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (half_rtt)
        SSL_CTX_set_max_early_data(ctx, 16384);
    if (own_verifier) {
        SSL_CTX_set_client_hello_cb(ctx, loosen_hello, NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, accept_cert);
        SSL_CTX_set_cert_verify_callback(ctx, accept_chain, NULL);
    }
    if (info_null)
        SSL_CTX_set_info_callback(ctx, ctx_info);
    if (chdir_to != NULL && chdir(chdir_to) != 0) {
        perror("careless_server: chdir");
        return 2;
    }
    int lfd = plain_listen("careless_server");
    if (lfd < 0)
        return 2;
    plain_serve_forever(lfd, serve, ctx);
}
