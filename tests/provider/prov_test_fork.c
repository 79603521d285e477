/* SPDX-License-Identifier: Apache-2.0 */
/* A prefork server: the parent uses the key, forks, the child signs with the
 * same EVP_PKEY (the module is re-initialised in the child), the parent still
 * signs afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "prov_fixture.h"

static void test_fork_sign(void **state)
{
    fx_t fx;
    OSSL_LIB_CTX *ctx, *vctx;
    EVP_PKEY *ec, *pub;
    pid_t pid[2];
    int i, status;

    assert_true(fx_setup(&fx, FX_KEY_EC));
    assert_non_null(ctx = fx_libctx(fx.conf));
    assert_non_null(vctx = fx_default_libctx());
    assert_non_null(ec = fx_load(ctx, FX_EC_URI));
    assert_non_null(pub = fx_public(ec, vctx));
    assert_true(fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL));
    for (i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            int ok = fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL)
                  && fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL);
            _exit(ok ? 0 : 1);
        }
    }
    for (i = 0; i < 2; i++) {
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_true(fx_sign_verify(ctx, ec, vctx, pub, "SHA256", NULL));
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ec);
    fx_libctx_free(vctx);
    fx_libctx_free(ctx);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
