/* SPDX-License-Identifier: Apache-2.0 */
/* A refused PIN is presented to the token exactly once (the fault module
 * counts C_Login). Run as `faults_test_pin initial` or `... later`:
 *  initial  the token refuses the PIN (CKR_PIN_INCORRECT) from the start:
 *           several key loads (two URIs, a key reference file read with
 *           PEM_read_bio_PrivateKey) and server contexts made from a policy
 *           all fail, naming CKR_PIN_INCORRECT; C_Login was called once.
 *  later    the PIN works, a handshake succeeds (one C_Login); then the token
 *           logs the provider out (CKR_USER_NOT_LOGGED_IN on C_Sign) and
 *           refuses the PIN: that handshake fails with "C_Login:
 *           CKR_PIN_INCORRECT"; further handshakes and key loads fail at once,
 *           also after the token would accept the PIN again; two C_Login in all.
 *  transient C_Login fails once with CKR_USER_PIN_NOT_INITIALIZED, later once
 *           with CKR_GENERAL_ERROR (what SoftHSM says in a forked child that
 *           read the token while another process held its files): not a PIN
 *           refusal; the provider restarts the
 *           module and logs in again, the key loads and signs. Every time:
 *           the key load fails after 3 attempts, and works once the fault is
 *           gone (the PIN was never refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "faults_util.h"
#include "hs.h"
#include "pki.h"
#include "prov_fixture.h"

#define AE_ID "//sp.example.com/CSE-1234/Cpin"
static fx_t fx;
static char faults[PATH_MAX + 16], counts[PATH_MAX + 16];
static const char *mode;

static unsigned long logins(void)
{
    unsigned long c, i;
    ft_count(counts, "C_Login", &c, &i);
    return c;
}

/* A context of POLICY (server or client), NULL when it cannot be made. */
static SSL_CTX *make_ctx(const char *policy, int server)
{
    return hs_ctx_for(server, 0, 0, fx.dir, policy);
}

static EVP_PKEY *read_ref(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

static int setup(void **state)
{
    char conf[PATH_MAX + 16];
    pki_cert ca, xs = { 0 }, xc;
    pki_san s_s[] = { { PKI_SAN_DNS, "s.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_c[] = { { PKI_SAN_URI, AE_ID, 0 }, { 0, 0, 0 } };

    if (!fx_setup(&fx, FX_KEY_EC | FX_KEY_EC2))
        return -1;
    if (!ft_use_fault_module(fx.dir, fx.pinfile, FAULT_MODULE, faults, counts, conf) || !pki_root("pin root", &ca))
        return -1;
    /* the server certificate needs the token's public key: read it with the
     * plain SoftHSM configuration, in a library context of its own */
    {
        OSSL_LIB_CTX *lc = fx_libctx(fx.conf);
        EVP_PKEY *ks = lc != NULL ? fx_load(lc, FX_EC_URI) : NULL;
        EVP_PKEY *pub = ks != NULL ? fx_public(ks, NULL) : NULL;

        if (pub != NULL && !pki_leaf_key(&ca, "s", s_s, pub, &xs))
            xs.cert = NULL;
        EVP_PKEY_free(pub);
        EVP_PKEY_free(ks);
        fx_libctx_free(lc);
    }
    if (xs.cert == NULL || !pki_leaf(&ca, "Cpin", s_c, &xc) || !pki_write_cert(fx.dir, "ca.pem", ca.cert)
        || !pki_write_cert(fx.dir, "s.pem", xs.cert) || !pki_write_cert(fx.dir, "c.pem", xc.cert)
        || !pki_write_key(fx.dir, "c.key", xc.key))
        return -1;
    if (!pki_writef(fx.dir, "s.policy", "local-id /CSE-S\ncert s.pem\nkey %s\nanchor root ca.pem\npeer " AE_ID
                    " uri:" AE_ID " root\n", fx.ecref)
        || !pki_writef(fx.dir, "c.policy", "local-id " AE_ID "\ncert c.pem\nkey c.key\nanchor root ca.pem\n"
                       "peer /CSE-S dns:s.example.com root\n"))
        return -1;
    pki_cert_free(&ca);
    pki_cert_free(&xs);
    pki_cert_free(&xc);
    /* from here on the provider (default library context) uses the fault module */
    if (!ft_faults(faults, strcmp(mode, "initial") == 0 ? "C_Login CKR_PIN_INCORRECT\n" : "")
        || !OSSL_LIB_CTX_load_config(NULL, conf))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(&fx);
    return 0;
}

static void test_initial(void **state)
{
    for (int i = 0; i < 3; i++) {
        assert_null(fx_load(NULL, FX_EC_URI));
        assert_true(fx_errors_contain("CKR_PIN_INCORRECT"));
        assert_null(fx_load(NULL, FX_EC2_URI));
        assert_true(fx_errors_contain("CKR_PIN_INCORRECT"));
        assert_null(read_ref(fx.ecref));
        assert_true(fx_errors_contain("CKR_PIN_INCORRECT"));
        assert_null(make_ctx("s.policy", 1));
        ERR_clear_error();
    }
    fprintf(stderr, "  C_Login calls: %lu\n", logins());
    assert_int_equal(logins(), 1);
    /* the token would take the PIN now: still never presented again */
    assert_true(ft_faults(faults, ""));
    assert_null(fx_load(NULL, FX_EC_URI));
    assert_true(fx_errors_contain("not tried again"));
    assert_int_equal(logins(), 1);
}

/* One connection of client C to server S: 1 when the client completed it
 * labelled /CSE-S; the server's side in *SRV (the caller clears it). */
static int connect_to(SSL_CTX *s, SSL_CTX *c, hs_side *srv)
{
    hs_opts o = { .server_ctx = s, .client_ctx = c, .peer = "/CSE-S" };
    hs_side cl;
    int ok = hs_run(&o, srv, &cl) && cl.ok && cl.peer_id != NULL && strcmp(cl.peer_id, "/CSE-S") == 0;
    hs_side_clear(&cl);
    return ok;
}

static void test_later(void **state)
{
    SSL_CTX *s = make_ctx("s.policy", 1), *c = make_ctx("c.policy", 0);
    hs_side r;

    assert_non_null(s);
    assert_non_null(c);
    assert_true(connect_to(s, c, &r));
    hs_side_clear(&r);
    assert_int_equal(logins(), 1);
    /* the token logs us out and refuses the PIN from now on */
    assert_true(ft_faults(faults, "C_Sign CKR_USER_NOT_LOGGED_IN count=1\nC_Login CKR_PIN_INCORRECT\n"));
    assert_false(connect_to(s, c, &r));
    fprintf(stderr, "  refused; server error queue: %s\n", r.errors);
    assert_non_null(strstr(r.errors, "C_Login: CKR_PIN_INCORRECT"));
    hs_side_clear(&r);
    assert_int_equal(logins(), 2);
    for (int i = 0; i < 3; i++) {
        assert_false(connect_to(s, c, &r));
        assert_non_null(strstr(r.errors, "CKR_PIN_INCORRECT"));
        hs_side_clear(&r);
        assert_null(fx_load(NULL, FX_EC2_URI));
        ERR_clear_error();
    }
    assert_int_equal(logins(), 2);
    assert_true(ft_faults(faults, ""));
    assert_false(connect_to(s, c, &r));
    hs_side_clear(&r);
    assert_null(read_ref(fx.ecref));
    ERR_clear_error();
    fprintf(stderr, "  C_Login calls: %lu\n", logins());
    assert_int_equal(logins(), 2);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_transient(void **state)
{
    OSSL_LIB_CTX *vctx = fx_default_libctx();
    EVP_PKEY *k, *pub;

    assert_true(ft_faults(faults, "C_Login CKR_USER_PIN_NOT_INITIALIZED count=1\n"));
    k = fx_load(NULL, FX_EC_URI);
    if (k == NULL)
        fx_errors_contain("-");
    assert_non_null(k);
    assert_non_null(pub = fx_public(k, vctx));
    assert_true(fx_sign_verify(NULL, k, vctx, pub, "SHA256", NULL));
    fprintf(stderr, "  C_Login calls: %lu\n", logins());
    assert_int_equal(logins(), 2);
    /* logged out behind our back, and the next login meets CKR_GENERAL_ERROR once */
    assert_true(ft_faults(faults, "C_Sign CKR_USER_NOT_LOGGED_IN count=1\nC_Login CKR_GENERAL_ERROR count=1\n"));
    assert_true(fx_sign_verify(NULL, k, vctx, pub, "SHA256", NULL));
    fprintf(stderr, "  C_Login calls: %lu\n", logins());
    assert_int_equal(logins(), 4);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(k);
    fx_libctx_free(vctx);
}

static void test_transient_always(void **state)
{
    EVP_PKEY *k;

    assert_true(ft_faults(faults, "C_Login CKR_USER_PIN_NOT_INITIALIZED\n"));
    assert_null(fx_load(NULL, FX_EC_URI));
    assert_true(fx_errors_contain("C_Login: CKR_USER_PIN_NOT_INITIALIZED"));
    fprintf(stderr, "  C_Login calls: %lu\n", logins());
    assert_int_equal(logins(), 3);
    assert_true(ft_faults(faults, ""));
    assert_non_null(k = fx_load(NULL, FX_EC_URI));
    assert_int_equal(logins(), 4);
    EVP_PKEY_free(k);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest initial[] = { cmocka_unit_test(test_initial) };
    const struct CMUnitTest later[] = { cmocka_unit_test(test_later) };
    const struct CMUnitTest transient[] = { cmocka_unit_test(test_transient) };
    const struct CMUnitTest transient_always[] = { cmocka_unit_test(test_transient_always) };

    mode = argc > 1 ? argv[1] : "initial";
    if (strcmp(mode, "later") == 0)
        return cmocka_run_group_tests(later, setup, teardown);
    if (strcmp(mode, "transient") == 0)
        return cmocka_run_group_tests(transient, setup, teardown);
    if (strcmp(mode, "transient-always") == 0)
        return cmocka_run_group_tests(transient_always, setup, teardown);
    return cmocka_run_group_tests(initial, setup, teardown);
}
