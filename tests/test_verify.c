/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verification rules, evaluated through m2mtls_policy_check_cert():
 * name matching by subjectAltName type, each candidate against its own
 * anchor only, path validation, validity, keyUsage, CRLs, exactly one
 * identity, peers-from-cert, initiator semantics and the verdict fields.
 */
#include <stdlib.h>
#include <time.h>

#include <openssl/err.h>

#include "testutil.h"
#include "pki.h"

#include <m2mtls/policy.h>

#define DAY 86400L

static char *dir;
static pki_cert alpha, bravo, charlie, look, inter, pinned;
static pki_cert nc_inter, rsa1024, rsa2048, sha1_root;
static m2mtls_policy *pol, *crl_pol, *noid_pol, *pfc_pol, *nc_pol, *weak_pol;

/* nameConstraints of the constrained intermediate: the SP's AEs (its own
 * host and every host below it), its CSEs' DNS names, minus one host. */
#define NC_VALUE "critical,permitted;URI:sp.example.com,permitted;URI:.sp.example.com," \
                 "permitted;DNS:.sp.example.com,excluded;URI:bad.sp.example.com"

static int root_opts(const char *cn, pki_cert *out)
{
    /* roots valid long before and after every leaf of these tests */
    pki_opts o = { .cn = cn, .ca = PKI_BC_CA, .not_before = -30 * DAY, .not_after = 3650 * DAY };
    return pki_issue(&o, out);
}

static int setup(void **state)
{
    (void)state;
    dir = pki_tmpdir();
    if (dir == NULL)
        return -1;
    pki_san pin_san[] = { { PKI_SAN_DNS, "pinned.example.com", 0 }, { 0, 0, 0 } };
    pki_opts pin = { .cn = "pinned.example.com", .ca = PKI_BC_LEAF, .sans = pin_san,
                     .not_before = -30 * DAY, .not_after = 365 * DAY };
    if (!root_opts("Verify Root", &alpha) || !root_opts("Verify Root Bravo", &bravo)
        || !root_opts("Verify Root Charlie", &charlie)
        || !root_opts("Verify Root", &look) /* same subject as alpha, another key */
        || !pki_issue(&pin, &pinned))
        return -1;
    pki_opts io = { .cn = "Verify Intermediate", .issuer = &alpha, .ca = PKI_BC_CA,
                    .not_before = -20 * DAY, .not_after = 3000 * DAY };
    if (!pki_issue(&io, &inter))
        return -1;
    pki_opts nco = { .cn = "Constrained Intermediate", .issuer = &alpha, .ca = PKI_BC_CA,
                     .not_before = -20 * DAY, .not_after = 3000 * DAY, .name_constraints = NC_VALUE };
    if (!pki_issue(&nco, &nc_inter))
        return -1;
    /* Roots for the strength rules: an RSA-1024 and an RSA-2048 key, and a
     * root that signed itself with SHA-1 (the anchor's own signature is
     * never judged: OpenSSL's level rules). */
    EVP_PKEY *k1024 = pki_key_gen("RSA:1024"), *k2048 = pki_key_gen("RSA:2048");
    pki_opts r1 = { .cn = "RSA-1024 Root", .ca = PKI_BC_CA, .key = k1024, .not_before = -30 * DAY,
                    .not_after = 3650 * DAY };
    pki_opts r2 = { .cn = "RSA-2048 Root", .ca = PKI_BC_CA, .key = k2048, .not_before = -30 * DAY,
                    .not_after = 3650 * DAY };
    pki_opts r3 = { .cn = "SHA-1 Root", .ca = PKI_BC_CA, .md = "SHA1", .not_before = -30 * DAY,
                    .not_after = 3650 * DAY };
    int made = k1024 != NULL && k2048 != NULL && pki_issue(&r1, &rsa1024) && pki_issue(&r2, &rsa2048)
               && pki_issue(&r3, &sha1_root);
    EVP_PKEY_free(k1024);
    EVP_PKEY_free(k2048);
    if (!made)
        return -1;
    long revoked[] = { 666 };
    X509_CRL *crl = pki_crl(&charlie, revoked, 1, 7 * DAY);
    int ok = crl != NULL
        && pki_write_cert(dir, "alpha.pem", alpha.cert)
        && pki_write_cert(dir, "bravo.pem", bravo.cert)
        && pki_write_cert(dir, "charlie.pem", charlie.cert)
        && pki_write_cert(dir, "pinned.pem", pinned.cert)
        && pki_write_crl(dir, "charlie.crl", crl)
        && pki_writef(dir, "main.policy",
                      "local-id /CSE-IN\n"
                      "anchor ALPHA alpha.pem\n"
                      "anchor BRAVO bravo.pem\n"
                      "anchor PINNED pinned.pem\n"
                      "peer /CSE-1 dns:cse1.example.com ALPHA\n"
                      "peer /CSE-2 dns:cse2.example.com BRAVO as=/CSE-IN-AS2\n"
                      "peer /CSE-3 dns:cse3.example.com ALPHA\n"
                      "peer //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 ALPHA\n"
                      "peer /DUP-ALPHA dns:dup.example.com ALPHA\n"
                      "peer /DUP-BRAVO dns:dup.example.com BRAVO\n"
                      "peer /CSE-PIN dns:pinned.example.com PINNED\n"
                      "peer /FIXED uri://sp.example.com/AE/Cfixed ALPHA\n"
                      "peers-from-cert ALPHA uri-prefix://sp.example.com/AE/\n")
        && pki_writef(dir, "crl.policy",
                      "local-id /CSE-IN\n"
                      "anchor CHARLIE charlie.pem\n"
                      "crl charlie.crl\n"
                      "peer /CSE-R dns:revoked.example.com CHARLIE\n"
                      "peer /CSE-OK dns:fine.example.com CHARLIE\n")
        && pki_writef(dir, "noid.policy",
                      "anchor ALPHA alpha.pem\n"
                      "peer /CSE-1 dns:cse1.example.com ALPHA\n")
        && pki_writef(dir, "pfc.policy",
                      "anchor ALPHA alpha.pem\n"
                      "peers-from-cert ALPHA uri-prefix://sp.example.com/CSE-A/\n"
                      "peers-from-cert ALPHA uri-prefix://sp.example.com/\n")
        && pki_writef(dir, "nc.policy",
                      "anchor ALPHA alpha.pem\n"
                      "peers-from-cert ALPHA uri-prefix://sp.example.com/CSE-A/\n"
                      "peers-from-cert ALPHA uri-prefix://mn.sp.example.com/CSE-B/\n"
                      "peers-from-cert ALPHA uri-prefix://bad.sp.example.com/CSE-A/\n"
                      "peers-from-cert ALPHA uri-prefix://other.example.org/CSE-A/\n"
                      "peer /cse-in dns:cse.sp.example.com ALPHA\n"
                      "peer /cse-out dns:cse.other.example.org ALPHA\n")
        && pki_write_cert(dir, "rsa1024.pem", rsa1024.cert)
        && pki_write_cert(dir, "rsa2048.pem", rsa2048.cert)
        && pki_write_cert(dir, "sha1-root.pem", sha1_root.cert)
        && pki_writef(dir, "weak.policy",
                      "anchor ALPHA alpha.pem\n"
                      "anchor RSA1024 rsa1024.pem\n"
                      "anchor RSA2048 rsa2048.pem\n"
                      "anchor SHA1ROOT sha1-root.pem\n"
                      "peer /sha1 dns:sha1.example.com ALPHA\n"
                      "peer /p192 dns:p192.example.com ALPHA\n"
                      "peer /p256 dns:p256.example.com ALPHA\n"
                      "peer /rsa1024 dns:rsa1024.example.com RSA1024\n"
                      "peer /rsa2048 dns:rsa2048.example.com RSA2048\n"
                      "peer /sha1-root dns:sha1-root.example.com SHA1ROOT\n");
    X509_CRL_free(crl);
    if (!ok)
        return -1;
    char *p = pki_path(dir, "main.policy");
    pol = m2mtls_policy_load(p);
    free(p);
    p = pki_path(dir, "crl.policy");
    crl_pol = m2mtls_policy_load(p);
    free(p);
    p = pki_path(dir, "noid.policy");
    noid_pol = m2mtls_policy_load(p);
    free(p);
    p = pki_path(dir, "pfc.policy");
    pfc_pol = m2mtls_policy_load(p);
    free(p);
    p = pki_path(dir, "nc.policy");
    nc_pol = m2mtls_policy_load(p);
    free(p);
    p = pki_path(dir, "weak.policy");
    weak_pol = m2mtls_policy_load(p);
    free(p);
    if (pol == NULL || crl_pol == NULL || noid_pol == NULL || pfc_pol == NULL || nc_pol == NULL
        || weak_pol == NULL) {
        fprintf(stderr, "policy load failed: %s\n", m2mtls_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    m2mtls_policy_free(pol);
    m2mtls_policy_free(crl_pol);
    m2mtls_policy_free(noid_pol);
    m2mtls_policy_free(pfc_pol);
    m2mtls_policy_free(nc_pol);
    m2mtls_policy_free(weak_pol);
    pki_cert_free(&nc_inter);
    pki_cert_free(&rsa1024);
    pki_cert_free(&rsa2048);
    pki_cert_free(&sha1_root);
    pki_cert_free(&alpha);
    pki_cert_free(&bravo);
    pki_cert_free(&charlie);
    pki_cert_free(&look);
    pki_cert_free(&inter);
    pki_cert_free(&pinned);
    pki_dir_free(&dir);
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

/* A leaf issued by ISSUER carrying SANS (PKI_SAN_END terminated). */
static X509 *leaf(const pki_cert *issuer, const char *cn, const pki_san *sans)
{
    pki_cert c;
    assert_true(pki_leaf(issuer, cn, sans, &c));
    X509 *x = c.cert;
    EVP_PKEY_free(c.key);
    return x;
}

static X509 *leaf_opts(pki_opts o)
{
    pki_cert c;
    assert_true(pki_issue(&o, &c));
    X509 *x = c.cert;
    EVP_PKEY_free(c.key);
    return x;
}

static X509 *dns_leaf(const pki_cert *issuer, const char *dns)
{
    pki_san s[] = { { PKI_SAN_DNS, dns, 0 }, { 0, 0, 0 } };
    return leaf(issuer, "leaf", s);
}

static X509 *uri_leaf(const pki_cert *issuer, const char *uri)
{
    pki_san s[] = { { PKI_SAN_URI, uri, 0 }, { 0, 0, 0 } };
    return leaf(issuer, "leaf", s);
}

static void check_full(const m2mtls_policy *p, X509 *cert, STACK_OF(X509) *chain,
                       const char *peer, m2mtls_role role, time_t at, m2mtls_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (m2mtls_policy_check_cert(p, cert, chain, peer, role, at, v) != 1)
        fail_msg("m2mtls_policy_check_cert failed: %s", m2mtls_last_error());
}

static void check(X509 *cert, m2mtls_verdict *v)
{
    check_full(pol, cert, NULL, NULL, M2MTLS_RESPONDER, 0, v);
}

/* Accepted with PEER_ID; the verdict fields are consistent. */
static void expect_accept(m2mtls_verdict *v, const char *peer_id)
{
    if (!v->accepted)
        fail_msg("rejected (expected %s): %s", peer_id, v->reason ? v->reason : "(no reason)");
    assert_str_eq(v->peer_id, peer_id);
    assert_null(v->reason);
    assert_non_null(v->chain);
    assert_true(sk_X509_num(v->chain) >= 1);
    assert_non_null(v->cert_name);
    assert_non_null(v->anchor);
    assert_int_equal(m2mtls_verdict_code(v), M2MTLS_REJECT_NONE);
}

/* Rejected; the reason contains WHY (case-sensitive). */
static void expect_reject(m2mtls_verdict *v, const char *why)
{
    if (v->accepted)
        fail_msg("accepted as %s (expected a rejection: %s)", v->peer_id ? v->peer_id : "(null)",
                 why ? why : "");
    assert_non_null(v->reason);
    if (getenv("M2MTLS_TEST_VERBOSE"))
        print_message("rejected: %s\n", v->reason);
    assert_null(v->chain);
    assert_null(v->peer_id);
    if (why != NULL)
        assert_contains(v->reason, why);
    /* every refusal has a class, and a peer's certificate is never "internal" */
    m2mtls_reject_code code = m2mtls_verdict_code(v);
    if (code == M2MTLS_REJECT_NONE || code == M2MTLS_REJECT_INTERNAL)
        fail_msg("refusal without a peer class (%s): %s", m2mtls_reject_code_name(code), v->reason);
}

/* Rejected with WHY in the reason and CODE as its class. */
static void expect_reject_as(m2mtls_verdict *v, const char *why, m2mtls_reject_code code)
{
    expect_reject(v, why);
    if (m2mtls_verdict_code(v) != code)
        fail_msg("class %s, expected %s: %s", m2mtls_reject_code_name(m2mtls_verdict_code(v)),
                 m2mtls_reject_code_name(code), v->reason);
}

/* Checks CERT against the main policy as a responder, then frees it. */
static void accept_cert(X509 *cert, const char *peer_id)
{
    m2mtls_verdict v;
    check(cert, &v);
    expect_accept(&v, peer_id);
    m2mtls_verdict_clear(&v);
    X509_free(cert);
}

static void reject_cert_as(X509 *cert, const char *why, m2mtls_reject_code code)
{
    m2mtls_verdict v;
    check(cert, &v);
    expect_reject_as(&v, why, code);
    m2mtls_verdict_clear(&v);
    X509_free(cert);
}

static void reject_cert(X509 *cert, const char *why)
{
    m2mtls_verdict v;
    check(cert, &v);
    expect_reject(&v, why);
    m2mtls_verdict_clear(&v);
    X509_free(cert);
}

/* CERT, sent with CA as its chain, is refused by P (as a responder) with WHY; frees CERT. */
static void reject_with_chain(const m2mtls_policy *p, X509 *cert, X509 *ca, const char *why)
{
    STACK_OF(X509) *chain = pki_stack(ca, (X509 *)NULL);
    m2mtls_verdict v;
    check_full(p, cert, chain, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_reject(&v, why);
    m2mtls_verdict_clear(&v);
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
}

/* ---- names ----------------------------------------------------------------- */

static void test_dns_match_and_verdict(void **state)
{
    (void)state;
    X509 *c = dns_leaf(&alpha, "cse1.example.com");
    m2mtls_verdict v;
    check(c, &v);
    expect_accept(&v, "/CSE-1");
    assert_str_eq(v.local_id, "/CSE-IN");
    assert_str_eq(v.cert_name, "dns:cse1.example.com");
    assert_str_eq(v.anchor, "ALPHA");
    assert_int_equal(sk_X509_num(v.chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(v.chain, 0), c), 0);
    assert_int_equal(X509_cmp(sk_X509_value(v.chain, 1), alpha.cert), 0);
    m2mtls_verdict_clear(&v);
    assert_null(v.peer_id);
    assert_null(v.chain);
    m2mtls_verdict_clear(&v); /* twice is harmless */
    X509_free(c);
}

static void test_dns_case_insensitive(void **state)
{
    (void)state;
    X509 *c = dns_leaf(&alpha, "CSE1.Example.COM");
    m2mtls_verdict v;
    check(c, &v);
    expect_accept(&v, "/CSE-1");
    assert_str_eq(v.cert_name, "dns:cse1.example.com");
    m2mtls_verdict_clear(&v);
    X509_free(c);
}

static void test_uri_byte_exact(void **state)
{
    (void)state;
    X509 *c = uri_leaf(&alpha, "//sp.example.com/CSE-1/Csensor7");
    m2mtls_verdict v;
    check(c, &v);
    expect_accept(&v, "//sp.example.com/CSE-1/Csensor7");
    assert_str_eq(v.cert_name, "uri://sp.example.com/CSE-1/Csensor7");
    assert_str_eq(v.anchor, "ALPHA");
    assert_str_eq(v.local_id, "/CSE-IN");
    m2mtls_verdict_clear(&v);
    X509_free(c);

    reject_cert(uri_leaf(&alpha, "//sp.example.com/CSE-1/csensor7"), "no association");
    reject_cert(uri_leaf(&alpha, "//SP.EXAMPLE.COM/CSE-1/Csensor7"), "no association");
    reject_cert(uri_leaf(&alpha, "//sp.example.com/CSE-1/Csensor7/"), "no association");
}

static void test_no_association(void **state)
{
    (void)state;
    reject_cert_as(dns_leaf(&alpha, "unknown.example.com"), "no association", M2MTLS_REJECT_NAME);
    /* a name that is a suffix / prefix of a configured one */
    reject_cert(dns_leaf(&alpha, "xcse1.example.com"), "no association");
    reject_cert(dns_leaf(&alpha, "cse1.example.com.evil.org"), "no association");
}

static void test_cn_never_matches(void **state)
{
    (void)state;
    /* CN equal to the configured name, no subjectAltName at all */
    reject_cert(leaf(&alpha, "cse1.example.com", NULL), "subjectAltName");
    /* CN equal to the name, SAN with another name */
    pki_san other[] = { { PKI_SAN_DNS, "other.example.com", 0 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "cse1.example.com", other), "no association");
    /* CN equal to the URI name */
    reject_cert(leaf(&alpha, "//sp.example.com/CSE-1/Csensor7", NULL), "subjectAltName");
}

static void test_other_san_types_never_match(void **state)
{
    (void)state;
    pki_san email[] = { { PKI_SAN_EMAIL, "cse1.example.com", 0 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", email), NULL);
    pki_san email2[] = { { PKI_SAN_EMAIL, "//sp.example.com/CSE-1/Csensor7", 0 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", email2), NULL);
    /* the DNS text as a URI, the URI text as a DNS name */
    reject_cert(uri_leaf(&alpha, "cse1.example.com"), NULL);
    reject_cert(dns_leaf(&alpha, "//sp.example.com/CSE-1/Csensor7"), NULL);
    pki_san other[] = { { PKI_SAN_OTHERNAME, "cse1.example.com", 0 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "cse1.example.com", other), NULL);
}

static void test_wildcard_rejected(void **state)
{
    (void)state;
    reject_cert_as(dns_leaf(&alpha, "*.example.com"), "wildcard", M2MTLS_REJECT_NAME);
    pki_san both[] = { { PKI_SAN_DNS, "cse1.example.com", 0 }, { PKI_SAN_DNS, "*.example.com", 0 },
                       { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", both), "wildcard");
}

static void test_nul_rejected(void **state)
{
    (void)state;
    static const char dns[] = "cse1.example.com\0.evil.org";
    pki_san s1[] = { { PKI_SAN_DNS, dns, sizeof dns - 1 }, { 0, 0, 0 } };
    reject_cert_as(leaf(&alpha, "leaf", s1), "NUL", M2MTLS_REJECT_NAME);
    /* a trailing NUL: a C string compare would see exactly the configured name */
    pki_san s2[] = { { PKI_SAN_DNS, "cse1.example.com", sizeof "cse1.example.com" }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", s2), "NUL");
    static const char uri[] = "//sp.example.com/CSE-1/Csensor7\0/x";
    pki_san s3[] = { { PKI_SAN_URI, uri, sizeof uri - 1 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", s3), "NUL");
}

/* ---- anchors and chains ------------------------------------------------------ */

static void test_same_name_different_anchors(void **state)
{
    (void)state;
    X509 *a = dns_leaf(&alpha, "dup.example.com");
    m2mtls_verdict v;
    check(a, &v);
    expect_accept(&v, "/DUP-ALPHA");
    assert_str_eq(v.anchor, "ALPHA");
    m2mtls_verdict_clear(&v);
    X509_free(a);

    X509 *b = dns_leaf(&bravo, "dup.example.com");
    check(b, &v);
    expect_accept(&v, "/DUP-BRAVO");
    assert_str_eq(v.anchor, "BRAVO");
    m2mtls_verdict_clear(&v);
    X509_free(b);

    /* issued by neither */
    reject_cert(dns_leaf(&charlie, "dup.example.com"), NULL);
}

static void test_own_anchor_only(void **state)
{
    (void)state;
    /* cse2 is under BRAVO; ALPHA is trusted by the policy but is not cse2's anchor */
    reject_cert_as(dns_leaf(&alpha, "cse2.example.com"), "BRAVO", M2MTLS_REJECT_ROOT_OF_TRUST);
    /* and the other way round */
    reject_cert(dns_leaf(&bravo, "cse1.example.com"), "ALPHA");
    /* a look-alike root: same subject name as ALPHA, another key */
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(look.cert),
                                   X509_get_subject_name(alpha.cert)), 0);
    reject_cert_as(dns_leaf(&look, "cse1.example.com"), "ALPHA", M2MTLS_REJECT_ROOT_OF_TRUST);
    reject_cert(uri_leaf(&look, "//sp.example.com/CSE-1/Csensor7"), "ALPHA");
    /* the look-alike root passed as part of the chain does not help */
    reject_with_chain(pol, dns_leaf(&look, "cse1.example.com"), look.cert, "ALPHA");
}

static void test_one_candidate_fails_other_verifies(void **state)
{
    (void)state;
    /* names of two associations, only cse1's anchor (ALPHA) signed it */
    pki_san s[] = { { PKI_SAN_DNS, "cse1.example.com", 0 }, { PKI_SAN_DNS, "cse2.example.com", 0 },
                    { 0, 0, 0 } };
    accept_cert(leaf(&alpha, "leaf", s), "/CSE-1");
}

static void test_intermediate_chain(void **state)
{
    (void)state;
    X509 *c = dns_leaf(&inter, "cse1.example.com");
    STACK_OF(X509) *chain = pki_stack(inter.cert, (X509 *)NULL);
    m2mtls_verdict v;
    check_full(pol, c, chain, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_accept(&v, "/CSE-1");
    assert_str_eq(v.anchor, "ALPHA");
    assert_int_equal(sk_X509_num(v.chain), 3);
    assert_int_equal(X509_cmp(sk_X509_value(v.chain, 0), c), 0);
    assert_int_equal(X509_cmp(sk_X509_value(v.chain, 1), inter.cert), 0);
    assert_int_equal(X509_cmp(sk_X509_value(v.chain, 2), alpha.cert), 0);
    m2mtls_verdict_clear(&v);

    /* without the intermediate there is no path to ALPHA */
    check_full(pol, c, NULL, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_reject(&v, "ALPHA");
    m2mtls_verdict_clear(&v);

    /* the intermediate chains to ALPHA, not to BRAVO */
    X509 *c2 = dns_leaf(&inter, "cse2.example.com");
    check_full(pol, c2, chain, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_reject(&v, "BRAVO");
    m2mtls_verdict_clear(&v);

    sk_X509_pop_free(chain, X509_free);
    X509_free(c);
    X509_free(c2);
}

/* RFC 5280 path validation on the intermediate. */
static void test_intermediate_constraints(void **state)
{
    (void)state;
    struct { const char *what; pki_opts o; } bad[] = {
        { "intermediate with CA:FALSE",
          { .cn = "Not A CA", .issuer = &alpha, .ca = PKI_BC_LEAF, .key_usage = KU_KEY_CERT_SIGN } },
        { "intermediate without basicConstraints",
          { .cn = "No BC", .issuer = &alpha, .ca = PKI_BC_NONE, .key_usage = KU_KEY_CERT_SIGN } },
        { "intermediate without keyCertSign",
          { .cn = "No CertSign", .issuer = &alpha, .ca = PKI_BC_CA,
            .key_usage = KU_DIGITAL_SIGNATURE | KU_CRL_SIGN } },
        { "expired intermediate",
          { .cn = "Expired CA", .issuer = &alpha, .ca = PKI_BC_CA,
            .not_before = -10 * DAY, .not_after = -1 * DAY } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pki_cert ca;
        assert_true(pki_issue(&bad[i].o, &ca));
        X509 *c = dns_leaf(&ca, "cse1.example.com");
        STACK_OF(X509) *chain = pki_stack(ca.cert, (X509 *)NULL);
        m2mtls_verdict v;
        check_full(pol, c, chain, NULL, M2MTLS_RESPONDER, 0, &v);
        if (v.accepted)
            fail_msg("%s: accepted as %s", bad[i].what, v.peer_id);
        assert_non_null(v.reason);
        if (getenv("M2MTLS_TEST_VERBOSE"))
            print_message("%s: %s\n", bad[i].what, v.reason);
        assert_contains(v.reason, "ALPHA");
        m2mtls_verdict_clear(&v);
        sk_X509_pop_free(chain, X509_free);
        X509_free(c);
        pki_cert_free(&ca);
    }
}

static void test_pinned_self_signed(void **state)
{
    (void)state;
    X509_up_ref(pinned.cert);
    m2mtls_verdict v;
    check(pinned.cert, &v);
    expect_accept(&v, "/CSE-PIN");
    assert_str_eq(v.anchor, "PINNED");
    assert_str_eq(v.cert_name, "dns:pinned.example.com");
    m2mtls_verdict_clear(&v);
    X509_free(pinned.cert);

    /* another self-signed certificate with the same subject and name */
    pki_san s[] = { { PKI_SAN_DNS, "pinned.example.com", 0 }, { 0, 0, 0 } };
    pki_opts o = { .cn = "pinned.example.com", .ca = PKI_BC_LEAF, .sans = s };
    reject_cert(leaf_opts(o), "PINNED");
}

/* ---- validity, keyUsage, CRL ------------------------------------------------ */

static void test_validity(void **state)
{
    (void)state;
    pki_san s[] = { { PKI_SAN_DNS, "cse1.example.com", 0 }, { 0, 0, 0 } };
    pki_opts exp = { .cn = "leaf", .issuer = &alpha, .sans = s,
                     .not_before = -3 * DAY, .not_after = -1 * DAY };
    X509 *c = leaf_opts(exp);
    m2mtls_verdict v;
    check(c, &v);
    expect_reject_as(&v, "expired", M2MTLS_REJECT_ROOT_OF_TRUST);
    m2mtls_verdict_clear(&v);
    /* valid two days ago */
    check_full(pol, c, NULL, NULL, M2MTLS_RESPONDER, time(NULL) - 2 * DAY, &v);
    expect_accept(&v, "/CSE-1");
    m2mtls_verdict_clear(&v);
    X509_free(c);

    pki_opts future = { .cn = "leaf", .issuer = &alpha, .sans = s,
                        .not_before = 1 * DAY, .not_after = 3 * DAY };
    c = leaf_opts(future);
    check(c, &v);
    expect_reject(&v, NULL);
    m2mtls_verdict_clear(&v);
    check_full(pol, c, NULL, NULL, M2MTLS_RESPONDER, time(NULL) + 2 * DAY, &v);
    expect_accept(&v, "/CSE-1");
    m2mtls_verdict_clear(&v);
    X509_free(c);

    /* a current certificate checked at a time before it existed */
    c = dns_leaf(&alpha, "cse1.example.com");
    check_full(pol, c, NULL, NULL, M2MTLS_RESPONDER, time(NULL) - 10 * DAY, &v);
    expect_reject(&v, NULL);
    m2mtls_verdict_clear(&v);
    X509_free(c);
}

static void test_key_usage(void **state)
{
    (void)state;
    pki_san s[] = { { PKI_SAN_DNS, "cse1.example.com", 0 }, { 0, 0, 0 } };
    pki_opts o = { .cn = "leaf", .issuer = &alpha, .sans = s, .key_usage = KU_KEY_ENCIPHERMENT };
    reject_cert_as(leaf_opts(o), "digitalSignature", M2MTLS_REJECT_PROFILE);
    o.key_usage = KU_KEY_AGREEMENT | KU_KEY_CERT_SIGN;
    reject_cert(leaf_opts(o), "digitalSignature");
    o.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    accept_cert(leaf_opts(o), "/CSE-1");
    o.key_usage = PKI_KU_NONE;
    accept_cert(leaf_opts(o), "/CSE-1");
}

static void test_crl(void **state)
{
    (void)state;
    pki_san r[] = { { PKI_SAN_DNS, "revoked.example.com", 0 }, { 0, 0, 0 } };
    pki_san f[] = { { PKI_SAN_DNS, "fine.example.com", 0 }, { 0, 0, 0 } };
    pki_opts o = { .cn = "leaf", .issuer = &charlie, .sans = r, .serial = 666 };
    X509 *c = leaf_opts(o);
    m2mtls_verdict v;
    check_full(crl_pol, c, NULL, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_reject_as(&v, "revoked", M2MTLS_REJECT_REVOCATION);
    m2mtls_verdict_clear(&v);
    X509_free(c);

    o.sans = f;
    o.serial = 667;
    c = leaf_opts(o);
    check_full(crl_pol, c, NULL, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_accept(&v, "/CSE-OK");
    assert_str_eq(v.anchor, "CHARLIE");
    m2mtls_verdict_clear(&v);
    X509_free(c);
}

/* ---- identities -------------------------------------------------------------- */

static void test_more_than_one_identity(void **state)
{
    (void)state;
    pki_san s[] = { { PKI_SAN_DNS, "cse1.example.com", 0 }, { PKI_SAN_DNS, "cse3.example.com", 0 },
                    { 0, 0, 0 } };
    reject_cert_as(leaf(&alpha, "leaf", s), "more than one identity", M2MTLS_REJECT_AMBIGUOUS);
    pki_san s2[] = { { PKI_SAN_DNS, "cse1.example.com", 0 },
                     { PKI_SAN_URI, "//sp.example.com/CSE-1/Csensor7", 0 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", s2), "more than one identity");
}

static void test_peers_from_cert(void **state)
{
    (void)state;
    X509 *c = uri_leaf(&alpha, "//sp.example.com/AE/Csensor9");
    m2mtls_verdict v;
    check(c, &v);
    expect_accept(&v, "//sp.example.com/AE/Csensor9");
    assert_str_eq(v.anchor, "ALPHA");
    assert_str_eq(v.local_id, "/CSE-IN");
    assert_int_equal(strncmp(v.cert_name, "uri:", 4), 0);
    m2mtls_verdict_clear(&v);
    X509_free(c);

    /* prefix mismatch */
    reject_cert(uri_leaf(&alpha, "//sp.example.com/AX/Csensor9"), NULL);
    reject_cert(uri_leaf(&alpha, "//sp.example.com/ae/Csensor9"), NULL);
    /* right prefix, wrong anchor */
    reject_cert(uri_leaf(&bravo, "//sp.example.com/AE/Csensor9"), "ALPHA");
    reject_cert(uri_leaf(&look, "//sp.example.com/AE/Csensor9"), "ALPHA");
    /* two URI SANs */
    pki_san two[] = { { PKI_SAN_URI, "//sp.example.com/AE/C1", 0 },
                      { PKI_SAN_URI, "//sp.example.com/AE/C2", 0 }, { 0, 0, 0 } };
    reject_cert(leaf(&alpha, "leaf", two), "exactly one URI");
    /* a peer line takes precedence over peers-from-cert */
    X509 *f = uri_leaf(&alpha, "//sp.example.com/AE/Cfixed");
    check(f, &v);
    expect_accept(&v, "/FIXED");
    assert_str_eq(v.cert_name, "uri://sp.example.com/AE/Cfixed");
    m2mtls_verdict_clear(&v);
    X509_free(f);
}

static void test_initiator(void **state)
{
    (void)state;
    X509 *c1 = dns_leaf(&alpha, "cse1.example.com");
    X509 *c3 = dns_leaf(&alpha, "cse3.example.com");
    X509 *dup = dns_leaf(&alpha, "dup.example.com");
    m2mtls_verdict v;

    check_full(pol, c1, NULL, "/CSE-1", M2MTLS_INITIATOR, 0, &v);
    expect_accept(&v, "/CSE-1");
    assert_str_eq(v.local_id, "/CSE-IN");
    m2mtls_verdict_clear(&v);

    /* a valid certificate of another association */
    check_full(pol, c3, NULL, "/CSE-1", M2MTLS_INITIATOR, 0, &v);
    expect_reject(&v, NULL);
    m2mtls_verdict_clear(&v);

    /* same name, the expected association has another anchor */
    check_full(pol, dup, NULL, "/DUP-BRAVO", M2MTLS_INITIATOR, 0, &v);
    expect_reject(&v, "BRAVO");
    m2mtls_verdict_clear(&v);
    check_full(pol, dup, NULL, "/DUP-ALPHA", M2MTLS_INITIATOR, 0, &v);
    expect_accept(&v, "/DUP-ALPHA");
    m2mtls_verdict_clear(&v);

    X509_free(c1);
    X509_free(c3);
    X509_free(dup);
}

/* ---- the API around verdicts ------------------------------------------------ */

static void test_codes_and_version(void **state)
{
    (void)state;
    m2mtls_verdict zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(m2mtls_verdict_code(&zero), M2MTLS_REJECT_NONE);
    assert_int_equal(m2mtls_verdict_code(NULL), M2MTLS_REJECT_NONE);
    /* the tokens are stable: logs and JSON use them */
    static const char *const names[] = { "none", "no-certificate", "name", "root-of-trust", "revocation",
                                         "ambiguous", "profile", "application", "resumption", "internal" };
    for (int i = 0; i <= M2MTLS_REJECT_INTERNAL; i++)
        assert_str_eq(m2mtls_reject_code_name((m2mtls_reject_code)i), names[i]);
    assert_str_eq(m2mtls_reject_code_name((m2mtls_reject_code)99), "unknown");
    /* the role keeps the values it had as macros */
    assert_int_equal(M2MTLS_RESPONDER, 0);
    assert_int_equal(M2MTLS_INITIATOR, 1);
    /* the library's version is the headers' */
    assert_str_eq(m2mtls_version(), M2MTLS_VERSION_STRING);
    assert_int_equal(m2mtls_version_number(), M2MTLS_VERSION_NUMBER);
    assert_int_equal(M2MTLS_VERSION_NUMBER, (M2MTLS_VERSION_MAJOR << 16) | (M2MTLS_VERSION_MINOR << 8)
                                                | M2MTLS_VERSION_PATCH);
    assert_true(M2MTLS_VERSION_AT_LEAST(1, 0, 0));
    assert_false(M2MTLS_VERSION_AT_LEAST(M2MTLS_VERSION_MAJOR + 1, 0, 0));
}

static void test_local_id(void **state)
{
    (void)state;
    X509 *c2 = dns_leaf(&bravo, "cse2.example.com");
    m2mtls_verdict v;
    check(c2, &v);
    expect_accept(&v, "/CSE-2");
    assert_str_eq(v.local_id, "/CSE-IN-AS2");
    assert_str_eq(v.anchor, "BRAVO");
    m2mtls_verdict_clear(&v);
    X509_free(c2);

    /* no local-id line and no as=: no local identity */
    X509 *c1 = dns_leaf(&alpha, "cse1.example.com");
    check_full(noid_pol, c1, NULL, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_accept(&v, "/CSE-1");
    assert_null(v.local_id);
    m2mtls_verdict_clear(&v);
    X509_free(c1);
}

/* ---- peers-from-cert: the identity is the prefix and one AE-ID-Stem ---------- */

static void pfc_check(const char *uri, const char *want_peer, const char *why)
{
    X509 *c = uri_leaf(&alpha, uri);
    m2mtls_verdict v;
    check_full(pfc_pol, c, NULL, NULL, M2MTLS_RESPONDER, 0, &v);
    if (want_peer != NULL)
        expect_accept(&v, want_peer);
    else
        expect_reject(&v, why);
    m2mtls_verdict_clear(&v);
    X509_free(c);
}

static void test_pfc_ae_id_scope(void **state)
{
    (void)state;
    /* what the rule promises: any AE of the CSE (C...) or of the SP (S...) */
    pfc_check("//sp.example.com/CSE-A/Csensor7", "//sp.example.com/CSE-A/Csensor7", NULL);
    pfc_check("//sp.example.com/CSE-A/C", "//sp.example.com/CSE-A/C", NULL);
    pfc_check("//sp.example.com/CSE-A/Cs-1.a_b~c", "//sp.example.com/CSE-A/Cs-1.a_b~c", NULL);
    pfc_check("//sp.example.com/Sfleet01", "//sp.example.com/Sfleet01", NULL);
    /* the five shapes that were labelled with the whole string */
    static const char *const bad[] = {
        "//sp.example.com/CSE-A/",                     /* empty */
        "//sp.example.com/CSE-A/Cx/sub",               /* deeper */
        "//sp.example.com/CSE-A/Cx/../../CSE-B/Cy",    /* dot segments into another CSE */
        "//sp.example.com/CSE-A/Cx?a=b",               /* a query */
        "//sp.example.com/CSE-A/C x",                  /* a space */
        "//sp.example.com/CSE-A/Cx#f",                 /* a fragment */
        "//sp.example.com/CSE-A/C%41",                 /* an escape */
        "//sp.example.com/CSE-A/csensor7",             /* not C or S */
        "//sp.example.com/CSE-A/Xsensor7",
        "//sp.example.com/CSE-A/..",
        "//sp.example.com/CSE-A/C\xc3\xa9",            /* not ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        pfc_check(bad[i], NULL, "AE-ID-Stem");
    /* under //SP-ID/ a path into a CSE is not one stem either */
    pfc_check("//sp.example.com/CSE-B/Cy", NULL, "AE-ID-Stem");
    /* an initiator cannot expect such an identity: there is no association */
    X509 *c = uri_leaf(&alpha, "//sp.example.com/CSE-A/Cx/sub");
    m2mtls_verdict v;
    check_full(pfc_pol, c, NULL, "//sp.example.com/CSE-A/Cx/sub", M2MTLS_INITIATOR, 0, &v);
    expect_reject(&v, "no association");
    m2mtls_verdict_clear(&v);
    X509_free(c);
    c = uri_leaf(&alpha, "//sp.example.com/CSE-A/Cx");
    check_full(pfc_pol, c, NULL, "//sp.example.com/CSE-A/Cx", M2MTLS_INITIATOR, 0, &v);
    expect_accept(&v, "//sp.example.com/CSE-A/Cx");
    m2mtls_verdict_clear(&v);
    X509_free(c);
}

/* ---- URI name constraints for scheme-less Absolute AE-IDs ------------------- */

/* A leaf under the name-constrained intermediate, checked against nc.policy. */
static void nc_check(const pki_san *sans, const char *want_peer, const char *why, const char *why2)
{
    X509 *c = leaf(&nc_inter, "leaf", sans);
    STACK_OF(X509) *chain = pki_stack(nc_inter.cert, (X509 *)NULL);
    m2mtls_verdict v;
    check_full(nc_pol, c, chain, NULL, M2MTLS_RESPONDER, 0, &v);
    if (want_peer != NULL) {
        expect_accept(&v, want_peer);
        assert_int_equal(sk_X509_num(v.chain), 3);
    } else {
        expect_reject(&v, why);
        if (why2 != NULL)
            assert_contains(v.reason, why2);
    }
    m2mtls_verdict_clear(&v);
    sk_X509_pop_free(chain, X509_free);
    X509_free(c);
}

static void test_name_constraints_ae_ids(void **state)
{
    (void)state;
    /* inside: the SP's host, and a host below it */
    pki_san in[] = { { PKI_SAN_URI, "//sp.example.com/CSE-A/Csensor7", 0 }, { 0, 0, 0 } };
    nc_check(in, "//sp.example.com/CSE-A/Csensor7", NULL, NULL);
    pki_san below[] = { { PKI_SAN_URI, "//mn.sp.example.com/CSE-B/Cpump", 0 }, { 0, 0, 0 } };
    nc_check(below, "//mn.sp.example.com/CSE-B/Cpump", NULL, NULL);
    /* outside: another SP */
    pki_san out[] = { { PKI_SAN_URI, "//other.example.org/CSE-A/Csensor7", 0 }, { 0, 0, 0 } };
    nc_check(out, NULL, "name constraint violation: permitted subtree violation", "URI:sp.example.com");
    /* excluded although below the permitted host */
    pki_san ex[] = { { PKI_SAN_URI, "//bad.sp.example.com/CSE-A/Csensor7", 0 }, { 0, 0, 0 } };
    nc_check(ex, NULL, "name constraint violation: excluded subtree violation", "; excluded URI:bad.sp.example.com");
}

static void test_name_constraints_other_names(void **state)
{
    (void)state;
    /* CSE names are OpenSSL's to check, as before */
    pki_san dns_in[] = { { PKI_SAN_DNS, "cse.sp.example.com", 0 }, { 0, 0, 0 } };
    nc_check(dns_in, "/cse-in", NULL, NULL);
    pki_san dns_out[] = { { PKI_SAN_DNS, "cse.other.example.org", 0 }, { 0, 0, 0 } };
    nc_check(dns_out, NULL, "name constraint violation: permitted subtree violation", "DNS:.sp.example.com");
    /* an in-scope URI next to an out-of-scope dNSName: nothing escapes, in
     * either order (OpenSSL stops at the first name it cannot judge) */
    pki_san mix1[] = { { PKI_SAN_URI, "//sp.example.com/CSE-A/Csensor7", 0 },
                       { PKI_SAN_DNS, "cse.other.example.org", 0 }, { 0, 0, 0 } };
    nc_check(mix1, NULL, "name constraint violation: permitted subtree violation", NULL);
    pki_san mix2[] = { { PKI_SAN_DNS, "cse.other.example.org", 0 },
                       { PKI_SAN_URI, "//sp.example.com/CSE-A/Csensor7", 0 }, { 0, 0, 0 } };
    nc_check(mix2, NULL, "name constraint violation: permitted subtree violation", NULL);
    /* a URI that is neither scheme://host nor //host stays OpenSSL's refusal */
    pki_san rel[] = { { PKI_SAN_DNS, "cse.sp.example.com", 0 }, { PKI_SAN_URI, "Csensor7", 0 }, { 0, 0, 0 } };
    nc_check(rel, NULL, "unsupported or invalid name syntax", NULL);
    /* an empty host is no host */
    pki_san nohost[] = { { PKI_SAN_DNS, "cse.sp.example.com", 0 }, { PKI_SAN_URI, "///CSE-A/C1", 0 }, { 0, 0, 0 } };
    nc_check(nohost, NULL, "name constraint violation", NULL);
    /* the subject CN of a certificate without dNSName is held to the DNS constraint too */
    pki_san uri_only[] = { { PKI_SAN_URI, "//sp.example.com/CSE-A/Cx", 0 }, { 0, 0, 0 } };
    reject_with_chain(nc_pol, leaf(&nc_inter, "cse.other.example.org", uri_only), nc_inter.cert,
                      "name constraint violation");
}

/* ---- true reasons for undecodable extensions ------------------------------------ */

static void test_invalid_extensions(void **state)
{
    (void)state;
    /* a subjectAltName that is not DER (a truncated SEQUENCE), keyUsage fine */
    static const unsigned char bad_san[] = { 0x30, 0x10, 0x82, 0x05, 'c', 's', 'e' };
    pki_ext san_ext[] = { { "subjectAltName", 0, bad_san, sizeof bad_san }, { NULL, 0, NULL, 0 } };
    pki_opts o = { .cn = "cse1.example.com", .issuer = &alpha, .raw_exts = san_ext };
    X509 *c = leaf_opts(o);
    assert_true(X509_get_key_usage(c) == 0); /* what OpenSSL answers for it */
    m2mtls_verdict v;
    check(c, &v);
    expect_reject(&v, "subjectAltName extension cannot be decoded");
    assert_not_contains(v.reason, "digitalSignature");
    m2mtls_verdict_clear(&v);
    X509_free(c);

    /* a second keyUsage */
    static const unsigned char ku[] = { 0x03, 0x02, 0x07, 0x80 }; /* digitalSignature */
    pki_ext dup_ext[] = { { "keyUsage", 1, ku, sizeof ku }, { NULL, 0, NULL, 0 } };
    pki_san s[] = { { PKI_SAN_DNS, "cse1.example.com", 0 }, { 0, 0, 0 } };
    pki_opts d = { .cn = "leaf", .issuer = &alpha, .sans = s, .raw_exts = dup_ext };
    reject_cert(leaf_opts(d), "more than one keyUsage extension");

    /* an empty keyUsage */
    static const unsigned char ku0[] = { 0x03, 0x01, 0x00 };
    pki_ext ku0_ext[] = { { "keyUsage", 1, ku0, sizeof ku0 }, { NULL, 0, NULL, 0 } };
    pki_opts e = { .cn = "leaf", .issuer = &alpha, .sans = s, .key_usage = PKI_KU_NONE, .raw_exts = ku0_ext };
    reject_cert(leaf_opts(e), "keyUsage extension is empty");

    /* an intermediate with undecodable nameConstraints: the chain says why */
    static const unsigned char bad_nc[] = { 0x30, 0x05, 0xa0, 0x10 };
    pki_ext nc_ext[] = { { "nameConstraints", 1, bad_nc, sizeof bad_nc }, { NULL, 0, NULL, 0 } };
    pki_opts io = { .cn = "Broken CA", .issuer = &alpha, .ca = PKI_BC_CA, .raw_exts = nc_ext };
    pki_cert ca;
    assert_true(pki_issue(&io, &ca));
    reject_with_chain(pol, dns_leaf(&ca, "cse1.example.com"), ca.cert, "nameConstraints extension cannot be decoded");
    pki_cert_free(&ca);
}

/* ---- strength: at least security level 2, whatever the context's ---------------- */

static X509 *weak_leaf(const pki_cert *issuer, const char *dns, const char *key_spec, const char *md)
{
    pki_san s[] = { { PKI_SAN_DNS, dns, 0 }, { 0, 0, 0 } };
    EVP_PKEY *k = key_spec != NULL ? pki_key_gen(key_spec) : NULL;
    pki_opts o = { .cn = "leaf", .issuer = issuer, .sans = s, .key = k, .md = md };
    X509 *x = leaf_opts(o);
    EVP_PKEY_free(k);
    return x;
}

static void weak_check(X509 *c, int level, const char *want_peer, const char *why)
{
    m2mtls_verdict v;
    memset(&v, 0, sizeof v);
    if (m2mtls_policy_check_cert_ex(weak_pol, c, NULL, NULL, M2MTLS_RESPONDER, 0, level, &v) != 1)
        fail_msg("m2mtls_policy_check_cert_ex failed: %s", m2mtls_last_error());
    if (want_peer != NULL)
        expect_accept(&v, want_peer);
    else
        expect_reject(&v, why);
    m2mtls_verdict_clear(&v);
}

static void test_strength_floor(void **state)
{
    (void)state;
    X509 *sha1 = weak_leaf(&alpha, "sha1.example.com", NULL, "SHA1");
    X509 *p192 = weak_leaf(&alpha, "p192.example.com", "EC:P-192", NULL);
    X509 *r1024 = weak_leaf(&rsa1024, "rsa1024.example.com", NULL, NULL);
    /* the level of a default context (-1), and levels 0 and 1: at least 2 applies */
    for (int level = -1; level <= 2; level++) {
        weak_check(sha1, level, NULL, "CA signature digest algorithm too weak");
        weak_check(p192, level, NULL, "EE certificate key too weak");
        weak_check(r1024, level, NULL, "CA certificate key too weak");
    }
    /* and m2mtls_policy_check_cert (inspect) the same */
    m2mtls_verdict v;
    check_full(weak_pol, sha1, NULL, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_reject(&v, "security level 2");
    m2mtls_verdict_clear(&v);
    /* the anchor's own SHA-1 self-signature is not judged (OpenSSL's rule) */
    X509 *under_sha1 = weak_leaf(&sha1_root, "sha1-root.example.com", NULL, NULL);
    weak_check(under_sha1, -1, "/sha1-root", NULL);
    X509_free(under_sha1);
    X509_free(sha1);
    X509_free(p192);
    X509_free(r1024);
}

static void test_strength_stricter_level(void **state)
{
    (void)state;
    /* RSA-2048 is 112 bits: level 2 accepts it, level 3 (128 bits) does not */
    X509 *r2048 = weak_leaf(&rsa2048, "rsa2048.example.com", NULL, NULL);
    weak_check(r2048, -1, "/rsa2048", NULL);
    weak_check(r2048, 2, "/rsa2048", NULL);
    weak_check(r2048, 3, NULL, "CA certificate key too weak");
    /* P-256 is 128 bits: level 4 (192 bits) refuses it */
    X509 *p256 = weak_leaf(&alpha, "p256.example.com", NULL, NULL);
    weak_check(p256, 3, "/p256", NULL);
    weak_check(p256, 4, NULL, "EE certificate key too weak");
    m2mtls_verdict v;
    assert_int_equal(m2mtls_policy_check_cert_ex(weak_pol, p256, NULL, NULL, M2MTLS_RESPONDER, 0, 6, &v), 0);
    assert_contains(m2mtls_last_error(), "0 to 5");
    X509_free(r2048);
    X509_free(p256);
}

/* ---- the application's OpenSSL errors stay queued ---------------------------- */

#define APP_REASON 4242

static void queue_app_error(void)
{
    ERR_clear_error();
    ERR_raise_data(ERR_LIB_USER, APP_REASON, "queued by the application");
}

/* The application's error is the only one left, and still the same. */
static void expect_app_error_alone(const char *after)
{
    unsigned long first = ERR_peek_error(), last = ERR_peek_last_error();
    if (ERR_GET_LIB(first) != ERR_LIB_USER || ERR_GET_REASON(first) != APP_REASON)
        fail_msg("after %s the application's error is gone (first queued: %s)", after,
                 first ? ERR_reason_error_string(first) : "nothing");
    if (first != last)
        fail_msg("after %s m2mtls left its own errors queued", after);
    const char *data = NULL;
    int flags = 0;
    ERR_peek_error_data(&data, &flags);
    assert_true((flags & ERR_TXT_STRING) && strcmp(data, "queued by the application") == 0);
    ERR_clear_error();
}

static void test_error_queue_kept(void **state)
{
    (void)state;
    X509 *ok = dns_leaf(&alpha, "cse1.example.com");
    X509 *bad = dns_leaf(&look, "cse1.example.com");
    static const unsigned char bad_san[] = { 0x30, 0x10, 0x82 };
    pki_ext san_ext[] = { { "subjectAltName", 0, bad_san, sizeof bad_san }, { NULL, 0, NULL, 0 } };
    pki_opts o = { .cn = "x", .issuer = &alpha, .raw_exts = san_ext };
    X509 *broken = leaf_opts(o);
    X509 *certs[] = { ok, bad, broken };
    for (size_t i = 0; i < 3; i++) {
        m2mtls_verdict v;
        queue_app_error();
        check(certs[i], &v);
        expect_app_error_alone("m2mtls_policy_check_cert");
        m2mtls_verdict_clear(&v);
        X509_free(certs[i]);
    }
    pki_san in[] = { { PKI_SAN_URI, "//sp.example.com/CSE-A/Csensor7", 0 }, { 0, 0, 0 } };
    queue_app_error();
    nc_check(in, "//sp.example.com/CSE-A/Csensor7", NULL, NULL);
    expect_app_error_alone("a name-constrained chain");

    /* loading policies reads OpenSSL's reasons, and gives the queue back */
    char *p = pki_path(dir, "main.policy");
    queue_app_error();
    m2mtls_policy *loaded = m2mtls_policy_load(p);
    assert_non_null(loaded);
    m2mtls_policy_free(loaded);
    free(p);
    expect_app_error_alone("m2mtls_policy_load");
    assert_true(pki_writef(dir, "garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                                               "-----END CERTIFICATE-----\n")
                && pki_writef(dir, "garbage.policy", "anchor G garbage.pem\npeer /x dns:x.example.com G\n"));
    p = pki_path(dir, "garbage.policy");
    queue_app_error();
    assert_null(m2mtls_policy_load(p));
    free(p);
    assert_contains(m2mtls_last_error(), "bad PEM certificate");
    expect_app_error_alone("a failed m2mtls_policy_load");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_match_and_verdict),
        cmocka_unit_test(test_dns_case_insensitive),
        cmocka_unit_test(test_uri_byte_exact),
        cmocka_unit_test(test_no_association),
        cmocka_unit_test(test_cn_never_matches),
        cmocka_unit_test(test_other_san_types_never_match),
        cmocka_unit_test(test_wildcard_rejected),
        cmocka_unit_test(test_nul_rejected),
        cmocka_unit_test(test_same_name_different_anchors),
        cmocka_unit_test(test_own_anchor_only),
        cmocka_unit_test(test_one_candidate_fails_other_verifies),
        cmocka_unit_test(test_intermediate_chain),
        cmocka_unit_test(test_intermediate_constraints),
        cmocka_unit_test(test_pinned_self_signed),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_key_usage),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_more_than_one_identity),
        cmocka_unit_test(test_peers_from_cert),
        cmocka_unit_test(test_initiator),
        cmocka_unit_test(test_local_id),
        cmocka_unit_test(test_codes_and_version),
        cmocka_unit_test(test_pfc_ae_id_scope),
        cmocka_unit_test(test_name_constraints_ae_ids),
        cmocka_unit_test(test_name_constraints_other_names),
        cmocka_unit_test(test_invalid_extensions),
        cmocka_unit_test(test_strength_floor),
        cmocka_unit_test(test_strength_stricter_level),
        cmocka_unit_test(test_error_queue_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
