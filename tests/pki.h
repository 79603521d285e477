/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one certificate issuer of the m2mtls tests, built with the OpenSSL 3
 * API only (no openssl command): EC P-256 keys, certificates with chosen
 * names, validity, basicConstraints, keyUsage and subjectAltName entries
 * (including raw bytes with an embedded NUL), CRLs, PEM files in a private
 * temporary directory and policy files. Subject and issuer keys may be of
 * any provider: a key in a token signs through m2mtls.so (pki_opts.libctx).
 */
#ifndef M2MTLS_TESTS_PKI_H
#define M2MTLS_TESTS_PKI_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- certificates ------------------------------------------------------ */

enum pki_san_type {
    PKI_SAN_END = 0,   /* terminates a pki_san array */
    PKI_SAN_DNS,       /* dNSName (IA5String) */
    PKI_SAN_URI,       /* uniformResourceIdentifier (IA5String) */
    PKI_SAN_EMAIL,     /* rfc822Name (IA5String) */
    PKI_SAN_OTHERNAME  /* otherName, type-id PKI_OTHERNAME_OID, UTF8String value */
};

#define PKI_OTHERNAME_OID "1.3.6.1.4.1.45605.1" /* an arbitrary private OID */

typedef struct pki_san {
    int         type;  /* enum pki_san_type */
    const char *value; /* the bytes of the name */
    size_t      len;   /* 0: strlen(value); else raw length (may hold NUL bytes) */
} pki_san;

/* keyUsage: PKI_KU_DEFAULT (leaf: digitalSignature; CA: keyCertSign|cRLSign),
 * PKI_KU_NONE (no keyUsage extension), or an OR of the KU_* bits of
 * <openssl/x509v3.h> (KU_DIGITAL_SIGNATURE, KU_KEY_ENCIPHERMENT, ...). */
#define PKI_KU_DEFAULT 0
#define PKI_KU_NONE    (-1)

/* basicConstraints (always critical when present). */
#define PKI_BC_LEAF 0  /* CA:FALSE */
#define PKI_BC_CA   1  /* CA:TRUE */
#define PKI_BC_NONE (-1)

typedef struct pki_cert {
    X509     *cert;
    EVP_PKEY *key;
} pki_cert;

/* A raw extension, added as given (for malformed or repeated extensions). */
typedef struct pki_ext {
    const char          *oid;      /* dotted OID or short name; NULL ends a pki_ext array */
    int                  critical;
    const unsigned char *der;      /* the extnValue's content: DER, or not */
    size_t               len;
} pki_ext;

typedef struct pki_opts {
    const char     *cn;          /* subject commonName, NULL: none */
    const pki_cert *issuer;      /* NULL: self-signed */
    long            serial;      /* 0: the next of a process-wide counter */
    long            not_before;  /* seconds from now; both 0: -3600 and +30 days */
    long            not_after;
    int             ca;          /* PKI_BC_LEAF / PKI_BC_CA / PKI_BC_NONE */
    int             key_usage;   /* PKI_KU_DEFAULT / PKI_KU_NONE / KU_* bits */
    const pki_san  *sans;        /* PKI_SAN_END terminated; NULL: no SAN extension */
    EVP_PKEY       *key;         /* subject key to reuse (gets a reference); NULL: new key */
    const char     *md;          /* signature digest ("SHA1", "SHA384"); NULL: SHA-256 */
    const char     *name_constraints; /* nameConstraints, openssl.cnf syntax
                                         ("critical,permitted;URI:sp.example.com"); NULL: none */
    const char     *ext_key_usage;    /* extendedKeyUsage ("serverAuth"); NULL: none */
    const pki_ext  *raw_exts;    /* added after the others; NULL: none */
    int             no_key_ids;  /* 1: no subjectKeyIdentifier / authorityKeyIdentifier */
    int             bc_not_critical; /* 1: basicConstraints without the critical flag */
    OSSL_LIB_CTX   *libctx;      /* where the certificate is signed (the provider of a key
                                    in a token); NULL: the default library context */
} pki_opts;

/* A new EC P-256 key. */
EVP_PKEY *pki_key_new(void);
/* A new key: "EC:P-256", "EC:P-192", "EC:P-256:compressed" (its public key
 * encoded as a compressed point), "RSA:1024", "RSA:2048". */
EVP_PKEY *pki_key_gen(const char *spec);
/* Issues a certificate as described by O. 1 ok, 0 error (message on stderr). */
int  pki_issue(const pki_opts *o, pki_cert *out);
void pki_cert_free(pki_cert *c);
/* pki_cert_free of each of ALL[0..N) (a setup's certificates, once written). */
void pki_certs_free(pki_cert *const *all, size_t n);

/* Shorthands. */
int pki_root(const char *cn, pki_cert *out);                            /* self-signed CA */
int pki_intermediate(const char *cn, const pki_cert *issuer, pki_cert *out);
int pki_leaf(const pki_cert *issuer, const char *cn, const pki_san *sans, pki_cert *out);
/* pki_leaf for the subject key KEY (a reference is taken): a key in a token,
 * or only the public half of one. */
int pki_leaf_key(const pki_cert *issuer, const char *cn, const pki_san *sans, EVP_PKEY *key, pki_cert *out);
/* A bare self-signed certificate of KEY (no extensions, serial 1, valid for a
 * day), signed with KEY in LIBCTX: a key in a token signs it there. */
int pki_self_signed(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *cn, pki_cert *out);

/* A CRL signed by ISSUER revoking SERIALS[0..n), nextUpdate now+NEXT_UPDATE s. */
X509_CRL *pki_crl(const pki_cert *issuer, const long *serials, size_t n, long next_update);

/* ---- files ------------------------------------------------------------- */

/* mkdtemp under $TMPDIR or /tmp; malloc'd path, NULL on error. */
char *pki_tmpdir(void);
/* Removes DIR and everything under it. 1 ok. */
int pki_rmtree(const char *dir);
/* pki_rmtree and free of *DIR (a pki_tmpdir), then *DIR = NULL: a test's
 * teardown of its directory. */
void pki_dir_free(char **dir);
/* DIR "/" NAME, malloc'd (the caller frees it). */
char *pki_path(const char *dir, const char *name);

/* PEM writers; NAME is relative to DIR. 1 ok, 0 error. */
int pki_write_cert(const char *dir, const char *name, X509 *cert);
/* Certificate followed by its chain: CERT, then the NULL-terminated rest. */
int pki_write_certs(const char *dir, const char *name, X509 *cert, ...);
int pki_write_key(const char *dir, const char *name, EVP_PKEY *key);
int pki_write_crl(const char *dir, const char *name, X509_CRL *crl);
/* An entity's files: C's certificate in BASE.pem and its key in BASE.key. */
int pki_write_entity(const char *dir, const char *base, const pki_cert *c);
/* Raw bytes / printf text (policy files). */
int pki_write_bytes(const char *dir, const char *name, const void *data, size_t len);
int pki_writef(const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A STACK_OF(X509) holding the given certificates (references taken), NULL-terminated. */
STACK_OF(X509) *pki_stack(X509 *first, ...);

/* ---- key ids ------------------------------------------------------------ */

/* The RFC 6920 id of KEY as a policy names it (`key:sha-256;ID`, or
 * sha-256-128 / sha-256-120 with BYTES 16 / 15): base64url without padding
 * of the first BYTES (1..32) bytes of SHA-256 of its SubjectPublicKeyInfo as
 * OpenSSL's encoder makes it (i2d_PUBKEY, what a user's tool computes from a
 * key file), independently of libm2mtls. malloc'd; NULL on error. */
char *pki_key_id(EVP_PKEY *key, size_t bytes);

#endif
