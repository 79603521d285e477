/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Real handshakes over loopback sockets with the verifier installed on both
 * sides: TLS 1.2 (ECDHE-ECDSA-AES128-SHA256), TLS 1.3, DTLS 1.2 over UDP
 * (ECDHE-ECDSA-AES128-CCM8); labels, SNI, rejection on either side with a
 * precise reason, application verify callbacks, resumption (TLS 1.3 tickets,
 * TLS 1.2 tickets, TLS 1.2 session-ID cache, DTLS 1.2) keeping the labels,
 * and resumption that must not survive a policy change or cross associations.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <m2mtls/policy.h>

static char *dir;

static int setup(void **state)
{
    pki_cert root, look, other, server, server_look, server2, client, client_two, intruder, inter, client_i, ae;
    *state = dir = pki_tmpdir(); /* for hs_test_dir_teardown */
    if (dir == NULL || !pki_root("Handshake Root", &root) || !pki_root("Handshake Root", &look)
        || !pki_root("Other Root", &other))
        return -1;
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_srv2[] = { { PKI_SAN_DNS, "server2.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli_two[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { PKI_SAN_DNS, "alt.example.com", 0 },
                            { 0, 0, 0 } };
    pki_san s_int[] = { { PKI_SAN_DNS, "intruder.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_ae[] = { { PKI_SAN_URI, "//sp.example.com/AE/Cae1", 0 }, { 0, 0, 0 } };
    if (!pki_leaf(&root, "server", s_srv, &server) || !pki_leaf(&look, "server", s_srv, &server_look)
        || !pki_leaf(&root, "server2", s_srv2, &server2) || !pki_leaf(&root, "client", s_cli, &client)
        || !pki_leaf(&root, "client", s_cli_two, &client_two)
        || !pki_leaf(&root, "intruder", s_int, &intruder)
        || !pki_intermediate("Handshake Intermediate", &root, &inter)
        || !pki_leaf(&inter, "client", s_cli, &client_i)
        || !pki_leaf(&root, "Cae1", s_ae, &ae))
        return -1;
    static const char srv_common[] =
        "local-id /CSE-SRV\n"
        "anchor ALPHA root.pem\n";
    int ok = pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_certs(dir, "server.pem", server.cert, root.cert, (X509 *)NULL)
        && pki_write_key(dir, "server.key", server.key)
        && pki_write_certs(dir, "server-look.pem", server_look.cert, look.cert, (X509 *)NULL)
        && pki_write_key(dir, "server-look.key", server_look.key)
        && pki_write_cert(dir, "server2.pem", server2.cert)
        && pki_write_key(dir, "server2.key", server2.key)
        && pki_write_cert(dir, "client.pem", client.cert)
        && pki_write_key(dir, "client.key", client.key)
        && pki_write_cert(dir, "intruder.pem", intruder.cert)
        && pki_write_key(dir, "intruder.key", intruder.key)
        && pki_writef(dir, "srv.policy", "%scert server.pem\nkey server.key\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA as=/CSE-SRV-AS\n"
                      "peer /CSE-OTHER dns:other.example.com ALPHA\n", srv_common)
        && pki_writef(dir, "srv-removed.policy", "%scert server.pem\nkey server.key\n"
                      "peer /CSE-OTHER dns:other.example.com ALPHA\n", srv_common)
        /* srv.policy changed in one thing each (resumption under a new policy) */
        && pki_writef(dir, "srv-same.policy", "%scert server.pem\nkey server.key\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA as=/CSE-SRV-AS\n"
                      "peer /CSE-OTHER dns:other.example.com ALPHA\n", srv_common)
        && pki_write_cert(dir, "other-root.pem", other.cert)
        && pki_writef(dir, "srv-anchor.policy", "local-id /CSE-SRV\nanchor ALPHA other-root.pem\n"
                      "cert server.pem\nkey server.key\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA as=/CSE-SRV-AS\n")
        && pki_writef(dir, "srv-name.policy", "%scert server.pem\nkey server.key\n"
                      "peer /CSE-CLI dns:renamed.example.com ALPHA as=/CSE-SRV-AS\n", srv_common)
        && pki_writef(dir, "srv-ambiguous.policy", "%scert server.pem\nkey server.key\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA as=/CSE-SRV-AS\n"
                      "peer /CSE-ALT dns:alt.example.com ALPHA\n", srv_common)
        && pki_write_cert(dir, "client-two.pem", client_two.cert)
        && pki_write_key(dir, "client-two.key", client_two.key)
        && pki_writef(dir, "cli-two.policy",
                      "local-id /CSE-CLI\ncert client-two.pem\nkey client-two.key\n"
                      "anchor ALPHA root.pem\n"
                      "peer /CSE-SRV dns:server.example.com ALPHA as=/CSE-CLI-AS\n")
        && pki_writef(dir, "cli-anchor.policy",
                      "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ALPHA other-root.pem\n"
                      "peer /CSE-SRV dns:server.example.com ALPHA as=/CSE-CLI-AS\n")
        && pki_writef(dir, "srv-look.policy", "%scert server-look.pem\nkey server-look.key\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA as=/CSE-SRV-AS\n", srv_common)
        && pki_writef(dir, "cli.policy",
                      "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ALPHA root.pem\n"
                      "peer /CSE-SRV dns:server.example.com ALPHA as=/CSE-CLI-AS "
                      "at=tls://127.0.0.1:4433\n"
                      "peer /CSE-SRV2 dns:server2.example.com ALPHA\n")
        && pki_write_certs(dir, "client-chain.pem", client_i.cert, inter.cert, (X509 *)NULL)
        && pki_write_key(dir, "client-chain.key", client_i.key)
        && pki_write_cert(dir, "ae.pem", ae.cert)
        && pki_write_key(dir, "ae.key", ae.key)
        && pki_writef(dir, "cli-chain.policy",
                      "local-id /CSE-CLI\ncert client-chain.pem\nkey client-chain.key\n"
                      "anchor ALPHA root.pem\n"
                      "peer /CSE-SRV dns:server.example.com ALPHA as=/CSE-CLI-AS\n")
        && pki_writef(dir, "srv-pfc.policy", "%scert server.pem\nkey server.key\n"
                      "peers-from-cert ALPHA uri-prefix://sp.example.com/AE/\n", srv_common)
        && pki_writef(dir, "ae.policy",
                      "local-id //sp.example.com/AE/Cae1\ncert ae.pem\nkey ae.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-SRV dns:server.example.com ALPHA\n")
        && pki_writef(dir, "intruder.policy",
                      "local-id /CSE-INTRUDER\ncert intruder.pem\nkey intruder.key\n"
                      "anchor ALPHA root.pem\n"
                      "peer /CSE-SRV dns:server.example.com ALPHA\n");
    pki_cert *all[] = { &root, &look, &other, &server, &server_look, &server2, &client, &client_two, &intruder,
                        &inter, &client_i, &ae };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    return ok ? 0 : -1;
}

/* ---- contexts -------------------------------------------------------------- */


/* A context with the TS-0003 profile, not yet installed. */
static SSL_CTX *new_ctx(int server, const hs_mode *m)
{
    return hs_test_mode_ctx(server, m, dir, NULL);
}

static void install(SSL_CTX *ctx, const char *policy)
{
    if (!hs_ctx_install(ctx, dir, policy))
        fail_msg("installing %s: %s", policy, m2mtls_last_error());
}

static SSL_CTX *ctx_with(int server, const hs_mode *m, const char *policy)
{
    return hs_test_mode_ctx(server, m, dir, policy);
}

static void run(SSL_CTX *sctx, SSL_CTX *cctx, const hs_mode *m, const char *peer, SSL_SESSION *sess,
                hs_side *s, hs_side *c)
{
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = peer,
                  .session = sess };
    hs_test_run(&o, m->name, s, c);
    assert_true(c->set_peer_ok);
}

static void expect_ok(const hs_mode *m, const hs_side *s, const hs_side *c)
{
    hs_expect_ok(m->name, s, c);
}

/* The labels of a connection between cli.policy and srv.policy. */
static void expect_labels(const hs_side *s, const hs_side *c)
{
    assert_str_eq(s->peer_id, "/CSE-CLI");
    assert_str_eq(s->local_id, "/CSE-SRV-AS");
    assert_str_eq(s->cert_name, "dns:client.example.com");
    assert_str_eq(s->anchor, "ALPHA");
    assert_null(s->reason);
    assert_int_equal(s->reject_code, M2MTLS_REJECT_NONE);
    assert_str_eq(c->peer_id, "/CSE-SRV");
    assert_str_eq(c->local_id, "/CSE-CLI-AS");
    assert_str_eq(c->cert_name, "dns:server.example.com");
    assert_str_eq(c->anchor, "ALPHA");
    assert_null(c->reason);
    assert_int_equal(c->reject_code, M2MTLS_REJECT_NONE);
}

/* ---- the application's client hello callback, chained ------------------------ */

static atomic_int hello_calls;

static int app_hello(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    atomic_fetch_add(&hello_calls, 1);
    if (arg != NULL) { /* refuse, the way an application may */
        *alert = SSL_AD_ACCESS_DENIED;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Registered with m2mtls_ctx_set_client_hello_cb, the application's callback
 * runs on every ClientHello, the association and its labels are as without it, and a
 * refusal from it ends the handshake. */
static void test_app_client_hello_chained(void **state)
{
    (void)state;
    for (int refuse = 0; refuse < 2; refuse++) {
        SSL_CTX *sctx = ctx_with(1, &HS_TLS13, "srv.policy");
        SSL_CTX *cctx = ctx_with(0, &HS_TLS13, "cli.policy");
        assert_int_equal(m2mtls_ctx_set_client_hello_cb(sctx, app_hello, refuse ? (void *)1 : NULL), 1);
        atomic_store(&hello_calls, 0);
        hs_side s, c;
        run(sctx, cctx, &HS_TLS13, "/CSE-SRV", NULL, &s, &c);
        assert_true(atomic_load(&hello_calls) >= 1);
        if (refuse) {
            assert_false(s.handshake_ok);
            assert_null(s.peer_id);
        } else {
            expect_ok(&HS_TLS13, &s, &c);
            expect_labels(&s, &c);
        }
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    /* Only on a context m2mtls_ctx_install prepared. */
    SSL_CTX *plain = SSL_CTX_new(TLS_server_method());
    assert_int_equal(m2mtls_ctx_set_client_hello_cb(plain, app_hello, NULL), 0);
    assert_contains(m2mtls_last_error(), "m2mtls_ctx_install");
    SSL_CTX_free(plain);
}

/* ---- full handshakes --------------------------------------------------------- */

static void full_handshake(const hs_mode *m, const char *cipher, int version)
{
    SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
    SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
    hs_side s, c;
    run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
    expect_ok(m, &s, &c);
    expect_labels(&s, &c);
    assert_int_equal(s.version, version);
    assert_int_equal(c.version, version);
    if (cipher != NULL) {
        assert_str_eq(s.cipher, cipher);
        assert_str_eq(c.cipher, cipher);
    }
    /* m2mtls_ssl_set_peer sets SNI to the peer's dNSName */
    assert_str_eq(s.sni, "server.example.com");
    assert_false(s.reused);
    assert_false(c.reused);
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_tls12(void **state)
{
    (void)state;
    full_handshake(&HS_TLS12, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION);
}

static void test_tls13(void **state)
{
    (void)state;
    full_handshake(&HS_TLS13, NULL, TLS1_3_VERSION);
}

static void test_dtls12(void **state)
{
    (void)state;
    full_handshake(&HS_DTLS12, "ECDHE-ECDSA-AES128-CCM8", DTLS1_2_VERSION);
}

static void test_set_peer_unknown(void **state)
{
    (void)state;
    SSL_CTX *cctx = ctx_with(0, &HS_TLS13, "cli.policy");
    SSL *ssl = SSL_new(cctx);
    assert_non_null(ssl);
    assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-NOPE"), 0);
    assert_null(m2mtls_ssl_peer_id(ssl));
    assert_null(m2mtls_ssl_reject_reason(ssl));
    SSL_free(ssl);
    SSL_CTX_free(cctx);
}

/* ---- rejections ---------------------------------------------------------------- */


/* The server refuses a client certificate whose name it does not know. */
static void test_reject_server_side(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_with(0, m, "intruder.policy");
        hs_side s, c;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        if (s.ok || c.ok)
            fail_msg("%s: intruder accepted (server ok=%d peer=%s, client ok=%d)", m->name, s.ok,
                     s.peer_id ? s.peer_id : "-", c.ok);
        assert_false(s.handshake_ok);
        assert_null(s.peer_id);
        assert_non_null(s.reason);
        assert_contains(s.reason, "no association");
        assert_int_equal(s.reject_code, M2MTLS_REJECT_NAME);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* The client refuses a server certificate from a look-alike root. */
static void test_reject_client_side(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv-look.policy");
        SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
        hs_side s, c;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        if (s.ok || c.ok)
            fail_msg("%s: look-alike server accepted (client ok=%d peer=%s, server ok=%d)",
                     m->name, c.ok, c.peer_id ? c.peer_id : "-", s.ok);
        assert_false(c.handshake_ok);
        assert_false(s.handshake_ok);
        assert_null(c.peer_id);
        assert_non_null(c.reason);
        assert_contains(c.reason, "ALPHA");
        assert_int_equal(c.reject_code, M2MTLS_REJECT_ROOT_OF_TRUST);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* An initiator whose application set SSL_VERIFY_NONE after installing still
 * aborts the handshake with a server its association refuses. */
static void test_initiator_verify_none_still_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv-look.policy");
        SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
        hs_side s, c;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        if (c.handshake_ok)
            fail_msg("%s: SSL_VERIFY_NONE let the client complete a handshake with a look-alike server", m->name);
        assert_null(c.peer_id);
        assert_non_null(c.reason);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* A client that sends no certificate at all. */
static void test_no_client_certificate(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        SSL_CTX *cctx = new_ctx(0, m); /* no verifier, no credential */
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
        hs_side s, c;
        run(sctx, cctx, m, NULL, NULL, &s, &c);
        if (s.ok || c.ok)
            fail_msg("%s: a client without a certificate was accepted", m->name);
        assert_false(s.handshake_ok);
        assert_null(s.peer_id);
        assert_non_null(s.reason);
        assert_int_equal(s.reject_code, M2MTLS_REJECT_NO_CERTIFICATE);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* ---- application verify callbacks ---------------------------------------------- */

static atomic_int calls_a, calls_b, calls_reject;

static int count_a(int ok, X509_STORE_CTX *x)
{
    (void)x;
    atomic_fetch_add(&calls_a, 1);
    return ok;
}

static int count_b(int ok, X509_STORE_CTX *x)
{
    (void)x;
    atomic_fetch_add(&calls_b, 1);
    return ok;
}

static int refuse(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    atomic_fetch_add(&calls_reject, 1);
    return 0;
}

#define SERVER_VERIFY (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT)

static void test_app_callback_before_install(void **state)
{
    (void)state;
    const hs_mode *m = &HS_TLS13;
    SSL_CTX *sctx = new_ctx(1, m);
    SSL_CTX_set_verify(sctx, SERVER_VERIFY, count_a);
    install(sctx, "srv.policy");
    SSL_CTX *cctx = new_ctx(0, m);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, count_b);
    install(cctx, "cli.policy");
    atomic_store(&calls_a, 0);
    atomic_store(&calls_b, 0);
    hs_side s, c;
    run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
    expect_ok(m, &s, &c);
    expect_labels(&s, &c);
    assert_true(atomic_load(&calls_a) > 0);
    assert_true(atomic_load(&calls_b) > 0);
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_app_callback_after_install(void **state)
{
    (void)state;
    const hs_mode *m = &HS_TLS12;
    SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
    SSL_CTX_set_verify(sctx, SERVER_VERIFY, count_a);
    SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, count_b);
    atomic_store(&calls_a, 0);
    atomic_store(&calls_b, 0);
    hs_side s, c;
    run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
    expect_ok(m, &s, &c);
    expect_labels(&s, &c);
    assert_true(atomic_load(&calls_a) > 0);
    assert_true(atomic_load(&calls_b) > 0);
    hs_side_pair_clear(&s, &c);

    /* a callback set after install must not switch the policy off */
    SSL_CTX *ictx = ctx_with(0, m, "intruder.policy");
    atomic_store(&calls_a, 0);
    run(sctx, ictx, m, "/CSE-SRV", NULL, &s, &c);
    if (s.ok)
        fail_msg("the intruder was accepted after SSL_CTX_set_verify replaced the callback");
    assert_null(s.peer_id);
    assert_non_null(s.reason);
    assert_contains(s.reason, "no association");
    hs_side_pair_clear(&s, &c);

    SSL_CTX_free(ictx);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_app_callback_refuses(void **state)
{
    (void)state;
    for (int before = 0; before < 2; before++) {
        const hs_mode *m = before ? &HS_TLS12 : &HS_TLS13;
        SSL_CTX *sctx = new_ctx(1, m);
        if (before)
            SSL_CTX_set_verify(sctx, SERVER_VERIFY, refuse);
        install(sctx, "srv.policy");
        if (!before)
            SSL_CTX_set_verify(sctx, SERVER_VERIFY, refuse);
        SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
        atomic_store(&calls_reject, 0);
        hs_side s, c;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        if (s.ok || c.ok)
            fail_msg("%s: handshake succeeded although the application callback (set %s "
                     "install) returned 0", m->name, before ? "before" : "after");
        assert_false(s.handshake_ok);
        assert_null(s.peer_id);
        assert_true(atomic_load(&calls_reject) > 0);
        assert_int_equal(s.reject_code, M2MTLS_REJECT_APPLICATION);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);

        /* the same on the client side */
        sctx = ctx_with(1, m, "srv.policy");
        cctx = new_ctx(0, m);
        if (before)
            SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, refuse);
        install(cctx, "cli.policy");
        if (!before)
            SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, refuse);
        atomic_store(&calls_reject, 0);
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        if (s.ok || c.ok)
            fail_msg("%s: client accepted although its callback returned 0", m->name);
        assert_false(c.handshake_ok);
        assert_null(c.peer_id);
        assert_true(atomic_load(&calls_reject) > 0);
        assert_int_equal(c.reject_code, M2MTLS_REJECT_APPLICATION);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* The client's `cert` file carries its intermediate: the server builds the path. */
static void test_client_chain_from_cert_file(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_with(0, m, "cli-chain.policy");
        hs_side s, c;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        expect_ok(m, &s, &c);
        expect_labels(&s, &c);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* A responder that takes the AE-ID from the certificate, full and resumed. */
static void test_peers_from_cert_handshake(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12, &HS_TLS12_SID, &HS_DTLS12 };
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv-pfc.policy");
        SSL_CTX *cctx = ctx_with(0, m, "ae.policy");
        hs_side s, c, s2, c2;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        expect_ok(m, &s, &c);
        assert_str_eq(s.peer_id, "//sp.example.com/AE/Cae1");
        assert_str_eq(s.local_id, "/CSE-SRV");
        assert_str_eq(s.anchor, "ALPHA");
        assert_str_eq(c.peer_id, "/CSE-SRV");
        assert_str_eq(c.local_id, "//sp.example.com/AE/Cae1");
        run(sctx, cctx, m, "/CSE-SRV", c.session, &s2, &c2);
        expect_ok(m, &s2, &c2);
        if (!s2.reused || !c2.reused)
            fail_msg("%s: not resumed (server %d, client %d)", m->name, s2.reused, c2.reused);
        assert_str_eq(s2.peer_id, "//sp.example.com/AE/Cae1");
        assert_str_eq(s2.local_id, "/CSE-SRV");
        assert_str_eq(c2.peer_id, "/CSE-SRV");
        hs_side *all[] = { &s, &c, &s2, &c2 };
        for (size_t k = 0; k < 4; k++)
            hs_side_clear(all[k]);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* m2mtls_ctx_set_policy() governs the next full handshakes, both ways. */
static void test_set_policy_full_handshakes(void **state)
{
    (void)state;
    const hs_mode *m = &HS_TLS13;
    SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
    SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
    m2mtls_policy *removed = hs_policy_load(dir, "srv-removed.policy");
    m2mtls_policy *full = hs_policy_load(dir, "srv.policy");
    hs_side s, c;

    assert_int_equal(m2mtls_ctx_set_policy(sctx, removed), 1);
    run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
    if (s.ok)
        fail_msg("accepted by a policy that does not list the client: %s", s.peer_id);
    assert_null(s.peer_id);
    assert_contains(s.reason, "no association");
    hs_side_pair_clear(&s, &c);

    assert_int_equal(m2mtls_ctx_set_policy(sctx, full), 1);
    run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
    expect_ok(m, &s, &c);
    expect_labels(&s, &c);
    hs_side_pair_clear(&s, &c);

    /* the caller's references stay valid and are the caller's to drop */
    assert_int_equal(m2mtls_policy_peer_count(removed), 1);
    m2mtls_policy_free(removed);
    m2mtls_policy_free(full);

    /* a context without m2mtls_ctx_install */
    SSL_CTX *plain = SSL_CTX_new(TLS_server_method());
    m2mtls_policy *p = hs_policy_load(dir, "srv.policy");
    assert_int_equal(m2mtls_ctx_set_policy(plain, p), 0);
    m2mtls_policy_free(p);
    SSL_CTX_free(plain);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* ---- resumption ------------------------------------------------------------------ */

static void resume(const hs_mode *m)
{
    SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
    SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
    hs_side s, c, s2, c2;
    run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
    expect_ok(m, &s, &c);
    expect_labels(&s, &c);
    assert_non_null(c.session);
    assert_true(SSL_SESSION_is_resumable(c.session));
    if (m->options & SSL_OP_NO_TICKET)
        assert_false(SSL_SESSION_has_ticket(c.session));
    else
        assert_true(SSL_SESSION_has_ticket(c.session));

    run(sctx, cctx, m, "/CSE-SRV", c.session, &s2, &c2);
    expect_ok(m, &s2, &c2);
    if (!s2.reused || !c2.reused)
        fail_msg("%s: the second connection was not resumed (server %d, client %d)", m->name,
                 s2.reused, c2.reused);
    expect_labels(&s2, &c2);

    /* and once more from the resumed connection's session */
    hs_side s3, c3;
    SSL_SESSION *again = c2.session ? c2.session : c.session;
    run(sctx, cctx, m, "/CSE-SRV", again, &s3, &c3);
    expect_ok(m, &s3, &c3);
    assert_true(s3.reused && c3.reused);
    expect_labels(&s3, &c3);

    hs_side *all[] = { &s, &c, &s2, &c2, &s3, &c3 };
    for (size_t i = 0; i < 6; i++)
        hs_side_clear(all[i]);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_resume_tls13_ticket(void **state)
{
    (void)state;
    resume(&HS_TLS13);
}

static void test_resume_tls12_ticket(void **state)
{
    (void)state;
    resume(&HS_TLS12);
}

static void test_resume_tls12_session_id(void **state)
{
    (void)state;
    resume(&HS_TLS12_SID);
}

static void test_resume_dtls12(void **state)
{
    (void)state;
    resume(&HS_DTLS12);
}

/* A session made under srv.policy, offered again after the server's policy
 * was replaced by AFTER (a new policy object each time): with the same
 * content it resumes with the same labels; with the anchor's certificate, the
 * association's name or a second association matching another name of the
 * certificate changed, or the association removed, it is not resumed and the
 * full handshake that follows is refused as well. */
static void resume_under(const char *client_policy, const char *after, int resumes)
{
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12, &HS_TLS12_SID, &HS_DTLS12 };
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_with(0, m, client_policy);
        hs_side s, c, s2, c2;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        expect_ok(m, &s, &c);
        assert_non_null(c.session);
        m2mtls_policy *p = hs_policy_load(dir, after);
        assert_int_equal(m2mtls_ctx_set_policy(sctx, p), 1);
        m2mtls_policy_free(p);
        run(sctx, cctx, m, "/CSE-SRV", c.session, &s2, &c2);
        if (resumes) {
            expect_ok(m, &s2, &c2);
            if (!s2.reused || !c2.reused)
                fail_msg("%s: %s: not resumed (server %d, client %d)", m->name, after, s2.reused, c2.reused);
            expect_labels(&s2, &c2);
        } else {
            if (s2.peer_id != NULL)
                fail_msg("%s: %s: labelled '%s' (resumed=%d)", m->name, after, s2.peer_id, s2.reused);
            if (s2.ok || s2.handshake_ok || c2.ok)
                fail_msg("%s: %s: the handshake completed (resumed=%d)", m->name, after, s2.reused);
            assert_false(s2.reused);
        }
        hs_side *all[] = { &s, &c, &s2, &c2 };
        for (size_t k = 0; k < 4; k++)
            hs_side_clear(all[k]);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* After the server's policy stops listing the client, its old session must
 * not give an authenticated connection. */
static void test_resume_after_peer_removed(void **state)
{
    (void)state;
    resume_under("cli.policy", "srv-removed.policy", 0);
}

static void test_resume_under_same_policy_reloaded(void **state)
{
    (void)state;
    resume_under("cli.policy", "srv-same.policy", 1);
}

static void test_resume_after_anchor_changed(void **state)
{
    (void)state;
    resume_under("cli.policy", "srv-anchor.policy", 0);
}

static void test_resume_after_name_changed(void **state)
{
    (void)state;
    resume_under("cli.policy", "srv-name.policy", 0);
}

static void test_resume_after_association_made_ambiguous(void **state)
{
    (void)state;
    resume_under("cli-two.policy", "srv-same.policy", 1); /* one of its names matches: resumes */
    resume_under("cli-two.policy", "srv-ambiguous.policy", 0);
}

/* The client re-checks the session it offers when its own policy changed:
 * one SSL object reused after SSL_clear, first resumed under cli.policy, then
 * offered a resumable session once the anchor of /CSE-SRV is another root. */
static void test_resume_client_policy_changed_same_ssl(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12, &HS_DTLS12 };
    for (size_t i = 0; i < 3; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
        hs_side s, c, s2, c2, s3, c3;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        expect_ok(m, &s, &c);
        SSL *ssl = SSL_new(cctx);
        assert_non_null(ssl);
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .session = c.session, .client_ssl = ssl, .keep = 1 };
        assert_true(hs_run(&o, &s2, &c2));
        expect_ok(m, &s2, &c2);
        assert_true(c2.reused);
        expect_labels(&s2, &c2);
        c2.ssl = NULL; /* the test's again */
        SSL_shutdown(ssl);
        close(c2.fd);
        c2.fd = -1;
        assert_true(SSL_clear(ssl));
        m2mtls_policy *p = hs_policy_load(dir, "cli-anchor.policy");
        assert_int_equal(m2mtls_ctx_set_policy(cctx, p), 1);
        m2mtls_policy_free(p);
        o.keep = 0;
        o.session = c2.session != NULL ? c2.session : c.session;
        assert_true(SSL_SESSION_is_resumable(o.session)); /* OpenSSL would offer it */
        assert_true(hs_run(&o, &s3, &c3));
        if (c3.reused || c3.ok || c3.peer_id != NULL)
            fail_msg("%s: the client resumed under a policy whose anchor changed (reused=%d, peer=%s)", m->name,
                     c3.reused, c3.peer_id ? c3.peer_id : "(null)");
        hs_side *all[] = { &s, &c, &s2, &c2, &s3, &c3 };
        for (size_t k = 0; k < 6; k++)
            hs_side_clear(all[k]);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* A client session's label record rewritten (a format this library does not
 * know, another anchor digest, another peer id): not trusted; the client does
 * not offer the session and the full handshake that follows labels as usual. */
static void test_resume_label_record_tampered(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12, &HS_TLS12_SID, &HS_DTLS12 };
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
        hs_side s, c;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        expect_ok(m, &s, &c);
        void *data = NULL;
        size_t n = 0;
        const size_t magic = sizeof "m2mtls-label-1";
        assert_true(SSL_SESSION_get0_ticket_appdata(c.session, &data, &n));
        assert_true(n == magic + 32 + sizeof "/CSE-SRV" && memcmp(data, "m2mtls-label-1", magic) == 0);
        for (int how = 0; how < 3; how++) {
            unsigned char rec[128];
            size_t len = n;
            memcpy(rec, data, n);
            if (how == 0)
                rec[magic - 2] = '0'; /* "m2mtls-label-0" */
            else if (how == 1)
                rec[magic] ^= 0x01; /* another anchor certificate's digest */
            else
                len = magic + 32 + (size_t)snprintf((char *)rec + magic + 32, 32, "/CSE-SRV2") + 1;
            SSL_SESSION *forged = SSL_SESSION_dup(c.session);
            assert_non_null(forged);
            assert_true(SSL_SESSION_set1_ticket_appdata(forged, rec, len));
            hs_side s2, c2;
            run(sctx, cctx, m, "/CSE-SRV", forged, &s2, &c2);
            if (c2.reused || s2.reused)
                fail_msg("%s: label record %d: a session with a rewritten label was resumed", m->name, how);
            expect_ok(m, &s2, &c2);
            expect_labels(&s2, &c2);
            SSL_SESSION_free(forged);
            hs_side_pair_clear(&s2, &c2);
        }
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* A session of association X offered on a connection for association Y.
 * hs_client_conn calls m2mtls_ssl_set_peer() first and SSL_set_session()
 * after it (the order of an application that looks its session cache up
 * once it knows the peer); session_first reverses that. */
static void cross_association(int session_first, int strict)
{
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12, &HS_TLS12_SID, &HS_DTLS12 };
    char failures[1024] = "";
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy"); /* presents server.example.com */
        SSL_CTX *cctx = ctx_with(0, m, "cli.policy");
        hs_side s, c, s2, c2;
        run(sctx, cctx, m, "/CSE-SRV", NULL, &s, &c);
        expect_ok(m, &s, &c);
        assert_non_null(c.session);
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls,
                      .peer = "/CSE-SRV2", .session = c.session, .session_first = session_first };
        if (!hs_run(&o, &s2, &c2))
            fail_msg("%s: the loopback run itself failed", m->name);
        assert_true(c2.set_peer_ok);
        /* never the label of X, nor of Y (the server is not Y) */
        if (c2.handshake_ok && c2.peer_id != NULL)
            fail_msg("%s: a session of /CSE-SRV gave a connection for /CSE-SRV2 the label %s "
                     "(resumed=%d)", m->name, c2.peer_id, c2.reused);
        /* "accepts only that association": the handshake for /CSE-SRV2 must not
         * complete on the strength of /CSE-SRV's session either */
        if (strict && c2.handshake_ok && c2.reused) {
            size_t n = strlen(failures);
            snprintf(failures + n, sizeof failures - n, "%s%s", n ? ", " : "", m->name);
        }
        hs_side *all[] = { &s, &c, &s2, &c2 };
        for (size_t k = 0; k < 4; k++)
            hs_side_clear(all[k]);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    if (failures[0])
        fail_msg("the client resumed /CSE-SRV's session and completed the handshake of a "
                 "connection for /CSE-SRV2 (unlabelled) in: %s", failures);
}

/* The label is never X or Y (m2mtls_ssl_peer_id NULL or the handshake fails). */
static void test_client_session_per_association(void **state)
{
    (void)state;
    cross_association(0, 0);
    cross_association(1, 0);
}

/* Stricter: such a session is not resumed at all (no completed handshake). */
static void test_client_session_not_resumed_across_associations(void **state)
{
    (void)state;
    cross_association(1, 1); /* SSL_set_session() before m2mtls_ssl_set_peer() */
    cross_association(0, 1); /* SSL_set_session() after m2mtls_ssl_set_peer() */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12),
        cmocka_unit_test(test_tls13),
        cmocka_unit_test(test_dtls12),
        cmocka_unit_test(test_set_peer_unknown),
        cmocka_unit_test(test_reject_server_side),
        cmocka_unit_test(test_reject_client_side),
        cmocka_unit_test(test_initiator_verify_none_still_refuses),
        cmocka_unit_test(test_no_client_certificate),
        cmocka_unit_test(test_app_callback_before_install),
        cmocka_unit_test(test_app_callback_after_install),
        cmocka_unit_test(test_app_callback_refuses),
        cmocka_unit_test(test_app_client_hello_chained),
        cmocka_unit_test(test_client_chain_from_cert_file),
        cmocka_unit_test(test_peers_from_cert_handshake),
        cmocka_unit_test(test_set_policy_full_handshakes),
        cmocka_unit_test(test_resume_tls13_ticket),
        cmocka_unit_test(test_resume_tls12_ticket),
        cmocka_unit_test(test_resume_tls12_session_id),
        cmocka_unit_test(test_resume_dtls12),
        cmocka_unit_test(test_resume_after_peer_removed),
        cmocka_unit_test(test_resume_under_same_policy_reloaded),
        cmocka_unit_test(test_resume_after_anchor_changed),
        cmocka_unit_test(test_resume_after_name_changed),
        cmocka_unit_test(test_resume_after_association_made_ambiguous),
        cmocka_unit_test(test_resume_client_policy_changed_same_ssl),
        cmocka_unit_test(test_resume_label_record_tampered),
        cmocka_unit_test(test_client_session_per_association),
        cmocka_unit_test(test_client_session_not_resumed_across_associations),
    };
    return cmocka_run_group_tests(tests, setup, hs_test_dir_teardown);
}
