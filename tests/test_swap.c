/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy swap under load (hs_load): two client threads do handshakes in a loop
 * (every other one resuming) against two server threads sharing one SSL_CTX, while
 * the main thread swaps the server's and the client's policies between two
 * equivalent ones with m2mtls_ctx_set_policy(). No handshake may fail and
 * every connection must carry its labels. Runs under ThreadSanitizer in CI.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <m2mtls/policy.h>

#define CLIENTS     2
#define ROUNDS      200
#define MIN_SWAPS   50

static char *dir;
static SSL_CTX *sctx, *cctx;
static m2mtls_policy *srv_pol[2], *cli_pol[2];

static m2mtls_policy *load(const char *name)
{
    char *p = pki_path(dir, name);
    m2mtls_policy *pol = m2mtls_policy_load(p);
    free(p);
    if (pol == NULL)
        fprintf(stderr, "loading %s: %s\n", name, m2mtls_last_error());
    return pol;
}

static int setup(void **state)
{
    (void)state;
    pki_cert root, server, client;
    dir = pki_tmpdir();
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_URI, "//sp.example.com/CSE-1/Cswap", 0 }, { 0, 0, 0 } };
    if (dir == NULL || !pki_root("Swap Root", &root)
        || !pki_leaf(&root, "server", s_srv, &server) || !pki_leaf(&root, "client", s_cli, &client))
        return -1;
    int ok = pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_cert(dir, "server.pem", server.cert)
        && pki_write_key(dir, "server.key", server.key)
        && pki_write_cert(dir, "client.pem", client.cert)
        && pki_write_key(dir, "client.key", client.key)
        /* two equivalent server policies, written differently */
        && pki_writef(dir, "srv-a.policy",
                      "local-id /CSE-1\ncert server.pem\nkey server.key\nanchor R root.pem\n"
                      "peer //sp.example.com/CSE-1/Cswap uri://sp.example.com/CSE-1/Cswap R\n")
        && pki_writef(dir, "srv-b.policy",
                      "# the same associations\nanchor R root.pem\n"
                      "peer //sp.example.com/CSE-1/Cswap uri://sp.example.com/CSE-1/Cswap R\n"
                      "peer /CSE-UNUSED dns:unused.example.com R\n"
                      "key server.key\ncert server.pem\nlocal-id /CSE-1\n")
        && pki_writef(dir, "cli-a.policy",
                      "local-id //sp.example.com/CSE-1/Cswap\ncert client.pem\nkey client.key\n"
                      "anchor R root.pem\npeer /CSE-1 dns:server.example.com R\n")
        && pki_writef(dir, "cli-b.policy",
                      "anchor R root.pem\npeer /CSE-1 dns:server.example.com R\n"
                      "peer /CSE-9 dns:unused.example.com R\n"
                      "cert client.pem\nkey client.key\nlocal-id //sp.example.com/CSE-1/Cswap\n");
    pki_cert_free(&root);
    pki_cert_free(&server);
    pki_cert_free(&client);
    if (!ok)
        return -1;
    srv_pol[0] = load("srv-a.policy");
    srv_pol[1] = load("srv-b.policy");
    cli_pol[0] = load("cli-a.policy");
    cli_pol[1] = load("cli-b.policy");
    if (!srv_pol[0] || !srv_pol[1] || !cli_pol[0] || !cli_pol[1])
        return -1;
    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    if (sctx == NULL || cctx == NULL
        || !m2mtls_ctx_apply_ts0003_profile(sctx) || !m2mtls_ctx_apply_ts0003_profile(cctx)
        || !m2mtls_ctx_install(sctx, srv_pol[0]) || !m2mtls_ctx_use_credential(sctx, srv_pol[0])
        || !m2mtls_ctx_install(cctx, cli_pol[0]) || !m2mtls_ctx_use_credential(cctx, cli_pol[0])) {
        fprintf(stderr, "context setup: %s\n", m2mtls_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    for (int i = 0; i < 2; i++) {
        m2mtls_policy_free(srv_pol[i]);
        m2mtls_policy_free(cli_pol[i]);
    }
    pki_dir_free(&dir);
    return 0;
}

static void test_swap_under_load(void **state)
{
    (void)state;
    /* every connection labelled on both ends, resumed or not */
    hs_load l = { .o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-1" },
                  .server_peer_id = "//sp.example.com/CSE-1/Cswap", .server_local_id = "/CSE-1",
                  .client_local_id = "//sp.example.com/CSE-1/Cswap",
                  .clients = CLIENTS, .rounds = ROUNDS, .max_failures = 20 };
    assert_true(hs_load_start(&l));

    /* swap until both clients are done (they go on until MIN_SWAPS swaps happened) */
    int n = 0;
    struct timespec pause = { 0, 2 * 1000 * 1000 };
    while (atomic_load(&l.client_conns) < CLIENTS * ROUNDS || n < MIN_SWAPS) {
        int k = (n + 1) % 2;
        assert_int_equal(m2mtls_ctx_set_policy(sctx, srv_pol[k]), 1);
        assert_int_equal(m2mtls_ctx_set_policy(cctx, cli_pol[k]), 1);
        if (++n >= MIN_SWAPS)
            atomic_store(&l.more, 0);
        nanosleep(&pause, NULL);
        if (atomic_load(&l.failures) > 20)
            break;
    }
    hs_load_wait(&l);
    print_message("swaps %d, client connections %d (resumed %d), server connections %d\n",
                  n, atomic_load(&l.client_conns), atomic_load(&l.resumed),
                  atomic_load(&l.server_conns));
    if (atomic_load(&l.failures) != 0)
        fail_msg("%d failed or unlabelled handshakes; first: %s", atomic_load(&l.failures),
                 l.first_failure);
    assert_true(n >= MIN_SWAPS);
    assert_true(atomic_load(&l.client_conns) >= CLIENTS * ROUNDS);
    assert_int_equal(atomic_load(&l.server_conns), atomic_load(&l.client_conns));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
