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
#include <openssl/ssl.h>

#include <m2mtls/policy.h>

#include "hs.h"
#include "pki.h"
#include "prov_fixture.h"

#define CSE_ID "/CSE-IN"
#define CSE_DNS "in-cse.sp.example.com"
#define AE_ID "//sp.example.com/CSE-1234/Csensor7"

static fx_t fx;

static int setup(void **state)
{
    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_EC2))
        return -1;
    /* the provider in the default library context, as openssl.cnf would put it */
    if (!OSSL_LIB_CTX_load_config(NULL, fx.conf))
        return -1;
    /* s.pem for the key EC, c.pem for EC2, both in the token */
    if (!fx_token_pki(&fx, "m2p test root", CSE_DNS, AE_ID))
        return -1;
    if (!pki_writef(fx.dir, "server.policy",
                    "local-id " CSE_ID "\ncert s.pem\nkey %s\nanchor root ca.pem\n"
                    "peer " AE_ID " uri:" AE_ID " root\n", fx.ecref))
        return -1;
    if (!pki_writef(fx.dir, "client.policy",
                    "local-id " AE_ID "\ncert c.pem\nkey " FX_EC2_URI "\nanchor root ca.pem\n"
                    "peer " CSE_ID " dns:" CSE_DNS " root\n"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(&fx);
    return 0;
}

/* Contexts as an application makes them: the credential and the verifier
 * from the policy file, nothing else. */
static SSL_CTX *ctx_for(int server, const char *policy)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    assert_non_null(ctx);
    if (!hs_ctx_install(ctx, fx.dir, policy)) {
        ERR_print_errors_fp(stderr);
        fail();
    }
    return ctx;
}

static void handshake(int version)
{
    SSL_CTX *s = ctx_for(1, "server.policy"), *c = ctx_for(0, "client.policy");
    hs_opts o = { .server_ctx = s, .client_ctx = c, .peer = CSE_ID, .version = version, .groups = "P-256" };
    hs_side sv, cl;

    assert_true(hs_run(&o, &sv, &cl));
    if (!sv.ok || !cl.ok)
        fprintf(stderr, "handshake failed: client %s / server %s\n", cl.errors, sv.errors);
    assert_true(sv.ok && cl.ok);
    assert_string_equal(sv.peer_id ? sv.peer_id : "", AE_ID);
    assert_string_equal(cl.peer_id ? cl.peer_id : "", CSE_ID);
    hs_side_clear(&sv);
    hs_side_clear(&cl);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
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
