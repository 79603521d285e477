/* SPDX-License-Identifier: Apache-2.0 */
/* The provider listed before and after default in openssl.cnf: token keys sign
 * (with their session copies),
 * ordinary (file) keys keep working, TLS 1.2 / 1.3 with P-256 ECDHE handshake. */
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
static OSSL_LIB_CTX *vctx;

static int setup(void **state)
{
    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_RSA) || (vctx = fx_default_libctx()) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fx_libctx_free(vctx);
    fx_teardown(&fx);
    return 0;
}

static void check_order(const char *cnf)
{
    OSSL_LIB_CTX *ctx = fx_libctx(cnf);
    EVP_PKEY *ec, *rsa, *ec_pub, *rsa_pub, *soft, *soft_pub;
    pki_cert cert;
    SSL_CTX *s, *c;
    int v;

    assert_non_null(ctx);
    assert_non_null(ec = fx_load(ctx, FX_EC_URI));
    assert_non_null(rsa = fx_load(ctx, FX_RSA_URI));
    assert_non_null(ec_pub = fx_public(ec, vctx));
    assert_non_null(rsa_pub = fx_public(rsa, vctx));
    assert_true(fx_sign_verify(ctx, ec, vctx, ec_pub, "SHA256", NULL));
    assert_true(fx_sign_verify(ctx, rsa, vctx, rsa_pub, "SHA256", "digest"));
    /* the session key cache is on by default, in either order */
    {
        char st[64];

        assert_int_equal(EVP_PKEY_get_utf8_string_param(ec, "m2mtls-session-cache", st, sizeof(st), NULL), 1);
        assert_string_equal(st, "yes");
        assert_int_equal(EVP_PKEY_get_utf8_string_param(rsa, "m2mtls-session-cache", st, sizeof(st), NULL), 1);
        assert_string_equal(st, "yes");
    }
    /* verification in this context too (public keys may land in the provider) */
    assert_true(fx_sign_verify(ctx, ec, ctx, ec, "SHA256", NULL));
    /* an ordinary key generated in this context still signs and verifies */
    assert_non_null(soft = EVP_PKEY_Q_keygen(ctx, NULL, "EC", "P-256"));
    assert_non_null(soft_pub = fx_public(soft, vctx));
    assert_true(fx_sign_verify(ctx, soft, vctx, soft_pub, "SHA256", NULL));
    EVP_PKEY_free(soft);
    EVP_PKEY_free(soft_pub);
    assert_non_null(soft = EVP_PKEY_Q_keygen(ctx, NULL, "RSA", (size_t)2048));
    assert_non_null(soft_pub = fx_public(soft, vctx));
    assert_true(fx_sign_verify(ctx, soft, vctx, soft_pub, "SHA256", NULL));
    EVP_PKEY_free(soft);
    EVP_PKEY_free(soft_pub);

    /* a software private key built from its parameters in this context */
    {
        EVP_PKEY *src = EVP_PKEY_Q_keygen(vctx, NULL, "EC", "P-256"), *built = NULL;
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(ctx, "EC", NULL);

        assert_non_null(src);
        assert_int_equal(EVP_PKEY_todata(src, EVP_PKEY_KEYPAIR, &params), 1);
        assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
        assert_int_equal(EVP_PKEY_fromdata(pc, &built, EVP_PKEY_KEYPAIR, params), 1);
        assert_true(fx_sign_verify(ctx, built, vctx, src, "SHA256", NULL));
        assert_int_equal(EVP_PKEY_eq(built, src), 1);
        OSSL_PARAM_free(params);
        EVP_PKEY_CTX_free(pc);
        EVP_PKEY_free(built);
        EVP_PKEY_free(src);
    }

    /* TLS with P-256 ECDHE, the server key a reference file */
    assert_true(pki_self_signed(ctx, ec, "order.m2p.example", &cert));
    for (v = 0; v < 2; v++) {
        hs_side sv, cl;
        int ok;

        s = SSL_CTX_new_ex(ctx, NULL, TLS_server_method());
        c = SSL_CTX_new_ex(ctx, NULL, TLS_client_method());
        assert_int_equal(SSL_CTX_use_certificate(s, cert.cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(s, fx.ecref, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_certificate(c, cert.cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(c, ec), 1);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(s), cert.cert);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(c), cert.cert);
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        hs_opts o = { .server_ctx = s, .client_ctx = c, .version = v == 0 ? TLS1_2_VERSION : TLS1_3_VERSION,
                      .groups = "P-256" };
        /* both verified their peer and exchanged data */
        ok = hs_run(&o, &sv, &cl) && sv.ok && cl.ok && sv.peer_cert && sv.verify_result == X509_V_OK
             && cl.verify_result == X509_V_OK;
        if (!ok)
            fprintf(stderr, "handshake (%s) failed: client %s / server %s\n", v == 0 ? "1.2" : "1.3", cl.errors,
                    sv.errors);
        hs_side_clear(&sv);
        hs_side_clear(&cl);
        assert_true(ok);
        SSL_CTX_free(s);
        SSL_CTX_free(c);
    }
    pki_cert_free(&cert);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(rsa_pub);
    fx_libctx_free(ctx);
}

static void test_provider_last(void **state)
{
    check_order(fx.conf);
}

static void test_provider_first(void **state)
{
    check_order(fx.conf_first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_last),
        cmocka_unit_test(test_provider_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
