/* SPDX-License-Identifier: Apache-2.0 */
/* Why OpenSSL found a certificate's extensions invalid. OpenSSL only sets a
 * flag (EXFLAG_INVALID) and then answers every question about the
 * certificate as if it had nothing: X509_get_key_usage() returns 0, so a
 * certificate with a malformed subjectAltName would be refused for "lacking
 * digitalSignature". Refusals say the true reason instead. */
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include "internal.h"

/* The extensions OpenSSL decodes when it caches a certificate's extensions:
 * one of them present twice, or not decodable, makes the certificate invalid. */
static const int decoded_nids[] = {
    NID_basic_constraints,   NID_proxyCertInfo,         NID_key_usage,
    NID_ext_key_usage,       NID_netscape_cert_type,    NID_subject_key_identifier,
    NID_authority_key_identifier, NID_subject_alt_name, NID_name_constraints,
    NID_crl_distribution_points,  NID_freshest_crl,     NID_sbgp_ipAddrBlock,
    NID_sbgp_autonomousSysNum,
};

static void free_decoded(const X509V3_EXT_METHOD *m, void *d)
{
    if (m->it != NULL)
        ASN1_item_free(d, ASN1_ITEM_ptr(m->it));
    else if (m->ext_free != NULL)
        m->ext_free(d);
}

static int any_bit(const ASN1_BIT_STRING *bits)
{
    for (int i = 0; i < 9; i++) /* keyUsage has nine bits */
        if (ASN1_BIT_STRING_get_bit(bits, i))
            return 1;
    return 0;
}

/* 1 when the first NID extension of X is there twice or does not decode. */
static int bad_extension(X509 *x, int nid, m2_buf *why)
{
    int at = X509_get_ext_by_NID(x, nid, -1);
    if (at < 0)
        return 0;
    const char *name = OBJ_nid2sn(nid); /* RFC 5280's names: subjectAltName, keyUsage */
    if (X509_get_ext_by_NID(x, nid, at) >= 0) {
        m2_buf_addf(why, "certificate has more than one %s extension", name);
        return 1;
    }
    X509_EXTENSION *ext = X509_get_ext(x, at);
    const X509V3_EXT_METHOD *m = X509V3_EXT_get(ext);
    void *d = m != NULL ? X509V3_EXT_d2i(ext) : NULL;
    if (m == NULL) /* not one this OpenSSL decodes: not why it refused */
        return 0;
    if (d == NULL) {
        m2_buf_addf(why, "certificate %s extension cannot be decoded", name);
        return 1;
    }
    int bad = 0;
    if (nid == NID_key_usage && !any_bit(d)) {
        m2_buf_addf(why, "certificate keyUsage extension is empty (RFC 5280 4.2.1.3: at least one bit)");
        bad = 1;
    } else if (nid == NID_basic_constraints && ((BASIC_CONSTRAINTS *)d)->pathlen != NULL
               && ASN1_STRING_type(((BASIC_CONSTRAINTS *)d)->pathlen) == V_ASN1_NEG_INTEGER) {
        m2_buf_addf(why, "certificate basicConstraints has a negative pathLenConstraint");
        bad = 1;
    }
    free_decoded(m, d);
    return bad;
}

int m2_cert_extensions_invalid(X509 *x, m2_buf *why)
{
    if (!(X509_get_extension_flags(x) & EXFLAG_INVALID))
        return 0;
    ERR_set_mark(); /* decoding failures push errors that are ours alone */
    int found = 0;
    for (size_t i = 0; !found && i < sizeof decoded_nids / sizeof decoded_nids[0]; i++)
        found = bad_extension(x, decoded_nids[i], why);
    ERR_pop_to_mark();
    if (!found)
        m2_buf_addf(why, "certificate extensions are invalid or inconsistent");
    return 1;
}
