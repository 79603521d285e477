/* SPDX-License-Identifier: Apache-2.0 */
/* Failures are clear and safe: a wrong PIN is presented once and reported as
 * "C_Login: CKR_PIN_INCORRECT", never retried; a missing token, a missing
 * object and an unconfigured module are reported, not crashed on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "prov_fixture.h"

static fx_t fx;

static int setup(void **state)
{
    return fx_setup(&fx, FX_KEY_EC) ? 0 : -1;
}

static int teardown(void **state)
{
    fx_teardown(&fx);
    return 0;
}

/* Runs first in this process: nothing has logged in to the token yet. */
static void test_wrong_pin_once(void **state)
{
    char cnf[PATH_MAX + 16];
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *k;
    BIO *b;

    snprintf(cnf, sizeof(cnf), "%s/wrong-pin.cnf", fx.dir);
    assert_true(fx_write_conf(cnf, FX_ORDER_LAST, "9999", NULL));
    assert_non_null(ctx = fx_libctx(cnf));
    ERR_clear_error();
    k = fx_load(ctx, FX_EC_URI);
    assert_null(k);
    assert_true(fx_errors_contain("C_Login: CKR_PIN_INCORRECT"));
    /* second use of the same configuration: refused without asking the token */
    k = fx_load(ctx, FX_EC_URI);
    assert_null(k);
    assert_true(fx_errors_contain("the refused PIN is not tried again"));
    /* and through a key reference file */
    b = BIO_new_file(fx.ecref, "r");
    k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, ctx, NULL);
    BIO_free(b);
    assert_null(k);
    assert_true(fx_errors_contain("C_Login: CKR_PIN_INCORRECT"));
    fx_libctx_free(ctx);
    /* the token is not locked: the right PIN still works */
    assert_true(fx_run("'%s' --module '%s' --token-label " FX_TOKEN " --login --pin " FX_PIN
                       " --list-objects >/dev/null", M2P_PKCS11_TOOL, M2P_SOFTHSM));
}

static void test_missing_token(void **state)
{
    OSSL_LIB_CTX *ctx = fx_libctx(fx.conf);
    EVP_PKEY *k;

    assert_non_null(ctx);
    ERR_clear_error();
    k = fx_load(ctx, "pkcs11:token=no-such-token;object=ec;type=private");
    assert_null(k);
    assert_true(fx_errors_contain("no token matches the URI (token=no-such-token)"));
    k = fx_load(ctx, "pkcs11:token=" FX_TOKEN ";object=no-such-key;type=private");
    assert_null(k);
    assert_true(fx_errors_contain("no object in the token matches"));
    /* the good key still loads afterwards */
    k = fx_load(ctx, FX_EC_URI);
    assert_non_null(k);
    EVP_PKEY_free(k);
    fx_libctx_free(ctx);
}

static void test_bad_module(void **state)
{
    char cnf[PATH_MAX + 16];
    OSSL_LIB_CTX *ctx;

    snprintf(cnf, sizeof(cnf), "%s/no-module.cnf", fx.dir);
    assert_true(fx_write_conf(cnf, FX_ORDER_LAST, FX_PIN, ""));
    assert_non_null(ctx = fx_libctx(cnf));
    ERR_clear_error();
    assert_null(fx_load(ctx, FX_EC_URI));
    assert_true(fx_errors_contain("pkcs11-module-path is not configured"));
    fx_libctx_free(ctx);

    snprintf(cnf, sizeof(cnf), "%s/bad-module.cnf", fx.dir);
    assert_true(fx_write_conf(cnf, FX_ORDER_LAST, FX_PIN, "/nonexistent/libpkcs11.so"));
    assert_non_null(ctx = fx_libctx(cnf));
    assert_null(fx_load(ctx, FX_EC_URI));
    assert_true(fx_errors_contain("cannot load PKCS#11 module /nonexistent/libpkcs11.so"));
    fx_libctx_free(ctx);
}

static void test_bad_uri(void **state)
{
    OSSL_LIB_CTX *ctx = fx_libctx(fx.conf);

    assert_non_null(ctx);
    ERR_clear_error();
    assert_null(fx_load(ctx, "pkcs11:token=" FX_TOKEN ";bogus=1"));
    assert_true(fx_errors_contain("unknown path attribute \"bogus\""));
    fx_libctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_pin_once),
        cmocka_unit_test(test_missing_token),
        cmocka_unit_test(test_bad_module),
        cmocka_unit_test(test_bad_uri),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
