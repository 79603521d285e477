/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier on hostile certificates.
 *
 * First byte even: the rest is DER, one or more certificates (leaf, then the
 * untrusted chain), evaluated as they are: parsing, names, path validation.
 * First byte odd: the rest describes a leaf that the fixture issues and
 * signs — subjectAltNames with arbitrary bytes (NUL, '*', case, many of
 * them), keyUsage, CA flag, validity, issuer (the anchor, an intermediate,
 * a look-alike root, a name-constrained intermediate, or none: self-signed)
 * and key (the anchor's, or a device key that a key identity pins) — so that
 * the name matcher, the key identities and the accepting paths are reached,
 * which random DER would almost never do.
 * Both run as responder and as initiator for every configured peer id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <m2mtls/policy.h>
#include "internal.h"
#include "pki.h"
#include "fuzz.h"

static m2mtls_policy *policy;
static pki_cert root, inter, lookalike, nc_inter;
static EVP_PKEY *device; /* the key of the key identity //sp.example.com/CSE-1/Ckey */
static char *fixture_dir;
static const char *peer_ids[] = { "/cse-a", "/cse-b", "//sp.example.com/CSE-1/C1", "//sp.example.com/CSE-1/Cx",
                                  "//sp.example.com/CSE-1/Ckey", NULL };

static void remove_fixture(void)
{
    m2mtls_policy_free(policy);
    pki_cert_free(&root);
    pki_cert_free(&inter);
    pki_cert_free(&lookalike);
    pki_cert_free(&nc_inter);
    EVP_PKEY_free(device);
    pki_rmtree(fixture_dir);
    free(fixture_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fixture_dir = pki_tmpdir();
    /* an intermediate with nameConstraints, URI subtrees included: the
     * scheme-less Absolute AE-IDs below it are evaluated again (ncons.c) */
    pki_opts nco = { .cn = "fuzz nc inter", .issuer = &root, .ca = PKI_BC_CA,
                     .name_constraints = "critical,permitted;URI:sp.example.com,permitted;URI:.example.com,"
                                         "permitted;DNS:.example.com,excluded;URI:bad.sp.example.com" };
    unsigned char sha[32];
    char id[M2_KEYID_TEXT];
    if (fixture_dir == NULL || !pki_root("fuzz root", &root) || !pki_intermediate("fuzz inter", &root, &inter)
        || !pki_issue(&nco, &nc_inter)
        || !pki_root("fuzz root", &lookalike) || !pki_write_cert(fixture_dir, "root.pem", root.cert)
        || (device = pki_key_new()) == NULL || !m2_key_sha256(device, sha)
        || !pki_writef(fixture_dir, "p",
                       "local-id /in-cse\n"
                       "anchor root root.pem\n"
                       "peer /cse-a dns:a.example.com root as=/in-cse-a\n"
                       "peer /cse-b dns:B.example.com root\n"
                       "peer /cse-b2 dns:b.example.com root\n"
                       "peer //sp.example.com/CSE-1/C1 uri://sp.example.com/CSE-1/C1 root\n"
                       "peer //sp.example.com/CSE-1/Ckey key:%s\n"
                       "peers-from-cert root uri-prefix://sp.example.com/CSE-1/\n",
                       m2_keyid_format(sha, "sha-256-128", id, sizeof id))) {
        fprintf(stderr, "fuzz_verify: cannot make the fixture\n");
        exit(1);
    }
    char *path = pki_path(fixture_dir, "p");
    policy = m2mtls_policy_load(path);
    free(path);
    if (policy == NULL) {
        fprintf(stderr, "fuzz_verify: %s\n", m2mtls_last_error());
        exit(1);
    }
    atexit(remove_fixture);
    return 0;
}

static void evaluate(X509 *leaf, STACK_OF(X509) *chain)
{
    m2mtls_verdict v;
    for (int i = -1; i < 0 || peer_ids[i] != NULL; i++) { /* as responder, then each id */
        const char *expected = i < 0 ? NULL : peer_ids[i];
        if (!m2mtls_policy_check_cert(policy, leaf, chain, expected, expected ? M2MTLS_INITIATOR : M2MTLS_RESPONDER,
                                      0, &v))
            abort(); /* only invalid arguments make it fail: never for a certificate */
        if (v.accepted == (v.reason != NULL) || (v.accepted && (v.peer_id == NULL || v.chain == NULL)))
            abort(); /* a verdict is either accepted with a label or rejected with a reason */
        m2mtls_reject_code code = m2mtls_verdict_code(&v);
        if (v.accepted != (code == M2MTLS_REJECT_NONE) || code > M2MTLS_REJECT_INTERNAL)
            abort(); /* ... and a class exactly when rejected */
        if (v.accepted && expected != NULL && strcmp(v.peer_id, expected) != 0)
            abort(); /* an initiator accepts only the association it asked for */
        m2mtls_verdict_clear(&v);
    }
}

static void fuzz_der(const uint8_t *data, size_t size)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    const unsigned char *p = data;
    long left = (long)size;
    while (certs != NULL && left > 0 && sk_X509_num(certs) < 8) {
        const unsigned char *before = p;
        X509 *x = d2i_X509(NULL, &p, left);
        if (x == NULL)
            break;
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
        left -= (long)(p - before);
    }
    if (sk_X509_num(certs) > 0) {
        X509 *leaf = sk_X509_shift(certs);
        evaluate(leaf, certs);
        X509_free(leaf);
    }
    sk_X509_pop_free(certs, X509_free);
}

/* Records: [type][len][len bytes]. type & 7: 0 dNSName, 1 URI, 2 e-mail,
 * 3 otherName, 4 settings (len bytes: issuer, keyUsage, CA, validity). */
static void fuzz_described(const uint8_t *data, size_t size)
{
    pki_san sans[65];
    size_t n = 0;
    int issuer = 0, ku = PKI_KU_DEFAULT, ca = PKI_BC_LEAF, device_key = 0;
    long not_before = 0, not_after = 0;
    while (size >= 2 && n < 64) {
        uint8_t type = data[0] & 7, len = data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = (uint8_t)size;
        if (type <= 3) {
            static const int kinds[] = { PKI_SAN_DNS, PKI_SAN_URI, PKI_SAN_EMAIL, PKI_SAN_OTHERNAME };
            /* a zero length means strlen() to pki: give it one byte at least */
            if (len > 0)
                sans[n++] = (pki_san){ kinds[type], (const char *)data, len };
        } else if (type == 4 && len >= 3) {
            issuer = data[0] % 4;
            ku = data[1] % 4 == 0 ? PKI_KU_NONE : data[1] % 4 == 1 ? PKI_KU_DEFAULT : (int)data[1];
            ca = data[2] % 3 == 0 ? PKI_BC_LEAF : data[2] % 3 == 1 ? PKI_BC_NONE : PKI_BC_CA;
            if (len >= 4 && data[3] & 1) { /* expired */
                not_before = -7200;
                not_after = -3600;
            }
            device_key = len >= 4 && (data[3] & 2);
            if (len >= 4 && (data[3] & 4))
                issuer = 4; /* self-signed: a device's carrier */
        }
        data += len;
        size -= len;
    }
    sans[n] = (pki_san){ PKI_SAN_END, NULL, 0 };
    const pki_cert *by = issuer == 0 ? &root : issuer == 1 ? &inter : issuer == 2 ? &lookalike
                       : issuer == 3 ? &nc_inter : NULL;
    pki_opts o = { .cn = "fuzz", .issuer = by, .ca = ca, .key_usage = ku, .sans = n ? sans : NULL,
                   .not_before = not_before, .not_after = not_after, .key = device_key ? device : root.key };
    pki_cert leaf;
    if (!pki_issue(&o, &leaf)) {
        ERR_clear_error();
        return;
    }
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain != NULL && (issuer == 1 || issuer == 3))
        sk_X509_push(chain, issuer == 1 ? inter.cert : nc_inter.cert);
    evaluate(leaf.cert, chain);
    sk_X509_free(chain);
    pki_cert_free(&leaf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_described(data + 1, size - 1);
    else
        fuzz_der(data + 1, size - 1);
    ERR_clear_error();
    return 0;
}
