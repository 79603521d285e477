/* SPDX-License-Identifier: Apache-2.0 */
/* Full TLS handshakes per second (no resumption, one thread, in-memory BIO
 * pair) with the server's ECDSA P-256 key in the token (key reference file)
 * against the same kind of key in a file, TLS 1.2 and TLS 1.3, P-256 ECDHE.
 * usage: bench_tls [seconds-per-measurement]   (default 2) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "prov_fixture.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int handshake(SSL_CTX *s, SSL_CTX *c)
{
    SSL *ss = SSL_new(s), *cs = SSL_new(c);
    BIO *b1, *b2;
    int i, rs = 0, rc = 0, ok = 0;

    if (ss == NULL || cs == NULL || !BIO_new_bio_pair(&b1, 0, &b2, 0))
        goto done;
    SSL_set_bio(ss, b1, b1);
    SSL_set_bio(cs, b2, b2);
    SSL_set_accept_state(ss);
    SSL_set_connect_state(cs);
    for (i = 0; i < 20 && !(rs == 1 && rc == 1); i++) {
        if (rc != 1)
            rc = SSL_do_handshake(cs);
        if (rs != 1)
            rs = SSL_do_handshake(ss);
    }
    ok = rs == 1 && rc == 1;
done:
    SSL_free(ss);
    SSL_free(cs);
    return ok;
}

static double measure(SSL_CTX *s, SSL_CTX *c, double seconds)
{
    double t0 = now(), t;
    long n = 0;

    do {
        if (!handshake(s, c)) {
            ERR_print_errors_fp(stderr);
            return -1;
        }
        n++;
        t = now();
    } while (t - t0 < seconds);
    return (double)n / (t - t0);
}

static SSL_CTX *server_ctx(OSSL_LIB_CTX *ctx, X509 *cert, const char *keyfile, int version)
{
    SSL_CTX *s = SSL_CTX_new_ex(ctx, NULL, TLS_server_method());

    if (s == NULL || SSL_CTX_use_certificate(s, cert) != 1
        || SSL_CTX_use_PrivateKey_file(s, keyfile, SSL_FILETYPE_PEM) != 1) {
        SSL_CTX_free(s);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(s, version);
    SSL_CTX_set_max_proto_version(s, version);
    SSL_CTX_set1_groups_list(s, "P-256");
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(s, 0);
    return s;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0, r[2][2];
    char filekey[PATH_MAX + 16];
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *tok, *soft;
    X509 *tcert, *scert;
    FILE *fp;
    int v, k;

    fx_t fx;
    if (!fx_setup(&fx, FX_KEY_EC) || (ctx = fx_libctx(fx.conf)) == NULL
        || (tok = fx_load(ctx, FX_EC_URI)) == NULL
        || (soft = EVP_PKEY_Q_keygen(ctx, NULL, "EC", "P-256")) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    snprintf(filekey, sizeof(filekey), "%s/file-key.pem", fx.dir);
    if ((fp = fopen(filekey, "w")) == NULL || !PEM_write_PrivateKey(fp, soft, NULL, NULL, 0, NULL, NULL))
        return 1;
    fclose(fp);
    tcert = fx_self_signed(ctx, tok, "token.bench");
    scert = fx_self_signed(ctx, soft, "file.bench");
    if (tcert == NULL || scert == NULL)
        return 1;
    for (v = 0; v < 2; v++) {
        int version = v == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
        SSL_CTX *c = SSL_CTX_new_ex(ctx, NULL, TLS_client_method());

        SSL_CTX_set_min_proto_version(c, version);
        SSL_CTX_set_max_proto_version(c, version);
        SSL_CTX_set1_groups_list(c, "P-256");
        for (k = 0; k < 2; k++) {
            SSL_CTX *s = server_ctx(ctx, k == 0 ? tcert : scert, k == 0 ? fx.ecref : filekey, version);

            if (s == NULL) {
                ERR_print_errors_fp(stderr);
                return 1;
            }
            r[v][k] = measure(s, c, seconds);
            SSL_CTX_free(s);
            if (r[v][k] < 0)
                return 1;
        }
        SSL_CTX_free(c);
    }
    printf("full handshakes/s, one thread, ECDSA P-256 server key, P-256 ECDHE, %.1f s each\n",
           seconds);
    printf("%-8s %16s %16s\n", "version", "key in token", "key in file");
    printf("%-8s %16.0f %16.0f\n", "TLS1.2", r[0][0], r[0][1]);
    printf("%-8s %16.0f %16.0f\n", "TLS1.3", r[1][0], r[1][1]);
    X509_free(tcert);
    X509_free(scert);
    EVP_PKEY_free(tok);
    EVP_PKEY_free(soft);
    fx_libctx_free(ctx);
    fx_teardown(&fx);
    return 0;
}
