/* SPDX-License-Identifier: Apache-2.0 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "pki.h"

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A CA root (ROOT), or an end-entity certificate signed by ISSUER (or, when
 * ISSUER is NULL, by KEY itself: a device's self-signed certificate). */
static X509 *issue(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *san, int root)
{
    static atomic_long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = x && name && X509_set_version(x, 2)
             && ASN1_INTEGER_set(X509_get_serialNumber(x), atomic_fetch_add(&serial, 1))
             && X509_gmtime_adj(X509_getm_notBefore(x), -3600) && X509_gmtime_adj(X509_getm_notAfter(x), 90L * 86400)
             && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"m2mtls", -1, -1, 0)
             && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
             && X509_set_subject_name(x, name) && X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name)
             && X509_set_pubkey(x, key) && add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    X509 *signer = issuer ? issuer : x;
    if (ok && root)
        ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE")
             && add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    else if (ok)
        ok = add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE")
             && add_ext(x, signer, NID_key_usage, "critical,digitalSignature")
             && (san == NULL || add_ext(x, signer, NID_subject_alt_name, san))
             && (issuer == NULL || add_ext(x, signer, NID_authority_key_identifier, "keyid:always"));
    ok = ok && X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

X509 *tool_issue(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *san)
{
    return issue(cn, key, issuer, issuer_key, san, issuer == NULL);
}

X509 *tool_self_signed(const char *cn, EVP_PKEY *key, const char *san)
{
    return issue(cn, key, NULL, NULL, san, 0);
}

int tool_write_pem(const char *file, X509 *x, EVP_PKEY *key)
{
    BIO *b = BIO_new_file(file, "w");
    int ok = b != NULL && (x == NULL || PEM_write_bio_X509(b, x))
             && (key == NULL || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL));
    BIO_free(b);
    return ok;
}

/* DIR of this executable + REL into BUF when that file is readable. */
static const char *beside_self(const char *rel, char *buf, size_t len)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    char joined[8192];
    int w = snprintf(joined, sizeof joined, "%s/%s", self, rel);
    char *real = w > 0 && (size_t)w < sizeof joined ? realpath(joined, NULL) : NULL;
    if (real == NULL || strlen(real) >= len || access(real, R_OK) != 0) {
        free(real);
        return NULL;
    }
    memcpy(buf, real, strlen(real) + 1);
    free(real);
    return buf;
}

const char *tool_find_provider(const char *given)
{
    static _Thread_local char buf[4096];
    const char *env = getenv("M2MTLS_PROVIDER_MODULE");
    const char *found;
    if (given != NULL)
        return given;
    if (env != NULL && *env)
        return env;
    /* Installed (a package unpacked anywhere, a moved prefix), then built. */
    if ((found = beside_self(M2MTLS_PROVIDER_FROM_BIN, buf, sizeof buf)) != NULL
        || (found = beside_self(M2MTLS_PROVIDER_FROM_BUILD, buf, sizeof buf)) != NULL)
        return found;
    return M2MTLS_PROVIDER_INSTALLED;
}
