/* SPDX-License-Identifier: Apache-2.0 */
/* Two threads signing with one key at the same time (session pool, session
 * key cache on). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "prov_fixture.h"

#define ROUNDS 100

static OSSL_LIB_CTX *ctx, *vctx;
static EVP_PKEY *key, *pub;

static void *worker(void *arg)
{
    int i, *ok = arg;

    *ok = 1;
    for (i = 0; i < ROUNDS && *ok; i++)
        *ok = fx_sign_verify(ctx, key, vctx, pub, "SHA256", NULL);
    return NULL;
}

static void run_two(const char *uri)
{
    pthread_t t[2];
    int ok[2], i;

    assert_non_null(key = fx_load(ctx, uri));
    assert_non_null(pub = fx_public(key, vctx));
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, &ok[i]), 0);
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_true(ok[i]);
    }
    {
        char st[64];    /* the default: both threads signed with the session copy */

        assert_int_equal(EVP_PKEY_get_utf8_string_param(key, "m2mtls-session-cache", st, sizeof(st), NULL), 1);
        assert_string_equal(st, "yes");
    }
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
}

static void test_two_threads(void **state)
{
    fx_t fx;

    assert_true(fx_setup(&fx, FX_KEY_EC | FX_KEY_RSA));
    assert_non_null(ctx = fx_libctx(fx.conf));
    assert_non_null(vctx = fx_default_libctx());
    run_two(FX_EC_URI);
    run_two(FX_RSA_URI);
    fx_libctx_free(vctx);
    fx_libctx_free(ctx);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
