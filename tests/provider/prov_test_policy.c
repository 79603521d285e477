/* SPDX-License-Identifier: Apache-2.0 */
/* The provider together with the policy library (libm2mtls): both entities'
 * keys are in the token — the responder's through a key reference file, the
 * initiator's through a pkcs11: URI, both named by the `key` line of the policy
 * file — and the TS-0003 association is verified and labelled on both sides,
 * over TLS 1.2 and TLS 1.3. The provider is loaded into the default library
 * context from openssl.cnf, as an unmodified application would have it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <m2mtls/policy.h>

#include "prov_fixture.h"

#define CSE_ID "/CSE-IN"
#define CSE_DNS "in-cse.sp.example.com"
#define AE_ID "//sp.example.com/CSE-1234/Csensor7"

static fx_t fx;
static char server_policy[PATH_MAX + 32], client_policy[PATH_MAX + 32];

static int write_policy(const char *path, const char *body)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return 0;
    fputs(body, fp);
    return fclose(fp) == 0;
}

static int setup(void **state)
{
    char path[PATH_MAX + 32], body[PATH_MAX + 512];
    EVP_PKEY *ca_key, *srv, *cli;
    X509 *ca, *sc, *cc;

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_EC2))
        return -1;
    /* the provider in the default library context, as openssl.cnf would put it */
    if (!OSSL_LIB_CTX_load_config(NULL, fx.conf))
        return -1;
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    srv = fx_load(NULL, FX_EC_URI);
    cli = fx_load(NULL, FX_EC2_URI);
    if (ca_key == NULL || srv == NULL || cli == NULL)
        return -1;
    ca = fx_issue(ca_key, "m2p test root", NULL, NULL, ca_key);
    sc = fx_issue(srv, "in-cse", "DNS:" CSE_DNS, ca, ca_key);
    cc = fx_issue(cli, "Csensor7", "URI:" AE_ID, ca, ca_key);
    if (ca == NULL || sc == NULL || cc == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/ca.pem", fx.dir);
    if (!fx_write_pem_cert(path, ca))
        return -1;
    snprintf(path, sizeof(path), "%s/server.pem", fx.dir);
    if (!fx_write_pem_cert(path, sc))
        return -1;
    snprintf(path, sizeof(path), "%s/client.pem", fx.dir);
    if (!fx_write_pem_cert(path, cc))
        return -1;
    snprintf(server_policy, sizeof(server_policy), "%s/server.policy", fx.dir);
    snprintf(body, sizeof(body),
             "local-id " CSE_ID "\ncert server.pem\nkey %s\nanchor root ca.pem\n"
             "peer " AE_ID " uri:" AE_ID " root\n", fx.ecref);
    if (!write_policy(server_policy, body))
        return -1;
    snprintf(client_policy, sizeof(client_policy), "%s/client.policy", fx.dir);
    snprintf(body, sizeof(body),
             "local-id " AE_ID "\ncert client.pem\nkey " FX_EC2_URI "\nanchor root ca.pem\n"
             "peer " CSE_ID " dns:" CSE_DNS " root\n");
    if (!write_policy(client_policy, body))
        return -1;
    X509_free(ca);
    X509_free(sc);
    X509_free(cc);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv);
    EVP_PKEY_free(cli);
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(&fx);
    return 0;
}

typedef struct {
    char server_peer[128], client_peer[128];
} ids;

static void on_server(SSL *ssl, int phase, void *arg)
{
    ids *r = arg;
    const char *p;

    if (phase == 1 && (p = m2mtls_ssl_peer_id(ssl)) != NULL)
        snprintf(r->server_peer, sizeof(r->server_peer), "%s", p);
}

static void on_client(SSL *ssl, int phase, void *arg)
{
    ids *r = arg;
    const char *p;

    if (phase == 0)
        m2mtls_ssl_set_peer(ssl, CSE_ID);
    else if ((p = m2mtls_ssl_peer_id(ssl)) != NULL)
        snprintf(r->client_peer, sizeof(r->client_peer), "%s", p);
}

static void handshake(int version)
{
    m2mtls_policy *sp = m2mtls_policy_load(server_policy);
    m2mtls_policy *cp = m2mtls_policy_load(client_policy);
    SSL_CTX *s, *c;
    fx_tls t;
    ids r;

    if (sp == NULL || cp == NULL)
        fprintf(stderr, "policy: %s\n", m2mtls_last_error());
    assert_non_null(sp);
    assert_non_null(cp);
    assert_non_null(s = SSL_CTX_new(TLS_server_method()));
    assert_non_null(c = SSL_CTX_new(TLS_client_method()));
    if (m2mtls_ctx_use_credential(s, sp) != 1 || m2mtls_ctx_use_credential(c, cp) != 1) {
        fprintf(stderr, "credential: %s\n", m2mtls_last_error());
        ERR_print_errors_fp(stderr);
        fail();
    }
    assert_int_equal(m2mtls_ctx_install(s, sp), 1);
    assert_int_equal(m2mtls_ctx_install(c, cp), 1);
    memset(&t, 0, sizeof(t));
    memset(&r, 0, sizeof(r));
    t.server = s;
    t.client = c;
    t.version = version;
    t.groups = "P-256";
    t.on_server = on_server;
    t.on_client = on_client;
    t.arg = &r;
    if (!fx_tls_handshake(&t))
        fprintf(stderr, "handshake failed: %s\n", t.error);
    assert_string_equal(t.error, "");
    assert_string_equal(r.server_peer, AE_ID);
    assert_string_equal(r.client_peer, CSE_ID);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    m2mtls_policy_free(sp);
    m2mtls_policy_free(cp);
}

static void test_tls12_policy(void **state)
{
    handshake(TLS1_2_VERSION);
}

static void test_tls13_policy(void **state)
{
    handshake(TLS1_3_VERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12_policy),
        cmocka_unit_test(test_tls13_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
