/* SPDX-License-Identifier: Apache-2.0 */
/* TLS 1.2 and 1.3 over a loopback socket with keys in the token: the server key
 * is a key reference PEM loaded by SSL_CTX_use_PrivateKey_file, the client key
 * comes from a pkcs11: URI; mutual authentication, both sides verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hs.h"
#include "pki.h"
#include "prov_fixture.h"

static fx_t fx;
static OSSL_LIB_CTX *ctx;
static EVP_PKEY *ec, *rsa;
static pki_cert ec_cert, rsa_cert; /* self-signed in the token */
static char ec_cert_file[PATH_MAX + 16], rsa_cert_file[PATH_MAX + 16];

static int setup(void **state)
{
    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_RSA) || (ctx = fx_libctx(fx.conf)) == NULL)
        return -1;
    ec = fx_load(ctx, FX_EC_URI);
    rsa = fx_load(ctx, FX_RSA_URI);
    if (ec == NULL || rsa == NULL)
        return -1;
    snprintf(ec_cert_file, sizeof(ec_cert_file), "%s/ec.crt", fx.dir);
    snprintf(rsa_cert_file, sizeof(rsa_cert_file), "%s/rsa.crt", fx.dir);
    if (!pki_self_signed(ctx, ec, "ec.m2p.example", &ec_cert) || !pki_self_signed(ctx, rsa, "rsa.m2p.example", &rsa_cert)
        || !pki_write_cert(fx.dir, "ec.crt", ec_cert.cert) || !pki_write_cert(fx.dir, "rsa.crt", rsa_cert.cert))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    pki_cert_free(&ec_cert);
    pki_cert_free(&rsa_cert);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    fx_libctx_free(ctx);
    fx_teardown(&fx);
    return 0;
}

/* server: key reference file + cert; client: key object + cert; both trust both certs */
static int run(int version, int server_rsa, int client_rsa, const char *groups, const char *sigalgs,
               char *sigalg_out, size_t n)
{
    SSL_CTX *s = SSL_CTX_new_ex(ctx, NULL, TLS_server_method());
    SSL_CTX *c = SSL_CTX_new_ex(ctx, NULL, TLS_client_method());
    X509_STORE *ss, *cs;
    hs_opts o = { .server_ctx = s, .client_ctx = c, .version = version, .groups = groups };
    hs_side sv, cl;
    int ok = 0;

    assert_non_null(s);
    assert_non_null(c);
    if (SSL_CTX_use_certificate_file(s, server_rsa ? rsa_cert_file : ec_cert_file, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(s, server_rsa ? fx.rsaref : fx.ecref, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_check_private_key(s) != 1) {
        ERR_print_errors_fp(stderr);
        goto done;
    }
    if (SSL_CTX_use_certificate(c, client_rsa ? rsa_cert.cert : ec_cert.cert) != 1
        || SSL_CTX_use_PrivateKey(c, client_rsa ? rsa : ec) != 1) {
        ERR_print_errors_fp(stderr);
        goto done;
    }
    ss = SSL_CTX_get_cert_store(s);
    cs = SSL_CTX_get_cert_store(c);
    X509_STORE_add_cert(ss, ec_cert.cert);
    X509_STORE_add_cert(ss, rsa_cert.cert);
    X509_STORE_add_cert(cs, ec_cert.cert);
    X509_STORE_add_cert(cs, rsa_cert.cert);
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (sigalgs != NULL) {
        SSL_CTX_set1_sigalgs_list(s, sigalgs);
        SSL_CTX_set1_sigalgs_list(c, sigalgs);
    }
    /* both verified their peer and exchanged data */
    ok = hs_run(&o, &sv, &cl) && sv.ok && cl.ok && sv.peer_cert && sv.verify_result == X509_V_OK
         && cl.verify_result == X509_V_OK;
    if (!ok)
        fprintf(stderr, "handshake failed: client %s / server %s\n", cl.errors, sv.errors);
    if (sigalg_out != NULL)
        snprintf(sigalg_out, n, "%s", sv.peer_sigalg);
    hs_side_clear(&sv);
    hs_side_clear(&cl);
done:
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    return ok;
}

static void test_tls12_ecdsa(void **state)
{
    assert_true(run(TLS1_2_VERSION, 0, 0, "P-256", NULL, NULL, 0));
    /* the TS-0003 mandatory suite */
    assert_true(run(TLS1_2_VERSION, 0, 0, "P-256:X25519", "ECDSA+SHA256", NULL, 0));
}

static void test_tls12_rsa(void **state)
{
    assert_true(run(TLS1_2_VERSION, 1, 1, NULL, NULL, NULL, 0));
    assert_true(run(TLS1_2_VERSION, 1, 0, NULL, "RSA+SHA256:ECDSA+SHA256", NULL, 0));
}

static void test_tls13_ecdsa(void **state)
{
    assert_true(run(TLS1_3_VERSION, 0, 0, NULL, NULL, NULL, 0));
    assert_true(run(TLS1_3_VERSION, 0, 0, "P-256", NULL, NULL, 0));
}

static void test_tls13_rsa_pss(void **state)
{
    char sa[64];

    /* RSA key (rsaEncryption) signing CertificateVerify with RSA-PSS in TLS 1.3 */
    assert_true(run(TLS1_3_VERSION, 1, 1, NULL, NULL, sa, sizeof(sa)));
    assert_true(run(TLS1_3_VERSION, 1, 0, NULL, "rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256", NULL, 0));
}

static void test_tls12_rsa_pss(void **state)
{
    assert_true(run(TLS1_2_VERSION, 1, 1, NULL, "rsa_pss_rsae_sha256", NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12_ecdsa),
        cmocka_unit_test(test_tls12_rsa),
        cmocka_unit_test(test_tls13_ecdsa),
        cmocka_unit_test(test_tls13_rsa_pss),
        cmocka_unit_test(test_tls12_rsa_pss),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
