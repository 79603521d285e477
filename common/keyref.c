/* SPDX-License-Identifier: Apache-2.0 */
/* Key references: see keyref.h. DER is read and written by hand: the
 * structure is three fixed TLVs, and one strict reader is simpler to trust
 * than a general BER decoder followed by checks. */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include "keyref.h"

#define TAG_SEQUENCE      0x30
#define TAG_UTF8STRING    0x0c
#define TAG_VISIBLESTRING 0x1a

/* One TLV with TAG at *P (END bounds it): the contents and their length.
 * Only the minimal definite length forms (short, 0x81 >= 128, 0x82 >= 256). */
static int read_tlv(const unsigned char **p, const unsigned char *end, unsigned tag,
                    const unsigned char **val, size_t *len)
{
    const unsigned char *q = *p;
    if (end - q < 2 || q[0] != tag)
        return 0;
    size_t n = q[1];
    q += 2;
    if (n == 0x81) {
        if (end - q < 1 || q[0] < 0x80)
            return 0;
        n = q[0];
        q += 1;
    } else if (n == 0x82) {
        if (end - q < 2 || q[0] == 0)
            return 0;
        n = (size_t)q[0] << 8 | q[1];
        q += 2;
    } else if (n >= 0x80) {
        return 0; /* indefinite, or a length no reference needs */
    }
    if ((size_t)(end - q) < n)
        return 0;
    *val = q;
    *len = n;
    *p = q + n;
    return 1;
}

int m2c_keyref_decode(const unsigned char *der, size_t len, char **uri)
{
    const unsigned char *p = der, *end = der + len, *seq, *desc, *u;
    size_t seq_len, desc_len, u_len;

    *uri = NULL;
    if (der == NULL || len > M2C_KEYREF_MAX_DER + 4)
        return 0;
    if (!read_tlv(&p, end, TAG_SEQUENCE, &seq, &seq_len) || p != end)
        return 0;
    const unsigned char *seq_end = seq + seq_len;
    p = seq;
    if (!read_tlv(&p, seq_end, TAG_VISIBLESTRING, &desc, &desc_len) || desc_len != strlen(M2C_KEYREF_DESC)
        || memcmp(desc, M2C_KEYREF_DESC, desc_len) != 0)
        return 0;
    if (!read_tlv(&p, seq_end, TAG_UTF8STRING, &u, &u_len) || p != seq_end || memchr(u, '\0', u_len) != NULL)
        return 0;
    return (*uri = OPENSSL_strndup((const char *)u, u_len)) != NULL;
}

/* Length octets of N into OUT (room for 3); their count. */
static size_t put_len(unsigned char *out, size_t n)
{
    if (n < 0x80) {
        out[0] = (unsigned char)n;
        return 1;
    }
    if (n < 0x100) {
        out[0] = 0x81;
        out[1] = (unsigned char)n;
        return 2;
    }
    out[0] = 0x82;
    out[1] = (unsigned char)(n >> 8);
    out[2] = (unsigned char)n;
    return 3;
}

static size_t tlv_size(size_t n)
{
    return 1 + (n < 0x80 ? 1 : n < 0x100 ? 2 : 3) + n;
}

int m2c_keyref_encode(const char *uri, unsigned char **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    size_t desc_len = strlen(M2C_KEYREF_DESC), uri_len = uri != NULL ? strlen(uri) : 0;
    if (uri == NULL || uri_len > M2C_KEYREF_MAX_DER)
        return 0;
    size_t inner = tlv_size(desc_len) + tlv_size(uri_len);
    if (inner > M2C_KEYREF_MAX_DER)
        return 0;
    size_t total = tlv_size(inner);
    unsigned char *out = OPENSSL_malloc(total), *q = out;
    if (out == NULL)
        return 0;
    *q++ = TAG_SEQUENCE;
    q += put_len(q, inner);
    *q++ = TAG_VISIBLESTRING;
    q += put_len(q, desc_len);
    memcpy(q, M2C_KEYREF_DESC, desc_len);
    q += desc_len;
    *q++ = TAG_UTF8STRING;
    q += put_len(q, uri_len);
    memcpy(q, uri, uri_len);
    *der = out;
    *len = total;
    return 1;
}

int m2c_keyref_pem_write(BIO *out, const char *uri)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int ok = out != NULL && m2c_keyref_encode(uri, &der, &len)
             && PEM_write_bio(out, M2C_KEYREF_PEM_LABEL, "", der, (long)len) > 0;
    OPENSSL_free(der);
    return ok;
}

char *m2c_keyref_pem_read(BIO *in, char *why, size_t why_len)
{
    char *name = NULL, *header = NULL, *uri = NULL;
    unsigned char *data = NULL;
    long len = 0;
    if (in == NULL || !PEM_read_bio(in, &name, &header, &data, &len))
        snprintf(why, why_len, "not a PEM file");
    else if (strcmp(name, M2C_KEYREF_PEM_LABEL) != 0)
        snprintf(why, why_len, "PEM label is '%s', not '%s'", name, M2C_KEYREF_PEM_LABEL);
    else if (len < 0 || !m2c_keyref_decode(data, (size_t)len, &uri))
        snprintf(why, why_len, "not a '%s' structure", M2C_KEYREF_DESC);
    ERR_clear_error();
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    return uri;
}
