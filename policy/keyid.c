/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 6920 key identifiers, as TS-0003 names raw public keys: the SHA-256 of
 * the DER SubjectPublicKeyInfo, whole ("sha-256") or truncated to its first
 * 128 or 120 bits ("sha-256-128", "sha-256-120"), in base64url without
 * padding. A policy writes one as key:<ALG>;<BASE64URL>. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "internal.h"

/* The RFC 6920 hash name strings TS-0003 allows, and their lengths. */
static const struct {
    const char *name;
    size_t      len;
} algs[] = {
    { "sha-256", 32 },
    { "sha-256-128", 16 },
    { "sha-256-120", 15 },
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t m2_keyid_alg_len(const char *alg)
{
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strcmp(alg, algs[i].name) == 0)
            return algs[i].len;
    return 0;
}

/* The canonical (lower-case) name of ALG[0..n), NULL when not one of ours:
 * RFC 6920 registers the names in lower case; accepting any case costs
 * nothing and stores one spelling. */
static const char *canonical_alg(const char *alg, size_t n)
{
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strlen(algs[i].name) == n && strncasecmp(alg, algs[i].name, n) == 0)
            return algs[i].name;
    return NULL;
}

static int b64url_value(char c)
{
    const char *at = c != '\0' ? strchr(b64url, c) : NULL;
    return at != NULL ? (int)(at - b64url) : -1;
}

/* Characters of LEN bytes in base64url without padding. */
static size_t b64url_chars(size_t len)
{
    return (len * 8 + 5) / 6;
}

static void b64url_encode(const unsigned char *in, size_t len, char *out)
{
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = b64url[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* Decodes exactly LEN bytes from S[0..n); 0 with WHY when S is not their
 * canonical base64url (unpadded, unused low bits zero: one text per id). */
static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t len, char *why, size_t why_len)
{
    if (memchr(s, '=', n) != NULL) {
        snprintf(why, why_len, "bad base64url: no '=' padding (RFC 6920 removes it)");
        return 0;
    }
    if (n != b64url_chars(len)) {
        snprintf(why, why_len, "wrong length: %zu bytes are %zu base64url characters, not %zu", len,
                 b64url_chars(len), n);
        return 0;
    }
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(s[i]);
        if (v < 0) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x21 && c < 0x7f)
                snprintf(why, why_len, "bad base64url: '%c' (character %zu) is not A-Z a-z 0-9 - _", c, i + 1);
            else
                snprintf(why, why_len, "bad base64url: byte 0x%02x (character %zu) is not A-Z a-z 0-9 - _", c, i + 1);
            return 0;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) {
        snprintf(why, why_len, "bad base64url: the last character has bits set beyond the %zu bytes", len);
        return 0;
    }
    return 1;
}

int m2_keyid_parse(const char *s, unsigned char out[32], size_t *len, const char **alg, char *why, size_t why_len)
{
    const char *semi = strchr(s, ';');
    if (semi == NULL) {
        snprintf(why, why_len, "expected <ALG>;<BASE64URL> after 'key:' (e.g. key:sha-256;...)");
        return 0;
    }
    *alg = canonical_alg(s, (size_t)(semi - s));
    if (*alg == NULL) {
        snprintf(why, why_len, "unknown hash algorithm '%.*s' (RFC 6920 names TS-0003 allows: sha-256, "
                 "sha-256-128, sha-256-120)", (int)((size_t)(semi - s) > 40 ? 40 : semi - s), s);
        return 0;
    }
    *len = m2_keyid_alg_len(*alg);
    return b64url_decode(semi + 1, strlen(semi + 1), out, *len, why, why_len);
}

static int sha256_of(const unsigned char *der, int n, unsigned char out[32])
{
    unsigned int md_len = 0;
    return n > 0 && EVP_Digest(der, (size_t)n, out, &md_len, EVP_sha256(), NULL) && md_len == 32;
}

int m2_key_sha256(const EVP_PKEY *key, unsigned char out[32])
{
    unsigned char *der = NULL;
    int n = key != NULL ? i2d_PUBKEY(key, &der) : -1;
    int ok = sha256_of(der, n, out);
    OPENSSL_free(der);
    return ok;
}

/* Whether the certificate's SubjectPublicKeyInfo, encoded again from the
 * fields it was decoded into, is byte for byte what i2d_PUBKEY makes of its
 * key: an EC key on a named curve (point form kept, compressed or not). An
 * RSA key whose parameters omit the NULL is one that is not. */
static int spki_canonical(X509_PUBKEY *xpk)
{
    ASN1_OBJECT *alg = NULL;
    const void *param = NULL;
    int ptype = V_ASN1_UNDEF;
    X509_ALGOR *palg = NULL;
    if (!X509_PUBKEY_get0_param(&alg, NULL, NULL, &palg, xpk) || palg == NULL)
        return 0;
    X509_ALGOR_get0(NULL, &ptype, &param, palg);
    return OBJ_obj2nid(alg) == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT;
}

/* The same digest as m2_key_sha256 of the key (the ids `m2mtls inspect` and
 * `keyref` print), cheaper: OpenSSL 3's encoders cost about two million
 * instructions per i2d_PUBKEY, re-encoding the certificate's own fields a
 * few thousand; this runs on every handshake and resumption that looks a key
 * up. Other keys than named-curve EC ones take the encoders. */
int m2_peer_key_sha256(X509 *leaf, const EVP_PKEY *rpk, unsigned char out[32])
{
    if (leaf == NULL)
        return m2_key_sha256(rpk, out);
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(leaf);
    /* Only a key OpenSSL could decode: the handshake verified with that one. */
    if (X509_get0_pubkey(leaf) == NULL || xpk == NULL)
        return 0;
    if (!spki_canonical(xpk))
        return m2_key_sha256(X509_get0_pubkey(leaf), out);
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(xpk, &der);
    int ok = sha256_of(der, n, out);
    OPENSSL_free(der);
    return ok;
}

const char *m2_keyid_format(const unsigned char sha[32], const char *alg, char *buf, size_t len)
{
    size_t n = m2_keyid_alg_len(alg);
    char text[64];
    if (n == 0) {
        snprintf(buf, len, "?");
        return buf;
    }
    b64url_encode(sha, n, text);
    snprintf(buf, len, "%s;%s", alg, text);
    return buf;
}
