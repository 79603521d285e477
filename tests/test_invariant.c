/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ways around the policy (issue 10), each tried with real handshakes
 * over loopback: a completed handshake has exactly the label of a peer
 * verified in that handshake (or of a session really resumed and
 * re-checked), otherwise it fails with an alert; a failed handshake leaves
 * no label and a reason; a second certificate must name the same identity;
 * the context the connection ends up on decides; initiators follow policy
 * swaps; the getters take NULL.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"
#include "proxy.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <m2mtls/policy.h>

static char *dir;

static int setup(void **state)
{
    pki_cert root, look, server, server_look, client, other;
    *state = dir = pki_tmpdir(); /* for hs_test_dir_teardown */
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_oth[] = { { PKI_SAN_DNS, "other.example.com", 0 }, { 0, 0, 0 } };
    if (dir == NULL || !pki_root("Invariant Root", &root) || !pki_root("Invariant Root", &look)
        || !pki_leaf(&root, "server", s_srv, &server) || !pki_leaf(&look, "server", s_srv, &server_look)
        || !pki_leaf(&root, "client", s_cli, &client) || !pki_leaf(&root, "other", s_oth, &other))
        return -1;
    static const char peers[] = "peer /CSE-CLI dns:client.example.com ALPHA\n"
                                "peer /CSE-OTHER dns:other.example.com ALPHA\n";
    int ok = pki_write_cert(dir, "root.pem", root.cert) && pki_write_cert(dir, "look.pem", look.cert)
        && pki_write_cert(dir, "server.pem", server.cert) && pki_write_key(dir, "server.key", server.key)
        && pki_write_cert(dir, "server-look.pem", server_look.cert)
        && pki_write_key(dir, "server-look.key", server_look.key)
        && pki_write_cert(dir, "client.pem", client.cert) && pki_write_key(dir, "client.key", client.key)
        && pki_write_cert(dir, "other.pem", other.cert) && pki_write_key(dir, "other.key", other.key)
        && pki_writef(dir, "srv.policy", "local-id /CSE-SRV\ncert server.pem\nkey server.key\n"
                      "anchor ALPHA root.pem\n%s", peers)
        /* the same associations, another digest (as after a reload) */
        && pki_writef(dir, "srv-equiv.policy", "# reloaded\nlocal-id /CSE-SRV\ncert server.pem\n"
                      "key server.key\nanchor ALPHA root.pem\n%s", peers)
        /* a virtual host that accepts /CSE-OTHER only */
        && pki_writef(dir, "vhost-b.policy", "local-id /CSE-SRV-B\ncert server.pem\nkey server.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-OTHER dns:other.example.com ALPHA\n")
        && pki_writef(dir, "srv-look.policy", "local-id /CSE-SRV\ncert server-look.pem\nkey server-look.key\n"
                      "anchor ALPHA root.pem\n%s", peers)
        && pki_writef(dir, "cli.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-SRV dns:server.example.com ALPHA\n"
                      "peer /CSE-SRV2 dns:server2.example.com ALPHA\n")
        && pki_writef(dir, "other.policy", "local-id /CSE-OTHER\ncert other.pem\nkey other.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-SRV dns:server.example.com ALPHA\n")
        /* the client's policy after a swap: /CSE-SRV now needs the look-alike root */
        && pki_writef(dir, "cli-look.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor LOOK look.pem\npeer /CSE-SRV dns:server.example.com LOOK\n")
        /* ... or is gone */
        && pki_writef(dir, "cli-gone.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-ELSE dns:else.example.com ALPHA\n");
    pki_cert *all[] = { &root, &look, &server, &server_look, &client, &other };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    return ok ? 0 : -1;
}

/* ---- helpers ----------------------------------------------------------------- */


/* A context with the TS-0003 profile, with POLICY installed unless NULL. */
static SSL_CTX *ctx_for(int server, const hs_mode *m, const char *policy)
{
    return hs_test_mode_ctx(server, m, dir, policy);
}

/* A client context of a program without m2mtls, presenting NAME (or nothing). */
static SSL_CTX *plain_client(const hs_mode *m, const char *name)
{
    SSL_CTX *ctx = ctx_for(0, m, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (name != NULL)
        hs_test_ctx_use(ctx, dir, name);
    return ctx;
}

/* One connection of the client SSL the caller prepared to a server of SCTX. */
static void connect_ssl(SSL_CTX *sctx, SSL *ssl, int dtls, int keep, hs_side *s, hs_side *c)
{
    hs_opts o = { .server_ctx = sctx, .client_ssl = ssl, .dtls = dtls, .keep = keep };
    hs_test_run(&o, NULL, s, c);
}

/* The kept client SSL of C, now the caller's (its socket is closed). */
static SSL *take_ssl(hs_side *c)
{
    SSL *ssl = c->ssl;
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return ssl;
}

/* The server side of a connection that must not have completed. */
static void expect_refused(const char *what, const hs_side *s)
{
    if (s->handshake_ok || s->peer_id != NULL)
        fail_msg("%s: the server completed the handshake (peer=%s, reason=%s)", what,
                 s->peer_id ? s->peer_id : "(none)", s->reason ? s->reason : "(none)");
    if (s->reason == NULL)
        fail_msg("%s: a refused handshake without a reason", what);
}

/* ---- 1. post-handshake authentication never replaces the certificate ------------ */

/* A server whose application asks for the client certificate only after the
 * handshake (SSL_VERIFY_POST_HANDSHAKE), before or after installing, still
 * requires it in the handshake: a TLS 1.3 client without one is refused. */
static void test_pha_flag_still_requires_a_certificate(void **state)
{
    (void)state;
    const int pha = SSL_VERIFY_PEER | SSL_VERIFY_POST_HANDSHAKE;
    for (int after = 0; after < 2; after++) {
        SSL_CTX *sctx = ctx_for(1, &HS_TLS13, NULL);
        if (!after)
            SSL_CTX_set_verify(sctx, pha, NULL);
        assert_true(hs_ctx_install(sctx, dir, "srv.policy"));
        if (after)
            SSL_CTX_set_verify(sctx, pha | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX *anon = plain_client(&HS_TLS13, NULL);
        SSL_CTX_set_post_handshake_auth(anon, 1); /* a client that would answer later */
        hs_opts o = { .server_ctx = sctx, .client_ctx = anon };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_refused(after ? "PHA flag set after install" : "PHA flag set before install", &s);
        hs_side_pair_clear(&s, &c);

        /* and a client with its certificate is accepted as before */
        SSL_CTX *cctx = ctx_for(0, &HS_TLS13, "cli.policy");
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV" };
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        assert_str_eq(s.peer_id, "/CSE-CLI");
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(anon);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

/* ---- 2. a ticket OpenSSL does not resume leaves no label ----------------------- */

/* The application loosens the verify mode in its SNI callback (after
 * m2mtls's client hello hook) once *ARG is set: a full handshake must still
 * demand and verify a certificate. */
static int loosening_sni(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    if (arg == NULL || *(int *)arg)
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    return SSL_TLSEXT_ERR_OK;
}

/* A ticket of /CSE-CLI, replayed by a client without a certificate in a way
 * that makes OpenSSL fall back to a full handshake after the ticket was
 * decrypted: TLS 1.3 with a suite of another hash, TLS 1.2 after the server
 * reloaded an equivalent policy (another session id context). */
static void test_dropped_ticket_leaves_no_label(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12 };
    for (size_t i = 0; i < 2; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        int loosen = 0;
        SSL_CTX_set_tlsext_servername_callback(sctx, loosening_sni);
        SSL_CTX_set_tlsext_servername_arg(sctx, &loosen);
        if (m == &HS_TLS13)
            assert_true(SSL_CTX_set_ciphersuites(sctx, "TLS_AES_256_GCM_SHA384"));
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        if (m == &HS_TLS13)
            assert_true(SSL_CTX_set_ciphersuites(cctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"));
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV" };
        hs_side s, c, s2, c2;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        assert_non_null(c.session);
        assert_true(SSL_SESSION_has_ticket(c.session));

        if (m == &HS_TLS13) {
            assert_true(SSL_CTX_set_ciphersuites(sctx, "TLS_AES_128_GCM_SHA256"));
        } else {
            char *path = pki_path(dir, "srv-equiv.policy");
            m2mtls_policy *equiv = m2mtls_policy_load(path);
            free(path);
            assert_non_null(equiv);
            assert_int_equal(m2mtls_ctx_set_policy(sctx, equiv), 1);
            m2mtls_policy_free(equiv);
        }
        loosen = 1;
        SSL_CTX *thief = plain_client(m, NULL);
        if (m == &HS_TLS13)
            assert_true(SSL_CTX_set_ciphersuites(thief, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"));
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = thief, .session = c.session,
                       .sni = "server.example.com" };
        hs_test_run(&o, NULL, &s2, &c2);
        if (s2.peer_id != NULL)
            fail_msg("%s: a client without a certificate is labelled %s (resumed=%d)", m->name, s2.peer_id,
                     s2.reused);
        expect_refused(m->name, &s2);
        hs_side_pair_clear(&s, &c);
        hs_side_pair_clear(&s2, &c2);
        SSL_CTX_free(thief);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

/* ---- 4. the context the connection ends up on decides ---------------------------- */

static int switch_to_vhost_b(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != NULL && strcmp(name, "b.example.com") == 0)
        SSL_set_SSL_CTX(ssl, (SSL_CTX *)arg);
    return SSL_TLSEXT_ERR_OK;
}

static void test_sni_switch_uses_the_final_context(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *vhost_b = ctx_for(1, m, "vhost-b.policy");
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        SSL_CTX_set_tlsext_servername_callback(sctx, switch_to_vhost_b);
        SSL_CTX_set_tlsext_servername_arg(sctx, vhost_b);
        SSL_CTX *cli = ctx_for(0, m, "cli.policy"), *oth = ctx_for(0, m, "other.policy");
        hs_side s, c;

        /* /CSE-CLI is allowed by the first context only */
        hs_opts o = { .server_ctx = sctx, .client_ctx = cli, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .sni = "b.example.com" };
        hs_test_run(&o, NULL, &s, &c);
        expect_refused(m->name, &s);
        assert_contains(s.reason, "no association");
        hs_side_pair_clear(&s, &c);

        /* /CSE-OTHER is the virtual host's, and labelled with its local id */
        o.client_ctx = oth;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        assert_str_eq(s.peer_id, "/CSE-OTHER");
        assert_str_eq(s.local_id, "/CSE-SRV-B");
        hs_side_pair_clear(&s, &c);

        /* a session /CSE-CLI made on the first host does not carry it onto the second */
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = cli, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        hs_side s2, c2;
        o.session = c.session;
        o.sni = "b.example.com";
        hs_test_run(&o, NULL, &s2, &c2);
        if (s2.handshake_ok || s2.peer_id != NULL)
            fail_msg("%s: /CSE-CLI completed a handshake on the virtual host that refuses it (resumed=%d, peer=%s)",
                     m->name, s2.reused, s2.peer_id ? s2.peer_id : "(none)");
        hs_side_pair_clear(&s, &c);
        hs_side_pair_clear(&s2, &c2);
        SSL_CTX_free(cli);
        SSL_CTX_free(oth);
        SSL_CTX_free(sctx);
        SSL_CTX_free(vhost_b);
    }
}

/* ---- 5. initiators follow a policy swap ----------------------------------------- */

static void swap_client_policy(SSL *ssl, void *arg)
{
    char *path = pki_path(dir, (const char *)arg);
    m2mtls_policy *p = m2mtls_policy_load(path);
    free(path);
    assert_non_null(p);
    assert_int_equal(m2mtls_ctx_set_policy(SSL_get_SSL_CTX(ssl), p), 1);
    m2mtls_policy_free(p);
}

static void test_initiator_follows_policy_swap(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        hs_side s, c;
        /* an SSL prepared (m2mtls_ssl_set_peer) before the swap */
        const char *swaps[] = { "cli-look.policy", "cli-gone.policy" };
        for (size_t k = 0; k < 2; k++) {
            SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
            hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                          .client_setup = swap_client_policy, .client_setup_arg = (void *)swaps[k] };
            hs_test_run(&o, NULL, &s, &c);
            if (c.handshake_ok || c.peer_id != NULL)
                fail_msg("%s: the client connected under the association its new policy (%s) changed", m->name,
                         swaps[k]);
            assert_non_null(c.reason);
            if (k == 1)
                assert_contains(c.reason, "no association with peer '/CSE-SRV'");
            hs_side_pair_clear(&s, &c);
            SSL_CTX_free(cctx);
        }

        /* an SSL reused after SSL_clear + m2mtls_ssl_set_peer */
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        SSL *ssl = SSL_new(cctx);
        assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-SRV"), 1);
        connect_ssl(sctx, ssl, m->dtls, 1, &s, &c);
        assert_true(s.ok && c.ok);
        ssl = take_ssl(&c);
        hs_side_pair_clear(&s, &c);
        assert_int_equal(SSL_clear(ssl), 1);
        swap_client_policy(ssl, "cli-look.policy");
        assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-SRV"), 1);
        connect_ssl(sctx, ssl, m->dtls, 0, &s, &c);
        if (c.handshake_ok || c.peer_id != NULL)
            fail_msg("%s: an SSL reused after SSL_clear kept the policy of its first connection", m->name);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(cctx);

        /* m2mtls_ssl_set_peer checks the current policy */
        cctx = ctx_for(0, m, "cli.policy");
        ssl = SSL_new(cctx);
        assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-SRV"), 1);
        swap_client_policy(ssl, "cli-gone.policy");
        assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-SRV"), 0);
        assert_contains(m2mtls_last_error(), "no association with peer '/CSE-SRV'");
        assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-ELSE"), 1);
        SSL_free(ssl);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

/* ---- 7. a second certificate must name the same identity ------------------------ */

static void use_identity(SSL *ssl, const char *name)
{
    hs_test_ssl_use(ssl, dir, name);
}

/* KIND 0: TLS 1.3 post-handshake authentication; 1: a TLS 1.2 renegotiation
 * the application allowed again. The client answers with SECOND's certificate. */
static void second_certificate(int kind, const char *second)
{
    const hs_mode *m = kind == 0 ? &HS_TLS13 : &HS_TLS12;
    SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
    SSL_CTX *cctx = plain_client(m, "client");
    if (kind == 0)
        SSL_CTX_set_post_handshake_auth(cctx, 1);
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .keep = 1 };
    hs_side s, c;
    hs_test_run(&o, NULL, &s, &c);
    assert_true(s.ok && c.ok);
    assert_str_eq(s.peer_id, "/CSE-CLI");
    use_identity(c.ssl, second);
    if (kind == 0) {
        assert_int_equal(SSL_verify_client_post_handshake(s.ssl), 1);
    } else {
        SSL_clear_options(s.ssl, SSL_OP_NO_RENEGOTIATION);
        assert_int_equal(SSL_renegotiate(s.ssl), 1);
    }
    (void)SSL_do_handshake(s.ssl);
    int served = hs_pump(&s, &c);
    const char *what = kind == 0 ? "post-handshake authentication" : "renegotiation";
    if (strcmp(second, "client") == 0) {
        if (!served)
            fail_msg("%s with the same certificate broke the connection", what);
        assert_str_eq(m2mtls_ssl_peer_id(s.ssl), "/CSE-CLI");
    } else {
        if (served)
            fail_msg("%s with another identity's certificate: the server went on serving (label %s)", what,
                     m2mtls_ssl_peer_id(s.ssl) ? m2mtls_ssl_peer_id(s.ssl) : "(none)");
        assert_null(m2mtls_ssl_peer_id(s.ssl));
        assert_contains(m2mtls_ssl_reject_reason(s.ssl), "the connection is bound to '/CSE-CLI'");
        assert_int_equal(m2mtls_ssl_reject_code(s.ssl), M2MTLS_REJECT_NAME);
    }
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void test_second_certificate_same_identity_or_abort(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        second_certificate(kind, "client");
        second_certificate(kind, "other");
    }
}

/* ---- 8. failed or reused connections have no label ------------------------------- */

/* A peer that replays /CSE-CLI's certificate without its key: its
 * CertificateVerify does not verify (TLS 1.2, DTLS: the signature's last
 * byte changed on the way), or (TLS 1.3) does not even decrypt. */
static void break_cert_verify(unsigned char *rec, size_t len, int dtls, void *arg)
{
    int *encrypted = arg;
    if (proxy_handshake_type(rec, len, dtls) == 15 || (rec[0] == 23 && ++*encrypted == 2))
        rec[len - 1] ^= 0x01;
}

static void test_failed_certificate_verify_leaves_no_label(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        int encrypted = 0;
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .tamper = break_cert_verify, .tamper_arg = &encrypted };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_refused(m->name, &s);
        if (m != &HS_TLS13)
            assert_contains(s.reason, "CertificateVerify failed");
        assert_int_equal(s.reject_code, M2MTLS_REJECT_KEY_PROOF);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

/* After SSL_clear, nothing of the previous connection is returned. */
static void test_ssl_clear_forgets_the_label(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV", .keep = 1 };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        SSL *both[] = { s.ssl, c.ssl };
        for (int k = 0; k < 2; k++) {
            assert_non_null(m2mtls_ssl_peer_id(both[k]));
            assert_int_equal(SSL_clear(both[k]), 1);
            if (m2mtls_ssl_peer_id(both[k]) != NULL)
                fail_msg("%s: after SSL_clear the %s still returns %s", m->name, k ? "client" : "server",
                         m2mtls_ssl_peer_id(both[k]));
            assert_null(m2mtls_ssl_anchor(both[k]));
            assert_null(m2mtls_ssl_peer_cert_name(both[k]));
            assert_null(m2mtls_ssl_reject_reason(both[k]));
            assert_int_equal(m2mtls_ssl_check_originator(both[k], "/CSE-CLI"), 0);
        }
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

/* ---- 10. NULL everywhere --------------------------------------------------------- */

static void test_null_arguments(void **state)
{
    (void)state;
    assert_null(m2mtls_ssl_peer_id(NULL));
    assert_null(m2mtls_ssl_local_id(NULL));
    assert_null(m2mtls_ssl_anchor(NULL));
    assert_null(m2mtls_ssl_peer_cert_name(NULL));
    assert_null(m2mtls_ssl_reject_reason(NULL));
    assert_int_equal(m2mtls_ssl_check_originator(NULL, "Cx"), 0);
    assert_int_equal(m2mtls_ssl_set_peer(NULL, "/CSE-SRV"), 0);
    assert_int_equal(m2mtls_ctx_install(NULL, NULL), 0);
    assert_int_equal(m2mtls_ctx_set_policy(NULL, NULL), 0);
    assert_int_equal(m2mtls_ctx_set_client_hello_cb(NULL, NULL, NULL), 0);
    assert_int_equal(m2mtls_ctx_set_session_ticket_cb(NULL, NULL, NULL, NULL), 0);
    assert_int_equal(m2mtls_ctx_use_credential(NULL, NULL), 0);
    assert_int_equal(m2mtls_ctx_apply_ts0003_profile(NULL), 0);
    assert_int_equal(m2mtls_policy_peer_count(NULL), 0);
    assert_null(m2mtls_policy_local_id(NULL));
    assert_int_equal(m2mtls_policy_peer_address(NULL, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(m2mtls_policy_check_cert(NULL, NULL, NULL, NULL, 0, 0, NULL), 0);
    assert_int_equal(m2mtls_policy_up_ref(NULL), 0);
    m2mtls_policy_free(NULL);
    m2mtls_verdict_clear(NULL);
    assert_non_null(m2mtls_last_error());
    assert_null(m2mtls_policy_load(NULL));
    /* an SSL of a context without m2mtls */
    SSL_CTX *plain = SSL_CTX_new(TLS_server_method());
    SSL *ssl = SSL_new(plain);
    assert_null(m2mtls_ssl_peer_id(ssl));
    assert_null(m2mtls_ssl_local_id(ssl));
    assert_null(m2mtls_ssl_anchor(ssl));
    assert_null(m2mtls_ssl_peer_cert_name(ssl));
    assert_null(m2mtls_ssl_reject_reason(ssl));
    assert_int_equal(m2mtls_ssl_check_originator(ssl, NULL), 0);
    SSL_free(ssl);
    SSL_CTX_free(plain);
}

/* ---- 11. an initiator's own info callback and SSL_VERIFY_NONE ------------------- */

static atomic_int app_info_calls;

static void app_info(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)where;
    (void)ret;
    atomic_fetch_add(&app_info_calls, 1);
}

static void own_info_and_no_verify(SSL *ssl, void *arg)
{
    (void)arg;
    SSL_set_info_callback(ssl, app_info);
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
}

static void test_initiator_own_info_callback_still_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *look = ctx_for(1, m, "srv-look.policy");
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        atomic_store(&app_info_calls, 0);
        hs_opts o = { .server_ctx = look, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .client_setup = own_info_and_no_verify };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        if (c.handshake_ok || c.peer_id != NULL)
            fail_msg("%s: the client completed a handshake with a server its association refuses", m->name);
        assert_non_null(c.reason);
        assert_contains(c.reason, "ALPHA");
        assert_true(atomic_load(&app_info_calls) > 0);
        hs_side_pair_clear(&s, &c);

        /* a session of /CSE-SRV offered for /CSE-SRV2: not resumed, whatever callback is set */
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        hs_side s2, c2;
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV2",
                       .session = c.session, .client_setup = own_info_and_no_verify };
        hs_test_run(&o, NULL, &s2, &c2);
        if (c2.handshake_ok)
            fail_msg("%s: a session of /CSE-SRV completed a handshake for /CSE-SRV2 (resumed=%d)", m->name,
                     c2.reused);
        assert_contains(c2.reason, "does not fit association '/CSE-SRV2'");
        hs_side_pair_clear(&s, &c);
        hs_side_pair_clear(&s2, &c2);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        SSL_CTX_free(look);
    }
}

/* ---- 9. the application's own ticket callbacks, chained ------------------------- */

static atomic_int gen_calls, dec_calls, app_data_seen;

static int app_ticket_gen(SSL *ssl, void *arg)
{
    (void)arg;
    atomic_fetch_add(&gen_calls, 1);
    return SSL_SESSION_set1_ticket_appdata(SSL_get_session(ssl), "app-data", 8);
}

static SSL_TICKET_RETURN app_ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                        SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)keyname;
    (void)keyname_len;
    void *data = NULL;
    size_t n = 0;
    if (sess != NULL)
        atomic_fetch_add(&dec_calls, 1); /* (TLS 1.2 also calls it for an empty ticket) */
    if (sess != NULL && SSL_SESSION_get0_ticket_appdata(sess, &data, &n) && n == 8 && memcmp(data, "app-data", 8) == 0)
        atomic_fetch_add(&app_data_seen, 1);
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    return arg != NULL ? SSL_TICKET_RETURN_IGNORE_RENEW : SSL_TICKET_RETURN_USE;
}

static void test_application_ticket_callbacks_chained(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12 };
    for (size_t i = 0; i < 2; i++) {
        for (int refuse = 0; refuse < 2; refuse++) {
            const hs_mode *m = modes[i];
            SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
            assert_int_equal(m2mtls_ctx_set_session_ticket_cb(sctx, app_ticket_gen, app_ticket_dec,
                                                              refuse ? (void *)1 : NULL), 1);
            SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
            atomic_store(&gen_calls, 0);
            atomic_store(&dec_calls, 0);
            atomic_store(&app_data_seen, 0);
            hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV" };
            hs_side s, c, s2, c2;
            hs_test_run(&o, NULL, &s, &c);
            assert_true(s.ok && c.ok);
            o.session = c.session;
            hs_test_run(&o, NULL, &s2, &c2);
            assert_true(s2.ok && c2.ok);
            assert_str_eq(s2.peer_id, "/CSE-CLI");
            assert_int_equal(s2.reused, !refuse);
            assert_true(atomic_load(&gen_calls) > 0);
            assert_true(atomic_load(&dec_calls) > 0);
            if (atomic_load(&app_data_seen) != atomic_load(&dec_calls))
                fail_msg("%s: the application's decrypt callback did not see exactly its own ticket data", m->name);
            hs_side_pair_clear(&s, &c);
            hs_side_pair_clear(&s2, &c2);
            SSL_CTX_free(cctx);
            SSL_CTX_free(sctx);
        }
    }
}

/* A ticket changed on the way does not decrypt: a full handshake follows,
 * which a client without a certificate cannot pass. */
static void test_forged_ticket(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12 };
    for (size_t i = 0; i < 2; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        int loosen = 0;
        SSL_CTX_set_tlsext_servername_callback(sctx, loosening_sni);
        SSL_CTX_set_tlsext_servername_arg(sctx, &loosen);
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV" };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        loosen = 1;
        /* flip one byte in the middle of the ticket, inside the session's encoding */
        const unsigned char *tick;
        size_t tlen;
        SSL_SESSION_get0_ticket(c.session, &tick, &tlen);
        assert_true(tlen > 32);
        unsigned char der[8192], *p = der;
        int n = i2d_SSL_SESSION(c.session, NULL);
        assert_true(n > 0 && (size_t)n <= sizeof der);
        i2d_SSL_SESSION(c.session, &p);
        unsigned char *at = NULL;
        for (int k = 0; k + (int)tlen <= n && at == NULL; k++)
            if (memcmp(der + k, tick, tlen) == 0)
                at = der + k;
        assert_non_null(at);
        at[tlen / 2] ^= 0x5a;
        const unsigned char *q = der;
        SSL_SESSION *forged = d2i_SSL_SESSION(NULL, &q, n);
        assert_non_null(forged);

        SSL_CTX *thief = plain_client(m, NULL);
        hs_side s2, c2;
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = thief, .session = forged,
                       .sni = "server.example.com" };
        hs_test_run(&o, NULL, &s2, &c2);
        expect_refused(m->name, &s2);
        hs_side_pair_clear(&s2, &c2);
        /* the owner of the session still gets in, with a full handshake */
        o = (hs_opts){ .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV", .session = forged };
        hs_test_run(&o, NULL, &s2, &c2);
        assert_true(s2.ok && c2.ok);
        assert_false(s2.reused);
        assert_str_eq(s2.peer_id, "/CSE-CLI");
        hs_side_pair_clear(&s2, &c2);
        hs_side_pair_clear(&s, &c);
        SSL_SESSION_free(forged);
        SSL_CTX_free(thief);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pha_flag_still_requires_a_certificate),
        cmocka_unit_test(test_dropped_ticket_leaves_no_label),
        cmocka_unit_test(test_sni_switch_uses_the_final_context),
        cmocka_unit_test(test_initiator_follows_policy_swap),
        cmocka_unit_test(test_second_certificate_same_identity_or_abort),
        cmocka_unit_test(test_failed_certificate_verify_leaves_no_label),
        cmocka_unit_test(test_ssl_clear_forgets_the_label),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_initiator_own_info_callback_still_refuses),
        cmocka_unit_test(test_application_ticket_callbacks_chained),
        cmocka_unit_test(test_forged_ticket),
    };
    return cmocka_run_group_tests(tests, setup, hs_test_dir_teardown);
}
