/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy owns its verification parameters (issue 10 item 3) and holds
 * every chain to the level-2 strength rules (issue 14 item 2), in real
 * handshakes over loopback: an application's X509_VERIFY_PARAM cannot move
 * the time (NO_CHECK_TIME, a fixed time) or the purpose (ANY), nor switch on
 * revocation without CRLs (libcoap >= 4.3.4 sets X509_V_FLAG_CRL_CHECK and
 * forgives UNABLE_TO_GET_CRL in its own callback); what only tightens still
 * applies (a smaller depth, a host check, a higher security level); a
 * context at security level 0 (the TS-0003 DTLS suite on OpenSSL >= 3.2)
 * still refuses SHA-1, P-192 and RSA-1024 chains; scheme-less Absolute
 * AE-IDs under URI name constraints; the application's OpenSSL errors
 * survive the verifier.
 */
#include <stdlib.h>

#include <openssl/err.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <m2mtls/policy.h>

#define DAY 86400L
#define REVOKED_SERIAL 7777

static char *dir;

/* An AE of CSE-A (or another prefix) under ISSUER: its certificate, chain and
 * key, and a policy that makes it the initiator toward the server. */
static int write_ae(const char *name, const char *ae_id, pki_opts o, const pki_cert *chain_ca)
{
    pki_san san[] = { { PKI_SAN_URI, ae_id, 0 }, { 0, 0, 0 } };
    pki_cert c;
    char file[128], key[128], pol[128];
    o.cn = name;
    o.sans = san;
    if (!pki_issue(&o, &c))
        return 0;
    snprintf(file, sizeof file, "ae-%s.pem", name);
    snprintf(key, sizeof key, "ae-%s.key", name);
    snprintf(pol, sizeof pol, "ae-%s.policy", name);
    int ok = pki_write_certs(dir, file, c.cert, chain_ca ? chain_ca->cert : NULL, (X509 *)NULL)
             && pki_write_key(dir, key, c.key)
             && pki_writef(dir, pol, "local-id %s\ncert %s\nkey %s\nanchor ROOT root.pem\n"
                                     "peer /in-cse dns:in-cse.sp.example.com ROOT\n", ae_id, file, key);
    pki_cert_free(&c);
    return ok;
}

static int setup(void **state)
{
    pki_cert root, inter, nc_inter, rsa1024, rsa2048, server, server_cli;
    *state = dir = pki_tmpdir(); /* for hs_test_dir_teardown */
    EVP_PKEY *k1024 = pki_key_gen("RSA:1024"), *k2048 = pki_key_gen("RSA:2048");
    EVP_PKEY *p192 = pki_key_gen("EC:P-192");
    pki_opts r1 = { .cn = "RSA-1024 Root", .ca = PKI_BC_CA, .key = k1024 };
    pki_opts r2 = { .cn = "RSA-2048 Root", .ca = PKI_BC_CA, .key = k2048 };
    pki_san s_srv[] = { { PKI_SAN_DNS, "in-cse.sp.example.com", 0 }, { 0, 0, 0 } };
    if (dir == NULL || k1024 == NULL || k2048 == NULL || p192 == NULL || !pki_root("Params Root", &root)
        || !pki_intermediate("Params Intermediate", &root, &inter) || !pki_issue(&r1, &rsa1024)
        || !pki_issue(&r2, &rsa2048) || !pki_leaf(&root, "in-cse", s_srv, &server))
        return -1;
    pki_opts nco = { .cn = "Constrained CA", .issuer = &root, .ca = PKI_BC_CA,
                     .name_constraints = "critical,permitted;URI:sp.example.com,permitted;DNS:.sp.example.com" };
    pki_opts sco = { .cn = "in-cse", .issuer = &root, .sans = s_srv, .ext_key_usage = "clientAuth",
                     .key = server.key };
    if (!pki_issue(&nco, &nc_inter) || !pki_issue(&sco, &server_cli))
        return -1;
    long revoked[] = { REVOKED_SERIAL };
    X509_CRL *crl = pki_crl(&root, revoked, 1, 7 * DAY);
    static const char srv_common[] =
        "local-id /in-cse\nkey server.key\n"
        "anchor ROOT root.pem\nanchor R1024 rsa1024.pem\nanchor R2048 rsa2048.pem\n"
        "peers-from-cert ROOT uri-prefix://sp.example.com/CSE-A/\n"
        "peers-from-cert R1024 uri-prefix://sp.example.com/CSE-W/\n"
        "peers-from-cert R2048 uri-prefix://sp.example.com/CSE-X/\n";
    int ok = crl != NULL && pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_cert(dir, "rsa1024.pem", rsa1024.cert) && pki_write_cert(dir, "rsa2048.pem", rsa2048.cert)
        && pki_write_crl(dir, "root.crl", crl)
        && pki_write_cert(dir, "server.pem", server.cert) && pki_write_key(dir, "server.key", server.key)
        && pki_write_cert(dir, "server-cli.pem", server_cli.cert)
        && pki_writef(dir, "srv.policy", "%scert server.pem\n", srv_common)
        && pki_writef(dir, "srv-crl.policy", "%scert server.pem\ncrl root.crl\n", srv_common)
        && pki_writef(dir, "srv-cli.policy", "%scert server-cli.pem\n", srv_common)
        && write_ae("good", "//sp.example.com/CSE-A/Cgood", (pki_opts){ .issuer = &root }, NULL)
        && write_ae("expired", "//sp.example.com/CSE-A/Cexpired",
                    (pki_opts){ .issuer = &root, .not_before = -10 * DAY, .not_after = -2 * DAY }, NULL)
        && write_ae("srvonly", "//sp.example.com/CSE-A/Csrvonly",
                    (pki_opts){ .issuer = &root, .ext_key_usage = "serverAuth" }, NULL)
        && write_ae("revoked", "//sp.example.com/CSE-A/Crevoked",
                    (pki_opts){ .issuer = &root, .serial = REVOKED_SERIAL }, NULL)
        && write_ae("chained", "//sp.example.com/CSE-A/Cchained", (pki_opts){ .issuer = &inter }, &inter)
        && write_ae("nc", "//sp.example.com/CSE-A/Cnc", (pki_opts){ .issuer = &nc_inter }, &nc_inter)
        && write_ae("nc-out", "//other.example.org/CSE-A/Cnc", (pki_opts){ .issuer = &nc_inter }, &nc_inter)
        && write_ae("sha1", "//sp.example.com/CSE-A/Csha1", (pki_opts){ .issuer = &root, .md = "SHA1" }, NULL)
        && write_ae("p192", "//sp.example.com/CSE-A/Cp192", (pki_opts){ .issuer = &root, .key = p192 }, NULL)
        && write_ae("rsa1024", "//sp.example.com/CSE-W/Crsa1024", (pki_opts){ .issuer = &rsa1024 }, NULL)
        && write_ae("rsa2048", "//sp.example.com/CSE-X/Crsa2048", (pki_opts){ .issuer = &rsa2048 }, NULL);
    X509_CRL_free(crl);
    EVP_PKEY_free(k1024);
    EVP_PKEY_free(k2048);
    EVP_PKEY_free(p192);
    pki_cert *all[] = { &root, &inter, &nc_inter, &rsa1024, &rsa2048, &server, &server_cli };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    return ok ? 0 : -1;
}

/* ---- contexts ----------------------------------------------------------------- */

enum { TLS12, TLS13, DTLS12 };
static const char *const mode_name[] = { "TLS 1.2", "TLS 1.3", "DTLS 1.2" };

/* A context with the TS-0003 profile at security LEVEL (-1: as made), the
 * policy's credential and the verifier of POLICY. */
static SSL_CTX *ctx_for(int server, int mode, int level, const char *policy)
{
    SSL_CTX *ctx = hs_ctx_new(server, mode == DTLS12, mode == TLS12 ? TLS1_2_VERSION : 0);
    assert_non_null(ctx);
    if (level >= 0)
        SSL_CTX_set_security_level(ctx, level);
    if (!hs_ctx_install(ctx, dir, policy))
        fail_msg("%s: %s", policy, m2mtls_last_error());
    return ctx;
}

/* One connection of AE (its policy AE.policy) to a server context; returns
 * the server's view. The client asks for the association /in-cse. */
static void connect_ae(SSL_CTX *sctx, const char *ae, int mode, int client_level, hs_side *s, hs_side *c)
{
    char policy[128];
    snprintf(policy, sizeof policy, "ae-%s.policy", ae);
    SSL_CTX *cctx = ctx_for(0, mode, client_level, policy);
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = mode == DTLS12, .peer = "/in-cse" };
    char what[160];
    snprintf(what, sizeof what, "%s %s", mode_name[mode], ae);
    hs_test_run(&o, what, s, c);
    SSL_CTX_free(cctx);
}

static void expect_accepted(SSL_CTX *sctx, const char *ae, const char *peer_id, int mode)
{
    hs_side s, c;
    connect_ae(sctx, ae, mode, -1, &s, &c);
    if (!s.ok || !c.ok)
        fail_msg("%s %s: refused: server %s (%s), client %s (%s)", mode_name[mode], ae,
                 s.reason ? s.reason : "-", s.ssl_error, c.reason ? c.reason : "-", c.ssl_error);
    assert_str_eq(s.peer_id, peer_id);
    hs_side_pair_clear(&s, &c);
}

/* Refused by the server, which says WHY. */
static void expect_refused(SSL_CTX *sctx, const char *ae, int mode, int client_level, const char *why)
{
    hs_side s, c;
    connect_ae(sctx, ae, mode, client_level, &s, &c);
    if (s.ok || s.peer_id != NULL)
        fail_msg("%s %s: the server accepted it as %s (expected: %s)", mode_name[mode], ae,
                 s.peer_id ? s.peer_id : "(no label)", why);
    assert_false(c.ok);
    if (getenv("M2MTLS_TEST_VERBOSE"))
        print_message("%s %s: %s\n", mode_name[mode], ae, s.reason ? s.reason : "(no reason)");
    assert_contains(s.reason, why);
    hs_side_pair_clear(&s, &c);
}

/* ---- time, purpose, depth: the application cannot loosen them ------------------- */

static void test_no_check_time(void **state)
{
    (void)state;
    for (int mode = TLS12; mode <= DTLS12; mode++) {
        SSL_CTX *sctx = ctx_for(1, mode, -1, "srv.policy");
        expect_refused(sctx, "expired", mode, -1, "certificate has expired");
        /* what `openssl s_server -no_check_time` does */
        X509_VERIFY_PARAM *vp = X509_VERIFY_PARAM_new();
        X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_NO_CHECK_TIME);
        assert_int_equal(SSL_CTX_set1_param(sctx, vp), 1);
        expect_refused(sctx, "expired", mode, -1, "certificate has expired");
        /* a fixed time at which the certificate was valid (`-attime`) */
        X509_VERIFY_PARAM_clear_flags(vp, X509_V_FLAG_NO_CHECK_TIME);
        X509_VERIFY_PARAM_set_time(vp, time(NULL) - 5 * DAY);
        assert_int_equal(SSL_CTX_set1_param(sctx, vp), 1);
        expect_refused(sctx, "expired", mode, -1, "certificate has expired");
        expect_accepted(sctx, "good", "//sp.example.com/CSE-A/Cgood", mode);
        X509_VERIFY_PARAM_free(vp);
        SSL_CTX_free(sctx);
    }
}

static void test_purpose_any(void **state)
{
    (void)state;
    /* responder: a serverAuth-only certificate is no TLS client */
    SSL_CTX *sctx = ctx_for(1, TLS13, -1, "srv.policy");
    expect_refused(sctx, "srvonly", TLS13, -1, "unsuitable certificate purpose");
    assert_int_equal(SSL_CTX_set_purpose(sctx, X509_PURPOSE_ANY), 1); /* `-purpose any` */
    assert_int_equal(X509_STORE_set_purpose(SSL_CTX_get_cert_store(sctx), X509_PURPOSE_ANY), 1);
    expect_refused(sctx, "srvonly", TLS13, -1, "unsuitable certificate purpose");
    SSL_CTX_free(sctx);

    /* initiator: a clientAuth-only certificate is no TLS server */
    sctx = ctx_for(1, TLS13, -1, "srv-cli.policy");
    SSL_CTX *cctx = ctx_for(0, TLS13, -1, "ae-good.policy");
    assert_int_equal(SSL_CTX_set_purpose(cctx, X509_PURPOSE_ANY), 1);
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/in-cse" };
    hs_side s, c;
    assert_true(hs_run(&o, &s, &c));
    assert_false(c.ok);
    assert_null(c.peer_id);
    assert_contains(c.reason, "unsuitable certificate purpose");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void test_depth(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_for(1, TLS13, -1, "srv.policy");
    /* a larger depth than the policy's changes nothing; a smaller one tightens */
    SSL_CTX_set_verify_depth(sctx, 1000);
    expect_accepted(sctx, "chained", "//sp.example.com/CSE-A/Cchained", TLS13);
    SSL_CTX_set_verify_depth(sctx, 0);
    expect_refused(sctx, "chained", TLS13, -1, "certificate chain too long");
    expect_accepted(sctx, "good", "//sp.example.com/CSE-A/Cgood", TLS13);
    SSL_CTX_free(sctx);
}

/* The application's host check (SSL_set1_host and friends) still applies. */
static void test_host_check_kept(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_for(1, TLS13, -1, "srv.policy");
    SSL_CTX *cctx = ctx_for(0, TLS13, -1, "ae-good.policy");
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(cctx);
    assert_int_equal(X509_VERIFY_PARAM_set1_host(vp, "elsewhere.example.com", 0), 1);
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/in-cse" };
    hs_side s, c;
    assert_true(hs_run(&o, &s, &c));
    assert_false(c.ok);
    assert_contains(c.reason, "does not match the host name the application checks ('elsewhere.example.com')");
    hs_side_pair_clear(&s, &c);
    assert_int_equal(X509_VERIFY_PARAM_set1_host(vp, "in-cse.sp.example.com", 0), 1);
    assert_true(hs_run(&o, &s, &c));
    assert_true(c.ok);
    assert_str_eq(c.peer_id, "/in-cse");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

/* ---- revocation is the policy's: libcoap >= 4.3.4 ---------------------------------- */

static int forgive_missing_crl(int ok, X509_STORE_CTX *xs)
{
    /* what libcoap's callback does: no CRL configured is not an error */
    if (!ok && X509_STORE_CTX_get_error(xs) == X509_V_ERR_UNABLE_TO_GET_CRL)
        return 1;
    return ok;
}

static SSL_CTX *coap_like_server(const char *policy)
{
    SSL_CTX *sctx = ctx_for(1, DTLS12, -1, policy);
    X509_STORE_set_flags(SSL_CTX_get_cert_store(sctx), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, forgive_missing_crl);
    return sctx;
}

static void test_crl_flag_without_crls(void **state)
{
    (void)state;
    /* no crl lines in the policy: the application's CRL flag does not make
     * every handshake fail for want of a CRL */
    SSL_CTX *sctx = coap_like_server("srv.policy");
    expect_accepted(sctx, "good", "//sp.example.com/CSE-A/Cgood", DTLS12);
    SSL_CTX_free(sctx);
    /* with crl lines, revocation is checked, whatever the callback forgives */
    sctx = coap_like_server("srv-crl.policy");
    expect_refused(sctx, "revoked", DTLS12, -1, "certificate revoked");
    expect_accepted(sctx, "good", "//sp.example.com/CSE-A/Cgood", DTLS12);
    SSL_CTX_free(sctx);
}

/* ---- strength: level 2 at least, whatever the context's level ---------------------- */

static void test_strength_at_level_0(void **state)
{
    (void)state;
    for (int mode = TLS12; mode <= DTLS12; mode += DTLS12 - TLS12) {
        /* a server context at level 0, as for the CCM8 suite on OpenSSL >= 3.2;
         * the clients at level 0 too, so that they can present such keys */
        SSL_CTX *sctx = ctx_for(1, mode, 0, "srv.policy");
        expect_refused(sctx, "sha1", mode, 0, "CA signature digest algorithm too weak");
        expect_refused(sctx, "p192", mode, 0, "EE certificate key too weak");
        expect_refused(sctx, "rsa1024", mode, 0, "CA certificate key too weak");
        expect_accepted(sctx, "good", "//sp.example.com/CSE-A/Cgood", mode);
        expect_accepted(sctx, "rsa2048", "//sp.example.com/CSE-X/Crsa2048", mode);
        SSL_CTX_free(sctx);
    }
}

static void test_strength_stricter_context(void **state)
{
    (void)state;
    /* level 3 (128 bits): an RSA-2048 root (112 bits) no longer passes */
    SSL_CTX *sctx = ctx_for(1, TLS13, 3, "srv.policy");
    expect_refused(sctx, "rsa2048", TLS13, -1, "CA certificate key too weak");
    expect_accepted(sctx, "good", "//sp.example.com/CSE-A/Cgood", TLS13);
    SSL_CTX_free(sctx);
}

/* ---- Absolute AE-IDs under URI name constraints, in a handshake ------------------- */

static void test_name_constrained_ae(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_for(1, DTLS12, -1, "srv.policy");
    expect_accepted(sctx, "nc", "//sp.example.com/CSE-A/Cnc", DTLS12);
    SSL_CTX_free(sctx);
    assert_true(pki_writef(dir, "srv-other.policy", "key server.key\ncert server.pem\nanchor ROOT root.pem\n"
                                                    "peers-from-cert ROOT uri-prefix://other.example.org/CSE-A/\n"));
    sctx = ctx_for(1, TLS13, -1, "srv-other.policy");
    expect_refused(sctx, "nc-out", TLS13, -1, "name constraint violation: permitted subtree violation");
    SSL_CTX_free(sctx);
}

/* ---- the application's OpenSSL errors survive the handshake ------------------------ */

#define APP_REASON 4242

/* TLS 1.2 server: the loop callback after ServerHelloDone comes right before
 * the client's Certificate is read, and so before the verifier runs (libssl
 * itself clears the queue earlier, when it sends its own chain). */
static void queue_before_cert(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if ((where & SSL_CB_ACCEPT_LOOP) && SSL_get_state(ssl) == TLS_ST_SW_SRVR_DONE)
        ERR_raise_data(ERR_LIB_USER, APP_REASON, "queued by the application");
}

/* The application's own verify callback queues an error of its own too: it
 * runs inside m2mtls's validation, and its error must outlive it. */
#define APP_CB_REASON 4343

static int verify_cb_queues(int ok, X509_STORE_CTX *xs)
{
    (void)xs;
    ERR_raise_data(ERR_LIB_USER, APP_CB_REASON, "queued by the application's verify callback");
    return ok;
}

typedef struct app_errors {
    int accepted;      /* the handshake call returned 1 */
    int app_error_kept;/* the application's error was the oldest queued after it */
    int cb_error_kept; /* its verify callback's error was queued after it */
} app_errors;

static void app_info_cb(SSL *ssl, void *arg)
{
    (void)arg;
    SSL_set_info_callback(ssl, queue_before_cert);
}

/* Right after the server's one blocking handshake call: whatever the
 * application queued during it must still be there. */
static void read_queue(SSL *ssl, int handshake_ok, void *arg)
{
    (void)ssl;
    app_errors *b = arg;
    b->accepted = handshake_ok;
    unsigned long e = ERR_get_error();
    b->app_error_kept = ERR_GET_LIB(e) == ERR_LIB_USER && ERR_GET_REASON(e) == APP_REASON;
    while (e != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_USER && ERR_GET_REASON(e) == APP_CB_REASON)
            b->cb_error_kept = 1;
        e = ERR_get_error();
    }
}

static void error_queue_run(SSL_CTX *sctx, const char *ae, int want_accepted)
{
    char policy[128];
    snprintf(policy, sizeof policy, "ae-%s.policy", ae);
    SSL_CTX *cctx = ctx_for(0, TLS12, -1, policy);
    app_errors b = { 0 };
    /* one blocking SSL_accept: the handshake runs in that single call */
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/in-cse", .server_blocking = 1,
                  .server_setup = app_info_cb, .server_done = read_queue, .server_done_arg = &b };
    hs_side s, c;
    assert_true(hs_run(&o, &s, &c));
    assert_int_equal(b.accepted, want_accepted);
    if (!b.app_error_kept)
        fail_msg("%s: the error the application queued during SSL_accept is gone", ae);
    if (!b.cb_error_kept && strcmp(ae, "expired") != 0) /* a refused chain may stop before it runs */
        fail_msg("%s: the error the application's verify callback queued is gone", ae);
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
}

static void test_error_queue_in_handshake(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_for(1, TLS12, -1, "srv.policy");
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb_queues);
    error_queue_run(sctx, "good", 1);
    error_queue_run(sctx, "expired", 0);
    error_queue_run(sctx, "nc", 1);
    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_check_time),
        cmocka_unit_test(test_purpose_any),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_host_check_kept),
        cmocka_unit_test(test_crl_flag_without_crls),
        cmocka_unit_test(test_strength_at_level_0),
        cmocka_unit_test(test_strength_stricter_context),
        cmocka_unit_test(test_name_constrained_ae),
        cmocka_unit_test(test_error_queue_in_handshake),
    };
    return cmocka_run_group_tests(tests, setup, hs_test_dir_teardown);
}
