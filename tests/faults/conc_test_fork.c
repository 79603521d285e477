/* SPDX-License-Identifier: Apache-2.0 */
/* A prefork server with its key in a token: the parent makes the server and
 * client SSL_CTXs (libm2mtls, both keys in the SoftHSM token through the
 * provider), does a handshake, then forks CHILDREN workers at once. Each
 * worker, alive at the same time as the others and while the parent keeps
 * signing, runs two threads that sign with the inherited EVP_PKEY and does
 * full loopback handshakes with the inherited contexts; one worker also forks
 * a grandchild that does the same (the module re-initialised twice down the
 * line). Afterwards the parent still signs and handshakes. Threads are only
 * started after the fork (fork with a thread inside the provider is a
 * documented limitation). Under TSan in CI.
 * (prov_test_fork: two children one after the other, EVP signatures only.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>

#include "hs.h"
#include "pki.h"
#include "prov_fixture.h"

#define AE_ID "//sp.example.com/CSE-1/Cfork"
#define CHILDREN 3
#define SIGNS 10

static fx_t fx;
static SSL_CTX *sctx, *cctx;
static EVP_PKEY *skey, *spub;

static int setup(void **state)
{

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_EC2) || !OSSL_LIB_CTX_load_config(NULL, fx.conf))
        return -1;
    skey = fx_load(NULL, FX_EC_URI);
    if (skey == NULL || (spub = fx_public(skey, NULL)) == NULL
        || !fx_token_pki(&fx, "fork root", "server.example.com", AE_ID))
        return -1;
    if (!pki_writef(fx.dir, "s.policy", "local-id /CSE-1\ncert s.pem\nkey %s\nanchor R ca.pem\npeer " AE_ID " uri:" AE_ID
                    " R\n", fx.ecref)
        || !pki_writef(fx.dir, "c.policy", "local-id " AE_ID "\ncert c.pem\nkey " FX_EC2_URI
                       "\nanchor R ca.pem\npeer /CSE-1 dns:server.example.com R\n"))
        return -1;
    if ((sctx = hs_ctx_for(1, 0, 0, fx.dir, "s.policy")) == NULL || (cctx = hs_ctx_for(0, 0, 0, fx.dir, "c.policy")) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    EVP_PKEY_free(skey);
    EVP_PKEY_free(spub);
    fx_teardown(&fx);
    return 0;
}

static int handshake(void)
{
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-1" };
    hs_side s, c;
    int ok;

    ok = hs_run(&o, &s, &c) && s.ok && c.ok && s.peer_id != NULL && strcmp(s.peer_id, AE_ID) == 0
         && c.peer_id != NULL && strcmp(c.peer_id, "/CSE-1") == 0;
    if (!ok)
        fprintf(stderr, "[%d] handshake failed: server %s / client %s\n", (int)getpid(), s.ssl_error, c.ssl_error);
    hs_side_clear(&s);
    hs_side_clear(&c);
    return ok;
}

static void *signer(void *v)
{
    int *ok = v;
    *ok = 1;
    for (int i = 0; i < SIGNS && *ok; i++)
        *ok = fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL);
    return NULL;
}

/* a worker: two signing threads, handshakes, (grandchild) */
static int worker(int depth)
{
    pthread_t t[2];
    int ok[2], good = 1;

    if (!fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL) || !handshake())
        return 0;
    if (depth == 1) {   /* a worker of a worker, before this one starts threads */
        pid_t g = fork();
        int st;
        if (g == 0)
            _exit(worker(2) ? 0 : 1);
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            good = 0;
    }
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, signer, &ok[i]) != 0)
            return 0;
    good = handshake() && good;
    good = handshake() && good;
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        good = good && ok[i];
    }
    return good;
}

static void test_prefork(void **state)
{
    pid_t pid[CHILDREN];
    int st;

    assert_true(fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL));
    assert_true(handshake());
    for (int i = 0; i < CHILDREN; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0)
            _exit(worker(i == 0 ? 1 : 0) ? 0 : 1);
    }
    /* the parent keeps signing while its workers run */
    for (int i = 0; i < SIGNS; i++)
        assert_true(fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL));
    for (int i = 0; i < CHILDREN; i++) {
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "worker %d: %s %d\n", i, WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_true(fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL));
    assert_true(handshake());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefork),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
