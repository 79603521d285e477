/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TS-0003 7.2.1: the From parameter must name the identity bound to the
 * security association, in its CSE-relative, SP-relative or absolute form.
 * Real handshakes label the registrar's side of each connection: with its
 * own SP known (sp-id, or an absolute local-id) and not.
 */
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <m2mtls/policy.h>

static char *dir;
static SSL_CTX *sctx, *cctx;
static SSL *reg; /* the registrar's side of registrar.policy <- ae.policy */

/* A context as an application makes it (no profile), with POLICY. */
static SSL_CTX *make_ctx(int server, const char *policy)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx != NULL && !hs_ctx_install(ctx, dir, policy)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A registrar's connection to an AE: the registrar's side (kept open). */
static SSL *registrar_conn(const char *registrar, const char *ae, SSL_CTX **sctx_out, SSL_CTX **cctx_out)
{
    SSL_CTX *s = make_ctx(1, registrar), *c = make_ctx(0, ae);
    hs_side srv_side, cli_side;
    hs_opts o = { .server_ctx = s, .client_ctx = c, .peer = "/CSE-1", .keep = 1 };
    if (s == NULL || c == NULL || !hs_run(&o, &srv_side, &cli_side) || !srv_side.ok || !cli_side.ok) {
        fail_msg("%s <- %s: handshake failed: %s / %s", registrar, ae, srv_side.reason ? srv_side.reason : "-",
                 cli_side.reason ? cli_side.reason : "-");
    }
    SSL *ssl = srv_side.ssl;
    srv_side.ssl = NULL;
    close(srv_side.fd);
    srv_side.fd = -1;
    hs_side_clear(&srv_side);
    hs_side_clear(&cli_side);
    *sctx_out = s;
    *cctx_out = c;
    return ssl;
}

static int setup(void **state)
{
    (void)state;
    pki_cert root, server, ae, ae_other;
    dir = pki_tmpdir();
    pki_san s_srv[] = { { PKI_SAN_DNS, "cse1.sp.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_ae[] = { { PKI_SAN_URI, "//sp.example.com/CSE-1/Csensor7", 0 }, { 0, 0, 0 } };
    /* an AE of another service provider, with the same relative name */
    pki_san s_oth[] = { { PKI_SAN_URI, "//other-sp.com/CSE-1/Csensor7", 0 }, { 0, 0, 0 } };
    if (dir == NULL || !pki_root("Originator Root", &root) || !pki_leaf(&root, "cse1", s_srv, &server)
        || !pki_leaf(&root, "Csensor7", s_ae, &ae) || !pki_leaf(&root, "Csensor7", s_oth, &ae_other))
        return -1;
    static const char peers[] =
        "anchor R root.pem\n"
        "peer //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 R\n"
        "peer //other-sp.com/CSE-1/Csensor7 uri://other-sp.com/CSE-1/Csensor7 R\n";
    int ok = pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_cert(dir, "server.pem", server.cert)
        && pki_write_key(dir, "server.key", server.key)
        && pki_write_cert(dir, "ae.pem", ae.cert)
        && pki_write_key(dir, "ae.key", ae.key)
        && pki_write_cert(dir, "ae-other.pem", ae_other.cert)
        && pki_write_key(dir, "ae-other.key", ae_other.key)
        /* the registrar knows its SP: from sp-id, or from an absolute local-id */
        && pki_writef(dir, "registrar.policy",
                      "local-id /CSE-1\nsp-id //sp.example.com\ncert server.pem\nkey server.key\n%s", peers)
        && pki_writef(dir, "registrar-abs.policy",
                      "local-id //sp.example.com/CSE-1\ncert server.pem\nkey server.key\n%s", peers)
        /* ... or does not (an SP-relative local-id alone) */
        && pki_writef(dir, "registrar-rel.policy",
                      "local-id /CSE-1\ncert server.pem\nkey server.key\n%s", peers)
        && pki_writef(dir, "ae.policy",
                      "local-id //sp.example.com/CSE-1/Csensor7\ncert ae.pem\nkey ae.key\n"
                      "anchor R root.pem\npeer /CSE-1 dns:cse1.sp.example.com R\n")
        && pki_writef(dir, "ae-other.policy",
                      "local-id //other-sp.com/CSE-1/Csensor7\ncert ae-other.pem\nkey ae-other.key\n"
                      "anchor R root.pem\npeer /CSE-1 dns:cse1.sp.example.com R\n");
    pki_cert_free(&root);
    pki_cert_free(&server);
    pki_cert_free(&ae);
    pki_cert_free(&ae_other);
    if (!ok)
        return -1;
    reg = registrar_conn("registrar.policy", "ae.policy", &sctx, &cctx);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_free(reg);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    pki_dir_free(&dir);
    return 0;
}

static void test_labels(void **state)
{
    (void)state;
    assert_str_eq(m2mtls_ssl_peer_id(reg), "//sp.example.com/CSE-1/Csensor7");
    assert_str_eq(m2mtls_ssl_local_id(reg), "/CSE-1");
}

static void test_from_matches(void **state)
{
    (void)state;
    assert_int_equal(m2mtls_ssl_check_originator(reg, "Csensor7"), 1);
    assert_int_equal(m2mtls_ssl_check_originator(reg, "/CSE-1/Csensor7"), 1);
    assert_int_equal(m2mtls_ssl_check_originator(reg, "//sp.example.com/CSE-1/Csensor7"), 1);
}

static void test_from_mismatch(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Cother", "/CSE-2/Csensor7", "//other.sp/CSE-1/Csensor7",
        "Csensor", "Csensor77", "csensor7", "/CSE-1/Csensor", "/CSE-1/Csensor7/x",
        "//sp.example.com/CSE-2/Csensor7", "//sp.example.com/CSE-1/Csensor8",
        "CSE-1/Csensor7", "/Csensor7", "//sp.example.com/Csensor7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (m2mtls_ssl_check_originator(reg, bad[i]) != 0)
            fail_msg("From \"%s\" accepted for //sp.example.com/CSE-1/Csensor7", bad[i]);
    assert_int_equal(m2mtls_ssl_check_originator(reg, NULL), 0);
    assert_int_equal(m2mtls_ssl_check_originator(reg, ""), 0);
}

static void test_unlabelled(void **state)
{
    (void)state;
    /* an SSL of an installed context that never handshook */
    SSL *ssl = SSL_new(sctx);
    assert_non_null(ssl);
    assert_null(m2mtls_ssl_peer_id(ssl));
    assert_int_equal(m2mtls_ssl_check_originator(ssl, "Csensor7"), 0);
    assert_int_equal(m2mtls_ssl_check_originator(ssl, "//sp.example.com/CSE-1/Csensor7"), 0);
    SSL_free(ssl);
    /* an SSL of a context without m2mtls */
    SSL_CTX *plain = SSL_CTX_new(TLS_server_method());
    ssl = SSL_new(plain);
    assert_null(m2mtls_ssl_peer_id(ssl));
    assert_null(m2mtls_ssl_local_id(ssl));
    assert_null(m2mtls_ssl_reject_reason(ssl));
    assert_int_equal(m2mtls_ssl_check_originator(ssl, "Csensor7"), 0);
    assert_int_equal(m2mtls_ssl_check_originator(ssl, "//sp.example.com/CSE-1/Csensor7"), 0);
    SSL_free(ssl);
    SSL_CTX_free(plain);
}

typedef struct from_case {
    const char *from;
    int         same;
} from_case;

static void check_froms(const char *registrar, const char *ae, const from_case *cases, size_t n)
{
    SSL_CTX *s, *c;
    SSL *ssl = registrar_conn(registrar, ae, &s, &c);
    for (size_t i = 0; i < n; i++)
        if (m2mtls_ssl_check_originator(ssl, cases[i].from) != cases[i].same)
            fail_msg("%s, peer %s: From \"%s\" %s", registrar, m2mtls_ssl_peer_id(ssl), cases[i].from,
                     cases[i].same ? "refused" : "accepted");
    SSL_free(ssl);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

/* The SP of a relative From is the receiving CSE's own, never the peer's. */
static void test_from_relative_uses_own_sp(void **state)
{
    (void)state;
    static const from_case own_sp[] = {
        { "Csensor7", 1 }, { "/CSE-1/Csensor7", 1 }, { "//sp.example.com/CSE-1/Csensor7", 1 },
        { "//SP.Example.COM/CSE-1/Csensor7", 1 }, { "//other-sp.com/CSE-1/Csensor7", 0 },
    };
    /* an AE of another SP is named by its absolute id only */
    static const from_case other_sp[] = {
        { "Csensor7", 0 }, { "/CSE-1/Csensor7", 0 }, { "//sp.example.com/CSE-1/Csensor7", 0 },
        { "//other-sp.com/CSE-1/Csensor7", 1 }, { "//OTHER-SP.com/CSE-1/Csensor7", 1 },
    };
    /* without an own SP-ID, a relative From never names an absolute identity */
    static const from_case unknown_sp[] = {
        { "Csensor7", 0 }, { "/CSE-1/Csensor7", 0 }, { "//sp.example.com/CSE-1/Csensor7", 1 },
    };
    static const from_case unknown_sp_other[] = {
        { "Csensor7", 0 }, { "/CSE-1/Csensor7", 0 }, { "//other-sp.com/CSE-1/Csensor7", 1 },
    };
    const char *knowing[] = { "registrar.policy", "registrar-abs.policy" };
    for (size_t i = 0; i < 2; i++) {
        check_froms(knowing[i], "ae.policy", own_sp, sizeof own_sp / sizeof own_sp[0]);
        check_froms(knowing[i], "ae-other.policy", other_sp, sizeof other_sp / sizeof other_sp[0]);
    }
    check_froms("registrar-rel.policy", "ae.policy", unknown_sp, sizeof unknown_sp / sizeof unknown_sp[0]);
    check_froms("registrar-rel.policy", "ae-other.policy", unknown_sp_other,
                sizeof unknown_sp_other / sizeof unknown_sp_other[0]);
}

/* `sp-id //SP-ID`: one line, a domain name after "//", the SP of an absolute local-id. */
static void test_sp_id_directive(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error;
    } bad[] = {
        { "sp-id\n", "p:1: sp-id: missing field: expected 'sp-id //<SP-ID>'" },
        { "sp-id //a.example //b.example\n", "p:1: sp-id: too many fields" },
        { "sp-id sp.example.com\n", "p:1: sp-id 'sp.example.com' is not of the form //SP-ID" },
        { "sp-id //\n", "p:1: sp-id '//' is not of the form //SP-ID" },
        { "sp-id //sp.example.com/CSE-1\n", "p:1: sp-id '//sp.example.com/CSE-1' is not of the form" },
        { "sp-id //a.example\nsp-id //a.example\n", "p:2: duplicate sp-id (first at line 1)" },
        { "local-id //sp.example.com/CSE-1\nsp-id //other.example\n",
          "p:2: sp-id //other.example does not match the SP-ID of local-id //sp.example.com/CSE-1 (line 1)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_true(pki_writef(dir, "p", "%sanchor R root.pem\n", bad[i].text));
        char *path = pki_path(dir, "p");
        m2mtls_policy *p = m2mtls_policy_load(path);
        free(path);
        if (p != NULL)
            fail_msg("accepted: %s", bad[i].text);
        assert_contains(m2mtls_last_error(), bad[i].error);
    }
    assert_true(pki_writef(dir, "p", "local-id //SP.example.com/CSE-1\nsp-id //sp.example.com\nanchor R root.pem\n"));
    char *path = pki_path(dir, "p");
    m2mtls_policy *p = m2mtls_policy_load(path);
    free(path);
    if (p == NULL)
        fail_msg("refused: %s", m2mtls_last_error());
    m2mtls_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_from_matches),
        cmocka_unit_test(test_from_mismatch),
        cmocka_unit_test(test_unlabelled),
        cmocka_unit_test(test_from_relative_uses_own_sp),
        cmocka_unit_test(test_sp_id_directive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
