/* SPDX-License-Identifier: Apache-2.0 */
/* Test PKI generator: see pki.h. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw */
#endif
#include "pki.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static long next_serial = 1000;

static void fail(const char *what)
{
    fprintf(stderr, "pki: %s failed\n", what);
    ERR_print_errors_fp(stderr);
}

EVP_PKEY *pki_key_new(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (k == NULL)
        fail("EVP_EC_gen(P-256)");
    return k;
}

EVP_PKEY *pki_key_gen(const char *spec)
{
    EVP_PKEY *k = NULL;
    if (strncmp(spec, "RSA:", 4) == 0) {
        k = EVP_RSA_gen((unsigned int)atoi(spec + 4));
    } else if (strncmp(spec, "EC:", 3) == 0) {
        char curve[32];
        snprintf(curve, sizeof curve, "%s", spec + 3);
        char *opt = strchr(curve, ':');
        if (opt != NULL)
            *opt++ = '\0';
        k = EVP_EC_gen(curve);
        if (k != NULL && opt != NULL
            && !EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, opt)) {
            EVP_PKEY_free(k);
            k = NULL;
        }
    }
    if (k == NULL)
        fail(spec);
    return k;
}

static int add_ext_i2d(X509 *x, int nid, void *value, int crit)
{
    return X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) == 1;
}

static int add_key_usage(X509 *x, int bits)
{
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    int ok = bs != NULL;
    /* bit i of the DER bit string is the KU_* flag 0x80 >> i (0..6), 0x8000 for bit 8 */
    for (int i = 0; ok && i < 8; i++)
        if (bits & (0x80 >> i))
            ok = ASN1_BIT_STRING_set_bit(bs, i, 1);
    if (ok && (bits & KU_DECIPHER_ONLY))
        ok = ASN1_BIT_STRING_set_bit(bs, 8, 1);
    ok = ok && add_ext_i2d(x, NID_key_usage, bs, 1);
    ASN1_BIT_STRING_free(bs);
    return ok;
}

static int add_basic_constraints(X509 *x, int ca, int critical)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int ok = bc != NULL;
    if (ok) {
        bc->ca = ca ? 0xFF : 0;
        ok = add_ext_i2d(x, NID_basic_constraints, bc, critical);
    }
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

static GENERAL_NAME *make_gn(const pki_san *s)
{
    size_t len = s->len ? s->len : strlen(s->value);
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (gn == NULL)
        return NULL;
    if (s->type == PKI_SAN_OTHERNAME) {
        ASN1_OBJECT *oid = OBJ_txt2obj(PKI_OTHERNAME_OID, 1);
        ASN1_UTF8STRING *u = ASN1_UTF8STRING_new();
        ASN1_TYPE *t = ASN1_TYPE_new();
        if (oid == NULL || u == NULL || t == NULL || !ASN1_STRING_set(u, s->value, (int)len)) {
            ASN1_OBJECT_free(oid);
            ASN1_UTF8STRING_free(u);
            ASN1_TYPE_free(t);
            GENERAL_NAME_free(gn);
            return NULL;
        }
        ASN1_TYPE_set(t, V_ASN1_UTF8STRING, u);
        if (!GENERAL_NAME_set0_othername(gn, oid, t)) {
            ASN1_OBJECT_free(oid);
            ASN1_TYPE_free(t);
            GENERAL_NAME_free(gn);
            return NULL;
        }
        return gn;
    }
    int type = s->type == PKI_SAN_DNS ? GEN_DNS : s->type == PKI_SAN_URI ? GEN_URI : GEN_EMAIL;
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (ia5 == NULL || !ASN1_STRING_set(ia5, s->value, (int)len)) {
        ASN1_IA5STRING_free(ia5);
        GENERAL_NAME_free(gn);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, type, ia5);
    return gn;
}

static int add_sans(X509 *x, const pki_san *sans)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int ok = gens != NULL;
    for (const pki_san *s = sans; ok && s->type != PKI_SAN_END; s++) {
        GENERAL_NAME *gn = make_gn(s);
        ok = gn != NULL && sk_GENERAL_NAME_push(gens, gn) > 0;
        if (!ok)
            GENERAL_NAME_free(gn);
    }
    ok = ok && add_ext_i2d(x, NID_subject_alt_name, gens, 0);
    GENERAL_NAMES_free(gens);
    return ok;
}

static int add_conf_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

static int add_raw_exts(X509 *x, const pki_ext *exts)
{
    int ok = 1;
    for (const pki_ext *r = exts; ok && r->oid != NULL; r++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(r->oid, 0);
        ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e = NULL;
        ok = obj != NULL && value != NULL && ASN1_OCTET_STRING_set(value, r->der, (int)r->len)
             && (e = X509_EXTENSION_create_by_OBJ(NULL, obj, r->critical, value)) != NULL
             && X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(value);
        ASN1_OBJECT_free(obj);
    }
    return ok;
}

int pki_issue(const pki_opts *o, pki_cert *out)
{
    X509 *x = X509_new_ex(o->libctx, NULL); /* X509_sign signs in the certificate's context */
    EVP_PKEY *key = o->key;
    X509_NAME *name = X509_NAME_new();
    int ok = x != NULL && name != NULL;

    out->cert = NULL;
    out->key = NULL;
    if (key != NULL)
        ok = ok && EVP_PKEY_up_ref(key);
    else
        ok = ok && (key = pki_key_new()) != NULL;

    long nb = o->not_before, na = o->not_after;
    if (nb == 0 && na == 0) {
        nb = -3600;
        na = 30L * 86400;
    }
    ok = ok && X509_set_version(x, 2);
    ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(x), o->serial ? o->serial : next_serial++);
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), nb) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(x), na) != NULL;
    ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                          (const unsigned char *)"m2mtls tests", -1, -1, 0);
    if (o->cn != NULL)
        ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                              (const unsigned char *)o->cn, -1, -1, 0);
    ok = ok && X509_set_subject_name(x, name);
    ok = ok && X509_set_issuer_name(x, o->issuer ? X509_get_subject_name(o->issuer->cert) : name);
    ok = ok && X509_set_pubkey(x, key);

    if (ok && o->ca != PKI_BC_NONE)
        ok = add_basic_constraints(x, o->ca == PKI_BC_CA, !o->bc_not_critical);
    if (ok && o->key_usage != PKI_KU_NONE) {
        int bits = o->key_usage;
        if (bits == PKI_KU_DEFAULT)
            bits = o->ca == PKI_BC_CA ? (KU_KEY_CERT_SIGN | KU_CRL_SIGN) : KU_DIGITAL_SIGNATURE;
        ok = add_key_usage(x, bits);
    }
    if (ok && o->sans != NULL)
        ok = add_sans(x, o->sans);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, o->issuer ? o->issuer->cert : x, x, NULL, NULL, 0);
    if (ok && !o->no_key_ids) {
        ok = add_conf_ext(x, &v3, NID_subject_key_identifier, "hash");
        if (ok && o->issuer != NULL)
            ok = add_conf_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
    }
    if (ok && o->name_constraints != NULL)
        ok = add_conf_ext(x, &v3, NID_name_constraints, o->name_constraints);
    if (ok && o->ext_key_usage != NULL)
        ok = add_conf_ext(x, &v3, NID_ext_key_usage, o->ext_key_usage);
    if (ok && o->raw_exts != NULL)
        ok = add_raw_exts(x, o->raw_exts);
    const EVP_MD *md = EVP_sha256();
    EVP_MD *fetched = NULL;
    if (ok && o->md != NULL)
        ok = (md = fetched = EVP_MD_fetch(o->libctx, o->md, NULL)) != NULL;
    ok = ok && X509_sign(x, o->issuer ? o->issuer->key : key, md) > 0;
    EVP_MD_free(fetched);

    X509_NAME_free(name);
    if (!ok) {
        fail("pki_issue");
        X509_free(x);
        EVP_PKEY_free(key);
        return 0;
    }
    out->cert = x;
    out->key = key;
    return 1;
}

void pki_cert_free(pki_cert *c)
{
    if (c == NULL)
        return;
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    c->cert = NULL;
    c->key = NULL;
}

void pki_certs_free(pki_cert *const *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pki_cert_free(all[i]);
}

int pki_root(const char *cn, pki_cert *out)
{
    pki_opts o = { .cn = cn, .ca = PKI_BC_CA };
    return pki_issue(&o, out);
}

int pki_intermediate(const char *cn, const pki_cert *issuer, pki_cert *out)
{
    pki_opts o = { .cn = cn, .issuer = issuer, .ca = PKI_BC_CA };
    return pki_issue(&o, out);
}

int pki_leaf(const pki_cert *issuer, const char *cn, const pki_san *sans, pki_cert *out)
{
    pki_opts o = { .cn = cn, .issuer = issuer, .ca = PKI_BC_LEAF, .sans = sans };
    return pki_issue(&o, out);
}

int pki_leaf_key(const pki_cert *issuer, const char *cn, const pki_san *sans, EVP_PKEY *key, pki_cert *out)
{
    pki_opts o = { .cn = cn, .issuer = issuer, .ca = PKI_BC_LEAF, .sans = sans, .key = key };
    return pki_issue(&o, out);
}

int pki_self_signed(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *cn, pki_cert *out)
{
    pki_opts o = { .cn = cn, .serial = 1, .not_before = -3600, .not_after = 86400, .ca = PKI_BC_NONE,
                   .key_usage = PKI_KU_NONE, .key = key, .no_key_ids = 1, .libctx = libctx };
    return pki_issue(&o, out);
}

X509_CRL *pki_crl(const pki_cert *issuer, const long *serials, size_t n, long next_update)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    int ok = crl != NULL && t != NULL;

    ok = ok && X509_CRL_set_version(crl, 1);
    ok = ok && X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->cert));
    ok = ok && X509_gmtime_adj(t, -600) != NULL && X509_CRL_set1_lastUpdate(crl, t);
    ok = ok && X509_gmtime_adj(t, next_update) != NULL && X509_CRL_set1_nextUpdate(crl, t);
    for (size_t i = 0; ok && i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ASN1_TIME *rt = ASN1_TIME_new();
        ok = r != NULL && sn != NULL && rt != NULL && ASN1_INTEGER_set(sn, serials[i])
             && X509_REVOKED_set_serialNumber(r, sn) && X509_gmtime_adj(rt, -300) != NULL
             && X509_REVOKED_set_revocationDate(r, rt) && X509_CRL_add0_revoked(crl, r);
        ASN1_INTEGER_free(sn);
        ASN1_TIME_free(rt);
        if (!ok)
            X509_REVOKED_free(r);
    }
    if (ok) {
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, issuer->cert, NULL, NULL, crl, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier,
                                                "keyid:always");
        ok = e != NULL && X509_CRL_add_ext(crl, e, -1);
        X509_EXTENSION_free(e);
    }
    ok = ok && X509_CRL_sort(crl);
    ok = ok && X509_CRL_sign(crl, issuer->key, EVP_sha256()) > 0;
    ASN1_TIME_free(t);
    if (!ok) {
        fail("pki_crl");
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}

/* ---- files ------------------------------------------------------------- */

char *pki_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    char *p = pki_path(base, "m2mtls-test-XXXXXX");
    if (p != NULL && mkdtemp(p) == NULL) {
        perror("mkdtemp");
        free(p);
        return NULL;
    }
    return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        perror(path);
        return -1;
    }
    return 0;
}

int pki_rmtree(const char *dir)
{
    if (dir == NULL)
        return 1;
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

void pki_dir_free(char **dir)
{
    pki_rmtree(*dir);
    free(*dir);
    *dir = NULL;
}

char *pki_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static FILE *open_in(const char *dir, const char *name, const char *mode)
{
    char *p = pki_path(dir, name);
    FILE *f = p ? fopen(p, mode) : NULL;
    if (f == NULL)
        perror(p ? p : name);
    free(p);
    return f;
}

static int close_ok(FILE *f, int ok)
{
    if (fclose(f) != 0)
        ok = 0;
    return ok;
}

int pki_write_cert(const char *dir, const char *name, X509 *cert)
{
    return pki_write_certs(dir, name, cert, (X509 *)NULL);
}

int pki_write_certs(const char *dir, const char *name, X509 *cert, ...)
{
    FILE *f = open_in(dir, name, "w");
    if (f == NULL)
        return 0;
    int ok = cert == NULL || PEM_write_X509(f, cert);
    va_list ap;
    va_start(ap, cert);
    for (X509 *c; ok && (c = va_arg(ap, X509 *)) != NULL;)
        ok = PEM_write_X509(f, c);
    va_end(ap);
    return close_ok(f, ok);
}

int pki_write_key(const char *dir, const char *name, EVP_PKEY *key)
{
    FILE *f = open_in(dir, name, "w");
    if (f == NULL)
        return 0;
    return close_ok(f, PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
}

int pki_write_entity(const char *dir, const char *base, const pki_cert *c)
{
    char cert[256], key[256];
    snprintf(cert, sizeof cert, "%s.pem", base);
    snprintf(key, sizeof key, "%s.key", base);
    return pki_write_cert(dir, cert, c->cert) && pki_write_key(dir, key, c->key);
}

int pki_write_crl(const char *dir, const char *name, X509_CRL *crl)
{
    FILE *f = open_in(dir, name, "w");
    if (f == NULL)
        return 0;
    return close_ok(f, PEM_write_X509_CRL(f, crl));
}

int pki_write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
    FILE *f = open_in(dir, name, "wb");
    if (f == NULL)
        return 0;
    return close_ok(f, fwrite(data, 1, len, f) == len);
}

int pki_writef(const char *dir, const char *name, const char *fmt, ...)
{
    FILE *f = open_in(dir, name, "w");
    if (f == NULL)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    int ok = vfprintf(f, fmt, ap) >= 0;
    va_end(ap);
    return close_ok(f, ok);
}

STACK_OF(X509) *pki_stack(X509 *first, ...)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (sk == NULL)
        return NULL;
    va_list ap;
    va_start(ap, first);
    for (X509 *c = first; c != NULL; c = va_arg(ap, X509 *)) {
        if (!X509_up_ref(c) || sk_X509_push(sk, c) <= 0) {
            va_end(ap);
            sk_X509_pop_free(sk, X509_free);
            return NULL;
        }
    }
    va_end(ap);
    return sk;
}

/* ---- key ids ------------------------------------------------------------ */

char *pki_key_id(EVP_PKEY *key, size_t bytes)
{
    unsigned char *der = NULL, md[32], b64[64];
    unsigned int md_len = 0;
    if (bytes == 0 || bytes > sizeof md)
        return NULL;
    int len = i2d_PUBKEY(key, &der);
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, &md_len, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok)
        return NULL;
    int m = EVP_EncodeBlock(b64, md, (int)bytes);
    char *out = malloc((size_t)m + 1);
    if (out == NULL)
        return NULL;
    /* base64 to base64url (RFC 4648 section 5), the padding dropped */
    int o = 0;
    for (int i = 0; i < m && b64[i] != '='; i++)
        out[o++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[o] = '\0';
    return out;
}
