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
#include <openssl/pem.h>
#include <m2mtls/policy.h>

#include "faults_util.h"
#include "prov_fixture.h"

#define AE_ID "//sp.example.com/CSE-1234/Cfaults"
static fx_t fx;
static char faults[PATH_MAX + 16], counts[PATH_MAX + 16];
static SSL_CTX *srv_a, *srv_b, *cli;
static ft_server A, B;

static char *in_dir(const char *name)
{
    static char buf[4][PATH_MAX + 64];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", fx.dir, name);
    return buf[i];
}

static SSL_CTX *make_ctx(const char *policy_path, int server)
{
    m2mtls_policy *p = m2mtls_policy_load(policy_path);
    SSL_CTX *c;

    if (p == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return NULL;
    }
    c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c == NULL || m2mtls_ctx_apply_ts0003_profile(c) != 1 || m2mtls_ctx_use_credential(c, p) != 1
        || m2mtls_ctx_install(c, p) != 1) {
        fprintf(stderr, "context for %s: %s\n", policy_path, m2mtls_last_error());
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        c = NULL;
    }
    m2mtls_policy_free(p);
    return c;
}

static int setup(void **state)
{
    char conf[PATH_MAX + 16], body[PATH_MAX * 2 + 512];
    EVP_PKEY *ca_key, *ka, *kb, *kc;
    X509 *ca, *ca_cert, *xa, *xb, *xc;
    FILE *fp;

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
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    kc = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ka = fx_load(NULL, FX_EC_URI);
    kb = fx_load(NULL, "pkcs11:token=m2p2;object=ec;type=private");
    if (ca_key == NULL || kc == NULL || ka == NULL || kb == NULL)
        return -1;
    ca = fx_issue(ca_key, "faults root", NULL, NULL, ca_key);
    ca_cert = ca;
    xa = fx_issue(ka, "a", "DNS:a.example.com", ca, ca_key);
    xb = fx_issue(kb, "b", "DNS:b.example.com", ca, ca_key);
    xc = fx_issue(kc, "Cfaults", "URI:" AE_ID, ca, ca_key);
    if (xa == NULL || xb == NULL || xc == NULL || !fx_write_pem_cert(in_dir("ca.pem"), ca_cert)
        || !fx_write_pem_cert(in_dir("a.pem"), xa) || !fx_write_pem_cert(in_dir("b.pem"), xb)
        || !fx_write_pem_cert(in_dir("c.pem"), xc) || (fp = fopen(in_dir("c.key"), "w")) == NULL)
        return -1;
    PEM_write_PrivateKey(fp, kc, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    snprintf(body, sizeof(body), "local-id /CSE-A\ncert a.pem\nkey %s\nanchor root ca.pem\npeer " AE_ID " uri:" AE_ID
             " root\n", fx.ecref);
    if (!ft_write_file(in_dir("a.policy"), body))
        return -1;
    snprintf(body, sizeof(body), "local-id /CSE-B\ncert b.pem\nkey pkcs11:token=m2p2;object=ec;type=private\n"
             "anchor root ca.pem\npeer " AE_ID " uri:" AE_ID " root\n");
    if (!ft_write_file(in_dir("b.policy"), body))
        return -1;
    snprintf(body, sizeof(body), "local-id " AE_ID "\ncert c.pem\nkey c.key\nanchor root ca.pem\n"
             "peer /CSE-A dns:a.example.com root\npeer /CSE-B dns:b.example.com root\n");
    if (!ft_write_file(in_dir("c.policy"), body))
        return -1;
    X509_free(ca);
    X509_free(xa);
    X509_free(xb);
    X509_free(xc);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    EVP_PKEY_free(kc);
    if ((srv_a = make_ctx(in_dir("a.policy"), 1)) == NULL || (srv_b = make_ctx(in_dir("b.policy"), 1)) == NULL
        || (cli = make_ctx(in_dir("c.policy"), 0)) == NULL)
        return -1;
    if (!ft_server_start(&A, srv_a) || !ft_server_start(&B, srv_b))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    ft_server_stop(&A);
    ft_server_stop(&B);
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

static void expect_ok(ft_server *s, const char *peer)
{
    ft_result r;
    int ok = ft_connect(s, cli, peer, &r);
    if (!ok || !r.ok)
        fprintf(stderr, "handshake with %s failed; server: %s\n", peer, r.errors);
    assert_true(ok);
    assert_true(r.ok);
    assert_string_equal(r.peer, AE_ID);
}

static void expect_fail(ft_server *s, const char *peer, const char *fn, const char *ckr)
{
    ft_result r;
    assert_false(ft_connect(s, cli, peer, &r));
    assert_false(r.ok);
    fprintf(stderr, "  refused as expected; server error queue: %s\n", r.errors);
    assert_non_null(strstr(r.errors, fn));
    assert_non_null(strstr(r.errors, ckr));
}

static void test_baseline(void **state)
{
    assert_true(ft_faults(faults, ""));
    expect_ok(&A, "/CSE-A");
    expect_ok(&B, "/CSE-B");
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
                expect_ok(&A, "/CSE-A");
                assert_int_equal(injected(fns[f]), before + (unsigned long)n);
                expect_ok(&A, "/CSE-A");
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
        expect_ok(&A, "/CSE-A");
    assert_int_equal(injected("C_SignInit"), before + 1);
    /* the device goes away during the recovery too: the provider restarts the module */
    before = injected("C_OpenSession");
    assert_true(ft_faults(faults, "C_Sign CKR_DEVICE_REMOVED count=1 token=m2p\n"
                                  "C_OpenSession CKR_DEVICE_REMOVED count=1 token=m2p\n"));
    expect_ok(&A, "/CSE-A");
    assert_int_equal(injected("C_OpenSession"), before + 1);
    expect_ok(&B, "/CSE-B");   /* the restart ended B's sessions too: recovered */
    expect_ok(&A, "/CSE-A");
    assert_true(ft_faults(faults, ""));
}

static void test_permanent(void **state)
{
    assert_true(ft_faults(faults, "C_Sign CKR_DEVICE_ERROR token=m2p\n"));
    for (int i = 0; i < 2; i++) {
        expect_fail(&A, "/CSE-A", "C_Sign", "CKR_DEVICE_ERROR");
        expect_ok(&B, "/CSE-B");     /* the other token is not affected */
    }
    assert_true(ft_faults(faults, ""));
    expect_ok(&A, "/CSE-A");
    expect_ok(&B, "/CSE-B");

    assert_true(ft_faults(faults, "C_SignInit CKR_DEVICE_REMOVED token=m2p\n"));
    expect_fail(&A, "/CSE-A", "C_SignInit", "CKR_DEVICE_REMOVED");
    expect_ok(&B, "/CSE-B");
    assert_true(ft_faults(faults, ""));
    expect_ok(&A, "/CSE-A");

    /* not a recoverable code: that handshake fails, the next one works */
    assert_true(ft_faults(faults, "C_Sign CKR_FUNCTION_FAILED count=1 token=m2p\n"));
    expect_fail(&A, "/CSE-A", "C_Sign", "CKR_FUNCTION_FAILED");
    expect_ok(&A, "/CSE-A");
    expect_ok(&B, "/CSE-B");
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
    expect_ok(&A, "/CSE-A");
    t = now() - t;
    ft_count(counts, "C_Sign", &c1, &i);
    fprintf(stderr, "  handshake with a 200 ms C_Sign: %.3f s (%lu C_Sign calls)\n", t, c1 - c0);
    assert_true(t >= 0.2);
    assert_true(c1 > c0);
    assert_true(ft_faults(faults, ""));
    expect_ok(&A, "/CSE-A");
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
