/* SPDX-License-Identifier: Apache-2.0 */
/* Recovery: the sessions the provider pooled are closed behind its back (which
 * also logs the token out); the next signature reopens, logs in again and
 * succeeds. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pkcs11.h" /* common/ */
#include "prov_fixture.h"

static void test_sessions_closed(void **state)
{
    fx_t fx;
    OSSL_LIB_CTX *ctx, *vctx;
    EVP_PKEY *ec, *pub;
    CK_FUNCTION_LIST *f = NULL;
    CK_C_GetFunctionList gfl;
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8, i;
    void *dl, *sym;
    int round;

    assert_true(fx_setup(&fx, FX_KEY_EC));
    assert_non_null(ctx = fx_libctx(fx.conf));
    assert_non_null(vctx = fx_default_libctx());
    assert_non_null(ec = fx_load(ctx, FX_EC_URI));
    assert_non_null(pub = fx_public(ec, vctx));
    assert_true(fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL));
    /* the same module instance the provider uses */
    assert_non_null(dl = dlopen(M2P_SOFTHSM, RTLD_NOW | RTLD_NOLOAD));
    assert_non_null(sym = dlsym(dl, "C_GetFunctionList"));
    memcpy(&gfl, &sym, sizeof(gfl));
    assert_int_equal(gfl(&f), CKR_OK);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (round = 0; round < 3; round++) {
        for (i = 0; i < n; i++)
            f->C_CloseAllSessions(slots[i]);
        assert_true(fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL));
        assert_true(fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL));
    }
    dlclose(dl);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ec);
    fx_libctx_free(vctx);
    fx_libctx_free(ctx);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
