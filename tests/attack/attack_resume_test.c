/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attempts to get around the cheaper resumption re-check (issue 13 item 5):
 * a session's label re-checked without the certificate's own profile, a
 * connection's memo of its last re-check that passed (m2_label_memo), and
 * key digests taken from a certificate's SubjectPublicKeyInfo as decoded.
 * Real handshakes over loopback (TLS 1.3, TLS 1.2, DTLS 1.2); each test is
 * one attempt, as an attacker or as a careless application.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <m2mtls/policy.h>

static char *dir;
static char *id_devc, *id_devc2;

static const hs_mode *const ALL[] = { &HS_TLS13, &HS_TLS12, &HS_DTLS12 };
#define N_ALL (sizeof ALL / sizeof ALL[0])

#define DEVC "//sp.example.com/CSE-SRV/Cdevc"

/* A device's carrier: a self-signed certificate of a new P-256 key whose
 * public point is encoded compressed. */
static int compressed_carrier(const char *cn, pki_cert *out)
{
    EVP_PKEY *k = pki_key_gen("EC:P-256:compressed");
    pki_opts o = { .cn = cn, .key = k, .ca = PKI_BC_LEAF };
    int ok = k != NULL && pki_issue(&o, out);
    EVP_PKEY_free(k);
    return ok;
}

/* The id of the key in the certificate file NAME as read back (the key a
 * policy author has). */
static char *key_id_of_file(const char *name)
{
    char *path = pki_path(dir, name);
    FILE *f = fopen(path, "r");
    free(path);
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    char *id = x != NULL ? pki_key_id(X509_get0_pubkey(x), 32) : NULL;
    X509_free(x);
    return id;
}

static int setup(void **state)
{
    (void)state;
    pki_cert root, server, server_old, client, client_ka, devc, devc2;
    dir = pki_tmpdir();
    /* URI names: the client sends no SNI (a DNS name would be sent, and a
     * server does not resume a session of another host name) */
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { PKI_SAN_URI, "//sp.example.com/CSE-SRV", 0 },
                        { 0, 0, 0 } };
    pki_san s_old[] = { { PKI_SAN_URI, "//sp.example.com/CSE-OLD", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    /* keyAgreement only: OpenSSL's own client purpose check lets it through, m2mtls's profile does not */
    pki_opts ka = { .cn = "client", .issuer = &root, .sans = s_cli, .key_usage = KU_KEY_AGREEMENT };
    if (dir == NULL || !pki_root("Resume Root", &root) || !pki_leaf(&root, "server", s_srv, &server)
        || !pki_leaf(&root, "server-old", s_old, &server_old) || !pki_leaf(&root, "client", s_cli, &client)
        || !pki_issue(&ka, &client_ka) || !compressed_carrier("Cdevc", &devc) || !compressed_carrier("Cdevc", &devc2))
        return -1;
    static const char cli_common[] = "local-id /CSE-CLI\ncert client.pem\nkey client.key\nanchor ALPHA root.pem\n";
    static const char srv_common[] = "local-id /CSE-SRV\nanchor ALPHA root.pem\n"
                                     "peer /CSE-CLI dns:client.example.com ALPHA\n";
    int ok = pki_write_cert(dir, "root.pem", root.cert) && pki_write_entity(dir, "server", &server)
        && pki_write_entity(dir, "server-old", &server_old) && pki_write_entity(dir, "client", &client)
        && pki_write_entity(dir, "client-ka", &client_ka) && pki_write_entity(dir, "devc", &devc)
        && pki_write_entity(dir, "devc2", &devc2)
        && (id_devc = key_id_of_file("devc.pem")) != NULL && (id_devc2 = key_id_of_file("devc2.pem")) != NULL
        && pki_writef(dir, "srv.policy", "%scert server.pem\nkey server.key\npeer " DEVC " key:sha-256;%s\n",
                      srv_common, id_devc)
        && pki_writef(dir, "srv-devc2.policy", "%scert server.pem\nkey server.key\npeer " DEVC " key:sha-256;%s\n",
                      srv_common, id_devc2)
        && pki_writef(dir, "srv-renamed.policy", "local-id /CSE-SRV\nanchor ALPHA root.pem\ncert server.pem\n"
                      "key server.key\npeer /CSE-CLI dns:renamed.example.com ALPHA\n")
        && pki_writef(dir, "srv-old.policy", "%scert server-old.pem\nkey server-old.key\n", srv_common)
        && pki_writef(dir, "cli.policy", "%speer /CSE-SRV uri://sp.example.com/CSE-SRV ALPHA\n"
                      "peer /CSE-OTHER uri://sp.example.com/CSE-OTHER ALPHA\n", cli_common)
        && pki_writef(dir, "cli-old.policy", "%speer /CSE-SRV uri://sp.example.com/CSE-OLD ALPHA\n", cli_common)
        && pki_writef(dir, "devc.policy", "local-id " DEVC "\ncert devc.pem\nkey devc.key\nanchor ALPHA root.pem\n"
                      "peer /CSE-SRV dns:server.example.com ALPHA\n");
    pki_cert *all[] = { &root, &server, &server_old, &client, &client_ka, &devc, &devc2 };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(id_devc);
    free(id_devc2);
    pki_dir_free(&dir);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static SSL_CTX *ctx_for(int server, const hs_mode *m, const char *policy)
{
    return hs_test_mode_ctx(server, m, dir, policy);
}

/* A context of a program without m2mtls: NAME's certificate and key; a
 * server asks for a client certificate and takes any. */
static int take_any(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 1;
}

static SSL_CTX *plain_ctx(int server, const hs_mode *m, const char *name)
{
    SSL_CTX *ctx = ctx_for(server, m, NULL);
    hs_test_ctx_use(ctx, dir, name);
    SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, server ? take_any : NULL);
    return ctx;
}

static void expect_labelled(const char *what, const hs_mode *m, const hs_side *s, const hs_side *c, const char *srv_sees,
                            const char *cli_sees, int reused)
{
    if (!s->ok || !c->ok)
        fail_msg("%s (%s): failed: server %s / client %s", what, m->name, s->reason ? s->reason : s->ssl_error,
                 c->reason ? c->reason : c->ssl_error);
    if (s->reused != reused || c->reused != reused)
        fail_msg("%s (%s): resumed: server %d, client %d, wanted %d", what, m->name, s->reused, c->reused, reused);
    if (srv_sees != NULL)
        assert_str_eq(s->peer_id, srv_sees);
    if (cli_sees != NULL)
        assert_str_eq(c->peer_id, cli_sees);
}

/* The run O (a client asking for /CSE-SRV), labelled /CSE-CLI and /CSE-SRV
 * by a full handshake (WHAT names it); its client session, the caller's. */
static SSL_SESSION *labelled_session(const char *what, const hs_mode *m, const hs_opts *o)
{
    hs_side s, c;
    hs_test_run(o, NULL, &s, &c);
    expect_labelled(what, m, &s, &c, "/CSE-CLI", "/CSE-SRV", 0);
    SSL_SESSION *sess = c.session;
    c.session = NULL;
    hs_side_pair_clear(&s, &c);
    return sess;
}

/* One client SSL of CCTX that resumed SESS with SCTX (so that its
 * connection's memo holds SESS), shut down and SSL_clear'ed for reuse. */
static SSL *reused_client_ssl(const hs_mode *m, SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess)
{
    SSL *ssl = SSL_new(cctx);
    assert_non_null(ssl);
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV", .session = sess,
                  .client_ssl = ssl, .keep = 1 };
    hs_side s, c;
    hs_test_run(&o, NULL, &s, &c);
    expect_labelled("the first resumption on the reused SSL", m, &s, &c, "/CSE-CLI", "/CSE-SRV", 1);
    c.ssl = NULL; /* the test's again */
    SSL_shutdown(ssl);
    close(c.fd);
    c.fd = -1;
    hs_side_pair_clear(&s, &c);
    assert_true(SSL_clear(ssl));
    return ssl;
}

/* The session (ticket) a server context without m2mtls, PLAIN, gives the
 * client ATTACKER after a handshake that completed. */
static SSL_SESSION *plain_ticket(const hs_mode *m, SSL_CTX *plain, SSL_CTX *attacker)
{
    hs_opts get = { .server_ctx = plain, .client_ctx = attacker, .dtls = m->dtls };
    hs_side s, c;
    hs_test_run(&get, NULL, &s, &c);
    assert_true(s.ok && c.ok);
    assert_non_null(c.session);
    SSL_SESSION *ticket = c.session;
    c.session = NULL;
    hs_side_pair_clear(&s, &c);
    return ticket;
}

/* ATTACKER offers TICKET to the m2mtls server SCTX (the caller checks S, C). */
static void replay_ticket(const hs_mode *m, SSL_CTX *sctx, SSL_CTX *attacker, SSL_SESSION *ticket, hs_side *s, hs_side *c)
{
    hs_opts replay = { .server_ctx = sctx, .client_ctx = attacker, .dtls = m->dtls, .session = ticket };
    hs_test_run(&replay, NULL, s, c);
}

/* ---- the memo of a connection's last re-check --------------------------------------- */

/* A careless client reloads a saved session into the SSL_SESSION object it
 * already holds (d2i_SSL_SESSION(&sess, ...) reuses *sess): the object the
 * connection's memo names now holds another server certificate, with a
 * label record of the same bytes (the same peer id, through the same
 * anchor). That session was made when /CSE-SRV was //sp.example.com/CSE-OLD;
 * the client's policy now names //sp.example.com/CSE-SRV. The re-check of the new
 * content refuses it: the session is not offered, and the full handshake
 * with the old server fails. (Before the memo kept the peer certificate, the
 * client resumed it and labelled the old server '/CSE-SRV'.) */
static void test_memo_session_overwritten_in_place(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *sctx_old = ctx_for(1, m, "srv-old.policy");
        SSL_CTX *cctx = ctx_for(0, m, "cli-old.policy");
        hs_opts o = { .server_ctx = sctx_old, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c); /* the session of the old name */
        expect_labelled("old name", m, &s, &c, "/CSE-CLI", "/CSE-SRV", 0);
        unsigned char *der = NULL;
        int der_len = i2d_SSL_SESSION(c.session, &der);
        assert_true(der_len > 0);
        hs_side_pair_clear(&s, &c);
        /* the client's policy reloaded: /CSE-SRV is another name now */
        m2mtls_policy *pol = hs_policy_load(dir, "cli.policy");
        assert_int_equal(m2mtls_ctx_set_policy(cctx, pol), 1);
        m2mtls_policy_free(pol);
        o.server_ctx = sctx;
        SSL_SESSION *sess = labelled_session("current name", m, &o); /* the session of the current name */

        SSL *ssl = reused_client_ssl(m, sctx, cctx, sess);
        const unsigned char *p = der;
        SSL_SESSION *same = sess;
        assert_ptr_equal(d2i_SSL_SESSION(&same, &p, der_len), sess); /* the object reused */
        assert_true(SSL_SESSION_is_resumable(sess));
        hs_opts again = { .server_ctx = sctx_old, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                          .session = sess, .client_ssl = ssl };
        hs_test_run(&again, NULL, &s, &c);
        if (c.reused || c.ok || c.peer_id != NULL)
            fail_msg("%s: a session of the old name resumed as '/CSE-SRV' (reused=%d, peer=%s, ok=%d)", m->name,
                     c.reused, c.peer_id ? c.peer_id : "(none)", c.ok);
        assert_non_null(c.reason);
        hs_side_pair_clear(&s, &c);
        OPENSSL_free(der);
        SSL_SESSION_free(sess);
        SSL_CTX *all[] = { sctx, sctx_old, cctx };
        for (size_t k = 0; k < 3; k++)
            SSL_CTX_free(all[k]);
    }
}

/* The label record of the session the memo holds, rewritten in place by the
 * application (another anchor digest): the same SSL, the same session
 * object, the same policy; the record is compared byte for byte, so the
 * session is re-checked, refused and not offered: a full handshake labels. */
static void test_memo_label_rewritten_in_place(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *cctx = ctx_for(0, m, "cli.policy");
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        SSL_SESSION *sess = labelled_session("full", m, &o);
        hs_side s, c;
        SSL *ssl = reused_client_ssl(m, sctx, cctx, sess);
        void *data = NULL;
        size_t n = 0;
        assert_true(SSL_SESSION_get0_ticket_appdata(sess, &data, &n) && n > sizeof "m2mtls-label-1");
        unsigned char rec[256];
        assert_true(n <= sizeof rec);
        memcpy(rec, data, n);
        rec[sizeof "m2mtls-label-1"] ^= 0x01; /* the anchor certificate's digest */
        assert_true(SSL_SESSION_set1_ticket_appdata(sess, rec, n));
        hs_opts again = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                          .session = sess, .client_ssl = ssl };
        hs_test_run(&again, NULL, &s, &c);
        expect_labelled("the rewritten session", m, &s, &c, "/CSE-CLI", "/CSE-SRV", 0);
        hs_side_pair_clear(&s, &c);
        SSL_SESSION_free(sess);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* ---- a policy reload in the middle of a resumed handshake ------------------------------- */

/* The application's own ticket decrypt callback (m2mtls_ctx_set_session_ticket_cb)
 * reloads the policy: /CSE-CLI is now renamed.example.com. The handshake
 * under way keeps the snapshot it took at its ClientHello (README: each
 * handshake takes one), so it resumes with that snapshot's label; the next
 * one is decided by the new policy: not resumed, and the full handshake
 * refuses the client. Nothing mixes the two (a memo of the old snapshot
 * is never used under the new one). */
static SSL_TICKET_RETURN reload_in_decrypt(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                           size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)sess;
    (void)keyname;
    (void)keyname_len;
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    int *reloads = arg;
    if (*reloads == 0) {
        m2mtls_policy *p = hs_policy_load(dir, "srv-renamed.policy");
        if (m2mtls_ctx_set_policy(ctx, p))
            (*reloads)++;
        m2mtls_policy_free(p);
    }
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
           : status == SSL_TICKET_SUCCESS     ? SSL_TICKET_RETURN_USE
                                              : SSL_TICKET_RETURN_IGNORE_RENEW;
}

static void test_reload_between_ticket_and_end(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *cctx = ctx_for(0, m, "cli.policy");
        int reloads = -1; /* not yet: the first (full) handshake has no ticket to decrypt */
        assert_int_equal(m2mtls_ctx_set_session_ticket_cb(sctx, NULL, reload_in_decrypt, &reloads), 1);
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_labelled("full", m, &s, &c, "/CSE-CLI", "/CSE-SRV", 0);
        o.session = c.session;
        reloads = 0;
        hs_side s2, c2;
        hs_test_run(&o, NULL, &s2, &c2);
        assert_int_equal(reloads, 1);
        expect_labelled("resumed while the policy was reloaded", m, &s2, &c2, "/CSE-CLI", "/CSE-SRV", 1);
        hs_side_pair_clear(&s2, &c2);
        hs_test_run(&o, NULL, &s2, &c2); /* the new policy decides */
        if (s2.reused || s2.handshake_ok || s2.peer_id != NULL)
            fail_msg("%s: resumed or labelled under the reloaded policy (resumed=%d, peer=%s)", m->name, s2.reused,
                     s2.peer_id ? s2.peer_id : "(none)");
        hs_side_pair_clear(&s2, &c2);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* The same SSL, after SSL_clear, asked for another association of the same
 * policy (m2mtls_ssl_set_peer) and offered the session the memo holds: the
 * memo is of the association asked for, so the session is re-checked for
 * /CSE-OTHER, not offered, and the full handshake refuses the server. */
static void test_memo_other_association_same_ssl(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *cctx = ctx_for(0, m, "cli.policy");
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        SSL_SESSION *sess = labelled_session("full", m, &o);
        hs_side s, c;
        SSL *ssl = reused_client_ssl(m, sctx, cctx, sess);
        hs_opts again = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-OTHER",
                          .session = sess, .client_ssl = ssl };
        hs_test_run(&again, NULL, &s, &c);
        if (c.reused || c.ok || c.peer_id != NULL)
            fail_msg("%s: a session of /CSE-SRV served an SSL asked for /CSE-OTHER (reused=%d, peer=%s)", m->name,
                     c.reused, c.peer_id ? c.peer_id : "(none)");
        assert_non_null(c.reason);
        hs_side_pair_clear(&s, &c);
        SSL_SESSION_free(sess);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* ---- labels are made only by a full m2mtls handshake ------------------------------------ */

/* The profile is not checked again on resumption, so a certificate that
 * fails it (keyUsage without digitalSignature) must never get a session
 * label. Here it gets a ticket from a context of the same process without
 * m2mtls that shares the ticket keys and the session id context (it takes
 * any client certificate): the m2mtls context finds no label in that
 * ticket, does not resume it, and the full handshake refuses the
 * certificate. */
static void test_ticket_of_plain_context_with_bad_profile(void **state)
{
    (void)state;
    unsigned char keys[80];
    memset(keys, 0x33, sizeof keys);
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *plain = plain_ctx(1, m, "server");
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy"), *attacker = plain_ctx(0, m, "client-ka");
        assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(sctx, keys, sizeof keys), 1);
        assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(plain, keys, sizeof keys), 1);
        /* the m2mtls context's session id context, read off one of its sessions */
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_labelled("full", m, &s, &c, "/CSE-CLI", "/CSE-SRV", 0);
        unsigned int sid_len = 0;
        const unsigned char *sid = SSL_SESSION_get0_id_context(c.session, &sid_len);
        assert_int_equal(SSL_CTX_set_session_id_context(plain, sid, sid_len), 1);
        hs_side_pair_clear(&s, &c);
        /* the attacker's certificate: refused by a full handshake */
        hs_opts direct = { .server_ctx = sctx, .client_ctx = attacker, .dtls = m->dtls };
        hs_test_run(&direct, NULL, &s, &c);
        if (s.handshake_ok || s.peer_id != NULL)
            fail_msg("%s: keyUsage keyAgreement only was accepted by a full handshake", m->name);
        assert_int_equal(s.reject_code, M2MTLS_REJECT_PROFILE);
        hs_side_pair_clear(&s, &c);
        /* its ticket from the context without m2mtls */
        SSL_SESSION *ticket = plain_ticket(m, plain, attacker);
        replay_ticket(m, sctx, attacker, ticket, &s, &c);
        if (s.handshake_ok || s.peer_id != NULL || s.reused)
            fail_msg("%s: a ticket of a context without m2mtls completed a handshake (resumed=%d, peer=%s)", m->name,
                     s.reused, s.peer_id ? s.peer_id : "(none)");
        assert_int_equal(s.reject_code, M2MTLS_REJECT_PROFILE); /* the full handshake that followed */
        hs_side_pair_clear(&s, &c);
        SSL_SESSION_free(ticket);
        SSL_CTX *all[] = { sctx, plain, cctx, attacker };
        for (size_t k = 0; k < 4; k++)
            SSL_CTX_free(all[k]);
    }
}

/* The same, with the context without m2mtls writing a label record of its
 * own into its tickets (its application's ticket callback, with bytes an
 * attacker chose: '/CSE-CLI' through the digest of the real anchor), under
 * its own session id context, as any context of its own has. The m2mtls
 * context never decrypts such a ticket into a resumption: OpenSSL resumes
 * only sessions of the connection's session id context (the policy's digest
 * and the server name), and that one is m2mtls's alone. (A context that
 * shares both the ticket keys and that session id context can write any
 * session: see the report of issue 13 item 5.) */
static unsigned char forged[128];
static size_t forged_len;

static int forge_label(SSL *ssl, void *arg)
{
    (void)arg;
    return SSL_SESSION_set1_ticket_appdata(SSL_get_session(ssl), forged, forged_len);
}

static SSL_TICKET_RETURN use_any(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                 SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)sess;
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    return status == SSL_TICKET_SUCCESS || status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE
                                                                              : SSL_TICKET_RETURN_IGNORE_RENEW;
}

static void test_forged_label_of_plain_context(void **state)
{
    (void)state;
    char *path = pki_path(dir, "root.pem");
    FILE *f = fopen(path, "r");
    free(path);
    assert_non_null(f);
    X509 *anchor = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(anchor);
    unsigned int md_len = 0;
    memcpy(forged, "m2mtls-label-1", sizeof "m2mtls-label-1");
    assert_true(X509_digest(anchor, EVP_sha256(), forged + sizeof "m2mtls-label-1", &md_len) && md_len == 32);
    X509_free(anchor);
    memcpy(forged + sizeof "m2mtls-label-1" + 32, "/CSE-CLI", sizeof "/CSE-CLI");
    forged_len = sizeof "m2mtls-label-1" + 32 + sizeof "/CSE-CLI";
    unsigned char keys[80];
    memset(keys, 0x44, sizeof keys);
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *plain = plain_ctx(1, m, "server");
        SSL_CTX *attacker = plain_ctx(0, m, "client-ka");
        assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(sctx, keys, sizeof keys), 1);
        assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(plain, keys, sizeof keys), 1);
        assert_int_equal(SSL_CTX_set_session_id_context(plain, (const unsigned char *)"plain", 5), 1);
        assert_int_equal(SSL_CTX_set_session_ticket_cb(plain, forge_label, use_any, NULL), 1);
        SSL_SESSION *ticket = plain_ticket(m, plain, attacker);
        hs_side s, c;
        replay_ticket(m, sctx, attacker, ticket, &s, &c);
        if (s.handshake_ok || s.peer_id != NULL || s.reused)
            fail_msg("%s: a ticket with a label written by another context was accepted (resumed=%d, peer=%s)",
                     m->name, s.reused, s.peer_id ? s.peer_id : "(none)");
        hs_side_pair_clear(&s, &c);
        SSL_SESSION_free(ticket);
        SSL_CTX_free(sctx);
        SSL_CTX_free(plain);
        SSL_CTX_free(attacker);
    }
}

/* ---- key identities: carriers with a compressed point ------------------------------------- */

/* A device's carrier whose EC point is compressed, its key id computed
 * from the key as a policy author has it (i2d_PUBKEY of the certificate's
 * key): the server's key digest of the carrier (its SubjectPublicKeyInfo as
 * decoded) is the same, the full handshake and the resumption label the
 * device; a device whose key changed (another key of the same name) is not
 * resumed once the policy names the new key, and its old carrier is refused. */
static void test_compressed_point_carrier(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ALL; i++) {
        const hs_mode *m = ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *cctx = ctx_for(0, m, "devc.policy");
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_side s, c, s2, c2;
        hs_test_run(&o, NULL, &s, &c);
        expect_labelled("compressed carrier", m, &s, &c, DEVC, "/CSE-SRV", 0);
        assert_non_null(s.cert_name);
        assert_true(strncmp(s.cert_name, "key:sha-256;", 12) == 0 && strcmp(s.cert_name + 12, id_devc) == 0);
        o.session = c.session;
        hs_test_run(&o, NULL, &s2, &c2);
        expect_labelled("compressed carrier resumed", m, &s2, &c2, DEVC, "/CSE-SRV", 1);
        hs_side_pair_clear(&s2, &c2);
        /* the policy now names another key for the device */
        m2mtls_policy *p = hs_policy_load(dir, "srv-devc2.policy");
        assert_int_equal(m2mtls_ctx_set_policy(sctx, p), 1);
        m2mtls_policy_free(p);
        hs_test_run(&o, NULL, &s2, &c2);
        if (s2.reused || s2.handshake_ok || s2.peer_id != NULL)
            fail_msg("%s: the old key of " DEVC " was accepted after the policy named another (resumed=%d)", m->name,
                     s2.reused);
        hs_side_pair_clear(&s2, &c2);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_session_overwritten_in_place),
        cmocka_unit_test(test_memo_label_rewritten_in_place),
        cmocka_unit_test(test_memo_other_association_same_ssl),
        cmocka_unit_test(test_ticket_of_plain_context_with_bad_profile),
        cmocka_unit_test(test_forged_label_of_plain_context),
        cmocka_unit_test(test_compressed_point_carrier),
        cmocka_unit_test(test_reload_between_ticket_and_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
