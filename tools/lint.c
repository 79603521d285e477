/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls inspect --lint: what a PKI operator runs before issuing. Each
 * certificate of the file (and --chain) is held to the TS-0003 certificate
 * profile; every departure is one finding, with the clause it comes from.
 *
 * Clause numbers are those of TS-0003 V3.18 (see README, "Certificate
 * lint"); RFC 5280 where TS-0003 relies on it. Checked:
 * - every certificate: its extensions decode; an EC P-256 key with an
 *   uncompressed point and an ecdsa-with-SHA256 signature (10.1.1.1);
 *   keyUsage present (digitalSignature for an end entity, keyCertSign for a
 *   CA); subject and authority key identifiers; valid now (or --at);
 * - CA certificates: a critical basicConstraints with CA:TRUE, and
 *   nameConstraints on the names below them (10.1.1.3);
 * - end-entity certificates: the identity in subjectAltName, never only in
 *   the CN; no wildcard; one flavour: a dNSName FQDN (a CSE) or one URI that
 *   is an Absolute AE-ID (an AE) (8.1.2.5). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include "internal.h"
#include "lint.h"
#include "tool.h"

#define TS_KEYS   "TS-0003 10.1.1.1"
#define TS_USAGE  "TS-0003 10.1.1.1; RFC 5280 4.2.1.3"
#define TS_NAMES  "TS-0003 8.1.2.5"
#define TS_AE_ID  "TS-0003 8.1.2.5; TS-0001 7.2"
#define TS_NC     "TS-0003 10.1.1.3; RFC 5280 4.2.1.10"
#define RFC_BC    "RFC 5280 4.2.1.9"
#define RFC_SKI   "RFC 5280 4.2.1.2"
#define RFC_AKI   "RFC 5280 4.2.1.1"
#define RFC_TIME  "RFC 5280 4.1.2.5"
#define RFC_EXTS  "RFC 5280 4.2"

typedef struct finding {
    int         depth;
    const char *check;   /* a stable name for scripts */
    const char *clause;
    char       *message;
} finding;

typedef struct lint {
    finding *f;
    size_t   n, cap;
    int      depth;      /* of the certificate being linted */
} lint;

__attribute__((format(printf, 4, 5))) static void add(lint *l, const char *check, const char *clause,
                                                      const char *fmt, ...)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        finding *f = realloc(l->f, cap * sizeof *f);
        if (f == NULL)
            return;
        l->f = f;
        l->cap = cap;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    l->f[l->n++] = (finding){ l->depth, check, clause, m2_strdup(line) };
}

/* A name from the certificate, printable: control and non-ASCII bytes as \xHH. */
static const char *shown(const ASN1_STRING *v, m2_buf *b)
{
    m2_buf_add_escaped(b, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v), 200);
    return b->s != NULL ? b->s : "";
}

/* ---- every certificate ------------------------------------------------------------ */

static void lint_key(lint *l, X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (k == NULL) {
        add(l, "key", TS_KEYS, "the public key cannot be decoded");
        return;
    }
    char group[64] = "";
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) {
        add(l, "key", TS_KEYS, "%s key of %d bits, not EC P-256", EVP_PKEY_get0_type_name(k), EVP_PKEY_get_bits(k));
        return;
    }
    if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL)
        || (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        add(l, "key", TS_KEYS, "EC key on %s, not P-256 (prime256v1)", group[0] ? group : "explicit parameters");
        return;
    }
    const ASN1_BIT_STRING *point = X509_get0_pubkey_bitstr(x);
    if (point != NULL && ASN1_STRING_length(point) > 0 && ASN1_STRING_get0_data(point)[0] != 0x04)
        add(l, "ec-point", TS_KEYS, "the EC public key is a %s point, not an uncompressed one",
            ASN1_STRING_get0_data(point)[0] >= 0x06 ? "hybrid" : "compressed");
}

static void lint_signature(lint *l, X509 *x)
{
    int nid = X509_get_signature_nid(x);
    if (nid != NID_ecdsa_with_SHA256)
        add(l, "signature", TS_KEYS, "signed with %s, not ecdsa-with-SHA256",
            nid != NID_undef ? OBJ_nid2ln(nid) : "an unknown algorithm");
}

static void lint_key_usage(lint *l, X509 *x, int ca)
{
    if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE)) {
        add(l, "key-usage", TS_USAGE, "no keyUsage extension (%s)", ca ? "keyCertSign" : "digitalSignature");
        return;
    }
    uint32_t ku = X509_get_key_usage(x);
    if (!ca && !(ku & KU_DIGITAL_SIGNATURE))
        add(l, "key-usage", TS_USAGE, "keyUsage lacks digitalSignature: the key cannot sign a (D)TLS handshake");
    if (ca && !(ku & KU_KEY_CERT_SIGN))
        add(l, "key-usage", TS_USAGE, "keyUsage of a CA lacks keyCertSign");
}

static void lint_key_ids(lint *l, X509 *x)
{
    if (X509_get0_subject_key_id(x) == NULL)
        add(l, "subject-key-id", RFC_SKI, "no subjectKeyIdentifier");
    if (!(X509_get_extension_flags(x) & EXFLAG_SS) && X509_get0_authority_key_id(x) == NULL)
        add(l, "authority-key-id", RFC_AKI, "no authorityKeyIdentifier (the certificate is not self-signed)");
}

static void lint_validity(lint *l, X509 *x, time_t at)
{
    time_t *when = at != 0 ? &at : NULL;
    char t[32];
    if (X509_cmp_time(X509_get0_notBefore(x), when) > 0)
        add(l, "validity", RFC_TIME, "not valid before %s", tool_time(X509_get0_notBefore(x), t, sizeof t));
    if (X509_cmp_time(X509_get0_notAfter(x), when) < 0)
        add(l, "validity", RFC_TIME, "expired at %s", tool_time(X509_get0_notAfter(x), t, sizeof t));
}

/* ---- CA certificates ---------------------------------------------------------------- */

static void lint_ca(lint *l, X509 *x, int ca)
{
    int at = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
    if (!ca) {
        add(l, "basic-constraints", RFC_BC, "issues the certificate below it but is not a CA (no basicConstraints "
                                           "CA:TRUE)");
        return;
    }
    if (at >= 0 && !X509_EXTENSION_get_critical(X509_get_ext(x, at)))
        add(l, "basic-constraints", RFC_BC, "basicConstraints of a CA is not critical");
    if (X509_get_ext_by_NID(x, NID_name_constraints, -1) < 0)
        add(l, "name-constraints", TS_NC, "no nameConstraints: CA certificates should limit the names below them "
                                          "(URI: the SP-ID host of the AE-IDs, DNS: the CSEs' domain)");
}

/* ---- end-entity names ------------------------------------------------------------------ */

static void lint_dns(lint *l, const ASN1_STRING *v)
{
    const char *d = (const char *)ASN1_STRING_get0_data(v);
    size_t n = (size_t)ASN1_STRING_length(v);
    m2_buf b = { 0 };
    if (n > 0 && memchr(d, '*', n) != NULL)
        add(l, "wildcard", TS_NAMES, "dNSName '%s' is a wildcard: TS-0003 certificates carry none", shown(v, &b));
    else if (!m2_valid_dns_name(d, n) || memchr(d, '.', n) == NULL || d[n - 1] == '.')
        add(l, "name", TS_NAMES, "dNSName '%s' is not a fully qualified domain name (the CSE's public domain "
                                 "name)", shown(v, &b));
    free(b.s);
}

static void lint_uri(lint *l, const ASN1_STRING *v)
{
    const char *d = (const char *)ASN1_STRING_get0_data(v);
    size_t n = (size_t)ASN1_STRING_length(v);
    char why[256];
    m2_buf b = { 0 };
    if (n > 0 && memchr(d, '*', n) != NULL)
        add(l, "wildcard", TS_NAMES, "URI '%s' has a wildcard: TS-0003 certificates carry none", shown(v, &b));
    else if (!m2_absolute_ae_id(d, n, why, sizeof why))
        add(l, "name", TS_AE_ID, "URI '%s' is not an Absolute AE-ID: %s", shown(v, &b), why);
    free(b.s);
}

/* The printable subject CN, for the message about a certificate without names. */
static const char *cn_of(X509 *x, char *buf, size_t len)
{
    buf[0] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) < 0)
        snprintf(buf, len, "(none)");
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    return buf;
}

static void lint_names(lint *l, X509 *x)
{
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    char cn[256];
    if (gens == NULL) {
        if (crit == -1)
            add(l, "subject-alt-name", TS_NAMES, "no subjectAltName: the identity would only be in the subject CN "
                                                 "(%s), which TS-0003 never uses", cn_of(x, cn, sizeof cn));
        return; /* an undecodable one was reported with the extensions */
    }
    int dns = 0, uri = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *v = g->type == GEN_DNS ? g->d.dNSName : g->type == GEN_URI ? g->d.uniformResourceIdentifier
                                                                                       : NULL;
        if (v == NULL)
            continue;
        if (memchr(ASN1_STRING_get0_data(v), '\0', (size_t)ASN1_STRING_length(v)) != NULL) {
            add(l, "name", TS_NAMES, "a %s with an embedded NUL", g->type == GEN_DNS ? "dNSName" : "URI");
            continue;
        }
        if (g->type == GEN_DNS) {
            dns++;
            lint_dns(l, v);
        } else {
            uri++;
            lint_uri(l, v);
        }
    }
    GENERAL_NAMES_free(gens);
    if (dns == 0 && uri == 0)
        add(l, "name", TS_NAMES, "no dNSName (a CSE) and no URI (an AE) in subjectAltName");
    else if (dns > 0 && uri > 0)
        add(l, "name", TS_NAMES, "both a dNSName (a CSE) and a URI (an AE): one flavour of identity per certificate");
    else if (uri > 1)
        add(l, "name", TS_NAMES, "%d URIs: an AE certificate names one AE (peers-from-cert needs exactly one)", uri);
}

/* ---- the report -------------------------------------------------------------------------- */

static void lint_one(lint *l, X509 *x, int depth, time_t at)
{
    l->depth = depth;
    lint_key(l, x);
    lint_signature(l, x);
    lint_validity(l, x, at);
    m2_buf why = { 0 };
    int invalid = m2_cert_extensions_invalid(x, &why);
    if (invalid) /* OpenSSL then answers as if there were no extensions at all */
        add(l, "extensions", RFC_EXTS, "%s", why.s ? why.s : "invalid extensions");
    free(why.s);
    if (invalid)
        return;
    int ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
    lint_key_usage(l, x, ca);
    lint_key_ids(l, x);
    if (ca || depth > 0)
        lint_ca(l, x, ca);
    else
        lint_names(l, x);
}

static void print_text(FILE *out, const char *name, STACK_OF(X509) *certs, const lint *l)
{
    char subject[512];
    if (l->n == 0) {
        fprintf(out, "clean: %s follows the TS-0003 certificate profile (%d certificate%s)\n", name,
                sk_X509_num(certs), sk_X509_num(certs) == 1 ? "" : "s");
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        const finding *f = &l->f[i];
        tool_name(X509_get_subject_name(sk_X509_value(certs, f->depth)), subject, sizeof subject);
        fprintf(out, "depth %d (%s): [%s] %s: %s\n", f->depth, subject, f->clause, f->check,
                f->message ? f->message : "(out of memory)");
    }
    fprintf(out, "%zu finding%s in %s\n", l->n, l->n == 1 ? "" : "s", name);
}

static void print_json(FILE *out, STACK_OF(X509) *certs, const lint *l)
{
    char subject[512];
    fprintf(out, "{\"clean\": %s, \"certificates\": [", l->n == 0 ? "true" : "false");
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        fprintf(out, "%s{\"depth\": %d, \"subject\": ", i ? ", " : "", i);
        tool_json_str(out, tool_name(X509_get_subject_name(x), subject, sizeof subject));
        fprintf(out, ", \"ca\": %s}", (X509_get_extension_flags(x) & EXFLAG_CA) ? "true" : "false");
    }
    fprintf(out, "], \"findings\": [");
    for (size_t i = 0; i < l->n; i++) {
        const finding *f = &l->f[i];
        fprintf(out, "%s{\"depth\": %d, \"check\": ", i ? ", " : "", f->depth);
        tool_json_str(out, f->check);
        fprintf(out, ", \"clause\": ");
        tool_json_str(out, f->clause);
        fprintf(out, ", \"message\": ");
        tool_json_str(out, f->message);
        fprintf(out, "}");
    }
    fprintf(out, "]}\n");
}

int lint_report(FILE *out, const char *name, STACK_OF(X509) *certs, time_t at, int json)
{
    lint l = { 0 };
    for (int i = 0; i < sk_X509_num(certs); i++)
        lint_one(&l, sk_X509_value(certs, i), i, at);
    if (json)
        print_json(out, certs, &l);
    else
        print_text(out, name, certs, &l);
    int rc = l.n == 0 ? EXIT_ACCEPTED : EXIT_REJECTED;
    for (size_t i = 0; i < l.n; i++)
        free(l.f[i].message);
    free(l.f);
    return rc;
}
