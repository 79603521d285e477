/* SPDX-License-Identifier: Apache-2.0 */
/* Signing through the provider with keys generated in a SoftHSM token:
 * EVP_DigestSign (ECDSA P-256/P-384, RSA PKCS#1 v1.5, RSA-PSS), EVP_PKEY_sign,
 * one-shot, size queries, dupctx, key reference files, store objects, key
 * parameters and the public-only export, verified by an independent default
 * provider context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "pki.h"
#include "prov_fixture.h"

static fx_t fx;
static OSSL_LIB_CTX *ctx, *vctx;
static EVP_PKEY *ec, *ec384, *ec521, *rsa, *ec_pub, *ec384_pub, *ec521_pub, *rsa_pub;

static int setup(void **state)
{
    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_RSA | FX_KEY_EC384 | FX_KEY_EC521))
        return -1;
    if ((ctx = fx_libctx(fx.conf)) == NULL || (vctx = fx_default_libctx()) == NULL)
        return -1;
    ec = fx_load(ctx, FX_EC_URI);
    ec384 = fx_load(ctx, FX_EC384_URI);
    ec521 = fx_load(ctx, FX_EC521_URI);
    rsa = fx_load(ctx, FX_RSA_URI);
    if (ec == NULL || ec384 == NULL || ec521 == NULL || rsa == NULL) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    ec_pub = fx_public(ec, vctx);
    ec384_pub = fx_public(ec384, vctx);
    ec521_pub = fx_public(ec521, vctx);
    rsa_pub = fx_public(rsa, vctx);
    return ec_pub != NULL && ec384_pub != NULL && ec521_pub != NULL && rsa_pub != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ec521);
    EVP_PKEY_free(ec521_pub);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(ec384_pub);
    EVP_PKEY_free(rsa_pub);
    fx_libctx_free(ctx);
    fx_libctx_free(vctx);
    fx_teardown(&fx);
    return 0;
}

static void test_ecdsa_p256(void **state)
{
    assert_true(EVP_PKEY_is_a(ec, "EC"));
    assert_true(fx_sign_verify(ctx, ec, vctx, ec_pub, "SHA256", NULL));
    assert_true(fx_sign_verify(ctx, ec, vctx, ec_pub, "SHA384", NULL));
}

static void test_ecdsa_p384(void **state)
{
    assert_true(fx_sign_verify(ctx, ec384, vctx, ec384_pub, "SHA384", NULL));
}

/* P-521: 66-byte r and s, a DER signature with a long-form length */
static void test_ecdsa_p521(void **state)
{
    int i;

    assert_int_equal(EVP_PKEY_get_size(ec521), 139);
    for (i = 0; i < 20; i++)
        assert_true(fx_sign_verify(ctx, ec521, vctx, ec521_pub, "SHA512", NULL));
}

static void test_rsa_pkcs1(void **state)
{
    assert_true(EVP_PKEY_is_a(rsa, "RSA"));
    assert_true(fx_sign_verify(ctx, rsa, vctx, rsa_pub, "SHA256", NULL));
    assert_true(fx_sign_verify(ctx, rsa, vctx, rsa_pub, "SHA512", NULL));
}

static void test_rsa_pss(void **state)
{
    assert_true(fx_sign_verify(ctx, rsa, vctx, rsa_pub, "SHA256", "digest"));
    assert_true(fx_sign_verify(ctx, rsa, vctx, rsa_pub, "SHA256", "max"));
    assert_true(fx_sign_verify(ctx, rsa, vctx, rsa_pub, "SHA384", "20"));
}

/* 1 if SIG (LEN bytes) is a good signature of MSG under the public EC key */
static int ec_verifies(const unsigned char *sig, size_t len, const char *msg)
{
    EVP_MD_CTX *v = EVP_MD_CTX_new();
    int ok = v != NULL && EVP_DigestVerifyInit_ex(v, NULL, "SHA256", vctx, NULL, ec_pub, NULL) == 1
             && EVP_DigestVerify(v, sig, len, (const unsigned char *)msg, strlen(msg)) == 1;

    EVP_MD_CTX_free(v);
    return ok;
}

/* one-shot EVP_DigestSign with a size query, verified independently; then a
 * second one-shot from the same context */
static void test_oneshot(void **state)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char sig[256];
    size_t len = 0;

    assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", ctx, NULL, ec, NULL), 1);
    assert_int_equal(EVP_DigestSign(m, NULL, &len, (const unsigned char *)"one shot", 8), 1);
    assert_int_equal(len, 72);
    assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)"one shot", 8), 1);
    assert_true(ec_verifies(sig, len, "one shot"));
    len = sizeof(sig);
    if (OpenSSL_version_num() >= 0x30200000L) {
        /* libcrypto's rule since 3.2 (EVP_DigestSignInit(3): "EVP_DigestSign()
         * can not be called again, once a signature is generated ..., unless
         * the EVP_MD_CTX is reinitialised by calling EVP_DigestSignInit_ex()";
         * openssl/openssl#23075): EVP_DigestSign marks the context finalised
         * and refuses a second one-shot itself, before any provider is asked */
        assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)"another", 7), 0);
        assert_int_equal(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_EVP);
        assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), EVP_R_FINAL_ERROR);
        ERR_clear_error();
    } else {
        /* 3.0 and 3.1 hand it to the provider: it hashes the second message
         * afresh (its init's context was used by the first) */
        assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)"another", 7), 1);
        assert_true(ec_verifies(sig, len, "another"));
    }
    /* the re-init every version allows: no key and no digest keeps both, and
     * the provider's context starts again */
    len = sizeof(sig);
    assert_int_equal(EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, NULL, NULL), 1);
    assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)"a third", 7), 1);
    assert_true(ec_verifies(sig, len, "a third"));
    EVP_MD_CTX_free(m);
}

/* EVP_PKEY_sign over a digest: ECDSA, RSA PKCS#1 (DigestInfo) and RSA-PSS by string ctrls */
static void test_pkey_sign(void **state)
{
    unsigned char h[32], sig[512];
    size_t len;
    int pass;

    memset(h, 0x5a, sizeof(h));
    for (pass = 0; pass < 3; pass++) {
        EVP_PKEY *k = pass == 0 ? ec : rsa, *p = pass == 0 ? ec_pub : rsa_pub;
        EVP_PKEY_CTX *s = EVP_PKEY_CTX_new_from_pkey(ctx, k, NULL);
        EVP_PKEY_CTX *vv = EVP_PKEY_CTX_new_from_pkey(vctx, p, NULL);

        assert_non_null(s);
        assert_int_equal(EVP_PKEY_sign_init(s), 1);
        assert_int_equal(EVP_PKEY_verify_init(vv), 1);
        assert_true(EVP_PKEY_CTX_set_signature_md(s, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_signature_md(vv, EVP_sha256()) > 0);
        if (pass == 2) {
            assert_true(EVP_PKEY_CTX_ctrl_str(s, "rsa_padding_mode", "pss") > 0);
            assert_true(EVP_PKEY_CTX_ctrl_str(s, "rsa_pss_saltlen", "digest") > 0);
            assert_true(EVP_PKEY_CTX_set_rsa_padding(vv, RSA_PKCS1_PSS_PADDING) > 0);
            assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(vv, RSA_PSS_SALTLEN_DIGEST) > 0);
        }
        len = 8;    /* a buffer too small for any signature: refused, nothing written past it */
        assert_true(EVP_PKEY_sign(s, sig, &len, h, sizeof(h)) <= 0);
        ERR_clear_error();
        len = 0;
        assert_int_equal(EVP_PKEY_sign(s, NULL, &len, h, sizeof(h)), 1);
        assert_true(len <= sizeof(sig));
        assert_int_equal(EVP_PKEY_sign(s, sig, &len, h, sizeof(h)), 1);
        assert_int_equal(EVP_PKEY_verify(vv, sig, len, h, sizeof(h)), 1);
        EVP_PKEY_CTX_free(s);
        EVP_PKEY_CTX_free(vv);
    }
}

/* EVP_MD_CTX_copy_ex of a running sign context (DUPCTX): both halves sign */
static void test_dupctx(void **state)
{
    EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    unsigned char sa[80], sb[80];
    size_t la = sizeof(sa), lb = sizeof(sb);

    assert_int_equal(EVP_DigestSignInit_ex(a, NULL, "SHA256", ctx, NULL, ec, NULL), 1);
    assert_int_equal(EVP_DigestSignUpdate(a, "abc", 3), 1);
    assert_int_equal(EVP_MD_CTX_copy_ex(b, a), 1);
    assert_int_equal(EVP_DigestSignUpdate(a, "def", 3), 1);
    assert_int_equal(EVP_DigestSignUpdate(b, "def", 3), 1);
    assert_int_equal(EVP_DigestSignFinal(a, sa, &la), 1);
    assert_int_equal(EVP_DigestSignFinal(b, sb, &lb), 1);
    assert_int_equal(EVP_DigestVerifyInit_ex(v, NULL, "SHA256", vctx, NULL, ec_pub, NULL), 1);
    assert_int_equal(EVP_DigestVerify(v, sa, la, (const unsigned char *)"abcdef", 6), 1);
    assert_int_equal(EVP_DigestVerifyInit_ex(v, NULL, "SHA256", vctx, NULL, ec_pub, NULL), 1);
    assert_int_equal(EVP_DigestVerify(v, sb, lb, (const unsigned char *)"abcdef", 6), 1);
    EVP_MD_CTX_free(a);
    EVP_MD_CTX_free(b);
    EVP_MD_CTX_free(v);
}

/* the key reference PEM, read by an unmodified PEM_read_bio_PrivateKey */
static void test_key_reference(void **state)
{
    const char *files[2] = { fx.ecref, fx.rsaref };
    EVP_PKEY *pubs[2] = { ec_pub, rsa_pub };
    int i;

    for (i = 0; i < 2; i++) {
        BIO *b = BIO_new_file(files[i], "r");
        EVP_PKEY *k;

        assert_non_null(b);
        k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, ctx, NULL);
        BIO_free(b);
        if (k == NULL)
            ERR_print_errors_fp(stderr);
        assert_non_null(k);
        assert_int_equal(EVP_PKEY_eq(k, pubs[i]), 1);
        assert_true(fx_sign_verify(ctx, k, vctx, pubs[i], "SHA256", NULL));
        EVP_PKEY_free(k);
    }
}

/* public key objects from the store; matching against the private key */
static void test_store_public(void **state)
{
    EVP_PKEY *p = fx_load(ctx, "pkcs11:token=" FX_TOKEN ";object=ec;type=public");
    EVP_PKEY *r = fx_load(ctx, "pkcs11:token=" FX_TOKEN ";id=%02;type=public");

    assert_non_null(p);
    assert_non_null(r);
    assert_int_equal(EVP_PKEY_eq(p, ec), 1);
    assert_int_equal(EVP_PKEY_eq(p, ec_pub), 1);
    assert_int_equal(EVP_PKEY_eq(r, rsa_pub), 1);
    assert_int_not_equal(EVP_PKEY_eq(r, ec_pub), 1);
    EVP_PKEY_free(p);
    EVP_PKEY_free(r);
}

/* what libssl asks of the key */
static void test_params(void **state)
{
    char name[64];
    size_t len;
    int v;

    assert_int_equal(EVP_PKEY_get_bits(ec), 256);
    assert_int_equal(EVP_PKEY_get_security_bits(ec), 128);
    assert_int_equal(EVP_PKEY_get_size(ec), 72);
    assert_int_equal(EVP_PKEY_get_bits(rsa), 2048);
    assert_int_equal(EVP_PKEY_get_security_bits(rsa), 112);
    assert_int_equal(EVP_PKEY_get_size(rsa), 256);
    assert_int_equal(EVP_PKEY_get_utf8_string_param(ec, OSSL_PKEY_PARAM_GROUP_NAME, name,
                                                    sizeof(name), &len), 1);
    assert_string_equal(name, "prime256v1");
    assert_true(EVP_PKEY_get_default_digest_name(ec, name, sizeof(name)) > 0);
    assert_string_equal(name, "SHA256");
    assert_int_equal(EVP_PKEY_get_int_param(ec384, OSSL_PKEY_PARAM_BITS, &v), 1);
    assert_int_equal(v, 384);
    assert_true(EVP_PKEY_is_a(ec, "id-ecPublicKey"));
    assert_true(EVP_PKEY_is_a(rsa, "rsaEncryption"));
}

/* export: public part with a named curve; the private key never */
static void test_export_public_only(void **state)
{
    OSSL_PARAM *params = NULL;
    const OSSL_PARAM *p;
    const char *g = NULL;

    assert_int_equal(EVP_PKEY_todata(ec, EVP_PKEY_PUBLIC_KEY, &params), 1);
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    assert_non_null(p);
    assert_int_equal(OSSL_PARAM_get_utf8_string_ptr(p, &g), 1);
    assert_string_equal(g, "prime256v1");
    assert_non_null(OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY));
    OSSL_PARAM_free(params);
    params = NULL;
    assert_int_not_equal(EVP_PKEY_todata(ec, EVP_PKEY_KEYPAIR, &params), 1);
    OSSL_PARAM_free(params);
    ERR_clear_error();
}

/* a certificate signed in the token verifies with the default provider */
static void test_certificate(void **state)
{
    pki_cert c;
    EVP_PKEY *pk;

    assert_true(pki_self_signed(ctx, ec, "m2p test", &c));
    pk = X509_get0_pubkey(c.cert);
    assert_non_null(pk);
    assert_int_equal(X509_verify(c.cert, ec_pub), 1);
    assert_int_equal(X509_check_private_key(c.cert, ec), 1);
    pki_cert_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_p256),
        cmocka_unit_test(test_ecdsa_p384),
        cmocka_unit_test(test_ecdsa_p521),
        cmocka_unit_test(test_rsa_pkcs1),
        cmocka_unit_test(test_rsa_pss),
        cmocka_unit_test(test_oneshot),
        cmocka_unit_test(test_pkey_sign),
        cmocka_unit_test(test_dupctx),
        cmocka_unit_test(test_key_reference),
        cmocka_unit_test(test_store_public),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_export_public_only),
        cmocka_unit_test(test_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
