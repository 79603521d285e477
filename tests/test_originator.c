/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TS-0003 7.2.1: the From parameter must name the identity bound to the
 * security association, in its CSE-relative, SP-relative or absolute form.
 * One real handshake labels the registrar's side of the connection.
 */
#include <stdlib.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <m2mtls/policy.h>

static char *dir;
static SSL_CTX *sctx, *cctx;
static hs_side srv, cli;

static SSL_CTX *make_ctx(int server, const char *policy)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    char *p = pki_path(dir, policy);
    m2mtls_policy *pol = m2mtls_policy_load(p);
    free(p);
    if (ctx == NULL || pol == NULL || !m2mtls_ctx_install(ctx, pol)
        || !m2mtls_ctx_use_credential(ctx, pol)) {
        fprintf(stderr, "%s: %s\n", policy, m2mtls_last_error());
        m2mtls_policy_free(pol);
        SSL_CTX_free(ctx);
        return NULL;
    }
    m2mtls_policy_free(pol);
    return ctx;
}

static int setup(void **state)
{
    (void)state;
    pki_cert root, server, ae;
    dir = pki_tmpdir();
    pki_san s_srv[] = { { PKI_SAN_DNS, "cse1.sp.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_ae[] = { { PKI_SAN_URI, "//sp.example.com/CSE-1/Csensor7", 0 }, { 0, 0, 0 } };
    if (dir == NULL || !pki_root("Originator Root", &root)
        || !pki_leaf(&root, "cse1", s_srv, &server) || !pki_leaf(&root, "Csensor7", s_ae, &ae))
        return -1;
    int ok = pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_cert(dir, "server.pem", server.cert)
        && pki_write_key(dir, "server.key", server.key)
        && pki_write_cert(dir, "ae.pem", ae.cert)
        && pki_write_key(dir, "ae.key", ae.key)
        && pki_writef(dir, "registrar.policy",
                      "local-id /CSE-1\ncert server.pem\nkey server.key\nanchor R root.pem\n"
                      "peer //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 R\n")
        && pki_writef(dir, "ae.policy",
                      "local-id //sp.example.com/CSE-1/Csensor7\ncert ae.pem\nkey ae.key\n"
                      "anchor R root.pem\npeer /CSE-1 dns:cse1.sp.example.com R\n");
    pki_cert_free(&root);
    pki_cert_free(&server);
    pki_cert_free(&ae);
    if (!ok || (sctx = make_ctx(1, "registrar.policy")) == NULL
        || (cctx = make_ctx(0, "ae.policy")) == NULL)
        return -1;
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .peer = "/CSE-1", .keep = 1 };
    if (!hs_run(&o, &srv, &cli) || !srv.ok || !cli.ok || srv.ssl == NULL) {
        fprintf(stderr, "handshake failed: server %s / %s, client %s / %s\n",
                srv.reason ? srv.reason : "-", srv.ssl_error, cli.reason ? cli.reason : "-",
                cli.ssl_error);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hs_side_clear(&srv);
    hs_side_clear(&cli);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    pki_rmtree(dir);
    free(dir);
    return 0;
}

static void test_labels(void **state)
{
    (void)state;
    assert_str_eq(m2mtls_ssl_peer_id(srv.ssl), "//sp.example.com/CSE-1/Csensor7");
    assert_str_eq(m2mtls_ssl_local_id(srv.ssl), "/CSE-1");
    assert_str_eq(m2mtls_ssl_peer_id(cli.ssl), "/CSE-1");
}

static void test_from_matches(void **state)
{
    (void)state;
    assert_int_equal(m2mtls_ssl_check_originator(srv.ssl, "Csensor7"), 1);
    assert_int_equal(m2mtls_ssl_check_originator(srv.ssl, "/CSE-1/Csensor7"), 1);
    assert_int_equal(m2mtls_ssl_check_originator(srv.ssl, "//sp.example.com/CSE-1/Csensor7"), 1);
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
        if (m2mtls_ssl_check_originator(srv.ssl, bad[i]) != 0)
            fail_msg("From \"%s\" accepted for //sp.example.com/CSE-1/Csensor7", bad[i]);
    assert_int_equal(m2mtls_ssl_check_originator(srv.ssl, NULL), 0);
    assert_int_equal(m2mtls_ssl_check_originator(srv.ssl, ""), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_from_matches),
        cmocka_unit_test(test_from_mismatch),
        cmocka_unit_test(test_unlabelled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
