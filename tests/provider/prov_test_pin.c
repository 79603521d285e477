/* SPDX-License-Identifier: Apache-2.0 */
/* Where the PIN comes from: the application's passphrase callback (asked once),
 * pin-value and pin-source in the URI, the configuration. Between tests every
 * session of the module is closed, which logs the token out. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "pkcs11.h" /* common/ */
#include "prov_fixture.h"

static fx_t fx;
static char nopin_cnf[PATH_MAX + 16];
static OSSL_LIB_CTX *vctx;
static int cb_calls;

static int setup(void **state)
{
    if (!fx_setup(&fx, FX_KEY_EC) || (vctx = fx_default_libctx()) == NULL)
        return -1;
    snprintf(nopin_cnf, sizeof(nopin_cnf), "%s/no-pin.cnf", fx.dir);
    return fx_write_conf(nopin_cnf, FX_ORDER_LAST, NULL, NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    fx_libctx_free(vctx);
    fx_teardown(&fx);
    return 0;
}

/* closes every session of this process: the token is logged out */
static void logout_all(void)
{
    void *dl = dlopen(M2P_SOFTHSM, RTLD_NOW | RTLD_NOLOAD), *sym;
    CK_C_GetFunctionList gfl;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8, i;

    if (dl == NULL)
        return;     /* not loaded yet: nobody is logged in */
    sym = dlsym(dl, "C_GetFunctionList");
    memcpy(&gfl, &sym, sizeof(gfl));
    if (gfl(&f) == CKR_OK && f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK)
        for (i = 0; i < n; i++)
            f->C_CloseAllSessions(slots[i]);
    dlclose(dl);
}

static int pw_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pin = u;

    cb_calls++;
    snprintf(buf, (size_t)size, "%s", pin);
    return (int)strlen(pin);
}

static EVP_PKEY *read_ref(OSSL_LIB_CTX *ctx, const char *pin)
{
    BIO *b = BIO_new_file(fx.ecref, "r");
    EVP_PKEY *k = PEM_read_bio_PrivateKey_ex(b, NULL, pw_cb, (void *)pin, ctx, NULL);

    BIO_free(b);
    return k;
}

static void check_signs(OSSL_LIB_CTX *ctx, EVP_PKEY *k)
{
    EVP_PKEY *pub = fx_public(k, vctx);

    assert_non_null(pub);
    assert_true(fx_sign_verify(ctx, k, vctx, pub, "SHA256", NULL));
    EVP_PKEY_free(pub);
}

static void test_pin_from_callback(void **state)
{
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *k;

    logout_all();
    assert_non_null(ctx = fx_libctx(nopin_cnf));
    cb_calls = 0;
    assert_non_null(k = read_ref(ctx, FX_PIN));
    assert_int_equal(cb_calls, 1);
    check_signs(ctx, k);
    EVP_PKEY_free(k);
    /* logged in now: no second prompt */
    assert_non_null(k = read_ref(ctx, FX_PIN));
    assert_int_equal(cb_calls, 1);
    EVP_PKEY_free(k);
    fx_libctx_free(ctx);
}

static void test_wrong_pin_from_callback(void **state)
{
    OSSL_LIB_CTX *ctx;

    logout_all();
    assert_non_null(ctx = fx_libctx(nopin_cnf));
    cb_calls = 0;
    ERR_clear_error();
    assert_null(read_ref(ctx, "0000"));
    assert_int_equal(cb_calls, 1);
    assert_true(fx_errors_contain("C_Login: CKR_PIN_INCORRECT"));
    /* never presented again, not even asked for */
    assert_null(read_ref(ctx, FX_PIN));
    assert_int_equal(cb_calls, 1);
    assert_true(fx_errors_contain("the refused PIN is not tried again"));
    fx_libctx_free(ctx);
}

static void test_pin_value_in_uri(void **state)
{
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *k;

    logout_all();
    assert_non_null(ctx = fx_libctx(nopin_cnf));
    ERR_clear_error();
    assert_null(fx_load(ctx, FX_EC_URI));
    assert_true(fx_errors_contain("no PIN for token"));
    assert_non_null(k = fx_load(ctx, FX_EC_URI "?pin-value=" FX_PIN));
    check_signs(ctx, k);
    EVP_PKEY_free(k);
    fx_libctx_free(ctx);
}

static void test_pin_source_in_uri(void **state)
{
    char uri[PATH_MAX + 128];
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *k;

    logout_all();
    assert_non_null(ctx = fx_libctx(nopin_cnf));
    snprintf(uri, sizeof(uri), FX_EC_URI "?pin-source=file:%s", fx.pinfile);
    assert_non_null(k = fx_load(ctx, uri));
    check_signs(ctx, k);
    EVP_PKEY_free(k);
    fx_libctx_free(ctx);
}

static void test_pin_file_in_config(void **state)
{
    OSSL_LIB_CTX *ctx;
    EVP_PKEY *k;

    logout_all();
    assert_non_null(ctx = fx_libctx(fx.conf));     /* pkcs11-module-token-pin = file:... */
    assert_non_null(k = fx_load(ctx, FX_EC_URI));
    check_signs(ctx, k);
    EVP_PKEY_free(k);
    fx_libctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_from_callback),
        cmocka_unit_test(test_wrong_pin_from_callback),
        cmocka_unit_test(test_pin_value_in_uri),
        cmocka_unit_test(test_pin_source_in_uri),
        cmocka_unit_test(test_pin_file_in_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
