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
static atomic_int stop, swaps, failures, server_conns, client_conns, resumed, signatures;
static pthread_mutex_t msg_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[1024];

static void record_failure(const char *who, const hs_side *s)
{
    atomic_fetch_add(&failures, 1);
    pthread_mutex_lock(&msg_lock);
    if (first_failure[0] == '\0')
        snprintf(first_failure, sizeof first_failure, "%s: ok=%d peer=%s reason=%s ssl=%s", who, s ? s->ok : 0,
                 s && s->peer_id ? s->peer_id : "(null)", s && s->reason ? s->reason : "(null)",
                 s ? s->ssl_error : "-");
    pthread_mutex_unlock(&msg_lock);
}

static char *in_dir(const char *name)
{
    static char buf[4][PATH_MAX + 64];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", fx.dir, name);
    return buf[i];
}

static int setup(void **state)
{
    char conf[PATH_MAX + 16], body[PATH_MAX * 2 + 512];
    EVP_PKEY *ca_key, *ckey;
    X509 *ca, *xs, *xc;

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_EC2))
        return -1;
    if (!ft_use_fault_module(fx.dir, fx.pinfile, FAULT_MODULE, faults, counts, conf)
        || !OSSL_LIB_CTX_load_config(NULL, conf))
        return -1;
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    skey = fx_load(NULL, FX_EC_URI);
    ckey = fx_load(NULL, FX_EC2_URI);
    if (ca_key == NULL || skey == NULL || ckey == NULL || (spub = fx_public(skey, NULL)) == NULL)
        return -1;
    ca = fx_issue(ca_key, "conc root", NULL, NULL, ca_key);
    xs = fx_issue(skey, "server", "DNS:server.example.com", ca, ca_key);
    xc = fx_issue(ckey, "Cconc", "URI:" AE_ID, ca, ca_key);
    if (xs == NULL || xc == NULL || !fx_write_pem_cert(in_dir("ca.pem"), ca) || !fx_write_pem_cert(in_dir("s.pem"), xs)
        || !fx_write_pem_cert(in_dir("c.pem"), xc))
        return -1;
    X509_free(ca);
    X509_free(xs);
    X509_free(xc);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ckey);
    /* two equivalent policies for each side, written differently */
    snprintf(body, sizeof(body), "local-id /CSE-1\ncert s.pem\nkey %s\nanchor R ca.pem\npeer " AE_ID " uri:" AE_ID " R\n",
             fx.ecref);
    if (!ft_write_file(in_dir("srv-a.policy"), body))
        return -1;
    snprintf(body, sizeof(body), "anchor R ca.pem\npeer " AE_ID " uri:" AE_ID " R\npeer /CSE-9 dns:unused.example.com R\n"
             "key %s\ncert s.pem\nlocal-id /CSE-1\n", fx.ecref);
    if (!ft_write_file(in_dir("srv-b.policy"), body)
        || !ft_write_file(in_dir("cli-a.policy"), "local-id " AE_ID "\ncert c.pem\nkey " FX_EC2_URI
                                                  "\nanchor R ca.pem\npeer /CSE-1 dns:server.example.com R\n")
        || !ft_write_file(in_dir("cli-b.policy"), "anchor R ca.pem\npeer /CSE-1 dns:server.example.com R\n"
                                                  "peer /CSE-9 dns:unused.example.com R\ncert c.pem\nkey " FX_EC2_URI
                                                  "\nlocal-id " AE_ID "\n"))
        return -1;
    srv_pol[0] = m2mtls_policy_load(in_dir("srv-a.policy"));
    srv_pol[1] = m2mtls_policy_load(in_dir("srv-b.policy"));
    cli_pol[0] = m2mtls_policy_load(in_dir("cli-a.policy"));
    cli_pol[1] = m2mtls_policy_load(in_dir("cli-b.policy"));
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

static void *server_main(void *v)
{
    int lfd = *(int *)v;
    while (!atomic_load(&stop)) {
        hs_side s;
        int r = hs_server_conn(sctx, lfd, 0, 50, 0, &s);
        if (r < 0) {
            record_failure("server socket", &s);
            hs_side_clear(&s);
            break;
        }
        if (r == 1) {
            atomic_fetch_add(&server_conns, 1);
            if (!s.ok || s.peer_id == NULL || strcmp(s.peer_id, AE_ID) != 0)
                record_failure("server", &s);
        }
        hs_side_clear(&s);
    }
    return NULL;
}

static void *client_main(void *v)
{
    int port = *(int *)v;
    SSL_SESSION *sess = NULL;
    for (int i = 0; i < ROUNDS || atomic_load(&swaps) < MIN_SWAPS; i++) {
        hs_side c;
        hs_client_conn(cctx, port, 0, "/CSE-1", (i % 2) ? sess : NULL, 0, &c);
        atomic_fetch_add(&client_conns, 1);
        if (c.reused)
            atomic_fetch_add(&resumed, 1);
        if (!c.ok || c.peer_id == NULL || strcmp(c.peer_id, "/CSE-1") != 0)
            record_failure("client", &c);
        if (c.session != NULL) {
            SSL_SESSION_free(sess);
            sess = c.session;
            c.session = NULL;
        }
        hs_side_clear(&c);
        if (atomic_load(&failures) > 10)
            break;
    }
    SSL_SESSION_free(sess);
    return NULL;
}

static void *signer_main(void *v)
{
    (void)v;
    while (!atomic_load(&stop)) {
        if (!fx_sign_verify(NULL, skey, NULL, spub, "SHA256", NULL))
            record_failure("direct signature", NULL);
        atomic_fetch_add(&signatures, 1);
    }
    return NULL;
}

static void test_swap_sign_faults(void **state)
{
    static const char *const rvs[] = { "CKR_SESSION_HANDLE_INVALID", "CKR_USER_NOT_LOGGED_IN", "CKR_DEVICE_ERROR" };
    pthread_t st[CLIENTS], ct[CLIENTS], sg;
    int lfd[CLIENTS], port[CLIENTS], n = 0;
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    char rule[128];

    for (int i = 0; i < CLIENTS; i++) {
        assert_true((lfd[i] = hs_listen(0, &port[i])) >= 0);
        assert_int_equal(pthread_create(&st[i], NULL, server_main, &lfd[i]), 0);
    }
    assert_int_equal(pthread_create(&sg, NULL, signer_main, NULL), 0);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(pthread_create(&ct[i], NULL, client_main, &port[i]), 0);
    while (atomic_load(&client_conns) < CLIENTS * ROUNDS || n < MIN_SWAPS) {
        int k = (n + 1) % 2;
        assert_int_equal(m2mtls_ctx_set_policy(sctx, srv_pol[k]), 1);
        assert_int_equal(m2mtls_ctx_set_policy(cctx, cli_pol[k]), 1);
        atomic_store(&swaps, ++n);
        /* A transient fault now and then (the sequence number makes each rule
         * new): every 20th swap, 9 in all, so that one signature meets at
         * most one or two of them; three in a row would exhaust its retries
         * (by design: a token failing that often is not transient). */
        if (n % 20 == 0 && n / 20 <= 9) {
            snprintf(rule, sizeof(rule), "# %d\nC_Sign %s count=1\n", n, rvs[(n / 20) % 3]);
            assert_true(ft_faults(faults, rule));
        }
        nanosleep(&pause, NULL);
        if (atomic_load(&failures) > 10)
            break;
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(ct[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(sg, NULL);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(st[i], NULL);
        close(lfd[i]);
    }
    assert_true(ft_faults(faults, ""));
    fprintf(stderr, "  swaps %d, client connections %d (resumed %d), server connections %d, direct signatures %d\n",
            n, atomic_load(&client_conns), atomic_load(&resumed), atomic_load(&server_conns),
            atomic_load(&signatures));
    {
        unsigned long calls, inj;
        ft_count(counts, "C_Sign", &calls, &inj);
        fprintf(stderr, "  C_Sign calls %lu, faults injected and recovered %lu\n", calls, inj);
        assert_true(inj >= 2);
    }
    if (atomic_load(&failures) != 0)
        fail_msg("%d failures; first: %s", atomic_load(&failures), first_failure);
    assert_true(n >= MIN_SWAPS);
    assert_int_equal(atomic_load(&server_conns), atomic_load(&client_conns));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_sign_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
