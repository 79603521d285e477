/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate names -> candidate associations.
 *
 * Only subjectAltName dNSName and URI entries are names here: dNSName compares
 * ASCII case-insensitively, URI byte for byte, each only with configured names
 * of its own type. The subject CN, e-mail and other SAN types never match. A
 * certificate with a wildcard dNSName or an embedded NUL in a name is refused
 * as a whole (TS-0003: such certificates carry no wildcards). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>
#include "internal.h"

#define NAMES_SHOWN 8          /* names listed in a refusal message */
#define NAME_SHOWN_BYTES 200

typedef struct san_key { char *s; size_t len, cap; } san_key;

/* "dns:<lower>" / "uri:<bytes>" into K; 0 if the name is refused (reason set). */
static int make_key(san_key *k, int type, const ASN1_STRING *v, m2_buf *why)
{
    const unsigned char *d = ASN1_STRING_get0_data(v);
    size_t n = (size_t)ASN1_STRING_length(v);
    const char *kind = type == GEN_DNS ? "dNSName" : "URI";
    if (memchr(d, '\0', n) != NULL) {
        m2_buf_addf(why, "certificate subjectAltName %s contains an embedded NUL: ", kind);
        m2_buf_add_escaped(why, d, n, NAME_SHOWN_BYTES);
        return 0;
    }
    if (type == GEN_DNS && memchr(d, '*', n) != NULL) {
        m2_buf_addf(why, "certificate subjectAltName dNSName is a wildcard (never accepted): ");
        m2_buf_add_escaped(why, d, n, NAME_SHOWN_BYTES);
        return 0;
    }
    if (k->cap < n + 5) {
        char *s = realloc(k->s, n + 5);
        if (s == NULL) {
            m2_buf_addf(why, "out of memory");
            return 0;
        }
        k->s = s;
        k->cap = n + 5;
    }
    memcpy(k->s, type == GEN_DNS ? "dns:" : "uri:", 4);
    for (size_t i = 0; i < n; i++)
        k->s[4 + i] = type == GEN_DNS ? (char)tolower(d[i]) : (char)d[i];
    k->s[4 + n] = '\0';
    k->len = n + 4;
    return 1;
}

static int add_candidate(m2_match *m, uint32_t peer, uint32_t pfc, uint32_t anchor)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        m2_candidate *c = realloc(m->cand, cap * sizeof *c);
        if (c == NULL)
            return 0;
        m->cand = c;
        m->cap = cap;
    }
    m->cand[m->n++] = (m2_candidate){ peer, pfc, anchor };
    return 1;
}

static int cmp_candidate(const void *a, const void *b)
{
    const m2_candidate *x = a, *y = b;
    if (x->peer != y->peer)
        return x->peer < y->peer ? -1 : 1;
    return x->pfc < y->pfc ? -1 : x->pfc > y->pfc;
}

/* The same SAN may appear twice: sort and drop repeats (n log n, so a
 * certificate with thousands of names costs no quadratic time). */
static void unique_candidates(m2_match *m)
{
    if (m->n < 2)
        return;
    qsort(m->cand, m->n, sizeof *m->cand, cmp_candidate);
    size_t out = 1;
    for (size_t i = 1; i < m->n; i++)
        if (cmp_candidate(&m->cand[i], &m->cand[out - 1]) != 0)
            m->cand[out++] = m->cand[i];
    m->n = out;
}

typedef struct scan {
    const m2mtls_policy *p;
    const char *expected;
    uint32_t expected_peer;
    int expected_seen;
    int n_dns, n_uri, n_names;
    const ASN1_STRING *uri;     /* the last URI SAN */
    m2_buf names;               /* for messages */
} scan;

static int scan_name(scan *sc, m2_match *m, int type, const ASN1_STRING *v, san_key *k, m2_buf *why)
{
    if (!make_key(k, type, v, why))
        return 0;
    if (type == GEN_DNS)
        sc->n_dns++;
    else {
        sc->n_uri++;
        sc->uri = v;
    }
    if (sc->n_names++ < NAMES_SHOWN) {
        m2_buf_addf(&sc->names, sc->n_names > 1 ? ", " : "");
        m2_buf_add_escaped(&sc->names, (const unsigned char *)k->s, k->len, NAME_SHOWN_BYTES);
    } else if (sc->n_names == NAMES_SHOWN + 1) {
        m2_buf_addf(&sc->names, ", ...");
    }
    const m2mtls_policy *p = sc->p;
    if (sc->expected != NULL) {
        if (sc->expected_peer != M2_NONE && strcmp(p->peers[sc->expected_peer].name, k->s) == 0)
            sc->expected_seen = 1;
        return 1;
    }
    for (uint32_t i = m2_policy_find_name(p, k->s, k->len); i != M2_NONE; i = p->peers[i].next_same_name)
        if (!add_candidate(m, i, M2_NONE, p->peers[i].anchor)) {
            m2_buf_addf(why, "out of memory");
            return 0;
        }
    return 1;
}

/* peers-from-cert: the identity is the certificate's single URI SAN. */
static int from_cert(const m2mtls_policy *p, scan *sc, m2_match *m, m2_buf *why)
{
    if (sc->n_uri != 1) {
        m2_buf_addf(why, "no association matches the certificate's names [%s], and peers-from-cert "
                         "needs exactly one URI subjectAltName (the certificate has %d)",
                    sc->names.s ? sc->names.s : "", sc->n_uri);
        return 0;
    }
    const unsigned char *d = ASN1_STRING_get0_data(sc->uri);
    size_t n = (size_t)ASN1_STRING_length(sc->uri);
    const m2_pfc *under = NULL; /* a rule whose prefix the URI has, without a stem after it */
    for (uint32_t i = 0; i < p->n_pfcs; i++) {
        const m2_pfc *r = &p->pfcs[i];
        if (n < r->prefix_len || memcmp(d, r->prefix, r->prefix_len) != 0)
            continue;
        /* "Any AE of this CSE": exactly one AE-ID-Stem after the prefix, so
         * no empty, deeper, dot-segment, query or escaped name is an identity. */
        if (!m2_ae_id_stem((const char *)d + r->prefix_len, n - r->prefix_len)) {
            if (under == NULL || r->prefix_len > under->prefix_len)
                under = r; /* the closest rule explains the refusal best */
            continue;
        }
        if (!add_candidate(m, M2_NONE, i, r->anchor)) {
            m2_buf_addf(why, "out of memory");
            return 0;
        }
    }
    if (m->n == 0 && under != NULL) {
        m2_buf_addf(why, "certificate URI '");
        m2_buf_add_escaped(why, d, n, NAME_SHOWN_BYTES);
        m2_buf_addf(why, "' is not an AE of peers-from-cert prefix '%s' (line %u): the prefix must be followed "
                         "by exactly one AE-ID-Stem ('C' or 'S', then only A-Z a-z 0-9 - . _ ~)",
                    under->prefix, under->line);
        return 0;
    }
    if (m->n == 0) {
        m2_buf_addf(why, "no association matches the certificate's names [%s] and no peers-from-cert "
                         "prefix matches its URI", sc->names.s ? sc->names.s : "");
        return 0;
    }
    m->pfc_id = malloc(n + 1);
    if (m->pfc_id != NULL) {
        memcpy(m->pfc_id, d, n);
        m->pfc_id[n] = '\0';
    }
    /* An identity a `peer` line configures is established by that line's
     * certificate name and anchor only: a certificate that merely carries
     * it as its URI (here the line's name did not match) does not take it. */
    uint32_t owner = m->pfc_id != NULL ? m2_policy_find_peer(p, m->pfc_id) : M2_NONE;
    if (owner != M2_NONE) {
        m2_buf_addf(why, "certificate URI '");
        m2_buf_add_escaped(why, d, n, NAME_SHOWN_BYTES);
        m2_buf_addf(why, "' is the identity of the peer line at line %u, which requires %s under anchor '%s': "
                         "peers-from-cert never gives it", p->peers[owner].line, p->peers[owner].name,
                    p->anchors[p->peers[owner].anchor].name);
        m->n = 0;
        return 0;
    }
    if (m->pfc_id == NULL) {
        m2_buf_addf(why, "out of memory");
        return 0;
    }
    return 1;
}

/* Initiator: only the association it asked for. */
static int expected_only(const m2mtls_policy *p, scan *sc, m2_match *m, m2_buf *why)
{
    if (sc->expected_peer != M2_NONE) {
        const m2_peer *peer = &p->peers[sc->expected_peer];
        if (sc->expected_seen)
            return add_candidate(m, sc->expected_peer, M2_NONE, peer->anchor)
                || (m2_buf_addf(why, "out of memory"), 0);
        m2_buf_addf(why, "certificate does not carry %s, the name configured for peer '%s' "
                         "(its names: [%s])", peer->name, peer->id, sc->names.s ? sc->names.s : "");
        return 0;
    }
    /* An identity a peers-from-cert rule can produce: the single URI must be it. */
    if (sc->n_uri == 1) {
        size_t n = (size_t)ASN1_STRING_length(sc->uri);
        if (n == strlen(sc->expected) && memcmp(ASN1_STRING_get0_data(sc->uri), sc->expected, n) == 0)
            return from_cert(p, sc, m, why);
    }
    m2_buf_addf(why, "certificate does not carry uri:%s, the identity expected for peer '%s' "
                     "(its names: [%s])", sc->expected, sc->expected, sc->names.s ? sc->names.s : "");
    return 0;
}

int m2_match_names(const m2mtls_policy *p, X509 *leaf, const char *expected, m2_match *m, char **reason)
{
    memset(m, 0, sizeof *m);
    *reason = NULL;
    m2_buf why = { 0 };
    scan sc = { .p = p, .expected = expected, .expected_peer = M2_NONE };
    if (expected != NULL) {
        sc.expected_peer = m2_policy_find_peer(p, expected);
        if (sc.expected_peer == M2_NONE && m2_policy_find_pfc_for(p, expected, 0) == M2_NONE) {
            m2_buf_addf(&why, "the policy has no association with peer '%s'", expected);
            *reason = m2_buf_take(&why);
            return 0;
        }
    }
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL && crit != -1) {
        m2_buf_addf(&why, crit == -2 ? "certificate has more than one subjectAltName extension"
                                     : "certificate subjectAltName cannot be decoded");
        *reason = m2_buf_take(&why);
        return 0;
    }
    san_key k = { 0 };
    int ok = 1;
    for (int i = 0; ok && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS)
            ok = scan_name(&sc, m, GEN_DNS, g->d.dNSName, &k, &why);
        else if (g->type == GEN_URI)
            ok = scan_name(&sc, m, GEN_URI, g->d.uniformResourceIdentifier, &k, &why);
    }
    if (ok && sc.n_names == 0) {
        m2_buf_addf(&why, "certificate has no dNSName or URI subjectAltName (the subject CN is never used)");
        ok = 0;
    }
    if (ok && expected != NULL)
        ok = expected_only(p, &sc, m, &why);
    else if (ok && m->n == 0 && p->n_pfcs > 0)
        ok = from_cert(p, &sc, m, &why);
    else if (ok && m->n == 0) {
        m2_buf_addf(&why, "no association matches the certificate's names [%s]", sc.names.s ? sc.names.s : "");
        ok = 0;
    }
    if (ok)
        unique_candidates(m);
    if (ok && !sc.names.oom) {
        m->names = m2_buf_take(&sc.names);
    } else {
        free(sc.names.s);
    }
    free(k.s);
    GENERAL_NAMES_free(gens);
    if (!ok) {
        *reason = m2_buf_take(&why);
        m2_match_free(m);
        return 0;
    }
    free(why.s);
    return 1;
}

void m2_match_free(m2_match *m)
{
    free(m->cand);
    free(m->pfc_id);
    free(m->names);
    memset(m, 0, sizeof *m);
}
