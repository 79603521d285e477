/* SPDX-License-Identifier: Apache-2.0 */
/* Faults injected into the PKCS#11 module under real TLS handshakes (libm2mtls
 * on both sides, loopback). Two servers in this process share the provider:
 * A signs with a key in token "m2p", B with a key in token "m2p2". The module
 * is the fault module (tests/faults/fault_pkcs11.c) in front of SoftHSM.
 *  - transient faults (one CKR_SESSION_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN,
 *    CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR on C_Sign or C_SignInit, also two in a
 *    row, also after=N, also with the module failing C_OpenSession during the
 *    recovery) are recovered: the handshake succeeds, the fault was injected;
 *  - a permanent fault (CKR_DEVICE_ERROR on every C_Sign / CKR_DEVICE_REMOVED on
 *    every C_SignInit of token m2p) fails A's handshakes with "C_Sign:
 *    CKR_DEVICE_ERROR" on the server's error queue while B keeps working, and A
 *    works again once the fault is gone; a non-retryable CKR_FUNCTION_FAILED
 *    fails exactly one handshake;
 *  - a 200 ms delay on C_Sign slows the handshake down and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>

#include "faults_util.h"
#include "hs.h"
#include "pki.h"
#include "prov_fixture.h"

#define AE_ID "//sp.example.com/CSE-1234/Cfaults"
static fx_t fx;
static char faults[PATH_MAX + 16], counts[PATH_MAX + 16];
static SSL_CTX *srv_a, *srv_b, *cli; /* the servers A and B, and the client */

static int setup(void **state)
{
    char conf[PATH_MAX + 16];
    EVP_PKEY *ka, *kb;
    pki_cert ca, xa, xb, xc;
    pki_san s_a[] = { { PKI_SAN_DNS, "a.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_b[] = { { PKI_SAN_DNS, "b.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_c[] = { { PKI_SAN_URI, AE_ID, 0 }, { 0, 0, 0 } };

    if (!fx_setup(&fx, FX_KEY_EC))
        return -1;
    /* a second token (SOFTHSM2_CONF was set by fx_setup) */
    if (!fx_run("'%s' --init-token --free --label m2p2 --pin " FX_PIN " --so-pin 5678 >/dev/null", M2P_SOFTHSM_UTIL)
        || !fx_run("'%s' --module '%s' --token-label m2p2 --login --pin " FX_PIN
                   " --keypairgen --key-type EC:prime256v1 --id 01 --label ec --usage-sign --sensitive >/dev/null",
                   M2P_PKCS11_TOOL, M2P_SOFTHSM))
        return -1;
    if (!ft_use_fault_module(fx.dir, fx.pinfile, FAULT_MODULE, faults, counts, conf)
        || !OSSL_LIB_CTX_load_config(NULL, conf))
        return -1;
    ka = fx_load(NULL, FX_EC_URI);
    kb = fx_load(NULL, "pkcs11:token=m2p2;object=ec;type=private");
    if (ka == NULL || kb == NULL || !pki_root("faults root", &ca) || !pki_leaf_key(&ca, "a", s_a, ka, &xa)
        || !pki_leaf_key(&ca, "b", s_b, kb, &xb) || !pki_leaf(&ca, "Cfaults", s_c, &xc))
        return -1;
    if (!pki_write_cert(fx.dir, "ca.pem", ca.cert) || !pki_write_cert(fx.dir, "a.pem", xa.cert)
        || !pki_write_cert(fx.dir, "b.pem", xb.cert) || !pki_write_cert(fx.dir, "c.pem", xc.cert)
        || !pki_write_key(fx.dir, "c.key", xc.key))
        return -1;
    if (!pki_writef(fx.dir, "a.policy", "local-id /CSE-A\ncert a.pem\nkey %s\nanchor root ca.pem\npeer " AE_ID
                    " uri:" AE_ID " root\n", fx.ecref)
        || !pki_writef(fx.dir, "b.policy", "local-id /CSE-B\ncert b.pem\nkey pkcs11:token=m2p2;object=ec;type=private\n"
                       "anchor root ca.pem\npeer " AE_ID " uri:" AE_ID " root\n")
        || !pki_writef(fx.dir, "c.policy", "local-id " AE_ID "\ncert c.pem\nkey c.key\nanchor root ca.pem\n"
                       "peer /CSE-A dns:a.example.com root\npeer /CSE-B dns:b.example.com root\n"))
        return -1;
    pki_cert_free(&ca);
    pki_cert_free(&xa);
    pki_cert_free(&xb);
    pki_cert_free(&xc);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    if ((srv_a = hs_ctx_for(1, 0, 0, fx.dir, "a.policy")) == NULL || (srv_b = hs_ctx_for(1, 0, 0, fx.dir, "b.policy")) == NULL
        || (cli = hs_ctx_for(0, 0, 0, fx.dir, "c.policy")) == NULL) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    SSL_CTX_free(srv_a);
    SSL_CTX_free(srv_b);
    SSL_CTX_free(cli);
    fx_teardown(&fx);
    return 0;
}

static unsigned long injected(const char *fn)
{
    unsigned long c, i;
    ft_count(counts, fn, &c, &i);
    return i;
}

/* One connection of the client to SERVER (A or B) for association PEER: 1 when
 * the client completed it with PEER's label; the server's side in *SRV (the
 * caller clears it). */
static int connect_to(SSL_CTX *server, const char *peer, hs_side *srv)
{
    hs_opts o = { .server_ctx = server, .client_ctx = cli, .peer = peer };
    hs_side c;
    int ok = hs_run(&o, srv, &c) && c.ok && c.peer_id != NULL && strcmp(c.peer_id, peer) == 0;
    hs_side_clear(&c);
    return ok;
}

static void expect_ok(SSL_CTX *server, const char *peer)
{
    hs_side r;
    int ok = connect_to(server, peer, &r);
    if (!ok || !r.ok)
        fprintf(stderr, "handshake with %s failed; server: %s\n", peer, r.errors);
    assert_true(ok);
    assert_true(r.ok);
    assert_string_equal(r.peer_id ? r.peer_id : "", AE_ID);
    hs_side_clear(&r);
}

static void expect_fail(SSL_CTX *server, const char *peer, const char *fn, const char *ckr)
{
    hs_side r;
    assert_false(connect_to(server, peer, &r));
    assert_false(r.ok);
    fprintf(stderr, "  refused as expected; server error queue: %s\n", r.errors);
    assert_non_null(strstr(r.errors, fn));
    assert_non_null(strstr(r.errors, ckr));
    hs_side_clear(&r);
}

static void test_baseline(void **state)
{
    assert_true(ft_faults(faults, ""));
    expect_ok(srv_a, "/CSE-A");
    expect_ok(srv_b, "/CSE-B");
}

static void test_transient(void **state)
{
    static const char *const fns[] = { "C_Sign", "C_SignInit" };
    static const char *const rvs[] = { "CKR_SESSION_HANDLE_INVALID", "CKR_USER_NOT_LOGGED_IN",
                                       "CKR_DEVICE_REMOVED", "CKR_DEVICE_ERROR" };
    char rule[256];

    for (size_t f = 0; f < 2; f++) {
        for (size_t r = 0; r < 4; r++) {
            for (int n = 1; n <= 2; n++) {   /* one fault, then two in a row */
                unsigned long before = injected(fns[f]);
                snprintf(rule, sizeof(rule), "%s %s count=%d token=m2p\n", fns[f], rvs[r], n);
                fprintf(stderr, "  fault: %s", rule);
                assert_true(ft_faults(faults, rule));
                expect_ok(srv_a, "/CSE-A");
                assert_int_equal(injected(fns[f]), before + (unsigned long)n);
                expect_ok(srv_a, "/CSE-A");
            }
        }
    }
    assert_true(ft_faults(faults, ""));
}

static void test_transient_after(void **state)
{
    unsigned long before = injected("C_SignInit");

    /* the 4th C_SignInit of token m2p fails once: during the 4th handshake */
    assert_true(ft_faults(faults, "C_SignInit CKR_SESSION_HANDLE_INVALID after=3 count=1 token=m2p\n"));
    for (int i = 0; i < 6; i++)
        expect_ok(srv_a, "/CSE-A");
    assert_int_equal(injected("C_SignInit"), before + 1);
    /* the device goes away during the recovery too: the provider restarts the module */
    before = injected("C_OpenSession");
    assert_true(ft_faults(faults, "C_Sign CKR_DEVICE_REMOVED count=1 token=m2p\n"
                                  "C_OpenSession CKR_DEVICE_REMOVED count=1 token=m2p\n"));
    expect_ok(srv_a, "/CSE-A");
    assert_int_equal(injected("C_OpenSession"), before + 1);
    expect_ok(srv_b, "/CSE-B");   /* the restart ended B's sessions too: recovered */
    expect_ok(srv_a, "/CSE-A");
    assert_true(ft_faults(faults, ""));
}

static void test_permanent(void **state)
{
    assert_true(ft_faults(faults, "C_Sign CKR_DEVICE_ERROR token=m2p\n"));
    for (int i = 0; i < 2; i++) {
        expect_fail(srv_a, "/CSE-A", "C_Sign", "CKR_DEVICE_ERROR");
        expect_ok(srv_b, "/CSE-B");     /* the other token is not affected */
    }
    assert_true(ft_faults(faults, ""));
    expect_ok(srv_a, "/CSE-A");
    expect_ok(srv_b, "/CSE-B");

    assert_true(ft_faults(faults, "C_SignInit CKR_DEVICE_REMOVED token=m2p\n"));
    expect_fail(srv_a, "/CSE-A", "C_SignInit", "CKR_DEVICE_REMOVED");
    expect_ok(srv_b, "/CSE-B");
    assert_true(ft_faults(faults, ""));
    expect_ok(srv_a, "/CSE-A");

    /* not a recoverable code: that handshake fails, the next one works */
    assert_true(ft_faults(faults, "C_Sign CKR_FUNCTION_FAILED count=1 token=m2p\n"));
    expect_fail(srv_a, "/CSE-A", "C_Sign", "CKR_FUNCTION_FAILED");
    expect_ok(srv_a, "/CSE-A");
    expect_ok(srv_b, "/CSE-B");
    assert_true(ft_faults(faults, ""));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_delay(void **state)
{
    unsigned long c0, c1, i;
    double t;

    ft_count(counts, "C_Sign", &c0, &i);
    assert_true(ft_faults(faults, "C_Sign delay_ms=200 token=m2p\n"));
    t = now();
    expect_ok(srv_a, "/CSE-A");
    t = now() - t;
    ft_count(counts, "C_Sign", &c1, &i);
    fprintf(stderr, "  handshake with a 200 ms C_Sign: %.3f s (%lu C_Sign calls)\n", t, c1 - c0);
    assert_true(t >= 0.2);
    assert_true(c1 > c0);
    assert_true(ft_faults(faults, ""));
    expect_ok(srv_a, "/CSE-A");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_transient),
        cmocka_unit_test(test_transient_after),
        cmocka_unit_test(test_permanent),
        cmocka_unit_test(test_delay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
