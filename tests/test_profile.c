/* SPDX-License-Identifier: Apache-2.0 */
/*
 * m2mtls_ctx_apply_ts0003_profile on every OpenSSL the project supports:
 * - DTLS 1.2 negotiates TS-0003's ECDHE-ECDSA-AES128-CCM8 at the context's
 *   own security level (OpenSSL >= 3.2 rates CCM8 below level 1; the profile
 *   rates that one suite at its key strength instead of lowering the level);
 * - nothing else gets through: another CCM8 suite stays refused, a weak own
 *   key is refused, a weak peer key is refused with its reason;
 * - key exchange: P-256 for TLS 1.2 and DTLS 1.2; for TLS 1.3 on OpenSSL
 *   >= 3.5 the hybrid SecP256r1MLKEM768, with P-256 for peers without it.
 * Real handshakes over loopback sockets (tests/hs.c).
 */
#include <stdlib.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <openssl/err.h>
#include <m2mtls/policy.h>

static char *dir;

static int setup(void **state)
{
    pki_cert root, server, client, weak;
    *state = dir = pki_tmpdir(); /* for hs_test_dir_teardown */
    if (dir == NULL || !pki_root("Profile Root", &root))
        return -1;
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    /* P-192: 80 bits of security, below level 2's 112. */
    EVP_PKEY *p192 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-192");
    pki_opts wo = { .cn = "weak client", .issuer = &root, .sans = s_cli, .key = p192 };
    if (p192 == NULL || !pki_leaf(&root, "server", s_srv, &server) || !pki_leaf(&root, "client", s_cli, &client)
        || !pki_issue(&wo, &weak))
        return -1;
    EVP_PKEY_free(p192);
    int ok = pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_cert(dir, "server.pem", server.cert) && pki_write_key(dir, "server.key", server.key)
        && pki_write_cert(dir, "client.pem", client.cert) && pki_write_key(dir, "client.key", client.key)
        && pki_write_cert(dir, "weak.pem", weak.cert) && pki_write_key(dir, "weak.key", weak.key)
        && pki_writef(dir, "srv.policy", "local-id /CSE-SRV\ncert server.pem\nkey server.key\n"
                      "anchor ROOT root.pem\npeer /CSE-CLI dns:client.example.com ROOT\n")
        && pki_writef(dir, "cli.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ROOT root.pem\npeer /CSE-SRV dns:server.example.com ROOT\n")
        && pki_writef(dir, "weak.policy", "local-id /CSE-CLI\ncert weak.pem\nkey weak.key\n"
                      "anchor ROOT root.pem\npeer /CSE-SRV dns:server.example.com ROOT\n");
    pki_cert *all[] = { &root, &server, &client, &weak };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    return ok ? 0 : -1;
}

/* The security level a new context has here (2 on Debian 12 and 13). */
static int default_level(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    int level = SSL_CTX_get_security_level(ctx);
    SSL_CTX_free(ctx);
    return level;
}

/* A profiled context of SERVER/DTLS with POLICY installed and its credential
 * loaded (POLICY NULL: the profile only). */
static SSL_CTX *profiled(int server, int dtls, const char *policy)
{
    return hs_test_ctx(server, dtls, 0, dir, policy);
}

static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, int dtls, int keep, hs_side *s, hs_side *c)
{
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = dtls, .peer = "/CSE-SRV", .keep = keep };
    hs_test_run(&o, NULL, s, c);
}

static void expect_ok(const hs_side *s, const hs_side *c)
{
    hs_expect_ok(NULL, s, c);
}

/* The group the handshake agreed on, by name. */
static const char *group_name(SSL *ssl, char *buf, size_t len)
{
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
    const char *name = SSL_get0_group_name(ssl);
    snprintf(buf, len, "%s", name != NULL ? name : "(none)");
#else
    int nid = SSL_get_negotiated_group(ssl);
    snprintf(buf, len, "%s", nid == NID_X9_62_prime256v1 ? "secp256r1" : OBJ_nid2sn(nid));
#endif
    return buf;
}

/* ---- DTLS: the TS-0003 suite, at the context's own security level ---------- */

/* TS-0003 10.2.3: DTLS 1.2 with ECDHE-ECDSA-AES128-CCM8 between two profiled
 * contexts, whose security level stays what it was (2 on Debian). */
static void test_dtls_suite_at_default_level(void **state)
{
    (void)state;
    int level = default_level();
    SSL_CTX *sctx = profiled(1, 1, "srv.policy");
    SSL_CTX *cctx = profiled(0, 1, "cli.policy");
    assert_int_equal(SSL_CTX_get_security_level(sctx), level);
    assert_int_equal(SSL_CTX_get_security_level(cctx), level);
    hs_side s, c;
    handshake(sctx, cctx, 1, 0, &s, &c);
    expect_ok(&s, &c);
    assert_int_equal(c.version, DTLS1_2_VERSION);
    assert_str_eq(c.cipher, "ECDHE-ECDSA-AES128-CCM8");
    assert_str_eq(s.cipher, "ECDHE-ECDSA-AES128-CCM8");
    assert_str_eq(s.peer_id, "/CSE-CLI");
    assert_str_eq(c.peer_id, "/CSE-SRV");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* At an explicit level 2 too, and applying the profile twice changes nothing. */
static void test_dtls_suite_level2_profile_twice(void **state)
{
    (void)state;
    SSL_CTX *sctx = profiled(1, 1, NULL);
    SSL_CTX *cctx = profiled(0, 1, NULL);
    SSL_CTX_set_security_level(sctx, 2);
    SSL_CTX_set_security_level(cctx, 2);
    assert_int_equal(m2mtls_ctx_apply_ts0003_profile(sctx), 1);
    assert_int_equal(m2mtls_ctx_apply_ts0003_profile(cctx), 1);
    char *path = pki_path(dir, "srv.policy");
    m2mtls_policy *ps = m2mtls_policy_load(path);
    free(path);
    path = pki_path(dir, "cli.policy");
    m2mtls_policy *pc = m2mtls_policy_load(path);
    free(path);
    assert_non_null(ps);
    assert_non_null(pc);
    assert_int_equal(m2mtls_ctx_install(sctx, ps) && m2mtls_ctx_use_credential(sctx, ps), 1);
    assert_int_equal(m2mtls_ctx_install(cctx, pc) && m2mtls_ctx_use_credential(cctx, pc), 1);
    m2mtls_policy_free(ps);
    m2mtls_policy_free(pc);
    hs_side s, c;
    handshake(sctx, cctx, 1, 0, &s, &c);
    expect_ok(&s, &c);
    assert_str_eq(c.cipher, "ECDHE-ECDSA-AES128-CCM8");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

#if OPENSSL_VERSION_NUMBER >= 0x30200000L
/* Only TS-0003's suite is rated at its key strength: another CCM8 suite that
 * OpenSSL >= 3.2 rates below level 1 stays refused on a profiled context. */
static void test_other_ccm8_suite_still_refused(void **state)
{
    (void)state;
    SSL_CTX *sctx = profiled(1, 1, "srv.policy");
    SSL_CTX *cctx = profiled(0, 1, "cli.policy");
    assert_int_equal(SSL_CTX_set_cipher_list(sctx, "ECDHE-ECDSA-AES256-CCM8"), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-AES256-CCM8"), 1);
    hs_side s, c;
    handshake(sctx, cctx, 1, 0, &s, &c);
    assert_false(c.handshake_ok);
    assert_false(s.handshake_ok);
    assert_contains(c.ssl_error, "no ciphers available");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}
#endif

/* The rest of the level still applies to the own certificate: a P-192 key
 * (80 bits) is refused by a profiled DTLS context at level 2. */
static void test_weak_own_key_refused(void **state)
{
    (void)state;
    SSL_CTX *ctx = profiled(1, 1, NULL);
    SSL_CTX_set_security_level(ctx, 2);
    char *path = pki_path(dir, "weak.policy");
    m2mtls_policy *p = m2mtls_policy_load(path);
    free(path);
    assert_non_null(p);
    assert_int_equal(m2mtls_ctx_use_credential(ctx, p), 0);
    assert_contains(m2mtls_last_error(), "too small");
    m2mtls_policy_free(p);
    SSL_CTX_free(ctx);
    ERR_clear_error();
}

/* ... and to the peer's: a DTLS client with a P-192 certificate is refused by
 * a profiled server at level 2, with the reason. (The client lowers its own
 * level to be able to load that key at all.) */
static void test_weak_peer_key_refused(void **state)
{
    (void)state;
    SSL_CTX *sctx = profiled(1, 1, "srv.policy");
    SSL_CTX_set_security_level(sctx, 2);
    SSL_CTX *cctx = profiled(0, 1, NULL);
    SSL_CTX_set_security_level(cctx, 0);
    SSL_CTX_set1_groups_list(cctx, "P-256:P-192");
    char *path = pki_path(dir, "weak.policy");
    m2mtls_policy *p = m2mtls_policy_load(path);
    free(path);
    assert_non_null(p);
    if (m2mtls_ctx_install(cctx, p) != 1 || m2mtls_ctx_use_credential(cctx, p) != 1)
        fail_msg("weak.policy: %s", m2mtls_last_error());
    m2mtls_policy_free(p);
    hs_side s, c;
    handshake(sctx, cctx, 1, 0, &s, &c);
    assert_false(s.handshake_ok);
    assert_null(s.peer_id);
    assert_non_null(s.reason);
    assert_contains(s.reason, "too weak");
    hs_side_pair_clear(&s, &c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* ---- key exchange groups ----------------------------------------------------- */

static void expect_group(SSL_CTX *sctx, SSL_CTX *cctx, int dtls, const char *group)
{
    hs_side s, c;
    char sg[64], cg[64];
    handshake(sctx, cctx, dtls, 1, &s, &c);
    expect_ok(&s, &c);
    assert_str_eq(group_name(s.ssl, sg, sizeof sg), group);
    assert_str_eq(group_name(c.ssl, cg, sizeof cg), group);
    hs_side_pair_clear(&s, &c);
}

/* TLS 1.3 between two profiled contexts: the hybrid ML-KEM group on OpenSSL
 * >= 3.5, P-256 before. */
static void test_tls13_group(void **state)
{
    (void)state;
    SSL_CTX *sctx = profiled(1, 0, "srv.policy");
    SSL_CTX *cctx = profiled(0, 0, "cli.policy");
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
    expect_group(sctx, cctx, 0, "SecP256r1MLKEM768");
#else
    expect_group(sctx, cctx, 0, "secp256r1");
#endif
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* A TLS 1.3 peer that only has P-256 (as OpenSSL 3.0's profile) still meets
 * a profiled server, and a profiled client, on P-256. */
static void test_tls13_p256_peer(void **state)
{
    (void)state;
    for (int profiled_side = 0; profiled_side < 2; profiled_side++) {
        SSL_CTX *sctx = profiled(1, 0, "srv.policy");
        SSL_CTX *cctx = profiled(0, 0, "cli.policy");
        assert_int_equal(SSL_CTX_set1_groups_list(profiled_side == 0 ? cctx : sctx, "P-256"), 1);
        expect_group(sctx, cctx, 0, "secp256r1");
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

/* A hybrid group is TLS 1.3 only: TLS 1.2 and DTLS 1.2 agree on P-256. */
static void test_tls12_dtls12_group_p256(void **state)
{
    (void)state;
    for (int dtls = 0; dtls < 2; dtls++) {
        SSL_CTX *sctx = profiled(1, dtls, "srv.policy");
        SSL_CTX *cctx = profiled(0, dtls, "cli.policy");
        if (!dtls) {
            assert_int_equal(SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION), 1);
            assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
        }
        expect_group(sctx, cctx, dtls, "secp256r1");
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtls_suite_at_default_level),
        cmocka_unit_test(test_dtls_suite_level2_profile_twice),
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
        cmocka_unit_test(test_other_ccm8_suite_still_refused),
#endif
        cmocka_unit_test(test_weak_own_key_refused),
        cmocka_unit_test(test_weak_peer_key_refused),
        cmocka_unit_test(test_tls13_group),
        cmocka_unit_test(test_tls13_p256_peer),
        cmocka_unit_test(test_tls12_dtls12_group_p256),
    };
    return cmocka_run_group_tests(tests, setup, hs_test_dir_teardown);
}
