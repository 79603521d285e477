/* SPDX-License-Identifier: Apache-2.0 */
/* URI name constraints for Absolute AE-IDs.
 *
 * TS-0003 asks CA certificates to carry nameConstraints on the names below
 * them. An AE certificate names its AE by an Absolute AE-ID, a URI without a
 * scheme ("//sp.example.com/CSE-1/Csensor7"), and OpenSSL refuses any URI
 * without "scheme://" under a CA with URI subtrees ("unsupported or invalid
 * name syntax"): a PKI that follows TS-0003's advice would be refused whole.
 *
 * That one error, and only it, is evaluated again: on a copy of the
 * certificate whose scheme-less "//HOST/..." URIs carry a scheme, by
 * OpenSSL's own NAME_CONSTRAINTS_check() against every CA above it, so a
 * URI is judged by its host (RFC 5280 4.2.1.10: a host, or ".domain" for
 * every host below it) and every other name of the certificate (dNSName,
 * e-mail, IP address, the subject) is checked exactly as OpenSSL does. */
#include <string.h>
#include <openssl/x509v3.h>
#include "internal.h"

#define SCHEME "m2m:" /* any scheme: only the host after "://" is compared */

static int schemeless(const GENERAL_NAME *g)
{
    if (g->type != GEN_URI)
        return 0;
    const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
    return ASN1_STRING_length(u) >= 2 && memcmp(ASN1_STRING_get0_data(u), "//", 2) == 0;
}

/* The authority of a scheme-less URI ("//AUTHORITY/...") is a plain host
 * name, the SP-ID of an Absolute AE-ID. OpenSSL's URI rule takes the host to
 * end at the first ':' (or '/'), so "//ok.sp.example.com:@evil.sp.example.com/"
 * (userinfo, RFC 3986: its host is evil.sp.example.com) would be judged as
 * ok.sp.example.com and escape an excluded subtree. Such a URI is no AE-ID:
 * it keeps OpenSSL's refusal. */
static int plain_host(const GENERAL_NAME *g)
{
    const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
    const char *host = (const char *)ASN1_STRING_get0_data(u) + 2;
    size_t left = (size_t)ASN1_STRING_length(u) - 2;
    const char *slash = memchr(host, '/', left);
    return m2_valid_dns_name(host, slash != NULL ? (size_t)(slash - host) : left);
}

/* "//..." -> SCHEME "//..." in place. */
static int add_scheme(GENERAL_NAME *g)
{
    ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
    size_t n = (size_t)ASN1_STRING_length(u), sl = strlen(SCHEME);
    unsigned char *b = OPENSSL_malloc(n + sl);
    if (b == NULL)
        return 0;
    memcpy(b, SCHEME, sl);
    memcpy(b + sl, ASN1_STRING_get0_data(u), n);
    int ok = ASN1_STRING_set(u, b, (int)(n + sl));
    OPENSSL_free(b);
    return ok;
}

/* A copy of X whose scheme-less URIs carry a scheme; NULL when X has none
 * (*err = X509_V_OK), when one of them has more than a host before its path
 * (*err = X509_V_ERR_UNSUPPORTED_NAME_SYNTAX: OpenSSL's verdict stands) or on
 * failure (*err = X509_V_ERR_OUT_OF_MEM). */
static X509 *with_schemes(X509 *x, int *err)
{
    int crit = 0, changed = 0, ok = 1;
    *err = X509_V_OK;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    for (int i = 0; ok && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (schemeless(g) && !plain_host(g)) {
            GENERAL_NAMES_free(gens);
            *err = X509_V_ERR_UNSUPPORTED_NAME_SYNTAX;
            return NULL;
        }
        if (schemeless(g)) {
            ok = add_scheme(g);
            changed = 1;
        }
    }
    X509 *copy = NULL;
    if (ok && changed) {
        /* What NAME_CONSTRAINTS_check() reads, and only that: the subject and
         * the names (X509_dup would decode the public key again, three times
         * the cost of the whole check). OpenSSL reads the names from the
         * certificate's cache, filled here from the new extension. */
        copy = X509_new();
        ok = copy != NULL && X509_set_version(copy, X509_VERSION_3)
             && X509_set_subject_name(copy, X509_get_subject_name(x))
             && X509_add1_ext_i2d(copy, NID_subject_alt_name, gens, crit, X509V3_ADD_DEFAULT) == 1;
        if (ok)
            (void)X509_check_purpose(copy, -1, 0); /* fills the cache; no key, no signature: not valid */
    }
    GENERAL_NAMES_free(gens);
    if (!ok) {
        X509_free(copy);
        *err = X509_V_ERR_OUT_OF_MEM;
        return NULL;
    }
    return copy;
}

static int has_dns_name(X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; !found && i < sk_GENERAL_NAME_num(gens); i++)
        found = sk_GENERAL_NAME_value(gens, i)->type == GEN_DNS;
    GENERAL_NAMES_free(gens);
    return found;
}

/* What OpenSSL's check_name_constraints() does for one certificate and one
 * CA's constraints, the subject CN of an end-entity certificate included. */
static int check_one(X509 *x, int depth, NAME_CONSTRAINTS *nc, unsigned int hostflags)
{
    int rv = NAME_CONSTRAINTS_check(x, nc);
    if (rv == X509_V_OK && depth == 0 && !(hostflags & X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)
        && ((hostflags & X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT) || !has_dns_name(x)))
        rv = NAME_CONSTRAINTS_check_CN(x, nc);
    return rv;
}

int m2_ae_name_constraints(X509_STORE_CTX *xs)
{
    int depth = X509_STORE_CTX_get_error_depth(xs), err;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(xs);
    X509 *x = sk_X509_value(chain, depth);
    if (x == NULL)
        return X509_V_ERR_UNSUPPORTED_NAME_SYNTAX;
    X509 *copy = with_schemes(x, &err);
    if (copy == NULL) /* no Absolute AE-ID: the error is OpenSSL's */
        return err == X509_V_OK ? X509_V_ERR_UNSUPPORTED_NAME_SYNTAX : err;
    unsigned int hostflags = X509_VERIFY_PARAM_get_hostflags(X509_STORE_CTX_get0_param(xs));
    int rv = X509_V_OK;
    for (int j = sk_X509_num(chain) - 1; rv == X509_V_OK && j > depth; j--) {
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(sk_X509_value(chain, j), NID_name_constraints, NULL, NULL);
        if (nc != NULL)
            rv = check_one(copy, depth, nc, hostflags);
        NAME_CONSTRAINTS_free(nc);
    }
    X509_free(copy);
    return rv;
}

static void add_subtrees(m2_buf *why, const char *what, STACK_OF(GENERAL_SUBTREE) *subtrees)
{
    if (sk_GENERAL_SUBTREE_num(subtrees) <= 0) /* -1 when absent */
        return;
    m2_buf_addf(why, "%s %s", why->len > 0 && why->s[why->len - 1] != ':' ? ";" : "", what);
    BIO *b = BIO_new(BIO_s_mem());
    for (int i = 0; b != NULL && i < sk_GENERAL_SUBTREE_num(subtrees) && i < 8; i++) {
        (void)BIO_reset(b);
        GENERAL_NAME_print(b, sk_GENERAL_SUBTREE_value(subtrees, i)->base);
        char *text = NULL;
        long n = BIO_get_mem_data(b, &text);
        m2_buf_addf(why, i ? ", " : " ");
        m2_buf_add_escaped(why, (const unsigned char *)text, n > 0 ? (size_t)n : 0, 200);
    }
    if (sk_GENERAL_SUBTREE_num(subtrees) > 8)
        m2_buf_addf(why, ", ...");
    BIO_free(b);
}

void m2_describe_name_constraints(STACK_OF(X509) *chain, int depth, m2_buf *why)
{
    for (int j = depth + 1; j < sk_X509_num(chain); j++) {
        X509 *ca = sk_X509_value(chain, j);
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
        if (nc == NULL)
            continue;
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(ca), subject, sizeof subject);
        m2_buf_addf(why, "; nameConstraints of %s:", subject);
        add_subtrees(why, "permitted", nc->permittedSubtrees);
        add_subtrees(why, "excluded", nc->excludedSubtrees);
        NAME_CONSTRAINTS_free(nc);
    }
}
