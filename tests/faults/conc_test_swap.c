/* SPDX-License-Identifier: Apache-2.0 */
/* Concurrency with keys in a token: three client threads do handshakes (every
 * other one resuming) against three server threads sharing one SSL_CTX; both
 * ends sign in the SoftHSM token through the provider (server key by key
 * reference file, client key by pkcs11: URI), a fourth thread signs with the
 * server's key directly, and meanwhile the main thread swaps the server's and
 * the client's policies (m2mtls_ctx_set_policy) and injects transient token
 * faults (one CKR_SESSION_HANDLE_INVALID / CKR_USER_NOT_LOGGED_IN /
 * CKR_DEVICE_ERROR on C_Sign at a time, through the fault module). No
 * handshake may fail, every connection carries its labels. Under TSan in CI.
 * (tests/test_swap.c does the swap with file keys; prov_test_threads two
 * signing threads without TLS.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <m2mtls/policy.h>

#include "faults_util.h"
#include "hs.h"
#include "pki.h"
#include "prov_fixture.h"

#define AE_ID "//sp.example.com/CSE-1/Cconc"
#define CLIENTS 3
#define ROUNDS 30
#define MIN_SWAPS 60

static fx_t fx;
static char faults[PATH_MAX + 16], counts[PATH_MAX + 16];
static SSL_CTX *sctx, *cctx;
static m2mtls_policy *srv_pol[2], *cli_pol[2];
static EVP_PKEY *skey, *spub;
static atomic_int stop, signatures;

/* a policy file's path, for m2mtls_policy_load */
static m2mtls_policy *load(const char *name)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    return m2mtls_policy_load(path);
}

static int setup(void **state)
{
    char conf[PATH_MAX + 16];

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_EC2))
        return -1;
    if (!ft_use_fault_module(fx.dir, fx.pinfile, FAULT_MODULE, faults, counts, conf)
        || !OSSL_LIB_CTX_load_config(NULL, conf))
        return -1;
    skey = fx_load(NULL, FX_EC_URI);
    if (skey == NULL || (spub = fx_public(skey, NULL)) == NULL
        || !fx_token_pki(&fx, "conc root", "server.example.com", AE_ID))
        return -1;
    /* two equivalent policies for each side, written differently */
    if (!pki_writef(fx.dir, "srv-a.policy", "local-id /CSE-1\ncert s.pem\nkey %s\nanchor R ca.pem\npeer " AE_ID
                    " uri:" AE_ID " R\n", fx.ecref)
        || !pki_writef(fx.dir, "srv-b.policy", "anchor R ca.pem\npeer " AE_ID " uri:" AE_ID
                       " R\npeer /CSE-9 dns:unused.example.com R\nkey %s\ncert s.pem\nlocal-id /CSE-1\n", fx.ecref)
        || !pki_writef(fx.dir, "cli-a.policy", "local-id " AE_ID "\ncert c.pem\nkey " FX_EC2_URI
                       "\nanchor R ca.pem\npeer /CSE-1 dns:server.example.com R\n")
        || !pki_writef(fx.dir, "cli-b.policy", "anchor R ca.pem\npeer /CSE-1 dns:server.example.com R\n"
                       "peer /CSE-9 dns:unused.example.com R\ncert c.pem\nkey " FX_EC2_URI "\nlocal-id " AE_ID "\n"))
        return -1;
    srv_pol[0] = load("srv-a.policy");
    srv_pol[1] = load("srv-b.policy");
    cli_pol[0] = load("cli-a.policy");
    cli_pol[1] = load("cli-b.policy");
    if (!srv_pol[0] || !srv_pol[1] || !cli_pol[0] || !cli_pol[1])
        return -1;
    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    if (sctx == NULL || cctx == NULL || !m2mtls_ctx_apply_ts0003_profile(sctx) || !m2mtls_ctx_apply_ts0003_profile(cctx)
        || !m2mtls_ctx_install(sctx, srv_pol[0]) || !m2mtls_ctx_use_credential(sctx, srv_pol[0])
        || !m2mtls_ctx_install(cctx, cli_pol[0]) || !m2mtls_ctx_use_credential(cctx, cli_pol[0])) {
        fprintf(stderr, "context setup: %s\n", m2mtls_last_error());
        ERR_print_errors_fp(stderr);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    for (int i = 0; i < 2; i++) {
        m2mtls_policy_free(srv_pol[i]);
        m2mtls_policy_free(cli_pol[i]);
    }
    EVP_PKEY_free(skey);
    EVP_PKEY_free(spub);
    fx_teardown(&fx);
    return 0;
}

static void *signer_main(void *v)
{
    hs_load *l = v;
    while (!atomic_load(&stop)) {
        if (!fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL))
            hs_load_failure(l, "direct signature", NULL);
        atomic_fetch_add(&signatures, 1);
    }
    return NULL;
}

static void test_swap_sign_faults(void **state)
{
    static const char *const rvs[] = { "CKR_SESSION_HANDLE_INVALID", "CKR_USER_NOT_LOGGED_IN", "CKR_DEVICE_ERROR" };
    /* every connection labelled on both ends, resumed or not */
    hs_load l = { .o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-1" }, .server_peer_id = AE_ID,
                  .clients = CLIENTS, .rounds = ROUNDS, .max_failures = 10 };
    pthread_t sg;
    int n = 0;
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    char rule[128];

    assert_true(hs_load_start(&l));
    assert_int_equal(pthread_create(&sg, NULL, signer_main, &l), 0);
    while (atomic_load(&l.client_conns) < CLIENTS * ROUNDS || n < MIN_SWAPS) {
        int k = (n + 1) % 2;
        assert_int_equal(m2mtls_ctx_set_policy(sctx, srv_pol[k]), 1);
        assert_int_equal(m2mtls_ctx_set_policy(cctx, cli_pol[k]), 1);
        if (++n >= MIN_SWAPS)
            atomic_store(&l.more, 0);
        /* A transient fault now and then (the sequence number makes each rule
         * new): every 20th swap, 9 in all, so that one signature meets at
         * most one or two of them; three in a row would exhaust its retries
         * (by design: a token failing that often is not transient). */
        if (n % 20 == 0 && n / 20 <= 9) {
            snprintf(rule, sizeof(rule), "# %d\nC_Sign %s count=1\n", n, rvs[(n / 20) % 3]);
            assert_true(ft_faults(faults, rule));
        }
        nanosleep(&pause, NULL);
        if (atomic_load(&l.failures) > 10)
            break;
    }
    hs_load_wait(&l);
    atomic_store(&stop, 1);
    pthread_join(sg, NULL);
    assert_true(ft_faults(faults, ""));
    fprintf(stderr, "  swaps %d, client connections %d (resumed %d), server connections %d, direct signatures %d\n",
            n, atomic_load(&l.client_conns), atomic_load(&l.resumed), atomic_load(&l.server_conns),
            atomic_load(&signatures));
    {
        unsigned long calls, inj;
        ft_count(counts, "C_Sign", &calls, &inj);
        fprintf(stderr, "  C_Sign calls %lu, faults injected and recovered %lu\n", calls, inj);
        assert_true(inj >= 2);
    }
    if (atomic_load(&l.failures) != 0)
        fail_msg("%d failures; first: %s", atomic_load(&l.failures), l.first_failure);
    assert_true(n >= MIN_SWAPS);
    assert_int_equal(atomic_load(&l.server_conns), atomic_load(&l.client_conns));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_sign_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
