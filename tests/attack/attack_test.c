/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attempts to get around m2mtls, as an attacker and as a careless
 * application would, with real handshakes over loopback (TLS 1.2, TLS 1.3,
 * DTLS 1.2) and real certificate chains. Each test is one attempt; the
 * README's "Attempts to get around it" lists them with their outcome (a
 * bypass found and fixed, or an attempt that failed and stays as a test).
 */
/* SRP is deprecated in OpenSSL 3 but still built: an application may use it. */
#undef OPENSSL_NO_DEPRECATED
#undef OPENSSL_API_COMPAT
#define OPENSSL_API_COMPAT 10101
#define OPENSSL_SUPPRESS_DEPRECATED
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#ifndef OPENSSL_NO_SRP
#include <openssl/srp.h>
#endif
#include <m2mtls/policy.h>

static char *dir;
static pki_cert root, look, ae_root, gw_root, nc_root, nc_int;

static const hs_mode *const NOT13[] = { &HS_TLS12, &HS_DTLS12 };

static int issue_pair(const pki_cert *issuer, const char *name, const pki_san *sans)
{
    pki_cert c;
    int ok = pki_leaf(issuer, name, sans, &c) && pki_write_entity(dir, name, &c);
    pki_cert_free(&c);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    dir = pki_tmpdir();
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_str[] = { { PKI_SAN_DNS, "stranger.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_gw[] = { { PKI_SAN_DNS, "gateway.sp.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_ae_gw[] = { { PKI_SAN_URI, "//sp.example.com/in-cse/Cgateway", 0 }, { 0, 0, 0 } };
    pki_san s_ae7[] = { { PKI_SAN_URI, "//sp.example.com/in-cse/Csensor7", 0 }, { 0, 0, 0 } };
    pki_opts nc = { .cn = "NC Intermediate", .issuer = &nc_root, .ca = PKI_BC_CA,
                    .name_constraints = "critical,permitted;URI:.sp.example.com,excluded;URI:evil.sp.example.com" };
    if (dir == NULL || !pki_root("Attack Root", &root) || !pki_root("Attack Root", &look)
        || !pki_root("AE Root", &ae_root) || !pki_root("GW Root", &gw_root) || !pki_root("NC Root", &nc_root)
        || !pki_issue(&nc, &nc_int))
        return -1;
    static const char srv_peers[] = "anchor ALPHA root.pem\npeer /CSE-CLI dns:client.example.com ALPHA\n";
    int ok = pki_write_cert(dir, "root.pem", root.cert) && pki_write_cert(dir, "look.pem", look.cert)
        && pki_write_cert(dir, "ae-root.pem", ae_root.cert) && pki_write_cert(dir, "gw-root.pem", gw_root.cert)
        && pki_write_cert(dir, "nc-root.pem", nc_root.cert)
        && issue_pair(&root, "server", s_srv) && issue_pair(&root, "client", s_cli)
        && issue_pair(&root, "stranger", s_str) && issue_pair(&gw_root, "gateway", s_gw)
        && issue_pair(&ae_root, "ae-gw", s_ae_gw) && issue_pair(&ae_root, "ae7", s_ae7)
        && pki_writef(dir, "srv.policy", "local-id /CSE-SRV\ncert server.pem\nkey server.key\n%s", srv_peers)
        && pki_writef(dir, "cli.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-SRV dns:server.example.com ALPHA\n")
        /* an IN-CSE: one gateway by its CSE name, and every AE of the SP's AE CA */
        && pki_writef(dir, "pfc.policy", "local-id //sp.example.com/in-cse\n"
                      "anchor AE ae-root.pem\nanchor GW gw-root.pem\n"
                      "peer //sp.example.com/in-cse/Cgateway dns:gateway.sp.example.com GW\n"
                      "peers-from-cert AE uri-prefix://sp.example.com/in-cse/\n")
        && pki_writef(dir, "nc.policy", "local-id /CSE-SRV\nanchor NC nc-root.pem\n"
                      "peer /LEAF dns:leaf.example.com NC\n");
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pki_cert *all[] = { &root, &look, &ae_root, &gw_root, &nc_root, &nc_int };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    pki_dir_free(&dir);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static SSL_CTX *ctx_for(int server, const hs_mode *m, const char *policy)
{
    return hs_test_mode_ctx(server, m, dir, policy);
}

/* A context of a program without m2mtls: NAME's certificate and key (or
 * none), and when TRUST, the test root as its verify store with
 * SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT. */
static SSL_CTX *plain_ctx(int server, const hs_mode *m, const char *name, int trust)
{
    SSL_CTX *ctx = ctx_for(server, m, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (name != NULL)
        hs_test_ctx_use(ctx, dir, name);
    if (trust) {
        char *r = pki_path(dir, "root.pem");
        assert_int_equal(SSL_CTX_load_verify_locations(ctx, r, NULL), 1);
        free(r);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

static void expect_server_refused(const char *what, const hs_mode *m, const hs_side *s)
{
    if (s->handshake_ok || s->peer_id != NULL)
        fail_msg("%s (%s): the server completed the handshake (peer=%s, cipher=%s)", what, m->name,
                 s->peer_id ? s->peer_id : "(none)", s->cipher);
    if (s->reason == NULL)
        fail_msg("%s (%s): refused without a reason", what, m->name);
}

static void expect_client_refused(const char *what, const hs_mode *m, const hs_side *c)
{
    if (c->handshake_ok || c->peer_id != NULL)
        fail_msg("%s (%s): the client completed the handshake (peer=%s, cipher=%s)", what, m->name,
                 c->peer_id ? c->peer_id : "(none)", c->cipher);
    if (c->reason == NULL)
        fail_msg("%s (%s): refused without a reason", what, m->name);
}

static X509 *read_cert(const char *name)
{
    char *path = pki_path(dir, name);
    FILE *f = fopen(path, "r");
    free(path);
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

/* ---- cipher suites that authenticate nobody ------------------------------------- */

static void app_info(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)where;
    (void)ret;
}

/* ARG non-NULL: the application also sets its own info callback (so the
 * list is only shortened while the ClientHello is made, after its suites
 * were written: the ServerHello is then held to the shorter list). */
static void careless_ciphers(SSL *ssl, void *arg)
{
    assert_int_equal(SSL_set_cipher_list(ssl, "ALL:@SECLEVEL=0"), 1);
    if (arg != NULL)
        SSL_set_info_callback(ssl, app_info);
}

/* An initiator whose application offers every suite at security level 0
 * ("ALL:@SECLEVEL=0", as programs do to reach old peers) meets a server
 * that answers with an anonymous suite and sends no certificate. */
static void test_initiator_refuses_anonymous_server(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = NOT13[i % 2];
        SSL_CTX *anon = plain_ctx(1, m, NULL, 0);
        assert_int_equal(SSL_CTX_set_cipher_list(anon, "AECDH-AES128-SHA:@SECLEVEL=0"), 1);
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        hs_opts o = { .server_ctx = anon, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .client_setup = careless_ciphers, .client_setup_arg = i >= 2 ? "own info callback" : NULL };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        /* (the server ends it: no shared suite, or none the client accepts) */
        if (c.handshake_ok || s.handshake_ok)
            fail_msg("%s%s: the client completed a handshake with an anonymous server (cipher %s)", m->name,
                     i >= 2 ? ", own info callback" : "", c.cipher);
        assert_null(c.peer_id);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(cctx);
        SSL_CTX_free(anon);
    }
    /* the same careless list still meets a certificate server on an authenticated suite */
    SSL_CTX *sctx = ctx_for(1, &HS_TLS12, "srv.policy");
    SSL_CTX *cctx = ctx_for(0, &HS_TLS12, "cli.policy");
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV", .client_setup = careless_ciphers };
    hs_side s, c;
    hs_test_run(&o, NULL, &s, &c);
    assert_true(s.ok && c.ok);
    assert_str_eq(c.peer_id, "/CSE-SRV");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

#ifndef OPENSSL_NO_SRP
static int srp_user(SSL *ssl, int *ad, void *arg)
{
    (void)arg;
    const char *user = SSL_get_srp_username(ssl);
    if (user == NULL || strcmp(user, "operator") != 0
        || SSL_set_srp_server_param_pw(ssl, "operator", "secret", "2048") < 0) {
        *ad = SSL_AD_UNKNOWN_PSK_IDENTITY;
        return SSL3_AL_FATAL;
    }
    return SSL_ERROR_NONE;
}

/* A responder whose application also offers SRP (password logins): SRP
 * suites never ask for a client certificate. */
static void test_responder_refuses_srp_without_certificate(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_for(1, &HS_TLS12, "srv.policy");
    SSL_CTX_set_srp_username_callback(sctx, srp_user);
    assert_int_equal(SSL_CTX_set_cipher_list(sctx, "SRP-AES-128-CBC-SHA:ECDHE-ECDSA-AES128-SHA256"), 1);
    SSL_CTX *srp = plain_ctx(0, &HS_TLS12, NULL, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(srp, "SRP-AES-128-CBC-SHA"), 1);
    assert_int_equal(SSL_CTX_set_srp_username(srp, "operator"), 1);
    assert_int_equal(SSL_CTX_set_srp_password(srp, "secret"), 1);
    SSL_CTX_set_options(srp, SSL_OP_NO_TICKET); /* no ticket: no end-of-handshake check there */
    hs_opts o = { .server_ctx = sctx, .client_ctx = srp };
    hs_side s, c;
    hs_test_run(&o, NULL, &s, &c);
    expect_server_refused("an SRP client without a certificate", &HS_TLS12, &s);
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(srp);
    SSL_CTX_free(sctx);
}
#endif

/* ---- a connection moved to a context without m2mtls ----------------------------------- */

static int switch_to_plain(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != NULL && strcmp(name, "plain.example.com") == 0)
        SSL_set_SSL_CTX(ssl, (SSL_CTX *)arg);
    return SSL_TLSEXT_ERR_OK;
}

static void sni_plain(SSL *ssl, void *arg)
{
    (void)arg;
    SSL_set_tlsext_host_name(ssl, "plain.example.com");
}

/* A server's SNI callback moves the connection to a virtual host whose
 * context has no m2mtls (it verifies clients with OpenSSL alone, against
 * the same root). A client that the policy does not know, and that asks for
 * no ticket, must not complete a handshake on the m2mtls server. */
static void test_sni_switch_to_context_without_m2mtls(void **state)
{
    (void)state;
    for (size_t i = 2; i < 3; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *plain = plain_ctx(1, m, "server", 1);
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        SSL_CTX_set_tlsext_servername_callback(sctx, switch_to_plain);
        SSL_CTX_set_tlsext_servername_arg(sctx, plain);
        SSL_CTX *stranger = plain_ctx(0, m, "stranger", 0);
        SSL_CTX_set_options(stranger, SSL_OP_NO_TICKET);
        hs_opts o = { .server_ctx = sctx, .client_ctx = stranger, .dtls = m->dtls, .client_setup = sni_plain };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_server_refused("switched to a context without m2mtls", m, &s);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(stranger);
        SSL_CTX_free(sctx);
        SSL_CTX_free(plain);
    }
}

static void move_to_plain_client(SSL *ssl, void *arg)
{
    SSL_set_SSL_CTX(ssl, (SSL_CTX *)arg);
}

/* An initiator asked for /CSE-SRV, then its application moved the SSL to a
 * context without m2mtls (OpenSSL's verification against the same root):
 * a server with another name must still be refused. */
static void test_initiator_moved_to_context_without_m2mtls(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *strange_srv = plain_ctx(1, m, "stranger", 0);
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        SSL_CTX *plain = plain_ctx(0, m, "client", 1);
        hs_opts o = { .server_ctx = strange_srv, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .client_setup = move_to_plain_client, .client_setup_arg = plain };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_client_refused("moved to a context without m2mtls", m, &c);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(plain);
        SSL_CTX_free(cctx);
        SSL_CTX_free(strange_srv);
    }
}

/* ---- identities -------------------------------------------------------------------- */

/* The policy binds //sp.example.com/in-cse/Cgateway to the gateway's CSE
 * name under its own root. An AE of the SP's AE CA whose URI is that very
 * AE-ID must not obtain the gateway's identity through peers-from-cert. */
static void test_peers_from_cert_cannot_take_a_configured_identity(void **state)
{
    (void)state;
    m2mtls_policy *p = hs_policy_load(dir, "pfc.policy");
    X509 *fake = read_cert("ae-gw.pem"), *gw = read_cert("gateway.pem"), *ae7 = read_cert("ae7.pem");
    m2mtls_verdict v;
    assert_int_equal(m2mtls_policy_check_cert(p, fake, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    if (v.accepted)
        fail_msg("an AE certificate of the AE CA is labelled %s, the identity of the gateway's peer line",
                 v.peer_id);
    assert_contains(v.reason, "//sp.example.com/in-cse/Cgateway");
    m2mtls_verdict_clear(&v);
    /* the gateway itself, and any other AE, as before */
    assert_int_equal(m2mtls_policy_check_cert(p, gw, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    assert_true(v.accepted);
    assert_str_eq(v.peer_id, "//sp.example.com/in-cse/Cgateway");
    m2mtls_verdict_clear(&v);
    assert_int_equal(m2mtls_policy_check_cert(p, ae7, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    assert_true(v.accepted);
    assert_str_eq(v.peer_id, "//sp.example.com/in-cse/Csensor7");
    m2mtls_verdict_clear(&v);
    /* an initiator that asks for the gateway does not take the AE either */
    assert_int_equal(m2mtls_policy_check_cert(p, fake, NULL, "//sp.example.com/in-cse/Cgateway",
                                              M2MTLS_INITIATOR, 0, &v), 1);
    assert_false(v.accepted);
    m2mtls_verdict_clear(&v);
    X509_free(fake);
    X509_free(gw);
    X509_free(ae7);
    m2mtls_policy_free(p);
}

/* ---- name constraints ---------------------------------------------------------------- */

/* A leaf under an intermediate whose URI subtrees permit .sp.example.com and
 * exclude evil.sp.example.com, carrying the association's dNSName and URI. */
static void nc_case(const char *uri, int want_accept)
{
    pki_san sans[] = { { PKI_SAN_DNS, "leaf.example.com", 0 }, { PKI_SAN_URI, uri, 0 }, { 0, 0, 0 } };
    pki_cert leaf;
    assert_true(pki_leaf(&nc_int, "leaf", sans, &leaf));
    m2mtls_policy *p = hs_policy_load(dir, "nc.policy");
    STACK_OF(X509) *chain = pki_stack(nc_int.cert, (X509 *)NULL);
    m2mtls_verdict v;
    assert_int_equal(m2mtls_policy_check_cert(p, leaf.cert, chain, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    if (want_accept && !v.accepted)
        fail_msg("%s: refused: %s", uri, v.reason);
    if (!want_accept && v.accepted)
        fail_msg("%s: accepted under a CA that excludes evil.sp.example.com", uri);
    if (!want_accept)
        assert_contains(v.reason, "name constraint");
    m2mtls_verdict_clear(&v);
    sk_X509_pop_free(chain, X509_free);
    m2mtls_policy_free(p);
    pki_cert_free(&leaf);
}

static void test_name_constraints_authority_tricks(void **state)
{
    (void)state;
    nc_case("//ok.sp.example.com/CSE/Cx", 1);
    nc_case("//evil.sp.example.com/CSE/Cx", 0);
    nc_case("//EVIL.sp.example.com/CSE/Cx", 0);
    nc_case("//evil.sp.example.com:8443/CSE/Cx", 0);
    /* RFC 3986: userinfo before '@'; the host is evil.sp.example.com */
    nc_case("//ok.sp.example.com:@evil.sp.example.com/CSE/Cx", 0);
    nc_case("//ok.sp.example.com@evil.sp.example.com/CSE/Cx", 0);
    nc_case("//evil.sp.example.com./CSE/Cx", 0);
    nc_case("//[::1]/CSE/Cx", 0);
    nc_case("//other.example.com/CSE/Cx", 0);
}

/* ---- files that are not policy files ---------------------------------------------------- */

/* NAME must not load, promptly, with WHY among its errors. */
static void load_refused(const char *path, const char *why)
{
    m2mtls_policy *p = m2mtls_policy_load(path);
    if (p != NULL)
        fail_msg("%s loaded", path);
    assert_contains(m2mtls_last_error(), why);
}

/* A FIFO (opening it would wait for a writer: a reload would hold the
 * handshake that runs it), a device that never ends, a directory, a file of
 * one endless line; as the policy, an anchor or a CRL. Each is refused at
 * once with its FILE:LINE error, and costs no memory. */
static void test_policy_files_that_are_not_files(void **state)
{
    (void)state;
    char *fifo = pki_path(dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    load_refused(fifo, "a FIFO, not a regular file");
    load_refused("/dev/zero", "a character device, not a regular file");
    load_refused(dir, "a directory, not a regular file");
    char *line = malloc(3u << 20);
    assert_non_null(line);
    memset(line, 'x', 3u << 20);
    assert_true(pki_write_bytes(dir, "endless.policy", line, 3u << 20));
    free(line);
    char *endless = pki_path(dir, "endless.policy");
    load_refused(endless, "endless.policy:1: the line is longer than 65536 bytes");
    free(endless);
    assert_true(pki_writef(dir, "fifo-anchor.policy", "local-id /X\nanchor A %s\npeer /P dns:p.example.com A\n", fifo));
    assert_true(pki_writef(dir, "fifo-crl.policy", "local-id /X\nanchor A root.pem\ncrl %s\n"
                           "peer /P dns:p.example.com A\n", fifo));
    assert_true(pki_writef(dir, "zero-crl.policy", "local-id /X\nanchor A root.pem\ncrl /dev/zero\n"
                           "peer /P dns:p.example.com A\n"));
    char *a = pki_path(dir, "fifo-anchor.policy"), *c = pki_path(dir, "fifo-crl.policy"),
         *z = pki_path(dir, "zero-crl.policy");
    load_refused(a, "fifo-anchor.policy:2: anchor: cannot read");
    load_refused(c, "fifo-crl.policy:3: crl: cannot read");
    load_refused(z, "zero-crl.policy:3: crl: cannot read /dev/zero: it is a character device");
    free(a);
    free(c);
    free(z);
    unlink(fifo);
    free(fifo);
}

/* ---- TLS 1.3 early data ------------------------------------------------------------------ */

/* A blocking TCP connection accepted on LFD (hs_listen's), or -1. */
static int accept_blocking(int lfd)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    if (poll(&p, 1, HS_TIMEOUT_MS) != 1)
        return -1;
    int fd = accept(lfd, NULL, NULL);
    struct timeval tv = { 10, 0 };
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

static int connect_blocking(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 10, 0 };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

struct early_server {
    SSL_CTX *ctx;
    int      lfd;
    int      finished_early;   /* SSL_read_early_data said FINISH (OpenSSL's early "done") */
    char    *label_early;      /* the label asked for there */
    int      completed;
    char    *label;            /* and once the handshake completed */
    int      served;
};

/* A server that calls SSL_read_early_data (as nginx with ssl_early_data,
 * or any early-data-aware server does) and asks for the label there. */
static void *early_server(void *v)
{
    struct early_server *e = v;
    int fd = accept_blocking(e->lfd);
    SSL *ssl = fd >= 0 ? SSL_new(e->ctx) : NULL;
    if (ssl == NULL || !SSL_set_fd(ssl, fd))
        goto out;
    char buf[64];
    size_t n;
    int r;
    while ((r = SSL_read_early_data(ssl, buf, sizeof buf, &n)) == SSL_READ_EARLY_DATA_SUCCESS)
        ;
    e->finished_early = r == SSL_READ_EARLY_DATA_FINISH;
    const char *early = m2mtls_ssl_peer_id(ssl);
    e->label_early = early != NULL ? strdup(early) : NULL;
    e->completed = SSL_do_handshake(ssl) == 1;
    const char *label = m2mtls_ssl_peer_id(ssl);
    e->label = label != NULL ? strdup(label) : NULL;
    e->served = e->completed && SSL_read(ssl, buf, 4) == 4 && SSL_write(ssl, "pong", 4) == 4;
out:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* OpenSSL leaves "init" once before a TLS 1.3 handshake with early data is
 * over (server: after its Finished). A label asked for there is none; the
 * handshake's real end has it (the early "done" used to settle the
 * handshake without one, for good). */
static void test_early_data_server_label(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_for(1, &HS_TLS13, "srv.policy");
    SSL_CTX_set_max_early_data(sctx, 16384); /* the application wants it; m2mtls turns it off */
    SSL_CTX *cctx = ctx_for(0, &HS_TLS13, "cli.policy");
    SSL_CTX *anon = plain_ctx(0, &HS_TLS13, NULL, 0);
    SSL_CTX *clients[] = { cctx, anon };
    for (int k = 0; k < 2; k++) {
        struct early_server e = { .ctx = sctx };
        int port;
        e.lfd = hs_listen(0, &port);
        assert_true(e.lfd >= 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, early_server, &e), 0);
        SSL *ssl = SSL_new(clients[k]);
        if (k == 0)
            assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-SRV"), 1);
        hs_side c = { 0 };
        c.fd = -1;
        hs_client_run(ssl, port, 0, 0, &c);
        pthread_join(t, NULL);
        close(e.lfd);
        assert_true(e.finished_early);
        if (e.label_early != NULL)
            fail_msg("a label before the client's certificate arrived: %s", e.label_early);
        if (k == 0) {
            if (e.label == NULL || strcmp(e.label, "/CSE-CLI") != 0)
                fail_msg("the completed handshake has no label (SSL_read_early_data's early 'done' settled it): %s",
                         e.label ? e.label : "(none)");
            assert_true(e.served && c.ok);
        } else {
            if (e.completed || e.label != NULL)
                fail_msg("a client without a certificate completed a handshake (label %s)",
                         e.label ? e.label : "(none)");
        }
        free(e.label_early);
        free(e.label);
        hs_side_clear(&c);
    }
    SSL_CTX_free(anon);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

/* An initiator that resumes with 0-RTT data (SSL_write_early_data): OpenSSL
 * says "done" after the ClientHello; the label is the resumed session's,
 * once the server's Finished arrived. (The server here is a plain OpenSSL
 * one that allows early data.) */
static void test_early_data_client_label(void **state)
{
    (void)state;
    SSL_CTX *sctx = plain_ctx(1, &HS_TLS13, "server", 0);
    SSL_CTX_set_max_early_data(sctx, 16384);
    SSL_CTX *cctx = ctx_for(0, &HS_TLS13, "cli.policy");
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-SRV" };
    hs_side s, c;
    hs_test_run(&o, NULL, &s, &c);
    assert_true(s.ok && c.ok);
    assert_non_null(c.session);
    assert_true(SSL_SESSION_get_max_early_data(c.session) > 0);
    int port, lfd = hs_listen(0, &port);
    assert_true(lfd >= 0);
    struct early_server e = { .ctx = sctx, .lfd = lfd };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, early_server, &e), 0);
    SSL *ssl = SSL_new(cctx);
    assert_int_equal(m2mtls_ssl_set_peer(ssl, "/CSE-SRV"), 1);
    assert_int_equal(SSL_set_session(ssl, c.session), 1);
    int fd = connect_blocking(port);
    assert_true(fd >= 0);
    assert_int_equal(SSL_set_fd(ssl, fd), 1);
    size_t written = 0;
    assert_int_equal(SSL_write_early_data(ssl, "ping", 4, &written), 1);
    assert_null(m2mtls_ssl_peer_id(ssl)); /* nothing proven yet */
    int done = SSL_do_handshake(ssl) == 1;
    char buf[4];
    int echoed = done && SSL_write(ssl, "ping", 4) == 4 && SSL_read(ssl, buf, 4) == 4;
    const char *label = m2mtls_ssl_peer_id(ssl);
    if (!done || label == NULL || strcmp(label, "/CSE-SRV") != 0)
        fail_msg("a resumed handshake with early data ends without its label (%s; resumed=%d)",
                 label ? label : "(none)", SSL_session_reused(ssl));
    assert_true(SSL_session_reused(ssl));
    assert_true(echoed);
    SSL_free(ssl);
    close(fd);
    pthread_join(t, NULL);
    close(lfd);
    free(e.label_early);
    free(e.label);
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

/* ---- TS-0003 7.2.1: From ------------------------------------------------------------------- */

/* The registrar's side of a connection from the client NAME (a plain
 * OpenSSL client with NAME's certificate), kept open. */
static SSL *registrar_side(SSL_CTX *sctx, const char *name)
{
    SSL_CTX *cctx = plain_ctx(0, &HS_TLS12, name, 0);
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .keep = 1 };
    hs_side s, c;
    hs_test_run(&o, NULL, &s, &c);
    if (!s.ok)
        fail_msg("%s: not accepted by the registrar: %s", name, s.reason ? s.reason : "-");
    SSL *ssl = s.ssl;
    s.ssl = NULL;
    close(s.fd);
    s.fd = -1;
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(cctx);
    return ssl;
}

static void from_forms(SSL *reg, const char *bound, const char *const *yes, const char *const *no)
{
    assert_str_eq(m2mtls_ssl_peer_id(reg), bound);
    for (size_t i = 0; yes[i] != NULL; i++)
        if (!m2mtls_ssl_check_originator(reg, yes[i]))
            fail_msg("bound to %s: From '%s' refused", bound, yes[i]);
    for (size_t i = 0; no[i] != NULL; i++)
        if (m2mtls_ssl_check_originator(reg, no[i]))
            fail_msg("bound to %s: From '%s' accepted", bound, no[i]);
    assert_int_equal(m2mtls_ssl_check_originator(reg, NULL), 0);
}

/* Every From form against an AE peer (C- and S-stem) and a CSE peer of a
 * registrar /CSE-1 of //sp.example.com: relative forms are completed with
 * the registrar's own CSE-ID and SP-ID; nothing is decoded or normalised
 * (percent-encodings, dot segments, case of paths, trailing slashes), so a
 * form that is not exactly the identity is refused. */
static void test_originator_forms(void **state)
{
    (void)state;
    pki_san s_c[] = { { PKI_SAN_URI, "//sp.example.com/CSE-1/Csensor7", 0 }, { 0, 0, 0 } };
    pki_san s_s[] = { { PKI_SAN_URI, "//sp.example.com/Sadmin", 0 }, { 0, 0, 0 } };
    pki_san s_m[] = { { PKI_SAN_DNS, "mn-cse.sp.example.com", 0 }, { 0, 0, 0 } };
    assert_true(issue_pair(&ae_root, "from-c", s_c) && issue_pair(&ae_root, "from-s", s_s)
                && issue_pair(&root, "from-m", s_m));
    assert_true(pki_writef(dir, "registrar.policy",
                           "local-id /CSE-1\nsp-id //sp.example.com\ncert server.pem\nkey server.key\n"
                           "anchor AE ae-root.pem\nanchor ALPHA root.pem\n"
                           "peer //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 AE\n"
                           "peer //sp.example.com/Sadmin uri://sp.example.com/Sadmin AE\n"
                           "peer /mn-cse dns:mn-cse.sp.example.com ALPHA\n"));
    SSL_CTX *sctx = ctx_for(1, &HS_TLS12, "registrar.policy");
    char *huge = malloc(1 << 20);
    assert_non_null(huge);
    memset(huge, 'C', (1 << 20) - 1);
    huge[(1 << 20) - 1] = '\0';

    SSL *reg = registrar_side(sctx, "from-c");
    const char *c_yes[] = { "Csensor7", "/CSE-1/Csensor7", "//sp.example.com/CSE-1/Csensor7",
                            "//SP.Example.COM/CSE-1/Csensor7", NULL };
    const char *c_no[] = { "", "csensor7", "CSENSOR7", "/cse-1/Csensor7", "Csensor7/", "/CSE-1/Csensor7/",
                           "//sp.example.com/CSE-1/Csensor7/", "//sp.example.com//CSE-1/Csensor7",
                           "//sp.example.com./CSE-1/Csensor7", "%43sensor7", "/CSE-1/%43sensor7",
                           "//sp.example.com/CSE-1/%43sensor7", "//sp.example.com%2FCSE-1/Csensor7",
                           "/CSE-1/../CSE-1/Csensor7", "./Csensor7", "CSE-1/Csensor7", "/Csensor7",
                           "//sp.example.com/Csensor7", "//other-sp.com/CSE-1/Csensor7", "/CSE-2/Csensor7",
                           "//sp.example.com/CSE-2/Csensor7", "Csensor7 ", " Csensor7", "Csensor7\n",
                           "Csensor77", "Csensor", "//", "/", "///CSE-1/Csensor7", "//sp.example.com",
                           "//sp.example.com/", "Ssensor7", "//sp.example.com:443/CSE-1/Csensor7",
                           "//x@sp.example.com/CSE-1/Csensor7", huge, NULL };
    from_forms(reg, "//sp.example.com/CSE-1/Csensor7", c_yes, c_no);
    SSL_free(reg);

    /* an S-AE-ID is unique in its SP: "Sadmin" is already SP-relative (and
     * "/Sadmin", a CSE-ID of that SP, has the same absolute form) */
    reg = registrar_side(sctx, "from-s");
    const char *s_yes[] = { "Sadmin", "/Sadmin", "//sp.example.com/Sadmin", NULL };
    const char *s_no[] = { "/CSE-1/Sadmin", "//other-sp.com/Sadmin", "sadmin", "Sadmin/", "//sp.example.com/Sadmin/",
                           "CSE-1/Sadmin", NULL };
    from_forms(reg, "//sp.example.com/Sadmin", s_yes, s_no);
    SSL_free(reg);

    /* a CSE: SP-relative /mn-cse, or absolute; "mn-cse" would be an AE of /CSE-1 */
    reg = registrar_side(sctx, "from-m");
    const char *m_yes[] = { "/mn-cse", "//sp.example.com/mn-cse", "//SP.EXAMPLE.COM/mn-cse", NULL };
    const char *m_no[] = { "mn-cse", "/MN-CSE", "/mn-cse/", "//other-sp.com/mn-cse", "/CSE-1/mn-cse",
                           "mn-cse.sp.example.com", "dns:mn-cse.sp.example.com", "//sp.example.com/mn-cse/", NULL };
    from_forms(reg, "/mn-cse", m_yes, m_no);
    SSL_free(reg);
    free(huge);
    SSL_CTX_free(sctx);
}

/* ---- chains and revocation ------------------------------------------------------------------- */

static void chain_refused(const char *policy, X509 *leaf, STACK_OF(X509) *chain, const char *what, const char *why)
{
    m2mtls_policy *p = hs_policy_load(dir, policy);
    m2mtls_verdict v;
    assert_int_equal(m2mtls_policy_check_cert(p, leaf, chain, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    if (v.accepted)
        fail_msg("%s: accepted as %s", what, v.peer_id);
    if (why != NULL)
        assert_contains(v.reason, why);
    m2mtls_verdict_clear(&v);
    m2mtls_policy_free(p);
}

/* A pathLenConstraint violated, a leaf issued by a pinned end-entity anchor
 * (CA:FALSE), an expired anchor; and with `crl` lines: an expired CRL, a CRL
 * signed by a look-alike of the issuer (same name, another key), an
 * intermediate whose CRL is missing. */
static void test_chain_and_crl_edges(void **state)
{
    (void)state;
    pki_san s_leaf[] = { { PKI_SAN_DNS, "leaf.example.com", 0 }, { 0, 0, 0 } };
    /* basicConstraints CA:TRUE, pathLenConstraint 0 */
    static const unsigned char bc_len0[] = { 0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00 };
    pki_ext len0[] = { { "basicConstraints", 1, bc_len0, sizeof bc_len0 }, { NULL, 0, NULL, 0 } };
    pki_cert r0, i1, i2, leaf, pin, under_pin, old_root, old_leaf;
    pki_opts o_r0 = { .cn = "PathLen0 Root", .ca = PKI_BC_NONE, .raw_exts = len0,
                      .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN };
    pki_opts o_i1 = { .cn = "Int 1", .issuer = &r0, .ca = PKI_BC_CA };
    pki_opts o_i2 = { .cn = "Int 2", .issuer = &i1, .ca = PKI_BC_CA };
    pki_opts o_pin = { .cn = "pinned", .sans = s_leaf, .ca = PKI_BC_LEAF };
    pki_opts o_old = { .cn = "Expired Root", .ca = PKI_BC_CA, .not_before = -10 * 86400, .not_after = -86400 };
    assert_true(pki_issue(&o_r0, &r0) && pki_issue(&o_i1, &i1) && pki_issue(&o_i2, &i2)
                && pki_leaf(&i2, "leaf", s_leaf, &leaf) && pki_issue(&o_pin, &pin)
                && pki_leaf(&pin, "under pin", s_leaf, &under_pin) && pki_issue(&o_old, &old_root)
                && pki_leaf(&old_root, "old leaf", s_leaf, &old_leaf));
    assert_true(pki_write_cert(dir, "r0.pem", r0.cert) && pki_write_cert(dir, "pin.pem", pin.cert)
                && pki_write_cert(dir, "old-root.pem", old_root.cert)
                && pki_writef(dir, "r0.policy", "anchor R r0.pem\npeer /LEAF dns:leaf.example.com R\n")
                && pki_writef(dir, "pin.policy", "anchor P pin.pem\npeer /LEAF dns:leaf.example.com P\n")
                && pki_writef(dir, "old.policy", "anchor O old-root.pem\npeer /LEAF dns:leaf.example.com O\n"));
    STACK_OF(X509) *c2 = pki_stack(i2.cert, i1.cert, (X509 *)NULL);
    chain_refused("r0.policy", leaf.cert, c2, "two intermediates under a root with pathLenConstraint 0",
                  "path length constraint exceeded");
    sk_X509_pop_free(c2, X509_free);
    chain_refused("pin.policy", under_pin.cert, NULL, "a leaf issued by a pinned end-entity anchor", "'P'");
    chain_refused("old.policy", old_leaf.cert, NULL, "a leaf under an expired anchor", "expired");

    /* revocation */
    long none[] = { 0 };
    X509_CRL *expired = pki_crl(&root, none, 0, -3600), *forged = pki_crl(&look, none, 0, 86400),
             *good = pki_crl(&root, none, 0, 86400);
    pki_cert inter, under_inter, root_leaf;
    pki_opts o_int = { .cn = "Attack Int", .issuer = &root, .ca = PKI_BC_CA };
    assert_true(expired && forged && good && pki_issue(&o_int, &inter)
                && pki_leaf(&inter, "leaf", s_leaf, &under_inter) && pki_leaf(&root, "leaf", s_leaf, &root_leaf));
    assert_true(pki_write_crl(dir, "expired.crl", expired) && pki_write_crl(dir, "forged.crl", forged)
                && pki_write_crl(dir, "good.crl", good)
                && pki_writef(dir, "crl-expired.policy", "anchor A root.pem\ncrl expired.crl\n"
                              "peer /LEAF dns:leaf.example.com A\n")
                && pki_writef(dir, "crl-forged.policy", "anchor A root.pem\ncrl forged.crl\n"
                              "peer /LEAF dns:leaf.example.com A\n")
                && pki_writef(dir, "crl-good.policy", "anchor A root.pem\ncrl good.crl\n"
                              "peer /LEAF dns:leaf.example.com A\n"));
    chain_refused("crl-expired.policy", root_leaf.cert, NULL, "an expired CRL", "CRL has expired");
    chain_refused("crl-forged.policy", root_leaf.cert, NULL, "a CRL signed by a look-alike of the issuer", NULL);
    STACK_OF(X509) *ci = pki_stack(inter.cert, (X509 *)NULL);
    chain_refused("crl-good.policy", under_inter.cert, ci, "an intermediate without its CRL", "unable to get certificate CRL");
    sk_X509_pop_free(ci, X509_free);
    /* and the good CRL lets the root's own leaf in */
    m2mtls_policy *p = hs_policy_load(dir, "crl-good.policy");
    m2mtls_verdict v;
    assert_int_equal(m2mtls_policy_check_cert(p, root_leaf.cert, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    assert_true(v.accepted);
    m2mtls_verdict_clear(&v);
    m2mtls_policy_free(p);
    X509_CRL_free(expired);
    X509_CRL_free(forged);
    X509_CRL_free(good);
    pki_cert *all[] = { &r0, &i1, &i2, &leaf, &pin, &under_pin, &old_root, &old_leaf, &inter, &under_inter,
                        &root_leaf };
    pki_certs_free(all, sizeof all / sizeof all[0]);
}

/* ---- names ------------------------------------------------------------------------------------- */

static void name_case(const char *what, const pki_san *sans, const char *want)
{
    pki_cert c;
    assert_true(pki_leaf(&root, "names", sans, &c));
    assert_true(pki_writef(dir, "names.policy", "anchor ALPHA root.pem\n"
                           "peer /CSE-SRV dns:server.example.com ALPHA\n"
                           "peer //sp.example.com/in-cse/Cx uri://sp.example.com/in-cse/Cx ALPHA\n"
                           "peer /CSE-Y dns:y.example.com ALPHA\n"));
    m2mtls_policy *p = hs_policy_load(dir, "names.policy");
    m2mtls_verdict v;
    assert_int_equal(m2mtls_policy_check_cert(p, c.cert, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    if (want == NULL && v.accepted)
        fail_msg("%s: accepted as %s", what, v.peer_id);
    if (want != NULL && (!v.accepted || strcmp(v.peer_id, want) != 0))
        fail_msg("%s: %s", what, v.accepted ? v.peer_id : v.reason);
    m2mtls_verdict_clear(&v);
    m2mtls_policy_free(p);
    pki_cert_free(&c);
}

/* Names that look like a configured one: none is that name. */
static void test_name_lookalikes(void **state)
{
    (void)state;
    const struct { const char *what; pki_san sans[3]; const char *want; } cases[] = {
        { "dNSName with a trailing dot", { { PKI_SAN_DNS, "server.example.com.", 0 } }, NULL },
        { "dNSName in upper case (DNS names compare case-insensitively)", { { PKI_SAN_DNS, "SERVER.Example.COM", 0 } },
          "/CSE-SRV" },
        { "dNSName in UTF-8 for an ASCII name", { { PKI_SAN_DNS, "server.example.co\xc9\xb1", 0 } }, NULL },
        { "dNSName with a NUL after the name", { { PKI_SAN_DNS, "server.example.com\0.evil.com", 28 } }, NULL },
        { "the CSE's name as a URI", { { PKI_SAN_URI, "server.example.com", 0 } }, NULL },
        { "the CSE's name as an e-mail address", { { PKI_SAN_EMAIL, "server.example.com", 0 } }, NULL },
        { "the CSE's name as an otherName", { { PKI_SAN_OTHERNAME, "server.example.com", 0 } }, NULL },
        { "the AE-ID as a dNSName", { { PKI_SAN_DNS, "//sp.example.com/in-cse/Cx", 0 } }, NULL },
        { "the AE-ID in upper case", { { PKI_SAN_URI, "//SP.EXAMPLE.COM/in-cse/Cx", 0 } }, NULL },
        { "the AE-ID with a scheme", { { PKI_SAN_URI, "https://sp.example.com/in-cse/Cx", 0 } }, NULL },
        { "the AE-ID percent-encoded", { { PKI_SAN_URI, "//sp.example.com/in-cse%2FCx", 0 } }, NULL },
        { "the AE-ID with a dot segment", { { PKI_SAN_URI, "//sp.example.com/in-cse/./Cx", 0 } }, NULL },
        { "the AE-ID with a trailing slash", { { PKI_SAN_URI, "//sp.example.com/in-cse/Cx/", 0 } }, NULL },
        { "the same URI twice", { { PKI_SAN_URI, "//sp.example.com/in-cse/Cx", 0 },
                                  { PKI_SAN_URI, "//sp.example.com/in-cse/Cx", 0 } }, "//sp.example.com/in-cse/Cx" },
        { "a URI and a dNSName of two associations", { { PKI_SAN_URI, "//sp.example.com/in-cse/Cx", 0 },
                                                       { PKI_SAN_DNS, "y.example.com", 0 } }, NULL },
        { "a wildcard next to the name", { { PKI_SAN_DNS, "y.example.com", 0 }, { PKI_SAN_DNS, "*.example.com", 0 } },
          NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        name_case(cases[i].what, cases[i].sans, cases[i].want);
}

/* ---- resumption across contexts ------------------------------------------------------------------ */

/* Two virtual hosts share their ticket keys (as a fleet does) but not their
 * policy: host B allows /CSE-OTHER only. A ticket /CSE-CLI got on host A,
 * presented to B by its owner or by a client without a certificate, never
 * yields a handshake on B. */
static void test_ticket_of_another_host(void **state)
{
    (void)state;
    unsigned char keys[80];
    memset(keys, 0x5a, sizeof keys);
    assert_true(pki_writef(dir, "vhost-b.policy", "local-id /CSE-SRV-B\ncert server.pem\nkey server.key\n"
                           "anchor ALPHA root.pem\npeer /CSE-OTHER dns:other.example.com ALPHA\n"));
    const hs_mode *modes[] = { &HS_TLS13, &HS_TLS12 };
    for (size_t i = 0; i < 2; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *a = ctx_for(1, m, "srv.policy"), *b = ctx_for(1, m, "vhost-b.policy");
        assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(a, keys, sizeof keys), 1);
        assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(b, keys, sizeof keys), 1);
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy"), *thief = plain_ctx(0, m, NULL, 0);
        hs_opts o = { .server_ctx = a, .client_ctx = cctx, .peer = "/CSE-SRV" };
        hs_side s, c, s2, c2;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        assert_true(SSL_SESSION_has_ticket(c.session));
        hs_opts owner = { .server_ctx = b, .client_ctx = cctx, .session = c.session };
        hs_opts stolen = { .server_ctx = b, .client_ctx = thief, .session = c.session };
        const hs_opts *tries[] = { &owner, &stolen };
        for (int k = 0; k < 2; k++) {
            hs_test_run(tries[k], NULL, &s2, &c2);
            if (s2.handshake_ok || s2.peer_id != NULL)
                fail_msg("%s: a ticket of host A %s completed a handshake on host B (resumed=%d, peer=%s)", m->name,
                         k ? "replayed without a certificate" : "of /CSE-CLI", s2.reused,
                         s2.peer_id ? s2.peer_id : "(none)");
            hs_side_pair_clear(&s2, &c2);
        }
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(thief);
        SSL_CTX_free(cctx);
        SSL_CTX_free(b);
        SSL_CTX_free(a);
    }
}

/* A session cache shared by two contexts (an application's external cache,
 * TLS 1.2 session IDs) whose policies differ: a session of host A is not
 * resumed on host B. */
static SSL_SESSION *shared_cache[8];
static int shared_n;

static int cache_new(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    if (shared_n < 8)
        shared_cache[shared_n++] = sess; /* keeps the reference OpenSSL hands over */
    else
        SSL_SESSION_free(sess);
    return 1;
}

static SSL_SESSION *cache_get(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    (void)ssl;
    *copy = 1;
    for (int i = 0; i < shared_n; i++) {
        unsigned int n;
        const unsigned char *sid = SSL_SESSION_get_id(shared_cache[i], &n);
        if ((int)n == len && memcmp(sid, id, n) == 0)
            return shared_cache[i];
    }
    return NULL;
}

static void test_session_cache_shared_by_two_policies(void **state)
{
    (void)state;
    SSL_CTX *a = ctx_for(1, &HS_TLS12, "srv.policy"), *b = ctx_for(1, &HS_TLS12, "vhost-b.policy");
    SSL_CTX *both[] = { a, b };
    for (int k = 0; k < 2; k++) {
        SSL_CTX_set_options(both[k], SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(both[k], SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(both[k], cache_new);
        SSL_CTX_sess_set_get_cb(both[k], cache_get);
    }
    SSL_CTX *cctx = ctx_for(0, &HS_TLS12, "cli.policy");
    SSL_CTX_set_options(cctx, SSL_OP_NO_TICKET);
    hs_opts o = { .server_ctx = a, .client_ctx = cctx, .peer = "/CSE-SRV" };
    hs_side s, c, s2, c2;
    hs_test_run(&o, NULL, &s, &c);
    assert_true(s.ok && c.ok);
    assert_true(shared_n > 0);
    /* the same host resumes it (the cache works) ... */
    o.session = c.session;
    hs_test_run(&o, NULL, &s2, &c2);
    assert_true(s2.ok && s2.reused);
    assert_str_eq(s2.peer_id, "/CSE-CLI");
    hs_side_pair_clear(&s2, &c2);
    /* ... the other host does not */
    o.server_ctx = b;
    hs_test_run(&o, NULL, &s2, &c2);
    if (s2.handshake_ok || s2.peer_id != NULL)
        fail_msg("a session of host A completed a handshake on host B (resumed=%d)", s2.reused);
    hs_side_pair_clear(&s2, &c2);
    hs_side_pair_clear(&s, &c);
    for (int i = 0; i < shared_n; i++)
        SSL_SESSION_free(shared_cache[i]);
    shared_n = 0;
    SSL_CTX_free(cctx);
    SSL_CTX_free(b);
    SSL_CTX_free(a);
}

/* ---- careless applications ------------------------------------------------------------------------- */

static int accept_all(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 1;
}

static char *label_in_callback;
static int verify_cb_asks_label(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (m2mtls_ssl_peer_id(ssl) != NULL || m2mtls_ssl_check_originator(ssl, "/CSE-CLI"))
        label_in_callback = strdup(m2mtls_ssl_peer_id(ssl) ? m2mtls_ssl_peer_id(ssl) : "check_originator");
    return ok;
}

/* After m2mtls_ctx_install the application: accepts everything in its own
 * verify callback, sets SSL_VERIFY_NONE, puts a look-alike root in the
 * context's store, sets X509_V_FLAG_NO_CHECK_TIME | PARTIAL_CHAIN on its
 * parameters. The look-alike server / a client without a certificate are
 * still refused; a label is never visible from inside the handshake. */
static void test_careless_settings_after_install(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy");
        SSL_CTX_set_verify(sctx, SSL_VERIFY_NONE, accept_all);
        X509_STORE *store = X509_STORE_new();
        X509_STORE_add_cert(store, look.cert);
        SSL_CTX_set_cert_store(sctx, store);
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(sctx), X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_PARTIAL_CHAIN);
        SSL_CTX *anon = plain_ctx(0, m, NULL, 0), *stranger = plain_ctx(0, m, "stranger", 0);
        SSL_CTX *clients[] = { anon, stranger };
        for (int k = 0; k < 2; k++) {
            hs_opts o = { .server_ctx = sctx, .client_ctx = clients[k], .dtls = m->dtls };
            hs_side s, c;
            hs_test_run(&o, NULL, &s, &c);
            expect_server_refused(k ? "a client the policy does not name" : "a client without a certificate", m, &s);
            hs_side_pair_clear(&s, &c);
        }
        /* the client side: the same, and it asks for the label from its verify callback */
        SSL_CTX *cctx = ctx_for(0, m, "cli.policy");
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, verify_cb_asks_label);
        SSL_CTX *srv_stranger = plain_ctx(1, m, "stranger", 0);
        hs_opts o = { .server_ctx = srv_stranger, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        expect_client_refused("a server the association does not name", m, &c);
        hs_side_pair_clear(&s, &c);
        SSL_CTX *good = ctx_for(1, m, "srv.policy");
        o.server_ctx = good;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        if (label_in_callback != NULL)
            fail_msg("%s: a label inside the handshake: %s", m->name, label_in_callback);
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(good);
        SSL_CTX_free(srv_stranger);
        SSL_CTX_free(cctx);
        SSL_CTX_free(anon);
        SSL_CTX_free(stranger);
        SSL_CTX_free(sctx);
    }
}

struct serve_arg {
    SSL_CTX *ctx;
    int      lfd, dtls;
    hs_side *out;
};

static void *serve_one(void *v)
{
    struct serve_arg *a = v;
    hs_server_conn(a->ctx, a->lfd, a->dtls, HS_TIMEOUT_MS, 0, a->out);
    return NULL;
}

/* One connection of the client SSL the caller prepared to a server of SCTX. */
static void connect_prepared(SSL_CTX *sctx, SSL *ssl, int dtls, hs_side *s, hs_side *c)
{
    int port, lfd = hs_listen(dtls, &port);
    assert_true(lfd >= 0);
    struct serve_arg a = { sctx, lfd, dtls, s };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve_one, &a), 0);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->set_peer_ok = 1;
    hs_client_run(ssl, port, dtls, 0, c);
    pthread_join(t, NULL);
    close(lfd);
}

/* SSL objects created before m2mtls_ctx_install, with SSL_VERIFY_NONE
 * copied into them: a server's is still held to the policy (its hooks are
 * the context's, and re-assert the certificate requirement); an initiator's
 * still refuses a server its association does not name (the verify hook is
 * the context's too). */
struct early_ssl_server {
    SSL *ssl;
    int  lfd, accepted;
    char *label;
};

static void *serve_early_ssl(void *v)
{
    struct early_ssl_server *e = v;
    int fd = accept_blocking(e->lfd);
    if (fd >= 0 && SSL_set_fd(e->ssl, fd)) {
        e->accepted = SSL_accept(e->ssl) == 1;
        const char *l = m2mtls_ssl_peer_id(e->ssl);
        e->label = l != NULL ? strdup(l) : NULL;
    }
    SSL_free(e->ssl);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_ssl_created_before_install(void **state)
{
    (void)state;
    const hs_mode *modes[] = { &HS_TLS12, &HS_TLS13 };
    for (size_t i = 0; i < 2; i++) {
        const hs_mode *m = modes[i];
        /* server */
        SSL_CTX *sctx = ctx_for(1, m, NULL);
        SSL_CTX_set_verify(sctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX *clients[] = { plain_ctx(0, m, NULL, 0), plain_ctx(0, m, "stranger", 0) };
        for (int k = 0; k < 2; k++) {
            struct early_ssl_server e = { .ssl = SSL_new(sctx) };
            if (k == 0)
                assert_true(hs_ctx_install(sctx, dir, "srv.policy"));
            int port;
            e.lfd = hs_listen(0, &port);
            pthread_t t;
            assert_int_equal(pthread_create(&t, NULL, serve_early_ssl, &e), 0);
            hs_side c = { 0 };
            c.fd = -1;
            SSL_CTX_set_options(clients[k], SSL_OP_NO_TICKET);
            hs_client_run(SSL_new(clients[k]), port, 0, 0, &c);
            pthread_join(t, NULL);
            close(e.lfd);
            if (e.accepted || e.label != NULL)
                fail_msg("%s: a server SSL made before install accepted %s (label %s)", m->name,
                         k ? "a client the policy does not name" : "a client without a certificate",
                         e.label ? e.label : "(none)");
            free(e.label);
            hs_side_clear(&c);
            SSL_CTX_free(clients[k]);
        }
        SSL_CTX_free(sctx);

        /* initiator */
        SSL_CTX *cctx = ctx_for(0, m, NULL);
        SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
        SSL *early = SSL_new(cctx), *early2 = SSL_new(cctx);
        assert_true(hs_ctx_install(cctx, dir, "cli.policy"));
        SSL_CTX *stranger = plain_ctx(1, m, "stranger", 0);
        hs_side s, c;
        connect_prepared(stranger, early, 0, &s, &c);
        expect_client_refused("an initiator SSL made before install, SSL_VERIFY_NONE", m, &c);
        hs_side_pair_clear(&s, &c);
        /* ... and an anonymous server, the application offering every suite
         * and never calling m2mtls_ssl_set_peer: no m2mtls hook reaches that
         * SSL's handshake (README, Limits), it may complete, never with a label */
        if (m == &HS_TLS12) {
            SSL_set_cipher_list(early2, "ALL:@SECLEVEL=0");
            SSL_CTX *anon = plain_ctx(1, m, NULL, 0);
            assert_int_equal(SSL_CTX_set_cipher_list(anon, "AECDH-AES128-SHA:@SECLEVEL=0"), 1);
            connect_prepared(anon, early2, 0, &s, &c);
            if (c.peer_id != NULL)
                fail_msg("an anonymous server is labelled %s", c.peer_id);
            hs_side_pair_clear(&s, &c);
            SSL_CTX_free(anon);
        } else {
            SSL_free(early2);
        }
        SSL_CTX_free(stranger);
        SSL_CTX_free(cctx);
    }
}

/* ---- labels seen from the application's callbacks ------------------------------------------ */

/* (both sides' callbacks, on two threads) */
static atomic_int info_start_labelled, info_done_labelled, info_done_calls;

static void label_watch(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_START) && m2mtls_ssl_peer_id(ssl) != NULL)
        atomic_fetch_add(&info_start_labelled, 1);
    if (where & SSL_CB_HANDSHAKE_DONE) {
        atomic_fetch_add(&info_done_calls, 1);
        atomic_fetch_add(&info_done_labelled, m2mtls_ssl_peer_id(ssl) != NULL);
    }
}

static void own_info(SSL *ssl, void *arg)
{
    (void)arg;
    SSL_set_info_callback(ssl, label_watch);
}

static int loosen_in_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)arg;
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    *out = in + 1;
    *outlen = in[0];
    (void)inlen;
    return SSL_TLSEXT_ERR_OK;
}

static void alpn_client(SSL *ssl, void *arg)
{
    (void)arg;
    static const unsigned char proto[] = { 4, 'c', 'o', 'a', 'p' };
    SSL_set_alpn_protos(ssl, proto, sizeof proto);
}

/* The application's own info callbacks read the label: none at
 * HANDSHAKE_START (of the connection's first handshake or of a resumption),
 * the label at HANDSHAKE_DONE (both sides). m2mtls_ctx_set_policy(ctx, NULL)
 * fails and keeps the policy in force. The application's ALPN callback
 * loosens the verify mode (after m2mtls re-asserted it): a client without a
 * certificate never gets a label (README, Limits: TLS 1.2 without a ticket
 * completes without one). */
static void test_callbacks_see_labels(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *cctx = ctx_for(0, m, "cli.policy");
        SSL_CTX_set_info_callback(sctx, label_watch);
        assert_int_equal(m2mtls_ctx_set_policy(sctx, NULL), 0);
        atomic_store(&info_start_labelled, 0);
        atomic_store(&info_done_labelled, 0);
        atomic_store(&info_done_calls, 0);
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV",
                      .client_setup = own_info };
        hs_side s, c, s2, c2;
        hs_test_run(&o, NULL, &s, &c);
        assert_true(s.ok && c.ok);
        o.session = c.session;
        hs_test_run(&o, NULL, &s2, &c2);
        assert_true(s2.ok && c2.ok);
        int start = atomic_load(&info_start_labelled), done = atomic_load(&info_done_labelled),
            calls = atomic_load(&info_done_calls);
        if (start != 0 || calls != 4 || done != 4)
            fail_msg("%s: labels at HANDSHAKE_START %d (want 0), at HANDSHAKE_DONE %d of %d (want 4 of 4)", m->name,
                     start, done, calls);
        hs_side_pair_clear(&s, &c);
        hs_side_pair_clear(&s2, &c2);

        SSL_CTX_set_alpn_select_cb(sctx, loosen_in_alpn, NULL);
        SSL_CTX *anon = plain_ctx(0, m, NULL, 0);
        SSL_CTX_set_options(anon, SSL_OP_NO_TICKET);
        for (int tickets = 1; tickets >= 0; tickets--) {
            if (!tickets)
                SSL_CTX_set_num_tickets(sctx, 0); /* TLS 1.3: a server that issues none */
            o = (hs_opts){ .server_ctx = sctx, .client_ctx = anon, .dtls = m->dtls, .client_setup = alpn_client };
            hs_test_run(&o, NULL, &s, &c);
            if (s.peer_id != NULL)
                fail_msg("%s: a client without a certificate is labelled %s", m->name, s.peer_id);
            if (s.handshake_ok)
                print_message("%s%s: the application's ALPN callback loosened the verify mode: completed, no label\n",
                              m->name, tickets ? "" : " (no tickets)");
            hs_side_pair_clear(&s, &c);
        }
        SSL_CTX_free(anon);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

/* ---- an association changed during the handshake ------------------------------------------ */

static int set_peer_result = -1;

static int switch_association(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (set_peer_result == -1)
        set_peer_result = m2mtls_ssl_set_peer(ssl, "//sp.example.com/in-cse/Cgateway");
    return ok;
}

/* The application asks for another association while the handshake for
 * the first one runs (from its verify callback: the server's certificate is
 * being judged for /CSE-SRV). It must not end up with a connection to
 * /CSE-SRV that it believes is /CSE-SRV2, nor a label of an association it
 * no longer asked for. */
static void test_set_peer_during_handshake(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        assert_true(pki_writef(dir, "cli-two.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                               "anchor ALPHA root.pem\npeer /CSE-SRV dns:server.example.com ALPHA\n"
                               "peer //sp.example.com/in-cse/Cgateway uri://sp.example.com/in-cse/Cgateway ALPHA\n"));
        SSL_CTX *sctx = ctx_for(1, m, "srv.policy"), *cctx = ctx_for(0, m, "cli-two.policy");
        SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, switch_association);
        set_peer_result = -1;
        hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV" };
        hs_side s, c;
        hs_test_run(&o, NULL, &s, &c);
        assert_int_not_equal(set_peer_result, -1);
        if (set_peer_result == 1 && c.handshake_ok)
            fail_msg("%s: m2mtls_ssl_set_peer(Cgateway) succeeded during the handshake, which completed with %s",
                     m->name, c.peer_id ? c.peer_id : "(no label)");
        assert_int_equal(set_peer_result, 0);
        assert_contains(m2mtls_last_error(), "handshake");
        if (c.handshake_ok)
            assert_str_eq(c.peer_id, "/CSE-SRV");
        hs_side_pair_clear(&s, &c);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initiator_refuses_anonymous_server),
#ifndef OPENSSL_NO_SRP
        cmocka_unit_test(test_responder_refuses_srp_without_certificate),
#endif
        cmocka_unit_test(test_sni_switch_to_context_without_m2mtls),
        cmocka_unit_test(test_initiator_moved_to_context_without_m2mtls),
        cmocka_unit_test(test_peers_from_cert_cannot_take_a_configured_identity),
        cmocka_unit_test(test_name_constraints_authority_tricks),
        cmocka_unit_test(test_policy_files_that_are_not_files),
        cmocka_unit_test(test_early_data_server_label),
        cmocka_unit_test(test_early_data_client_label),
        cmocka_unit_test(test_originator_forms),
        cmocka_unit_test(test_chain_and_crl_edges),
        cmocka_unit_test(test_name_lookalikes),
        cmocka_unit_test(test_ticket_of_another_host),
        cmocka_unit_test(test_session_cache_shared_by_two_policies),
        cmocka_unit_test(test_careless_settings_after_install),
        cmocka_unit_test(test_ssl_created_before_install),
        cmocka_unit_test(test_callbacks_see_labels),
        cmocka_unit_test(test_set_peer_during_handshake),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
