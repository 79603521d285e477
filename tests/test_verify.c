/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verification rules, evaluated through m2mtls_policy_check_cert():
 * name matching by subjectAltName type, each candidate against its own
 * anchor only, path validation, validity, keyUsage, CRLs, exactly one
 * identity, peers-from-cert, initiator semantics and the verdict fields.
 */
#include <stdlib.h>
#include <time.h>

#include "testutil.h"
#include "pki.h"

#include <m2mtls/policy.h>

#define DAY 86400L

static char *dir;
static pki_cert alpha, bravo, charlie, look, inter, pinned;
static m2mtls_policy *pol, *crl_pol, *noid_pol;

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
                      "peer /CSE-1 dns:cse1.example.com ALPHA\n");
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
    if (pol == NULL || crl_pol == NULL || noid_pol == NULL) {
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
    pki_cert_free(&alpha);
    pki_cert_free(&bravo);
    pki_cert_free(&charlie);
    pki_cert_free(&look);
    pki_cert_free(&inter);
    pki_cert_free(&pinned);
    pki_rmtree(dir);
    free(dir);
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
    X509 *c = dns_leaf(&look, "cse1.example.com");
    STACK_OF(X509) *chain = pki_stack(look.cert, (X509 *)NULL);
    m2mtls_verdict v;
    check_full(pol, c, chain, NULL, M2MTLS_RESPONDER, 0, &v);
    expect_reject(&v, "ALPHA");
    m2mtls_verdict_clear(&v);
    sk_X509_pop_free(chain, X509_free);
    X509_free(c);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
