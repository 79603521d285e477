/* SPDX-License-Identifier: Apache-2.0 */
/* The session key cache against a token that misbehaves (the fault module in
 * front of SoftHSM, counting every call):
 *  - a token that refuses C_CopyObject (CKR_ACTION_PROHIBITED): the keys sign
 *    with their token objects, verified; the refusal is asked once per key,
 *    never again per signature, and the key says why it is not cached;
 *  - transient C_CopyObject failures (the device, the keeper session closed)
 *    are recovered and the copy is made;
 *  - a copy the token calls invalid is made again and the old one destroyed:
 *    one copy per key in the token afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>

#include "faults_util.h"
#include "prov_fixture.h"

static fx_t fx;
static char faults[PATH_MAX + 16], counts[PATH_MAX + 16];
static OSSL_LIB_CTX *ctx, *vctx;

static unsigned long calls(const char *fn)
{
    unsigned long c, i;

    ft_count(counts, fn, &c, &i);
    return c;
}

static unsigned long injected(const char *fn)
{
    unsigned long c, i;

    ft_count(counts, fn, &c, &i);
    return i;
}

static int setup(void **state)
{
    char conf[PATH_MAX + 16];

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_RSA)
        || !ft_use_fault_module(fx.dir, fx.pinfile, FAULT_MODULE, faults, counts, conf)
        || (ctx = fx_libctx(conf)) == NULL || (vctx = fx_default_libctx()) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fx_libctx_free(ctx);
    fx_libctx_free(vctx);
    fx_teardown(&fx);
    return 0;
}

static void sign_n(EVP_PKEY *key, EVP_PKEY *pub, int rsa, int n)
{
    for (int i = 0; i < n; i++)
        assert_true(fx_sign_verify(ctx, key, vctx, pub, "SHA256", rsa ? "digest" : NULL));
}

/* a token that refuses to copy: asked once per key, never per signature */
static void test_refused(void **state)
{
    EVP_PKEY *ec, *rsa, *ec_pub, *rsa_pub;
    unsigned long copies0, signs0;

    assert_non_null(ec = fx_load(ctx, FX_EC_URI));
    assert_non_null(rsa = fx_load(ctx, FX_RSA_URI));
    assert_non_null(ec_pub = fx_public(ec, vctx));
    assert_non_null(rsa_pub = fx_public(rsa, vctx));
    assert_true(ft_faults(faults, "C_CopyObject CKR_ACTION_PROHIBITED\n"));
    copies0 = calls("C_CopyObject");
    signs0 = calls("C_SignInit");
    sign_n(ec, ec_pub, 0, 20);
    sign_n(rsa, rsa_pub, 1, 5);
    assert_int_equal(calls("C_CopyObject"), copies0 + 2);   /* one per key */
    assert_int_equal(injected("C_CopyObject"), 2);
    assert_int_equal(calls("C_SignInit"), signs0 + 25);     /* no retried signature */
    assert_string_equal(fx_cache_status(ec), "no (C_CopyObject: CKR_ACTION_PROHIBITED)");
    assert_string_equal(fx_cache_status(rsa), "no (C_CopyObject: CKR_ACTION_PROHIBITED)");
    assert_int_equal(fx_session_keys(), 0);
    /* the answer is kept: no new attempt once the token would copy */
    assert_true(ft_faults(faults, ""));
    sign_n(ec, ec_pub, 0, 10);
    assert_int_equal(calls("C_CopyObject"), copies0 + 2);
    assert_string_equal(fx_cache_status(ec), "no (C_CopyObject: CKR_ACTION_PROHIBITED)");
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(rsa_pub);
}

/* transient C_CopyObject failures are recovered: the copy is made */
static void test_transient(void **state)
{
    static const char *const rules[] = {
        "C_CopyObject CKR_DEVICE_ERROR count=1\n",           /* sessions and keeper reopened */
        "C_CopyObject CKR_SESSION_HANDLE_INVALID count=1\n", /* the keeper closed behind our back */
        "C_CopyObject CKR_USER_NOT_LOGGED_IN count=1\n",
    };

    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        EVP_PKEY *ec, *pub;
        unsigned long before;

        fprintf(stderr, "  fault: %s", rules[r]);
        assert_non_null(ec = fx_load(ctx, FX_EC_URI));
        assert_non_null(pub = fx_public(ec, vctx));
        before = injected("C_CopyObject");
        assert_true(ft_faults(faults, rules[r]));
        sign_n(ec, pub, 0, 3);
        assert_int_equal(injected("C_CopyObject"), before + 1);
        assert_string_equal(fx_cache_status(ec), "yes");
        assert_int_equal(fx_session_keys(), 1);
        assert_true(ft_faults(faults, ""));
        EVP_PKEY_free(ec);
        EVP_PKEY_free(pub);
        assert_int_equal(fx_session_keys(), 0);
    }
}

/* a copy the token calls invalid is made again, the old one destroyed */
static void test_copy_invalid(void **state)
{
    EVP_PKEY *ec, *pub;
    unsigned long copies, destroyed;

    assert_non_null(ec = fx_load(ctx, FX_EC_URI));
    assert_non_null(pub = fx_public(ec, vctx));
    sign_n(ec, pub, 0, 2);
    assert_int_equal(fx_session_keys(), 1);
    copies = calls("C_CopyObject");
    destroyed = calls("C_DestroyObject");
    assert_true(ft_faults(faults, "C_SignInit CKR_KEY_HANDLE_INVALID count=1\n"));
    sign_n(ec, pub, 0, 3);
    assert_int_equal(injected("C_SignInit"), 1);
    assert_int_equal(calls("C_CopyObject"), copies + 1);
    assert_int_equal(calls("C_DestroyObject"), destroyed + 1);
    assert_int_equal(fx_session_keys(), 1);
    assert_string_equal(fx_cache_status(ec), "yes");
    assert_true(ft_faults(faults, ""));
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
    assert_int_equal(fx_session_keys(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_transient),
        cmocka_unit_test(test_copy_invalid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
