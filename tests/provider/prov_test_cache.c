/* SPDX-License-Identifier: Apache-2.0 */
/* The session key cache (pkcs11-module-cache-keys): with the cache on, a key
 * signs with a session copy of its token object, made once, destroyed with
 * the key, remade after a logout behind the provider's back, lost sessions
 * and a module restart, and in a forked child; with the cache off, it signs
 * with the token object. Both give verified signatures (identical ones for
 * RSA PKCS#1 v1.5). The copies are counted in the token itself: session
 * objects of the private-key class, seen through the same module instance. */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "pkcs11.h" /* common/ */
#include "prov_fixture.h"

static fx_t fx;
static char conf_off[PATH_MAX + 16];
static OSSL_LIB_CTX *ctx_on, *ctx_off, *vctx;
static CK_FUNCTION_LIST *f;     /* the SoftHSM instance the provider loaded */
static CK_SLOT_ID slot;

static int find_module(void)
{
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8, i;
    CK_C_GetFunctionList gfl;
    void *dl = dlopen(M2P_SOFTHSM, RTLD_NOW | RTLD_NOLOAD), *sym;

    if (dl == NULL || (sym = dlsym(dl, "C_GetFunctionList")) == NULL)
        return 0;
    memcpy(&gfl, &sym, sizeof(gfl));
    dlclose(dl);    /* the provider keeps it loaded */
    if (gfl(&f) != CKR_OK || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 0;
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;

        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, FX_TOKEN " ", 4) == 0) {
            slot = slots[i];
            return 1;
        }
    }
    return 0;
}

static int setup(void **state)
{
    FILE *fp;

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_RSA))
        return -1;
    snprintf(conf_off, sizeof(conf_off), "%s/openssl-nocache.cnf", fx.dir);
    /* the m2mtls section is the last one: the key goes at the end */
    if (!fx_write_conf(conf_off, FX_ORDER_LAST, FX_PIN, NULL) || (fp = fopen(conf_off, "a")) == NULL)
        return -1;
    fputs("pkcs11-module-cache-keys = false\n", fp);
    if (fclose(fp) != 0)
        return -1;
    if ((ctx_on = fx_libctx(fx.conf)) == NULL || (ctx_off = fx_libctx(conf_off)) == NULL
        || (vctx = fx_default_libctx()) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fx_libctx_free(ctx_on);
    fx_libctx_free(ctx_off);
    fx_libctx_free(vctx);
    fx_teardown(&fx);
    return 0;
}

/* RSA PKCS#1 v1.5 over a fixed message: deterministic, comparable bytes */
static size_t rsa_sign(OSSL_LIB_CTX *ctx, EVP_PKEY *key, unsigned char *sig, size_t cap)
{
    static const unsigned char msg[] = "the same message, cache on and off";
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = cap;
    int ok = m != NULL && EVP_DigestSignInit_ex(m, &pctx, "SHA256", ctx, NULL, key, NULL) == 1
          && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0
          && EVP_DigestSign(m, sig, &len, msg, sizeof(msg)) == 1;

    EVP_MD_CTX_free(m);
    return ok ? len : 0;
}

/* cache on and off: verified signatures, identical RSA PKCS#1 ones; one copy
 * per key with the cache on, none with it off, none left once the keys go */
static void test_on_off(void **state)
{
    EVP_PKEY *ec_on, *rsa_on, *ec_off, *rsa_off, *ec_pub, *rsa_pub;
    unsigned char s1[512], s2[512];
    size_t l1, l2;

    assert_non_null(ec_off = fx_load(ctx_off, FX_EC_URI));
    assert_non_null(rsa_off = fx_load(ctx_off, FX_RSA_URI));
    assert_true(find_module());     /* loaded by the provider now */
    assert_int_equal(fx_session_keys(), 0);
    assert_non_null(ec_pub = fx_public(ec_off, vctx));
    assert_non_null(rsa_pub = fx_public(rsa_off, vctx));
    assert_true(fx_sign_verify(ctx_off, ec_off, vctx, ec_pub, "SHA256", NULL));
    assert_true(fx_sign_verify(ctx_off, rsa_off, vctx, rsa_pub, "SHA256", "digest"));
    assert_true((l2 = rsa_sign(ctx_off, rsa_off, s2, sizeof(s2))) > 0);
    assert_string_equal(fx_cache_status(ec_off), "no (pkcs11-module-cache-keys = false)");
    assert_int_equal(fx_session_keys(), 0);

    assert_non_null(ec_on = fx_load(ctx_on, FX_EC_URI));
    assert_non_null(rsa_on = fx_load(ctx_on, FX_RSA_URI));
    assert_int_equal(fx_session_keys(), 0);    /* made at first use, not at load */
    assert_true(fx_sign_verify(ctx_on, ec_on, vctx, ec_pub, "SHA256", NULL));
    assert_int_equal(fx_session_keys(), 1);
    assert_true(fx_sign_verify(ctx_on, rsa_on, vctx, rsa_pub, "SHA256", "digest"));
    assert_true(fx_sign_verify(ctx_on, rsa_on, vctx, rsa_pub, "SHA384", NULL));
    assert_int_equal(fx_session_keys(), 2);
    assert_true((l1 = rsa_sign(ctx_on, rsa_on, s1, sizeof(s1))) > 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(s1, s2, l1);
    assert_string_equal(fx_cache_status(ec_on), "yes");
    assert_string_equal(fx_cache_status(rsa_on), "yes");
    for (int i = 0; i < 50; i++)
        assert_true(fx_sign_verify(ctx_on, ec_on, vctx, ec_pub, "SHA256", NULL));
    assert_int_equal(fx_session_keys(), 2);    /* one copy per key, not per signature */

    /* asking makes the copy of a key that has not signed yet */
    EVP_PKEY *again = fx_load(ctx_on, FX_EC_URI);
    assert_non_null(again);
    assert_string_equal(fx_cache_status(again), "yes");
    assert_int_equal(fx_session_keys(), 3);
    EVP_PKEY_free(again);
    assert_int_equal(fx_session_keys(), 2);    /* the copy goes with its key */
    EVP_PKEY_free(ec_on);
    EVP_PKEY_free(rsa_on);
    assert_int_equal(fx_session_keys(), 0);
    EVP_PKEY_free(ec_off);
    EVP_PKEY_free(rsa_off);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(rsa_pub);
}

/* logout behind the provider's back destroys the copies: the next signature
 * logs in again and makes a new one (and only one) */
static void test_logout(void **state)
{
    EVP_PKEY *ec, *pub;
    CK_SESSION_HANDLE s;

    assert_non_null(ec = fx_load(ctx_on, FX_EC_URI));
    assert_non_null(pub = fx_public(ec, vctx));
    assert_true(find_module());
    for (int round = 0; round < 3; round++) {
        assert_true(fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL));
        assert_int_equal(fx_session_keys(), 1);
        assert_int_equal(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
        assert_int_equal(f->C_Logout(s), CKR_OK);
        f->C_CloseSession(s);
        assert_true(fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL));
        assert_string_equal(fx_cache_status(ec), "yes");
        assert_int_equal(fx_session_keys(), 1);
    }
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
    assert_int_equal(fx_session_keys(), 0);
}

/* every session closed behind the provider's back (the keeper too) */
static void test_lost_sessions(void **state)
{
    EVP_PKEY *ec, *rsa, *ec_pub, *rsa_pub;

    assert_non_null(ec = fx_load(ctx_on, FX_EC_URI));
    assert_non_null(rsa = fx_load(ctx_on, FX_RSA_URI));
    assert_non_null(ec_pub = fx_public(ec, vctx));
    assert_non_null(rsa_pub = fx_public(rsa, vctx));
    assert_true(find_module());
    for (int round = 0; round < 3; round++) {
        assert_true(fx_sign_verify(ctx_on, ec, vctx, ec_pub, "SHA256", NULL));
        assert_true(fx_sign_verify(ctx_on, rsa, vctx, rsa_pub, "SHA256", "digest"));
        assert_int_equal(fx_session_keys(), 2);
        assert_int_equal(f->C_CloseAllSessions(slot), CKR_OK);
        assert_int_equal(fx_session_keys(), 0);
        assert_true(fx_sign_verify(ctx_on, ec, vctx, ec_pub, "SHA256", NULL));
        assert_true(fx_sign_verify(ctx_on, rsa, vctx, rsa_pub, "SHA256", "digest"));
        assert_int_equal(fx_session_keys(), 2);
    }
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(rsa_pub);
    assert_int_equal(fx_session_keys(), 0);
}

/* the module finalised (and initialised again, or not) behind the provider's
 * back: it re-initialises what it needs and makes its copy again */
static void test_module_restart(void **state)
{
    EVP_PKEY *ec, *pub;
    CK_C_INITIALIZE_ARGS args;

    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    assert_non_null(ec = fx_load(ctx_on, FX_EC_URI));
    assert_non_null(pub = fx_public(ec, vctx));
    assert_true(find_module());
    for (int reinit = 0; reinit < 2; reinit++) {
        assert_true(fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL));
        assert_int_equal(fx_session_keys(), 1);
        assert_int_equal(f->C_Finalize(NULL), CKR_OK);
        if (reinit)
            assert_int_equal(f->C_Initialize(&args), CKR_OK);
        assert_true(fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL));
        assert_true(find_module());     /* the slot may have moved */
        assert_string_equal(fx_cache_status(ec), "yes");
        assert_int_equal(fx_session_keys(), 1);
    }
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
    assert_int_equal(fx_session_keys(), 0);
}

/* a forked child signs with a copy of its own; the parent's copy stays */
static void test_fork(void **state)
{
    EVP_PKEY *ec, *pub;
    pid_t pid;
    int st;

    assert_non_null(ec = fx_load(ctx_on, FX_EC_URI));
    assert_non_null(pub = fx_public(ec, vctx));
    assert_true(fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL));
    assert_true(find_module());
    assert_int_equal(fx_session_keys(), 1);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL)
              && fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL)
              && strcmp(fx_cache_status(ec), "yes") == 0;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(fx_sign_verify(ctx_on, ec, vctx, pub, "SHA256", NULL));
    assert_int_equal(fx_session_keys(), 1);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
    assert_int_equal(fx_session_keys(), 0);
}

/* two threads signing a fresh key at once: one copy, not two */
static EVP_PKEY *shared, *shared_pub;
static pthread_barrier_t go;

static void *signer(void *arg)
{
    int *ok = arg;

    pthread_barrier_wait(&go);
    *ok = 1;
    for (int i = 0; i < 30 && *ok; i++)
        *ok = fx_sign_verify(ctx_on, shared, vctx, shared_pub, "SHA256", NULL);
    return NULL;
}

static void test_two_threads(void **state)
{
    pthread_t t[2];
    int ok[2];

    assert_non_null(shared = fx_load(ctx_on, FX_EC_URI));
    assert_non_null(shared_pub = fx_public(shared, vctx));
    assert_true(find_module());
    assert_int_equal(fx_session_keys(), 0);
    pthread_barrier_init(&go, NULL, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, signer, &ok[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_true(ok[i]);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(fx_session_keys(), 1);
    EVP_PKEY_free(shared);
    EVP_PKEY_free(shared_pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_off),
        cmocka_unit_test(test_logout),
        cmocka_unit_test(test_lost_sessions),
        cmocka_unit_test(test_module_restart),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
